"""What runs in the `buildworld` build (build.py): the programs make starts, the text and
bytes they read and write, and the processes and threads of the simulation."""

import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kreplay.synth.render import (
    cpu_column,
    header_prefix,
)

NCPU = 32  # cpus of the traced machine (-c column)


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
