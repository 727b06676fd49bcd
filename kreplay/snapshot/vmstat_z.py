"""`vmstat -z`: the UMA zone table, every variant FreeBSD 12-15 prints.

usr.bin/vmstat/vmstat.c domemstat_zone() has printed six headers over the years (V0-V5 in
docs/recording.md, "Snapshot formats"): 7 columns up to 12.x, 8 from 13.0 (XDOMAIN, spelled
XDOM in 15), and two 13/14 headers where `%8s` FAIL and `%4s` SLEEP touch (`FAILSLEEP`). Every
row is `name:` then SIZE, and every later field is *preceded* by a comma:

    128 Bucket:            1024,      0,     138,      89,    2105,10295,   0,   0

so a number wider than its column runs into the comma before it, never into the number
before it: the commas separate the fields, spaces are only padding. A zone name may hold
spaces and colons (the last colon before SIZE ends it), and a name longer than the padding
pushes SIZE right (`zio_buf_comb_10485760: 10485760,`; in 15 with no space at all).

A capture may have no header (a middle chunk of a pasted table): the columns are then the
7 or 8 of the release that prints that many commas.
"""

import re

import msgspec

from kreplay.errors import SnapshotFormatError
from kreplay.snapshot.lines import preview

COLUMNS_7 = ("size", "limit", "used", "free", "req", "fail", "sleep")  # FreeBSD <= 12
COLUMNS_8 = (*COLUMNS_7, "xdomain")  # 13 and later (the header says XDOM in 15)
GLUED = {"failsleep": ("fail", "sleep")}  # %8s FAIL then %4s SLEEP, no space (13/14)

_HEAD = re.compile(r"(?P<name>.+):\s*(?P<size>\d+)")  # greedy: a ':' in a name stays in it
_NUMBER = re.compile(r" *\d+")


class Zone(msgspec.Struct, frozen=True):
    """One row: the zone's name as printed (without the colon), the line it is on, and
    its numbers in the order of the table's columns."""

    name: str
    line: int
    values: tuple[int, ...]


class VmstatZ(msgspec.Struct, frozen=True):
    path: str
    header: str | None  # the header line as printed; None when the capture has none
    columns: tuple[str, ...]  # header names, lower-cased ("failsleep" split in two)
    zones: tuple[Zone, ...]

    def zone(self, name: str) -> Zone | None:
        """The first zone of that name (UMA names are unique in practice, not by rule)."""
        return next((z for z in self.zones if z.name == name), None)

    def as_dicts(self) -> list[dict]:
        """One dict per zone: name, line, and every column by its header name."""
        return [
            {"name": z.name, "line": z.line, **dict(zip(self.columns, z.values, strict=True))}
            for z in self.zones
        ]


def looks_like_vmstat_z(first_line: str) -> bool:
    """Whether a capture's first line is vmstat -z's header or one of its rows."""
    if first_line.startswith("ITEM "):
        return True
    head = first_line.rsplit(",", len(COLUMNS_7) - 1)[0]
    return first_line.count(",") >= len(COLUMNS_7) - 1 and _HEAD.fullmatch(head) is not None


def parse_vmstat_z(lines: list[str], path: str) -> VmstatZ:
    """The table in `lines` (numbered_lines of the capture at `path`); a line that is not
    a header or a row of the table is a SnapshotFormatError naming it."""
    if not lines:
        raise SnapshotFormatError("empty: not vmstat -z output", path=path)
    header, columns, start = None, None, 0
    if lines[0].startswith("ITEM"):
        header, columns, start = lines[0], header_columns(lines[0], path), 1
        if len(lines) > 1 and not lines[1].strip():
            start = 2  # up to 13.x the header is followed by a blank line
    zones = []
    for number, line in enumerate(lines[start:], start=start + 1):
        if columns is None:
            columns = _columns_from_commas(line, path, number)
        zones.append(parse_row(line, len(columns), path, number))
    return VmstatZ(path=path, header=header, columns=columns or (), zones=tuple(zones))


def header_columns(line: str, path: str, number: int = 1) -> tuple[str, ...]:
    """`ITEM SIZE LIMIT ... REQ FAILSLEEP XDOMAIN` -> ("size", ..., "fail", "sleep", ...)."""
    words = line.split()
    if words[0] != "ITEM" or len(words) < 2:
        raise SnapshotFormatError(
            f"not a vmstat -z header: {preview(line)}", path=path, line=number
        )
    columns: list[str] = []
    for word in words[1:]:
        columns.extend(GLUED.get(word.lower(), (word.lower(),)))
    if columns[0] != "size" or len(set(columns)) != len(columns):
        raise SnapshotFormatError(
            f"a vmstat -z header starts ITEM SIZE and names each column once: {preview(line)}",
            path=path,
            line=number,
        )
    return tuple(columns)


def _columns_from_commas(line: str, path: str, number: int) -> tuple[str, ...]:
    """The columns of a capture without a header, from its first row's commas."""
    fields = line.count(",") + 1
    for columns in (COLUMNS_7, COLUMNS_8):
        if fields == len(columns):
            return columns
    raise SnapshotFormatError(
        f"no header, and {fields} comma-separated fields are neither the 7 columns of "
        f"FreeBSD 12 nor the 8 of 13 and later: {preview(line)}",
        path=path,
        line=number,
    )


def parse_row(line: str, ncolumns: int, path: str, number: int) -> Zone:
    """`name:  SIZE, LIMIT,...` with exactly `ncolumns` numbers."""
    head, *rest = line.rsplit(",", ncolumns - 1)
    match = _HEAD.fullmatch(head)
    if match is None or len(rest) != ncolumns - 1:
        found = line.count(",") + 1 if match else "no"
        raise SnapshotFormatError(
            f"not a vmstat -z row of {ncolumns} columns ('name: n, n, ...'; "
            f"{found} fields): {preview(line)}",
            path=path,
            line=number,
        )
    bad = next((field for field in rest if _NUMBER.fullmatch(field) is None), None)
    if bad is not None:
        raise SnapshotFormatError(
            f"field {bad.strip()!r} is not a count: {preview(line)}", path=path, line=number
        )
    values = (int(match["size"]), *(int(field) for field in rest))
    return Zone(name=match["name"], line=number, values=values)
