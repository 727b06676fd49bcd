"""kdump(1) text, rendered exactly as `kdump -H -T -c` prints it (spec/kdump-format.md §1).

Shared by every synthetic workload (and by bench/ingest.py through build.py): the header
prefix, argument and return-value forms, GIO text and hex dumps, and a Recorder that
stamps each record with a synthetic, strictly increasing absolute time (-T, nanoseconds:
FreeBSD 14+ v1 records) and the cpu column (-c). No wall clock is read anywhere.
"""

import random

NS_PER_S = 1_000_000_000
START_NS = 1_767_312_000 * NS_PER_S + 417_113_905  # 2026-01-02, absolute time (-T)
HEX_WIDTH = 16  # kdump hexdump() bytes per line on an 80-column stderr
TEXT_WIDTH = 70  # kdump visdump() wraps at column 78, data starts at column 8

ERRNO = {
    2: "No such file or directory",
    3: "No such process",
    9: "Bad file descriptor",
    10: "No child processes",
    12: "Cannot allocate memory",
    22: "Invalid argument",
    25: "Inappropriate ioctl for device",
    35: "Resource temporarily unavailable",
    60: "Operation timed out",
}


def hx(n: int) -> str:
    """A plain argument as kdump prints it: `%#jx`, so zero is `0`, not `0x0`."""
    return f"{n:#x}" if n else "0"


def ret_value(n: int) -> str:
    """A successful RET value: `%ld`, plus `/%#lx` when below 0 or above 9."""
    return str(n) if 0 <= n <= 9 else f"{n}/{n & 0xFFFF_FFFF_FFFF_FFFF:#x}"


def errno_ret(errno: int) -> str:
    return f"-1 errno {errno} {ERRNO[errno]}"


def header_prefix(pid: int, tid: int, comm: str) -> str:
    """pid `%6d `, tid `%6d ` (-H), comm `%-8.19s ` (padded to 8, cut at 19)."""
    return f"{pid:6d} {tid:6d} {comm:<8.19} "


def cpu_column(cpu: int) -> str:
    """-c: `%3d ` (v1 records only)."""
    return f"{cpu:3d} "


def visdump(text: str) -> list[str]:
    """kdump's visdump() of printable ASCII text: the continuation lines of a GIO record.

    7 spaces and `"` open the dump, each newline in the data starts a TAB-led line, long
    lines wrap with `\\` + TAB, and the closing `"` follows the data or, when the data
    ends with a newline, stands alone after 7 spaces."""
    segments = text.split("\n")
    last = segments.pop()
    lines: list[str] = []
    lead = '       "'
    for segment in segments:
        lines += _wrapped(lead, segment)
        lead = "\t"
    if last or not segments:
        tail = _wrapped(lead, last)
        tail[-1] += '"'
        lines += tail
    else:
        lines.append('       "')
    return lines


def _wrapped(lead: str, segment: str) -> list[str]:
    pieces = [segment[i : i + TEXT_WIDTH] for i in range(0, len(segment), TEXT_WIDTH)] or [""]
    lines = [lead + pieces[0]] + ["\t" + piece for piece in pieces[1:]]
    return [line + "\\" for line in lines[:-1]] + lines[-1:]


def hexdump(data: bytes) -> list[str]:
    """kdump's hexdump() for an 80-column stderr, full 16-byte rows only: for a length
    that is not a multiple of 16 kdump pads the last row and prints an empty line after
    the dump, which the generators never ask for."""
    if len(data) % HEX_WIDTH:
        raise ValueError("hexdump() renders full rows only")
    lines = []
    for off in range(0, len(data), HEX_WIDTH):
        row = data[off : off + HEX_WIDTH]
        pairs = " ".join(row[i : i + 2].hex() for i in range(0, HEX_WIDTH, 2))
        shown = "".join(chr(b) if 32 <= b <= 126 else "." for b in row)
        lines.append(f"       0x{off:04x} {pairs}  |{shown}|")
    return lines


def gio_header(fd: int, direction: str, count: int) -> str:
    """`fd N read|wrote M bytes` (`byte` when M == 1, current kdump)."""
    return f"fd {fd} {direction} {count} byte{'s' if count != 1 else ''}"


class Records:
    """The record helpers both simulators share; each defines emit(t, tag, body)."""

    def emit(self, t, tag: str, body: str) -> None:
        raise NotImplementedError

    def call(self, t, body: str) -> None:
        self.emit(t, "CALL", body)

    def ret(self, t, name: str, result: str) -> None:
        self.emit(t, "RET ", f"{name} {result}")

    def call_ret(self, t, body: str, result: str = "0") -> None:
        self.call(t, body)
        self.ret(t, body.split("(", 1)[0], result)


class Recorder:
    """The output lines and the synthetic clock of one trace.

    Every record is 1 to 3000 ns after the previous one (drawn from the trace's seeded
    generator), so -T times strictly increase in file order; `idle()` lets time pass with
    no record (a server between bursts)."""

    def __init__(self, rng: random.Random, start_ns: int = START_NS):
        self.rng = rng
        self.rand = rng.random
        self.sec, self.ns = divmod(start_ns, NS_PER_S)
        self.sec_text = f"{self.sec}."
        self.out: list[str] = []

    def record(self, prefix: str, cpu: str, tag: str, body: str) -> None:
        """One header line: prefix (header_prefix), cpu (cpu_column), 4-char tag, body."""
        ns = self.ns + 1 + int(self.rand() * 3000)
        if ns >= NS_PER_S:
            ns -= NS_PER_S
            self.sec += 1
            self.sec_text = f"{self.sec}."
        self.ns = ns
        self.out.append(f"{prefix}{self.sec_text}{ns:09d} {cpu}{tag}  {body}")

    def idle(self, ns: int) -> None:
        sec, self.ns = divmod(self.ns + ns, NS_PER_S)
        if sec:
            self.sec += sec
            self.sec_text = f"{self.sec}."
