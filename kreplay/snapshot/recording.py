"""A recording's sidecar as the recording script writes it (kreplay/record/record.sh):
the machine's own parameters, and the captures of its snapshots, parsed.

Besides [provenance] and [replay] (kreplay/ingest/sidecar.py reads those), the script
writes [recording] (the workload, ktrace and kdump), [machine] (what sysctl said about the
box) and one [[capture]] per command of a snapshot: which snapshot ("machine", "before",
"after"), the command, its output's format and file (relative to the sidecar), its exit
status, the file's sha256 and the first line the command wrote on stderr
(docs/recording.md, "Sidecar"). The files are read as they are: one that changed since it
was recorded (sha256), or a line in one that does not parse, is an error naming it.
"""

import hashlib
import os
import tomllib
from dataclasses import dataclass
from typing import Literal

import msgspec

from kreplay.errors import KreplayError, SnapshotFormatError
from kreplay.snapshot import Capture, parse_capture
from kreplay.snapshot.counters import Delta, deltas, snapshot_counters

Snapshot = Literal["machine", "before", "after"]
# Which capture's value a counter two of them hold takes: the text table, then the JSON.
PRECEDENCE = ("vmstat-z", "sysctl", "vmstat-z-json")


class CaptureEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    snapshot: Snapshot
    format: Literal["vmstat-z", "vmstat-z-json", "sysctl"]
    command: str
    file: str
    status: int
    sha256: str = ""
    error: str = ""  # the first line of the command's stderr


class RecordingTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int
    trace: str
    ktrace_file: str
    ktrace_points: str
    kdump_options: str
    workload: str
    workload_status: int
    interrupted: bool
    started: str
    ended: str
    ktrace_sha256: str = ""


class MachineTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What sysctl said about the box before the workload (None: the kernel did not say)."""

    osrelease: str = ""
    osreldate: int | None = None
    version: str = ""  # the first line of kern.version
    machine: str = ""
    machine_arch: str = ""
    ncpu: int | None = None
    ndomains: int | None = None
    physmem: int | None = None  # bytes
    pagesize: int | None = None
    kstack_pages: int | None = None
    kstack_cache_size: int | None = None
    invariants: bool = False
    invariant_support: bool = False
    kasan: bool = False
    kmsan: bool = False


class RecordedSidecar(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    recording: RecordingTable
    machine: MachineTable
    capture: list[CaptureEntry] = []
    provenance: dict = {}
    replay: dict = {}


@dataclass(frozen=True)
class ParsedCapture:
    entry: CaptureEntry
    path: str  # the file, as the sidecar's folder and the entry's file make it
    parsed: Capture | None  # None: the command failed or printed nothing (see note)
    note: str = ""


@dataclass(frozen=True)
class Recording:
    path: str  # the sidecar
    sidecar: RecordedSidecar
    captures: tuple[ParsedCapture, ...]

    def counters(self, snapshot: Snapshot) -> dict[str, int]:
        """Every counter the captures of one snapshot hold."""
        taken = [c for c in self.captures if c.entry.snapshot == snapshot]
        taken.sort(key=lambda c: PRECEDENCE.index(c.entry.format))
        return snapshot_counters(c.parsed for c in taken if c.parsed is not None)

    def observed(self) -> dict[str, Delta]:
        """Each counter both snapshots hold: its value before and after the workload."""
        return deltas(self.counters("before"), self.counters("after"))


def read_recording(path: str) -> Recording:
    """The sidecar at `path` and every capture it names, parsed."""
    sidecar = _load(path)
    folder = os.path.dirname(os.path.abspath(path))
    captures = tuple(_parse(entry, folder, path) for entry in sidecar.capture)
    return Recording(path=path, sidecar=sidecar, captures=captures)


def _load(path: str) -> RecordedSidecar:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise KreplayError(f"cannot read the sidecar: {e.strerror}", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise KreplayError(f"bad sidecar: {e}", path=path) from None
    if "recording" not in data:
        raise KreplayError(
            "no [recording] table: not a sidecar of kreplay's recording script", path=path
        )
    try:
        return msgspec.convert(data, RecordedSidecar)
    except msgspec.ValidationError as e:
        raise KreplayError(f"bad sidecar: {e}", path=path) from None


def _parse(entry: CaptureEntry, folder: str, sidecar: str) -> ParsedCapture:
    if os.path.isabs(entry.file) or ".." in entry.file.split("/"):
        raise KreplayError(
            f"capture file {entry.file!r} must be a path below the sidecar's folder", path=sidecar
        )
    path = os.path.join(folder, entry.file)
    if entry.status != 0:
        why = f": {entry.error}" if entry.error else ""
        return ParsedCapture(entry, path, None, f"failed with status {entry.status}{why}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KreplayError(f"cannot read a capture: {e.strerror}", path=path) from None
    if entry.sha256 and hashlib.sha256(data).hexdigest() != entry.sha256:
        raise SnapshotFormatError(
            f"changed since it was recorded (its sha256 is not the one {sidecar} holds)",
            path=path,
        )
    if not data:
        return ParsedCapture(entry, path, None, "printed nothing")
    return ParsedCapture(entry, path, parse_capture(data, path, entry.format))
