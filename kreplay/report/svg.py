"""Inline SVG drawings for the HTML report: population maps, kstack layouts, trend charts.

Each function returns one <svg> element as a string. Output depends only on the arguments
(no clock, no randomness, coordinates printed with fixed precision), so a report is
byte-identical for the same inputs. Every text that came from a trace, a revision file or a
directory name goes through html.escape.
"""

import math
from html import escape

from kreplay.pictures import (
    CACHED,
    FREE,
    GUARD,
    HOLE,
    LIVE,
    SLOT_FREE,
    WINDOW_PAGES,
    LayoutRow,
    Population,
)

# VM_MIN_KERNEL_ADDRESS of the machine presets (spec/freebsd-kstack.md §5), from which the
# model counts KVA pages; rows of other machines are labelled by their offset from it.
VM_MIN_KERNEL_ADDRESS = {
    "amd64": 0xFFFFFE0000000000,
    "amd64-kasan": 0xFFFFFE0000000000,
    "amd64-numa2": 0xFFFFFE0000000000,
    "arm64": 0xFFFF000000000000,
}
PAGE = 4096

# Population map: one cell per 2 MiB physical window, only the windows holding kstack pages
# and ZOOM_CONTEXT windows either side of each (the rest is a line of text under the map:
# drawing all ~900 windows of a build, for every revision, made the page weigh megabytes).
MAP_COLUMNS = 32  # windows to a row of the map
MAP_CELL = 12
MAP_PITCH = 14
MAP_LABEL = 86
ZOOM_CONTEXT = 2
HUE = {"kstack": (217, 72, 15), "user": (31, 95, 168), "": (110, 110, 110)}
EMPTY = "#eef0f2"


# Layout rows: one pixel per page, one row per 512 pages.
ROW_LABEL = 124
ROW_HEIGHT = 11
ROW_PITCH = 15
ROW_NOTE = 80
PAGE_COLOUR = {
    LIVE: "#364fc7",
    CACHED: "#91a7ff",
    GUARD: "#e03131",
    SLOT_FREE: "#ced4da",
    HOLE: "#ffa8a8",
}
ZOOM_PAGES = 40
ZOOM_PITCH = 12
ZOOM_HEIGHT = 24
ZOOM_LETTER = {LIVE: "K", CACHED: "K", GUARD: "G", HOLE: "h"}
PAGE_MEANING = {
    LIVE: "stack page of a thread",
    CACHED: "stack page cached in kstack_cache",
    GUARD: "guard page (unmapped)",
    SLOT_FREE: "free slot of a kstack arena chunk",
    HOLE: "pindex hole (no page, between stacks)",
}


def shade(rgb: tuple[int, int, int], fraction: float) -> str:
    """The hue at `fraction` strength over white, on a square-root scale so that a window
    holding a few pages stands out from an empty one."""
    strength = 0.3 + 0.7 * min(1.0, fraction) ** 0.5
    r, g, b = (round(255 - (255 - c) * strength) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def zoom_ranges(pop: Population, context: int = ZOOM_CONTEXT) -> list[range]:
    """The runs of windows drawn: each window holding kstack pages with `context` windows
    either side (not past the last window in use), overlapping or touching runs merged."""
    last = max((w.index for w in pop.used), default=-1)
    out: list[range] = []
    for w in pop.used:
        if not w.kstack:
            continue
        lo, hi = max(0, w.index - context), min(last, w.index + context) + 1
        if out and lo <= out[-1].stop:
            out[-1] = range(out[-1].start, max(hi, out[-1].stop))
        else:
            out.append(range(lo, hi))
    return out


def population_map(pop: Population, domains: int) -> str:
    """The windows of zoom_ranges(), MAP_COLUMNS to a row, each run on rows of its own
    labelled with its first window; the shade is the share of the window's 512 pages that
    are allocated, the hue the owner of its reservation (grey: none), a black outline marks
    windows with kstack pages; an empty window is pale."""
    used = {w.index: w for w in pop.used}
    rows = [r[i : i + MAP_COLUMNS] for r in zoom_ranges(pop) for i in range(0, len(r), MAP_COLUMNS)]
    width = MAP_LABEL + MAP_COLUMNS * MAP_PITCH
    height = max(1, len(rows)) * MAP_PITCH + 2
    label = f"NUMA domain {pop.domain}: " if domains > 1 else ""
    out = [
        f'<svg class="popmap" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{label}reservation population of the windows holding kstack pages "
        f"(of {pop.windows})</title>",
    ]
    for n, row in enumerate(rows):
        y = 1 + n * MAP_PITCH
        out.append(
            f'<text x="{MAP_LABEL - 6}" y="{y + MAP_CELL - 2}" class="lbl">'
            f"window {row.start}</text>"
        )
        for k, index in enumerate(row):
            out.append(_map_cell(used.get(index), index, pop, MAP_LABEL + k * MAP_PITCH, y))
    if not rows:
        out.append(f'<text x="0" y="{MAP_CELL}" class="note">no kstack pages</text>')
    out.append("</svg>")
    return "".join(out)


def _map_cell(w, index: int, pop: Population, x: int, y: int) -> str:
    if w is None:
        return (
            f'<rect x="{x}" y="{y}" width="{MAP_CELL}" height="{MAP_CELL}" fill="{EMPTY}">'
            f"<title>window {index}: no page</title></rect>"
        )
    fill = shade(HUE[w.reserv], (w.kstack + w.user) / WINDOW_PAGES)
    stroke = ' stroke="#000" stroke-width="1.5"' if w.kstack else ""
    return (
        f'<rect class="w" x="{x}" y="{y}" width="{MAP_CELL}" height="{MAP_CELL}" '
        f'fill="{fill}"{stroke}><title>window {index}, {_window_text(w, pop)}</title></rect>'
    )


def _window_text(w, pop: Population) -> str:
    first = (pop.domain * pop.windows + w.index) * WINDOW_PAGES * PAGE
    owner = f"{w.reserv} reservation" if w.reserv else "no reservation"
    return f"PA {first:#x}: {w.kstack} kstack + {w.user} user pages; {owner}"


def layout(rows: list[LayoutRow], kind: str, chunks: list = (), machine: str = "") -> str:
    """KVA (kind 'kva') or kstack_object pindex (kind 'pindex') rows of 512 pages, one
    pixel per page, runs of one kind of page drawn as one rectangle. KVA rows mark where
    each kstack arena chunk starts; pindex rows say whether a reservation backs them."""
    width = ROW_LABEL + WINDOW_PAGES + ROW_NOTE
    height = ZOOM_HEIGHT + max(1, len(rows)) * ROW_PITCH + 4
    title = "kstack KVA, 2 MiB per row" if kind == "kva" else "kstack_object pindex, 512 per row"
    out = [
        f'<svg class="layout {kind}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img"><title>{title}</title>'
    ]
    if rows:
        out.append(_zoom(rows[0], kind))
    paths: dict[str, list[str]] = {letter: [] for letter in PAGE_COLOUR}
    for i, row in enumerate(rows):
        y = ZOOM_HEIGHT + 2 + i * ROW_PITCH
        out.append(_row_label(row, kind, y, VM_MIN_KERNEL_ADDRESS.get(machine)))
        background = "#fff0db" if row.reserv >= 0 else "#f8f9fa"
        out.append(
            f'<rect x="{ROW_LABEL}" y="{y}" width="{WINDOW_PAGES}" height="{ROW_HEIGHT}" '
            f'fill="{background}"/>'
        )
        for start, length, letter in _runs(row.pages):
            if letter != FREE:  # one path per kind of page: a rect per run weighed 6x more
                paths[letter].append(f"M{ROW_LABEL + start} {y}h{length}v{ROW_HEIGHT}h-{length}z")
        out.append(_row_note(row, kind, y))
    out += [
        f'<path fill="{PAGE_COLOUR[letter]}" d="{"".join(d)}"/>' for letter, d in paths.items() if d
    ]
    if kind == "kva":
        out += _chunk_marks(rows, chunks)
    if not rows:
        out.append(f'<text x="0" y="{ZOOM_HEIGHT}" class="note">no kstack pages</text>')
    out.append("</svg>")
    return "".join(out)


def _zoom(row: LayoutRow, kind: str) -> str:
    """The first ZOOM_PAGES pages of the first row from its first kstack page, large, one
    letter each: where the guard pages sit, and whether the pindices have holes."""
    first = next((i for i, c in enumerate(row.pages) if c != FREE), 0)
    pages = row.pages[first : first + ZOOM_PAGES]
    start = row.start + first
    text = f"KVA page {start}" if kind == "kva" else f"pindex {start}"
    out = [f'<text x="{ROW_LABEL - 6}" y="14" class="lbl">{text}:</text>']
    for i, letter in enumerate(pages):
        x = ROW_LABEL + i * ZOOM_PITCH
        fill = PAGE_COLOUR.get(letter, "#f8f9fa")
        out.append(
            f'<rect x="{x}" y="2" width="{ZOOM_PITCH - 1}" height="16" fill="{fill}">'
            f"<title>{start + i}: {PAGE_MEANING.get(letter, 'nothing')}</title></rect>"
        )
        if letter in ZOOM_LETTER:
            out.append(
                f'<text x="{x + ZOOM_PITCH / 2 - 0.5:.1f}" y="14" class="zl">'
                f"{ZOOM_LETTER[letter]}</text>"
            )
    return "".join(out)


def _runs(pages: str) -> list[tuple[int, int, str]]:
    runs, start = [], 0
    for i in range(1, len(pages) + 1):
        if i == len(pages) or pages[i] != pages[start]:
            runs.append((start, i - start, pages[start]))
            start = i
    return runs


def _row_label(row: LayoutRow, kind: str, y: int, base: int | None) -> str:
    if kind == "kva" and base is not None:
        text = f"{base + row.start * PAGE:#x}"
    elif kind == "kva":
        text = f"VMIN+{row.start * PAGE:#x}"
    else:
        text = f"pindex {row.start}"
    return f'<text x="{ROW_LABEL - 6}" y="{y + ROW_HEIGHT - 2}" class="lbl">{text}</text>'


def _row_note(row: LayoutRow, kind: str, y: int) -> str:
    x = ROW_LABEL + WINDOW_PAGES + 6
    if kind == "kva":
        text = f"{row.pages.count(GUARD)} guards"
    else:
        pages = row.pages.count(LIVE) + row.pages.count(CACHED)
        text = f"rv {row.reserv}/512" if row.reserv >= 0 else f"{pages}, no rv"
    return f'<text x="{x}" y="{y + ROW_HEIGHT - 2}" class="note">{text}</text>'


def _chunk_marks(rows: list[LayoutRow], chunks: list) -> list[str]:
    """A black tick where each chunk shown begins (after the bump to a slot boundary)."""
    out = []
    for n, chunk in enumerate(chunks, 1):
        for i, row in enumerate(rows):
            if row.start <= chunk.kva < row.start + WINDOW_PAGES:
                x, y = ROW_LABEL + chunk.kva - row.start, ZOOM_HEIGHT + 2 + i * ROW_PITCH
                out.append(
                    f'<rect x="{x - 1}" y="{y - 2}" width="2" height="{ROW_HEIGHT + 4}" '
                    f'fill="#000"><title>chunk {n}: KVA page {chunk.kva}, '
                    f"{chunk.slots} slots</title></rect>"
                )
    return out


def layout_legend(letters: str) -> str:
    """Swatches for the page kinds of a layout picture."""
    return "".join(
        f'<span class="sw" style="background:{PAGE_COLOUR[c]}"></span>{PAGE_MEANING[c]} '
        for c in letters
    )


# ---------------------------------------------------------------------------- trends

# 14 of Kelly's 22 colours of maximum contrast (not white or black, nor those closest to one
# taken already), the most distinct from each other first: the first revisions get them.
PALETTE = (
    "#0067a5",  # strong blue
    "#f38400",  # vivid orange
    "#008856",  # vivid green
    "#be0032",  # vivid red
    "#875692",  # strong purple
    "#882d17",  # reddish brown
    "#e68fac",  # strong purplish pink
    "#848482",  # medium grey
    "#8db600",  # vivid yellowish green
    "#a1caf1",  # very light blue
    "#f3c300",  # vivid yellow
    "#2b3d26",  # dark olive green
    "#604e97",  # strong violet
    "#c2b280",  # greyish yellow
)


def palette(names: list[str]) -> dict[str, str]:
    """A colour per name, all different: PALETTE first, then hues spaced by the golden
    angle (distinct, if less distinguishable, past the fourteenth)."""
    out = {}
    for i, name in enumerate(names):
        if i < len(PALETTE):
            out[name] = PALETTE[i]
        else:
            hue = (i - len(PALETTE)) * 137.508 % 360
            out[name] = f"hsl({hue:.1f},65%,{35 + (i % 3) * 10}%)"
    return out


CHART_W, CHART_H = 380, 160
PAD_L, PAD_R, PAD_T, PAD_B = 56, 14, 10, 26
Y_TICKS = 4  # about this many gridlines
LABEL_CHARS_PX = 6.1  # width of a tick label's character (10px DejaVu Sans Mono)
LABEL_GAP = 10  # between two tick labels


def trend_chart(
    metric: str, labels: list[str], lines: list[tuple[str, str, list[float | None]]]
) -> str:
    """One metric over runs: `lines` is (revision, colour, value per run); a missing value
    (a failed cell, a metric not yet known) breaks the line. Revisions with the same values
    are drawn once, in the first one's colour, their names in the tooltips; every point has
    a tooltip (revisions, run label, value). Axes with gridlines at round values and the run
    labels (the dates of `make nightly`) as x ticks, as many as fit."""
    values = [v for _, _, series in lines for v in series if v is not None]
    ticks = nice_ticks(min(values, default=0.0), max(values, default=1.0), Y_TICKS)
    low, high = ticks[0], ticks[-1]
    n = len(labels)
    x_of = _x_scale(n)

    def y(v: float) -> float:
        return PAD_T + (CHART_H - PAD_T - PAD_B) * (1 - (v - low) / (high - low))

    out = [
        f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" '
        f'height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}" role="img">'
        f"<title>{escape(metric)} over {n} runs</title>",
        *_y_axis(ticks, y),
        *_x_axis(labels, x_of),
    ]
    for names, colour, series in _merged(lines):
        who = escape(", ".join(names))
        for segment in _segments(series):
            points = " ".join(f"{x_of(i):.1f},{y(v):.1f}" for i, v in segment)
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5">'
                f"<title>{who}</title></polyline>"
            )
            out += [
                f'<circle cx="{x_of(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                f"<title>{who} {escape(labels[i])}: {_number(v)}</title></circle>"
                for i, v in segment
            ]
    out.append("</svg>")
    return "".join(out)


def _x_scale(n: int):
    def x(i: int) -> float:
        return PAD_L + (CHART_W - PAD_L - PAD_R) * (i / (n - 1) if n > 1 else 0.5)

    return x


def _y_axis(ticks: list[float], y) -> list[str]:
    out = [
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{CHART_H - PAD_B}" stroke="#868e96"/>'
    ]
    for t in ticks:
        out.append(
            f'<line x1="{PAD_L}" y1="{y(t):.1f}" x2="{CHART_W - PAD_R}" y2="{y(t):.1f}" '
            f'stroke="#e9ecef"/><text x="{PAD_L - 4}" y="{y(t) + 4:.1f}" class="lbl">'
            f"{_short(t)}</text>"
        )
    return out


def _x_axis(labels: list[str], x) -> list[str]:
    """A tick per run, labelled where a label fits (_shown_ticks)."""
    base = CHART_H - PAD_B
    out = [f'<line x1="{PAD_L}" y1="{base}" x2="{CHART_W - PAD_R}" y2="{base}" stroke="#868e96"/>']
    shown = _shown_ticks(labels, x)
    for i, label in enumerate(labels):
        tick = 5 if i in shown else 3
        out.append(
            f'<line x1="{x(i):.1f}" y1="{base}" x2="{x(i):.1f}" y2="{base + tick}" '
            'stroke="#868e96"/>'
        )
        if i in shown:
            out.append(
                f'<text x="{x(i):.1f}" y="{base + 16}" class="tick" '
                f'text-anchor="{_anchor(i, len(labels))}">{escape(label)}</text>'
            )
    return out


def _anchor(i: int, n: int) -> str:
    """The first and the last labels inside the chart, the others centred on their tick."""
    return "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"


def _shown_ticks(labels: list[str], x) -> dict[int, str]:
    """The runs labelled, as many as fit without overlap: the last (this check) and the
    first always, then from the left every label clear of those kept."""
    n = len(labels)

    def extent(i: int) -> tuple[float, float]:
        width = len(labels[i]) * LABEL_CHARS_PX
        left = {"start": 0.0, "middle": width / 2, "end": width}[_anchor(i, n)]
        return x(i) - left - LABEL_GAP / 2, x(i) - left + width + LABEL_GAP / 2

    kept = [n - 1] + ([0] if n > 1 else [])
    for i in range(1, n - 1):
        lo, hi = extent(i)
        if all(hi <= extent(k)[0] or lo >= extent(k)[1] for k in kept):
            kept.append(i)
    return {i: labels[i] for i in sorted(kept)}


def _merged(lines: list[tuple[str, str, list]]) -> list[tuple[list[str], str, list]]:
    """Lines with equal series as one: (names, the first one's colour, series)."""
    out: dict[tuple, tuple[list[str], str, list]] = {}
    for revision, colour, series in lines:
        out.setdefault(tuple(series), ([], colour, series))[0].append(revision)
    return list(out.values())


def nice_ticks(low: float, high: float, count: int) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) from at or below `low` to at or
    above `high`, about `count` intervals; a flat series gets a band around its value."""
    if high == low:
        pad = abs(low) / 10 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step)
    last = math.ceil(high / step)
    return [round(k * step, 12) for k in range(first, last + 1)]


def _segments(series: list[float | None]) -> list[list[tuple[int, float]]]:
    out, current = [], []
    for i, v in enumerate(series):
        if v is None:
            if current:
                out.append(current)
            current = []
        else:
            current.append((i, v))
    if current:
        out.append(current)
    return out


def _number(v: float) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _short(v: float) -> str:
    """A number in at most ~6 characters, for axis labels."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.4g}{suffix}"
    return f"{v:.4g}"
