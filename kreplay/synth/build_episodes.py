"""What a running program of the `buildworld` build does between lifecycle events: page
faults, mappings, file and pipe I/O (with GIO dumps), umtx waits, signals. A mixin of
build.TraceGenerator, which provides the records (emit, call, ret, call_ret, nami, gio)
and the seeded generator (rng, rand)."""

from functools import partial

from kreplay.synth.build_programs import (
    HEADERS,
    INCLUDE_MISS,
    INCLUDE_OK,
    SOURCES,
    TEXT_LINES,
    Proc,
    Thread,
    elf_header,
)
from kreplay.synth.render import (
    HEX_WIDTH,
    errno_ret,
    hx,
    ret_value,
)


class Episodes:
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
