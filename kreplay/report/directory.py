"""A report directory: report.json (the `check --json` output) and index.html, with the
metric history of the store's earlier checks (history.py)."""

from pathlib import Path

from kreplay.cells import CheckReport
from kreplay.report import html, text
from kreplay.report.history import History


def write_report(
    report: CheckReport, descriptions: dict[str, str], report_dir: str, hist: History, label: str
) -> None:
    """Write DIR/report.json and DIR/index.html for the check labelled `label`."""
    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    page = html.render(report, descriptions, hist, label)
    (folder / "report.json").write_text(text.check_view(report, as_json=True))
    (folder / "index.html").write_text(page, encoding="utf-8")
