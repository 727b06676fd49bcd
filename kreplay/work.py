"""(trace, revision, machine) -> one unit of work, and its Result, the same by any command.

A unit is resolved once (resolve()): the machine is the trace's sidecar as ingest stored it
(traces.machine; amd64 for a trace without one), `--machine` instead of it, `--set` over
either; the ops come from the store's ops cache; the Result from the store's runs table
when the same key was replayed, else from a replay whose Result is stored there. replay,
diff and check all go through here, so that a cell gives the same Result whichever command
asks, and a sidecar edited since ingest is reported by all three in the same words
(sidecar_note()).

The runs key is what a Result depends on: the trace's content, the revision's policies
(their specs, and the source of any policy class from a plugin), the whole machine, and
the code of the model, the lifecycle derivation and the Result format (CODE_DIGEST): an
edit of any of them is a new run, never a stale cached one.
"""

import hashlib
import inspect
import json
import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from kreplay import lifecycle as lc
from kreplay.compare import Comparison, Threshold, compare
from kreplay.errors import KreplayError, StoreError, UsageError
from kreplay.ingest.sidecar import recorded_machine, sidecar_path
from kreplay.model.machine import MachineConfig, machine_config
from kreplay.model.policy import Policy
from kreplay.ops import Derived
from kreplay.replay import Progress, replay
from kreplay.result import FORMAT_VERSION, MODEL_VERSION, Result, from_json, to_json
from kreplay.revisions import Revision
from kreplay.store import Store, TraceInfo

PACKAGE = Path(__file__).parent
# The code a Result depends on, beside its inputs.
CODE = ("model/*.py", "ops.py", "lifecycle.py", "replay.py", "result.py")


@cache
def code_digest() -> str:
    """sha256 over the sources of CODE, in name order."""
    digest = hashlib.sha256()
    for pattern in CODE:
        for path in sorted(PACKAGE.glob(pattern)):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Work:
    """One cell: a stored trace on a revision and a machine."""

    trace: str
    sha256: str
    trace_id: int
    options: str
    revision: Revision
    cfg: MachineConfig
    settings: dict[str, str]  # the machine's settings as the Result records them
    key: str  # the runs table's key

    @property
    def label(self) -> str:
        return f"{self.trace}/{self.revision.name}"


def machine_for(
    info: TraceInfo, preset: str | None, settings: dict[str, str]
) -> tuple[MachineConfig, dict[str, str]]:
    """The machine a stored trace replays on: `preset` with `settings` when a preset is
    given; else the machine its sidecar named at ingest, `settings` over the sidecar's
    own; amd64 for a trace ingested without one."""
    recorded = info.recorded_machine
    if preset is None and recorded:
        preset, settings = recorded["preset"], {**recorded["set"], **settings}
    return machine_config(preset or "amd64", settings), settings


def resolve(
    info: TraceInfo,
    revision: Revision,
    preset: str | None = None,
    settings: dict[str, str] | None = None,
) -> Work:
    cfg, settings = machine_for(info, preset, settings or {})
    settings = dict(sorted(settings.items()))
    key = run_key(info.sha256, revision, cfg)
    return Work(info.name, info.sha256, info.trace_id, info.options, revision, cfg, settings, key)


def run_key(sha256: str, revision: Revision, cfg: MachineConfig) -> str:
    what = {
        "trace": sha256,
        "revision": revision.name,
        "policy": revision.policy.describe(),
        "plugins": _plugin_sources(revision),
        "machine": asdict(cfg),
        "model": MODEL_VERSION,
        "code": code_digest(),
        "lifecycle": lc.VERSION,
        "format": FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _plugin_sources(revision: Revision) -> dict[str, str]:
    """Decision point -> sha256 of the source of its policy's class, for classes defined
    outside kreplay (a plugin's): editing such a class is a new run."""
    out = {}
    for point, policy in revision.policy.parts().items():
        cls = type(policy)
        if isinstance(policy, Policy) and not cls.__module__.startswith("kreplay."):
            try:
                source = inspect.getsource(cls)
            except (OSError, TypeError):
                source = repr(cls.__dict__)
            out[point] = hashlib.sha256(source.encode()).hexdigest()
    return out


def ops(store: Store, work: Work) -> Derived:
    """The unit's ops, from the store's ops cache (derived and cached once)."""
    return lc.cached_trace_ops(store, work.trace_id, work.options, hz=work.cfg.hz)


def stored(store: Store, work: Work) -> Result | None:
    """The Result of an earlier run of the same key, if the store has it."""
    cached = store.cached_run(work.key)
    if cached is None:
        return None
    return from_json(cached.encode(), f"runs[{work.key[:12]}]")


def save(store: Store, work: Work, result: Result) -> None:
    """The run, into the runs and metrics tables (a read-only store keeps nothing)."""
    store.save_run(
        work.key,
        work.sha256,
        work.revision.name,
        work.cfg.preset,
        MODEL_VERSION,
        result.outcome.status,
        to_json(result).decode(),
        result.metrics,
    )


def result(store: Store, work: Work, progress: Progress | None = None) -> Result:
    """The unit's Result: stored, else replayed and stored."""
    found = stored(store, work)
    if found is not None:
        return found
    obtained, _ = replay(
        ops(store, work), work.trace, work.sha256, work.revision, work.cfg, work.settings, progress
    )
    save(store, work, obtained)
    return obtained


def diff(
    store: Store,
    a: Revision,
    b: Revision,
    infos: list[TraceInfo],
    preset: str | None = None,
    settings: dict[str, str] | None = None,
    limits: dict[str, Threshold] | None = None,
) -> list[Comparison]:
    """What revision b changes against a, trace by trace (every stored trace by default)."""
    infos = infos or store.traces()
    if not infos:
        raise StoreError("no traces in the store to compare (kreplay ingest FILE)", path=store.path)
    out = []
    for info in infos:
        before = result(store, resolve(info, a, preset, settings))
        after = result(store, resolve(info, b, preset, settings))
        out.append(compare(before, after, limits))
    return out


# ---------------------------------------------------------------------------- sidecars


def sidecar_trace(info: TraceInfo, store: Store) -> str | None:
    """The trace file whose sidecar describes a stored trace: the file ingest read, as
    given then, relative to the current directory or else to the store's; None when
    neither has a sidecar beside it (or the trace came from stdin)."""
    if info.source == "-":
        return None
    for path in (info.source, _beside(store.path, info.source)):
        if os.path.exists(sidecar_path(path)):
            return path
    return None


def sidecar_note(info: TraceInfo, trace_file: str | None, store: Store) -> str | None:
    """A sentence when the trace's sidecar now says another machine than the one ingest
    stored (every command replays the stored one). The sidecar is the one beside
    `trace_file` (check's traces/ folder), else sidecar_trace()'s."""
    path = trace_file or sidecar_trace(info, store)
    if path is None or not os.path.exists(sidecar_path(path)):
        return None
    try:
        now = recorded_machine(path)
    except KreplayError as e:
        return f"{e}; replaying the machine stored at ingest"
    if now == info.recorded_machine:
        return None
    return (
        f"{sidecar_path(path)}: [replay] is not what ingest stored for "
        f"{info.name} (stored {_machine_text(info.recorded_machine)}, "
        f"now {_machine_text(now)}): replaying the stored one; "
        f"`kreplay ingest --replace {path}` takes the new one"
    )


def sidecar_machine(path: str | Path) -> tuple[MachineConfig, dict[str, str]]:
    """The machine the sidecar of the trace file at `path` names (amd64 without one), with
    its settings; a bad one is an error naming the sidecar."""
    machine = recorded_machine(str(path))
    if machine is None:
        return machine_config("amd64", {}), {}
    try:
        return machine_config(machine["preset"], machine["set"]), machine["set"]
    except UsageError as e:
        raise KreplayError(f"bad sidecar: {e.message}", path=sidecar_path(str(path))) from None


def _beside(store_path: str, source: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(store_path)), source)


def _machine_text(machine: dict | None) -> str:
    if machine is None:
        return "no [replay] table (amd64)"
    sets = " ".join(f"{k}={v}" for k, v in sorted(machine["set"].items()))
    return machine["preset"] + (f" {sets}" if sets else "")
