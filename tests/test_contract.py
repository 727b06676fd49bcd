"""The promises the README and DESIGN §2 make, held to as a new user meets them: every
command takes --json (and its JSON parses) on the build `make test` runs; read commands
never create a store; `kreplay sql` cannot write; each refusal is exit 2 with one line."""

import json
import os
import random
import shutil
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import (
    REPO,
    assert_one_line_error,
    copy_sample,
    run_main,
    table_counts,
    write_recording,
)

from kreplay.check import check
from kreplay.cli import cli
from kreplay.model import native
from kreplay.report.text import plain_table, table
from kreplay.revisions import lookup, registry
from kreplay.store import Store


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder with two small bundled traces (and sidecars) in traces/, a store holding
    them, and no goldens yet; the current directory, outside CI."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "traces").mkdir()
    for name in ("uul-freebsd12", "cheribsd-qt-thr_new"):
        for suffix in (".kdump", ".toml"):
            shutil.copy(REPO / "traces" / f"{name}{suffix}", tmp_path / "traces")
    assert run(tmp_path, "ingest", "traces/uul-freebsd12.kdump").exit_code == 0
    return tmp_path


STORELESS = {"synth", "record", "snapshot"}  # commands that take no --db


def run(work: Path, *args: str):
    """A command on the work folder's store (STORELESS commands have none)."""
    store = [] if args[0] in STORELESS else ["--db", str(work / "s.duckdb")]
    return CliRunner().invoke(cli, [*args, *store])


VMSTAT_Z_SAMPLE = next((REPO / "tests" / "samples" / "sysctl").glob("09-*"))  # a real vmstat -z

# Every command and subcommand with arguments that make it do its job on `work`, and the
# exit codes that job may end with (1: differences found).
COMMANDS = {
    ("ingest",): (["traces/cheribsd-qt-thr_new.kdump"], {0}),
    ("traces",): ([], {0}),
    ("show",): (["uul-freebsd12"], {0}),
    ("sql",): (["SELECT name, lines FROM traces"], {0}),
    ("revisions",): ([], {0}),
    ("revision", "new"): (["D38852-mine", "--plugin", "pindex"], {0}),
    ("replay",): (["uul-freebsd12", "--rev", "D38852"], {0}),
    ("diff",): (["base", "D38852"], {0, 1}),
    ("check",): (["--jobs", "1", "--rev", "D38852"], {1}),  # no goldens yet
    ("golden", "update"): (["--jobs", "1", "--rev", "D38852"], {0}),
    ("synth",): (["thread-storm", "-o", "storm.kdump"], {0}),
    ("record",): ([], {0}),
    ("snapshot",): ([str(VMSTAT_Z_SAMPLE)], {0}),
    ("history",): (["uul-freebsd12", "--metric", "kstack.created"], {0}),
    ("validate",): (["thread-storm"], {0}),  # on the synthetic recording SETUP writes
}


def _command_paths(group: click.Group, prefix: tuple = ()) -> set[tuple]:
    out = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out |= _command_paths(command, (*prefix, name))
        else:
            out.add((*prefix, name))
    return out


def test_the_table_names_every_command():
    assert _command_paths(cli) == set(COMMANDS)


def test_the_build_under_test_is_the_one_make_builds():
    if os.environ.get("KREPLAY_EXPECT_COMPILED"):
        assert native.BUILD == "compiled (mypyc)"


def _recording(work: Path) -> None:
    """A synthetic recording (trace, sidecar, snapshots), ingested."""
    (work / "rec").mkdir()
    write_recording("thread-storm", 1, str(work / "rec"))
    assert run(work, "ingest", "rec/thread-storm.kdump").exit_code == 0


SETUP = {("validate",): _recording}  # what a command needs beyond `work`


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_every_command_with_and_without_json(work, path, as_json):
    args, codes = COMMANDS[path]
    SETUP.get(path, lambda work: None)(work)
    result = run(work, *path, *args, *(["--json"] if as_json else []))
    assert result.exit_code in codes, result.output
    assert (
        "internal error" not in result.output
        and result.exception is None
        or (isinstance(result.exception, SystemExit))
    ), result.output
    if as_json:
        json.loads(result.output)
    else:
        with pytest.raises(ValueError):
            json.loads(result.output)  # a table, not JSON


# ---------------------------------------------------------------------------- a missing store

READ_COMMANDS = (
    ["traces"],
    ["show", "x"],
    ["sql", "SELECT 1"],
    ["replay", "x", "--rev", "D38852"],
    ["diff", "base", "D38852"],
)


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_read_commands_never_create_a_store(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(command, capsys)  # the default store, ./kreplay.duckdb
    assert code == 2
    assert_one_line_error(err, "kreplay.duckdb", "no store here")
    assert list(tmp_path.iterdir()) == []


def test_revisions_needs_no_store_and_makes_none(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_main(["revisions"], capsys)[0] == 0
    assert list(tmp_path.iterdir()) == []


def test_diff_over_no_trace_is_trouble_not_same(tmp_path, capsys):
    db = tmp_path / "empty.duckdb"
    Store(str(db)).close()
    code, out, err = run_main(["diff", "base", "D38852", "--db", db], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, "no traces in the store")


# ---------------------------------------------------------------------------- kreplay sql


def _sql(work: Path, capsys, *args) -> tuple[int, str, str]:
    return run_main(["sql", "--db", work / "s.duckdb", *args], capsys)


@pytest.mark.parametrize(
    "statement, why",
    [
        ("COPY events TO '{out}/x.csv'", "COPY"),
        ("COPY events TO '{out}/x.parquet' (FORMAT parquet)", "COPY"),
        ("EXPORT DATABASE '{out}/exported'", "EXPORT"),
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
        ("SELECT * FROM glob('{out}/*')", "disabled by configuration"),
        ("CREATE TEMP TABLE t AS SELECT 1", "CREATE"),
        ("ATTACH '{out}/other.duckdb'", "ATTACH"),
        ("INSTALL httpfs", "LOAD"),
        ("LOAD httpfs", "LOAD"),
        ("SET enable_external_access = true", "SET"),
        ("CHECKPOINT", "CALL"),
        ("SELECT 1; SELECT 2", "one statement, not 2"),
        ("INSERT INTO traces (trace_id, name, sha256, format) VALUES (9, 'x', 'y', 'z')", "INSERT"),
    ],
)
def test_sql_refuses_what_is_not_a_read(work, capsys, statement, why):
    out = work / "out"
    out.mkdir()
    before = table_counts(work / "s.duckdb")
    code, stdout, err = _sql(work, capsys, statement.format(out=out))
    assert code == 2 and stdout == ""
    assert_one_line_error(err, why)
    assert list(out.iterdir()) == []
    assert table_counts(work / "s.duckdb") == before


@pytest.mark.parametrize(
    "statement",
    [
        "COPY events TO '{out}/x.csv'",
        "EXPORT DATABASE '{out}/exported'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "ATTACH '{out}/other.duckdb'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
    ],
)
def test_duckdb_itself_refuses_on_the_sandboxed_connection(work, statement):
    """Below kreplay's check of the statement type, the connection refuses on its own."""
    import duckdb

    out = work / "out"
    out.mkdir()
    with Store(str(work / "s.duckdb"), sandbox=True) as store, pytest.raises(duckdb.Error):
        store.con.execute(statement.format(out=out))
    assert list(out.iterdir()) == []


def test_sql_formats(work, capsys):
    query = "SELECT line, kind FROM events ORDER BY line LIMIT 2"
    _, csv_out, _ = _sql(work, capsys, "--format", "csv", query)
    assert csv_out == "line,kind\n1,RET\n2,CALL\n"
    _, md, _ = _sql(work, capsys, "--format", "markdown", query)
    assert md.splitlines()[0].startswith("| line") and md.splitlines()[1].startswith("|:-")
    _, as_json, _ = _sql(work, capsys, "--format", "json", query)
    assert json.loads(as_json) == [{"line": 1, "kind": "RET"}, {"line": 2, "kind": "CALL"}]
    assert _sql(work, capsys, "--json", query)[1] == as_json
    _, empty, _ = _sql(work, capsys, "--json", "SELECT 1 AS x WHERE false")
    assert empty == "[]\n"


def test_sql_limit_says_how_many_rows_it_cut(work, capsys):
    code, out, err = _sql(work, capsys, "--limit", "3", "SELECT line FROM events ORDER BY line")
    assert code == 0 and out.split()[2:] == ["1", "2", "3"]
    assert err == "kreplay: 11 more rows not shown (--limit 0 for all)\n"  # 14 events
    code, out, err = _sql(work, capsys, "--limit", "0", "SELECT line FROM events")
    assert len(out.splitlines()) == 2 + 14 and err == ""


def test_sql_limits_rows_on_a_terminal_by_default(work, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = _sql(work, capsys, "SELECT * FROM range(250)")
    assert len(out.splitlines()) == 2 + 100 and "150 more rows" in err


def test_the_fast_query_table_prints_what_tabulate_prints():
    rnd = random.Random(13)  # seeded: a failure names its case
    for case in range(2000):
        columns = ["".join(rnd.choice("abc_") for _ in range(rnd.randint(1, 6))) for _ in "xyz"]
        rows = [
            [rnd.choice([None, rnd.randint(-9, 10**6), "x y", "é", "", "long text here"])
             for _ in columns]
            for _ in range(rnd.randint(0, 6))
        ]  # fmt: skip
        assert plain_table(columns, rows) == table(columns, rows), case


def test_the_fast_query_table_puts_a_multiline_cell_on_its_lines():
    assert plain_table(["a", "b"], [["x\ny", "z"], [None, 1]]) == (
        "a    b\n---  ---\nx    z\ny\n     1\n"
    )


# ---------------------------------------------------------------------------- the rest


@pytest.mark.parametrize("jobs", ["0", "-1"])
@pytest.mark.parametrize("command", [["check"], ["golden", "update"]], ids=" ".join)
def test_jobs_below_one_are_refused(work, command, jobs):
    result = run(work, *command, "--jobs", jobs)
    assert result.exit_code == 2 and "--jobs" in result.output


def test_golden_update_json_says_what_it_wrote(work):
    result = run(work, "golden", "update", "--jobs", "1", "--rev", "D38852", "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.output)
    assert {d["state"] for d in done} == {"written"} and len(done) == 2
    assert (work / "golden" / "uul-freebsd12" / "D38852.json").is_file()


def test_synth_to_stdout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(["synth", "thread-storm", "-o", "-"], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, "--sidecar-to")
    assert list(tmp_path.iterdir()) == []
    code, out, err = run_main(
        ["synth", "thread-storm", "-o", "-", "--sidecar-to", "s.toml"], capsys
    )
    assert code == 0 and err.startswith("stdout: thread-storm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # no file named "-"
    assert run_main(["synth", "thread-storm", "-o", "t.kdump", "--no-sidecar"], capsys)[0] == 0
    assert out == (tmp_path / "t.kdump").read_text()


def test_ingest_tries_every_file_and_reports_each_failure(work, capsys):
    bad = work / "bad.kdump"
    bad.write_bytes(b"")
    good = copy_sample(work, "07")
    code, out, err = run_main(
        ["ingest", "--db", work / "s.duckdb", bad, work / "nonexistent.kdump", good], capsys
    )
    assert code == 2
    assert "ingested as cheribsd-qt-thr_new" in out
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("kreplay: error: ") for line in lines)
    assert str(bad) in lines[0] and "nonexistent.kdump" in lines[1]


def test_a_revision_file_with_a_typo_names_the_key_and_the_closest_known(tmp_path, capsys):
    path = tmp_path / "r.toml"
    path.write_text('[[revision]]\nname = "mine"\nreservatons = false\n')
    code, _, err = run_main(["revisions", "--revisions", path], capsys)
    assert code == 2
    assert_one_line_error(err, "'reservatons'", "did you mean 'reservations'?")


def test_check_reports_progress_per_cell(work):
    seen = []
    with Store(str(work / "s.duckdb")) as store:
        revisions = [lookup(registry(), "base"), lookup(registry(), "D38852")]
        check(store, "traces", "golden", revisions, jobs=2, progress=lambda *a: seen.append(a))
    assert seen[0][:2] == (0, 4) and seen[-1] == (4, 4, "")
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)
    assert all("/" in running for _, _, running in seen[:-1])


def test_check_progress_is_on_stderr_only_on_a_terminal(work, monkeypatch):
    from kreplay.cli import _cell_bar

    assert _cell_bar("check") is None  # the test's stderr is no terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _cell_bar("check") is not None
