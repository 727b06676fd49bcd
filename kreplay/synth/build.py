"""The `buildworld` workload: a parallel FreeBSD build, `make -j16` under `ktrace -i`.

make, sh, cc, ld.lld, rustc and friends forking (fork and vfork), exec'ing (sh searching
PATH), creating and ending threads, mapping memory (rtld's MAP_GUARD + MAP_FIXED maps,
jemalloc's MAP_ALIGNED chunks), taking page faults and doing I/O with GIO text and hex
dumps, printed exactly as `kdump -H -T -c` prints them (render.py). Seeded: the same bytes
on every run and machine.

This module is the simulation (processes, lifecycle, records); build_programs.py holds what
the build runs, build_episodes.py what a program does between lifecycle events.

Two users: `kreplay synth buildworld` (run(): a build that ends, every child reaped) and
bench/ingest.py (generate(): a stream cut at a line count, as big as the bench asks).
"""

import random
from collections.abc import Callable, Iterator
from functools import partial

from kreplay.synth.build_episodes import Episodes
from kreplay.synth.build_programs import (
    COMMANDS,
    MAKE,
    PATH_DIRS,
    SH,
    Proc,
    Program,
    Thread,
    random_cpu,
)
from kreplay.synth.render import (
    Recorder,
    Records,
    errno_ret,
    gio_header,
    hexdump,
    hx,
    ret_value,
    visdump,
)

JOBS = 16  # make -j: processes alive below the root make
WIND_DOWN_BUDGET = 2000  # run(): records left to each job when make stops starting jobs


class TraceGenerator(Episodes, Records):
    """A seeded simulation of a traced build; yields the kdump lines in chunks."""

    def __init__(self, seed: int, job_divisor: int = 1):
        """job_divisor: jobs run 1/job_divisor of their records (more, shorter jobs)."""
        self.rng = random.Random(seed)
        self.rand = self.rng.random
        self.rec = Recorder(self.rng)
        self.winding_down = False  # run(): make starts no more jobs
        self.job_divisor = job_divisor
        self.threads: list[Thread] = []
        self.live = 0  # processes below the root make
        self.next_pid = 41_207
        self.next_tid = 100_163
        self.root = self.new_process(MAKE, None, "make")
        self.root.started = True
        main_table = (
            (24, self.fault),
            (12, self.read),
            (5, self.write),
            (9, self.open),
            (7, self.close),
            (5, self.stat),
            (3, self.fstat),
            (6, self.mmap),
            (3, self.munmap),
            (2, self.madvise),
            (2, self.mprotect),
            (6, self.umtx),
            (5, self.sigprocmask),
            (6, self.misc),
        )
        worker_table = (
            (20, self.fault),
            (6, self.read),
            (2, self.write),
            (3, self.open),
            (3, self.close),
            (4, self.mmap),
            (2, self.madvise),
            (20, self.umtx),
            (3, self.sigprocmask),
            (3, self.misc),
        )
        self.main_episodes = [f for weight, f in main_table for _ in range(weight)]
        self.worker_episodes = [f for weight, f in worker_table for _ in range(weight)]

    # -------------------------------------------------------------- driving

    def generate(self, n_lines: int, chunk_lines: int) -> Iterator[list[str]]:
        """The first n_lines of an endless build, in chunks of about chunk_lines (the
        last records may be cut off: a recording stopped mid-build)."""
        written = 0
        while written < n_lines:
            while len(self.rec.out) < chunk_lines:
                self.step()
            chunk, self.rec.out = self.rec.out[: n_lines - written], []
            written += len(chunk)
            yield chunk

    def run(self, n_lines: int) -> list[str]:
        """A whole build of about n_lines: make stops starting jobs after n_lines, every
        job runs to its end and is reaped, then make exits; nothing is left pending."""
        while len(self.rec.out) < n_lines:
            self.step()
        self.winding_down = True
        for t in self.threads:  # the last jobs are short: a bounded tail
            t.proc.budget = min(t.proc.budget, WIND_DOWN_BUDGET)
        root = self.root.threads[0]
        while len(self.threads) > 1 or root.queue or root.blocked:
            self.step()
        self.call(root, "exit(0)")
        return self.rec.out

    def step(self) -> None:
        t = self.pick()
        if t.queue:
            t.queue.popleft()()
        elif not self.lifecycle(t):
            table = self.main_episodes if t.is_main else self.worker_episodes
            table[int(self.rand() * len(table))](t)
        if self.rand() < 0.02:
            t.cpu = random_cpu(self.rng)

    def pick(self) -> Thread:
        threads, rand = self.threads, self.rand
        while True:
            t = threads[int(rand() * len(threads))]
            if t.blocked:
                continue
            if t.proc.program.quiet and rand() < 0.8:
                continue
            return t

    def lifecycle(self, t: Thread) -> bool:
        """Forks, execs, thread creation and exits; True when it emitted something."""
        p = t.proc
        if not t.is_main:
            if t.life is not None:
                t.life -= 1
            if p.closing or (t.life is not None and t.life <= 0):
                self.thr_exit(t)
                return True
            return False
        if p.program is MAKE:
            if self.live < JOBS and not self.winding_down and self.rand() < 0.3:
                program = SH if self.rand() < 0.6 else self.command()
                self.spawn(t, program, vfork=self.rand() < 0.5)
                return True
            return False
        if p.program is SH and not p.started and p.budget < 40:
            p.started = True
            self.spawn(t, self.command(), vfork=False)
            t.queue.append(partial(self.wait_for_child, t))
            return True
        if p.budget <= 0 and not p.live_children:
            if len(p.threads) == 1:
                self.exit_process(t)
                return True
            p.closing = True
            return False
        if not p.closing and len(p.threads) <= p.want_workers and self.rand() < 0.2:
            self.thr_new(t)
            return True
        return False

    def budget(self, program: Program) -> int:
        return self.rng.randint(*program.budget) // self.job_divisor

    def command(self) -> Program:
        return self.rng.choices(COMMANDS, [c.weight for c in COMMANDS])[0]

    # -------------------------------------------------------------- records

    def emit(self, t: Thread, tag: str, body: str) -> None:
        self.rec.record(t.prefix, t.cpu, tag, body)
        t.proc.budget -= 1

    def nami(self, t: Thread, path: str) -> None:
        self.emit(t, "NAMI", f'"{path}"')

    def gio(self, t: Thread, fd: int, direction: str, data: str | bytes) -> None:
        self.emit(t, "GIO ", gio_header(fd, direction, len(data)))
        self.rec.out += hexdump(data) if isinstance(data, bytes) else visdump(data)

    # -------------------------------------------------------------- processes and threads

    def new_process(self, program: Program, parent: Thread | None, comm: str) -> Proc:
        self.next_pid += 1 if self.rand() < 0.9 else self.rng.randint(2, 5)
        p = Proc(self.next_pid, program, parent, budget=self.budget(program))
        p.next_addr = 0x8_2000_0000 + self.rng.randrange(0x100) * 0x10_0000
        self.new_thread(p, comm)
        return p

    def new_thread(self, p: Proc, comm: str) -> Thread:
        self.next_tid += 1 if self.rand() < 0.8 else self.rng.randint(2, 9)
        t = Thread(p, self.next_tid, comm, random_cpu(self.rng), is_main=not p.threads)
        t.rename(comm)
        if p.threads:
            t.stack = 0x7FFF_DFBF_E000 - 0x20_0000 * len(p.threads) - 0x1000
        p.threads.append(t)
        self.threads.append(t)
        return t

    def remove_thread(self, t: Thread) -> None:
        t.proc.threads.remove(t)
        self.threads.remove(t)

    def spawn(self, t: Thread, program: Program, *, vfork: bool) -> None:
        """fork/vfork: the child's first record is `RET fork 0` under its own pid."""
        child = self.new_process(t.proc.program, t, t.comm)
        t.proc.live_children += 1
        self.live += 1
        c = child.threads[0]
        self.call(t, "vfork" if vfork else "fork")
        c.queue.append(partial(self.ret, c, "fork", 0))
        c.queue.append(partial(self.call_ret, c, f"sigprocmask(SIG_SETMASK,{c.stack:#x},0)", "0"))
        if t.proc.program is MAKE:
            c.queue.append(
                partial(self.call_ret, c, f"dup2({hx(self.rng.randint(3, 9))},0x1)", "1")
            )
        c.queue.append(partial(self.execve, c, program, t if vfork else None))
        if vfork:
            t.blocked = True  # the parent sleeps until the child execs
        else:
            t.queue.append(partial(self.ret, t, "fork", ret_value(child.pid)))

    def execve(self, t: Thread, program: Program, vfork_parent: Thread | None) -> None:
        args = ",".join(f"{0x8_21E0_C2A8 + 0x18 * i:#x}" for i in range(3))
        if t.proc.program is SH:  # sh searches PATH
            for d in PATH_DIRS[: PATH_DIRS.index(program.path.rsplit("/", 1)[0])]:
                self.call(t, f"execve({args})")
                self.nami(t, f"{d}/{program.comm}")
                self.ret(t, "execve", errno_ret(2))
        self.call(t, f"execve({args})")
        self.nami(t, program.path)
        self.nami(t, "/libexec/ld-elf.so.1")
        p = t.proc
        p.program, p.budget = program, self.budget(program)
        p.want_workers = self.rng.randint(*program.workers)
        p.regions.clear()
        t.rename(program.comm)  # the RET already carries the new name
        self.ret(t, "execve", "JUSTRETURN")
        if vfork_parent is not None:
            vfork_parent.queue.append(partial(self.ret, vfork_parent, "vfork", ret_value(p.pid)))
            vfork_parent.blocked = False
        t.queue.extend(self.rtld_startup(t, program))

    def rtld_startup(self, t: Thread, program: Program) -> list[Callable[[], None]]:
        steps: list[Callable[[], None]] = [
            partial(self.mmap_anon, t, 0x21000),
            partial(self.call_ret, t, "issetugid", "0"),
            partial(self.open_file, t, "/etc/libmap.conf", 2),
            partial(self.open_file, t, "/var/run/ld-elf.so.hints", None),
        ]
        for lib in program.libs:
            steps += [partial(self.open_file, t, lib, None), partial(self.map_object, t)]
        steps += [
            partial(self.call_ret, t, f"sigfastblock(0x1,{t.stack + 0x7C:#x})", "0"),
            partial(self.sigprocmask, t),
        ]
        return steps

    def wait_for_child(self, t: Thread) -> None:
        self.call(t, f"wait4(-1,{t.stack - 0x2C4:#x},0x2<WUNTRACED>,0)")
        t.blocked = t.proc.live_children > 0

    def exit_process(self, t: Thread) -> None:
        p = t.proc
        self.call(t, "exit(0)" if self.rand() < 0.98 else "exit(0x1)")
        self.remove_thread(t)
        self.live -= 1
        parent = p.parent
        if parent is None or parent not in parent.proc.threads:
            return
        parent.proc.live_children -= 1
        if parent.proc.program is SH:
            parent.queue.append(partial(self.ret, parent, "wait4", ret_value(p.pid)))
            parent.blocked = False
        else:
            parent.queue.append(
                partial(
                    self.call_ret,
                    parent,
                    f"wait4(-1,{parent.stack - 0x33C:#x},0x1<WNOHANG>,0)",
                    ret_value(p.pid),
                )
            )

    def thr_new(self, t: Thread) -> None:
        """libthr's pthread_create: stack, signals blocked around thr_new, new tid's
        first record `RET fork 0`."""
        p = t.proc
        if self.rand() < 0.5:
            stack = 0x7FFF_DFC0_0000 - 0x20_0000 * len(p.threads)
            self.call_ret(
                t,
                f"mmap({stack:#x},0x200000,0x3<PROT_READ|PROT_WRITE>,"
                "0x400<MAP_STACK>,0xffffffff,0)",
                ret_value(stack),
            )
        self.call_ret(t, f"sigprocmask(SIG_SETMASK,{p.next_addr + 0x2A0:#x},{t.stack:#x})", "0")
        self.call(t, f"thr_new({t.stack - 0x1058:#x},0x68)")
        w = self.new_thread(p, t.comm)
        if p.program.worker_life is not None:
            w.life = self.rng.randint(*p.program.worker_life)
        w.queue.append(partial(self.ret, w, "fork", 0))
        w.queue.append(partial(self.call_ret, w, f"sigprocmask(SIG_SETMASK,{w.stack:#x},0)", "0"))
        t.queue.append(partial(self.ret, t, "thr_new", "0"))
        t.queue.append(partial(self.call_ret, t, f"sigprocmask(SIG_SETMASK,{t.stack:#x},0)", "0"))
        if p.program.worker_name:
            name = p.program.worker_name.format(len(p.threads) - 2)
            t.queue.append(partial(self.thr_set_name, t, w, name))

    def thr_set_name(self, t: Thread, w: Thread, name: str) -> None:
        if w not in t.proc.threads:
            return
        self.call(t, f"thr_set_name({w.tid:#x},{t.stack - 0x98:#x})")
        w.rename(name)
        self.ret(t, "thr_set_name", "0")

    def thr_exit(self, t: Thread) -> None:
        self.call(t, f"thr_exit({t.stack - 0x1F8:#x})" if self.rand() < 0.7 else "thr_exit(0)")
        self.remove_thread(t)
