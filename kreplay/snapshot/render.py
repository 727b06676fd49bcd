"""Synthetic snapshots: counters written in the formats a FreeBSD box prints them.

synthetic_snapshot() takes counters named as counters.py names them (what the model
predicts: zone.kstack_cache.used, vm.reserv.broken, vm.stats.vm.v_wire_count, ...) and
returns the files one snapshot of kreplay's recording script holds, byte for byte as vmstat
and sysctl would print them, so that a synthetic trace can carry snapshots as a real
recording does, and so that counters_of(parse(render(c))) == c is a test.

The vmstat -z styles are the printf formats of domemstat_zone() (docs/recording.md,
"Snapshot formats"): v1 (FreeBSD <= 12, 7 columns), v2 and v3 (13/14, glued FAILSLEEP, with
and without the blank line), v4 (14), v5 (15: XDOM, the name's colon not padded).
"""

# ruff: noqa: UP031  -- the formats are printf's, as vmstat.c and vm_reserv.c print them

import json
from collections.abc import Iterable, Mapping, Sequence

from kreplay.snapshot.counters import ZONE_COLUMNS
from kreplay.snapshot.sysctl import PARTPOPQ

MEMTYPE_MAXNAME = 32  # lib/libmemstat/memstat.h: a name is cut to 31 characters
STYLES = ("v1", "v2", "v3", "v4", "v5")
TEXT_COLUMNS = ("SIZE", "LIMIT", "USED", "FREE", "REQ", "FAIL", "SLEEP", "XDOMAIN")

# What one snapshot of the recording script captures (kreplay/record/record.sh, snap()):
# file -> (format, command). A sysctl counter goes to the file of its node.
SNAPSHOT_FILES = {
    "vmstat-z.txt": ("vmstat-z", "vmstat -z"),
    "vmstat-z.json": ("vmstat-z-json", "vmstat --libxo json -z"),
    "vm.reserv.txt": ("sysctl", "sysctl vm.reserv"),
    "vm.stats.vm.txt": ("sysctl", "sysctl vm.stats.vm"),
    "vm.domain.txt": ("sysctl", "sysctl vm.domain"),
    "vm.kstacks.txt": ("sysctl", "sysctl -i vm.kstacks vm.kstack_cache_size"),
}
_NODE_FILES = (("vm.reserv.", "vm.reserv.txt"), ("vm.stats.vm.", "vm.stats.vm.txt"),
               ("vm.domain.", "vm.domain.txt"))  # fmt: skip
KSTACK_OIDS = ("vm.kstacks", "vm.kstack_cache_size")

# The order sysctl prints vm.stats.vm and vm.reserv in: the reverse of vm_meter.c's and
# vm_reserv.c's declarations (what the 13.x sample shows). Other OIDs follow, by name.
_STATS_VM = ("v_pdpages", "v_tcached", "v_cache_count", "v_user_wire_count", "v_free_severe",
             "v_interrupt_free_min", "v_pageout_free_min", "v_laundry_count",
             "v_inactive_count", "v_inactive_target", "v_active_count", "v_wire_count",
             "v_free_count", "v_free_min", "v_free_target", "v_free_reserved", "v_page_count",
             "v_page_size", "v_kthreadpages", "v_rforkpages", "v_vforkpages", "v_forkpages",
             "v_kthreads", "v_rforks", "v_vforks", "v_forks")  # fmt: skip
_RESERV = ("reclaimed", "partpopq", "fullpop", "freed", "broken")
PRINTED_ORDER = (
    *(f"vm.stats.vm.{name}" for name in _STATS_VM),
    *(f"vm.reserv.{name}" for name in _RESERV),
    *KSTACK_OIDS,
)


def vmstat_z_text(zones: Sequence[tuple[str, Mapping[str, int]]], style: str = "v4") -> str:
    """`vmstat -z` of (name, {libxo column: value}) zones, in one of STYLES; a column not
    given is 0. v1 has no xdomain column."""
    if style not in STYLES:
        raise ValueError(f"vmstat -z style {style!r}: one of {', '.join(STYLES)}")
    ncolumns = 7 if style == "v1" else 8
    rows = [
        _row(
            name[: MEMTYPE_MAXNAME - 1], [values.get(c, 0) for c in ZONE_COLUMNS[:ncolumns]], style
        )
        for name, values in zones
    ]
    return _header(style) + "".join(rows)


def _header(style: str) -> str:
    if style == "v5":
        names = ("ITEM", *TEXT_COLUMNS[:-1], "XDOM")
        return "%-19s %7s %7s %8s %8s %8s %4s %4s %4s\n" % names
    if style == "v1":
        return "%-20s %6s %6s %8s %8s %8s %4s %4s\n\n" % ("ITEM", *TEXT_COLUMNS[:-1])
    glue = "" if style in ("v2", "v3") else " "  # "{T:/%8s}" "{T:/%4s}": FAILSLEEP
    blank = "\n" if style == "v2" else ""
    line = f"%-20s %6s %6s %8s %8s %8s %8s{glue}%4s %4s\n{blank}"
    return line % ("ITEM", *TEXT_COLUMNS)


def _row(name: str, values: list[int], style: str) -> str:
    size, limit, used, free, requests, *small = values
    tail = "".join(",%4d" % v for v in small)
    if style == "v5":
        head = "%s:%*d,%7d" % (name, max(1, 26 - len(name)), size, limit)
    else:
        head = "%-20s %6d, %6d" % (name + ":", size, limit)
    return head + ",%8d,%8d,%8d" % (used, free, requests) + tail + "\n"


def vmstat_z_json(zones: Sequence[tuple[str, Mapping[str, int]]], xdomain: bool = True) -> str:
    """`vmstat --libxo json -z` of the same zones (the shape libxo.py reads)."""
    columns = ZONE_COLUMNS if xdomain else ZONE_COLUMNS[:-1]
    instances = [{"name": name, **{c: values.get(c, 0) for c in columns}} for name, values in zones]
    document = {"__version": "1", "memory-zone-statistics": {"zone": instances}}
    return json.dumps(document) + "\n"


def sysctl_text(entries: Iterable[tuple[str, int | str]]) -> str:
    """sysctl(8) output of (name, value) pairs: `name: value` and a newline; a string
    value is printed raw, its own newlines included."""
    return "".join(f"{name}: {value}\n" for name, value in entries)


def partpopq_value(rows: Iterable[tuple[int, int, int, int]]) -> str:
    """The vm.reserv.partpopq string of (domain, level, size_kb, number) rows."""
    body = "".join("%6d, %7d, %6dK, %6d\n" % row for row in rows)
    return "\nDOMAIN    LEVEL     SIZE  NUMBER\n\n" + body


def synthetic_snapshot(
    counters: Mapping[str, int], style: str = "v4", ndomains: int = 1
) -> dict[str, str]:
    """The files of one snapshot (SNAPSHOT_FILES' names) holding `counters`. vm.reserv
    always has its partpopq table, a row per domain (level -1) with the counters' values or
    0; a counter that no file holds is a ValueError."""
    zones: dict[str, dict[str, int]] = {}
    oids: dict[str, list[tuple[str, int | str]]] = {}
    for name, value in counters.items():
        if name.startswith(PARTPOPQ + "."):
            continue
        if name.startswith("zone."):
            zone, _, column = name[len("zone.") :].rpartition(".")
            if column not in ZONE_COLUMNS or not zone:
                raise ValueError(f"counter {name!r}: zone.<zone>.<one of {ZONE_COLUMNS}>")
            zones.setdefault(zone, {})[column] = value
            continue
        oids.setdefault(_file_of(name), []).append((name, value))
    oids.setdefault("vm.reserv.txt", []).append((PARTPOPQ, _partpopq(counters, ndomains)))
    files = {
        "vmstat-z.txt": vmstat_z_text(list(zones.items()), style),
        "vmstat-z.json": vmstat_z_json(list(zones.items()), xdomain=style != "v1"),
    }
    for file, entries in oids.items():
        files[file] = sysctl_text(sorted(entries, key=_printed_position))
    return files


def _file_of(oid: str) -> str:
    for prefix, file in _NODE_FILES:
        if oid.startswith(prefix):
            return file
    if oid in KSTACK_OIDS:
        return "vm.kstacks.txt"
    raise ValueError(f"counter {oid!r} is in no file of a snapshot ({', '.join(SNAPSHOT_FILES)})")


def _partpopq(counters: Mapping[str, int], ndomains: int) -> str:
    levels = {
        tuple(int(part) for part in name.split(".")[3:5])
        for name in counters
        if name.startswith(PARTPOPQ + ".")
    } | {(domain, -1) for domain in range(ndomains)}

    def cell(domain: int, level: int, field: str) -> int:
        return counters.get(f"{PARTPOPQ}.{domain}.{level}.{field}", 0)

    return partpopq_value(
        (d, lv, cell(d, lv, "size_kb"), cell(d, lv, "number")) for d, lv in sorted(levels)
    )


def _printed_position(entry: tuple[str, object]) -> tuple[int, str]:
    name = entry[0]
    return (PRINTED_ORDER.index(name) if name in PRINTED_ORDER else len(PRINTED_ORDER), name)
