"""(trace, revision, machine) -> Result: derive the ops, run them through the model."""

import gc
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict

from kreplay import lifecycle as lc
from kreplay import ops as kops
from kreplay.model import KernelHang, KernelPanic
from kreplay.model.machine import Machine, MachineConfig, machine_config
from kreplay.result import (
    FORMAT_VERSION,
    MODEL_VERSION,
    KstackChunk,
    Outcome,
    Result,
    from_json,
    to_json,
)
from kreplay.revisions import Revision
from kreplay.store import Store, TraceInfo

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
    return _replay(store, store.trace(trace), revision, cfg, settings, progress)


def _replay(store, info, revision, cfg, settings, progress) -> Result:
    derived = lc.cached_trace_ops(store, info.trace_id, info.options, hz=cfg.hz)
    return replay_machine(derived, info.name, info.sha256, revision, cfg, settings, progress)[0]


def replay_machine(
    derived: kops.Derived,
    trace: str,
    sha256: str,
    revision: Revision,
    cfg: MachineConfig,
    settings: dict[str, str],
    progress: Progress | None = None,
) -> tuple[Result, Machine]:
    """The replay itself, with no store (what a worker process or Dask task runs): the
    Result, and the machine in its final state (for pictures.py)."""
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
) -> Outcome:
    """Apply every op; a kernel panic or hang ends the replay as its outcome. Appends
    [op index, state digest] to `checkpoints` every checkpoint_interval() ops."""
    checkpoints = [] if checkpoints is None else checkpoints
    ops, index = derived.ops, -1
    total = len(ops)
    try:
        machine.boot(derived.initial, derived.preflight.timed)
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
        status = "panic" if isinstance(e, KernelPanic) else "hang"
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


def trace_machine(
    info: TraceInfo, preset: str | None, settings: dict[str, str]
) -> tuple[MachineConfig, dict[str, str]]:
    """The machine a trace replays on: `preset` with `settings` when a preset is given;
    else the machine its sidecar named at ingest (traces.machine) with `settings` over
    the sidecar's own, and amd64 for a trace that came without one."""
    recorded = info.recorded_machine
    if preset is None and recorded:
        preset, settings = recorded["preset"], {**recorded["set"], **settings}
    return machine_config(preset or "amd64", settings), settings


def run_key(sha256: str, revision: Revision, cfg: MachineConfig) -> str:
    """What a Result depends on: the trace content, the revision's policies (not just its
    name: a user's TOML can change), the whole machine and the model and lifecycle code."""
    what = {
        "trace": sha256,
        "revision": revision.name,
        "policy": revision.policy.describe(),
        "machine": asdict(cfg),
        "model": MODEL_VERSION,
        "lifecycle": lc.VERSION,
        "format": FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def cached_replay(
    store: Store,
    info: TraceInfo,
    revision: Revision,
    cfg: MachineConfig,
    settings: dict[str, str],
    progress: Progress | None = None,
) -> Result:
    """replay() of a stored trace, served from the store's runs table when the same key
    was replayed."""
    key = run_key(info.sha256, revision, cfg)
    cached = store.cached_run(key)
    if cached is not None:
        result = from_json(cached.encode(), f"runs[{key[:12]}]")
        if result.settings == dict(sorted(settings.items())):
            return result
    result = _replay(store, info, revision, cfg, settings, progress)
    store.save_run(
        key,
        info.sha256,
        revision.name,
        cfg.preset,
        MODEL_VERSION,
        result.outcome.status,
        to_json(result).decode(),
        result.metrics,
    )
    return result
