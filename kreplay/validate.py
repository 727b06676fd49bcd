"""`kreplay validate`: does the model agree with the machine that ran the workload?

A trace recorded with kreplay's recording script has, beside it, snapshots of the kernel's
counters taken before and after the workload (docs/recording.md). Validation replays the
trace on the machine its sidecar names (work.py, as every command does) and on the kernel
that ran it, reads the same counters off the model after boot and at the end
(model/views.py kernel_counters), and sets each predicted change beside the observed one,
judged by the counter's tolerance (snapshot/tolerance.py). The model predicting a panic or
a hang where the machine ran the workload is a disagreement too.
"""

import re
import tomllib
from dataclasses import dataclass
from typing import Literal

from kreplay import ops as kops
from kreplay import work
from kreplay.errors import KreplayError
from kreplay.ingest.sidecar import sidecar_path
from kreplay.model.machine import Machine
from kreplay.model.views import kernel_counters
from kreplay.replay import run
from kreplay.result import Outcome
from kreplay.revisions import Revision
from kreplay.snapshot.recording import MachineTable, Recording, read_recording
from kreplay.snapshot.tolerance import Tolerance, tolerance_for
from kreplay.store import Store, TraceInfo

# agrees/differs: judged by the counter's tolerance; not judged: the counter has none;
# not predicted: the snapshots hold it, the model does not count it
Verdict = Literal["agrees", "differs", "not judged", "not predicted"]


@dataclass(frozen=True)
class Row:
    counter: str
    predicted: int | None
    before: int
    after: int
    allowance: int | None  # the tolerance on this machine, None without one
    verdict: Verdict
    reason: str = ""  # the tolerance's reason

    @property
    def observed(self) -> int:
        return self.after - self.before

    @property
    def difference(self) -> int | None:
        return None if self.predicted is None else self.predicted - self.observed


@dataclass(frozen=True)
class Validation:
    trace: str
    sidecar: str
    revision: str
    revision_from: str  # how the revision was chosen
    machine: str
    ncpu: int
    outcome: Outcome
    rows: list[Row]

    @property
    def agrees(self) -> bool:
        return self.outcome.status == "ok" and all(r.verdict != "differs" for r in self.rows)


def validate(
    store: Store,
    info: TraceInfo,
    revisions: dict[str, Revision],
    rev: str | None = None,
    trace_file: str | None = None,
) -> Validation:
    """The trace's validation on revision `rev`, else on the kernel the sidecar names; the
    sidecar beside `trace_file` (check's traces/ folder), else work.sidecar_trace()'s."""
    recording = recording_of(store, info, trace_file)
    name, chosen = (rev, "--rev") if rev else kernel_revision(recording)
    if name not in revisions:
        raise KreplayError(f"no revision {name!r} ({chosen}); kreplay revisions lists them")
    unit = work.resolve(info, revisions[name])
    derived = work.ops(store, unit)
    machine = Machine(unit.cfg, unit.revision.policy)
    start: dict[str, int] = {}
    outcome = run(machine, derived, booted=lambda m: start.update(kernel_counters(m)))
    predicted = _changes(start, kernel_counters(machine))
    replayed = len(derived.ops) if outcome.op_index is None else outcome.op_index
    predicted["zone.PROC.requests"] = sum(
        1 for kind in derived.ops.kind[:replayed] if kind == kops.PROC_NEW
    )
    observed = recording.observed()
    rows = [  # the counters the model predicts or the tolerance table names
        _row(counter, predicted.get(counter), d.before, d.after, unit.cfg.ncpu)
        for counter, d in sorted(observed.items())
        if counter in predicted or tolerance_for(counter) is not None
    ]
    return Validation(
        info.name, recording.path, name, chosen, unit.cfg.preset, unit.cfg.ncpu, outcome, rows
    )


def has_recording(trace_file: str) -> bool:
    """Whether the sidecar of `trace_file` is one kreplay's recording script wrote (or
    `kreplay synth --snapshots`): it has a [recording] table."""
    try:
        with open(sidecar_path(trace_file), "rb") as f:
            return "recording" in tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False  # no sidecar, or one ingest and check report on their own


def recording_of(store: Store, info: TraceInfo, trace_file: str | None = None) -> Recording:
    """The recording script's sidecar of a stored trace, with its snapshots."""
    trace_file = trace_file or work.sidecar_trace(info, store)
    if trace_file is None:
        raise KreplayError(
            f"{info.name}: no sidecar beside {info.source!r} (validate needs the snapshots "
            "that kreplay's recording script writes: docs/recording.md)"
        )
    recording = read_recording(sidecar_path(trace_file))
    if not any(c.entry.snapshot == "after" for c in recording.captures):
        raise KreplayError("the sidecar holds no snapshot after the workload", path=recording.path)
    return recording


# FreeBSD 15.0-RELEASE and later carry the newest tree's kstack code; a 15-CURRENT could
# be any of the 2024 series (D38852, D45163, D46115, later), so it must be named.
_RELEASE = re.compile(r"(\d+)\.(\d+)-(\w+)")


def kernel_revision(recording: Recording) -> tuple[str, str]:
    """The built-in revision that follows the recorded kernel, and why (docs/recording.md,
    "Validation")."""
    table: MachineTable = recording.sidecar.machine
    found = _RELEASE.match(table.osrelease)
    if found is None:
        raise KreplayError(
            f"[machine] osrelease {table.osrelease!r} names no FreeBSD release: pass --rev",
            path=recording.path,
        )
    major, branch = int(found.group(1)), found.group(3)
    why = f"[machine] osrelease {table.osrelease}"
    if major <= 14:
        return "base", why
    if major == 15 and branch in ("CURRENT", "ALPHA"):
        raise KreplayError(
            f"{why}: a 15-CURRENT kernel may have any of D38852, D45163, D46115 or later; "
            "pass --rev",
            path=recording.path,
        )
    return "later", why


def _changes(start: dict[str, int], end: dict[str, int]) -> dict[str, int]:
    return {name: end[name] - start.get(name, 0) for name in end}


def _row(counter: str, predicted: int | None, before: int, after: int, ncpu: int) -> Row:
    tolerance: Tolerance | None = tolerance_for(counter)
    if predicted is None:
        return Row(counter, None, before, after, None, "not predicted")
    if tolerance is None:
        return Row(counter, predicted, before, after, None, "not judged")
    observed = after - before
    allowance = tolerance.allowance(observed, ncpu)
    verdict: Verdict = "agrees" if tolerance.within(predicted, observed, ncpu) else "differs"
    return Row(counter, predicted, before, after, allowance, verdict, tolerance.reason)
