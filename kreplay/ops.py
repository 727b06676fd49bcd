"""The op vocabulary: what lifecycle.py derives from a trace's events and the model
(model/machine.py) applies, as the store caches it. Its own module so that the store,
lifecycle, the model and replay share it without importing one another.

    PROC_NEW     a process is created (fork family); arg = parent pid (0 if unknown)
    THREAD_NEW   a thread is created in an existing process (thr_new)
    THREAD_EXIT  a non-last thread ends (thr_exit)
    PROC_EXIT    a process ends (exit, fatal signal); tid = the thread that stays with it
    REAP         a parent reaps an exited child (wait4/wait6); pid = the child
    EXEC         a successful execve: other threads end, user memory is freed
    FAULT        a user page is touched for the first time since its last unmap/exec/exit
    UNMAP        munmap of [arg, arg + arg2) pages
    SLEEP        the process's last record before a silence of at least IDLE_GAP_NS
    WAKE         its first record after that silence (both only with absolute timestamps)
"""

from array import array
from dataclasses import dataclass, field, fields
from typing import Any, Final

# Op kinds, as stored in the ops cache. Final: the compiled model inlines them.
PROC_NEW: Final = 0
THREAD_NEW: Final = 1
THREAD_EXIT: Final = 2
PROC_EXIT: Final = 3
REAP: Final = 4
EXEC: Final = 5
FAULT: Final = 6
UNMAP: Final = 7
SLEEP: Final = 8
WAKE: Final = 9
OP_NAMES = (
    "PROC_NEW",
    "THREAD_NEW",
    "THREAD_EXIT",
    "PROC_EXIT",
    "REAP",
    "EXEC",
    "FAULT",
    "UNMAP",
    "SLEEP",
    "WAKE",
)
# The shortest silence worth a SLEEP/WAKE pair: the model swaps out processes idle for at
# least its swap_idle_s (vm.swap_idle_threshold1, 2 s by default), never less than this.
IDLE_GAP_NS: Final = 1_000_000_000


@dataclass
class Ops:
    """Ops as columns. `line` is the trace line of the event that caused the op."""

    kind: list[int] = field(default_factory=list)
    pid: list[int] = field(default_factory=list)
    tid: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)
    tick: list[int] = field(default_factory=list)
    arg: list[int] = field(default_factory=list)
    arg2: list[int] = field(default_factory=list)
    line: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.kind)

    def packed(self) -> "Ops":
        """The same ops with each column an array of int64: what a worker process is sent
        (an array pickles as one block of bytes; a list of ints item by item)."""
        columns: list[Any] = [array("q", getattr(self, f.name)) for f in fields(self)]
        return Ops(*columns)

    def add(
        self,
        kind: int,
        pid: int,
        tid: int,
        cpu: int,
        tick: int,
        line: int,
        arg: int = 0,
        arg2: int = 0,
    ) -> None:
        self.kind.append(kind)
        self.pid.append(pid)
        self.tid.append(tid)
        self.cpu.append(cpu)
        self.tick.append(tick)
        self.arg.append(arg)
        self.arg2.append(arg2)
        self.line.append(line)


@dataclass
class Preflight:
    """What the trace could not say for sure (`kreplay show`)."""

    has_tids: bool = True
    timed: bool = False  # ticks are time (-T/-E): idle time and the reap callout are known
    preexisting_procs: int = 0
    preexisting_threads: int = 0
    exits_of_unknown: int = 0
    reaps_of_unknown: int = 0
    unmatched_faults: int = 0
    calls_without_ret: int = 0
    dropped_markers: int = 0
    impossible_values: int = 0  # a child pid beyond PID_MAX, an unmap past the address space

    def findings(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        if not self.has_tids:
            out.append(("no -H tid column", "threads are known per process only"))
        if not self.timed:
            out.append(
                ("no -T/-E timestamps", "idle time unknown: no swap-outs, no 5-second reap callout")
            )
        out += [
            ("processes that existed before tracing", self.preexisting_procs),
            ("threads that existed before tracing", self.preexisting_threads),
            ("exits of unknown threads", self.exits_of_unknown),
            ("reaps of unknown children", self.reaps_of_unknown),
            ("PFLT without PRET (or PRET without PFLT)", self.unmatched_faults),
            ("CALLs without RET at the end", self.calls_without_ret),
            ("dropped-event markers", self.dropped_markers),
            ("records with impossible values (ignored)", self.impossible_values),
        ]
        return out


@dataclass
class Derived:
    ops: Ops
    preflight: Preflight
    initial: list[tuple[int, int]]  # (pid, tid) threads alive when tracing started
