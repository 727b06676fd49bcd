"""Events -> allocator ops (DESIGN.md §4, spec/freebsd-thread-lifecycle.md §9).

kdump never prints the kernel's kstack work; it is implied by process and thread lifecycle.
This module turns a trace's events into the ops that can change allocator state (their
vocabulary is kreplay/ops.py), as columns (one list per field), in trace order.

When the kernel really frees a kstack (at reap, deferred to the next thread allocation,
kept with a parked proc) is the model's decision (model/machine.py), not this module's.
Threads and processes seen without a creation event existed before tracing started; they
are created before the first op and reported by the preflight.
"""

import heapq
import json
from collections.abc import Iterable, Iterator, Sequence

from kreplay.events import IdleGap, LifecycleEvent
from kreplay.ops import (
    EXEC,
    FAULT,
    IDLE_GAP_NS,
    PROC_EXIT,
    PROC_NEW,
    REAP,
    SLEEP,
    THREAD_EXIT,
    THREAD_NEW,
    UNMAP,
    WAKE,
    Derived,
    Ops,
    Preflight,
)

# Bump when the derivation changes: cached ops of another version are derived again.
VERSION = "4"

FORKS = ("fork", "vfork", "rfork", "pdfork")
PID_MAX = 99999  # sys/sys/proc.h: no process gets a larger pid
ADDRESS_SPACE = 1 << 64
WAITS = ("wait4", "wait6")
# Signals whose default action terminates the process (signal(3)).
FATAL_SIGNALS = frozenset((
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGEMT", "SIGFPE",
    "SIGKILL", "SIGBUS", "SIGSEGV", "SIGSYS", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGUSR1", "SIGUSR2", "SIGTHR", "SIGLIBRT",
))  # fmt: skip
PAGE_SHIFT = 12

# What lifecycle reads from the store (store.lifecycle_events): these columns, for the
# CALLs and RETs of these syscalls (plus faults, signals and dropped markers).
CALLS = ("thr_exit", "exit", "munmap", "thr_new", "wait6")  # wait6: WNOWAIT
RETS = FORKS + WAITS + ("thr_new", "execve", "munmap")
EVENT_FIELDS = LifecycleEvent._fields


class _Deriver:
    def __init__(self, has_tids: bool):
        self.ops, self.pre = Ops(), Preflight(has_tids=has_tids)
        self.has_tids = has_tids
        self.threads: dict[int, list[int]] = {}  # pid -> live tids, creation order
        self.exited: set[int] = set()  # zombie pids, awaiting reap
        self.initial: list[tuple[int, int]] = []
        self.resident: dict[int, set[int]] = {}  # pid -> pages touched since last free
        self.pending_fault: dict[tuple[int, int], int] = {}
        self.open_calls: dict[tuple[int, int | None], str] = {}  # by (pid, printed tid)
        self.pending_thr_new: dict[int, int] = {}
        self.created_by_child: set[int] = set()  # created by their own first record
        self._synthetic = 1 << 40  # tids for traces without -H

    def _new_tid(self) -> int:
        self._synthetic += 1
        return self._synthetic

    def _ensure(self, pid: int, tid: int | None) -> int:
        """The thread of this record; one never seen before existed before tracing."""
        if pid not in self.threads:
            self.pre.preexisting_procs += 1
            tid = tid if tid is not None else self._new_tid()
            self.threads[pid] = [tid]
            self.initial.append((pid, tid))
            self.pre.preexisting_threads += 1
            return tid
        if tid is None:
            return self.threads[pid][-1] if self.threads[pid] else self._new_tid()
        if tid not in self.threads[pid]:
            self.pre.preexisting_threads += 1
            self.threads[pid].append(tid)
            self.initial.append((pid, tid))
        return tid

    def event(self, e: LifecycleEvent, tick: int) -> None:
        pid, tid, kind = e.pid, e.tid, e.kind
        if kind == "DROP":
            self.pre.dropped_markers += 1
            return
        if kind in ("SLEEP", "WAKE"):  # process-wide marks; a silent process exists too
            if pid not in self.exited:
                if pid not in self.threads:  # (a WAKE's tid may be a thread not yet created)
                    self._ensure(pid, tid)
                mark = SLEEP if kind == "SLEEP" else WAKE
                self._op(mark, (pid, 0, e.cpu or 0, tick, e.line))
            return
        if pid in self.exited:
            if not (kind == "RET" and e.retval == 0 and e.syscall in FORKS):
                return  # queued records written after the exit (spec kdump §2.4)
            self._reaped_unseen(pid, e, tick)  # the pid is reused: its zombie was reaped unseen
        if kind == "RET" and self._child_start(e, tick):
            return
        tid = self._ensure(pid, tid)
        where = (pid, tid, e.cpu or 0, tick, e.line)
        if kind == "CALL":
            self._call(e, where)
        elif kind == "RET":
            self._ret(e, where, self.open_calls.pop((pid, e.tid), ""))
        elif kind == "PSIG" and e.sig_action == "SIG_DFL" and e.signal in FATAL_SIGNALS:
            self._proc_exit(where)
        elif kind == "PFLT" and e.addr is not None:
            if (pid, tid) in self.pending_fault:
                self.pre.unmatched_faults += 1
            self.pending_fault[(pid, tid)] = e.addr >> PAGE_SHIFT
        elif kind == "PRET":
            page = self.pending_fault.pop((pid, tid), None)
            if page is None:
                self.pre.unmatched_faults += 1
            elif e.fault_result == "KERN_SUCCESS":
                self._fault(page, where)

    def _child_start(self, e: LifecycleEvent, tick: int) -> bool:
        """`RET fork 0` (14+: `RET <parent's syscall> 0`) as the first record of a new
        process or thread. True when the record was consumed as a creation."""
        if e.retval != 0 or e.syscall not in FORKS + ("thr_new",):
            return False
        pid, tid = e.pid, e.tid
        threads = self.threads.get(pid)
        where = (pid, tid, e.cpu or 0, tick, e.line)
        if threads is None:  # a process never seen before starts
            if e.syscall == "thr_new":
                return False  # the return of a pre-existing process's thr_new
            first = tid if tid is not None else self._new_tid()
            self.threads[pid] = [first]
            self.created_by_child.add(pid)  # its parent's `RET fork pid` may still come
            self._op(PROC_NEW, (pid, first) + where[2:])
            return True
        if not threads:  # created by the parent's `RET fork N`: its first thread starts
            threads.append(tid if tid is not None else self._new_tid())
            return True
        if tid is None:  # without -H, a parent's `RET thr_new 0` answers a pending CALL
            return not (e.syscall == "thr_new" and self.pending_thr_new.get(pid))
        if tid in threads:
            return False  # the parent's own `RET thr_new 0`
        threads.append(tid)
        self._op(THREAD_NEW, where)
        return True

    def _call(self, e: LifecycleEvent, where: tuple) -> None:
        name = e.syscall
        if name == "thr_exit":
            self._thread_exit(where)
        elif name == "exit":
            self._proc_exit(where)
        else:
            args = e.args or ""
            self.open_calls[(e.pid, e.tid)] = f"{name}:{args}"
            if name == "thr_new":
                self.pending_thr_new[e.pid] = self.pending_thr_new.get(e.pid, 0) + 1

    def _ret(self, e: LifecycleEvent, where: tuple, call: str) -> None:
        name, value, ok = e.syscall, e.retval, e.ret_kind in ("value", "justreturn")
        pid = where[0]
        if name in FORKS + WAITS and ok and value is not None and value > PID_MAX:
            self.pre.impossible_values += 1  # no such pid: nothing to create or reap
            return
        if name in FORKS and ok and value and value > 0 and value in self.threads:
            self.created_by_child.discard(value)  # both sides seen: one creation
        elif name in FORKS and ok and value and value > 0 and value not in self.threads:
            if value in self.exited:
                if value in self.created_by_child:
                    return  # the child ran, exited, and announced itself before this RET
                self._reaped_unseen(value, e, where[3])
            self.threads[value] = []  # the child's thread appears with its first record
            self._op(PROC_NEW, (value, 0) + where[2:], arg=pid)
        elif name == "thr_new" and ok and value == 0 and self.pending_thr_new.get(pid):
            self.pending_thr_new[pid] -= 1
            if not self.has_tids:  # with -H the new tid announces itself
                tid = self._new_tid()
                self.threads[pid].append(tid)
                self._op(THREAD_NEW, (pid, tid) + where[2:])
        elif name == "execve" and ok:
            self._exec(where)
        elif name in WAITS and ok and value and value > 0 and "WNOWAIT" not in call:
            if value in self.exited:  # (WNOWAIT only reports the child: no reap)
                self.exited.discard(value)
                self._op(REAP, (value, 0) + where[2:], arg=pid)
            else:
                self.pre.reaps_of_unknown += 1

    def _reaped_unseen(self, pid: int, e: LifecycleEvent, tick: int) -> None:
        """A zombie reaped out of the trace's sight (by init, or a parent that ignores
        SIGCHLD, spec lifecycle §4.3): reap it where its pid is seen reused."""
        self.exited.discard(pid)
        self.created_by_child.discard(pid)
        self.pre.reaps_of_unknown += 1
        self._op(REAP, (pid, 0, e.cpu or 0, tick, e.line))

    def _thread_exit(self, where: tuple) -> None:
        pid, tid = where[0], where[1]
        live = self.threads.get(pid, [])
        if tid not in live:
            self.pre.exits_of_unknown += 1
            return
        if len(live) == 1:  # the last thread: libthr calls exit next
            return
        live.remove(tid)
        self._op(THREAD_EXIT, where)

    def _proc_exit(self, where: tuple) -> None:
        pid = where[0]
        self.threads.pop(pid, None)
        self.exited.add(pid)
        self.resident.pop(pid, None)
        self._op(PROC_EXIT, where)

    def _exec(self, where: tuple) -> None:
        pid, tid = where[0], where[1]
        self.threads[pid] = [tid]
        self.resident.pop(pid, None)
        self._op(EXEC, where)

    def _fault(self, page: int, where: tuple) -> None:
        pages = self.resident.setdefault(where[0], set())
        if page not in pages:  # a fault on a resident page changes nothing
            pages.add(page)
            self._op(FAULT, where, arg=page)

    def munmap_done(self, where: tuple, args: str) -> None:
        addr, length = _two_numbers(args)
        if addr is None or not length:
            return
        if addr < 0 or length < 0 or addr + length > ADDRESS_SPACE:
            self.pre.impossible_values += 1  # the kernel would have refused it (EINVAL)
            return
        first = addr >> PAGE_SHIFT
        npages = (length + (1 << PAGE_SHIFT) - 1) >> PAGE_SHIFT
        pages = self.resident.get(where[0])
        if pages and npages > len(pages):  # in proportion to what is resident, not the range
            pages.difference_update([p for p in pages if first <= p < first + npages])
        elif pages:
            pages.difference_update(range(first, first + npages))
        self._op(UNMAP, where, arg=first, arg2=npages)

    def _op(self, kind: int, where: tuple, arg: int = 0, arg2: int = 0) -> None:
        pid, tid, cpu, tick, line = where
        self.ops.add(kind, pid, tid or 0, cpu, tick, line, arg, arg2)


def _two_numbers(args: str) -> tuple[int | None, int | None]:
    parts = args.split(",")
    try:
        return int(parts[0], 0), int(parts[1], 0)
    except (ValueError, IndexError):
        return None, None


def derive_trace(store, trace_id: int, options: str, hz: int = 1000) -> Derived:
    """The ops of a stored trace (store: kreplay.store.Store), derived afresh."""
    events = store.lifecycle_events(trace_id, CALLS, RETS)
    absolute = "T" in options or "E" in options  # -R prints deltas: no silences to find
    gaps = store.idle_gaps(trace_id, IDLE_GAP_NS) if absolute else []
    derived = derive(events, has_tids="H" in options, hz=hz, gaps=gaps)
    derived.preflight.calls_without_ret = store.calls_without_ret(trace_id)
    derived.preflight.timed = absolute
    return derived


def cached_trace_ops(store, trace_id: int, options: str, hz: int = 1000) -> Derived:
    """The ops of a stored trace from the store's cache, deriving and caching them once
    per lifecycle version and hz (a read-only store is not written: derived every time)."""
    version = f"{VERSION}/hz={hz}"
    cached = store.cached_ops(trace_id, version)
    if cached is not None:
        columns, preflight, initial = cached
        return Derived(
            Ops(**columns),
            Preflight(**json.loads(preflight)),
            [tuple(pair) for pair in json.loads(initial)],
        )
    derived = derive_trace(store, trace_id, options, hz)
    if store.read_only:
        return derived
    store.save_ops(
        trace_id,
        version,
        vars(derived.ops),
        json.dumps(vars(derived.preflight)),
        json.dumps(derived.initial),
    )
    return derived


def derive(
    events: Iterable[LifecycleEvent],
    has_tids: bool,
    hz: int = 1000,
    gaps: Sequence[IdleGap] = (),
) -> Derived:
    """Ops from the lifecycle events of one trace (store.lifecycle_events), in seq order,
    with the SLEEP/WAKE marks of its silences (store.idle_gaps) in place: a function of
    its arguments alone (tests write the events by hand)."""
    events = list(events)
    d = _Deriver(has_tids)
    first_event = next((e.ts for e in events if e.ts is not None), None)
    first_gap = gaps[0].ts if gaps else None  # a silence may start before any lifecycle row
    first_ts = min((t for t in (first_event, first_gap) if t is not None), default=None)
    for e in _with_marks(events, gaps) if gaps else events:
        tick = (
            e.seq if e.ts is None or first_ts is None else (e.ts - first_ts) * hz // 1_000_000_000
        )
        call = d.open_calls.get((e.pid, e.tid), "")
        d.event(e, tick)
        if (
            e.kind == "RET"
            and e.syscall == "munmap"
            and e.retval == 0
            and call.startswith("munmap:")
            and e.pid in d.threads
        ):
            where = (e.pid, e.tid or 0, e.cpu or 0, tick, e.line)
            d.munmap_done(where, call[len("munmap:") :])
    return Derived(d.ops, d.pre, d.initial)


def _with_marks(events: list[LifecycleEvent], gaps: Sequence[IdleGap]) -> Iterator[LifecycleEvent]:
    """The events with a SLEEP mark after each record that starts a silence and a WAKE
    mark before the record that ends it."""
    sleeps = (
        ((g.seq, 1), LifecycleEvent(g.seq, g.line, g.pid, g.tid, g.cpu, g.ts, "SLEEP"))
        for g in gaps
    )
    wakes = sorted(
        (
            (g.next_seq, -1),
            LifecycleEvent(
                g.next_seq, g.next_line, g.pid, g.next_tid, g.next_cpu, g.next_ts, "WAKE"
            ),
        )
        for g in gaps
        if g.next_seq is not None and g.next_line is not None
    )
    ordered = (((e.seq, 0), e) for e in events)
    for _, e in heapq.merge(ordered, sleeps, wakes):
        yield e


def _wake(g: IdleGap) -> LifecycleEvent:
    assert g.next_seq is not None and g.next_line is not None
    return LifecycleEvent(g.next_seq, g.next_line, g.pid, g.next_tid, g.next_cpu, g.next_ts, "WAKE")
