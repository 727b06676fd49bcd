"""Where a check's cells run: in this process (one job), in forked worker processes
(--jobs N), or on a Dask cluster (--executor dask). An executor knows nothing of cells: it
calls a top-level function on each task and hands back, in task order, what it returned or
the error text of a task that failed (one failing task never stops the others)."""

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from kreplay.errors import UsageError

# (tasks done, tasks in all, the task that runs: its label, "" when none)
Progress = Callable[[int, int, str], None]
EXECUTORS = ("local", "dask")


def execute(
    tasks: Sequence[Any],
    fn: Callable[[Any], Any],
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    progress: Progress | None = None,
    label: Callable[[Any], str] = str,
    weight: Callable[[Any], int] = lambda task: 0,
) -> list[Any]:
    """fn(task) for every task, as a list in task order; a task that raised gives the
    text of its exception instead. `weight` orders the tasks handed to worker processes,
    heaviest first, so that the last to finish are short ones."""
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    if executor not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    report = progress or (lambda done, total, running: None)
    if executor == "dask":
        return _dask(tasks, fn, scheduler, report)
    if jobs == 1 or len(tasks) <= 1:
        out = []
        for i, task in enumerate(tasks):
            report(i, len(tasks), label(task))
            out.append(_guarded(fn, task))
        report(len(tasks), len(tasks), "")
        return out
    return _processes(tasks, fn, jobs, report, label, weight)


def _guarded(fn: Callable[[Any], Any], task: Any) -> Any:
    try:
        return fn(task)
    except Exception as e:  # a bug in one task must not stop the others
        return f"{type(e).__name__}: {e}"


# The running _processes() call's function and tasks, for its forked workers to read: a
# worker is sent the index of its task, not the task (a trace's ops pickled once per
# revision were most of what the parent and the workers spent outside the replays).
_JOB: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def _run_task(i: int) -> Any:
    assert _JOB is not None
    fn, tasks = _JOB
    return fn(tasks[i])


def _running(labels: list[str], pending: list[int], jobs: int) -> str:
    """The heaviest task not done (pending is in the order they were handed out), and how
    many more run beside it."""
    if not pending:
        return ""
    others = min(jobs, len(pending)) - 1
    return labels[pending[0]] + (f" (+{others} more)" if others > 0 else "")


def _processes(tasks, fn, jobs: int, report: Progress, label, weight) -> list[Any]:
    global _JOB
    out: list[Any] = [None] * len(tasks)
    failed = object()  # the pool broke under the task: run it again alone
    labels = [label(t) for t in tasks]
    order = sorted(range(len(tasks)), key=lambda i: -weight(tasks[i]))  # LPT scheduling
    fork = multiprocessing.get_context("fork")  # workers inherit _JOB
    _JOB = (fn, tasks)
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=fork) as pool:
            futures = {pool.submit(_run_task, i): i for i in order}
            pending = list(order)
            report(0, len(tasks), _running(labels, pending, jobs))
            for future in as_completed(futures):
                i = futures[future]
                try:
                    out[i] = future.result()
                except BrokenProcessPool:
                    out[i] = failed
                except Exception as e:
                    out[i] = f"{type(e).__name__}: {e}"
                pending.remove(i)
                report(len(tasks) - len(pending), len(tasks), _running(labels, pending, jobs))
        for i, value in enumerate(out):
            if value is failed:
                with ProcessPoolExecutor(max_workers=1, mp_context=fork) as pool:
                    try:
                        out[i] = pool.submit(_run_task, i).result()
                    except BrokenProcessPool as e:
                        out[i] = f"worker died: {type(e).__name__}: {e}"
                    except Exception as e:
                        out[i] = f"{type(e).__name__}: {e}"
    finally:
        _JOB = None
    return out


def _dask(tasks, fn, scheduler: str | None, report: Progress) -> list[Any]:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
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
            futures = client.map(fn, list(tasks), pure=False)
            report(0, len(tasks), "")
            for done, _ in enumerate(dask_completed(futures), 1):
                report(done, len(tasks), "")
            return [_dask_result(f) for f in futures]
    finally:
        if cluster is not None:
            cluster.close()


def _dask_result(future) -> Any:
    try:
        return future.result()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
