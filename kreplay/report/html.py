"""The nightly check as self-contained HTML pages (inline CSS and SVG, no script, no
network). index.html leads with what changed: the cells that do not match golden, then each
revision against the baseline (revisions with identical Results folded together), per trace
the metrics that changed; then the trace x revision matrix and the revisions. Each trace has
a page of its own (trace_page.py) with the metrics, the pictures and the history.

render() is a pure function of its arguments: the same report, descriptions, history,
label and baseline give the same pages, byte for byte. Everything that came from a trace, a
revision file or a directory name is escaped.
"""

from html import escape

from kreplay.cells import CheckReport
from kreplay.compare import MARKS
from kreplay.report import changes, trace_page
from kreplay.report.history import History
from kreplay.report.markup import MARK_CLASS, STATUS_CLASS, Context, number, page, trace_file
from kreplay.report.markup import trace_href as href

DEFAULT_BASELINE = "base"
MARK_WORD = {"+": "worse", "-": "better", "!": "new failure", "*": "fixed", "x": "n/c", "": "info"}


def render(
    report: CheckReport,
    descriptions: dict[str, str],
    hist: History,
    label: str,
    baseline: str = DEFAULT_BASELINE,
) -> dict[str, str]:
    """Every page, file name -> text. `descriptions`: revision name -> one line; `label`:
    this run's name (the report directory's name), shown as its title; `baseline`: the
    revision the others are compared with (when it was not checked, the first revision)."""
    ctx = Context.of(report, descriptions, hist, label, baseline)
    if ctx.baseline not in ctx.revisions and ctx.revisions:
        ctx.baseline = ctx.revisions[0]
    pages = {"index.html": index(ctx)}
    for trace in ctx.traces:
        pages[trace_file(trace)] = trace_page.render(ctx, trace)
    return pages


def index(ctx: Context) -> str:
    body = [
        _header(ctx),
        _failures(ctx),
        _changes(ctx),
        _matrix(ctx),
        _validations(ctx),
        _orphans(ctx.report.orphans),
        _revision_list(ctx),
    ]
    return page(f"kreplay check {ctx.label}", body)


def _header(ctx: Context) -> str:
    report = ctx.report
    bad = sum(1 for c in report.cells if not c.matches)
    verdict = "FAILED" if report.failed else "all cells match their golden files"
    return (
        f"<h1>kreplay nightly check: {escape(ctx.label)}</h1>\n"
        f'<p class="summary">{len(ctx.traces)} traces &times; {len(ctx.revisions)} revisions: '
        f"{len(report.cells)} cells, {bad} not matching golden, {len(report.orphans)} orphaned "
        f"golden files: <b>{verdict}</b>.</p>\n"
        '<nav><a href="#failures">failures</a><a href="#changes">changes against '
        f'{escape(ctx.baseline)}</a><a href="#matrix">matrix</a>'
        '<a href="#revisions">revisions</a></nav>\n'
    )


def _failures(ctx: Context) -> str:
    failing = [c for c in ctx.report.cells if not c.matches]
    if not failing:
        return '<p id="failures">No failures: every cell matches its golden file.</p>\n'
    items = []
    for c in failing:
        items.append(
            f'<li class="{STATUS_CLASS.get(c.status, "bad")}"><a href="'
            f'{href(c.trace, ctx.cell_anchor(c))}">{escape(c.trace)} / {escape(c.revision)}</a>: '
            f"<b>{escape(c.status)}</b> {escape(c.detail)}{_golden_rows(c)}</li>"
        )
    return (
        f'<h2 id="failures">Failures: {len(failing)} cells do not match golden</h2>'
        f"<ul>{''.join(items)}</ul>\n"
    )


def _golden_rows(cell) -> str:
    if cell.comparison is None:
        return ""
    changed = [r for r in cell.comparison.rows if r.change or r.mark][:6]
    return "".join(
        f"<br><code>{escape(r.mark or ' ')} {escape(r.name)}: golden {escape(number(r.a))} "
        f"&rarr; {escape(number(r.b))} {escape(r.change)}</code>"
        for r in changed
    )


# ---------------------------------------------------------------------------- changes


def _changes(ctx: Context) -> str:
    groups = changes.fold(ctx.revisions, ctx.traces, ctx.cells)
    rows = changes.against(ctx.baseline, groups, ctx.traces, ctx.cells)
    twins = next((g for g in groups if ctx.baseline in g), [ctx.baseline])
    same = [r for r in twins if r != ctx.baseline]
    head = (
        f'<h2 id="changes">Changes against the baseline <code>{escape(ctx.baseline)}</code></h2>'
        '<p class="legend">Per revision, the traces where its Result differs from the '
        f"baseline's, as <code>kreplay diff {escape(ctx.baseline)} REV</code> says (marks "
        "follow each metric's polarity): "
        '<span class="sw" style="background:#ffe3e3"></span>worse '
        '<span class="sw" style="background:#d3f9d8"></span>better '
        '<span class="sw" style="background:#fff"></span>informational (a difference, '
        'never a verdict) <span class="sw" style="background:#fff3bf"></span>not comparable. '
        "Revisions with identical Results on every trace share one section.</p>"
    )
    if same:
        head += f"<p>Identical to {escape(ctx.baseline)} on every trace: {ctx.names(same)}.</p>"
    if not rows:
        return head + "<p>No other revision was checked.</p>\n"
    return head + _verdict_table(ctx, rows) + "".join(_group(ctx, g) for g in rows) + "\n"


# The verdict table's columns: the traces of the first three are named (where it
# regressed), the others counted, with their names on hover.
VERDICT_COLUMNS = ("failed", "worse", "not comparable", "better", "changed", "same")
NAMED = ("failed", "worse", "not comparable")
SEVERITY = {v: i for i, v in enumerate(VERDICT_COLUMNS)}


def _verdict_table(ctx: Context, rows: list) -> str:
    every = [g.verdicts() for g in rows]
    columns = [v for v in VERDICT_COLUMNS if v != "not comparable" or any(v in e for e in every)]
    head = "".join(f"<th>{v}</th>" for v in columns)
    body = []
    for g, verdicts in zip(rows, every, strict=True):
        tds = "".join(_verdict_td(ctx, g, v, verdicts.get(v, [])) for v in columns)
        body.append(
            f'<tr><th><a href="#c-{ctx.rid(g.names[0])}">{ctx.names(g.names)}</a></th>{tds}</tr>'
        )
    return (
        f'<table class="verdict"><thead><tr><th>revision vs {escape(ctx.baseline)}</th>'
        f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>\n"
    )


def _verdict_td(ctx: Context, group, verdict: str, traces: list[str]) -> str:
    if not traces:
        return "<td></td>"
    css = {"failed": "worse", "worse": "worse", "better": "better", "not comparable": "nc"}
    attr = f' class="{css[verdict]}"' if verdict in css else ""
    if verdict in NAMED:
        links = ", ".join(
            f'<a href="#{_row_id(ctx, group.names[0], t)}">{escape(t)}</a>' for t in traces
        )
        return f"<td{attr}>{links}</td>"
    count = "all" if len(traces) == len(ctx.traces) else str(len(traces))
    return f'<td{attr} title="{", ".join(escape(t) for t in traces)}">{count}</td>'


def _row_id(ctx: Context, revision: str, trace: str) -> str:
    return f"c-{ctx.rid(revision)}-t{ctx.traces.index(trace)}"


def _group(ctx: Context, group: changes.RevisionChanges) -> str:
    """A revision's section: a table of the traces where it changed, worst first, and a
    line for the traces where it did not."""
    rows, same = [], []
    for change in sorted(group.traces, key=lambda c: SEVERITY.get(c.verdict, 0)):
        row_id = _row_id(ctx, group.names[0], change.trace)
        if change.verdict == "same":
            same.append(change.trace)
        else:
            rows += _trace_block(change, row_id)
    names = ctx.names(group.names)
    note = f"<p>Same as {escape(ctx.baseline)} on: {', '.join(escape(t) for t in same)}.</p>"
    table = (
        f'<table class="changes"><thead><tr><th>trace</th><th>metric</th>'
        f"<th>{escape(ctx.baseline)}</th><th>{names}</th><th>delta</th><th>%</th><th></th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return (
        f'<h3 id="c-{ctx.rid(group.names[0])}">{names} vs {escape(ctx.baseline)}</h3>'
        f"{table if rows else ''}{note if same else ''}"
    )


def _trace_block(change: changes.TraceChange, row_id: str) -> list[str]:
    """A trace's rows in a revision's table: its changed metrics, or one line saying why
    there are none to show (a side has no Result; both panicked or hung alike)."""
    if change.rows:
        return _trace_rows(change.trace, change.rows, row_id)
    if change.comparison is None:
        why = f"not comparable: {change.missing}"
    else:  # failed on both sides alike: not new, but not fine either
        why = f"{change.comparison.outcome_b} under both (no metric compared)"
    return [
        f'<tr class="nc" id="{row_id}"><th class="t"><a href="{href(change.trace)}">'
        f'{escape(change.trace)}</a></th><td colspan="6">{escape(why)}</td></tr>'
    ]


def _trace_rows(trace: str, lines: list, row_id: str) -> list[str]:
    out = []
    for n, r in enumerate(lines):
        first = f' id="{row_id}"' if n == 0 else ""
        th = (
            f'<th class="t" rowspan="{len(lines)}"><a href="{href(trace)}">{escape(trace)}</a></th>'
            if n == 0
            else ""
        )
        out.append(
            f'<tr class="{MARK_CLASS.get(r.mark, "info")}"{first}>{th}'
            f'<td><code>{escape(r.name)}</code></td><td class="num">{escape(number(r.a))}</td>'
            f'<td class="num v">{escape(number(r.b))}</td>{_delta(r)}'
            f'<td title="{escape(MARKS.get(r.mark, "informational"))}">'
            f"{MARK_WORD.get(r.mark, '')}</td></tr>"
        )
    return out


def _delta(row) -> str:
    """Delta and percent cells; an outcome row spans both with its change."""
    if row.name == "outcome" or row.a is None or row.b is None:
        return f'<td colspan="2">{escape(row.change or "missing on one side")}</td>'
    delta = row.b - row.a
    text = f"{delta:+.6g}" if isinstance(delta, float) else f"{delta:+d}"
    pct = f"{delta / abs(row.a) * 100:+.1f}%" if row.a else "from 0"
    return f'<td class="num">{text}</td><td class="num">{pct}</td>'


# ---------------------------------------------------------------------------- matrix


def _matrix(ctx: Context) -> str:
    head = "".join(f"<th>{ctx.swatch(r)}{escape(r)}</th>" for r in ctx.revisions)
    rows = []
    for trace in ctx.traces:
        tds = []
        for revision in ctx.revisions:
            cell = ctx.cells.get((trace, revision))
            if cell is None:
                tds.append("<td>-</td>")
                continue
            css = STATUS_CLASS.get(cell.status, "bad")
            tds.append(
                f'<td class="{css}"><a href="{href(trace, ctx.cell_anchor(cell))}">'
                f"{escape(cell.status)}</a></td>"
            )
        rows.append(f'<tr><th><a href="{href(trace)}">{escape(trace)}</a></th>{"".join(tds)}</tr>')
    return (
        '<h2 id="matrix">Traces &times; revisions against golden/</h2>\n'
        '<p class="legend">A trace\'s name links to its page (metrics of every revision, '
        "reservation maps, kstack layouts, history); a cell to its column there.</p>"
        f'<table class="matrix"><thead><tr><th>trace</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>\n"
        '<p class="legend">ok: byte-identical to golden; panic/hang (orange on green): '
        "the model found a kernel bug, the same one the golden file records; "
        "differs: see the trace's differences; "
        "no golden: kreplay golden update writes it.</p>\n"
    )


VALIDATION_CLASS = {"agrees": "ok", "disagrees": "bad", "error": "warn"}


def _validations(ctx: Context) -> str:
    """kreplay validate of the traces whose sidecars have snapshots (never a failure)."""
    found = ctx.report.validations
    if not found:
        return ""
    rows = "".join(
        f'<tr><th><a href="{href(v.trace)}">{escape(v.trace)}</a></th>'
        f"<td>{escape(v.revision or '-')}</td>"
        f'<td class="{VALIDATION_CLASS[v.status]}">{escape(v.status)}</td>'
        f"<td>{escape(v.detail)}</td></tr>"
        for v in found
    )
    return (
        '<h2 id="validation">The model against the recording machines</h2>\n'
        '<p class="legend">Traces whose sidecar holds snapshots of the kernel\'s counters '
        "before and after the workload: each counter the model predicts against the change "
        "the machine saw, within its tolerance (<code>kreplay validate TRACE</code> prints "
        "every counter). Reported, never a failure of the check.</p>"
        "<table><thead><tr><th>trace</th><th>kernel</th><th>verdict</th><th>counters</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>\n"
    )


def _orphans(orphans: list[str]) -> str:
    if not orphans:
        return ""
    items = "".join(f"<li><code>{escape(p)}</code></li>" for p in orphans)
    return f"<h2>Orphaned golden files</h2><p>Trace or revision gone:</p><ul>{items}</ul>\n"


def _revision_list(ctx: Context) -> str:
    items = "".join(
        f"<tr><th>{ctx.swatch(r)}{escape(r)}{' (baseline)' if r == ctx.baseline else ''}</th>"
        f"<td>{escape(ctx.descriptions.get(r, ''))}</td></tr>"
        for r in ctx.revisions
    )
    return f'<h2 id="revisions">Revisions</h2><table>{items}</table>\n'
