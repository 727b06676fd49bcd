"""What the report's pages share: the CSS, the page frame, the names of anchors and files,
and the facts every page reads (Context). Everything from a trace, a revision file or a
label is escaped where it is written; file names are also URL-quoted."""

from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from kreplay.cells import Cell, CheckReport
from kreplay.compare import BETTER, FIXED, NEW_FAILURE, NOT_COMPARABLE, WORSE
from kreplay.report import changes, svg
from kreplay.report.history import History

STATUS_CLASS = {
    "ok": "ok",
    "panic": "kbug",
    "hang": "kbug",
    "differs": "bad",
    "error": "bad",
    "no golden": "warn",
}
# A changed metric's colour, by its mark (which follows the metric's polarity).
MARK_CLASS = {
    WORSE: "worse",
    NEW_FAILURE: "worse",
    BETTER: "better",
    FIXED: "better",
    NOT_COMPARABLE: "nc",
    "": "info",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"DejaVu Sans",sans-serif;color:#212529;
margin:0 auto;max-width:1500px;padding:12px 24px}
h1{font-size:21px;margin:0 0 2px}h2{font-size:17px;margin:22px 0 6px;border-bottom:2px solid
#dee2e6;padding-bottom:3px}h3{font-size:15px;margin:14px 0 4px}
code,.mono,td.num{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:12.5px}
table{border-collapse:collapse}th,td{border:1px solid #dee2e6;padding:2px 7px;text-align:left}
th{background:#f1f3f5}td.num{text-align:right}a{color:#1864ab}
.matrix td{text-align:center;min-width:60px}.matrix td a{display:block;text-decoration:none;
font-weight:600}
.ok{background:#d3f9d8}.ok a{color:#2b8a3e}.bad{background:#ffc9c9}.bad a{color:#c92a2a}
.warn{background:#fff3bf}.warn a{color:#8f5b00}
.kbug{background:#d3f9d8}.kbug a{color:#fff;background:#e8590c;border-radius:3px}
.worse td.v,td.worse{background:#ffe3e3;color:#c92a2a}
.better td.v,td.better{background:#d3f9d8;color:#2b8a3e}
.info td.v,td.info{color:#495057}.nc td.v,td.nc{background:#fff3bf}
td.golden{outline:2px solid #c92a2a;outline-offset:-2px}
.changes td{font-size:12.5px;padding:1px 6px}.changes th.t{vertical-align:top}
.verdict td{font-size:13px}
.summary{color:#495057;margin:2px 0}.note{font-size:11px;fill:#495057}.lbl{font-size:11px;
fill:#495057;text-anchor:end;font-family:"DejaVu Sans Mono",monospace}
.tick{font-size:10px;fill:#495057;font-family:"DejaVu Sans Mono",monospace}
figure{margin:0 18px 14px 0;display:inline-block;vertical-align:top}
figcaption{font-weight:600;margin-bottom:3px}figcaption span{font-weight:normal;color:#495057}
.sw{display:inline-block;width:11px;height:11px;margin:0 3px 0 10px;vertical-align:-1px;
border:1px solid #adb5bd}
.legend{font-size:12.5px;color:#495057;margin:4px 0 8px}
.diff{border-left:4px solid #fa5252;padding:2px 10px;margin:8px 0}
.trends{display:flex;flex-wrap:wrap;gap:6px 14px}.trends figure{margin:0}
.zl{font:bold 10px "DejaVu Sans Mono",monospace;fill:#fff;text-anchor:middle}
.pair{display:flex;flex-wrap:wrap;gap:4px 12px}
.trends figcaption{font:12px "DejaVu Sans Mono",monospace}
nav{font-size:13px;margin:0 0 6px}nav a{margin-right:10px}
"""


def page(title: str, body: list[str]) -> str:
    """A whole self-contained page."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{''.join(body)}</body></html>\n"
    )


def trace_file(trace: str) -> str:
    """The per-trace page's file name (trace names are of a safe alphabet, kreplay/names.py)."""
    return f"trace-{trace}.html"


def trace_href(trace: str, anchor: str = "") -> str:
    return escape(quote(trace_file(trace)) + (f"#{anchor}" if anchor else ""))


def number(value) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


@dataclass
class Context:
    """The facts every page of one report reads."""

    report: CheckReport
    descriptions: dict[str, str]
    hist: History
    label: str
    baseline: str
    traces: list[str]
    revisions: list[str]
    cells: dict[tuple[str, str], Cell]
    colour: dict[str, str]

    @classmethod
    def of(cls, report, descriptions, hist, label, baseline) -> "Context":
        traces = list(dict.fromkeys(c.trace for c in report.cells))
        revisions = list(dict.fromkeys(c.revision for c in report.cells))
        cells = {(c.trace, c.revision): c for c in report.cells}
        colour = svg.palette(revisions)
        return cls(report, descriptions, hist, label, baseline, traces, revisions, cells, colour)

    def rid(self, revision: str) -> str:
        """A revision's id in anchors (names may hold '+' and '.')."""
        return f"r{self.revisions.index(revision)}"

    def cell_anchor(self, cell: Cell) -> str:
        """Where a matrix cell links: its differences, or its column of metrics."""
        return ("diff-" if not cell.matches else "m-") + self.rid(cell.revision)

    def swatch(self, revision: str) -> str:
        return f'<span class="sw" style="background:{self.colour[revision]}"></span>'

    def names(self, revisions: list[str]) -> str:
        return ", ".join(escape(r) for r in revisions)

    def trace_groups(self, trace: str) -> list[list[str]]:
        """The trace's revisions with identical Results, grouped (one column each)."""
        return changes.fold(
            [r for r in self.revisions if (trace, r) in self.cells], [trace], self.cells
        )
