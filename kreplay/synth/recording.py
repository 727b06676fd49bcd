"""A synthetic recording: a synthesized trace with the sidecar and snapshots kreplay's
recording script would have written on a box that ran it (docs/recording.md), made from
what the simulation itself counted (sim.Tally), not from the model, so that `kreplay
validate` on it checks the model's reading of the trace against an independent truth.

The snapshot before is a box's plausible state (BEFORE); the one after adds what the
workload did: each fork takes a struct proc and (a never-used proc item) a struct thread and
a kernel stack, each thr_new a struct thread and a kernel stack, each child waited for gives
its struct proc back. The zones' `used` and `free` stay as they were: every thread the
workload makes has exited by its end, and what the kernel still holds of them (zombies until
a reap, threads and stacks parked with freed procs, stacks in the cache) is what the
tolerances allow for (snapshot/tolerance.py). `wrong` adds an error to named counters of the
after snapshot (from 0 before when BEFORE has no such counter), to prove that validation
sees it.
"""

import hashlib
import os
from collections.abc import Mapping

from kreplay.errors import KreplayError, UsageError
from kreplay.ingest.sidecar import sidecar_path
from kreplay.ingest.source import default_trace_name
from kreplay.snapshot.render import SNAPSHOT_FILES, synthetic_snapshot
from kreplay.synth import shapes
from kreplay.synth.sim import Tally

# A box before the workload: its zones and counters (a FreeBSD 14 amd64 machine).
BEFORE = {
    "zone.kstack_cache.size": 16384,
    "zone.kstack_cache.used": 310,
    "zone.kstack_cache.free": 24,
    "zone.kstack_cache.requests": 52_117,
    "zone.THREAD.size": 1808,
    "zone.THREAD.used": 322,
    "zone.THREAD.free": 18,
    "zone.THREAD.requests": 52_240,
    "zone.PROC.size": 1336,
    "zone.PROC.used": 61,
    "zone.PROC.free": 40,
    "zone.PROC.requests": 20_931,
}
# The shapes whose simulation counts what it does (the others are not sim-driven yet).
COUNTED = {"thread-storm": shapes.thread_storm}
MACHINE = """[machine]
osrelease = "14.1-RELEASE"
osreldate = 1401000
version = "FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC"
machine = "amd64"
machine_arch = "amd64"
ncpu = 8
ndomains = 1
pagesize = 4096
kstack_pages = 4
kstack_cache_size = 128
"""


def after(tally: Tally, before: Mapping[str, int] = BEFORE) -> dict[str, int]:
    """The counters after the workload the tally counts."""
    stacks = tally.forks + tally.threads
    out = dict(before)
    for counter, change in (
        ("zone.kstack_cache.requests", stacks),
        ("zone.THREAD.requests", stacks),
        ("zone.PROC.requests", tally.forks),
        ("zone.PROC.used", tally.forks - tally.reaped),
    ):
        out[counter] += change
    return out


def add_snapshots(
    shape: str, seed: int, scale: int, trace: str, wrong: Mapping[str, int] | None = None
) -> list[str]:
    """Beside the synthesized `trace` (written by synth_file with its sidecar): the
    snapshots before and after, and the sidecar's [machine], [recording] and [[capture]]
    tables. The files written."""
    if shape not in COUNTED:
        raise UsageError(
            f"--snapshots: the simulation of {shape!r} does not count what it does "
            f"(shapes with snapshots: {', '.join(COUNTED)})"
        )
    tally = Tally()
    COUNTED[shape](seed, scale, tally)  # the same trace again (seeded), counted this time
    folder, name = os.path.dirname(os.path.abspath(trace)), default_trace_name(trace)
    before = {**{counter: 0 for counter in wrong or {}}, **BEFORE}
    observed = after(tally, before)
    for counter, error in (wrong or {}).items():
        observed[counter] += error
    written, captures = [], []
    for snapshot, counters in (("before", before), ("after", observed)):
        for file, text in sorted(synthetic_snapshot(counters, style="v4").items()):
            fmt, command = SNAPSHOT_FILES[file]
            relative = f"{name}.snapshots/{snapshot}/{file}"
            written.append(_write(os.path.join(folder, relative), text))
            digest = hashlib.sha256(text.encode()).hexdigest()
            captures.append(
                f'\n[[capture]]\nsnapshot = "{snapshot}"\nformat = "{fmt}"\n'
                f'command = "{command}"\nfile = "{relative}"\nstatus = 0\nsha256 = "{digest}"\n'
            )
    side = sidecar_path(trace)
    with open(side, "a") as f:
        f.write("\n" + MACHINE + _recording_table(name, os.path.basename(trace), shape))
        f.writelines(captures)
    return [*written, side]


def _write(path: str, text: str) -> str:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise KreplayError(f"cannot write a snapshot: {e.strerror}", path=path) from None
    return path


def _recording_table(name: str, trace_file: str, shape: str) -> str:
    return (
        "\n[recording]\nversion = 1\n"
        f'trace = "{trace_file}"\nktrace_file = "{name}.ktr"\nktrace_points = "cfw"\n'
        f'kdump_options = "-H -T -c"\nworkload = "kreplay synth {shape}"\n'
        "workload_status = 0\ninterrupted = false\n"
        'started = "2026-12-02T00:00:00Z"\nended = "2026-12-02T00:00:10Z"\n'
    )
