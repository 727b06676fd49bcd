"""The cells of a check and their report: what check.py judges and the report renders
(neither the report nor this module imports the model)."""

from dataclasses import dataclass, field
from typing import Literal

from kreplay.compare import Comparison
from kreplay.pictures import Pictures
from kreplay.result import Result

# A cell is its Result's outcome when that equals its golden (a panic or hang recorded in
# the golden that recurs matches); else what went wrong.
CellStatus = Literal["ok", "panic", "hang", "differs", "no golden", "error"]
MATCHING: tuple[CellStatus, ...] = ("ok", "panic", "hang")


@dataclass
class Cell:
    trace: str
    revision: str
    status: CellStatus
    detail: str = ""
    comparison: Comparison | None = None
    first_op: dict | None = None
    result: Result | None = field(default=None, repr=False)
    pictures: Pictures | None = field(default=None, repr=False)  # never compared with golden

    @property
    def matches(self) -> bool:
        """Equal to its golden (a recorded panic or hang that recurs is a match too)."""
        return self.status in MATCHING and self.comparison is None


@dataclass(frozen=True)
class ValidationSummary:
    """`kreplay validate` of a checked trace whose sidecar has snapshots (reported, never
    failing the check: the tolerances are first estimates; docs/regression.md)."""

    trace: str
    revision: str
    status: Literal["agrees", "disagrees", "error"]
    detail: str  # the counts of the verdicts, or the error


@dataclass
class CheckReport:
    cells: list[Cell]
    orphans: list[str]  # golden files whose trace or revision is gone
    notes: list[str] = field(default_factory=list)  # sidecars changed since ingest
    label: str = ""  # as the store's history records the check
    validations: list[ValidationSummary] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.orphans) or not all(c.matches for c in self.cells)
