"""The `buildworld` workload: a parallel FreeBSD build, `make -j16` under `ktrace -i`.

make, sh, cc, ld.lld, rustc and friends forking (fork and vfork), exec'ing (sh searching
PATH), creating and ending threads, mapping memory (rtld's MAP_GUARD + MAP_FIXED maps,
jemalloc's MAP_ALIGNED chunks), taking page faults and doing I/O with GIO text and hex
dumps, printed exactly as `kdump -H -T -c` prints them (render.py). Seeded: the same bytes
on every run and machine.

Two users: `kreplay synth buildworld` (run(): a build that ends, every child reaped) and
bench/ingest.py (generate(): a stream cut at a line count, as big as the bench asks).
"""

import random
import struct
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

from kreplay.synth.render import (
    HEX_WIDTH,
    Recorder,
    cpu_column,
    errno_ret,
    gio_header,
    header_prefix,
    hexdump,
    hx,
    ret_value,
    visdump,
)

NCPU = 32  # cpus of the traced machine (-c column)
JOBS = 16  # make -j: processes alive below the root make
WIND_DOWN_BUDGET = 2000  # run(): records left to each job when make stops starting jobs


@dataclass(frozen=True)
class Program:
    comm: str  # p_comm after execve: the image's base name
    path: str
    libs: tuple[str, ...]
    budget: tuple[int, int]  # records before it starts to exit
    weight: int = 0  # how often make (or sh) runs it
    workers: tuple[int, int] = (0, 0)  # worker threads it keeps
    worker_life: tuple[int, int] | None = None  # churned workers: records each lives
    worker_name: str | None = None  # thr_set_name() pattern (names may have spaces)
    quiet: bool = False  # mostly waits: picked less often


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


LIBC = "/lib/libc.so.7"
CXX_LIBS = (
    "/usr/lib/libc++.so.1",
    "/lib/libcxxrt.so.1",
    "/lib/libm.so.5",
    "/lib/libgcc_s.so.1",
    "/lib/libthr.so.3",
    LIBC,
)
MAKE = Program("make", "/usr/bin/make", (LIBC,), (10**18, 10**18), quiet=True)
SH = Program(
    "sh",
    "/bin/sh",
    ("/lib/libedit.so.8", "/lib/libncursesw.so.9", LIBC),
    (60, 300),
    weight=30,
    quiet=True,
)
COMMANDS = (
    Program("cc", "/usr/bin/cc", CXX_LIBS, (3000, 25000), weight=24),
    Program("clang-18", "/usr/local/bin/clang-18", CXX_LIBS, (3000, 25000), weight=8),
    Program("ld.lld", "/usr/bin/ld.lld", CXX_LIBS, (15000, 60000), weight=4, workers=(8, 24)),
    Program(
        "rustc",
        "/usr/local/bin/rustc",
        ("/usr/local/lib/librustc_driver-4d2c1a8b.so",) + CXX_LIBS,
        (20000, 70000),
        weight=3,
        workers=(4, 12),
        worker_life=(200, 2500),
        worker_name="opt cgu.{:02d}",
    ),
    Program(
        "python3.11",
        "/usr/local/bin/python3.11",
        ("/usr/local/lib/libpython3.11.so.1.0", "/lib/libthr.so.3", LIBC),
        (800, 6000),
        weight=3,
        workers=(0, 2),
    ),
    Program("sed", "/usr/bin/sed", (LIBC,), (80, 600), weight=8),
    Program(
        "install",
        "/usr/bin/install",
        ("/lib/libmd.so.6", "/lib/libutil.so.9", LIBC),
        (80, 400),
        weight=6,
    ),
    Program(
        "ctfconvert",
        "/usr/bin/ctfconvert",
        ("/lib/libctf.so.2", "/lib/libelf.so.2", "/lib/libz.so.6", LIBC),
        (400, 3000),
        weight=5,
    ),
    Program("awk", "/usr/bin/awk", ("/lib/libm.so.5", LIBC), (80, 500), weight=3),
    Program(
        "x86_64-unknown-freebsd14.1-gcc13",  # longer than MAXCOMLEN: cut at 19
        "/usr/local/bin/x86_64-unknown-freebsd14.1-gcc13",
        ("/lib/libm.so.5", LIBC),
        (500, 4000),
        weight=1,
    ),
)
PATH_DIRS = ("/sbin", "/bin", "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")

SOURCES = words(
    "kern/kern_fork.c kern/kern_thr.c kern/kern_exit.c kern/subr_vmem.c vm/vm_page.c "
    "vm/vm_phys.c vm/vm_reserv.c vm/vm_glue.c vm/vm_map.c vm/vm_fault.c amd64/amd64/pmap.c "
    "kern/kern_ktrace.c kern/vfs_bio.c"
)
HEADERS = words(
    "sys/param.h sys/systm.h sys/types.h sys/proc.h sys/lock.h sys/mutex.h sys/ktrace.h vm/vm.h "
    "vm/vm_page.h vm/vm_param.h machine/atomic.h machine/cpu.h stdio.h stdlib.h string.h unistd.h"
)
INCLUDE_OK = "/usr/obj/usr/src/amd64.amd64/tmp/usr/include"
INCLUDE_MISS = words(
    "/usr/include/c++/v1 /usr/src/sys/contrib/ck/include . ../../include "
    "/usr/local/llvm18/lib/clang/18/include"
)

TEXT_LINES = (
    *(
        f"cc -target x86_64-unknown-freebsd14.1 -O2 -pipe -fno-strict-aliasing -Werror -D_KERNEL "
        f"-nostdinc -I. -I/usr/src/sys -c /usr/src/sys/{s} -o {s.rsplit('/', 1)[1][:-2]}.o"
        for s in SOURCES
    ),
    *(
        f"/usr/src/sys/{s}:{100 + 37 * i}:9: warning: unused variable 'td' [-Wunused-variable]"
        for i, s in enumerate(SOURCES)
    ),
    *(f'#include "{h}"' for h in HEADERS),
    "===> lib/libc (all)",
    "===> sys/modules/zfs (all)",
    "--- all_subdir_lib ---",
    "static int",
    "vm_page_alloc_noobj_domain(int domain, int req)",
    "{",
    "}",
    "\tif (m == NULL)",
    "\t\treturn (ENOMEM);",
    "ctfconvert -L VERSION -g kern_fork.o",
    "install -C -o root -g wheel -m 444 libc.a /usr/lib",
)


def elf_header(rng: random.Random) -> bytes:
    """The 64 bytes rtld and the linkers read first from a shared object."""
    return (
        b"\x7fELF\x02\x01\x01\x09"
        + bytes(8)
        + struct.pack(
            "<HHIQQQIHHHHHH",
            3,
            0x3E,
            1,
            rng.randrange(0x10000, 0x80000),
            64,
            rng.randrange(0x100000, 0x800000),
            0,
            64,
            56,
            9,
            64,
            30,
            29,
        )
    )


@dataclass(eq=False)
class Proc:
    pid: int
    program: Program
    parent: "Thread | None"
    budget: int
    want_workers: int = 0
    threads: list["Thread"] = field(default_factory=list)
    live_children: int = 0
    started: bool = False  # sh: has started its one command
    closing: bool = False  # workers are told to exit
    next_addr: int = 0
    regions: list[tuple[int, int]] = field(default_factory=list)
    fds: int = 3


@dataclass(eq=False)
class Thread:
    proc: Proc
    tid: int
    comm: str
    cpu: str  # `%3d ` already rendered
    is_main: bool = False
    prefix: str = ""
    queue: deque[Callable[[], None]] = field(default_factory=deque)
    blocked: bool = False  # waiting for a child: not picked until woken
    life: int | None = None  # records left for a churned worker
    stack: int = 0x7FFF_FFFF_D000

    def rename(self, comm: str) -> None:
        self.comm = comm
        self.prefix = header_prefix(self.proc.pid, self.tid, comm)


def random_cpu(rng: random.Random) -> str:
    return cpu_column(rng.randrange(NCPU))


class TraceGenerator:
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

    def call(self, t: Thread, body: str) -> None:
        self.emit(t, "CALL", body)

    def ret(self, t: Thread, name: str, result: str) -> None:
        self.emit(t, "RET ", f"{name} {result}")

    def nami(self, t: Thread, path: str) -> None:
        self.emit(t, "NAMI", f'"{path}"')

    def gio(self, t: Thread, fd: int, direction: str, data: str | bytes) -> None:
        self.emit(t, "GIO ", gio_header(fd, direction, len(data)))
        self.rec.out += hexdump(data) if isinstance(data, bytes) else visdump(data)

    def call_ret(self, t: Thread, body: str, result: str) -> None:
        self.call(t, body)
        self.ret(t, body.split("(", 1)[0], result)

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

    # -------------------------------------------------------------- memory

    def region(self, p: Proc) -> tuple[int, int]:
        if not p.regions:
            return self.new_region(p, 0x20_0000)
        return p.regions[int(self.rand() * len(p.regions))]

    def new_region(self, p: Proc, size: int) -> tuple[int, int]:
        addr = p.next_addr
        p.next_addr += size + 0x1000 * self.rng.randint(0, 16)
        p.regions.append((addr, size))
        if len(p.regions) > 48:
            del p.regions[0]
        return addr, size

    def fault(self, t: Thread) -> None:
        for _ in range(1 if self.rand() < 0.8 else self.rng.randint(2, 4)):
            addr, size = self.region(t.proc)
            prot = (
                "0x2<VM_PROT_WRITE>"
                if self.rand() < 0.6
                else "0x1<VM_PROT_READ>"
                if self.rand() < 0.85
                else "0x4<VM_PROT_EXECUTE>"
            )
            self.emit(t, "PFLT", f"{addr + int(self.rand() * size):#x} {prot}")
            self.emit(t, "PRET", "KERN_SUCCESS")

    def mmap_anon(self, t: Thread, size: int) -> None:
        addr, _ = self.new_region(t.proc, size)
        body = f"mmap(0,{hx(size)},0x3<PROT_READ|PROT_WRITE>,0x1002<MAP_PRIVATE|MAP_ANON>"
        self.call_ret(t, body + ",0xffffffff,0)", ret_value(addr))

    def mmap(self, t: Thread) -> None:
        if self.rand() < 0.5:
            self.mmap_anon(t, 0x1000 * self.rng.choice((1, 2, 4, 16, 64)))
            return
        body = (
            "mmap(0,0x200000,0x3<PROT_READ|PROT_WRITE>,"
            "0x15001002<MAP_PRIVATE|MAP_ANON|MAP_ALIGNED(21)>,0xffffffff,0)"
        )
        if self.rand() < 0.005:
            self.call_ret(t, body, errno_ret(12))
            return
        t.proc.next_addr = (t.proc.next_addr + 0x1F_FFFF) & ~0x1F_FFFF
        addr, _ = self.new_region(t.proc, 0x20_0000)
        self.call_ret(t, body, ret_value(addr))

    def map_object(self, t: Thread) -> None:
        """rtld: read the ELF header, reserve with MAP_GUARD, map each segment MAP_FIXED."""
        p = t.proc
        fd = hx(p.fds)  # the object open_file() just opened
        self.call(t, f"pread({fd},{t.stack - 0x1300:#x},0x1000,0)")
        self.ret(t, "pread", "4096/0x1000")
        size = 0x1000 * self.rng.randint(64, 2048)
        base = (p.next_addr + 0xFFFF) & ~0xFFFF
        p.next_addr = base
        self.call_ret(
            t, f"mmap(0,{size:#x},0<PROT_NONE>,0x2000<MAP_GUARD>,0xffffffff,0)", ret_value(base)
        )
        off = 0
        for prot in ("0x1<PROT_READ>", "0x5<PROT_READ|PROT_EXEC>", "0x3<PROT_READ|PROT_WRITE>"):
            seg = (size // 3) & ~0xFFF
            self.call_ret(
                t,
                f"mmap({base + off:#x},{seg:#x},{prot},"
                f"0x40012<MAP_PRIVATE|MAP_FIXED|MAP_PREFAULT_READ>,{fd},{hx(off)})",
                ret_value(base + off),
            )
            off += seg
        self.new_region(p, size)
        self.call_ret(t, f"close({fd})", "0")
        self.fault(t)

    def munmap(self, t: Thread) -> None:
        addr, size = self.region(t.proc)
        self.call_ret(t, f"munmap({addr:#x},{size:#x})", "0")

    def madvise(self, t: Thread) -> None:
        addr, size = self.region(t.proc)
        self.call_ret(t, f"madvise({addr:#x},{size:#x},MADV_FREE)", "0")

    def mprotect(self, t: Thread) -> None:
        addr, _ = self.region(t.proc)
        self.call_ret(t, f"mprotect({addr:#x},0x1000,0x1<PROT_READ>)", "0")

    # -------------------------------------------------------------- files

    def open_file(self, t: Thread, path: str, errno: int | None) -> None:
        p = t.proc
        name = "open" if self.rand() < 0.2 else "openat"
        at = "AT_FDCWD," if name == "openat" else ""
        self.call(t, f"{name}({at}{p.next_addr + 0x3A0:#x},0x100000<O_RDONLY|O_CLOEXEC>)")
        self.nami(t, path)
        if errno is not None:
            self.ret(t, name, errno_ret(errno))
            return
        p.fds = 3 + (p.fds - 2) % 12
        self.ret(t, name, ret_value(p.fds))
        self.call_ret(t, f"fstat({hx(p.fds)},{t.stack - 0x1A0:#x})", "0")

    def open(self, t: Thread) -> None:
        r = self.rand()
        header = HEADERS[int(self.rand() * len(HEADERS))]
        if r < 0.35:
            miss = INCLUDE_MISS[int(self.rand() * len(INCLUDE_MISS))]
            self.open_file(t, f"{miss}/{header}", 2)
        elif r < 0.9:
            self.open_file(t, f"{INCLUDE_OK}/{header}", None)
        else:
            p = t.proc
            p.fds = 3 + (p.fds - 2) % 12
            self.call(
                t,
                f"openat(AT_FDCWD,{t.stack - 0x640:#x},"
                "0x100601<O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC>,"
                "0644<S_IRUSR|S_IWUSR|S_IRGRP|S_IROTH>)",
            )
            self.nami(t, SOURCES[int(self.rand() * len(SOURCES))].rsplit("/", 1)[1][:-2] + ".o")
            self.ret(t, "openat", ret_value(p.fds))

    def close(self, t: Thread) -> None:
        fd = self.rng.randint(3, 14)
        self.call_ret(t, f"close({hx(fd)})", "0" if self.rand() < 0.97 else errno_ret(9))

    def stat(self, t: Thread) -> None:
        header = HEADERS[int(self.rand() * len(HEADERS))]
        if self.rand() < 0.15:
            self.call(t, f"readlink({t.stack - 0x4C0:#x},{t.stack - 0x8C0:#x},0x400)")
            self.nami(t, "/etc/malloc.conf")
            self.ret(t, "readlink", errno_ret(2))
            return
        self.call(t, f"fstatat(AT_FDCWD,{t.stack - 0x5E8:#x},{t.stack - 0x6B0:#x},0)")
        if self.rand() < 0.4:
            self.nami(t, f"{INCLUDE_MISS[int(self.rand() * len(INCLUDE_MISS))]}/{header}")
            self.ret(t, "fstatat", errno_ret(2))
        else:
            self.nami(t, f"{INCLUDE_OK}/{header}")
            self.ret(t, "fstatat", "0")

    def fstat(self, t: Thread) -> None:
        self.call_ret(t, f"fstat({hx(self.rng.randint(0, 9))},{t.stack - 0x1A0:#x})", "0")

    def read(self, t: Thread) -> None:
        fd = self.rng.randint(3, 14)
        buf = self.region(t.proc)[0]
        r = self.rand()
        if r < 0.002:  # rtld and the linkers read ELF headers
            self.call(t, f"read({hx(fd)},{t.stack - 0x2F0:#x},0x40)")
            self.gio(t, fd, "read", elf_header(self.rng))
            self.ret(t, "read", "64/0x40")
            return
        if r < 0.03:
            text = "\n".join(self.text_lines(self.rng.randint(1, 8))) + "\n"
            self.call(t, f"read({hx(fd)},{buf:#x},0x1000)")
            self.gio(t, fd, "read", text)
            self.ret(t, "read", ret_value(len(text)))
            return
        size = self.rng.choice((0x1000, 0x4000, 0x10000, 0x80))
        n = size if self.rand() < 0.8 else int(self.rand() * size)
        self.call(t, f"read({hx(fd)},{buf:#x},{size:#x})")
        if self.rand() < 0.1:
            self.fault(t)
        if self.rand() < 0.1:  # a pipe: the RET comes later
            t.queue.append(partial(self.ret, t, "read", ret_value(n)))
        else:
            self.ret(t, "read", ret_value(n))

    def write(self, t: Thread) -> None:
        r = self.rand()
        if r < 0.25:
            fd = 1 if self.rand() < 0.8 else 2
            text = "\n".join(self.text_lines(self.rng.randint(1, 3)))
            text += "\n" if self.rand() < 0.9 else ""
            self.call(t, f"write({hx(fd)},{t.proc.next_addr + 0x1C40:#x},{hx(len(text))})")
            self.gio(t, fd, "wrote", text)
            self.ret(t, "write", ret_value(len(text)))
        elif r < 0.27:  # object file bytes: a hex dump
            data = self.rng.randbytes(HEX_WIDTH * self.rng.randint(1, 8))
            self.call(t, f"write(0x5,{t.proc.next_addr + 0x8000:#x},{hx(len(data))})")
            self.gio(t, 5, "wrote", data)
            self.ret(t, "write", ret_value(len(data)))
        else:
            size = self.rng.choice((0x1000, 0x10000, 0x2A, 0x200))
            self.call_ret(t, f"write(0x5,{self.region(t.proc)[0]:#x},{size:#x})", ret_value(size))

    def text_lines(self, n: int) -> list[str]:
        return [TEXT_LINES[int(self.rand() * len(TEXT_LINES))] for _ in range(n)]

    # -------------------------------------------------------------- sync, signals, misc

    def umtx(self, t: Thread) -> None:
        obj = self.region(t.proc)[0] + 0x8 * self.rng.randint(0, 512)
        r = self.rand()
        if r < 0.45:
            op = (
                "0x10<UMTX_OP_WAKE_PRIVATE>,0x1"
                if self.rand() < 0.7
                else "0x16<UMTX_OP_MUTEX_WAKE2>,0"
            )
            self.call_ret(t, f"_umtx_op({obj:#x},{op},0,0)", "0")
            return
        if r < 0.6:
            self.call(
                t, f"_umtx_op({obj:#x},0xf<UMTX_OP_WAIT_UINT_PRIVATE>,0,0x18,{t.stack - 0x170:#x})"
            )
            t.queue.append(partial(self.ret, t, "_umtx_op", errno_ret(60)))
            return
        op = "0xf<UMTX_OP_WAIT_UINT_PRIVATE>" if r < 0.9 else "0x11<UMTX_OP_MUTEX_WAIT>"
        body = f"_umtx_op({obj:#x},{op},0,0,0)"
        self.call(t, body)
        if self.rand() < 0.02:  # a signal interrupted the wait: RESTART, call again
            t.queue.append(partial(self.ret, t, "_umtx_op", "RESTART"))
            t.queue.append(partial(self.call, t, body))
        t.queue.append(partial(self.ret, t, "_umtx_op", "0"))

    def sigprocmask(self, t: Thread) -> None:
        self.call_ret(t, f"sigprocmask(SIG_BLOCK,{t.proc.next_addr + 0x2A0:#x},{t.stack:#x})", "0")
        self.call_ret(t, f"sigprocmask(SIG_SETMASK,{t.stack:#x},0)", "0")

    def misc(self, t: Thread) -> None:
        s, fd = t.stack, hx(self.rng.randint(3, 9))
        choices = (
            (f"lseek({fd},0,SEEK_SET)", "0"),
            (f"lseek({fd},0x8000,SEEK_SET)", "32768/0x8000"),
            (f"ioctl(0x1,TIOCGETA,{s - 0x3C8:#x})", errno_ret(25)),
            ("getpid", ret_value(t.proc.pid)),
            (f"getrandom({s - 0x48:#x},0x28,0)", "40/0x28"),
            (f"thr_self({s - 0x18:#x})", "0"),
            (f"sigaction(SIGINT,{s - 0x210:#x},{s - 0x230:#x})", "0"),
            (f"__getcwd({t.proc.next_addr + 0x5000:#x},0x400)", "0"),
            (f"fcntl({fd},F_GETFL)", "2"),
            (
                f"getdirentries({fd},{t.proc.next_addr + 0x9000:#x},0x1000,{s - 0x88:#x})",
                "1024/0x400",
            ),
            (f"clock_gettime(CLOCK_MONOTONIC,{s - 0x60:#x})", "0"),
            (f"pipe2({s - 0x2C:#x},0x100000<O_CLOEXEC>)", "0"),
        )
        body, result = choices[int(self.rand() * len(choices))]
        self.call_ret(t, body, result)
