"""diff, golden files and check: the nightly regression (issue 4)."""

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kreplay.check import trace_files
from kreplay.cli import cli
from kreplay.revisions import BUILTIN

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A copy of two bundled traces with their sidecars, a store and a golden folder."""
    monkeypatch.delenv("CI", raising=False)
    traces = tmp_path / "traces"
    traces.mkdir()
    for name in (
        "build-j16.kdump.gz",
        "build-j16.toml",
        "uul-freebsd12.kdump",
        "uul-freebsd12.toml",
    ):
        shutil.copy(REPO / "traces" / name, traces / name)
    return tmp_path


def invoke(work, *args):
    return CliRunner().invoke(cli, [*args, "--db", str(work / "s.duckdb")])


def matrix(work, *args):
    return invoke(work, *args, "--traces", str(work / "traces"), "--golden", str(work / "golden"))


def test_diff_marks_what_d38852_changes_against_base(work):
    matrix(work, "check", "--jobs", "1")  # ingests the traces
    result = invoke(work, "diff", "base", "D38852", "build-j16", "--json", "--all")
    assert result.exit_code == 0, result.output  # better, and nothing worse
    doc = json.loads(result.output)
    rows = {r["name"]: r for r in doc["traces"][0]["rows"]}
    assert set(rows["kstack.pindex_holes"]) == {
        "name", "unit", "polarity", "a", "b", "change", "mark"
    }  # fmt: skip
    assert rows["kstack.pindex_holes"]["b"] == 0 < rows["kstack.pindex_holes"]["a"]
    assert rows["kstack.pindex_holes"]["mark"] == "-"
    assert rows["kstack.reserv_full"]["mark"] == "-"
    # a running total of KVA imported: more of it is D38852's design, not a regression
    kva = rows["kstack.kva_imported_bytes"]
    assert kva["b"] > kva["a"] and kva["mark"] == "" and kva["polarity"] == "informational"
    assert rows["outcome"]["mark"] == ""
    assert doc["summary"] == {"failed": 0, "worse": 0, "better": 1, "changed": 0, "same": 0}
    unchanged = invoke(work, "diff", "base", "D38852", "build-j16", "--json")
    names = {r["name"] for r in json.loads(unchanged.output)["traces"][0]["rows"]}
    assert "kstack.pindex_holes" in names and "kstack.live_peak" not in names  # only changes


def test_a_threshold_keeps_a_small_change_from_counting(work):
    matrix(work, "check", "--jobs", "1")
    # D38852 on build-j16: reserv_full 0 -> 1, better (the forms in full: test_compare.py)
    plain = invoke(work, "diff", "base", "D38852", "build-j16", "--json")
    assert json.loads(plain.output)["traces"][0]["verdict"] == "better"
    pct_only = invoke(
        work,
        "diff",
        "base",
        "D38852",
        "build-j16",
        "--json",
        "--threshold",
        "kstack.reserv_full=500%",
    )
    rows = {r["name"]: r for r in json.loads(pct_only.output)["traces"][0]["rows"]}
    assert rows["kstack.reserv_full"]["mark"] == "-"  # from 0: a percentage tolerates nothing
    absolute = invoke(
        work,
        "diff",
        "base",
        "D38852",
        "build-j16",
        "--json",
        "--threshold",
        "kstack.reserv_full=+1",
    )
    rows = {r["name"]: r for r in json.loads(absolute.output)["traces"][0]["rows"]}
    assert rows["kstack.reserv_full"]["mark"] == ""  # within +1


def test_diff_prints_a_legend_a_headed_mark_column_and_a_summary(work):
    matrix(work, "check", "--jobs", "1")
    out = invoke(work, "diff", "base", "D38852").output
    assert out.startswith("marks: + worse  - better  ! new panic or hang")
    assert out.count("marks:") == 1
    assert "\nmark    metric" in out
    summary = re.search(
        r"\nsummary: 2 traces: (\d+) failed, (\d+) worse, (\d+) better, (\d+) changed, "
        r"(\d+) same\noverall: (\w+)\n$",
        out,
    )
    assert summary and sum(map(int, summary.groups()[:5])) == 2
    verdicts = re.findall(r"^verdict \S+: (\w+)", out, re.M)
    assert sorted(verdicts) == sorted(
        v
        for v, n in zip(
            ("failed", "worse", "better", "changed", "same"), summary.groups()[:5], strict=True
        )
        for _ in range(int(n))
    )


def runs(work) -> int:
    return json.loads(invoke(work, "sql", "SELECT count(*) AS n FROM runs", "--json").output)[0][
        "n"
    ]


def test_check_stores_every_cell_and_diff_and_a_second_check_are_served_from_it(work):
    result = matrix(work, "check", "--jobs", "1", "--json")
    cells = len(json.loads(result.output)["cells"])
    assert runs(work) == cells == 2 * len(BUILTIN)  # one run per cell
    first = invoke(work, "diff", "base", "ffff", "--json")
    second = invoke(work, "diff", "base", "ffff", "--json")
    assert first.output == second.output and runs(work) == cells  # check's cells served
    again = matrix(work, "check", "--jobs", "1", "--json")
    assert again.output == result.output and runs(work) == cells


def test_golden_round_trip_then_an_edited_golden_names_the_first_divergent_op(work):
    written = matrix(work, "golden", "update", "--jobs", "1")
    assert written.exit_code == 0 and written.output.count("written:") == 2 * len(BUILTIN)
    assert matrix(work, "check", "--jobs", "1").exit_code == 0
    path = work / "golden" / "build-j16" / "D38852.json"
    golden = json.loads(path.read_text())
    golden["checkpoints"][3][1] = "edited"
    golden["metrics"]["kstack.created"] += 1
    path.write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")
    result = matrix(work, "check", "--jobs", "1")
    assert result.exit_code == 1
    assert "build-j16 / D38852: differs" in result.output
    first = golden["checkpoints"][2][0] + 1
    assert f"first divergent op: #{first} " in result.output and "trace line" in result.output


def test_golden_update_refuses_in_ci(work, monkeypatch, capsys):
    from conftest import run_main

    monkeypatch.setenv("CI", "true")
    args = [
        "golden",
        "update",
        "--db",
        work / "s.duckdb",
        "--traces",
        work / "traces",
        "--golden",
        work / "golden",
    ]
    code, _, err = run_main(args, capsys)
    assert code == 2 and "refuses to run in CI" in err
    assert not (work / "golden").exists()


def test_missing_and_orphaned_goldens_fail_the_check(work):
    matrix(work, "golden", "update", "--jobs", "1", "--rev", "base")
    (work / "golden" / "uul-freebsd12" / "base.json").unlink()
    orphan = work / "golden" / "gone" / "base.json"
    orphan.parent.mkdir()
    orphan.write_text("{}")
    result = matrix(work, "check", "--jobs", "1", "--rev", "base", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    status = {c["trace"]: c["status"] for c in report["cells"]}
    assert status == {"build-j16": "ok", "uul-freebsd12": "no golden"}
    assert report["orphans"] == [str(orphan)]


def test_local_processes_and_dask_give_identical_results(work):
    pytest.importorskip("dask.distributed")
    matrix(work, "golden", "update", "--jobs", "1", "--rev", "base", "--rev", "D38852")
    outputs = [
        matrix(work, "check", "--rev", "base", "--rev", "D38852", "--json", *extra).output
        for extra in (["--jobs", "1"], ["--jobs", "2"], ["--executor", "dask"])
    ]
    assert outputs[0] == outputs[1] == outputs[2]
    assert json.loads(outputs[0])["failed"] is False


def test_report_json_is_written(work):
    matrix(work, "golden", "update", "--jobs", "1", "--rev", "ffff")
    result = matrix(
        work, "check", "--jobs", "1", "--rev", "ffff", "--report", str(work / "reports")
    )
    assert result.exit_code == 0
    report = json.loads((work / "reports" / "report.json").read_text())
    assert len(report["cells"]) == 2


def test_the_committed_goldens_match_the_model(tmp_path, monkeypatch):
    """The nightly check on the bundled corpus: a model change that moves any result must
    come with its golden update (`kreplay golden update`, reviewed as a git diff)."""
    monkeypatch.delenv("CI", raising=False)
    shutil.copytree(REPO / "traces", tmp_path / "traces")
    shutil.copytree(REPO / "golden", tmp_path / "golden")
    result = matrix(tmp_path, "check", "--jobs", "2")
    assert result.exit_code == 0, result.output
    cells = len(trace_files(str(REPO / "traces"))) * len(BUILTIN)  # every trace x revision
    assert f"{cells} cells, 0 not matching golden, 0 orphaned goldens" in result.output


def test_checking_a_subset_of_revisions_orphans_no_other_revisions_golden(work):
    matrix(work, "golden", "update", "--jobs", "1", "--rev", "base", "--rev", "D38852")
    result = matrix(work, "check", "--jobs", "1", "--rev", "D38852", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["orphans"] == []
    unknown = work / "golden" / "build-j16" / "no-such-revision.json"
    unknown.write_text("{}")
    result = matrix(work, "check", "--jobs", "1", "--rev", "D38852", "--json")
    assert result.exit_code == 1 and json.loads(result.output)["orphans"] == [str(unknown)]


def test_a_sidecars_cpu_ranges_become_the_machines_cpu_map(tmp_path):
    from kreplay.errors import KreplayError
    from kreplay.work import sidecar_machine

    trace = tmp_path / "t.kdump"
    sidecar = tmp_path / "t.toml"
    sidecar.write_text('[replay]\nmachine = "amd64-numa2"\ncpu_domains = ["8-15", "0-7"]\n')
    cfg, settings = sidecar_machine(trace)
    assert settings == {"cpu_domains": ",".join(["1"] * 8 + ["0"] * 8)}
    assert cfg.domain_of_cpu(0) == 1 and cfg.domain_of_cpu(15) == 0
    sidecar.write_text('[replay]\nmachine = "amd64-numa2"\ncpu_domains = ["0-3"]\n')
    with pytest.raises(KreplayError, match="cpu_domains"):
        sidecar_machine(trace)
    sidecar.write_text('[replay]\nmachine = "amd64-numa2"\ncpu_domains = "0-15"\n')
    with pytest.raises(KreplayError, match="cpu_domains"):
        sidecar_machine(trace)


def test_a_dead_worker_or_a_failing_cell_costs_only_that_cell():
    """Workers are forked and run the parent's tasks by index, so the function need not
    pickle: one task kills its worker, one raises, the rest finish."""
    import os

    from kreplay import executors

    def fake_run(name):
        if name == "dies":
            os._exit(3)
        if name == "raises":
            raise ValueError("boom")
        return name.encode(), None

    names = ["a", "dies", "b", "raises", "c"]
    out = executors.execute(names, fake_run, jobs=2)
    assert out[0] == (b"a", None) and out[2] == (b"b", None) and out[4] == (b"c", None)
    assert out[1].startswith("worker died: BrokenProcessPool")
    assert out[3] == "ValueError: boom"
    assert executors._JOB is None  # the parent does not keep the tasks alive


def test_replay_and_diff_use_the_machine_the_sidecar_named_at_ingest(tmp_path):
    """numa-migrate's sidecar says amd64-numa2 with 64 MiB per domain and its cpu map:
    there r-wrongarena panics (as check finds); on the default amd64 it would not."""
    for name in ("numa-migrate.kdump.gz", "numa-migrate.toml"):
        shutil.copy(REPO / "traces" / name, tmp_path / name)
    db = ["--db", str(tmp_path / "s.duckdb")]
    assert CliRunner().invoke(cli, ["ingest", str(tmp_path / "numa-migrate.kdump.gz"), *db])
    shown = CliRunner().invoke(cli, ["show", "numa-migrate", *db]).output
    assert "replay machine         amd64-numa2 cpu_domains=0,0,0,0,0,0,0,0,1" in shown
    replay = ["replay", "numa-migrate", "--rev", "D38852-r-wrongarena", "--json", *db]
    result = json.loads(CliRunner().invoke(cli, replay).output)
    assert result["machine"] == "amd64-numa2" and result["outcome"]["status"] == "panic"
    assert result["settings"] == {
        "cpu_domains": ",".join(["0"] * 8 + ["1"] * 8),
        "mem_per_domain_mb": "64",
    }
    result = json.loads(CliRunner().invoke(cli, [*replay, "--machine", "amd64"]).output)
    assert result["machine"] == "amd64" and result["outcome"]["status"] == "ok"
    diff = CliRunner().invoke(cli, ["diff", "D38852", "D38852-r-wrongarena", "--json", *db])
    assert diff.exit_code == 1 and "panic" in diff.output  # a new panic: on the sidecar machine


def test_a_sidecar_that_does_not_read_fails_the_ingest_naming_it(tmp_path, capsys):
    from conftest import assert_one_line_error, run_main

    trace = tmp_path / "t.kdump"
    shutil.copy(REPO / "traces" / "uul-freebsd12.kdump", trace)
    (tmp_path / "t.toml").write_text("[replay]\nset = [1, 2]\n")
    db = str(tmp_path / "s.duckdb")
    code, _, err = run_main(["ingest", str(trace), "--db", db], capsys)
    assert code == 2
    assert_one_line_error(err, "t.toml: bad sidecar: [replay] set must be a table")
    code, out, _ = run_main(["traces", "--db", db], capsys)
    assert "uul" not in out  # nothing stored


def test_diff_names_the_op_window_where_the_state_first_differs(work):
    matrix(work, "check", "--jobs", "1", "--rev", "base")  # ingests the traces
    result = invoke(work, "diff", "base", "D38852", "build-j16")
    # base and D38852 place the boot-time stacks differently: the first checkpoint differs
    assert "verdict build-j16: better; state first differs in ops 0..63" in result.output


def test_a_sidecar_edited_after_ingest_gives_the_stored_machine_and_one_note_everywhere(
    tmp_path,
):
    """Issue 17: replay, diff and check all replay the machine ingest stored, and each says,
    in the same sentence, that the sidecar now names another."""
    traces = tmp_path / "traces"
    traces.mkdir()
    for name in ("numa-migrate.kdump.gz", "numa-migrate.toml"):
        shutil.copy(REPO / "traces" / name, traces / name)
    db = ["--db", str(tmp_path / "s.duckdb")]
    trace = str(traces / "numa-migrate.kdump.gz")
    assert CliRunner().invoke(cli, ["ingest", trace, *db]).exit_code == 0
    sidecar = traces / "numa-migrate.toml"
    sidecar.write_text(
        sidecar.read_text().replace("mem_per_domain_mb = 64", "mem_per_domain_mb = 128")
    )

    replayed = CliRunner().invoke(cli, ["replay", "numa-migrate", "--rev", "D38852", "--json", *db])
    assert json.loads(replayed.stdout)["settings"]["mem_per_domain_mb"] == "64"
    diffed = CliRunner().invoke(cli, ["diff", "base", "D38852", "--json", *db])
    assert diffed.exit_code in (0, 1), diffed.output
    matrix = ["--traces", str(traces), "--golden", str(tmp_path / "golden"), "--rev", "D38852"]
    checked = CliRunner().invoke(cli, ["check", *matrix, "--json", *db])
    notes = json.loads(checked.stdout)["notes"]

    note = replayed.stderr.strip().removeprefix("kreplay: note: ")
    assert "stored amd64-numa2" in note and "mem_per_domain_mb=128" in note
    assert "kreplay ingest --replace" in note
    assert diffed.stderr.strip() == replayed.stderr.strip()
    assert notes == [note]
    [cell] = json.loads(checked.stdout)["cells"]
    assert cell["metrics"] == json.loads(replayed.stdout)["metrics"]  # the same Result
    runs = CliRunner().invoke(cli, ["sql", "select count(*) as n from runs", "--json", *db])
    assert json.loads(runs.stdout) == [{"n": 2}]  # base and D38852, each replayed once


def test_history_lists_each_check_and_a_metric_check_after_check(tmp_path, capsys):
    """Issue 17: the store records every check (label, cells, each cell's run), and
    `kreplay history` reads it back; the report's charts read the same tables."""
    db = ["--db", str(tmp_path / "s.duckdb")]
    matrix = ["--traces", str(REPO / "traces"), "--golden", str(REPO / "golden")]
    one = [*matrix, "--rev", "base", "--rev", "D38852", "uul-freebsd12", "build-j16", *db]
    assert CliRunner().invoke(cli, ["check", *one]).exit_code == 0
    assert CliRunner().invoke(cli, ["check", *one, "--label", "2026-12-02"]).exit_code == 0

    checks = json.loads(CliRunner().invoke(cli, ["history", "--json", *db]).stdout)
    assert [(c["check"], c["label"], c["cells"], c["failed"]) for c in checks] == [
        (1, "check 1", 4, 0),
        (2, "2026-12-02", 4, 0),
    ]
    args = ["history", "build-j16", "--metric", "reserv.fullpop", "--json", *db]
    cells = json.loads(CliRunner().invoke(cli, args).stdout)
    golden = {
        rev: json.loads((REPO / "golden" / "build-j16" / f"{rev}.json").read_text())["metrics"]
        for rev in ("base", "D38852")
    }
    assert [(c["check"], c["revision"], c["metrics"]) for c in cells] == [
        (check, rev, {"reserv.fullpop": golden[rev]["reserv.fullpop"]})
        for check in (1, 2)
        for rev in ("D38852", "base")
    ]
    table = CliRunner().invoke(cli, ["history", "--rev", "base", "--metric", "kstack.created", *db])
    assert table.stdout.splitlines()[0].split() == [
        "check",
        "label",
        "trace",
        "revision",
        "status",
        "kstack.created",
    ]
    assert len(table.stdout.splitlines()) == 2 + 4  # header, rule, 2 checks x 2 traces
    from conftest import assert_one_line_error, run_main

    code, _, err = run_main(["history", "--metric", "reserv.ful", *db], capsys)
    assert code == 2
    assert_one_line_error(err, "no metric 'reserv.ful': did you mean 'reserv.fullpop'?")
