"""One trace's page of the report: the metrics of every revision (revisions with identical
Results folded into one column headed by all their names, each value coloured against the
baseline), the differences from golden, the reservation maps zoomed to the windows holding
kstack pages, the kstack KVA/pindex layouts and the metric history."""

from html import escape

import msgspec

from kreplay.cells import Cell
from kreplay.compare import compare
from kreplay.pictures import CACHED, GUARD, HOLE, LIVE, SLOT_FREE, Pictures, Population, to_json
from kreplay.report import svg
from kreplay.report.markup import MARK_CLASS, Context, number, page
from kreplay.result import HIGHER, LOWER, METRICS

POLARITY = {LOWER: "lower is better", HIGHER: "higher is better"}


def render(ctx: Context, trace: str) -> str:
    cells = [ctx.cells[(trace, r)] for r in ctx.revisions if (trace, r) in ctx.cells]
    body = [
        _header(ctx, trace, cells),
        metrics_table(ctx, trace),
        differences(ctx, cells),
        population_maps(ctx, cells),
        layouts(ctx, cells),
        trends(ctx, trace),
    ]
    return page(f"kreplay check {ctx.label}: {trace}", body)


def _header(ctx: Context, trace: str, cells: list[Cell]) -> str:
    first = next((c.result for c in cells if c.result is not None), None)
    facts = ""
    if first is not None:
        facts = (
            f'<p class="summary">machine <b>{escape(first.machine)}</b>, '
            f"{first.ops} ops, sha256 <code>{escape(first.sha256[:16])}</code></p>"
        )
    return (
        f'<nav><a href="index.html">&larr; {escape(ctx.label)}</a>'
        '<a href="index.html#changes">changes</a><a href="index.html#matrix">matrix</a>'
        '<a href="#metrics">metrics</a><a href="#maps">reservation maps</a>'
        '<a href="#layout">kstack layout</a><a href="#history">history</a></nav>'
        f"<h1>{escape(trace)}</h1>{facts}\n"
    )


# ---------------------------------------------------------------------------- metrics


def metrics_table(ctx: Context, trace: str) -> str:
    groups = ctx.trace_groups(trace)
    heads = "".join(_group_head(ctx, g) for g in groups)
    base_cell = ctx.cells.get((trace, ctx.baseline))
    marks = [_marks_against(base_cell, ctx.cells[(trace, g[0])]) for g in groups]
    members = [[ctx.cells[(trace, r)] for r in g] for g in groups]
    rows = ["<tr><td>outcome</td><td></td>" + "".join(_outcome(m[0]) for m in members) + "</tr>"]
    for name, (unit, polarity, meaning) in METRICS.items():
        tds = "".join(
            _value_td(name, m, mk.get(name, "")) for m, mk in zip(members, marks, strict=True)
        )
        hint = f"{meaning}; {POLARITY[polarity]}" if polarity in POLARITY else meaning
        rows.append(
            f'<tr><td title="{escape(hint)}"><code>{name}</code></td>'
            f"<td>{escape(unit)}</td>{tds}</tr>"
        )
    return (
        '<h2 id="metrics">Metrics</h2>'
        '<p class="legend">One column per set of revisions with identical Results. Against '
        f"the baseline <code>{escape(ctx.baseline)}</code>, by the metric's polarity: "
        '<span class="sw" style="background:#ffe3e3"></span>worse '
        '<span class="sw" style="background:#d3f9d8"></span>better '
        '<span class="sw" style="background:#fff3bf"></span>not comparable (a side panicked '
        "or hung); grey figures: an informational metric that changed; "
        '<span class="sw" style="border:2px solid #c92a2a"></span>differs from the golden '
        "file (hover for the golden value).</p>"
        f"<table><thead><tr><th>metric</th><th>unit</th>{heads}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>\n"
    )


def _group_head(ctx: Context, group: list[str]) -> str:
    names = "<br>".join(
        f'<span id="m-{ctx.rid(r)}">{ctx.swatch(r)}{escape(r)}'
        f"{' (baseline)' if r == ctx.baseline else ''}</span>"
        for r in group
    )
    return f"<th>{names}</th>"


def _marks_against(base: Cell | None, cell: Cell) -> dict[str, str]:
    """metric -> its mark against the baseline (compare(), as kreplay diff says)."""
    if base is None or base.result is None or cell.result is None or base is cell:
        return {}
    rows = compare(base.result, cell.result).rows
    return {r.name: r.mark or ("info" if r.change else "") for r in rows}


def _outcome(cell: Cell) -> str:
    if cell.result is None:
        return f'<td class="bad">{escape(cell.status)}</td>'
    outcome = cell.result.outcome
    title = f' title="{escape(outcome.message)}"' if outcome.message else ""
    css = "" if outcome.status == "ok" else ' class="warn"'
    return f"<td{css}{title}>{escape(outcome.status)}</td>"


def _value_td(name: str, members: list[Cell], mark: str) -> str:
    """A metric's value for a column of identical Results; outlined when it differs from
    the golden file of one of them."""
    first = members[0]
    value = first.result.metrics.get(name) if first.result is not None else None
    classes = ["num"]
    if mark:
        classes.append(MARK_CLASS.get(mark, "info"))
    golden = []
    for c in members:
        row = next((r for r in c.comparison.rows if r.name == name), None) if c.comparison else None
        if row is not None and (row.change or row.mark):
            golden.append(f"golden of {c.revision}: {number(row.a)} {row.mark}".rstrip())
    if golden:
        classes.append("golden")
    title = f' title="{escape("; ".join(golden))}"' if golden else ""
    return f'<td class="{" ".join(classes)}"{title}>{number(value)}</td>'


def differences(ctx: Context, cells: list[Cell]) -> str:
    out = []
    for c in cells:
        if c.matches:
            continue
        parts = [f"<b>{escape(c.revision)}</b>: {escape(c.status)} {escape(c.detail)}"]
        if c.comparison is not None:
            parts += [
                f"<br><code>{escape(r.mark or ' ')} {escape(r.name)}: "
                f"{escape(number(r.a))} &rarr; {escape(number(r.b))} {escape(r.change)}</code>"
                for r in c.comparison.rows
                if r.change or r.mark
            ]
        if c.first_op:
            f = c.first_op
            parts.append(
                f"<br>first divergent op #{f['op_index']} {escape(str(f['kind']))} "
                f"pid {f['pid']} tid {f['tid']} (trace line {f['line']}); state "
                f"differs by op #{f['window_end']}"
            )
        out.append(f'<div class="diff" id="diff-{ctx.rid(c.revision)}">{"".join(parts)}</div>')
    return "<h2>Differences from golden</h2>" + "".join(out) + "\n" if out else ""


# ---------------------------------------------------------------------------- pictures


def _picture_groups(cells: list[Cell], maps_only: bool = False) -> list[list[Cell]]:
    """Cells whose pictures draw the same, in the order of their first: equal population
    maps (`maps_only`), else equal maps and layouts (the policies' names may differ: the
    layout's caption lists them)."""
    out: dict[bytes, list[Cell]] = {}
    for c in cells:
        if c.pictures is None:
            continue
        if maps_only:
            key = msgspec.json.encode(c.pictures.population)
        else:
            key = to_json(msgspec.structs.replace(c.pictures, kva_source="", pindex_policy=""))
        out.setdefault(key, []).append(c)
    return list(out.values())


def population_maps(ctx: Context, cells: list[Cell]) -> str:
    figures = []
    for group in _picture_groups(cells, maps_only=True):
        c, names = group[0], [m.revision for m in group]
        pops = c.pictures.population
        for pop in pops:
            kstack = [w for w in pop.used if w.kstack]
            where = f" domain {pop.domain}" if len(pops) > 1 else ""
            figures.append(
                f"<figure><figcaption>{ctx.names(names)}{where} <span>{len(pop.used)} of "
                f"{pop.windows} windows in use, {len(kstack)} with kstack pages</span>"
                f"</figcaption>{svg.population_map(pop, len(pops))}"
                f'<div class="legend">{_kstack_windows(kstack)}<br>{rest_of_map(pop)}</div>'
                "</figure>"
            )
    if not figures:
        return ""
    legend = (
        '<p class="legend">Each cell is a 2 MiB physical window (512 pages): the windows '
        f"holding kstack pages and {svg.ZOOM_CONTEXT} on either side, each run labelled with "
        "its first window (counted from physical address 0 of the domain); the line under "
        "a map sums up the other windows. Shade: pages allocated in the window. "
        f'<span class="sw" style="background:{svg.shade(svg.HUE["kstack"], 1)}"></span>'
        "kstack reservation"
        f'<span class="sw" style="background:{svg.shade(svg.HUE["user"], 1)}"></span>'
        "user reservation"
        f'<span class="sw" style="background:{svg.shade(svg.HUE[""], 1)}"></span>'
        f'no reservation (order-0 pages) <span class="sw" style="background:{svg.EMPTY}">'
        '</span>no page <span class="sw" style="border:2px solid #000"></span>window '
        "holding kstack pages (rv: a kstack reservation owns it). Revisions with the same "
        "pictures share one. Hover a cell for its numbers.</p>"
    )
    return (
        '<h2 id="maps">Reservation population at the end of the replay</h2>'
        f"{legend}{''.join(figures)}\n"
    )


def rest_of_map(pop: Population) -> str:
    """One line for the windows in use that the zoomed map leaves out."""
    shown = {i for r in svg.zoom_ranges(pop) for i in r}
    rest = [w for w in pop.used if w.index not in shown]
    if not rest:
        return "no other window in use"
    user = sum(w.user for w in rest)
    by_owner = {owner: sum(1 for w in rest if w.reserv == owner) for owner in ("user", "")}
    return (
        f"{len(rest)} other windows in use ({rest[0].index}-{rest[-1].index}, not drawn): "
        f"{user} user pages; {by_owner['user']} under a user reservation, "
        f"{by_owner['']} without one"
    )


def _kstack_windows(windows: list, most: int = 8) -> str:
    """'kstack windows: 0: 100/512 rv, ...': the physical side of the EFB patterns."""
    if not windows:
        return "no kstack pages"
    items = [f"{w.index}: {w.kstack}/512{' rv' if w.reserv == 'kstack' else ''}" for w in windows]
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return "kstack windows " + ", ".join(items[:most]) + more


def layouts(ctx: Context, cells: list[Cell]) -> str:
    figures = [_layout_figure(ctx, group) for group in _picture_groups(cells)]
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
    return f'<h2 id="layout">kstack KVA and pindex layout</h2>{legend}{"".join(figures)}\n'


def _layout_figure(ctx: Context, group: list[Cell]) -> str:
    cell = group[0]
    pics: Pictures = cell.pictures
    machine = cell.result.machine if cell.result is not None else ""
    shown = [c for c in pics.chunks if any(r.start <= c.kva < r.start + 512 for r in pics.kva)]
    where = f"KVA from {escape(pics.kva_source)}, "
    if pics.chunks:
        where += f"{len(pics.chunks)} kstack arena chunks ({pics.chunks[0].slots} slots)"
    else:
        where += "no kstack arena"
    caption = (
        f"{ctx.names([c.revision for c in group])} <span>K={pics.kstack_pages} "
        f"G={pics.guard_pages}, {where}, pindex {escape(pics.pindex_policy)}"
        f"{_other_policies(group)}</span>"
    )
    return (
        f'<figure><figcaption>{caption}</figcaption><div class="pair">'
        f"{svg.layout(pics.kva, 'kva', shown, machine)}{svg.layout(pics.pindex, 'pindex')}"
        "</div></figure>"
    )


def _other_policies(group: list[Cell]) -> str:
    """'; D38852-r-guard1: pindex Guard1Pindex()': members drawn the same whose policies
    are named otherwise than the first's."""
    first = group[0].pictures
    out = []
    for c in group[1:]:
        pics, what = c.pictures, []
        if pics.kva_source != first.kva_source:
            what.append(f"KVA from {pics.kva_source}")
        if pics.pindex_policy != first.pindex_policy:
            what.append(f"pindex {pics.pindex_policy}")
        if what:
            out.append(f"; {escape(c.revision)}: {escape(', '.join(what))}")
    return "".join(out)


# ---------------------------------------------------------------------------- history


def trends(ctx: Context, trace: str) -> str:
    labels = [run.label for run in ctx.hist.runs]
    if len(labels) < 2:
        return (
            '<h2 id="history">Metric history</h2><p class="legend">Only this check '
            "is in the store: the history is that of the checks run on this store "
            "(<code>kreplay history</code>).</p>\n"
        )
    revisions = [r for r in ctx.revisions if (trace, r) in ctx.cells]
    charts, flat = [], []
    for name in METRICS:
        lines = [(r, ctx.colour[r], ctx.hist.series(trace, r, name)) for r in revisions]
        if all(len(set(series)) <= 1 for _, _, series in lines):
            flat.append(name)
            continue
        charts.append(
            f"<figure><figcaption>{name}</figcaption>"
            f"{svg.trend_chart(name, labels, lines)}</figure>"
        )
    key = "".join(f"{ctx.swatch(r)}{escape(r)}" for r in revisions)
    unchanged = (
        f'<p class="legend">Unchanged over these runs: {", ".join(flat)}.</p>' if flat else ""
    )
    return (
        f'<h2 id="history">Metric history</h2><p class="legend">{len(labels)} runs, '
        f"{escape(labels[0])} to {escape(labels[-1])}, oldest first. Revisions with equal "
        "values over all runs share a line, in the first one's colour; hover a point for "
        f"its revisions, run and value.<br>{key}</p>"
        f'<div class="trends">{"".join(charts)}</div>{unchanged}\n'
    )
