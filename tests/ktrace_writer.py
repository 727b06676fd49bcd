"""Binary ktrace.out fixtures, and the kdump text of the same records.

Written from spec/kdump-format.md alone, not from kreplay's reader: `Record.to_bytes`
packs the record as the kernel writes it (§2.2 headers, §2.4 payloads; amd64 or i386),
and `Record.to_kdump` prints it as `kdump -H -T -c -n -S -s` does (§1.1, §1.3: tid,
absolute time, cpu, numeric arguments, syscall numbers, no GIO data lines). Tests ingest
both and compare the events; bench/ktrace.py builds its large file with `random_records`.
"""

import random
from dataclasses import dataclass, replace

ABIS = ("amd64", "i386")
WORD = {"amd64": 8, "i386": 4}

# sizeof ("S") and offsetof ("S.f") of the structs this writer packs, (amd64, i386): literal
# numbers, each checked against what the machine's C compiler gives for the structs of
# sys/sys/ktrace.h (tests/test_ktrace_layout.py), never taken from kreplay's reader.
LAYOUT = {
    "ktr_header_v0": (56, 44),
    "ktr_header_v0.ktr_time": (32, 32),
    "ktr_header_v0.ktr_tid": (48, 40),
    "ktr_header": (64, 48),
    "ktr_header.ktr_time": (32, 32),
    "ktr_header.ktr_tid": (48, 40),
    "ktr_header.ktr_cpu": (56, 44),
    "timeval.tv_usec": (8, 4),
    "timespec.tv_nsec": (8, 4),
    "ktr_syscall.ktr_narg": (2, 2),
    "ktr_syscall.ktr_args": (8, 4),
    "ktr_sysret": (16, 12),
    "ktr_sysret.ktr_eosys": (2, 2),
    "ktr_sysret.ktr_error": (4, 4),
    "ktr_sysret.ktr_retval": (8, 8),
    "ktr_genio": (8, 8),
    "ktr_genio.ktr_rw": (4, 4),
    "ktr_psig": (40, 28),
    "ktr_psig.action": (8, 4),
    "ktr_psig.code": (16, 8),
    "ktr_psig.mask": (20, 12),
    "ktr_csw_old": (8, 8),
    "ktr_csw.user": (4, 4),
    "ktr_csw.wmesg": (8, 8),
    "ktr_proc_ctor": (4, 4),
    "ktr_cap_fail_old": (40, 36),
    "ktr_cap_fail": (1040, 1036),
    "ktr_cap_fail.cap_code": (4, 4),
    "ktr_cap_fail.cap_svflags": (8, 8),
    "ktr_fault": (16, 8),
    "ktr_fault.type": (8, 4),
    "ktr_faultend": (4, 4),
    "ktr_struct_array": (8, 4),
    "utrace_malloc": (24, 12),
    "utrace_malloc.s": (8, 4),
    "utrace_malloc.r": (16, 8),
    "uexterror": (200, 200),
    "uexterror.error": (4, 4),
    "uexterror.cat": (8, 8),
    "uexterror.src_line": (12, 12),
    "uexterror.p1": (24, 24),
    "uexterror.p2": (32, 32),
    "uexterror.msg": (72, 72),
}


def at(abi: str, name: str) -> int:
    return LAYOUT[name][ABIS.index(abi)]


def _pack(abi: str, size: str | int, *fields: tuple[str | int, int, int, bool]) -> bytes:
    """A struct of `size` (a LAYOUT name, or bytes) of zero bytes with each (offset, width,
    value, signed) field stored little-endian; an offset is a LAYOUT name or a number."""
    out = bytearray(at(abi, size) if isinstance(size, str) else size)
    for where, width, value, signed in fields:
        offset = at(abi, where) if isinstance(where, str) else where
        out[offset : offset + width] = value.to_bytes(width, "little", signed=signed)
    return bytes(out)


(SYSCALL, SYSRET, NAMEI, GENIO, PSIG, CSW, USER, STRUCT, SYSCTL, PROCCTOR, PROCDTOR,
 CAPFAIL, FAULT, FAULTEND, STRUCT_ARRAY, ARGS, ENVS, EXTERR) = range(1, 19)  # fmt: skip
TAGS = {SYSCALL: "CALL", SYSRET: "RET ", NAMEI: "NAMI", GENIO: "GIO ", PSIG: "PSIG",
        CSW: "CSW ", USER: "USER", STRUCT: "STRU", SYSCTL: "SCTL", CAPFAIL: "CAP ",
        FAULT: "PFLT", FAULTEND: "PRET", STRUCT_ARRAY: "STRU", ARGS: "ARGS", ENVS: "ENVS",
        EXTERR: "EERR"}  # fmt: skip
# The few names the fixtures use (syscalls.master, sys/signal.h, vm_param.h).
SYSCALLS = {1: "exit", 2: "fork", 3: "read", 4: "write", 5: "open", 6: "close", 7: "wait4",
            20: "getpid", 59: "execve", 73: "munmap", 202: "__sysctl", 431: "thr_exit",
            454: "_umtx_op", 455: "thr_new", 477: "mmap", 532: "wait6"}  # fmt: skip
SIGNALS = {2: "SIGINT", 11: "SIGSEGV", 15: "SIGTERM", 20: "SIGCHLD", 30: "SIGUSR1"}
SIGCODES = {0x10001: "SI_USER", (11, 1): "SEGV_MAPERR", (11, 2): "SEGV_ACCERR"}
KERN = ("KERN_SUCCESS", "KERN_INVALID_ADDRESS", "KERN_PROTECTION_FAILURE", "KERN_NO_SPACE",
        "KERN_INVALID_ARGUMENT", "KERN_FAILURE", "KERN_RESOURCE_SHORTAGE", "KERN_NOT_RECEIVER",
        "KERN_NO_ACCESS", "KERN_OUT_OF_BOUNDS", "KERN_RESTART")  # fmt: skip


@dataclass(frozen=True)
class Record:
    rtype: int
    payload: bytes
    body: str | None  # the kdump text body; None for records kdump does not print
    pid: int = 1234
    tid: int = 100100
    comm: bytes = b"make"
    sec: int = 1_700_000_000
    frac: int = 0  # ns in a v1 header, us in a v0 header
    cpu: int = 0
    version: int = 1
    dropped: bool = False

    def header(self, abi: str) -> bytes:
        """struct ktr_header (v1: timespec, tid, cpu) or struct ktr_header_v0 (timeval,
        tid); len, type, version, pid and comm are at 0, 4, 6, 8, 12 in both ABIs."""
        rtype = self.rtype | (0x8000 if self.dropped else 0) | (0x4000 if self.version else 0)
        w, hdr = WORD[abi], "ktr_header" if self.version else "ktr_header_v0"
        frac = "timespec.tv_nsec" if self.version else "timeval.tv_usec"
        fields = [
            (0, 4, len(self.payload), True),
            (4, 2, rtype, False),
            (6, 2, self.version, False),
            (8, 4, self.pid, True),
            (f"{hdr}.ktr_time", w, self.sec, True),
            (at(abi, f"{hdr}.ktr_time") + at(abi, frac), w, self.frac, True),
            (f"{hdr}.ktr_tid", w, self.tid, True),
        ]
        if self.version:
            fields.append(("ktr_header.ktr_cpu", 4, self.cpu, True))
        comm = self.comm.ljust(20, b"\0")[:20]  # char ktr_comm[MAXCOMLEN + 1]
        return _pack(abi, hdr, *fields, (12, 20, int.from_bytes(comm, "little"), False))

    def to_bytes(self, abi: str = "amd64") -> bytes:
        return self.header(abi) + self.payload

    def to_kdump(self) -> str:
        """kdump -H -T -c -n -S -s: the lines this record prints (none for PCTR/PDTR)."""
        comm = self.comm.split(b"\0")[0].decode("utf-8", "replace")
        lines = []
        if self.dropped:
            lines.append(f"{self.pid:6d} {self.tid:6d} {comm:<8.19} Events dropped.")
        if self.body is not None:
            ts = f"{self.sec}.{self.frac:09d}" if self.version else f"{self.sec}.{self.frac:06d}"
            cpu = f"{self.cpu:3d} " if self.version else ""
            prefix = f"{self.pid:6d} {self.tid:6d} {comm:<8.19} {ts} {cpu}"
            lines.append(f"{prefix}{TAGS[self.rtype]}  {self.body}")
        return "".join(line + "\n" for line in lines)


def write(records, abi: str = "amd64") -> bytes:
    return b"".join(r.to_bytes(abi) for r in records)


def render(records) -> str:
    return "".join(r.to_kdump() for r in records)


# ---------------------------------------------------------------------------- records
# One constructor per record type: the payload as the kernel packs it on `abi`, and the
# body as kdump prints it.


def _hex(value: int) -> str:  # printf("%#x")
    return f"{value:#x}" if value else "0"


def _name(code: int) -> str:
    return f"{SYSCALLS[code]}[{code}]" if code in SYSCALLS else f"[{code}]"


def call(code: int, args: list[int], abi: str = "amd64", **hdr) -> Record:
    w = WORD[abi]
    fixed = _pack(abi, "ktr_syscall.ktr_args", (0, 2, code, True), (2, 2, len(args), True))
    regs = b"".join(a.to_bytes(w, "little") for a in args)
    body = _name(code) + (f"({','.join(_hex(a) for a in args)})" if args else "")
    return Record(SYSCALL, fixed + regs, body, **hdr)


def ret(code: int, retval: int = 0, error: int = 0, abi: str = "amd64", **hdr) -> Record:
    w = WORD[abi]
    payload = _pack(
        abi,
        "ktr_sysret",
        (0, 2, code, True),
        ("ktr_sysret.ktr_error", 4, error, True),
        ("ktr_sysret.ktr_retval", w, retval, True),
    )
    if error == -1:
        text = "RESTART"
    elif error == -2:
        text = "JUSTRETURN"
    elif error:
        text = f"-1 errno {error}"
    else:  # -n: the register in hex
        text = _hex(retval & ((1 << 8 * w) - 1))
    return Record(SYSRET, payload, f"{_name(code)} {text}", **hdr)


def namei(path: bytes, **hdr) -> Record:
    return Record(NAMEI, path, '"' + path.decode("utf-8", "replace") + '"', **hdr)


def sysctl(name: bytes, **hdr) -> Record:
    return Record(SYSCTL, name + b"\0", '"' + name.decode() + '"', **hdr)


def gio(fd: int, write_: bool, data: bytes, **hdr) -> Record:
    n = len(data)
    body = f"fd {fd} {'wrote' if write_ else 'read'} {n} byte{'' if n == 1 else 's'}"
    fixed = _pack(
        "amd64", "ktr_genio", (0, 4, fd, True), ("ktr_genio.ktr_rw", 4, int(write_), True)
    )
    return Record(GENIO, fixed + data, body, **hdr)  # the same in both ABIs


def psig(signo: int, action: int, code: int, mask: int = 0, abi: str = "amd64", **hdr):
    payload = _pack(
        abi,
        "ktr_psig",
        (0, 4, signo, True),
        ("ktr_psig.action", WORD[abi], action, False),
        ("ktr_psig.code", 4, code, True),
        ("ktr_psig.mask", 4, mask, False),  # sigset_t: the first of its four words
    )
    name = SIGNALS.get(signo, f"SIG {signo}")
    code_name = SIGCODES.get(code) or SIGCODES.get((signo, code)) or f"<invalid={_hex(code)}>"
    how = "SIG_DFL" if action == 0 else f"caught handler={action:#x} mask={mask:#x}"
    return Record(PSIG, payload, f"{name} {how} code={code_name}", **hdr)


def csw(out: bool, user: bool, wmesg: bytes | None, **hdr) -> Record:
    payload = _pack(
        "amd64", "ktr_csw_old", (0, 4, int(out), True), ("ktr_csw.user", 4, int(user), True)
    )
    body = f"{'stop' if out else 'resume'} {'user' if user else 'kernel'}"
    if wmesg is not None:  # the current layout; without it a pre-wmesg kernel's 8 bytes
        payload += wmesg.ljust(8, b"\0")  # at ktr_csw.wmesg, right after ktr_csw_old
        body += f' "{wmesg.decode()}"'
    return Record(CSW, payload, body, **hdr)


def user(data: bytes, **hdr) -> Record:
    return Record(USER, data, f"{len(data)} " + "".join(f" {b:02x}" for b in data), **hdr)


def malloc_utrace(p: int, s: int, r: int, abi: str = "amd64", **hdr) -> Record:
    w = WORD[abi]
    payload = _pack(
        abi,
        "utrace_malloc",
        (0, w, p, False),
        ("utrace_malloc.s", w, s, False),
        ("utrace_malloc.r", w, r, False),
    )
    body = f"{r:#x} = malloc({s})" if p == 0 else f"{r:#x} = realloc({p:#x}, {s})"
    return Record(USER, payload, f"free({p:#x})" if s == 0 else body, **hdr)


def fault(vaddr: int, prot: int, abi: str = "amd64", **hdr) -> Record:
    payload = _pack(
        abi, "ktr_fault", (0, WORD[abi], vaddr, False), ("ktr_fault.type", 4, prot, True)
    )
    names = "|".join(n for b, n in ((1, "READ"), (2, "WRITE"), (4, "EXECUTE")) if prot & b)
    return Record(FAULT, payload, f"{vaddr:#x} {prot:#x}<VM_PROT_{names}>", **hdr)


def faultend(result: int, **hdr) -> Record:
    body = KERN[result] if 0 <= result < len(KERN) else f"<invalid={result}>"
    return Record(FAULTEND, _pack("amd64", "ktr_faultend", (0, 4, result, True)), body, **hdr)


def struct_record(name: bytes, data: bytes, **hdr) -> Record:
    return Record(STRUCT, name + b"\0" + data, "unknown structure", **hdr)


def struct_array(name: bytes, size: int, data: bytes, abi: str = "amd64", **hdr) -> Record:
    payload = _pack(abi, "ktr_struct_array", (0, WORD[abi], size, False)) + name + b"\0" + data
    return Record(
        STRUCT_ARRAY, payload, f"struct {name.decode()}[] = <unknown structure> }}", **hdr
    )


def capfail_syscall(abi: str = "amd64", **hdr) -> Record:
    """A pre-2024 CAPFAIL record of type CAPFAIL_SYSCALL (2)."""
    payload = _pack(abi, "ktr_cap_fail_old", (0, 4, 2, True))
    return Record(CAPFAIL, payload, "disallowed system call", **hdr)


def capfail_new_syscall(code: int, abi: str = "amd64", **hdr) -> Record:
    """A 2024+ CAPFAIL record (type, code, svflags, 1024-byte union) of type SYSCALL."""
    payload = _pack(abi, "ktr_cap_fail", (0, 4, 2, True), ("ktr_cap_fail.cap_code", 2, code, True))
    return Record(CAPFAIL, payload, f"system call not allowed: {SYSCALLS[code]}", **hdr)


def strings_record(rtype: int, strings: list[bytes], **hdr) -> Record:
    payload = b"".join(s + b"\0" for s in strings)
    return Record(rtype, payload, ", ".join(f'"{s.decode()}"' for s in strings), **hdr)


def exterr(error: int, category: int, line: int, p1: int, p2: int, msg: bytes, **hdr):
    payload = _pack(
        "amd64",  # the same in both ABIs: fixed-width fields only
        "uexterror",
        (0, 4, 1, False),  # ver
        ("uexterror.error", 4, error, True),
        ("uexterror.cat", 4, category, False),
        ("uexterror.src_line", 4, line, False),
        ("uexterror.p1", 8, p1, False),
        ("uexterror.p2", 8, p2, False),
        ("uexterror.msg", len(msg), int.from_bytes(msg, "little"), False),
    )
    body = f"{{ errno {error} category {category} (src line {line}) p1 {_hex(p1)} "
    body += f"p2 {_hex(p2)} {msg.decode()} }}"
    return Record(EXTERR, payload, body, **hdr)


def procctor(sv_flags: int, **hdr) -> Record:
    return Record(PROCCTOR, _pack("amd64", "ktr_proc_ctor", (0, 4, sv_flags, False)), None, **hdr)


def procdtor(**hdr) -> Record:
    return Record(PROCDTOR, b"", None, **hdr)


# ---------------------------------------------------------------------------- workloads


def random_records(rnd: random.Random, n: int, abi: str = "amd64", v0_share: float = 0.0):
    """n seeded records of 8 processes of 3 threads, in the mix of a `ktrace -t cfw`
    build trace: CALL 30%, RET 28% (every RET form), NAMI 12%, PFLT 10%, PRET 10%, GIO 6%,
    CSW 2%, PSIG, USER, SCTL and PCTR 0.5% each; 0.2% of records after dropped events."""
    threads = [(100 + p, 100000 + 10 * p + t, b"proc%d" % p) for p in range(8) for t in range(3)]
    sec, ns = 1_700_000_000, 0
    for _ in range(n):
        pid, tid, comm = rnd.choice(threads)
        ns += rnd.randrange(1, 50_000)
        sec, ns = sec + ns // 10**9, ns % 10**9
        v0 = rnd.random() < v0_share
        hdr = {
            "pid": pid,
            "tid": tid,
            "comm": comm,
            "sec": sec,
            "frac": ns // 1000 if v0 else ns,
            "cpu": rnd.randrange(16),
            "version": 0 if v0 else 1,
            "dropped": rnd.random() < 0.002,
        }
        yield _random_body(rnd, abi, hdr)


def _random_body(rnd: random.Random, abi: str, hdr: dict) -> Record:
    w = WORD[abi]
    big = (1 << 8 * w) - 1
    pick = rnd.random()
    if pick < 0.30:
        code = rnd.choice([3, 4, 6, 20, 73, 454, 477, 999])
        args = [rnd.choice([0, 1, 0x7FFF12345678 & big, big, rnd.getrandbits(8 * w)])
                for _ in range(rnd.randrange(0, 7))]  # fmt: skip
        return call(code, args, abi, **hdr)
    if pick < 0.58:
        code = rnd.choice([3, 4, 6, 20, 2, 455, 477])
        error = rnd.choice([0, 0, 0, 0, 2, 9, -1, -2])
        value = 0 if error else rnd.choice([0, 1, 9, 10, 4096, 0x800531000 & (big >> 1)])
        return ret(code, value, error, abi, **hdr)
    if pick < 0.70:
        if rnd.random() < 0.01:  # a long path (up to ~1 KiB, as MAXPATHLEN allows)
            return namei(b"/usr/obj" + b"/sub" * rnd.randrange(20, 250) + b"/x.o", **hdr)
        return namei(rnd.choice([b"/etc/passwd", b"/usr/lib/libc.so.7", b"x y", b"."]), **hdr)
    if pick < 0.80:
        return fault(rnd.getrandbits(8 * w - 12) << 12 | rnd.randrange(4096), 2, abi, **hdr)
    if pick < 0.90:
        return faultend(rnd.choice([0, 0, 0, 1, 2, 7]), **hdr)
    if pick < 0.96:
        return gio(rnd.randrange(3, 9), rnd.random() < 0.5, bytes(rnd.randrange(0, 40)), **hdr)
    if pick < 0.98:
        return csw(
            rnd.random() < 0.5, rnd.random() < 0.5, rnd.choice([b"select", b"", None]), **hdr
        )  # noqa: E501
    if pick < 0.985:
        return psig(rnd.choice([11, 20, 30]), rnd.choice([0, 0x401000]), 0x10001, 0, abi, **hdr)
    if pick < 0.99:
        return user(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 9))), **hdr)
    if pick < 0.995:
        return sysctl(b"kern.ostype", **hdr)
    return replace(procctor(0x100, **hdr), body=None)
