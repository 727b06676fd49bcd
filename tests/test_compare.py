"""Result vs Result (compare.py): marks by polarity, thresholds in both forms, verdicts."""

import pytest

from kreplay.compare import (
    BETTER,
    NEW_FAILURE,
    NOT_COMPARABLE,
    WORSE,
    Threshold,
    compare,
    parse_thresholds,
)
from kreplay.errors import UsageError
from kreplay.result import FORMAT_VERSION, HIGHER, INFO, LOWER, METRICS, Outcome, Result


def result(metrics: dict, status: str = "ok", revision: str = "r") -> Result:
    return Result(
        format_version=FORMAT_VERSION,
        trace="t",
        sha256="0" * 64,
        revision=revision,
        machine="amd64",
        settings={},
        model_version="x",
        ops=1,
        outcome=Outcome(status),
        metrics=metrics,
        kstack_chunks=[],
        partpopq="",
    )


def marks(a: dict, b: dict, thresholds: dict | None = None, **kw) -> dict[str, str]:
    rows = compare(result(a), result(b, **kw), thresholds).rows
    return {r.name: r.mark for r in rows}


def test_every_metric_has_a_polarity():
    assert {polarity for _, polarity, _ in METRICS.values()} == {LOWER, HIGHER, INFO}


def test_marks_follow_polarity_not_the_sign_of_the_change():
    got = marks(
        {"kstack.cache_hits": 5, "kstack.enomem": 1, "kstack.kva_imported_bytes": 10},
        {"kstack.cache_hits": 6, "kstack.enomem": 2, "kstack.kva_imported_bytes": 20},
    )
    assert got["kstack.cache_hits"] == BETTER  # +1, and higher is better
    assert got["kstack.enomem"] == WORSE
    assert got["kstack.kva_imported_bytes"] == ""  # informational: shown, never marked


def test_an_informational_change_alone_is_changed_not_worse():
    cmp = compare(
        result({"kstack.kva_imported_bytes": 10}), result({"kstack.kva_imported_bytes": 20})
    )
    assert cmp.verdict() == "changed" and not cmp.worse


@pytest.mark.parametrize(
    "a, b, threshold, counts",
    [
        (100, 150, Threshold(pct=50), False),  # exactly 50%: within
        (100, 151, Threshold(pct=50), True),
        (0, 1, Threshold(pct=200), True),  # a percentage of 0 tolerates nothing
        (0, 1, Threshold(absolute=1), False),
        (0, 2, Threshold(absolute=1), True),
        (10, 13, Threshold(pct=50, absolute=2), False),  # within the percentage
        (0, 1, Threshold(pct=200, absolute=2), False),  # within the absolute
        (100, 200, Threshold(pct=50, absolute=200), False),  # within the absolute
        (100, 200, Threshold(pct=50, absolute=20), True),  # beyond both
        (5, 5, Threshold(), False),
        (5, 6, Threshold(), True),  # by default any change counts
    ],
)
def test_thresholds(a, b, threshold, counts):
    got = marks({"kstack.enomem": a}, {"kstack.enomem": b}, {"kstack.enomem": threshold})
    assert (got["kstack.enomem"] == WORSE) is counts


def test_threshold_forms_parse_and_combine():
    parsed = parse_thresholds(["kstack.enomem=200", "phys.fmfi=5%", "kstack.enomem=+3"])
    assert parsed == {
        "kstack.enomem": Threshold(pct=200, absolute=3),
        "phys.fmfi": Threshold(pct=5),
    }


@pytest.mark.parametrize(
    "pair, why",
    [
        ("kstack.enomem", "METRIC=PCT%"),
        ("kstack.enomem=-3", "METRIC=PCT%"),
        ("kstack.enomem=lots", "METRIC=PCT%"),
        ("no.such.metric=5", "unknown metric"),
    ],
)
def test_bad_thresholds(pair, why):
    with pytest.raises(UsageError, match=why):
        parse_thresholds([pair])


def test_the_same_form_twice_is_refused():
    with pytest.raises(UsageError, match="already"):
        parse_thresholds(["kstack.enomem=5%", "kstack.enomem=10"])


def test_verdicts():
    ok = {"kstack.enomem": 1}
    assert compare(result(ok), result(ok)).verdict() == "same"
    assert compare(result(ok), result({"kstack.enomem": 0})).verdict() == "better"
    new_panic = compare(result(ok), result(ok, status="panic"))
    assert new_panic.verdict() == "failed" and new_panic.worse  # exit 1: a new failure
    assert new_panic.rows[0].mark == NEW_FAILURE
    both = compare(result(ok, status="hang"), result(ok, status="hang"))
    assert both.verdict() == "failed" and not both.worse  # not new
    assert compare(result(ok, status="panic"), result(ok)).verdict() == "better"  # fixed


def test_a_failed_side_makes_changed_metrics_not_comparable():
    got = marks({"kstack.enomem": 1}, {"kstack.enomem": 2}, status="panic")
    assert got["kstack.enomem"] == NOT_COMPARABLE
