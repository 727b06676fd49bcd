"""The nightly matrix: every trace in traces/ x every revision, against golden/.

check plans and judges; executors.py runs the cells. Only this process touches the store:
it ingests the traces not yet stored, resolves each cell through work.py (the machine its
sidecar gave at ingest, as for replay and diff), takes the cells the runs table already
holds from there, hands the others (ops, revision, machine) to an executor, and stores
their Results. Results come back as Result JSON bytes; the comparison with
golden/<trace>/<revision>.json happens here.
"""

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kreplay import work
from kreplay.cells import Cell, CheckReport, ValidationSummary
from kreplay.compare import Comparison, compare
from kreplay.errors import KreplayError, UsageError
from kreplay.executors import Progress, execute
from kreplay.ingest import ingest
from kreplay.ingest.source import default_trace_name
from kreplay.model.views import pictures as machine_pictures
from kreplay.ops import OP_NAMES, Derived, Ops
from kreplay.pictures import from_json as pictures_from_json
from kreplay.pictures import to_json as pictures_json
from kreplay.replay import replay
from kreplay.result import MODEL_VERSION, from_json, to_json
from kreplay.revisions import Revision
from kreplay.store import Store
from kreplay.validate import has_recording, validate

TRACE_SUFFIXES = (".kdump", ".kdump.gz", ".kdump.xz", ".kdump.bz2")


@dataclass
class Unit:
    """A cell to replay, self-contained so that any process can run it."""

    work: work.Work
    derived: Derived
    pictures: bool = False  # also send back the report's pictures (model/views.py)


def trace_files(traces_dir: str) -> dict[str, Path]:
    """name -> file of every recorded workload in the folder."""
    folder = Path(traces_dir)
    if not folder.is_dir():
        raise UsageError(f"no traces folder {traces_dir!r}")
    files = sorted(p for p in folder.iterdir() if p.name.endswith(TRACE_SUFFIXES))
    return {default_trace_name(str(p)): p for p in files}


@dataclass
class Plan:
    works: list[work.Work]  # every cell, trace by trace
    notes: list[str]  # sidecars that changed since ingest (work.sidecar_note)
    files: dict[str, Path]  # the checked traces' files (their sidecars are beside them)


def plan(
    store: Store, traces_dir: str, revisions: list[Revision], names: Sequence[str] = ()
) -> Plan:
    """The cells, trace by trace; traces not yet in the store are ingested first."""
    files = trace_files(traces_dir)
    unknown = sorted(set(names) - set(files))
    if unknown:
        raise UsageError(f"no trace file for {', '.join(unknown)} in {traces_dir}")
    works, notes = [], []
    files = {name: path for name, path in files.items() if not names or name in names}
    for name, path in files.items():
        if not store.has_name(name):
            ingest(store, str(path), name=name)
        info = store.trace(name)
        note = work.sidecar_note(info, str(path), store)
        if note:
            notes.append(note)
        works += [work.resolve(info, rev) for rev in revisions]
    return Plan(works, notes, files)


Output = tuple[bytes, bytes | None]  # Result JSON, pictures JSON (when the unit asks)


def run_unit(unit: Unit) -> Output:
    """A worker's job: replay one cell, return its Result as JSON (and its pictures)."""
    w = unit.work
    result, machine = replay(unit.derived, w.trace, w.sha256, w.revision, w.cfg, w.settings)
    pics = pictures_json(machine_pictures(machine)) if unit.pictures else None
    return to_json(result), pics


def run_cells(
    store: Store,
    works: list[work.Work],
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    pictures: bool = False,
    progress: Progress | None = None,
) -> list[Output | str]:
    """Each cell's Result JSON (and pictures), or the error text of a cell that failed:
    from the runs table where it holds the cell (unless pictures are asked for: they are
    not stored), else replayed by the executor and stored."""
    out: list[Output | str] = [""] * len(works)
    todo: list[int] = []
    for i, w in enumerate(works):
        found = None if pictures else store.cached_run(w.key)
        if found is not None:
            out[i] = (found.encode(), None)
        else:
            todo.append(i)
    ops: dict[int, Derived] = {}
    for i in todo:
        if works[i].trace_id not in ops:
            ops[works[i].trace_id] = work.ops(store, works[i])
    units = [Unit(works[i], ops[works[i].trace_id], pictures) for i in todo]
    if executor == "dask":
        units = _packed(units)
    done = execute(
        units,
        run_unit,
        jobs,
        executor,
        scheduler,
        progress,
        label=lambda u: u.work.label,
        weight=lambda u: len(u.derived.ops),
    )
    for i, value in zip(todo, done, strict=True):
        out[i] = value
        if not isinstance(value, str):
            work.save(store, works[i], from_json(value[0], works[i].label))
    return out


def _packed(units: list[Unit]) -> list[Unit]:
    """The units as sent to a cluster: each trace's ops packed once (Ops.packed)."""
    packed: dict[int, Derived] = {}
    for unit in units:
        if id(unit.derived) not in packed:
            packed[id(unit.derived)] = replace(unit.derived, ops=unit.derived.ops.packed())
    return [replace(unit, derived=packed[id(unit.derived)]) for unit in units]


# ---------------------------------------------------------------------------- golden


def golden_path(golden_dir: str, trace: str, revision: str) -> Path:
    return Path(golden_dir) / trace / f"{revision}.json"


def judge(
    store: Store, works: list[work.Work], outcomes: list[Output | str], golden_dir: str
) -> list[Cell]:
    cells = []
    for w, outcome in zip(works, outcomes, strict=True):
        if isinstance(outcome, str):
            cells.append(Cell(w.trace, w.revision.name, "error", outcome))
            continue
        cell = _judge_one(store, w, outcome[0], golden_dir)
        if outcome[1] is not None:
            cell.pictures = pictures_from_json(outcome[1])
        cells.append(cell)
    return cells


def _judge_one(store: Store, w: work.Work, data: bytes, golden_dir: str) -> Cell:
    """A cell's Result JSON against its golden file, byte for byte."""
    name = w.revision.name
    obtained = from_json(data, w.label)
    path = golden_path(golden_dir, w.trace, name)
    if not path.exists():
        return Cell(w.trace, name, "no golden", str(path), result=obtained)
    try:  # a golden that does not read errors its own cell, not the whole check
        golden_data = path.read_bytes()
        if golden_data == data:
            return Cell(w.trace, name, obtained.outcome.status, result=obtained)
        golden = from_json(golden_data, str(path))
    except OSError as e:
        return Cell(w.trace, name, "error", f"{path}: cannot read: {e.strerror}", result=obtained)
    except KreplayError as e:
        return Cell(w.trace, name, "error", str(e), result=obtained)
    cmp = compare(golden, obtained, labels=("golden", "obtained"))
    first = _first_op(work.ops(store, w).ops, cmp.divergence) if cmp.divergence else None
    return Cell(w.trace, name, "differs", str(path), cmp, first, obtained)


def _first_op(ops: Ops, divergence: tuple[int, int] | None) -> dict | None:
    """The first op after the last checkpoint both runs agree on."""
    if divergence is None or not len(ops):
        return None
    i = min(divergence[0] + 1, len(ops) - 1)
    return {
        "op_index": i,
        "window_end": divergence[1],
        "kind": OP_NAMES[ops.kind[i]],
        "pid": ops.pid[i],
        "tid": ops.tid[i] or None,
        "line": ops.line[i],
    }


def orphans(golden_dir: str, traces: list[str], revisions: list[str]) -> list[str]:
    folder = Path(golden_dir)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*/*.json")):
        if path.parent.name not in traces or path.stem not in revisions:
            out.append(str(path))
    return out


def write_golden(cells: list[Cell], golden_dir: str, new_only: bool) -> list[tuple]:
    """(path, what happened, metric comparison of an update) per cell: written, updated,
    unchanged, or kept (--new-only). golden_update() refuses CI before calling this."""
    done: list[tuple[str, str, Comparison | None]] = []
    for cell in cells:
        if cell.result is None:
            done.append((f"{cell.trace}/{cell.revision}", f"not written: {cell.detail}", None))
            continue
        path = golden_path(golden_dir, cell.trace, cell.revision)
        data = to_json(cell.result)
        change, state = None, "written"
        try:
            if path.exists():
                old = path.read_bytes()
                if new_only or old == data:
                    done.append((str(path), "unchanged" if old == data else "kept", None))
                    continue
                state = "updated"
                try:
                    change = compare(from_json(old, str(path)), cell.result, labels=("old", "new"))
                except KreplayError as e:
                    state = f"replaced (the old one did not read: {e.message})"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as e:
            done.append((str(path), f"not written: {e.strerror}", None))
            continue
        done.append((str(path), state, change))
    return done


def check(
    store: Store,
    traces_dir: str,
    golden_dir: str,
    revisions: list[Revision],
    names: Sequence[str] = (),
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    pictures: bool = False,
    known_revisions: list[str] | None = None,
    progress: Progress | None = None,
    label: str | None = None,
) -> CheckReport:
    """Replay the matrix and judge every cell against its golden file; with `pictures`,
    each cell also carries the report's pictures of its final state. A golden file is
    orphaned when its trace is not in traces_dir or its revision is not known (default:
    not among those replayed; the CLI passes every revision of the registry, so that a
    `--rev` subset does not orphan the others). The check and its cells are recorded in
    the store under `label` (the history: kreplay history, the report's charts)."""
    planned = plan(store, traces_dir, revisions, names)
    outcomes = run_cells(store, planned.works, jobs, executor, scheduler, pictures, progress)
    cells = judge(store, planned.works, outcomes, golden_dir)
    known_traces = list(trace_files(traces_dir))
    known = known_revisions if known_revisions is not None else [r.name for r in revisions]
    report = CheckReport(cells, orphans(golden_dir, known_traces, known), planned.notes)
    report.validations = validations(store, planned.files, revisions)
    recorded = zip(cells, planned.works, strict=True)
    report.label = store.record_check(
        label,
        MODEL_VERSION,
        [(c.trace, c.revision, c.status, w.key) for c, w in recorded],
        failed=sum(not c.matches for c in cells),
    )
    return report


def validations(
    store: Store, files: dict[str, Path], revisions: list[Revision]
) -> list[ValidationSummary]:
    """kreplay validate of every checked trace whose sidecar has snapshots, on the kernel
    its sidecar names (which must be among the revisions checked)."""
    checked = {r.name: r for r in revisions}
    out = []
    for name, path in files.items():
        if not has_recording(str(path)):
            continue
        try:
            v = validate(store, store.trace(name), checked, trace_file=str(path))
        except KreplayError as e:
            out.append(ValidationSummary(name, "", "error", str(e)))
            continue
        verdicts = Counter(r.verdict for r in v.rows)
        detail = (
            f"{verdicts['agrees']} counters within tolerance, {verdicts['differs']} outside"
            + ("" if v.outcome.status == "ok" else f"; the model's kernel: {v.outcome.status}")
        )
        out.append(
            ValidationSummary(name, v.revision, "agrees" if v.agrees else "disagrees", detail)
        )
    return out


def golden_update(
    store: Store,
    traces_dir: str,
    golden_dir: str,
    revisions: list[Revision],
    names: Sequence[str] = (),
    new_only: bool = False,
    jobs: int = 1,
    progress: Progress | None = None,
) -> list[tuple]:
    if "CI" in os.environ:  # set at all, even empty: CI systems set it, people do not
        raise UsageError(
            "golden update refuses to run in CI (the CI variable is set, "
            f"to {os.environ['CI']!r}): goldens change only by a reviewed commit"
        )
    planned = plan(store, traces_dir, revisions, names)
    outcomes = run_cells(store, planned.works, jobs, progress=progress)
    return write_golden(judge(store, planned.works, outcomes, golden_dir), golden_dir, new_only)
