"""Result vs Result: per-metric changes with polarity, thresholds and asv-style marks.

Marks (DESIGN.md §7): `+` worse, `-` better, `!` a new panic or hang, `*` a fixed one,
`x` not comparable (a side is missing or did not finish), blank: no change that counts.
A neutral metric that changes is listed without a mark: it is a difference, not a
regression. The first divergence between two runs is the first checkpoint whose state
digest differs.
"""

from dataclasses import dataclass, field

from kreplay.result import HIGHER, LOWER, METRICS, Result

WORSE, BETTER, NEW_FAILURE, FIXED, NOT_COMPARABLE = "+", "-", "!", "*", "x"


@dataclass(frozen=True)
class MetricRow:
    name: str
    unit: str
    a: float | int | None
    b: float | int | None
    change: str  # "+12.5%", "-3", "" when equal
    mark: str


@dataclass
class Comparison:
    trace: str
    a: str  # labels of the two sides (revisions, or "golden"/"obtained")
    b: str
    outcome_a: str
    outcome_b: str
    rows: list[MetricRow] = field(default_factory=list)
    divergence: tuple[int, int] | None = None  # (last equal op, first differing checkpoint op)

    @property
    def worse(self) -> bool:
        return any(r.mark in (WORSE, NEW_FAILURE) for r in self.rows)

    @property
    def changed(self) -> bool:
        return any(r.change for r in self.rows) or self.outcome_a != self.outcome_b

    def verdict(self) -> str:
        if self.worse:
            return "worse"
        if any(r.mark in (BETTER, FIXED) for r in self.rows):
            return "better"
        return "changed" if self.changed else "same"


def compare(
    a: Result,
    b: Result,
    thresholds: dict[str, float] | None = None,
    labels: tuple[str, str] | None = None,
) -> Comparison:
    """Compare two Results of the same trace; thresholds are percentages per metric."""
    thresholds = thresholds or {}
    la, lb = labels or (a.revision, b.revision)
    cmp = Comparison(a.trace, la, lb, a.outcome.status, b.outcome.status)
    cmp.rows.append(_outcome_row(a.outcome.status, b.outcome.status))
    comparable = a.sha256 == b.sha256 and a.outcome.status == b.outcome.status == "ok"
    for name in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = a.metrics.get(name), b.metrics.get(name)
        unit, polarity, _ = METRICS.get(name, ("", "neutral", ""))
        mark = _mark(va, vb, polarity, thresholds.get(name, 0.0))
        if not comparable and _counts(va, vb, thresholds.get(name, 0.0)):
            mark = NOT_COMPARABLE
        cmp.rows.append(MetricRow(name, unit, va, vb, _change(va, vb), mark))
    cmp.divergence = first_divergence(a.checkpoints, b.checkpoints)
    return cmp


def _outcome_row(a: str, b: str) -> MetricRow:
    if a == b:
        mark = ""
    elif a == "ok":
        mark = NEW_FAILURE
    elif b == "ok":
        mark = FIXED
    else:
        mark = NOT_COMPARABLE
    return MetricRow("outcome", "", a, b, "" if a == b else f"{a} -> {b}", mark)


def _counts(a, b, threshold_pct: float) -> bool:
    """A change beyond the threshold (default 0: any change of a deterministic metric)."""
    if a is None or b is None:
        return a is not b
    if a == b:
        return False
    if a == 0:
        return True
    return abs(b - a) / abs(a) * 100 > threshold_pct


def _mark(a, b, polarity: str, threshold_pct: float) -> str:
    if a is None or b is None:
        return NOT_COMPARABLE if a is not b else ""
    if not _counts(a, b, threshold_pct):
        return ""
    if polarity == LOWER:
        return WORSE if b > a else BETTER
    if polarity == HIGHER:
        return WORSE if b < a else BETTER
    return ""


def _change(a, b) -> str:
    if a is None or b is None or a == b:
        return ""
    if a == 0:
        return f"{b - a:+g}"
    return f"{(b - a) / abs(a) * 100:+.1f}%"


def first_divergence(a: list, b: list) -> tuple[int, int] | None:
    """(op index of the last equal checkpoint or -1, op index of the first differing one),
    or None when every common checkpoint is equal."""
    last_equal = -1
    for (ia, da), (ib, db) in zip(a, b, strict=False):
        if ia != ib or da != db:
            return last_equal, min(ia, ib)
        last_equal = ia
    return None
