"""A report directory: report.json (the `check --json` output), index.html and a page per
trace (trace-<name>.html), with the metric history of the store's earlier checks
(history.py)."""

from pathlib import Path

from kreplay.cells import CheckReport
from kreplay.errors import UsageError
from kreplay.report import html, text
from kreplay.report.history import History


def choose_baseline(requested: str | None, revisions: list[str]) -> str:
    """The revision the report compares the others with: `--baseline REV`, which must be
    one of the revisions checked; by default `base`, else (base not checked) the first."""
    if requested is None:
        return html.DEFAULT_BASELINE if html.DEFAULT_BASELINE in revisions else revisions[0]
    if requested not in revisions:
        raise UsageError(
            f"--baseline {requested!r} is not among the revisions checked ({', '.join(revisions)})"
        )
    return requested


def write_report(
    report: CheckReport,
    descriptions: dict[str, str],
    report_dir: str,
    hist: History,
    label: str,
    baseline: str = html.DEFAULT_BASELINE,
) -> None:
    """Write DIR/report.json, DIR/index.html and DIR/trace-*.html for the check labelled
    `label`; trace pages of an earlier report in DIR whose trace is gone are removed."""
    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    pages = html.render(report, descriptions, hist, label, baseline)
    (folder / "report.json").write_text(text.check_view(report, as_json=True))
    for stale in folder.glob("trace-*.html"):
        if stale.name not in pages:
            stale.unlink()
    for name, page in pages.items():
        (folder / name).write_text(page, encoding="utf-8")
