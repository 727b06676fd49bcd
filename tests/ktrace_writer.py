"""Binary ktrace.out fixtures, and the kdump text of the same records.

Written from spec/kdump-format.md alone, not from kreplay's reader: `Record.to_bytes`
packs the record as the kernel writes it (§2.2 headers, §2.4 payloads; amd64 or i386),
and `Record.to_kdump` prints it as `kdump -H -T -c -n -S -s` does (§1.1, §1.3: tid,
absolute time, cpu, numeric arguments, syscall numbers, no GIO data lines). Tests ingest
both and compare the events; bench/ktrace.py builds its large file with `random_records`.
"""

import random
import struct
from dataclasses import dataclass, replace

ABIS = ("amd64", "i386")
WORD = {"amd64": 8, "i386": 4}

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
        rtype = self.rtype | (0x8000 if self.dropped else 0) | (0x4000 if self.version else 0)
        head = struct.pack("<iHHi20s", len(self.payload), rtype, self.version, self.pid, self.comm)
        w = "q" if abi == "amd64" else "i"
        if self.version == 0:  # timeval, tid
            return head + struct.pack(f"<{w}{w}{w}", self.sec, self.frac, self.tid)
        tail = struct.pack(f"<{w}{w}{w}i", self.sec, self.frac, self.tid, self.cpu)
        return head + tail + bytes(4 if abi == "amd64" else 0)

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
    fixed = struct.pack("<hh", code, len(args)) + bytes(max(4, w) - 4)
    regs = b"".join(a.to_bytes(w, "little") for a in args)
    body = _name(code) + (f"({','.join(_hex(a) for a in args)})" if args else "")
    return Record(SYSCALL, fixed + regs, body, **hdr)


def ret(code: int, retval: int = 0, error: int = 0, abi: str = "amd64", **hdr) -> Record:
    w = WORD[abi]
    payload = struct.pack("<hhi", code, 0, error) + retval.to_bytes(w, "little", signed=True)
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
    return Record(GENIO, struct.pack("<ii", fd, int(write_)) + data, body, **hdr)


def psig(signo: int, action: int, code: int, mask: int = 0, abi: str = "amd64", **hdr):
    w = WORD[abi]
    payload = struct.pack("<i", signo) + bytes(w - 4) + action.to_bytes(w, "little")
    payload += struct.pack("<iIIII", code, mask, 0, 0, 0)
    name = SIGNALS.get(signo, f"SIG {signo}")
    code_name = SIGCODES.get(code) or SIGCODES.get((signo, code)) or f"<invalid={_hex(code)}>"
    how = "SIG_DFL" if action == 0 else f"caught handler={action:#x} mask={mask:#x}"
    return Record(PSIG, payload, f"{name} {how} code={code_name}", **hdr)


def csw(out: bool, user: bool, wmesg: bytes | None, **hdr) -> Record:
    payload = struct.pack("<ii", int(out), int(user))
    body = f"{'stop' if out else 'resume'} {'user' if user else 'kernel'}"
    if wmesg is not None:  # the current layout; without it a pre-wmesg kernel's 8 bytes
        payload += wmesg.ljust(8, b"\0")
        body += f' "{wmesg.decode()}"'
    return Record(CSW, payload, body, **hdr)


def user(data: bytes, **hdr) -> Record:
    return Record(USER, data, f"{len(data)} " + "".join(f" {b:02x}" for b in data), **hdr)


def malloc_utrace(p: int, s: int, r: int, abi: str = "amd64", **hdr) -> Record:
    w = WORD[abi]
    payload = b"".join(v.to_bytes(w, "little") for v in (p, s, r))
    body = f"{r:#x} = malloc({s})" if p == 0 else f"{r:#x} = realloc({p:#x}, {s})"
    return Record(USER, payload, f"free({p:#x})" if s == 0 else body, **hdr)


def fault(vaddr: int, prot: int, abi: str = "amd64", **hdr) -> Record:
    w = WORD[abi]
    payload = vaddr.to_bytes(w, "little") + struct.pack("<i", prot) + bytes(w - 4)
    names = "|".join(n for b, n in ((1, "READ"), (2, "WRITE"), (4, "EXECUTE")) if prot & b)
    return Record(FAULT, payload, f"{vaddr:#x} {prot:#x}<VM_PROT_{names}>", **hdr)


def faultend(result: int, **hdr) -> Record:
    body = KERN[result] if 0 <= result < len(KERN) else f"<invalid={result}>"
    return Record(FAULTEND, struct.pack("<i", result), body, **hdr)


def struct_record(name: bytes, data: bytes, **hdr) -> Record:
    return Record(STRUCT, name + b"\0" + data, "unknown structure", **hdr)


def struct_array(name: bytes, size: int, data: bytes, abi: str = "amd64", **hdr) -> Record:
    payload = size.to_bytes(WORD[abi], "little") + name + b"\0" + data
    return Record(
        STRUCT_ARRAY, payload, f"struct {name.decode()}[] = <unknown structure> }}", **hdr
    )


def capfail_syscall(abi: str = "amd64", **hdr) -> Record:
    """A pre-2024 CAPFAIL record of type CAPFAIL_SYSCALL (2)."""
    payload = struct.pack("<i", 2) + bytes(WORD[abi] - 4) + bytes(32)
    return Record(CAPFAIL, payload, "disallowed system call", **hdr)


def capfail_new_syscall(code: int, abi: str = "amd64", **hdr) -> Record:
    """A 2024+ CAPFAIL record (type, code, svflags, 1024-byte union) of type SYSCALL."""
    payload = struct.pack("<ihhI", 2, code, 0, 0) + bytes(WORD[abi] - 4) + bytes(1024)
    return Record(CAPFAIL, payload, f"system call not allowed: {SYSCALLS[code]}", **hdr)


def strings_record(rtype: int, strings: list[bytes], **hdr) -> Record:
    payload = b"".join(s + b"\0" for s in strings)
    return Record(rtype, payload, ", ".join(f'"{s.decode()}"' for s in strings), **hdr)


def exterr(error: int, category: int, line: int, p1: int, p2: int, msg: bytes, **hdr):
    payload = struct.pack("<IiIIII", 1, error, category, line, 0, 0)
    payload += struct.pack("<QQ", p1, p2) + bytes(32) + msg.ljust(128, b"\0")
    body = f"{{ errno {error} category {category} (src line {line}) p1 {_hex(p1)} "
    body += f"p2 {_hex(p2)} {msg.decode()} }}"
    return Record(EXTERR, payload, body, **hdr)


def procctor(sv_flags: int, **hdr) -> Record:
    return Record(PROCCTOR, struct.pack("<I", sv_flags), None, **hdr)


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
