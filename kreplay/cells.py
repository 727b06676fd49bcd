"""The cells of a check and their report: what check.py judges and the report renders
(neither the report nor this module imports the model)."""

from dataclasses import dataclass, field

from kreplay.compare import Comparison
from kreplay.pictures import Pictures
from kreplay.result import Result


@dataclass
class Cell:
    trace: str
    revision: str
    status: str  # ok | differs | panic | hang | no golden | error
    detail: str = ""
    comparison: Comparison | None = None
    first_op: dict | None = None
    result: Result | None = field(default=None, repr=False)
    pictures: Pictures | None = field(default=None, repr=False)  # never compared with golden

    @property
    def matches(self) -> bool:
        """Equal to its golden (a recorded panic or hang that recurs is a match too)."""
        return self.status in ("ok", "panic", "hang") and self.comparison is None


@dataclass
class CheckReport:
    cells: list[Cell]
    orphans: list[str]  # golden files whose trace or revision is gone

    @property
    def failed(self) -> bool:
        return bool(self.orphans) or not all(c.matches for c in self.cells)
