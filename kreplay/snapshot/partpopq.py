"""The value of `vm.reserv.partpopq`: the partially populated reservation queues.

sys/vm/vm_reserv.c sysctl_vm_reserv_partpopq() builds the string

    "\\nDOMAIN    LEVEL     SIZE  NUMBER\\n\\n" then per (domain, level) "%6d, %7d, %6dK, %6d\\n"

with level from -1 to VM_NRESERVLEVEL - 2 (on amd64 one row per domain, level -1). SIZE is
the KiB of free pages inside the domain's partially populated reservations, NUMBER how many
reservations its queue holds. As in vmstat -z, a wide number runs into the comma before it.
"""

import re

import msgspec

from kreplay.errors import SnapshotFormatError
from kreplay.snapshot.lines import preview

HEADER = ("DOMAIN", "LEVEL", "SIZE", "NUMBER")
_ROW = re.compile(r" *(?P<domain>-?\d+), *(?P<level>-?\d+), *(?P<size_kb>-?\d+)K, *(?P<number>\d+)")


class PartpopRow(msgspec.Struct, frozen=True):
    domain: int
    level: int
    size_kb: int  # free KiB inside the queue's reservations
    number: int  # reservations in the queue
    line: int


def parse_partpopq(value: str, path: str, line: int) -> tuple[PartpopRow, ...]:
    """The rows of a partpopq value that starts on `line` of `path` (the entry's line:
    the value's first, empty, line is the rest of `vm.reserv.partpopq: `)."""
    rows, seen_header = [], False
    for number, text in enumerate(value.split("\n"), start=line):
        if not text.strip():
            continue
        if not seen_header:
            if tuple(text.split()) != HEADER:
                raise SnapshotFormatError(
                    f"the partpopq table starts with its header {' '.join(HEADER)}, not "
                    f"{preview(text)}",
                    path=path,
                    line=number,
                )
            seen_header = True
            continue
        match = _ROW.fullmatch(text)
        if match is None:
            raise SnapshotFormatError(
                f"not a partpopq row 'domain, level, sizeK, number': {preview(text)}",
                path=path,
                line=number,
            )
        rows.append(PartpopRow(**{k: int(v) for k, v in match.groupdict().items()}, line=number))
    if not seen_header:
        raise SnapshotFormatError("vm.reserv.partpopq holds no table", path=path, line=line)
    return tuple(rows)
