"""A report directory: report.json (the `check --json` output) and index.html, whose
metric history comes from the report.json of earlier runs beside it (history.py)."""

from pathlib import Path

from kreplay.cells import CheckReport
from kreplay.report import html, text
from kreplay.report.history import Run, history


def write_report(report: CheckReport, descriptions: dict[str, str], report_dir: str) -> None:
    """Write DIR/report.json and DIR/index.html; the run is labelled with DIR's name."""
    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    label = folder.resolve().name
    current = Run(
        label,
        {(c.trace, c.revision): c.result.metrics for c in report.cells if c.result is not None},
    )
    page = html.render(report, descriptions, history(report_dir, current), label)
    (folder / "report.json").write_text(text.check_view(report, as_json=True))
    (folder / "index.html").write_text(page, encoding="utf-8")
