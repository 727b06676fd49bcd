"""Snapshots of the kernel's counters, as a FreeBSD box prints them (docs/recording.md).

    lines.py       a capture's bytes as numbered lines; a last line cut short is an error
    vmstat_z.py    the `vmstat -z` zone table, every header FreeBSD 12-15 prints
    libxo.py       its libxo form, `vmstat --libxo json -z`
    sysctl.py      sysctl(8) `name: value` lines, multi-line string values
    partpopq.py    the table inside `vm.reserv.partpopq`
    counters.py    the named counters of parsed captures, and their before/after deltas
    render.py      the same formats written from counters: synthetic snapshots for tests
    recording.py   a recording's sidecar: its machine and the captures of both snapshots
    tolerance.py   how far validation lets each observed counter stray from the model

This package reads captures; it never replays (the model does not import it, nor it the
model).
"""

from kreplay.errors import KreplayError, SnapshotFormatError
from kreplay.snapshot.libxo import VmstatZJson, parse_vmstat_z_json
from kreplay.snapshot.lines import numbered_lines
from kreplay.snapshot.sysctl import Sysctl, parse_sysctl
from kreplay.snapshot.vmstat_z import VmstatZ, looks_like_vmstat_z, parse_vmstat_z

FORMATS = ("vmstat-z", "vmstat-z-json", "sysctl")  # a capture's `format` in the sidecar
Capture = VmstatZ | VmstatZJson | Sysctl


def read_capture(path: str, fmt: str = "auto") -> Capture:
    """The parsed capture at `path`, in format `fmt` (one of FORMATS, or "auto": told from
    its first line). Any line that does not parse is a SnapshotFormatError naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KreplayError(f"cannot read: {e.strerror}", path=path) from None
    return parse_capture(data, path, fmt)


def parse_capture(data: bytes, path: str, fmt: str = "auto") -> Capture:
    """`data`, the bytes of the capture at `path`, parsed as `fmt` (see read_capture)."""
    if fmt == "auto":
        fmt = detect(data)
    if fmt == "vmstat-z-json":
        try:
            return parse_vmstat_z_json(data.decode("utf-8"), path)
        except UnicodeDecodeError:
            raise SnapshotFormatError("not UTF-8 text: not libxo JSON", path=path) from None
    lines = numbered_lines(data, path)
    if fmt == "vmstat-z":
        return parse_vmstat_z(lines, path)
    if fmt == "sysctl":
        return parse_sysctl(lines, path)
    raise KreplayError(f"unknown capture format {fmt!r} (formats: {', '.join(FORMATS)})")


def detect(data: bytes) -> str:
    """The format of a capture from how it starts: JSON, a vmstat -z header or row, else
    sysctl lines (whose parser then names the first line that is none of these)."""
    if data.lstrip().startswith(b"{"):
        return "vmstat-z-json"
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return "vmstat-z" if looks_like_vmstat_z(first) else "sysctl"
