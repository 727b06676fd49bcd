"""Ops, a revision and a machine -> Result: the replay itself, with no store (what a worker
process or a Dask task runs). Which ops, revision and machine, and whether a stored Result
serves instead, is work.py's business."""

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kreplay import ops as kops
from kreplay.model import KernelHang, KernelPanic
from kreplay.model.machine import Machine, MachineConfig
from kreplay.result import (
    FORMAT_VERSION,
    MODEL_VERSION,
    KstackChunk,
    Outcome,
    Result,
    Status,
)
from kreplay.revisions import Revision

Progress = Callable[[int, int], None]  # (ops done, ops in all)
PROGRESS_EVERY = 1 << 16


def replay(
    derived: kops.Derived,
    trace: str,
    sha256: str,
    revision: Revision,
    cfg: MachineConfig,
    settings: dict[str, str],
    progress: Progress | None = None,
) -> tuple[Result, Machine]:
    """The Result, and the machine in its final state (for model/views.py)."""
    machine = Machine(cfg, revision.policy)
    checkpoints: list = []
    outcome = run(machine, derived, progress, checkpoints)
    result = Result(
        format_version=FORMAT_VERSION,
        trace=trace,
        sha256=sha256,
        revision=revision.name,
        machine=cfg.preset,
        settings=dict(sorted(settings.items())),
        model_version=MODEL_VERSION,
        ops=len(derived.ops),
        outcome=outcome,
        metrics=machine.metrics(),
        kstack_chunks=[
            KstackChunk(c.kva, c.slots, c.pattern, c.populated) for c in machine.chunks()
        ],
        partpopq=machine.reservs.partpopq_text(),
        checkpoints=checkpoints,
    )
    return result, machine


def checkpoint_interval(total: int) -> int:
    """2**k ops between state digests: at most ~256 checkpoints, at least every 64 ops."""
    interval = 64
    while total // interval > 256:
        interval *= 2
    return interval


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The model's state holds no reference cycles, but it is hundreds of thousands of
    objects the cyclic collector would walk again and again while ops allocate (5-10% of a
    1 M-op replay). Collection resumes afterwards, as it was."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@_no_cycle_collection()
def run(
    machine: Machine,
    derived: kops.Derived,
    progress: Progress | None = None,
    checkpoints: list | None = None,
    booted: Callable[[Machine], None] | None = None,
) -> Outcome:
    """Apply every op; a kernel panic or hang ends the replay as its outcome. Appends
    [op index, state digest] to `checkpoints` every checkpoint_interval() ops; calls
    `booted(machine)` once the machine is up, before the first op."""
    checkpoints = [] if checkpoints is None else checkpoints
    ops, index = derived.ops, -1
    total = len(ops)
    try:
        machine.boot(derived.initial, derived.preflight.timed)
        if booted is not None:
            booted(machine)
        apply = machine.apply
        interval = checkpoint_interval(total)
        columns = (ops.kind, ops.pid, ops.tid, ops.cpu, ops.tick, ops.arg, ops.arg2)
        for start in range(0, total, interval):  # a block of ops, then a checkpoint
            block = zip(*(column[start : start + interval] for column in columns), strict=True)
            for index, (kind, pid, tid, cpu, tick, arg, arg2) in enumerate(block, start):  # noqa: B007
                apply(kind, pid, tid, cpu, tick, arg, arg2)
            if index + 1 == start + interval:
                checkpoints.append([index, machine.digest()])
                if progress is not None and not (index + 1) % PROGRESS_EVERY:
                    progress(index + 1, total)
        if progress is not None:
            progress(total, total)
    except (KernelPanic, KernelHang) as e:
        status: Status = "panic" if isinstance(e, KernelPanic) else "hang"
        if index < 0:
            return Outcome(status, f"{e} (while booting)")
        return Outcome(
            status,
            str(e),
            index,
            kops.OP_NAMES[ops.kind[index]],
            ops.pid[index],
            ops.tid[index] or None,
            ops.line[index],
        )
    return Outcome("ok")
