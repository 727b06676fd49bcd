"""Hostile input (issue 14): one bad line never costs the trace, nothing loops, no internal
error is reachable from data, nothing is written where it must not be. Each case is one a
fuzzing run or a hostile user found; the message of each refusal names its file and line
or field."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import ktrace_writer as kw
import pytest
from conftest import (
    REPO,
    assert_one_line_error,
    header,
    ingest_text,
    parse_errors,
    run_main,
    table_counts,
    trace_row,
)

from kreplay import ops as kops
from kreplay.errors import UsageError
from kreplay.model.machine import LIMITS, Machine, machine_config
from kreplay.revisions import lookup, registry
from kreplay.store import Store

OK = header(1234, "proc", "CALL") + "getpid"


# ---------------------------------------------------------------------------- one line


@pytest.mark.parametrize(
    "line, reason",
    [
        (header(1234, "proc", "RET") + "read -1 errno 99999999999", "errno beyond 32 bits"),
        (header(1234, "proc", "RET") + "fork 99999999999999999999", "return value beyond 64"),
        (header(1234, "proc", "RET") + "fork 0x10000000000000000", "return value beyond 64"),
        (header(1234, "proc", "PFLT") + "0x10000000000000000 0x2<VM_PROT_WRITE>", "fault addr"),
        (header(1234, "proc", "RET") + "x[99999999999] 0", "syscall number beyond"),
        (header(1234, "proc", "GIO") + "fd 99999999999 read 3 bytes", "GIO descriptor"),
        ("2147483648 proc     CALL  getpid", "pid beyond 32 bits"),
        (header(1234, "proc", "RET") + "read -1 errno EBADF", "malformed RET record body"),
    ],
)
def test_a_value_beyond_its_column_is_a_parse_error_of_its_line(tmp_path, line, reason):
    """Before: the whole trace refused behind DuckDB's "transaction is aborted" (or the value
    stored as NULL). Now the line is a parse error with its reason, the others are stored."""
    text = (OK + "\n") * 2 + line + "\n" + OK + "\n"
    info = ingest_text(tmp_path, text, "t")
    assert (info.lines, info.events, info.parse_errors) == (4, 3, 1)
    (error,) = parse_errors(tmp_path / "store.duckdb", "t")
    assert error["line"] == 3 and reason in error["reason"], error


def test_the_data_lines_of_a_record_refused_for_a_field_are_not_lost(tmp_path):
    """Found by tools/fuzz.py: a GIO record with an fd past 32 bits is a parse error, and
    its data lines were continuations of it, stored nowhere. They are parse errors too."""
    text = OK + "\n"
    text += header(1234, "proc", "GIO") + "fd 18446744073709551616 wrote 4 bytes\n"
    text += '       "BSD\n       "\n' + OK + "\n"
    info = ingest_text(tmp_path, text, "t")
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (5, 2, 0, 3)
    reasons = [e["reason"] for e in parse_errors(tmp_path / "store.duckdb", "t")]
    assert "GIO descriptor" in reasons[0] and all(
        "without its GIO record" in r for r in reasons[1:]
    )


@pytest.mark.parametrize("ts", ["99999999999.000000", "9223372036.854775807"])
def test_a_timestamp_beyond_64_bit_nanoseconds_is_a_parse_error(tmp_path, ts):
    line = "  1234 proc     {} CALL  getpid\n"
    text = line.format("1700000000.000000") * 2 + line.format(ts) + line.format("1700000001.000000")
    info = ingest_text(tmp_path, text, "t")
    assert (info.lines, info.events, info.parse_errors) == (4, 3, 1)
    (error,) = parse_errors(tmp_path / "store.duckdb", "t")
    assert error["line"] == 3 and "timestamp beyond" in error["reason"], error


def test_a_tid_of_32_bits_or_more_is_a_parse_error(tmp_path):
    text = header(1234, "proc", "CALL", tid=100100) + "getpid\n"
    text += f"  1234 {2**31} proc     CALL  getpid\n"
    info = ingest_text(tmp_path, text, "t")
    assert (info.events, info.parse_errors) == (1, 1)
    assert "thread id beyond" in parse_errors(tmp_path / "store.duckdb", "t")[0]["reason"]


def test_an_aborted_ingest_names_its_real_cause(tmp_path, monkeypatch, capsys):
    """An error inside the transaction is the one reported, not the one of a statement run
    after it on the aborted transaction (the RESET of a setting, once)."""
    path = tmp_path / "t.kdump"
    path.write_text(OK + "\n")
    db = tmp_path / "s.duckdb"
    Store(str(db)).close()
    before = table_counts(db)

    def boom(self, *args):
        raise duckdb.ConversionException("Conversion Error: the real cause")

    monkeypatch.setattr(Store, "_insert_batch", boom)
    code, _, err = run_main(["ingest", "--db", db, path], capsys)
    assert code == 2
    assert_one_line_error(err, "the real cause")
    assert "transaction is aborted" not in err
    assert table_counts(db) == before


@pytest.mark.parametrize("seconds", [2**62, 10**10, -5])
def test_binary_timestamp_seconds_beyond_the_store_are_a_record_error(tmp_path, capsys, seconds):
    good = kw.call(20, [], sec=1_700_000_000)
    bad = kw.call(20, [], sec=seconds)
    path = tmp_path / "t.ktr"
    path.write_bytes(kw.write([good, bad]))
    code, _, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", path], capsys)
    assert code == 2
    assert_one_line_error(err, "record 2", "timestamp seconds")


# ---------------------------------------------------------------------------- no loops


def test_an_unmap_of_the_whole_address_space_costs_what_is_resident(tmp_path, capsys):
    lines = [
        header(1234, "proc", "PFLT", tid=100100) + "0x800000000 0x2<VM_PROT_WRITE>",
        header(1234, "proc", "PRET", tid=100100) + "KERN_SUCCESS",
        header(1234, "proc", "CALL", tid=100100) + "munmap(0x800000000,0x7fffffffffffffff)",
        header(1234, "proc", "RET", tid=100100) + "munmap 0",
        header(1234, "proc", "CALL", tid=100100) + "munmap(0x1ffffffffffffffff,0x1000)",
        header(1234, "proc", "RET", tid=100100) + "munmap 0",
    ]
    ingest_text(tmp_path, "\n".join(lines) + "\n", "t")
    db = tmp_path / "store.duckdb"
    code, out, _ = run_main(["show", "t", "--db", db], capsys)  # once: past 60 s
    assert code == 0 and "records with impossible values (ignored)  1" in out
    code, out, _ = run_main(["replay", "t", "--rev", "D38852", "--db", db, "--json"], capsys)
    assert code == 0 and json.loads(out)["outcome"]["status"] == "ok"


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_every_machine_parameter_has_a_range_checked_before_the_replay(name):
    low, high, _ = LIMITS[name]
    for value in (low - 1, high + 1):
        with pytest.raises(UsageError, match=f"{name} = {value}: must be in"):
            machine_config("amd64", {name: str(value)})
    machine_config(
        "amd64-numa2" if name == "ncpu" else "amd64", {name: str(low if name != "ncpu" else 2)}
    )


@pytest.mark.parametrize("setting", ["hz=-1000", "hz=0", "kstack_pages=100000", "ncpu=100000000"])
def test_a_bad_setting_is_one_short_line(tmp_path, capsys, setting):
    ingest_text(tmp_path, OK + "\n", "t")
    code, _, err = run_main(
        ["replay", "t", "--rev", "D38852", "--db", tmp_path / "store.duckdb", "--set", setting],
        capsys,
    )
    assert code == 2 and len(err) < 200
    assert_one_line_error(err, setting.split("=")[0], "must be in")


# ---------------------------------------------------------------------------- no internal error


def test_impossible_child_pids_are_ignored_and_counted(tmp_path, capsys):
    text = OK + "\n" + header(1234, "proc", "RET") + "fork 99999999999\n"
    ingest_text(tmp_path, text, "t")
    db = tmp_path / "store.duckdb"
    code, out, err = run_main(["replay", "t", "--rev", "D38852", "--db", db], capsys)
    assert code == 0, err
    code, out, _ = run_main(["show", "t", "--db", db], capsys)
    assert "records with impossible values (ignored)  1" in out


@pytest.mark.parametrize(
    "sidecar, why",
    [
        ("[replay]\nmachine = 5\n", "machine must be"),
        ('replay = "amd64"\n', "[replay] must be a table"),
        ('[replay]\ncpu_domains = ["0-99999999"]\n', "cpu_domains"),
        ("[replay\n", "bad sidecar"),
    ],
)
def test_a_bad_sidecar_is_one_line_naming_it(tmp_path, capsys, sidecar, why):
    (tmp_path / "t.toml").write_text(sidecar)
    (tmp_path / "t.kdump").write_text(OK + "\n")
    code, _, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", tmp_path / "t.kdump"], capsys)
    assert code == 2
    assert_one_line_error(err, "t.toml", why)


@pytest.mark.parametrize(
    "toml, why",
    [
        ('[[revision]]\nname = "x"\nreservations = "no"\n', "reservations must be a boolean"),
        ("[[revision]]\nname = 5\n", "name must be a string"),
        ("revision = [1, 2]\n", "must be [[revision]] tables"),
        ('[[revision]]\nname = "x"\npindex = true\n', "pindex must be a policy's name"),
        ('[[revision]]\nname = "../../../../tmp/x"\n', "not a valid name"),
    ],
)
def test_a_bad_revision_file_is_one_line_naming_it(tmp_path, capsys, toml, why):
    path = tmp_path / "r.toml"
    path.write_text(toml)
    code, _, err = run_main(["revisions", "--revisions", path], capsys)
    assert code == 2
    assert_one_line_error(err, "r.toml", why)


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "-rf", "a b", ""])
def test_trace_names_keep_to_the_safe_alphabet(tmp_path, capsys, name):
    path = tmp_path / "t.kdump"
    path.write_text(OK + "\n")
    code, _, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", "--name", name, path], capsys)
    assert code == 2
    assert_one_line_error(err, "not a valid trace name", "--name")


@pytest.fixture
def matrix(tmp_path, monkeypatch):
    """traces/ with two small real traces, a store, and goldens written for them."""
    monkeypatch.delenv("CI", raising=False)
    (tmp_path / "traces").mkdir()
    for name in ("uul-freebsd12", "cheribsd-qt-thr_new"):
        shutil.copy(REPO / "traces" / f"{name}.kdump", tmp_path / "traces")
    args = ["--db", tmp_path / "s.duckdb", "--traces", tmp_path / "traces"]
    args += ["--golden", tmp_path / "golden", "--rev", "D38852", "--jobs", "1"]
    assert subprocess_free_main(["golden", "update", *args]) == 0
    return tmp_path, args


def subprocess_free_main(argv) -> int:
    from click.testing import CliRunner

    from kreplay.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in argv]).exit_code


@pytest.mark.parametrize("damage", ["directory", "deep", "unknown metric", "not json"])
def test_a_corrupt_golden_errors_its_own_cell(matrix, capsys, damage):
    work, args = matrix
    golden = work / "golden" / "uul-freebsd12" / "D38852.json"
    if damage == "directory":
        golden.unlink()
        golden.mkdir()
    elif damage == "deep":
        golden.write_text("[" * 200_000 + "]" * 200_000)
    elif damage == "unknown metric":
        doc = json.loads(golden.read_text())
        doc["metrics"]["no.such.metric"] = 1
        doc["metrics"]["kstack.created"] += 1  # differs, so the golden is read
        golden.write_text(json.dumps(doc))
    else:
        golden.write_text("not json")
    code, out, err = run_main(["check", *args], capsys)
    assert code == 1 and "internal error" not in err
    assert "uul-freebsd12 / D38852: error" in out and str(golden) in out
    assert "cheribsd-qt-thr_new  ok" in out.replace("  ", " ").replace(" ", "  ") or (
        "cheribsd-qt-thr_new" in out and out.count(": error") == 1
    )


def test_a_zombie_swapped_out_then_reaped_and_its_pid_reused(tmp_path):
    """Through the model's API: a SLEEP after exit made the zombie swappable, and its pid
    stayed 'swapped' past the reap, so the next process of that pid met a KeyError."""
    cfg = machine_config("amd64", {"mem_per_domain_mb": "16", "boot_threads": "0"})
    machine = Machine(cfg, lookup(registry(), "D38852").policy)
    machine.boot([], True)
    s = 1000  # ticks: hz 1000
    machine.apply(kops.PROC_NEW, 7, 100, 0, 0, 1, 0)
    machine.apply(kops.PROC_NEW, 8, 200, 0, 0, 1, 0)
    machine.apply(kops.PROC_EXIT, 7, 100, 0, s, 0, 0)
    machine.apply(kops.SLEEP, 7, 0, 0, s, 0, 0)
    for page in range(16 * 256 + 1):  # pressure: the swapper runs
        try:
            machine.apply(kops.FAULT, 8, 200, 0, 10 * s, page, 0)
        except Exception as e:  # a hang of the faulting process is the model's answer
            assert type(e).__name__ == "KernelHang"
            break
    machine.apply(kops.PROC_EXIT, 8, 200, 0, 11 * s, 0, 0)
    machine.apply(kops.REAP, 8, 0, 0, 11 * s, 1, 0)
    machine.apply(kops.REAP, 7, 0, 0, 11 * s, 1, 0)
    machine.apply(kops.PROC_NEW, 7, 101, 0, 12 * s, 1, 0)  # was: KeyError in _swapin
    machine.apply(kops.FAULT, 7, 101, 0, 12 * s, 5, 0)
    assert 7 not in machine.swapped


# ---------------------------------------------------------------------------- the store


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_a_truncated_store_is_one_line(tmp_path, capsys, cut):
    db = tmp_path / "s.duckdb"
    shutil.copy(REPO / "traces" / "ls-i386-book.kdump", tmp_path)
    assert run_main(["ingest", "--db", db, tmp_path / "ls-i386-book.kdump"], capsys)[0] == 0
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.truncate(int(size * cut))
    for command in (
        ["traces"],
        ["show", "ls-i386-book"],
        ["replay", "ls-i386-book", "--rev", "D38852"],
    ):
        code, _, err = run_main([*command, "--db", db], capsys)
        assert code in (0, 2) and "internal error" not in err
        if code == 2:
            assert_one_line_error(err, str(db))


def test_a_duckdb_file_that_is_no_kreplay_store(tmp_path, capsys):
    db = tmp_path / "other.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE x (i INTEGER)").close()
    code, _, err = run_main(["traces", "--db", db], capsys)
    assert code == 2
    assert_one_line_error(err, "not a kreplay store")


def _hold(db: Path, read_only: bool) -> subprocess.Popen:
    """Another process with the store open until its stdin closes."""
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == '1'); "
        "print('ready', flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(db), "1" if read_only else "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_store_held_by_another_process_is_said_plainly(tmp_path, capsys):
    ingest_text(tmp_path, OK + "\n", "t")
    db = tmp_path / "store.duckdb"
    writer = _hold(db, read_only=False)
    try:
        code, _, err = run_main(["traces", "--db", db], capsys)
        assert code == 2
        assert_one_line_error(err, f"in use by another process (pid {writer.pid})")
    finally:
        writer.communicate("")
    reader = _hold(db, read_only=True)
    try:  # other readers: reads work, and replay goes without its caches
        assert run_main(["traces", "--db", db], capsys)[0] == 0
        code, out, err = run_main(["replay", "t", "--rev", "D38852", "--db", db], capsys)
        assert code == 0, err
    finally:
        reader.communicate("")


# ---------------------------------------------------------------------------- written nowhere else


def test_ci_set_but_empty_counts_as_ci(matrix, monkeypatch, capsys):
    work, args = matrix
    monkeypatch.setenv("CI", "")
    code, _, err = run_main(["golden", "update", *args], capsys)
    assert code == 2
    assert_one_line_error(err, "refuses to run in CI")


def test_a_text_ingest_writes_nothing_beside_the_store(tmp_path, db):
    """Chunks are parsed in memory (issue 16): no copies of the input on disk."""
    ingest_text(tmp_path, OK + "\n", "t", db=db)
    assert sorted(p.name for p in Path(db).parent.iterdir() if p.name.startswith("store")) == [
        Path(db).name
    ]


@pytest.mark.parametrize(
    ("sig", "line"), [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")]
)
def test_an_error_after_a_signal_is_the_signal(tmp_path, capsys, monkeypatch, sig, line):
    """A KeyboardInterrupt raised while DuckDB calls into Python is swallowed by DuckDB,
    which then fails the statement its own way (`Table with name batch_rows does not
    exist`): once a signal came, the error that follows is the interruption."""
    from kreplay import cli

    monkeypatch.setattr(cli, "_SIGNALLED", [sig])
    code, out, err = run_main(["show", "--db", tmp_path / "none.duckdb", "x"], capsys)
    assert (code, out, err.strip()) == (2, "", f"kreplay: {line}")
    monkeypatch.setattr(cli, "_SIGNALLED", [])
    code, _, err = run_main(["show", "--db", tmp_path / "none.duckdb", "x"], capsys)
    assert code == 2 and "no store here" in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_ingest_leaves_the_store_and_the_disk_as_they_were(tmp_path, sig):
    big = tmp_path / "big.kdump"
    one = (REPO / "traces" / "ls-i386-book.kdump").read_bytes()
    big.write_bytes(one * 100_000)  # ~3.3 M lines: several seconds of ingest
    db = tmp_path / "s.duckdb"
    ingest_text(tmp_path, OK + "\n", "small", db=db)
    before = table_counts(db)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kreplay", "ingest", "--db", str(db), str(big)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(2.0)  # imports done, the ingest under way
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the ingest finished before the signal came")
    assert proc.returncode == 2 and err.strip() in ("kreplay: terminated", "kreplay: interrupted")
    assert table_counts(db) == before
    assert not Path(f"{db}.ingest").exists()
    assert trace_row(db, "small")["events"] == 1
