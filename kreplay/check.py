"""The nightly matrix: every trace in traces/ x every revision, against golden/.

Only this process touches the store: it ingests traces that are missing, derives (or reads
the cached) ops, and hands each cell (ops, revision, machine) to an executor: in-process
for one job, worker processes for several, or a Dask cluster. Results come back as Result
JSON bytes; the comparison with golden/<trace>/<revision>.json happens here.
"""

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from kreplay import lifecycle as lc
from kreplay import ops as kops
from kreplay.cells import Cell, CheckReport
from kreplay.compare import compare
from kreplay.errors import KreplayError, UsageError
from kreplay.ingest import ingest
from kreplay.ingest.sidecar import recorded_machine, sidecar_path
from kreplay.ingest.source import default_trace_name
from kreplay.model.machine import MachineConfig, machine_config
from kreplay.model.views import pictures as machine_pictures
from kreplay.pictures import from_json as pictures_from_json
from kreplay.pictures import to_json as pictures_json
from kreplay.replay import replay_machine
from kreplay.result import from_json, to_json
from kreplay.revisions import Revision
from kreplay.store import Store

TRACE_SUFFIXES = (".kdump", ".kdump.gz", ".kdump.xz", ".kdump.bz2")


@dataclass
class Unit:
    """One cell of the matrix, self-contained so that any process can run it."""

    trace: str
    sha256: str
    revision: Revision
    cfg: MachineConfig
    derived: kops.Derived
    settings: dict[str, str] = field(default_factory=dict)  # the sidecar's [replay] set
    pictures: bool = False  # also send back the report's pictures (pictures.py)


def trace_files(traces_dir: str) -> dict[str, Path]:
    """name -> file of every recorded workload in the folder."""
    folder = Path(traces_dir)
    if not folder.is_dir():
        raise UsageError(f"no traces folder {traces_dir!r}")
    files = sorted(p for p in folder.iterdir() if p.name.endswith(TRACE_SUFFIXES))
    return {default_trace_name(str(p)): p for p in files}


def sidecar_machine(path: Path) -> tuple[MachineConfig, dict[str, str]]:
    """The machine of a trace's sidecar (ingest/sidecar.py), amd64 without one; the
    settings are the sidecar's `[replay] set` (cpu_domains included)."""
    machine = recorded_machine(str(path))
    if machine is None:
        return machine_config("amd64", {}), {}
    try:
        return machine_config(machine["preset"], machine["set"]), machine["set"]
    except UsageError as e:
        raise KreplayError(f"bad sidecar: {e.message}", path=sidecar_path(str(path))) from None


def plan(
    store: Store,
    traces_dir: str,
    revisions: list[Revision],
    names: list[str] = (),
    pictures: bool = False,
) -> list[Unit]:
    """The cells, trace by trace; traces not yet in the store are ingested first."""
    files = trace_files(traces_dir)
    unknown = sorted(set(names) - set(files))
    if unknown:
        raise UsageError(f"no trace file for {', '.join(unknown)} in {traces_dir}")
    units = []
    for name, path in files.items():
        if names and name not in names:
            continue
        if not store.has_name(name):
            ingest(store, str(path), name=name)
        info = store.trace(name)
        cfg, settings = sidecar_machine(path)
        derived = lc.cached_trace_ops(store, info.trace_id, info.options, hz=cfg.hz)
        units += [
            Unit(name, info.sha256, rev, cfg, derived, settings, pictures) for rev in revisions
        ]
    return units


Output = tuple[bytes, bytes | None]  # Result JSON, pictures JSON (when the unit asks)


def run_unit(unit: Unit) -> Output:
    """A worker's job: replay one cell, return its Result as JSON (and its pictures)."""
    result, machine = replay_machine(
        unit.derived, unit.trace, unit.sha256, unit.revision, unit.cfg, unit.settings
    )
    pics = pictures_json(machine_pictures(machine)) if unit.pictures else None
    return to_json(result), pics


Outcomes = list[Output | str]  # a cell's output, or the error text of a failed cell
# (cells done, cells in all, the cell that runs: "trace/revision", "" when none)
CellProgress = Callable[[int, int, str], None]


def _label(unit: Unit) -> str:
    return f"{unit.trace}/{unit.revision.name}"


def _running(units: list[Unit], pending: list[int], jobs: int) -> str:
    """The longest cell not done (pending is in the order they were handed out, longest
    first), and how many more run beside it."""
    if not pending:
        return ""
    others = min(jobs, len(pending)) - 1
    return _label(units[pending[0]]) + (f" (+{others} more)" if others > 0 else "")


def execute(
    units: list[Unit],
    jobs: int,
    executor: str = "local",
    scheduler: str | None = None,
    progress: CellProgress | None = None,
) -> Outcomes:
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    report = progress or (lambda done, total, running: None)
    if executor == "dask":
        return _execute_dask(units, scheduler, report)
    if jobs == 1 or len(units) <= 1:
        out: Outcomes = []
        for i, unit in enumerate(units):
            report(i, len(units), _label(unit))
            out.append(_guarded(run_unit, unit))
        report(len(units), len(units), "")
        return out
    return _execute_processes(units, jobs, report)


def _guarded(fn: Callable[[Unit], Output], unit: Unit) -> Output | str:
    try:
        return fn(unit)
    except Exception as e:  # a bug in one cell must not stop the others
        return f"{type(e).__name__}: {e}"


def _packed(units: list[Unit]) -> list[Unit]:
    """The units as sent to worker processes: each trace's ops packed once (Ops.packed)."""
    packed: dict[int, kops.Derived] = {}
    for unit in units:
        if id(unit.derived) not in packed:
            packed[id(unit.derived)] = replace(unit.derived, ops=unit.derived.ops.packed())
    return [replace(unit, derived=packed[id(unit.derived)]) for unit in units]


# The cells of the running _execute_processes(), for its forked workers to read: a worker
# is sent the index of its cell, not the cell (a trace's ops pickled once per revision
# were most of what the parent and the workers spent outside the replays).
_CELLS: list[Unit] = []


def _run_cell(i: int) -> Output:
    return run_unit(_CELLS[i])


def _execute_processes(units: list[Unit], jobs: int, report: CellProgress) -> Outcomes:
    global _CELLS
    out: Outcomes = [""] * len(units)
    # Longest cells first, so that the last ones to finish are short (LPT scheduling).
    order = sorted(range(len(units)), key=lambda i: -len(units[i].derived.ops))
    fork = multiprocessing.get_context("fork")  # workers inherit _CELLS
    _CELLS = units
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=fork) as pool:
            futures = {pool.submit(_run_cell, i): i for i in order}
            pending = list(order)
            report(0, len(units), _running(units, pending, jobs))
            for future in as_completed(futures):
                i = futures[future]
                try:
                    out[i] = future.result()
                except BrokenProcessPool:
                    out[i] = ""  # retried alone below
                except Exception as e:
                    out[i] = f"{type(e).__name__}: {e}"
                pending.remove(i)
                report(len(units) - len(pending), len(units), _running(units, pending, jobs))
        for i, value in enumerate(out):
            if value == "":  # the pool broke: run the cell in a pool of its own
                with ProcessPoolExecutor(max_workers=1, mp_context=fork) as pool:
                    try:
                        out[i] = pool.submit(_run_cell, i).result()
                    except BrokenProcessPool as e:
                        out[i] = f"worker died: {type(e).__name__}: {e}"
                    except Exception as e:
                        out[i] = f"{type(e).__name__}: {e}"
    finally:
        _CELLS = []
    return out


def _execute_dask(units: list[Unit], scheduler: str | None, report: CellProgress) -> Outcomes:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UsageError("--executor dask needs Dask: pip install 'kreplay[dask]'") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
    try:
        with Client(scheduler or cluster) as client:
            futures = client.map(run_unit, _packed(units), pure=False)
            report(0, len(units), "")
            for done, _ in enumerate(as_completed(futures), 1):
                report(done, len(units), "")
            return [_dask_result(f) for f in futures]
    finally:
        if cluster is not None:
            cluster.close()


def _dask_result(future) -> Output | str:
    try:
        return future.result()
    except Exception as e:
        return f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------------------- golden


def golden_path(golden_dir: str, trace: str, revision: str) -> Path:
    return Path(golden_dir) / trace / f"{revision}.json"


def judge(units: list[Unit], outcomes: Outcomes, golden_dir: str) -> list[Cell]:
    cells = []
    for unit, outcome in zip(units, outcomes, strict=True):
        name = unit.revision.name
        if isinstance(outcome, str):
            cells.append(Cell(unit.trace, name, "error", outcome))
            continue
        cell = _judge_one(unit, outcome[0], golden_dir)
        if outcome[1] is not None:
            cell.pictures = pictures_from_json(outcome[1])
        cells.append(cell)
    return cells


def _judge_one(unit: Unit, data: bytes, golden_dir: str) -> Cell:
    """A cell's Result JSON against its golden file, byte for byte."""
    name = unit.revision.name
    obtained = from_json(data, f"{unit.trace}/{name}")
    path = golden_path(golden_dir, unit.trace, name)
    if not path.exists():
        return Cell(unit.trace, name, "no golden", str(path), result=obtained)
    try:  # a golden that does not read errors its own cell, not the whole check
        golden_data = path.read_bytes()
        if golden_data == data:
            return Cell(unit.trace, name, obtained.outcome.status, result=obtained)
        golden = from_json(golden_data, str(path))
    except OSError as e:
        return Cell(
            unit.trace, name, "error", f"{path}: cannot read: {e.strerror}", result=obtained
        )
    except KreplayError as e:
        return Cell(unit.trace, name, "error", str(e), result=obtained)
    cmp = compare(golden, obtained, labels=("golden", "obtained"))
    first = _first_op(unit.derived.ops, cmp.divergence)
    return Cell(unit.trace, name, "differs", str(path), cmp, first, obtained)


def _first_op(ops: kops.Ops, divergence: tuple[int, int] | None) -> dict | None:
    """The first op after the last checkpoint both runs agree on."""
    if divergence is None or not len(ops):
        return None
    i = min(divergence[0] + 1, len(ops) - 1)
    return {
        "op_index": i,
        "window_end": divergence[1],
        "kind": kops.OP_NAMES[ops.kind[i]],
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
    done = []
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
    names: list[str] = (),
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    pictures: bool = False,
    known_revisions: list[str] | None = None,
    progress: CellProgress | None = None,
) -> CheckReport:
    """Replay the matrix and judge every cell against its golden file; with `pictures`,
    each cell also carries the report's pictures of its final state. A golden file is
    orphaned when its trace is not in traces_dir or its revision is not known (default:
    not among those replayed; the CLI passes every revision of the registry, so that a
    `--rev` subset does not orphan the others)."""
    units = plan(store, traces_dir, revisions, names, pictures)
    cells = judge(units, execute(units, jobs, executor, scheduler, progress), golden_dir)
    known_traces = list(trace_files(traces_dir))
    known = known_revisions if known_revisions is not None else [r.name for r in revisions]
    return CheckReport(cells, orphans(golden_dir, known_traces, known))


def golden_update(
    store: Store,
    traces_dir: str,
    golden_dir: str,
    revisions: list[Revision],
    names: list[str] = (),
    new_only: bool = False,
    jobs: int = 1,
    progress: CellProgress | None = None,
) -> list[tuple]:
    if "CI" in os.environ:  # set at all, even empty: CI systems set it, people do not
        raise UsageError(
            "golden update refuses to run in CI (the CI variable is set, "
            f"to {os.environ['CI']!r}): goldens change only by a reviewed commit"
        )
    units = plan(store, traces_dir, revisions, names)
    cells = judge(units, execute(units, jobs, progress=progress), golden_dir)
    return write_golden(cells, golden_dir, new_only)
