"""(trace, revision, machine) -> Result: derive the ops, run them through the model."""

from collections.abc import Callable

from kreplay import lifecycle as lc
from kreplay.model import KernelHang, KernelPanic
from kreplay.model.machine import Machine, MachineConfig
from kreplay.result import FORMAT_VERSION, MODEL_VERSION, KstackChunk, Outcome, Result
from kreplay.revisions import Revision
from kreplay.store import Store

Progress = Callable[[int, int], None]  # (ops done, ops in all)
PROGRESS_EVERY = 1 << 16


def replay(
    store: Store,
    trace: str,
    revision: Revision,
    cfg: MachineConfig,
    settings: dict[str, str],
    progress: Progress | None = None,
) -> Result:
    info = store.trace(trace)
    derived = lc.cached_trace_ops(store, info.trace_id, info.options, hz=cfg.hz)
    machine = Machine(cfg, revision.policy)
    outcome = run(machine, derived, progress)
    return Result(
        format_version=FORMAT_VERSION,
        trace=info.name,
        sha256=info.sha256,
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
    )


def run(machine: Machine, derived: lc.Derived, progress: Progress | None = None) -> Outcome:
    """Apply every op; a kernel panic or hang ends the replay as its outcome."""
    ops, index = derived.ops, -1
    total = len(ops)
    try:
        machine.boot(derived.initial)
        apply = machine.apply
        columns = (ops.kind, ops.pid, ops.tid, ops.cpu, ops.tick, ops.arg, ops.arg2)
        for args in zip(*columns, strict=True):
            index += 1
            apply(*args)
            if progress is not None and not index % PROGRESS_EVERY:
                progress(index, total)
        if progress is not None:
            progress(total, total)
    except (KernelPanic, KernelHang) as e:
        status = "panic" if isinstance(e, KernelPanic) else "hang"
        if index < 0:
            return Outcome(status, f"{e} (while booting)")
        return Outcome(
            status,
            str(e),
            index,
            lc.OP_NAMES[ops.kind[index]],
            ops.pid[index],
            ops.tid[index] or None,
            ops.line[index],
        )
    return Outcome("ok")
