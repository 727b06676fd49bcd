"""The nightly check as one self-contained HTML page (inline CSS and SVG, no script, no
network): the trace x revision matrix, then per trace the metrics of every revision side by
side, the differences from golden, the reservation population maps, the kstack KVA/pindex
layouts and the metric history.

render() is a pure function of its arguments: the same report, descriptions and history
give the same bytes. Everything that came from a trace, a revision file or a directory
name is escaped.
"""

from html import escape

from kreplay.cells import Cell, CheckReport
from kreplay.pictures import CACHED, GUARD, HOLE, LIVE, SLOT_FREE, Pictures
from kreplay.report import svg
from kreplay.report.history import History
from kreplay.result import HIGHER, LOWER, METRICS

REVISION_COLOURS = ("#495057", "#1971c2", "#e8590c", "#2f9e44", "#9c36b5", "#c2255c", "#0c8599")
STATUS_CLASS = {
    "ok": "ok",
    "panic": "kbug",
    "hang": "kbug",
    "differs": "bad",
    "error": "bad",
    "no golden": "warn",
}
POLARITY = {LOWER: "lower is better", HIGHER: "higher is better"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"DejaVu Sans",sans-serif;color:#212529;
margin:0 auto;max-width:1500px;padding:16px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:2px solid
#dee2e6;padding-bottom:3px}h3{font-size:15px;margin:18px 0 6px}
code,.mono,td.num{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:12.5px}
table{border-collapse:collapse}th,td{border:1px solid #dee2e6;padding:3px 8px;text-align:left}
th{background:#f1f3f5}td.num{text-align:right}td.best{font-weight:bold}
td.changed{background:#ffe3e3}a{color:#1864ab}
.matrix td{text-align:center;min-width:90px}.matrix td a{display:block;text-decoration:none;
font-weight:600}
.ok{background:#d3f9d8}.ok a{color:#2b8a3e}.bad{background:#ffc9c9}.bad a{color:#c92a2a}
.warn{background:#fff3bf}.warn a{color:#8f5b00}
.kbug{background:#d3f9d8}.kbug a{color:#fff;background:#e8590c;border-radius:3px}
.summary{color:#495057}.note{font-size:11px;fill:#495057}.lbl{font-size:11px;fill:#495057;
text-anchor:end;font-family:"DejaVu Sans Mono",monospace}
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
"""


def render(report: CheckReport, descriptions: dict[str, str], hist: History, label: str) -> str:
    """The whole page. `descriptions`: revision name -> one line; `label`: this run's name
    (the report directory's name), shown as its title."""
    traces = list(dict.fromkeys(c.trace for c in report.cells))
    revisions = list(dict.fromkeys(c.revision for c in report.cells))
    cells = {(c.trace, c.revision): c for c in report.cells}
    page = Page(traces, revisions, cells, descriptions, hist)
    body = [
        _header(report, label),
        page.matrix(),
        _orphans(report.orphans),
        *(page.trace_section(t) for t in traces),
        page.revision_list(),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>kreplay check {escape(label)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{svg.DEFS}\n{''.join(body)}</body></html>\n"
    )


def _header(report: CheckReport, label: str) -> str:
    bad = sum(1 for c in report.cells if not c.matches)
    verdict = "FAILED" if report.failed else "all cells match their golden files"
    return (
        f"<h1>kreplay nightly check: {escape(label)}</h1>\n"
        f'<p class="summary">{len(report.cells)} cells, {bad} not matching golden, '
        f"{len(report.orphans)} orphaned golden files: <b>{verdict}</b>.</p>\n"
    )


def _orphans(orphans: list[str]) -> str:
    if not orphans:
        return ""
    items = "".join(f"<li><code>{escape(p)}</code></li>" for p in orphans)
    return f"<h2>Orphaned golden files</h2><p>Trace or revision gone:</p><ul>{items}</ul>\n"


def _slug(i: int) -> str:
    return f"t{i}"


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class Page:
    def __init__(self, traces, revisions, cells, descriptions, hist: History):
        self.traces, self.revisions, self.cells = traces, revisions, cells
        self.descriptions, self.hist = descriptions, hist
        self.colour = {
            r: REVISION_COLOURS[i % len(REVISION_COLOURS)] for i, r in enumerate(revisions)
        }

    def _anchor(self, trace: str, revision: str) -> str:
        return f"{_slug(self.traces.index(trace))}-r{self.revisions.index(revision)}"

    # ------------------------------------------------------------------ matrix

    def matrix(self) -> str:
        head = "".join(f"<th>{escape(r)}</th>" for r in self.revisions)
        rows = []
        for i, trace in enumerate(self.traces):
            tds = []
            for revision in self.revisions:
                cell = self.cells.get((trace, revision))
                if cell is None:
                    tds.append("<td>-</td>")
                    continue
                css = STATUS_CLASS.get(cell.status, "bad")
                anchor = ("diff-" if not cell.matches else "m-") + self._anchor(trace, revision)
                tds.append(f'<td class="{css}"><a href="#{anchor}">{escape(cell.status)}</a></td>')
            rows.append(
                f'<tr><th><a href="#{_slug(i)}">{escape(trace)}</a></th>{"".join(tds)}</tr>'
            )
        return (
            '<h2 id="matrix">Traces &times; revisions against golden/</h2>\n'
            f'<table class="matrix"><thead><tr><th>trace</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>\n"
            '<p class="legend">ok: byte-identical to golden; panic/hang (orange on green): '
            "the model found a kernel bug, the same one the golden file records; "
            "differs: see the trace's differences; "
            "no golden: kreplay golden update writes it.</p>\n"
        )

    # ------------------------------------------------------------------ per trace

    def trace_section(self, trace: str) -> str:
        i = self.traces.index(trace)
        cells = [self.cells[(trace, r)] for r in self.revisions if (trace, r) in self.cells]
        first = next((c.result for c in cells if c.result is not None), None)
        facts = ""
        if first is not None:
            facts = (
                f'<p class="summary">machine <b>{escape(first.machine)}</b>, '
                f"{first.ops} ops, sha256 <code>{escape(first.sha256[:16])}</code></p>"
            )
        return (
            f'<section class="trace"><h2 id="{_slug(i)}">{escape(trace)}</h2>{facts}\n'
            f"{self.metrics_table(trace, cells)}{self.differences(cells)}"
            f"{self.population_maps(cells)}{self.layouts(cells)}{self.trends(trace, i)}"
            "</section>\n"
        )

    def metrics_table(self, trace: str, cells: list[Cell]) -> str:
        head = "".join(
            f'<th id="m-{self._anchor(trace, c.revision)}">{escape(c.revision)}</th>' for c in cells
        )
        rows = ["<tr><td>outcome</td><td></td>" + "".join(self._outcome(c) for c in cells)]
        rows[0] += "</tr>"
        against_golden = [
            {r.name: r for r in c.comparison.rows} if c.comparison else {} for c in cells
        ]
        for name, (unit, polarity, meaning) in METRICS.items():
            values = [c.result.metrics.get(name) if c.result else None for c in cells]
            best = _best(values, polarity)
            tds = "".join(
                self._value_td(golden.get(name), v, v is not None and v == best)
                for golden, v in zip(against_golden, values, strict=True)
            )
            hint = f"{meaning}; {POLARITY[polarity]}" if polarity in POLARITY else meaning
            rows.append(
                f'<tr><td title="{escape(hint)}"><code>{name}</code></td>'
                f"<td>{escape(unit)}</td>{tds}</tr>"
            )
        return (
            "<h3>Metrics</h3>"
            '<p class="legend">Bold: the best value where revisions differ (by the '
            "metric's polarity); red: differs from the golden file (hover for the golden "
            "value).</p>"
            f"<table><thead><tr><th>metric</th><th>unit</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>\n"
        )

    @staticmethod
    def _outcome(cell: Cell) -> str:
        if cell.result is None:
            return f'<td class="bad">{escape(cell.status)}</td>'
        outcome = cell.result.outcome
        title = f' title="{escape(outcome.message)}"' if outcome.message else ""
        css = "" if outcome.status == "ok" else ' class="warn"'
        return f"<td{css}{title}>{escape(outcome.status)}</td>"

    @staticmethod
    def _value_td(row, value, best: bool) -> str:
        """A metric's cell; `row`: its comparison with the golden file, if there was one."""
        classes, title = ["num"], ""
        if row is not None and (row.change or row.mark):
            classes.append("changed")
            title = f' title="golden: {escape(_number(row.a))} {escape(row.mark)}"'
        if best:
            classes.append("best")
        return f'<td class="{" ".join(classes)}"{title}>{_number(value)}</td>'

    def differences(self, cells: list[Cell]) -> str:
        out = []
        for c in cells:
            if c.matches:
                continue
            anchor = self._anchor(c.trace, c.revision)
            parts = [f"<b>{escape(c.revision)}</b>: {escape(c.status)} {escape(c.detail)}"]
            if c.comparison is not None:
                changed = [r for r in c.comparison.rows if r.change or r.mark]
                parts += [
                    f"<br><code>{escape(r.mark or ' ')} {escape(r.name)}: "
                    f"{escape(_number(r.a))} &rarr; {escape(_number(r.b))} "
                    f"{escape(r.change)}</code>"
                    for r in changed
                ]
            if c.first_op:
                f = c.first_op
                parts.append(
                    f"<br>first divergent op #{f['op_index']} {escape(str(f['kind']))} "
                    f"pid {f['pid']} tid {f['tid']} (trace line {f['line']}); state "
                    f"differs by op #{f['window_end']}"
                )
            out.append(f'<div class="diff" id="diff-{anchor}">{"".join(parts)}</div>')
        return "<h3>Differences from golden</h3>" + "".join(out) + "\n" if out else ""

    # ------------------------------------------------------------------ pictures

    def population_maps(self, cells: list[Cell]) -> str:
        figures = []
        for c in cells:
            if c.pictures is None:
                continue
            pops = c.pictures.population
            for pop in pops:
                shown = max((w.index for w in pop.used), default=-1) + 1
                kstack = [w for w in pop.used if w.kstack]
                where = f" domain {pop.domain}" if len(pops) > 1 else ""
                figures.append(
                    f"<figure><figcaption>{escape(c.revision)}{where} <span>"
                    f"{len(pop.used)} windows in use, {len(kstack)} with kstack pages; "
                    f"windows 0-{max(shown - 1, 0)} of {pop.windows} shown</span>"
                    f"</figcaption>{svg.population_map(pop, len(pops))}"
                    f'<div class="legend">{_kstack_windows(kstack)}</div></figure>'
                )
        if not figures:
            return ""
        legend = (
            '<p class="legend">Each cell is a 2 MiB physical window (512 pages), '
            f"{svg.MAP_COLUMNS} to a row from physical address 0; the windows above the "
            "last one shown hold no page. Shade: pages allocated in the window. "
            f'<span class="sw" style="background:{svg.shade(svg.HUE["kstack"], 1)}"></span>'
            "kstack reservation"
            f'<span class="sw" style="background:{svg.shade(svg.HUE["user"], 1)}"></span>'
            "user reservation"
            f'<span class="sw" style="background:{svg.shade(svg.HUE[""], 1)}"></span>'
            'no reservation (order-0 pages) <span class="sw" style="border:2px solid #000">'
            "</span>window holding kstack pages. Under each map: the windows holding kstack "
            "pages, with their kstack pages (rv: a kstack reservation owns the window). "
            "Hover a cell for its numbers.</p>"
        )
        return (
            f"<h3>Reservation population at the end of the replay</h3>{legend}{''.join(figures)}\n"
        )

    def layouts(self, cells: list[Cell]) -> str:
        figures = [self._layout_figure(c) for c in cells if c.pictures is not None]
        if not figures:
            return ""
        legend = (
            '<p class="legend">Left: the first 2 MiB KVA windows holding kstack slots '
            "(one pixel per 4 KiB page, address of each row's first page; black tick: a "
            "kstack arena chunk begins). Right: the first 512-pindex windows of "
            "kstack_object holding pages (orange background: a reservation backs the "
            "window: rv popcnt/512). Above each, the first "
            f"{svg.ZOOM_PAGES} pages enlarged (G guard, K stack, h hole). "
            f"{svg.layout_legend(LIVE + CACHED + GUARD)}"
            f"{svg.layout_legend(SLOT_FREE + HOLE)}</p>"
        )
        return f"<h3>kstack KVA and pindex layout</h3>{legend}{''.join(figures)}\n"

    @staticmethod
    def _layout_figure(cell: Cell) -> str:
        pics: Pictures = cell.pictures
        machine = cell.result.machine if cell.result is not None else ""
        shown = [c for c in pics.chunks if any(r.start <= c.kva < r.start + 512 for r in pics.kva)]
        if pics.chunks:
            where = f"{len(pics.chunks)} kstack arena chunks ({pics.chunks[0].slots} slots)"
        else:
            where = f"KVA from {escape(pics.kva_source)}, no kstack arena"
        caption = (
            f"{escape(cell.revision)} <span>K={pics.kstack_pages} G={pics.guard_pages}, {where}, "
            f"pindex {escape(pics.pindex_policy)}</span>"
        )
        return (
            f'<figure><figcaption>{caption}</figcaption><div class="pair">'
            f"{svg.layout(pics.kva, 'kva', shown, machine)}{svg.layout(pics.pindex, 'pindex')}"
            "</div></figure>"
        )

    # ------------------------------------------------------------------ history

    def trends(self, trace: str, i: int) -> str:
        labels = [run.label for run in self.hist.runs]
        if len(labels) < 2:
            return (
                f'<h3 id="h-{_slug(i)}">Metric history</h3><p class="legend">Only this check '
                "is in the store: the history is that of the checks run on this store "
                "(<code>kreplay history</code>).</p>\n"
            )
        charts, flat = [], []
        for name in METRICS:
            lines = [(r, self.colour[r], self.hist.series(trace, r, name)) for r in self.revisions]
            if all(len(set(series)) <= 1 for _, _, series in lines):
                flat.append(name)
                continue
            charts.append(
                f"<figure><figcaption>{name}</figcaption>"
                f"{svg.trend_chart(name, labels, lines)}</figure>"
            )
        key = "".join(
            f'<span class="sw" style="background:{self.colour[r]}"></span>{escape(r)}'
            for r in self.revisions
        )
        unchanged = (
            f'<p class="legend">Unchanged over these runs: {", ".join(flat)}.</p>' if flat else ""
        )
        return (
            f'<h3 id="h-{_slug(i)}">Metric history</h3><p class="legend">{len(labels)} runs, '
            f"{escape(labels[0])} to {escape(labels[-1])}. Lines of revisions with "
            f"equal values overlap.<br>{key}</p>"
            f'<div class="trends">{"".join(charts)}</div>{unchanged}\n'
        )

    def revision_list(self) -> str:
        items = "".join(
            f'<tr><th><span class="sw" style="background:{self.colour[r]}"></span>'
            f"{escape(r)}</th><td>{escape(self.descriptions.get(r, ''))}</td></tr>"
            for r in self.revisions
        )
        return f'<h2 id="revisions">Revisions</h2><table>{items}</table>\n'


def _kstack_windows(windows: list, most: int = 8) -> str:
    """'kstack windows: 0: 100/512 rv, ...': the physical side of the EFB patterns."""
    if not windows:
        return "no kstack pages"
    items = [f"{w.index}: {w.kstack}/512{' rv' if w.reserv == 'kstack' else ''}" for w in windows]
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return "kstack windows " + ", ".join(items[:most]) + more


def _best(values: list, polarity: str):
    present = [v for v in values if v is not None]
    if polarity not in (LOWER, HIGHER) or len(set(present)) < 2:
        return None
    return min(present) if polarity == LOWER else max(present)
