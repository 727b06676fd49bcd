"""Named counters of parsed captures, and the before/after deltas validation compares.

A counter is an integer with a dotted name:

    zone.<zone>.<column>                      a vmstat -z cell: zone.kstack_cache.used; the
                                              columns as libxo names them (size, limit, used,
                                              free, requests, fail, sleep, xdomain), so the
                                              text (REQ, XDOM) and JSON forms name them alike
    <oid>                                     a sysctl integer: vm.stats.vm.v_wire_count,
                                              vm.reserv.broken, vm.kstacks
    vm.reserv.partpopq.<domain>.<level>.number    a partpopq row: reservations in the queue
    vm.reserv.partpopq.<domain>.<level>.size_kb   ... and the KiB free inside them

render.py writes captures from a dict of the same names, so parse(render(c)) == c.
"""

from collections.abc import Iterable, Mapping

import msgspec

from kreplay.snapshot.libxo import VmstatZJson
from kreplay.snapshot.sysctl import PARTPOPQ, Sysctl
from kreplay.snapshot.vmstat_z import VmstatZ

KSTACK_ZONES = ("kstack_cache", "THREAD", "PROC")  # the zones a thread's life moves
TEXT_TO_LIBXO = {"req": "requests", "xdom": "xdomain"}  # vmstat -z header -> libxo name
ZONE_COLUMNS = ("size", "limit", "used", "free", "requests", "fail", "sleep", "xdomain")


class Delta(msgspec.Struct, frozen=True):
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before


def zone_counter(zone: str, column: str) -> str:
    return f"zone.{zone}.{TEXT_TO_LIBXO.get(column, column)}"


def partpopq_counter(domain: int, level: int, field: str) -> str:
    return f"{PARTPOPQ}.{domain}.{level}.{field}"


def counters_of(capture: VmstatZ | VmstatZJson | Sysctl) -> dict[str, int]:
    """Every counter one parsed capture holds."""
    if isinstance(capture, VmstatZ):
        return {
            zone_counter(z.name, column): value
            for z in capture.zones
            for column, value in zip(capture.columns, z.values, strict=True)
        }
    if isinstance(capture, VmstatZJson):
        out = {}
        for z in capture.zones:
            for column in ZONE_COLUMNS:
                value = getattr(z, column)
                if value is not None:
                    out[zone_counter(z.name, column)] = value
        return out
    return _sysctl_counters(capture)


def _sysctl_counters(capture: Sysctl) -> dict[str, int]:
    out = {e.name: value for e in capture.entries if (value := e.integer()) is not None}
    for row in capture.partpopq or ():
        out[partpopq_counter(row.domain, row.level, "number")] = row.number
        out[partpopq_counter(row.domain, row.level, "size_kb")] = row.size_kb
    return out


def snapshot_counters(captures: Iterable[VmstatZ | VmstatZJson | Sysctl]) -> dict[str, int]:
    """The counters of one snapshot's captures. A counter two captures hold (vmstat -z
    and its JSON form, taken a moment apart) keeps the value of the first."""
    out: dict[str, int] = {}
    for capture in captures:
        for name, value in counters_of(capture).items():
            out.setdefault(name, value)
    return out


def deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, Delta]:
    """Each counter both snapshots hold, before and after; one that only one holds was
    not captured both times and has no delta."""
    return {name: Delta(before[name], after[name]) for name in before if name in after}
