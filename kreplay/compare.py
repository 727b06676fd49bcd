"""Result vs Result: per-metric changes with polarity, thresholds and asv-style marks.

Marks (DESIGN.md §7): `+` worse, `-` better, `!` a new panic or hang, `*` a fixed one,
`x` not comparable (a side is missing or did not finish), blank: no change that counts.
Worse and better follow the metric's polarity (result.METRICS, docs/regression.md), not
the sign of the change: more cache hits is better, so it is marked `-`. An informational
metric that changes is listed without a mark: it is a difference, never a verdict. The
first divergence between two runs is the first checkpoint whose state digest differs.
"""

import re
from dataclasses import dataclass, field

from kreplay.errors import UsageError
from kreplay.result import HIGHER, LOWER, METRICS, Result

WORSE, BETTER, NEW_FAILURE, FIXED, NOT_COMPARABLE = "+", "-", "!", "*", "x"
MARKS = {
    WORSE: "worse",
    BETTER: "better",
    NEW_FAILURE: "new panic or hang",
    FIXED: "fixed panic or hang",
    NOT_COMPARABLE: "not comparable (a side failed, or lacks the metric)",
}
# A trace's verdict, in precedence order: its second revision panics or hangs; something
# got worse; something got better; only informational metrics changed; nothing did.
VERDICTS = ("failed", "worse", "better", "changed", "same")


@dataclass(frozen=True)
class Threshold:
    """How much change of a metric is tolerated (--threshold METRIC=PCT% or METRIC=+N):
    a percentage of the first value, an absolute amount, or both. A change counts when it
    is beyond every tolerance given; with none, any change counts. A percentage of 0 is 0,
    so under a percentage alone every change from 0 counts: give +N for that."""

    pct: float | None = None
    absolute: float | None = None

    def passed(self, a: float, b: float) -> bool:
        delta = abs(b - a)
        if delta == 0:
            return False
        if self.pct is not None and delta <= self.pct / 100 * abs(a):
            return False
        return self.absolute is None or delta > self.absolute


ANY_CHANGE = Threshold()
_THRESHOLD = re.compile(r"^(?:(?P<pct>\d+(?:\.\d*)?)%?|\+(?P<abs>\d+(?:\.\d*)?))$")


def parse_thresholds(pairs: list[str]) -> dict[str, Threshold]:
    """`METRIC=PCT`, `METRIC=PCT%` or `METRIC=+N`, several for one metric combined."""
    out: dict[str, Threshold] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        match = _THRESHOLD.match(value.strip())
        if not sep or match is None:
            raise UsageError(f"--threshold takes METRIC=PCT%, or METRIC=+N, not {pair!r}")
        if name not in METRICS:
            raise UsageError(f"--threshold {pair!r}: unknown metric {name!r}")
        old = out.get(name, ANY_CHANGE)
        pct = float(match["pct"]) if match["pct"] is not None else None
        absolute = float(match["abs"]) if match["abs"] is not None else None
        if (pct is not None and old.pct is not None) or (
            absolute is not None and old.absolute is not None
        ):
            raise UsageError(f"--threshold {pair!r}: {name} has a threshold of that form already")
        out[name] = Threshold(
            pct if pct is not None else old.pct, absolute if absolute is not None else old.absolute
        )
    return out


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
        """One of VERDICTS."""
        if self.outcome_b != "ok":
            return "failed"
        if self.worse:
            return "worse"
        if any(r.mark in (BETTER, FIXED) for r in self.rows):
            return "better"
        return "changed" if self.changed else "same"


def compare(
    a: Result,
    b: Result,
    thresholds: dict[str, Threshold] | None = None,
    labels: tuple[str, str] | None = None,
) -> Comparison:
    """Compare two Results of the same trace, a Threshold per metric (default: any
    change counts)."""
    thresholds = thresholds or {}
    la, lb = labels or (a.revision, b.revision)
    cmp = Comparison(a.trace, la, lb, a.outcome.status, b.outcome.status)
    cmp.rows.append(_outcome_row(a.outcome.status, b.outcome.status))
    comparable = a.sha256 == b.sha256 and a.outcome.status == b.outcome.status == "ok"
    for name in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = a.metrics.get(name), b.metrics.get(name)
        unit, polarity, _ = METRICS[name]  # a Result holds registry metrics only
        threshold = thresholds.get(name, ANY_CHANGE)
        mark = _mark(va, vb, polarity, threshold)
        if not comparable and _counts(va, vb, threshold):
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


def _counts(a, b, threshold: Threshold) -> bool:
    """A change beyond the threshold (default: any change of a deterministic metric)."""
    if a is None or b is None:
        return a is not b
    return threshold.passed(a, b)


def _mark(a, b, polarity: str, threshold: Threshold) -> str:
    if a is None or b is None:
        return NOT_COMPARABLE if a is not b else ""
    if not _counts(a, b, threshold):
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
