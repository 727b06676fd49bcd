"""The command line as users script against it (DESIGN.md §2): exit codes, --help,
--json shapes, one-line errors, read-only sql, and one real subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error, copy_sample, run_main, table_counts

import kreplay
from kreplay.cli import cli
from kreplay.model import native
from kreplay.store import Store

TRACE_KEYS = {
    "name",
    "sha256",
    "lines",
    "events",
    "continuations",
    "parse_errors",
    "dropped",
    "options",
    "options_source",
    "format",
    "compression",
    "first_ts",
    "last_ts",
}


def invoke(*args, **kw):
    result = CliRunner().invoke(cli, [str(a) for a in args], **kw)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


@pytest.fixture
def store(tmp_path) -> Path:
    """A store holding samples 01 (clean) and 10 (with parse errors)."""
    db = tmp_path / "s.duckdb"
    paths = [copy_sample(tmp_path, p) for p in ("01", "10")]
    result = invoke("ingest", "--db", db, *paths)
    assert result.exit_code == 0, result.output
    return db


UUL = "uul-freebsd12"
BOOK = "ls-i386-book"


# ---------------------------------------------------------------------------- basics


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"kreplay, version {kreplay.__version__}; model: {native.BUILD}\n"


def test_version_through_main(capsys):
    code, out, _ = run_main(["--version"], capsys)
    assert code == 0 and kreplay.__version__ in out


@pytest.mark.parametrize(
    "command",
    [[], *([name] for name in sorted(cli.commands))],
    ids=lambda c: " ".join(c) or "kreplay",
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(command, flag):
    result = invoke(*command, flag)
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ")
    help_line = (cli.commands[command[0]].help if command else cli.help).split("\n")[0]
    assert help_line.split()[0] in result.output


def test_the_documented_commands_exist():
    assert {"ingest", "traces", "show", "sql"} <= set(cli.commands)


def test_ingest_needs_a_path(capsys):
    code, _, err = run_main(["ingest"], capsys)
    assert code == 2 and "PATH" in err


def test_name_with_several_paths_is_a_usage_error(tmp_path, capsys):
    a, b = copy_sample(tmp_path, "01"), copy_sample(tmp_path, "02")
    code, _, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", "--name", "x", a, b], capsys)
    assert code == 2 and "--name" in err
    assert not (tmp_path / "s.duckdb").exists() or table_counts(tmp_path / "s.duckdb") == {
        "traces": 0,
        "events": 0,
        "parse_errors": 0,
    }


def test_ingest_output_line(tmp_path):
    path = copy_sample(tmp_path, "10")
    result = invoke("ingest", "--db", tmp_path / "s.duckdb", path)
    assert result.exit_code == 0
    assert result.output == (
        f"{path}: ingested as {BOOK}: 33 lines, 26 events, 2 continuation lines, "
        "5 parse errors (options none, detected)\n"
    )


def test_ingest_with_given_kdump_options(tmp_path):
    path = tmp_path / "htc.kdump"
    path.write_text(
        "  1234 100123 proc     1700000000.123456789   3 CALL  getpid\n"
        "  1234 100123 proc     1700000000.123457000   3 RET   getpid 1234/0x4d2\n"
    )
    db = tmp_path / "s.duckdb"
    result = invoke("ingest", "--db", db, "--kdump-options", "-H -T -c", path)
    assert result.exit_code == 0
    assert result.output.endswith(
        "2 events, 0 continuation lines, 0 parse errors (options HTc, given)\n"
    )
    (t,) = json.loads(invoke("traces", "--db", db, "--json").output)
    assert (t["options"], t["options_source"]) == ("HTc", "given")


def test_ingest_with_unknown_kdump_option(tmp_path, capsys):
    path = tmp_path / "t.kdump"
    path.write_text("  1234 proc     CALL  getpid\n")
    code, _, err = run_main(
        ["ingest", "--db", tmp_path / "s.duckdb", "--kdump-options", "HQ", path], capsys
    )
    assert code == 2
    assert_one_line_error(err, "Q")


def test_ingest_json(tmp_path):
    path = copy_sample(tmp_path, "01")
    db = tmp_path / "s.duckdb"
    first = json.loads(invoke("ingest", "--db", db, "--json", path).output)
    again = json.loads(invoke("ingest", "--db", db, "--json", path).output)
    assert [r["status"] for r in first + again] == ["ingested", "already"]
    assert first[0]["name"] == again[0]["name"] == UUL
    assert first[0]["trace"].keys() >= TRACE_KEYS
    assert first[0]["trace"] == again[0]["trace"]
    assert first[0]["trace"]["events"] == 14


# ---------------------------------------------------------------------------- traces


def test_traces_table(store):
    result = invoke("traces", "--db", store)
    assert result.exit_code == 0
    head, rule, *rows = result.output.splitlines()
    for column in ("name", "sha256", "lines", "events", "parse_errors"):
        assert column in head.split()
    assert set(rule) <= {"-", " "}
    assert [row.split()[0] for row in rows] == [BOOK, UUL]  # by name
    book = dict(zip(head.split(), rows[0].split(), strict=True))
    assert (book["lines"], book["events"], book["parse_errors"]) == ("33", "26", "5")


def test_traces_json(store):
    result = invoke("traces", "--db", store, "--json")
    assert result.exit_code == 0
    traces = json.loads(result.output)
    assert isinstance(traces, list) and len(traces) == 2
    for t in traces:
        assert t.keys() >= TRACE_KEYS
        assert len(t["sha256"]) == 64
        assert t["events"] + t["continuations"] + t["parse_errors"] == t["lines"]
    assert [(t["name"], t["lines"], t["parse_errors"]) for t in traces] == [
        (BOOK, 33, 5),
        (UUL, 16, 0),
    ]


def test_traces_of_an_empty_store(tmp_path):
    db = tmp_path / "e.duckdb"
    with Store(str(db)):
        pass
    result = invoke("traces", "--db", db, "--json")
    assert result.exit_code == 0 and json.loads(result.output) == []
    assert "no traces" in invoke("traces", "--db", db).output


def test_duckdb_file_without_the_kreplay_schema(tmp_path, capsys):
    db = tmp_path / "other.duckdb"
    duckdb.connect(str(db)).close()
    code, _, err = run_main(["traces", "--db", db], capsys)
    assert code == 2
    assert_one_line_error(err, str(db))


def test_missing_store(tmp_path, capsys):
    db = tmp_path / "none.duckdb"
    for command in (["traces"], ["show", "x"], ["sql", "SELECT 1"]):
        code, _, err = run_main([*command, "--db", db], capsys)
        assert code == 2
        assert_one_line_error(err, str(db))
    assert not db.exists()


def test_store_that_is_not_a_duckdb_file(tmp_path, capsys):
    db = tmp_path / "text.duckdb"
    db.write_text("this is not a database\n" * 100)
    code, _, err = run_main(["traces", "--db", db], capsys)
    assert code == 2
    assert_one_line_error(err, str(db), "store")


def test_store_of_another_schema_version(store, capsys):
    con = duckdb.connect(str(store))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    code, _, err = run_main(["traces", "--db", store], capsys)
    assert code == 2
    assert_one_line_error(err, "999")


def test_a_schema_1_store_is_refused_whole(tmp_path, capsys):
    """A store from before issue 16 (events a table) is refused, and opening it for an
    ingest changes nothing in it: the message says to ingest again into a new store."""
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("CREATE TABLE events (trace_id INTEGER, seq BIGINT)")
    con.close()
    code, _, err = run_main(["ingest", "--db", db, BOOK], capsys)
    assert code == 2
    assert_one_line_error(err, "schema version 1", "version 2", "new store")
    con = duckdb.connect(str(db), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert tables == {"meta", "events"}


# ---------------------------------------------------------------------------- show


def test_show(store):
    result = invoke("show", "--db", store, BOOK)
    assert result.exit_code == 0
    out = result.output
    assert BOOK in out
    assert "33 = 26 events + 2 continuation lines + 5 parse errors" in out
    kinds = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in {"CALL", "RET", "NAMI", "GIO"}:
            kinds[words[0]] = int(words[1])
    assert kinds == {"CALL": 9, "GIO": 1, "NAMI": 3, "RET": 13}
    assert "parse errors" in out
    for line_no, reason in ((9, "not a kdump record line"), (10, "malformed CALL")):
        assert any(ln.split()[:1] == [str(line_no)] and reason in ln for ln in out.splitlines())


def test_show_json(store):
    result = invoke("show", "--db", store, BOOK, "--json", "--errors", "2")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["kinds"] == {"CALL": 9, "GIO": 1, "NAMI": 3, "RET": 13}
    assert sum(doc["kinds"].values()) == doc["trace"]["events"] == 26
    assert doc["processes"] == 1 and doc["threads"] is None
    assert [e["line"] for e in doc["parse_errors"]] == [9, 10]
    assert doc["parse_errors"][0] == {
        "line": 9,
        "reason": doc["parse_errors"][0]["reason"],
        "text": ". . .",
    }


def test_show_counts_processes_and_threads(tmp_path):
    db = tmp_path / "s.duckdb"
    path = tmp_path / "threads.kdump"
    path.write_text(
        "  1234 100123 proc     1700000000.123456789   3 CALL  thr_new(0x7fffdfbfaf48,0x68)\n"
        "  1234 100124 proc     1700000000.123457000   1 RET   fork 0\n"
        "  1234 100123 proc     1700000000.123458000   3 RET   thr_new 0\n"
        "  1235 100200 sh       1700000001.000000000   0 CALL  exit(0)\n"
        "  1234 100124 proc     Events dropped.\n"
    )
    assert invoke("ingest", "--db", db, path).exit_code == 0
    doc = json.loads(invoke("show", "--db", db, "threads", "--json").output)
    assert (doc["processes"], doc["threads"]) == (2, 3)
    assert doc["kinds"] == {"CALL": 2, "RET": 2, "DROP": 1}
    assert doc["trace"]["options"] == "HTc"
    assert (doc["trace"]["first_ts"], doc["trace"]["last_ts"]) == (
        1700000000123456789,
        1700000001000000000,
    )
    out = invoke("show", "--db", db, "threads").output
    assert "1700000000.123456789 .. 1700000001.000000000" in out
    assert "HTc (detected)" in out


def test_show_of_a_clean_trace_lists_no_errors(store):
    doc = json.loads(invoke("show", "--db", store, UUL, "--json").output)
    assert doc["parse_errors"] == []
    assert "parse errors (" not in invoke("show", "--db", store, UUL).output


def test_show_unknown_trace(store, capsys):
    code, out, err = run_main(["show", "--db", store, "no-such-trace"], capsys)
    assert code == 2
    assert out == ""
    assert_one_line_error(err, "no-such-trace")


# ---------------------------------------------------------------------------- sql


def test_sql_json(store):
    result = invoke(
        "sql",
        "--db",
        store,
        "--json",
        "SELECT name, events, parse_errors FROM traces ORDER BY name",
    )
    assert result.exit_code == 0
    assert json.loads(result.output) == [
        {"name": BOOK, "events": 26, "parse_errors": 5},
        {"name": UUL, "events": 14, "parse_errors": 0},
    ]


def test_sql_json_column_types(store):
    result = invoke(
        "sql",
        "--db",
        store,
        "--json",
        "SELECT 18446744073709490176::UBIGINT AS addr, NULL AS nothing, 1.5 AS dec, "
        "[1, 2] AS list, {'a': 1} AS st, DATE '2024-01-02' AS day, "
        "(SELECT max(ingested_at) FROM traces) IS NOT NULL AS has_time",
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["addr"] == 18446744073709490176
    assert row["nothing"] is None
    assert row["list"] == [1, 2] and row["st"] == {"a": 1}
    assert row["day"] == "2024-01-02" and row["has_time"] is True
    assert float(row["dec"]) == 1.5


def test_sql_table(store):
    result = invoke(
        "sql",
        "--db",
        store,
        "SELECT line, kind, syscall FROM events e JOIN traces t USING (trace_id) "
        f"WHERE t.name = '{UUL}' AND line <= 2 ORDER BY line",
    )
    assert result.exit_code == 0
    assert [ln.split() for ln in result.output.splitlines()] == [
        ["line", "kind", "syscall"],
        ["------", "------", "---------"],
        ["1", "RET", "ktrace"],
        ["2", "CALL", "execve"],
    ]


def test_sql_every_line_accounted_for(store):
    """The invariant of DESIGN.md §3, checked through the user's SQL interface."""
    result = invoke(
        "sql",
        "--db",
        store,
        "--json",
        """
        SELECT t.name, t.lines,
          (SELECT count(*) FROM events e WHERE e.trace_id = t.trace_id)
          + (SELECT coalesce(sum(cont_lines), 0) FROM events e WHERE e.trace_id = t.trace_id)
          + (SELECT count(*) FROM parse_errors p WHERE p.trace_id = t.trace_id) AS accounted
        FROM traces t""",
    )
    rows = json.loads(result.output)
    assert len(rows) == 2 and all(r["lines"] == r["accounted"] for r in rows)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO traces (trace_id, name, sha256, format) VALUES (99, 'x', 'y', 'kdump')",
        "DELETE FROM events",
        "DROP TABLE parse_errors",
        "CREATE TABLE t (x INTEGER)",
        "UPDATE traces SET name = 'renamed'",
    ],
)
def test_sql_is_read_only(store, capsys, statement):
    before = table_counts(store)
    names = [r["name"] for r in json.loads(invoke("traces", "--db", store, "--json").output)]
    code, out, err = run_main(["sql", "--db", store, statement], capsys)
    assert code == 2
    assert_one_line_error(err, "read-only")
    assert table_counts(store) == before
    after = [r["name"] for r in json.loads(invoke("traces", "--db", store, "--json").output)]
    assert after == names


def test_sql_syntax_error(store, capsys):
    code, _, err = run_main(["sql", "--db", store, "SELEC nonsense"], capsys)
    assert code == 2
    assert_one_line_error(err, "query failed")


def test_traceback_flag_shows_more(store, capsys):
    code, _, err = run_main(["--traceback", "sql", "--db", store, "SELEC nonsense"], capsys)
    assert code == 2
    assert "Traceback" in err and "kreplay: error: " in err


# ---------------------------------------------------------------------------- the real program


def test_subprocess_smoke(tmp_path):
    path = copy_sample(tmp_path, "07")
    db = tmp_path / "s.duckdb"
    env = dict(os.environ)
    env.pop("KREPLAY_DB", None)
    # The subprocess imports the same kreplay as this test process.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(kreplay.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "kreplay", *map(str, args)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ingest = run("ingest", "--db", db, path)
    assert ingest.returncode == 0, ingest.stderr
    assert "ingested as cheribsd-qt-thr_new: 13 lines" in ingest.stdout

    traces = run("traces", "--db", db, "--json")
    assert traces.returncode == 0, traces.stderr
    (t,) = json.loads(traces.stdout)
    assert (t["name"], t["events"], t["parse_errors"]) == (
        "cheribsd-qt-thr_new",
        13,
        0,
    )

    missing = run("show", "--db", db, "nope")
    assert missing.returncode == 2
    assert missing.stderr.startswith("kreplay: error: ") and missing.stderr.count("\n") == 1


def test_ingest_progress_reports_duckdbs_progress_then_erases_itself(tmp_path):
    """Store.watched: the percentages of the statements DuckDB runs, from a helper thread,
    then None (the bar is erased); the CLI passes a reporter only when stderr is a TTY."""
    from kreplay.ingest import ingest
    from kreplay.store import Store

    seen = []
    with Store(str(tmp_path / "s.duckdb")) as store:
        with store.watched(seen.append, every_s=0.005):
            ingest(store, str(Path(__file__).parents[1] / "traces" / "memory-pressure.kdump.gz"))
        assert store.has_name("memory-pressure")
        settings = store.con.execute(
            "SELECT current_setting('enable_progress_bar_print')"
        ).fetchone()
    assert seen[-1] is None and None not in seen[:-1]
    assert seen[:-1] and all(0 <= p <= 100 for p in seen[:-1])
    assert settings == (True,)  # reset to DuckDB's default afterwards
