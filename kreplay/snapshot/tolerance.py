"""How far an observed counter may stray from the model's prediction, and why.

`kreplay validate` (issue 18, second half) replays a recorded trace and sets each counter
the model predicts beside the change the snapshots saw (after minus before). The two never
agree exactly: the box runs more than the traced workload, and the model folds structures
the kernel keeps per cpu. Each counter's tolerance says by how much they may differ and for
what reason; a counter outside it is a finding (exit 1), one with no entry here is shown
but never judged.

The allowance for a counter is `absolute + per_cpu * ncpu + relative * |observed|` (units
of the counter); predicted and observed agree when they differ by at most that. The values
are first estimates from how the kernel works (the reasons say what each covers) and are to
be narrowed on real recordings; docs/recording.md lists them.

The recording script itself runs commands between its two snapshots (SCRIPT_FORKS): each
is a process with a thread and a kernel stack that the trace does not show.
"""

import fnmatch
import math

import msgspec

# The most commands kreplay/record/record.sh runs between the two captures of one counter
# (tests/test_record_script.py counts them): it takes the captures in mirrored order around
# the workload, so between the two readings of vm.domain, the farthest, run the 5 captures
# after it, ktrace, and the 5 captures before it again; only ktrace runs between the two
# `vmstat -z` (and ktrace's process becomes the traced workload).
SCRIPT_FORKS = 11


class Tolerance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The allowed difference for one counter, or a family of them (`*` in `counter`)."""

    counter: str
    unit: str
    reason: str
    absolute: int = 0
    per_cpu: int = 0
    relative: float = 0.0

    def allowance(self, observed: int, ncpu: int) -> int:
        """How far the prediction may be from `observed` on a machine of `ncpu` cpus."""
        return self.absolute + self.per_cpu * ncpu + math.ceil(self.relative * abs(observed))

    def within(self, predicted: int, observed: int, ncpu: int) -> bool:
        return abs(predicted - observed) <= self.allowance(observed, ncpu)


UNTRACED = (
    "untraced activity: every process on the box takes from the same counters, the "
    "recording script's own commands included, and ktrace sees only the traced tree"
)

TOLERANCES: tuple[Tolerance, ...] = (
    Tolerance(
        "zone.kstack_cache.requests",
        "stacks",
        f"{UNTRACED}: each fork and thread creation elsewhere takes a stack from the zone",
        absolute=2 * SCRIPT_FORKS,
        relative=0.02,
    ),
    Tolerance(
        "zone.kstack_cache.used",
        "stacks",
        f"{UNTRACED}; and an exited thread keeps its stack until the 5-second reap callout "
        "(thread_reap), so the after snapshot can catch stacks the model already freed",
        absolute=2 * SCRIPT_FORKS,
    ),
    Tolerance(
        "zone.kstack_cache.free",
        "stacks",
        "per-CPU caches the model folds: UMA keeps free items in each cpu's alloc and free "
        "buckets as well as the zone's bucket cache, the model in one cache; which cpu frees "
        "a stack moves it between them, and the zone trims its cache on its own",
        absolute=16,
        per_cpu=16,
    ),
    Tolerance(
        "zone.kstack_cache.fail",
        "allocations",
        "vm_thread_new asks the zone with M_NOWAIT (vm_glue.c); a fail is an import that "
        "found no memory, after which the stack is created directly: none unless memory "
        "ran short, when the model must predict each",
    ),
    Tolerance(
        "zone.kstack_cache.sleep",
        "allocations",
        "vm_thread_new asks the zone with M_NOWAIT, which never sleeps: a sleep on the "
        "zone is a finding, not noise",
    ),
    Tolerance(
        "zone.kstack_cache.xdomain",
        "frees",
        "the cpu kdump prints is the one that wrote a thread's last record, not the one that "
        "freed its stack (the thread may migrate before it exits)",
        absolute=8,
        relative=0.1,
    ),
    Tolerance(
        "zone.THREAD.requests",
        "threads",
        f"{UNTRACED}: each thread created elsewhere takes a struct thread",
        absolute=2 * SCRIPT_FORKS,
        relative=0.02,
    ),
    Tolerance(
        "zone.THREAD.used",
        "threads",
        f"{UNTRACED}; exited threads wait for the reap callout as their stacks do",
        absolute=2 * SCRIPT_FORKS,
    ),
    Tolerance(
        "zone.PROC.requests",
        "processes",
        f"{UNTRACED}: each fork elsewhere takes a struct proc",
        absolute=2 * SCRIPT_FORKS,
        relative=0.02,
    ),
    Tolerance(
        "zone.PROC.used",
        "processes",
        f"{UNTRACED}; a zombie keeps its struct proc until its parent waits for it",
        absolute=2 * SCRIPT_FORKS,
    ),
    Tolerance(
        "vm.kstacks",
        "stacks",
        f"(FreeBSD 11 and older) {UNTRACED}",
        absolute=2 * SCRIPT_FORKS,
    ),
    Tolerance(
        "vm.stats.vm.v_forks",
        "forks",
        f"{UNTRACED}: the script's sh forks its capture commands with fork(2)",
        absolute=2 * SCRIPT_FORKS,
    ),
    Tolerance("vm.stats.vm.v_vforks", "vforks", UNTRACED, absolute=SCRIPT_FORKS),
    Tolerance("vm.stats.vm.v_rforks", "rforks", UNTRACED, absolute=SCRIPT_FORKS),
    Tolerance(
        "vm.stats.vm.v_kthreads",
        "kernel threads",
        "the model starts no kernel threads; the kernel rarely does while a workload runs",
        absolute=4,
    ),
    Tolerance(
        "vm.stats.vm.v_wire_count",
        "pages",
        f"{UNTRACED}: the buffer cache, ZFS's ARC and other processes wire and unwire pages "
        "by the thousand; kernel stacks are a few of them",
        absolute=4096,
        relative=0.05,
    ),
    Tolerance(
        "vm.stats.vm.v_free_count",
        "pages",
        f"{UNTRACED}; and the page daemon frees pages on its own schedule",
        absolute=8192,
        relative=0.05,
    ),
    *(
        Tolerance(
            f"vm.reserv.{name}",
            "reservations",
            f"{UNTRACED}: every page allocation on the box (file cache, other processes) "
            "populates and breaks reservations; the model sees the traced tree's user pages "
            "only through their first-touch faults",
            absolute=64,
            relative=0.25,
        )
        for name in ("broken", "freed", "reclaimed", "fullpop", "partpopq.*.number")
    ),
    Tolerance(
        "vm.reserv.partpopq.*.size_kb",
        "KiB",
        f"{UNTRACED}, as for the partpopq queue lengths, in KiB of free pages",
        absolute=64 * 2048,
        relative=0.25,
    ),
)


def tolerance_for(counter: str) -> Tolerance | None:
    """The tolerance of `counter`: its own entry, else the first family that matches."""
    exact = next((t for t in TOLERANCES if t.counter == counter), None)
    if exact is not None:
        return exact
    return next((t for t in TOLERANCES if fnmatch.fnmatchcase(counter, t.counter)), None)
