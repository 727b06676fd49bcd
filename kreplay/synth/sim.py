"""A seeded scheduler of traced threads, and the libc/libthr call sequences they print.

Each thread runs a body: a generator that prints its records through the helpers below and
yields at every point where another thread may run. Yielding an Event parks the thread
until the event is set (a condition variable, a child's exit). The scheduler picks the next
thread with the trace's seeded generator, so the interleaving is arbitrary but the same for
a seed. Records follow spec/kdump-format.md §3 and spec/freebsd-thread-lifecycle.md §9:
a new process or thread announces itself with `RET fork 0` (13.x kernels; 14+ kernels
print the parent's syscall, e.g. `RET thr_new 0`) under its own pid/tid, `exit` and
`thr_exit` have no RET, a parent reaps its child with `RET wait4 PID`.
"""

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from kreplay.synth.render import (
    Recorder,
    Records,
    cpu_column,
    errno_ret,
    header_prefix,
    hx,
    ret_value,
)

PAGE = 0x1000
SUPERPAGE = 0x20_0000  # 2 MiB: one reservation of user memory
MIGRATE = 0.02  # chance that a thread is moved to another of its cpus after a step


class Event:
    """Something threads wait for; set() makes its waiters runnable again."""

    def __init__(self) -> None:
        self.is_set = False
        self.waiters: list[Thread] = []


@dataclass(eq=False)
class Proc:
    pid: int
    threads: list["Thread"] = field(default_factory=list)
    next_addr: int = 0x8_2000_0000  # where the next anonymous mapping goes
    exited: Event = field(default_factory=Event)


@dataclass(eq=False)
class Thread:
    proc: Proc
    tid: int
    comm: str
    cpu: int
    cpus: tuple[int, ...]  # where the scheduler may move it
    stack: int = 0x7FFF_FFFF_D000
    prefix: str = ""
    cpu_text: str = ""
    body: Generator | None = None
    slot: int = -1  # index in Sim.runnable, -1 while parked or not started
    done: Event = field(default_factory=Event)

    def __post_init__(self) -> None:
        self.rename(self.comm)
        self.move(self.cpu)

    def rename(self, comm: str) -> None:
        self.comm = comm
        self.prefix = header_prefix(self.proc.pid, self.tid, comm)

    def move(self, cpu: int) -> None:
        self.cpu = cpu
        self.cpu_text = cpu_column(cpu)


Body = Callable[["Sim", Thread], Generator]


@dataclass
class Tally:
    """What the simulation did, counted as it did it: the truth a synthetic snapshot of
    the kernel's counters is made from (kreplay/synth/recording.py)."""

    forks: int = 0
    threads: int = 0  # thr_new
    reaped: int = 0  # children waited for


class Sim(Records):
    def __init__(self, seed: int, first_pid: int = 1204, first_tid: int = 100_117):
        self.rng = random.Random(seed)
        self.rand = self.rng.random
        self.rec = Recorder(self.rng)
        self.runnable: list[Thread] = []
        self.parked = 0
        self.next_pid, self.next_tid = first_pid, first_tid
        self.tally = Tally()

    # ------------------------------------------------------------------ scheduling

    def run(self) -> list[str]:
        """Run every thread to its end; the trace's lines."""
        runnable, rand = self.runnable, self.rand
        while runnable:
            t = runnable[int(rand() * len(runnable))]
            try:
                waits = next(t.body)
            except StopIteration:
                self._unqueue(t)
                continue
            if isinstance(waits, Event) and not waits.is_set:
                self._unqueue(t)
                waits.waiters.append(t)
                self.parked += 1
            elif len(t.cpus) > 1 and rand() < MIGRATE:
                t.move(t.cpus[int(rand() * len(t.cpus))])
        if self.parked:
            raise RuntimeError(f"synthetic workload deadlocked: {self.parked} threads wait")
        return self.rec.out

    def start(self, t: Thread, body: Generator) -> None:
        t.body = body
        self._queue(t)

    def set(self, event: Event) -> None:
        event.is_set = True
        for t in event.waiters:
            self.parked -= 1
            self._queue(t)
        event.waiters.clear()

    def _queue(self, t: Thread) -> None:
        t.slot = len(self.runnable)
        self.runnable.append(t)

    def _unqueue(self, t: Thread) -> None:
        last = self.runnable.pop()
        if last is not t:
            self.runnable[t.slot] = last
            last.slot = t.slot
        t.slot = -1

    # ------------------------------------------------------------------ records

    def emit(self, t: Thread, tag: str, body: str) -> None:
        self.rec.record(t.prefix, t.cpu_text, tag, body)

    def csw(self, t: Thread, what: str, wmesg: str) -> None:
        """A context switch (ktrace -t w): `stop kernel "uwait"`, `resume kernel ...`."""
        self.emit(t, "CSW ", f'{what} kernel "{wmesg}"')

    def fault(self, t: Thread, addr: int, write: bool = True) -> None:
        """A user page fault that succeeds (ktrace -t f)."""
        prot = "0x2<VM_PROT_WRITE>" if write else "0x1<VM_PROT_READ>"
        self.emit(t, "PFLT", f"{addr:#x} {prot}")
        self.emit(t, "PRET", "KERN_SUCCESS")

    # ------------------------------------------------------------------ processes

    def new_thread(self, proc: Proc, comm: str, cpu: int, cpus: tuple[int, ...]) -> Thread:
        self.next_tid += 1 if self.rand() < 0.8 else self.rng.randint(2, 9)
        t = Thread(proc, self.next_tid, comm, cpu, cpus)
        if proc.threads:  # libthr puts each thread's stack below the main one
            t.stack = 0x7FFF_DFBF_E000 - 0x20_0000 * (t.tid % 4096)
        proc.threads.append(t)
        return t

    def new_process(self, comm: str, cpu: int, cpus: tuple[int, ...]) -> Thread:
        """A process's first thread (not started)."""
        self.next_pid += 1 if self.rand() < 0.9 else self.rng.randint(2, 5)
        return self.new_thread(Proc(self.next_pid), comm, cpu, cpus)

    def fork(self, t: Thread, child_body: Body, cpus: tuple[int, ...] | None = None) -> Generator:
        """fork(2): the child's `RET fork 0` and the parent's `RET fork PID` in either
        order. Returns the child's thread."""
        cpus = cpus or t.cpus
        child = self.new_process(t.comm, cpus[int(self.rand() * len(cpus))], cpus)
        self.tally.forks += 1
        self.call(t, "fork")
        self.start(child, self._child(child, "fork", child_body))
        yield
        self.ret(t, "fork", ret_value(child.proc.pid))
        return child

    def _child(self, t: Thread, first_ret: str, body: Body) -> Generator:
        self.ret(t, first_ret, "0")
        self.call_ret(t, f"sigprocmask(SIG_SETMASK,{t.stack - 0x40:#x},0)")
        yield
        yield from body(self, t)

    def execve(self, t: Thread, path: str) -> None:
        args = ",".join(f"{0x8_21E0_C2A8 + 0x18 * i:#x}" for i in range(3))
        self.call(t, f"execve({args})")  # no NAMI records: ktrace -t cfw
        t.rename(path.rsplit("/", 1)[1])  # the RET already carries the new name
        self.ret(t, "execve", "JUSTRETURN")
        t.proc.next_addr = 0x8_2000_0000 + self.rng.randrange(0x100) * 0x10_0000
        self.mmap_anon(t, 0x21000)
        self.call_ret(t, "issetugid")

    def exit(self, t: Thread, status: int = 0) -> None:
        """exit(2) of the last thread: no RET; the body must return right after."""
        if len(t.proc.threads) != 1:
            raise RuntimeError(f"pid {t.proc.pid} exits with {len(t.proc.threads)} threads")
        self.call(t, f"exit({hx(status)})")
        t.proc.threads.clear()
        self.set(t.proc.exited)

    def wait4(self, t: Thread, child: Thread) -> Generator:
        """wait4(2) for one child: blocks until it has exited, then reaps it."""
        self.call(t, f"wait4({child.proc.pid},{t.stack - 0x2C4:#x},0,0)")
        yield from self.block(t, child.proc.exited, "wait")
        self.ret(t, "wait4", ret_value(child.proc.pid))
        self.tally.reaped += 1

    # ------------------------------------------------------------------ threads

    def thr_new(
        self,
        t: Thread,
        body: Body,
        *,
        cpus: tuple[int, ...] | None = None,
        first_ret: str = "fork",
        stack_mmap: bool = True,
    ) -> Generator:
        """libthr's pthread_create(): a thread stack, signals blocked around thr_new, the
        new tid's first record (`RET fork 0`, or `RET thr_new 0` on 14+ kernels) and the
        parent's `RET thr_new 0` in either order. Returns the new thread."""
        if stack_mmap:
            addr = 0x7FFF_DFC0_0000 - SUPERPAGE * len(t.proc.threads)
            self.call_ret(
                t,
                f"mmap({addr:#x},0x200000,0x3<PROT_READ|PROT_WRITE>,0x400<MAP_STACK>,0xffffffff,0)",
                ret_value(addr),
            )
        self.call_ret(t, f"sigprocmask(SIG_SETMASK,{t.stack - 0x2A0:#x},{t.stack:#x})")
        self.call(t, f"thr_new({t.stack - 0x1058:#x},0x68)")
        cpus = cpus or t.cpus
        child = self.new_thread(t.proc, t.comm, cpus[int(self.rand() * len(cpus))], cpus)
        self.tally.threads += 1
        if stack_mmap:
            child.stack = addr + SUPERPAGE - PAGE
        self.start(child, self._child(child, first_ret, body))
        yield
        self.ret(t, "thr_new", "0")
        self.call_ret(t, f"sigprocmask(SIG_SETMASK,{t.stack:#x},0)")
        return child

    def thr_exit(self, t: Thread) -> None:
        """pthread_exit(): no RET; the body must return right after."""
        self.call(t, f"thr_exit({t.stack - 0x1F8:#x})")
        t.proc.threads.remove(t)
        self.set(t.done)

    def thr_set_name(self, t: Thread, target: Thread, name: str) -> None:
        self.call(t, f"thr_set_name({target.tid:#x},{t.stack - 0x98:#x})")
        if target not in t.proc.threads:  # it ran to its end before it was named
            self.ret(t, "thr_set_name", errno_ret(3))
            return
        target.rename(name)
        self.ret(t, "thr_set_name", "0")

    def umtx_wait(self, t: Thread, event: Event, obj: int) -> Generator:
        """A condition-variable wait: the CALL, parked until the event, then the RET."""
        self.call(t, f"_umtx_op({obj:#x},0xf<UMTX_OP_WAIT_UINT_PRIVATE>,0,0,0)")
        yield from self.block(t, event, "uwait")
        self.ret(t, "_umtx_op", "0")

    def block(self, t: Thread, event: Event, wmesg: str) -> Generator:
        """Sleep in the kernel until the event (with its CSW records when it sleeps)."""
        if event.is_set:
            return
        self.csw(t, "stop", wmesg)
        yield event
        self.csw(t, "resume", wmesg)

    def umtx_wake(self, t: Thread, event: Event, obj: int) -> None:
        self.call_ret(t, f"_umtx_op({obj:#x},0x10<UMTX_OP_WAKE_PRIVATE>,0x7fffffff,0,0)")
        self.set(event)

    def join(self, t: Thread, others: list[Thread]) -> Generator:
        """pthread_join() of each: a umtx wait on the thread's tid word until it ended."""
        for other in others:
            if not other.done.is_set:
                yield from self.umtx_wait(t, other.done, other.stack - 0x1F8)

    # ------------------------------------------------------------------ memory

    def mmap_anon(self, t: Thread, size: int, align: bool = False) -> int:
        """An anonymous mapping (MAP_ALIGNED_SUPER when align); its address."""
        p = t.proc
        if align:
            p.next_addr = -(-p.next_addr // SUPERPAGE) * SUPERPAGE
        addr, p.next_addr = p.next_addr, p.next_addr + size + PAGE * self.rng.randint(1, 16)
        flags = (
            "0x15001002<MAP_PRIVATE|MAP_ANON|MAP_ALIGNED(21)>"
            if align
            else "0x1002<MAP_PRIVATE|MAP_ANON>"
        )
        self.call_ret(
            t,
            f"mmap(0,{size:#x},0x3<PROT_READ|PROT_WRITE>,{flags},0xffffffff,0)",
            ret_value(addr),
        )
        return addr

    def munmap(self, t: Thread, addr: int, size: int) -> None:
        self.call_ret(t, f"munmap({addr:#x},{size:#x})")

    def touch_stack(self, t: Thread, pages: int) -> None:
        """A new thread's first touches of its stack, top down."""
        for i in range(pages):
            self.fault(t, t.stack - 0x100 - i * PAGE)


def simulate(
    seed: int,
    comm: str,
    cpu: int,
    cpus: tuple[int, ...],
    body: Body,
    tally: Tally | None = None,
    **ids,
) -> list[str]:
    """A workload from its first process, which existed before tracing (no creation
    record); ids: first_pid and first_tid of the processes and threads it starts. The
    simulation counts what it does into `tally` when one is given."""
    sim = Sim(seed, **ids)
    if tally is not None:
        sim.tally = tally
    root = sim.new_process(comm, cpu, cpus)
    sim.start(root, body(sim, root))
    return sim.run()
