"""Earlier nightly runs, read from the report.json files beside a report directory.

Layout: one directory per run under a common parent, named so that names sort in run order
(`make nightly` uses the UTC date, reports/nightly/YYYY-MM-DD/):

    reports/nightly/2026-11-24/report.json
    reports/nightly/2026-11-25/report.json   <- kreplay check --report reports/nightly/2026-11-25

A run's label is its directory name; that name is the only date the report shows (nothing
is read from the clock). A sibling whose report.json is not a kreplay check report (or
predates the per-cell metrics) is skipped and named in the page.
"""

from dataclasses import dataclass, field
from pathlib import Path

import msgspec

MAX_RUNS = 60  # the newest runs plotted; older ones are left out of the charts


@dataclass(frozen=True)
class Run:
    label: str
    metrics: dict[tuple[str, str], dict[str, float]]  # (trace, revision) -> metrics


@dataclass
class History:
    runs: list[Run]  # in label order, the current run included
    skipped: list[str] = field(default_factory=list)  # "label: reason"

    def series(self, trace: str, revision: str, metric: str) -> list[float | None]:
        return [run.metrics.get((trace, revision), {}).get(metric) for run in self.runs]


class _Cell(msgspec.Struct):
    trace: str
    revision: str
    metrics: dict[str, float] | None = None


class _Report(msgspec.Struct):
    cells: list[_Cell]


_decoder = msgspec.json.Decoder(_Report)


def parse_run(label: str, data: bytes) -> Run:
    """A report.json as a Run; ValueError saying why when it is not one."""
    try:
        report = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise ValueError(f"not a kreplay check report ({e})") from None
    if report.cells and all(c.metrics is None for c in report.cells):
        raise ValueError("no metrics in its cells (written by an older kreplay)")
    return Run(label, {(c.trace, c.revision): c.metrics for c in report.cells if c.metrics})


def history(report_dir: str, current: Run) -> History:
    """The current run and the runs in the report directory's sibling directories."""
    here = Path(report_dir).resolve()
    runs, skipped = {current.label: current}, []
    for path in sorted(here.parent.glob("*/report.json")):
        label = path.parent.name
        if path.parent == here or label in runs:
            continue
        try:
            runs[label] = parse_run(label, path.read_bytes())
        except (OSError, ValueError) as e:
            skipped.append(f"{label}: {e}")
    ordered = [runs[label] for label in sorted(runs)]
    return History(ordered[-MAX_RUNS:], skipped)
