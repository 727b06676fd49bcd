"""The HTML nightly report (issue 6): structure, escaping, determinism, pictures, history,
and the page as a real headless Chromium renders it."""

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import duckdb
import msgspec
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error, run_main

from kreplay.cells import Cell, CheckReport
from kreplay.check import check
from kreplay.cli import cli
from kreplay.compare import compare
from kreplay.pictures import GUARD, HOLE, LIVE, Pictures, Population, Window
from kreplay.report import html, svg, trace_page
from kreplay.report.history import MAX_RUNS, History, Run, from_rows
from kreplay.revisions import BUILTIN
from kreplay.store import Store

REPO = Path(__file__).resolve().parents[1]
REVS = ("base", "D38852")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Two bundled traces with goldens for base and D38852, in a folder of their own."""
    work = tmp_path_factory.mktemp("matrix")
    (work / "traces").mkdir()
    for name in ("build-j16.kdump.gz", "build-j16.toml", "uul-freebsd12.kdump"):
        shutil.copy(REPO / "traces" / name, work / "traces" / name)
    for trace in ("build-j16", "uul-freebsd12"):
        for rev in REVS:
            (work / "golden" / trace).mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / "golden" / trace / f"{rev}.json", work / "golden" / trace)
    return work


def run_check(work: Path, report_dir: Path, *extra: str, db: Path | None = None):
    args = ["check", "--jobs", "1", "--db", str(db or work / "s.duckdb")]
    args += ["--traces", str(work / "traces"), "--golden", str(work / "golden")]
    for rev in REVS:
        args += ["--rev", rev]
    return CliRunner().invoke(cli, [*args, "--report", str(report_dir), *extra])


@pytest.fixture(scope="module")
def report_page(matrix):
    """`kreplay check --report DIR`, after one earlier check of the same store in which a
    metric had other values (its cells' Results, copied under other run keys, edited)."""
    first = matrix / "nightly" / "2026-11-24"
    assert run_check(matrix, first).exit_code == 0
    con = duckdb.connect(str(matrix / "s.duckdb"))
    con.execute(
        "INSERT INTO metrics SELECT m.run_key || '-old', m.name, m.value - "
        "CASE WHEN m.name = 'kstack.created' THEN 7 ELSE 0 END "
        "FROM metrics m JOIN check_cells c USING (run_key) WHERE c.check_id = 1"
    )
    con.execute("UPDATE check_cells SET run_key = run_key || '-old' WHERE check_id = 1")
    con.close()
    today = matrix / "nightly" / "2026-11-25"
    result = run_check(matrix, today)
    assert result.exit_code == 0, result.output
    shutil.copy(matrix / "s.duckdb", matrix / "after-report.duckdb")  # for the bytes test
    return today


class Dom(HTMLParser):
    """Elements with their attributes and the text under each id'd element."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def find(self, tag: str, cls: str | None = None) -> list[dict]:
        return [
            a
            for t, a in self.elements
            if t == tag and (cls is None or cls in a.get("class", "").split())
        ]

    @property
    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.elements if "id" in a}


def pages(report_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(report_dir.glob("*.html"))}


def assert_links_resolve(report_dir: Path) -> None:
    """Every href names a page of the directory (or this one) and an id in it."""
    doms = {name: Dom(text) for name, text in pages(report_dir).items()}
    for name, dom in doms.items():
        for a in dom.find("a"):
            target, _, anchor = unquote(a["href"]).partition("#")
            target = target or name
            assert target in doms, (name, a["href"])  # no network, no file elsewhere
            assert not anchor or anchor in doms[target].ids, (name, a["href"])


def test_check_report_writes_self_contained_pages(report_page):
    site = pages(report_page)
    assert sorted(site) == ["index.html", "trace-build-j16.html", "trace-uul-freebsd12.html"]
    for text in site.values():
        dom = Dom(text)
        assert not dom.find("script") and not dom.find("link") and not dom.find("img")
    assert_links_resolve(report_page)
    traces = [Dom(site[f"trace-{t}.html"]) for t in ("build-j16", "uul-freebsd12")]
    assert sum(len(d.find("svg", "popmap")) for d in traces) == 4  # 2 traces x 2 revisions
    assert sum(len(d.find("svg", "kva")) for d in traces) == 4
    assert sum(len(d.find("svg", "pindex")) for d in traces) == 4
    assert all(d.find("svg", "trend") for d in traces)  # kstack.created moved since the last run
    # D38852's chunk reads EFB 408 512 72 (README): three reservations, the third one's
    # block taken after the user pages had the ones between
    assert (
        "kstack windows 0: 408/512 rv, 1: 512/512 rv, 147: 72/512 rv"
        in site["trace-build-j16.html"]
    )
    assert json.loads((report_page / "report.json").read_text())["failed"] is False


def test_the_index_leads_with_failures_then_changes_against_the_baseline(report_page):
    page = (report_page / "index.html").read_text()
    order = [page.index(s) for s in ('id="failures"', 'id="changes"', 'id="c-r1"', 'id="matrix"')]
    assert order == sorted(order)
    assert "No failures: every cell matches its golden file." in page
    section = page[page.index('id="c-r1"') : page.index('id="matrix"')]
    assert ">D38852 vs base</h3>" in section
    # build-j16: D38852's dense pindex has no holes, so its reservations fill (README)
    row = (
        '<tr class="better" id="c-r1-t0"><th class="t" rowspan="5"><a href="trace-build-j16'
        '.html">build-j16</a></th><td><code>kstack.pindex_holes</code></td><td class="num">'
        '247</td><td class="num v">0</td><td class="num">-247</td><td class="num">-100.0%'
        "</td>"
    )
    assert row in section
    assert '<tr class="info"><td><code>kstack.kva_imported_bytes</code>' in section


def _section_rows(page: str, rid: str) -> list[tuple[str, str, str, str]]:
    """(metric, baseline value, value, mark word) of a revision's changes table."""
    section = page[page.index(f'id="c-{rid}"') :]
    section = section[: section.index("</table>")]
    pattern = (
        r'<td><code>([^<]+)</code></td><td class="num">([^<]*)</td>'
        r'<td class="num v">([^<]*)</td>.*?<td title="[^"]*">([^<]*)</td></tr>'
    )
    return re.findall(pattern, section)


def test_the_index_and_kreplay_diff_agree_on_what_changed(matrix, report_page):
    """The page's changes of D38852 against base are `kreplay diff base D38852`'s rows."""
    args = ["diff", "base", "D38852", "build-j16", "uul-freebsd12", "--json"]
    out = CliRunner().invoke(cli, [*args, "--db", str(matrix / "s.duckdb")])
    assert out.exit_code in (0, 1), out.output
    words = {"+": "worse", "-": "better", "!": "new failure", "*": "fixed", "x": "n/c"}
    expected = sorted(
        (r["name"], str(r["a"]), str(r["b"]), words.get(r["mark"], "info"))
        for t in json.loads(out.output)["traces"]
        for r in t["rows"]
    )
    shown = _section_rows((report_page / "index.html").read_text(), "r1")
    assert expected and sorted(shown) == expected


def test_matrix_has_a_row_per_trace_and_a_column_per_revision(report_page):
    page = (report_page / "index.html").read_text()
    matrix = page[page.index('<table class="matrix">') :]
    matrix = matrix[: matrix.index("</table>")]
    assert matrix.count("<tr>") == 3  # header + 2 traces
    assert re.search(r"<tr><th>trace</th><th><span [^>]*></span>base</th><th><span", matrix)
    assert matrix.count('<td class="ok"><a href="trace-') == 4
    assert '<a href="trace-build-j16.html#m-r1">ok</a>' in matrix


def test_the_same_inputs_give_the_same_bytes(matrix, report_page, tmp_path):
    """The same store checked again under the same label: the label's latest check is
    this one, with the same Results, so the same history and pages."""
    again = tmp_path / "nightly" / report_page.name
    db = tmp_path / "s.duckdb"
    shutil.copy(matrix / "after-report.duckdb", db)
    assert run_check(matrix, again, db=db).exit_code == 0
    assert pages(again) == pages(report_page)
    assert (again / "report.json").read_bytes() == (report_page / "report.json").read_bytes()


def test_baseline_chooses_what_the_others_are_compared_with(matrix, tmp_path):
    result = run_check(matrix, tmp_path / "r", "--baseline", "D38852", db=tmp_path / "s.duckdb")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "index.html").read_text()
    assert ">base vs D38852</h3>" in page and "Changes against the baseline <code>D38852" in page
    assert "(baseline)" in (tmp_path / "r" / "trace-build-j16.html").read_text()


@pytest.mark.parametrize("name", ["D45163", "nosuch"])  # a known one not checked; unknown
def test_a_baseline_not_checked_is_a_one_line_error(matrix, tmp_path, capsys, name):
    args = ["check", "--db", tmp_path / "s.duckdb", "--traces", matrix / "traces"]
    args += ["--golden", matrix / "golden", "--rev", "base", "--rev", "D38852"]
    code, out, err = run_main([*args, "--report", tmp_path / "r", "--baseline", name], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"--baseline {name!r} is not among the revisions checked")
    assert not (tmp_path / "r").exists()  # refused before replaying anything


def test_baseline_without_a_report_is_a_one_line_error(matrix, tmp_path, capsys):
    args = ["check", "--db", tmp_path / "s.duckdb", "--traces", matrix / "traces"]
    code, _, err = run_main([*args, "--baseline", "base"], capsys)
    assert code == 2
    assert_one_line_error(err, "--baseline is for the report")


def test_goldens_and_json_output_do_not_change_with_pictures(matrix, tmp_path):
    """The pictures travel beside the Result: check --json is the same with --report."""
    base = ["check", "--jobs", "1", "--json", "--db", str(matrix / "s.duckdb")]
    base += ["--traces", str(matrix / "traces"), "--golden", str(matrix / "golden")]
    base += ["--rev", "base", "--rev", "D38852"]
    plain = CliRunner().invoke(cli, base)
    with_report = CliRunner().invoke(cli, base + ["--report", str(tmp_path)])
    assert plain.exit_code == with_report.exit_code == 0
    assert plain.output == with_report.output


def _cells(matrix) -> dict[tuple[str, str], Cell]:
    revisions = [r for r in BUILTIN if r.name in REVS]
    with Store(str(matrix / "s.duckdb")) as store:
        report = check(
            store, str(matrix / "traces"), str(matrix / "golden"), revisions, pictures=True
        )
    return {(c.trace, c.revision): c for c in report.cells}


def test_pictures_show_guard_pages_in_kva_and_holes_only_in_the_old_pindex(matrix):
    cells = _cells(matrix)
    base, d38852 = cells[("build-j16", "base")], cells[("build-j16", "D38852")]
    for cell in (base, d38852):
        pics: Pictures = cell.pictures
        kva = "".join(row.pages for row in pics.kva)
        assert kva.count(GUARD) * pics.kstack_pages == kva.count(LIVE) + kva.count("c")
        # every page of every stack is in one population window, and no page twice
        pages = sum(w.kstack for pop in pics.population for w in pop.used)
        stacks = cell.result.metrics["kstack.created"]  # none disposed in this trace
        assert pages == stacks * pics.kstack_pages
    holes = "".join(r.pages for r in base.pictures.pindex).count(HOLE)
    assert holes == base.result.metrics["kstack.pindex_holes"] > 0
    assert HOLE not in "".join(r.pages for r in d38852.pictures.pindex)
    assert base.pictures.chunks == [] and [c.slots for c in d38852.pictures.chunks] == [511]
    # the D38852 chunk reads EFB (README): its first pindex window is a reservation
    # populated from the middle to the end
    first = d38852.pictures.pindex[0]
    assert first.pages.startswith(".") and first.pages.endswith(LIVE) and first.reserv > 0


def test_a_numa_machine_gets_a_population_map_per_domain():
    from kreplay.model.machine import Machine, machine_config
    from kreplay.model.views import pictures

    d38852 = next(r for r in BUILTIN if r.name == "D38852")
    machine = Machine(machine_config("amd64-numa2", {}), d38852.policy)
    machine.boot([])  # the boot threads' stacks are spread over both domains
    pops = pictures(machine).population
    assert [p.domain for p in pops] == [0, 1]
    assert all(p.windows == 8192 * 256 // 512 for p in pops)
    # windows count from each domain's first frame; every stack page is in one of them
    assert all(w.index < p.windows and w.kstack for p in pops for w in p.used)
    pages = sum(w.kstack for p in pops for w in p.used)
    assert pages == len(machine.kstack.object.pages) > 0
    assert "NUMA domain 1" in svg.population_map(pops[1], 2)


def _bare_report(trace: str, revision: str, detail: str) -> CheckReport:
    return CheckReport([Cell(trace, revision, "error", detail)], orphans=[f"golden/{trace}/x"])


def test_text_from_traces_revisions_and_run_labels_is_escaped():
    evil = '<script>alert("x")</script>&'
    report = _bare_report(evil, evil + "rev", evil)
    hist = History([Run("<b>2026</b>", {}), Run(evil, {})])
    site = html.render(report, {evil + "rev": evil}, hist, label=evil)
    assert len(site) == 2  # the index and the trace's page
    for page in site.values():
        assert "<script>" not in page and "<b>2026</b>" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
        Dom(page)  # parses
    assert 'href="trace-%3Cscript%3Ealert%28%22x%22%29%3C/script%3E%26.html"' in site["index.html"]


def test_a_failed_cell_is_red_in_the_matrix_and_linked_to_its_details():
    site = html.render(_bare_report("t", "r", "worker died"), {}, History([]), "run")
    page = site["index.html"]
    assert '<td class="bad"><a href="trace-t.html#diff-r0">error</a></td>' in page
    assert '<a href="trace-t.html#diff-r0">t / r</a>: <b>error</b> worker died' in page
    assert 'id="diff-r0"' in site["trace-t.html"] and "worker died" in site["trace-t.html"]
    assert "FAILED" in page and "Orphaned golden files" in page


def test_a_cell_that_differs_from_golden_leads_the_index(matrix):
    """A cell whose golden file holds other metrics: first on the index, with the metrics
    that differ, linked to its differences; outlined in its trace's metric table."""
    cells = _cells(matrix)
    cell = cells[("build-j16", "D38852")]
    metrics = {**cell.result.metrics, "kstack.created": cell.result.metrics["kstack.created"] - 2}
    golden = msgspec.structs.replace(cell.result, metrics=metrics)
    cells[("build-j16", "D38852")] = replace(
        cell, status="differs", comparison=compare(golden, cell.result, labels=("golden", "obt"))
    )
    site = html.render(CheckReport(list(cells.values()), []), {}, History([]), "run")
    index = site["index.html"]
    assert index.index('id="failures"') < index.index('id="changes"')
    assert '<a href="trace-build-j16.html#diff-r1">build-j16 / D38852</a>: <b>differs</b>' in index
    assert "<code>  kstack.created: golden 246 &rarr; 248 +0.8%</code>" in index
    page = site["trace-build-j16.html"]
    assert 'id="diff-r1"' in page
    assert '<td class="num golden" title="golden of D38852: 246">248</td>' in page


def test_revisions_with_identical_results_are_folded(matrix):
    """A twin of D38852 (its Results under another name) shares D38852's section of the
    index and its column of each trace's page; the baseline's twin is named as such."""
    cells = list(_cells(matrix).values())
    twins = []
    for c in cells:
        name = c.revision + "-twin"
        result = msgspec.structs.replace(c.result, revision=name)
        twins.append(replace(c, revision=name, result=result))
    site = html.render(CheckReport(cells + twins, []), {}, History([]), "run")
    index = site["index.html"]
    assert ">D38852, D38852-twin vs base</h3>" in index
    assert "Identical to base on every trace: base-twin." in index
    head = site["trace-build-j16.html"]
    head = head[head.index("<thead>") : head.index("</thead>")]
    assert head.count("<th>") == 4  # metric, unit, base and its twin, D38852 and its twin
    assert 'base (baseline)</span><br><span id="m-r2">' in head
    dom = Dom(site["trace-build-j16.html"])  # and the twins' pictures are drawn once
    assert len(dom.find("svg", "popmap")) == len(dom.find("svg", "kva")) == 2
    assert "<figcaption>D38852, D38852-twin <span>K=4 G=1, KVA from" in site["trace-build-j16.html"]


def test_every_revision_shown_gets_its_own_colour():
    names = [r.name for r in BUILTIN]
    assert len(svg.PALETTE) >= 12 and len(set(svg.PALETTE)) == len(svg.PALETTE)
    for revisions in (names, [f"r{i}" for i in range(40)]):
        colours = svg.palette(revisions)
        assert len(set(colours.values())) == len(revisions)


def test_a_trend_chart_has_axes_gridlines_dated_ticks_and_a_tooltip_per_point():
    labels = [f"2026-11-{d:02d}" for d in range(1, 21)]
    lines = [
        ("base", "#000", [float(d) for d in range(20)]),
        ("D38852", "#111", [5.0] * 20),
        ("twin", "#222", [5.0] * 20),
    ]
    chart = svg.trend_chart("kstack.created", labels, lines)
    dom = Dom(chart)
    assert len(dom.find("circle")) == 40  # the twin's line is D38852's: drawn once
    assert "<title>D38852, twin 2026-11-20: 5</title>" in chart
    assert "<title>base 2026-11-07: 6</title>" in chart
    ticks = re.findall(r'class="tick"[^>]*>([^<]+)<', chart)
    assert ticks[0] == "2026-11-01" and ticks[-1] == "2026-11-20" and 3 <= len(ticks) < 20
    assert re.findall(r'class="lbl">([^<]+)<', chart) == ["0", "5", "10", "15", "20"]
    assert len(dom.find("line")) == 2 + 5 + 20  # two axes, gridlines, a tick per run


def test_tick_labels_never_overlap():
    for n in (2, 7, 20, 60):
        labels = [f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}" for i in range(n)]
        x = svg._x_scale(n)
        shown = sorted(svg._shown_ticks(labels, x))
        assert shown[0] == 0 and shown[-1] == n - 1 and len(shown) >= min(n, 3)
        spans = []
        for i in shown:
            width = len(labels[i]) * svg.LABEL_CHARS_PX
            left = {"start": 0, "middle": width / 2, "end": width}[svg._anchor(i, n)]
            spans.append((x(i) - left, x(i) - left + width))
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
        assert spans[0][0] >= 0 and spans[-1][1] <= svg.CHART_W


def test_round_ticks_cover_the_values():
    assert svg.nice_ticks(0, 7, 4) == [0, 2, 4, 6, 8]
    assert svg.nice_ticks(0.123, 0.9, 4) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert svg.nice_ticks(228, 228, 4) == [200, 220, 240, 260]  # a flat line, in a band


def test_the_reservation_map_zooms_to_the_windows_holding_kstack_pages():
    used = [Window(i, 0, 512, "user") for i in range(900)]
    for i in (0, 1, 147):
        used[i] = Window(i, 100, 0, "kstack")
    pop = Population(0, 4096, used)
    assert svg.zoom_ranges(pop) == [range(0, 4), range(145, 150)]
    assert len(Dom(svg.population_map(pop, 1)).find("rect")) == 9
    assert trace_page.rest_of_map(pop) == (
        "891 other windows in use (4-899, not drawn): 456192 user pages; 891 under a user "
        "reservation, 0 without one"
    )
    assert svg.zoom_ranges(Population(0, 8, [Window(5, 0, 1, "")])) == []


def _rows(*checks):
    """Store.check_history rows: (check_id, label, {(trace, revision): {metric: value}})."""
    return [
        (check_id, label, trace, rev, "ok", name, value)
        for check_id, label, cells in checks
        for (trace, rev), metrics in cells.items()
        for name, value in (metrics.items() or [(None, None)])
    ]


def test_history_is_the_checks_oldest_first_a_label_checked_again_keeping_its_latest():
    rows = _rows(
        (1, "2026-11-21", {("t", "r"): {"kstack.created": 8}}),
        (2, "2026-11-23", {("t", "r"): {"kstack.created": 9}}),
        (3, "2026-11-23", {("t", "r"): {"kstack.created": 10}}),  # run again that day
        (4, "2026-11-25", {("t", "r"): {"kstack.created": 12}, ("u", "r"): {}}),
    )
    hist = from_rows(rows)
    assert [r.label for r in hist.runs] == ["2026-11-21", "2026-11-23", "2026-11-25"]
    assert hist.series("t", "r", "kstack.created") == [8, 10, 12]
    assert hist.series("t", "other", "kstack.created") == [None, None, None]
    assert hist.runs[-1].metrics[("u", "r")] == {}


def test_history_caps_the_number_of_runs():
    rows = _rows(*((i, f"run{i:03d}", {("t", "r"): {"a": i}}) for i in range(1, MAX_RUNS + 4)))
    hist = from_rows(rows)
    assert len(hist.runs) == MAX_RUNS and hist.runs[-1].label == f"run{MAX_RUNS + 3:03d}"
    assert hist.runs[0].label == f"run{4:03d}"


def test_kva_rows_are_labelled_with_the_machine_s_kernel_addresses():
    from kreplay.pictures import LayoutRow

    row = LayoutRow(512, "g" + "L" * 4 + "." * 507)
    assert ">0xfffffe0000200000<" in svg.layout([row], "kva", machine="amd64")
    assert ">0xffff000000200000<" in svg.layout([row], "kva", machine="arm64")
    assert ">VMIN+0x200000<" in svg.layout([row], "kva", machine="i386")  # no constant known


def test_a_missing_value_breaks_a_trend_line():
    chart = svg.trend_chart("m", ["a", "b", "c", "d"], [("r", "#000", [1.0, None, 2.0, 3.0])])
    assert chart.count("<polyline") == 2 and chart.count("<circle") == 3
    assert svg._short(1806644) == "1.807M" and svg._short(0.25) == "0.25"


# ---------------------------------------------------------------------------- browser

CHROMIUM_STATUS = REPO / ".venv" / "chromium-status.txt"  # written by `make chromium`
CHROMIUM_UNPACKED = REPO / ".venv" / "chromium" / "chromium"  # `make chromium` without root
FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root here and in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the machine has no network: no update checks
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    path = os.environ.get("KREPLAY_CHROMIUM") or shutil.which("chromium")
    if path:
        return path
    if CHROMIUM_UNPACKED.exists():
        return str(CHROMIUM_UNPACKED)
    why = CHROMIUM_STATUS.read_text().strip() if CHROMIUM_STATUS.exists() else "not installed"
    pytest.skip(f"no headless Chromium ({why}); `make chromium` installs Debian's package")


def browse(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        timeout=180,
        check=True,
    )


SCREENSHOTS = REPO / "reports" / "browser-test"  # git-ignored (reports/), for a person
INDEX_BUDGET = 500_000  # bytes of index.html for the bundled corpus (issue 17)


@pytest.fixture(scope="module")
def corpus_report(tmp_path_factory):
    """`kreplay check --report` over the bundled corpus: traces/ x every revision."""
    work = tmp_path_factory.mktemp("corpus")
    report = work / "2026-12-02"
    args = ["check", "--jobs", "2", "--db", str(work / "s.duckdb"), "--report", str(report)]
    args += ["--traces", str(REPO / "traces"), "--golden", str(REPO / "golden")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return report


def test_the_corpus_index_is_light_and_its_links_resolve(corpus_report):
    size = (corpus_report / "index.html").stat().st_size
    assert size < INDEX_BUDGET, f"index.html weighs {size} bytes"
    traces = {p.name.split(".")[0] for p in (REPO / "traces").glob("*.toml")}
    assert {p.name for p in corpus_report.glob("trace-*.html")} == {
        f"trace-{t}.html" for t in traces
    }
    assert_links_resolve(corpus_report)


def test_the_index_shows_the_validation_of_the_recording_in_the_corpus(corpus_report):
    """traces/thread-storm carries snapshots (kreplay synth --snapshots): issue 18's
    validation has its table on the index, linked to the trace's page."""
    page = (corpus_report / "index.html").read_text()
    section = page[page.index('<h2 id="validation">') :]
    section = section[: section.index("</table>")]
    assert '<a href="trace-thread-storm.html">thread-storm</a>' in section
    assert '<td>base</td><td class="ok">agrees</td>' in section
    assert "counters within tolerance, 0 outside" in section


def test_chromium_shows_what_changed_on_the_first_screen(corpus_report, tmp_path):
    """The first screen (1400x1000) of the corpus's index, as Chromium lays it out: the
    verdict, the revisions against base, and D38852's changes start there."""
    url = (corpus_report / "index.html").as_uri()
    assert (corpus_report / "index.html").stat().st_size < INDEX_BUDGET
    dom = browse(tmp_path, url, "--dump-dom").stdout.decode()
    assert len(Dom(dom).find("table", "verdict")) == 1 and 'id="c-r1"' in dom
    shot = tmp_path / "index.png"
    browse(tmp_path, url, f"--screenshot={shot}", "--window-size=1400,1000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) == (1400, 1000)
    assert len(data) > 60_000  # a blank page of this size compresses to ~4 KB
    keep_screenshot(shot, "index.png")


def keep_screenshot(shot: Path, name: str) -> None:
    """A copy under reports/browser-test/ (and KREPLAY_SCREENSHOT_DIR, if set)."""
    targets = [SCREENSHOTS]
    if os.environ.get("KREPLAY_SCREENSHOT_DIR"):
        targets.append(Path(os.environ["KREPLAY_SCREENSHOT_DIR"]))
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / name)


def test_chromium_renders_a_trace_page_and_its_pictures(report_page, tmp_path):
    url = (report_page / "trace-build-j16.html").as_uri()
    dom = browse(tmp_path, url, "--dump-dom").stdout.decode()
    parsed = Dom(dom)
    assert len(parsed.find("svg", "popmap")) == 2
    assert len(parsed.find("svg", "kva")) == 2 and len(parsed.find("svg", "pindex")) == 2
    assert parsed.find("svg", "trend")
    # the windows drawn, all in use: base 0-5 around its kstack windows 0, 1, 3; D38852
    # 0-3 and 145-149 around 0, 1, 147 (of 893 in use)
    assert len(parsed.find("rect", "w")) == 6 + 4 + 5

    shot = tmp_path / "trace.png"
    browse(tmp_path, url, f"--screenshot={shot}", "--window-size=1500,2400")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) == (1500, 2400)
    assert len(data) > 100_000
    keep_screenshot(shot, "trace-build-j16.png")
