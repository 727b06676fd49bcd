"""`vmstat --libxo json -z`: the zone table as libxo JSON.

vmstat.c main() calls xo_parse_args() and xo_set_version("1"); domemstat_zone() opens the
container "memory-zone-statistics" and the list "zone", one instance per zone with the
fields its xo_emit tags name:

    {"__version": "1", "memory-zone-statistics": {"zone": [
        {"name": "UMA Kegs", "size": 384, "limit": 0, "used": 174, "free": 0,
         "requests": 174, "fail": 0, "sleep": 0, "xdomain": 0}, ...]}}

(no xdomain up to 12.x). The shape is read from the source's tags, not from a captured
file (docs/recording.md says so), so a field this schema does not know is refused rather
than guessed at: the error names it by its JSON path.
"""

import json

import msgspec

from kreplay.errors import SnapshotFormatError


class JsonZone(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    size: int
    limit: int
    used: int
    free: int
    requests: int
    fail: int
    sleep: int
    xdomain: int | None = None  # 13 and later


class _Zones(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    zone: list[JsonZone] = []


class _Document(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    memory_zone_statistics: _Zones = msgspec.field(name="memory-zone-statistics")
    version: str = msgspec.field(name="__version", default="")


class VmstatZJson(msgspec.Struct, frozen=True):
    path: str
    version: str  # libxo's __version, "1"
    zones: tuple[JsonZone, ...]

    def zone(self, name: str) -> JsonZone | None:
        return next((z for z in self.zones if z.name == name), None)


def parse_vmstat_z_json(text: str, path: str) -> VmstatZJson:
    """The zones of a libxo JSON capture; a JSON syntax error names its line, a field
    that is missing, unknown or of the wrong type its JSON path."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SnapshotFormatError(f"not JSON: {e.msg}", path=path, line=e.lineno) from None
    try:
        document = msgspec.convert(data, _Document)
    except msgspec.ValidationError as e:
        raise SnapshotFormatError(f"not vmstat -z libxo JSON: {e}", path=path) from None
    return VmstatZJson(
        path=path, version=document.version, zones=tuple(document.memory_zone_statistics.zone)
    )
