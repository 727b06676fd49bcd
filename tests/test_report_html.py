"""The HTML nightly report (issue 6): structure, escaping, determinism, pictures, history,
and the page as a real headless Chromium renders it."""

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from kreplay.cells import Cell, CheckReport
from kreplay.check import check
from kreplay.cli import cli
from kreplay.pictures import GUARD, HOLE, LIVE, Pictures
from kreplay.report import html, svg
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


def test_check_report_writes_a_self_contained_page(report_page):
    page = (report_page / "index.html").read_text()
    dom = Dom(page)
    (matrix,) = dom.find("table", "matrix")
    links = [a["href"] for a in dom.find("a")]
    assert all(href.startswith("#") for href in links)  # no network, no other file
    assert not dom.find("script") and not dom.find("link") and not dom.find("img")
    assert {href[1:] for href in links} <= dom.ids  # every link has its target
    assert len(dom.find("svg", "popmap")) == 4  # 2 traces x 2 revisions, one domain
    assert len(dom.find("svg", "kva")) == len(dom.find("svg", "pindex")) == 4
    assert dom.find("svg", "trend")  # kstack.created moved since the earlier run
    # D38852's chunk reads EFB 408 512 72 (README): three reservations, the third one's
    # block taken after the user pages had the ones between
    assert "kstack windows 0: 408/512 rv, 1: 512/512 rv, 147: 72/512 rv" in page
    assert json.loads((report_page / "report.json").read_text())["failed"] is False


def test_matrix_has_a_row_per_trace_and_a_column_per_revision(report_page):
    page = (report_page / "index.html").read_text()
    matrix = page[page.index('<table class="matrix">') :]
    matrix = matrix[: matrix.index("</table>")]
    assert matrix.count("<tr>") == 3  # header + 2 traces
    assert "<tr><th>trace</th><th>base</th><th>D38852</th></tr>" in matrix
    assert matrix.count('<td class="ok"><a href="#m-t') == 4


def test_the_same_inputs_give_the_same_bytes(matrix, report_page, tmp_path):
    """The same store checked again under the same label: the label's latest check is
    this one, with the same Results, so the same history and page."""
    again = tmp_path / "nightly" / report_page.name
    db = tmp_path / "s.duckdb"
    shutil.copy(matrix / "after-report.duckdb", db)
    assert run_check(matrix, again, db=db).exit_code == 0
    assert (again / "index.html").read_bytes() == (report_page / "index.html").read_bytes()
    assert (again / "report.json").read_bytes() == (report_page / "report.json").read_bytes()


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
    page = html.render(report, {evil + "rev": evil}, hist, label=evil)
    assert "<script>" not in page and "<b>2026</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    Dom(page)  # parses


def test_a_failed_cell_is_red_in_the_matrix_and_linked_to_its_details():
    page = html.render(_bare_report("t", "r", "worker died"), {}, History([]), "run")
    assert '<td class="bad"><a href="#diff-t0-r0">error</a></td>' in page
    assert 'id="diff-t0-r0"' in page and "worker died" in page
    assert "FAILED" in page and "Orphaned golden files" in page


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


def test_chromium_renders_the_matrix_and_the_pictures(report_page, tmp_path):
    url = (report_page / "index.html").as_uri()
    dom = browse(tmp_path, url, "--dump-dom").stdout.decode()
    parsed = Dom(dom)
    assert len(parsed.find("table", "matrix")) == 1
    assert len(parsed.find("svg", "popmap")) == 4
    assert len(parsed.find("svg", "kva")) == 4 and len(parsed.find("svg", "pindex")) == 4
    assert parsed.find("svg", "trend")
    assert len(parsed.find("rect", "w")) > 800  # a cell per 2 MiB window in use

    shot = tmp_path / "report.png"
    browse(tmp_path, url, f"--screenshot={shot}", "--window-size=1500,2400")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) == (1500, 2400)
    # A blank page of this size compresses to ~6 KB; the report's tables and maps to ~400.
    assert len(data) > 100_000
    if os.environ.get("KREPLAY_SCREENSHOT_DIR"):
        target = Path(os.environ["KREPLAY_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "report.png")
