"""sysctl(8) output: `name: value` lines, a string value running over several lines.

sbin/sysctl/sysctl.c show_var() prints `name`, the separator `": "`, the value and a
newline. Integers are printed `%jd`/`%ju` (arrays of them separated by spaces); strings are
printed raw, so `kern.version` or `vm.reserv.partpopq` bring their own newlines, and the
line after such a value's last newline is the empty line sysctl adds. The order is the
kernel's (reverse of declaration for static OIDs), so nothing here relies on it.

A line that is not `name: value` continues the string value before it. An integer is never
printed over two lines, so such a line after an integer value, or before any entry, is an
error naming it; so is a name printed twice (which value would be the counter's?).
"""

import re

import msgspec

from kreplay.errors import SnapshotFormatError
from kreplay.snapshot.lines import preview
from kreplay.snapshot.partpopq import PartpopRow, parse_partpopq

PARTPOPQ = "vm.reserv.partpopq"

# An OID name: dot-separated parts (`dev.cpu.0.%domain`, `kstat.zfs.misc.objset-0x36`).
# Every OID sysctl prints has at least two parts; requiring the dot keeps prose out.
_ENTRY = re.compile(r"(?P<name>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)+):(?: (?P<value>.*))?")
_INTEGERS = re.compile(r"-?\d+(?: -?\d+)*")


class Entry(msgspec.Struct, frozen=True):
    """One OID: its name, the line it starts on, and its value as printed (the lines of a
    multi-line string joined by newlines, as the kernel's string holds them)."""

    name: str
    line: int
    value: str

    def integer(self) -> int | None:
        """The value as an integer when it is one number, else None."""
        return int(self.value) if re.fullmatch(r"-?\d+", self.value) else None


class Sysctl(msgspec.Struct, frozen=True):
    path: str
    entries: tuple[Entry, ...]
    partpopq: tuple[PartpopRow, ...] | None = None  # the table, when vm.reserv.partpopq is here

    def get(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)


def parse_sysctl(lines: list[str], path: str) -> Sysctl:
    """The entries in `lines` (numbered_lines of the capture at `path`)."""
    if not lines:
        raise SnapshotFormatError("empty: not sysctl output", path=path)
    entries: list[tuple[str, int, list[str]]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        match = _ENTRY.fullmatch(line)
        if match is None:
            _continue(entries, line, path, number)
            continue
        name = match["name"]
        if name in first_line:
            raise SnapshotFormatError(
                f"{name} printed again (first at line {first_line[name]})", path=path, line=number
            )
        first_line[name] = number
        entries.append((name, number, [match["value"] or ""]))
    found = tuple(Entry(name, line, "\n".join(value)) for name, line, value in entries)
    table = next((e for e in found if e.name == PARTPOPQ), None)
    rows = None if table is None else parse_partpopq(table.value, path, table.line)
    return Sysctl(path=path, entries=found, partpopq=rows)


def _continue(entries: list, line: str, path: str, number: int) -> None:
    """Add `line` to the string value of the last entry, if there is one to continue."""
    if not entries:
        raise SnapshotFormatError(
            f"not a sysctl 'name: value' line: {preview(line)}", path=path, line=number
        )
    name, _, value = entries[-1]
    if len(value) == 1 and _INTEGERS.fullmatch(value[0]):
        raise SnapshotFormatError(
            f"not a sysctl 'name: value' line, and {name}'s value is a number, which "
            f"never continues on another line: {preview(line)}",
            path=path,
            line=number,
        )
    value.append(line)
