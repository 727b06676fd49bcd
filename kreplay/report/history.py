"""The metric history of earlier checks, as the store's `checks` and `check_cells` tables
hold it (Store.check_history rows): one run per check label, oldest first.

A check's label is `kreplay check --label`, else its report directory's name (`make nightly`
uses the UTC date, reports/nightly/YYYY-MM-DD/), else `check N`; that label is the only date
the report shows (nothing is read from the clock). A label checked again (two nightly runs
on one day) keeps its latest check.
"""

from collections.abc import Iterable
from dataclasses import dataclass

MAX_RUNS = 60  # the newest runs plotted; older ones are left out of the charts

# (check_id, label, trace, revision, status, metric, value): Store.check_history
HistoryRow = tuple[int, str, str, str, str, str | None, float | None]


@dataclass(frozen=True)
class Run:
    label: str
    metrics: dict[tuple[str, str], dict[str, float]]  # (trace, revision) -> metrics


@dataclass
class History:
    runs: list[Run]  # oldest first, the current check included

    def series(self, trace: str, revision: str, metric: str) -> list[float | None]:
        return [run.metrics.get((trace, revision), {}).get(metric) for run in self.runs]


def from_rows(rows: Iterable[HistoryRow], most: int = MAX_RUNS) -> History:
    """The history of the rows' checks: the newest `most` labels, each its latest check."""
    checks: dict[int, Run] = {}
    for check_id, label, trace, revision, _status, metric, value in rows:
        run = checks.setdefault(check_id, Run(label, {}))
        cell = run.metrics.setdefault((trace, revision), {})
        if metric is not None and value is not None:
            cell[metric] = value
    latest = {run.label: (check_id, run) for check_id, run in sorted(checks.items())}
    ordered = [run for _, run in sorted(latest.values(), key=lambda pair: pair[0])]
    return History(ordered[-most:])
