"""Inline SVG drawings for the HTML report: population maps, kstack layouts, trend charts.

Each function returns one <svg> element as a string. Output depends only on the arguments
(no clock, no randomness, coordinates printed with fixed precision), so a report is
byte-identical for the same inputs. Every text that came from a trace, a revision file or a
directory name goes through html.escape.
"""

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

# Population map: one cell per 2 MiB physical window.
MAP_COLUMNS = 64
MAP_CELL = 5
MAP_PITCH = 6
HUE = {"kstack": (217, 72, 15), "user": (31, 95, 168), "": (110, 110, 110)}
EMPTY = "#eef0f2"
# The grid of empty windows, drawn as one pattern-filled rectangle per map (a rectangle per
# empty window made a report of a few traces weigh megabytes). Emitted once per page.
DEFS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    f'<pattern id="popgrid" width="{MAP_PITCH}" height="{MAP_PITCH}" '
    f'patternUnits="userSpaceOnUse"><rect width="{MAP_CELL}" height="{MAP_CELL}" '
    f'fill="{EMPTY}"/></pattern></defs></svg>'
)

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


def population_map(pop: Population, domains: int) -> str:
    """Windows 0 .. the last one holding a page, MAP_COLUMNS to a row; the shade is the
    share of the window's 512 pages that are allocated, the hue the owner of its
    reservation (grey: no reservation); a black outline marks windows with kstack pages."""
    shown = max((w.index for w in pop.used), default=-1) + 1
    rows = max(1, -(-shown // MAP_COLUMNS))
    width, height = MAP_COLUMNS * MAP_PITCH, rows * MAP_PITCH
    used = {w.index: w for w in pop.used}
    label = f"NUMA domain {pop.domain}: " if domains > 1 else ""
    out = [
        f'<svg class="popmap" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{label}reservation population, windows 0-{max(shown - 1, 0)} of "
        f"{pop.windows}</title>",
    ]
    out.append(f'<rect width="{width}" height="{height}" fill="url(#popgrid)"/>')
    for index, w in sorted(used.items()):
        x, y = (index % MAP_COLUMNS) * MAP_PITCH, (index // MAP_COLUMNS) * MAP_PITCH
        fill = shade(HUE[w.reserv], (w.kstack + w.user) / WINDOW_PAGES)
        stroke = ' stroke="#000" stroke-width="1"' if w.kstack else ""
        out.append(
            f'<rect class="w" x="{x}" y="{y}" width="{MAP_CELL}" height="{MAP_CELL}" '
            f'fill="{fill}"{stroke}><title>{_window_text(w, pop)}</title></rect>'
        )
    out.append("</svg>")
    return "".join(out)


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

CHART_W, CHART_H = 240, 96
PAD_L, PAD_R, PAD_T, PAD_B = 50, 8, 8, 18


def trend_chart(
    metric: str, labels: list[str], lines: list[tuple[str, str, list[float | None]]]
) -> str:
    """One metric over runs: `lines` is (revision, colour, value per run); a missing value
    (a failed cell, a metric not yet known) breaks the line."""
    values = [v for _, _, series in lines for v in series if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    span = (high - low) or 1.0
    n = len(labels)

    def x(i: int) -> float:
        return PAD_L + (CHART_W - PAD_L - PAD_R) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return PAD_T + (CHART_H - PAD_T - PAD_B) * (1 - (v - low) / span)

    out = [
        f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" '
        f'height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}" role="img">'
        f"<title>{escape(metric)} over {n} runs</title>",
        f'<line x1="{PAD_L}" y1="{CHART_H - PAD_B}" x2="{CHART_W - PAD_R}" '
        f'y2="{CHART_H - PAD_B}" stroke="#adb5bd"/>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + 4}" class="lbl">{_short(high)}</text>',
        f'<text x="{PAD_L - 4}" y="{CHART_H - PAD_B}" class="lbl">{_short(low)}</text>',
        f'<text x="{PAD_L}" y="{CHART_H - 4}" class="note">{escape(labels[0])}</text>',
        f'<text x="{CHART_W - PAD_R}" y="{CHART_H - 4}" class="lbl">{escape(labels[-1])}</text>',
    ]
    for revision, colour, series in lines:
        for segment in _segments(series):
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in segment)
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5">'
                f"<title>{escape(revision)}</title></polyline>"
            )
            out += [
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2" fill="{colour}">'
                f"<title>{escape(revision)} {escape(labels[i])}: {_short(v)}</title></circle>"
                for i, v in segment
            ]
    out.append("</svg>")
    return "".join(out)


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


def _short(v: float) -> str:
    """A number in at most ~6 characters, for axis labels."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.4g}{suffix}"
    return f"{v:.4g}"
