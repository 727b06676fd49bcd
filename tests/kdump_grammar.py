"""The kdump text grammar as hypothesis strategies: records printed the way kdump(1) prints
them (spec/kdump-format.md §1.1, §1.3), in every header layout, with the columns kreplay
must read back from each. Written from the spec, not from kreplay's parser: the oracle of
tests/test_roundtrip.py and of the text grammar cases of tools/fuzz.py.
"""

from dataclasses import dataclass, field

from conftest import printf_comm
from hypothesis import strategies as st

COLUMNS = (
    "pid",
    "tid",
    "comm",
    "cpu",
    "ts",
    "kind",
    "syscall",
    "sysnum",
    "args",
    "retval",
    "errno",
    "ret_kind",
    "addr",
    "prot",
    "fault_result",
    "path",
    "signal",
    "sig_action",
    "sig_code",
    "csw",
    "csw_mode",
    "wmesg",
)


@dataclass(frozen=True)
class Opts:
    tid: bool = False  # -H
    timestamps: str = ""  # subset of "TER", in kdump's print order
    ns: bool = True  # v1 records (FreeBSD 14+): nanoseconds; v0: microseconds
    cpu: bool = False  # -c

    @property
    def letters(self) -> str:
        return ("H" if self.tid else "") + self.timestamps + ("c" if self.cpu else "")


@dataclass(frozen=True)
class Record:
    pid: int
    tid: int
    comm: str
    cpu: int
    ts: tuple[int, ...]  # one value in ns per timestamp column
    tag: str  # 4 characters as printed
    body: str
    decoded: dict = field(default_factory=dict)  # the body's columns as kreplay stores them

    def expected(self, opts: Opts) -> dict:
        row = dict.fromkeys(COLUMNS)
        row.update(pid=self.pid, comm=self.comm, kind=self.tag.strip(), **self.decoded)
        if opts.tid:
            row["tid"] = self.tid
        if opts.cpu:
            row["cpu"] = self.cpu
        if opts.timestamps:
            row["ts"] = self.ts[0]  # the first column kdump prints: absolute if -T is on
        return row


def format_ts(value_ns: int, ns: bool) -> str:
    """`%jd.%09ld` / `%jd.%06ld`, with -R's `-` for a negative delta."""
    sign = "-" if value_ns < 0 else ""
    sec, frac = divmod(abs(value_ns), 1_000_000_000)
    return f"{sign}{sec}.{frac:09d}" if ns else f"{sign}{sec}.{frac // 1000:06d}"


def render(record: Record, opts: Opts) -> str:
    """One record as kdump prints it with these options (without the newline)."""
    out = f"{record.pid:6d} "
    if opts.tid:
        out += f"{record.tid:6d} "
    out += printf_comm(record.comm) + " "
    for value in record.ts:
        out += format_ts(value, opts.ns) + " "
    if opts.cpu:
        out += f"{record.cpu:3d} "
    return out + record.tag + "  " + record.body


# ---------------------------------------------------------------------------- strategies

SYSCALLS = [
    "read",
    "write",
    "open",
    "close",
    "mmap",
    "munmap",
    "fork",
    "vfork",
    "thr_new",
    "_umtx_op",
    "execve",
    "wait4",
    "__sysctl",
    "sigfastblock",
    "thr_exit",
    "freebsd11_fstat",
]
ARGS = [
    "0",
    "0x1",
    "0x7fffffffe000",
    "0x3<PROT_READ|PROT_WRITE>",
    "AT_FDCWD",
    "SIG 32",
    "-1",
    "0xffffffff",
    "0<O_RDONLY>",
    "<unused>0x1b6",
    "UMTX_OP_WAIT_UINT_PRIVATE",
    "SEEK_SET",
]


@st.composite
def call_body(draw):
    name = draw(st.sampled_from(SYSCALLS))
    sysnum = draw(st.none() | st.integers(0, 600))  # -S
    args = draw(st.none() | st.lists(st.sampled_from(ARGS), min_size=1, max_size=6).map(",".join))
    label = name if sysnum is None else f"{name}[{sysnum}]"
    body = label if args is None else f"{label}({args})"
    return "CALL", body, {"syscall": name, "sysnum": sysnum, "args": args}


@st.composite
def ret_body(draw):
    name = draw(st.sampled_from(SYSCALLS))
    form = draw(st.sampled_from(["fancy", "hex", "error", "error-n", "restart", "justreturn"]))
    decoded = {"syscall": name, "retval": None, "errno": None}
    if form in ("fancy", "hex"):
        value = draw(st.integers(-(2**63), 2**63 - 1) | st.integers(-3, 12) | st.integers(0, 2**47))
        unsigned = value & (2**64 - 1)
        if form == "fancy":  # `%ld`, and `/%#lx` unless 0 <= value <= 9
            text = str(value) if 0 <= value <= 9 else f"{value}/{unsigned:#x}"
        else:  # -n: `%#lx` only (zero prints as `0`)
            text = f"{unsigned:#x}" if unsigned else "0"
        decoded.update(retval=value, ret_kind="value")
    elif form.startswith("error"):
        errno = draw(st.integers(1, 97))
        text = f"-1 errno {errno}"
        if form == "error":
            text += " " + draw(
                st.sampled_from(
                    [
                        "No such file or directory",
                        "Bad file descriptor",
                        "Operation timed out",
                        "Interrupted system call",
                    ]
                )
            )
        decoded.update(retval=-1, errno=errno, ret_kind="error")
    else:
        text = form.upper()
        decoded.update(ret_kind=form)
    return "RET ", f"{name} {text}", decoded


@st.composite
def nami_body(draw):
    path = draw(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40))
    return draw(st.sampled_from(["NAMI", "SCTL"])), f'"{path}"', {"path": path}


PROTS = [
    (1, "VM_PROT_READ"),
    (2, "VM_PROT_WRITE"),
    (3, "VM_PROT_READ|VM_PROT_WRITE"),
    (4, "VM_PROT_EXECUTE"),
    (5, "VM_PROT_READ|VM_PROT_EXECUTE"),
    (7, "VM_PROT_READ|VM_PROT_WRITE|VM_PROT_EXECUTE"),
]


@st.composite
def pflt_body(draw):
    addr = draw(st.integers(0, 2**64 - 1) | st.integers(0x800000000, 0x900000000))
    prot, names = draw(st.sampled_from(PROTS))
    return "PFLT", f"0x{addr:x} {prot:#x}<{names}>", {"addr": addr, "prot": prot}


@st.composite
def pret_body(draw):
    result = draw(
        st.sampled_from(
            [
                "KERN_SUCCESS",
                "KERN_INVALID_ADDRESS",
                "KERN_PROTECTION_FAILURE",
                "KERN_RESOURCE_SHORTAGE",
                "KERN_OUT_OF_BOUNDS",
            ]
        )
        | st.integers(-5, 99).map(lambda n: f"<invalid={n}>")
    )
    return "PRET", result, {"fault_result": result}


@st.composite
def psig_body(draw):
    signal = draw(
        st.sampled_from(
            ["SIGINT", "SIGTERM", "SIGSEGV", "SIGBUS", "SIGCHLD", "SIGUSR1", "SIG 32", "SIGRTMIN"]
        )
    )
    caught = draw(st.booleans())
    if caught:
        handler, mask = draw(st.integers(1, 2**47)), draw(st.integers(0, 2**32 - 1))
        action, body = "caught", f"{signal} caught handler={handler:#x} mask={mask:#x}"
    else:
        action = draw(st.sampled_from(["SIG_DFL", "SIG_IGN"]))
        body = f"{signal} {action}"
    code = draw(
        st.none()
        | st.sampled_from(
            ["SI_USER", "SEGV_MAPERR", "BUS_ADRERR", "CLD_EXITED", "0x0", "<invalid=0x7>"]
        )
    )
    if code is not None:
        body += f" code={code}"
    return "PSIG", body, {"signal": signal, "sig_action": action, "sig_code": code}


@st.composite
def csw_body(draw):
    direction = draw(st.sampled_from(["stop", "resume"]))
    mode = draw(st.sampled_from(["user", "kernel"]))
    wmesg = draw(st.none() | st.sampled_from(["", "select", "uwait", "nanslp", "piperd", "wait"]))
    body = f"{direction} {mode}" + ("" if wmesg is None else f' "{wmesg}"')
    return "CSW ", body, {"csw": direction, "csw_mode": mode, "wmesg": wmesg or None}


BODIES = st.one_of(
    call_body(), ret_body(), nami_body(), pflt_body(), pret_body(), psig_body(), csw_body()
)

# Thread names: lower case, digits, space and punctuation, 1-19 bytes, no space at either
# end (kdump pads with spaces, so those cannot be told apart); all-digit names included.
COMMS = st.text("abcdefghijklmnopqrstuvwxyz0123456789 _-.", min_size=1, max_size=19).map(
    str.strip
).filter(bool) | st.text("0123456789", min_size=1, max_size=8)


@st.composite
def options(draw):
    return Opts(
        tid=draw(st.booleans()),
        timestamps=draw(st.sampled_from(["", "T", "E", "R", "TE", "TR", "ER", "TER"])),
        ns=draw(st.booleans()),
        cpu=draw(st.booleans()),
    )


def timestamps(opts: Opts):
    unit = 1 if opts.ns else 1000
    ranges = {"T": (10**9 * 10**9, 2 * 10**18), "E": (0, 10**14), "R": (-(10**10), 10**10)}
    return st.tuples(
        *(
            st.integers(lo // unit, hi // unit).map(lambda v, u=unit: v * u)
            for lo, hi in (ranges[letter] for letter in opts.timestamps)
        )
    )


@st.composite
def records(draw, opts: Opts, wide: bool):
    if wide:
        pid = draw(st.integers(1, 99999) | st.integers(100000, 99999999))
        # tids start at 100000 (PID_MAX + 1); kdump prints an invalid one as 0
        tid = draw(st.integers(100000, 999999) | st.just(0) | st.integers(10**6, 10**9))
        cpu = draw(st.integers(0, 255) | st.integers(1000, 4095))
    else:
        pid = draw(st.integers(1, 99999))
        tid = draw(st.integers(100000, 999999))
        cpu = draw(st.integers(0, 255))
    tag, body, decoded = draw(BODIES)
    return Record(
        pid=pid,
        tid=tid,
        comm=draw(COMMS),
        cpu=cpu,
        ts=draw(timestamps(opts)),
        tag=tag,
        body=body,
        decoded=decoded,
    )


@st.composite
def traces(draw, wide: bool = False):
    opts = draw(options())
    return opts, draw(st.lists(records(opts, wide), min_size=1, max_size=30))


@st.composite
def detectable_traces(draw):
    """Layouts whose timestamp columns can be named from their values: -E starts near 0,
    -T is an epoch time; a lone -R without a negative delta looks like -E (spec §1.1)."""
    opts = Opts(
        tid=draw(st.booleans()),
        timestamps=draw(st.sampled_from(["", "T", "E", "TE", "TER"])),
        ns=draw(st.booleans()),
        cpu=draw(st.booleans()),
    )
    recs = draw(st.lists(records(opts, wide=False), min_size=1, max_size=30))
    return opts, recs
