"""What the report leads with, as data: which revisions have identical Results (folded into
one column or one section), and what each revision changes against a baseline revision.

"Changed" is what `kreplay diff BASELINE REV` says: the comparison is kreplay.compare's,
with its marks and without thresholds, so the page and the command agree (tested).
"""

from dataclasses import dataclass

import msgspec

from kreplay.cells import Cell
from kreplay.compare import BETTER, FIXED, NEW_FAILURE, NOT_COMPARABLE, WORSE, Comparison, compare
from kreplay.result import Result, to_json

# Rows of a revision's changes, the most pressing first: outcome, worse, not comparable,
# better, then the informational ones (no mark).
MARK_ORDER = {NEW_FAILURE: 0, WORSE: 1, NOT_COMPARABLE: 2, FIXED: 3, BETTER: 4, "": 5}

Cells = dict[tuple[str, str], Cell]


def identity(result: Result | None) -> bytes | None:
    """What two revisions' Results of one trace share when they are identical: everything
    but the revision's name."""
    if result is None:
        return None
    return to_json(msgspec.structs.replace(result, revision=""))


def fold(revisions: list[str], traces: list[str], cells: Cells) -> list[list[str]]:
    """Revisions whose Results are identical on every trace, grouped, in the order of
    their first member. A revision without a Result on some trace (an error) stays alone:
    its cells have their own story."""
    groups: dict[tuple, list[str]] = {}
    for revision in revisions:
        key = tuple(identity(_result(cells, t, revision)) for t in traces)
        groups.setdefault(key if None not in key else (revision,), []).append(revision)
    return list(groups.values())


def _result(cells: Cells, trace: str, revision: str) -> Result | None:
    cell = cells.get((trace, revision))
    return cell.result if cell is not None else None


@dataclass
class TraceChange:
    trace: str
    comparison: Comparison | None  # None when a side has no Result
    missing: str = ""  # then: which side, and why

    @property
    def rows(self) -> list:
        """The rows that changed (or are marked), most pressing first."""
        if self.comparison is None:
            return []
        changed = [r for r in self.comparison.rows if r.change or r.mark]
        return sorted(changed, key=lambda r: (r.name != "outcome", MARK_ORDER.get(r.mark, 5)))

    @property
    def verdict(self) -> str:
        return self.comparison.verdict() if self.comparison is not None else "not comparable"


@dataclass
class RevisionChanges:
    names: list[str]  # revisions with identical Results on every trace
    traces: list[TraceChange]

    def verdicts(self) -> dict[str, list[str]]:
        """verdict -> the traces that have it."""
        out: dict[str, list[str]] = {}
        for change in self.traces:
            out.setdefault(change.verdict, []).append(change.trace)
        return out


def against(baseline: str, groups: list[list[str]], traces: list[str], cells: Cells):
    """Each group of revisions but the baseline's against the baseline, trace by trace."""
    out = []
    for names in groups:
        if baseline in names:
            continue
        out.append(
            RevisionChanges(names, [_trace_change(baseline, names[0], t, cells) for t in traces])
        )
    return out


def _trace_change(baseline: str, revision: str, trace: str, cells: Cells) -> TraceChange:
    a, b = _result(cells, trace, baseline), _result(cells, trace, revision)
    if a is None or b is None:
        side = baseline if a is None else revision
        cell = cells.get((trace, side))
        why = f"{cell.status} {cell.detail}".strip() if cell is not None else "not checked"
        return TraceChange(trace, None, f"{side}: {why}")
    return TraceChange(trace, compare(a, b))
