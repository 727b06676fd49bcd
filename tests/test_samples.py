"""The real published kdump excerpts (traces/, each sidecar says where it was published).

Every line of every sample must be accounted for: an event, a continuation line of the
event before it, or a parse error with its line number. Then specific records are checked
against what the sample's author's kdump printed.
"""

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import (
    SAMPLE_FILES,
    copy_sample,
    events,
    parse_errors,
    query,
    sample_id,
    trace_row,
)

from kreplay.cli import cli
from kreplay.ingest import ingest
from kreplay.store import Store


def test_samples_are_there():
    assert all(path.is_file() for path in SAMPLE_FILES)


def _ingest_sample(tmp_path: Path, number: str) -> tuple[Path, str, str]:
    """Copy one sample into tmp_path and ingest it; (store, trace name, file text)."""
    path = copy_sample(tmp_path, number)
    store = tmp_path / "s.duckdb"
    with Store(str(store)) as s:
        result = ingest(s, str(path))
    assert result.status == "ingested"
    return store, result.name, path.read_text(encoding="utf-8")


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=sample_id)
def test_sample_ingests_and_every_line_is_accounted_for(sample, tmp_path):
    path = tmp_path / sample.name
    path.write_bytes(sample.read_bytes())
    store = tmp_path / "s.duckdb"

    result = CliRunner().invoke(cli, ["ingest", "--db", str(store), str(path)])
    assert result.exit_code == 0, result.output
    name = path.name.split(".", 1)[0]
    assert f"ingested as {name}" in result.output

    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    n_lines = len(text.split("\n")) - 1

    t = trace_row(store, name)
    assert t["lines"] == n_lines
    assert t["events"] + t["continuations"] + t["parse_errors"] == n_lines

    # The same accounting from the rows themselves, not from the trace's summary columns.
    evs = events(store, name)
    errs = parse_errors(store, name)
    cont = sum(e["cont_lines"] or 0 for e in evs)
    assert (len(evs), cont, len(errs)) == (t["events"], t["continuations"], t["parse_errors"])
    event_lines = {e["line"] for e in evs}
    error_lines = {p["line"] for p in errs}
    assert not event_lines & error_lines
    assert len(event_lines) + cont + len(error_lines) == n_lines
    assert max(event_lines | error_lines) <= n_lines

    # seq is the file order of the events, without gaps.
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    assert [e["line"] for e in evs] == sorted(event_lines)

    # No sample was printed with -H, timestamps, -c or -A.
    assert t["options"] == ""
    assert t["options_source"] == "detected"
    assert t["format"] == "kdump"
    assert t["bytes"] == len(sample.read_bytes())


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=sample_id)
def test_sample_header_fields_match_the_text(sample, tmp_path):
    """pid and comm of each event are the first two words of its line (no sample has a
    comm with a space), the kind is the tag after them."""
    store, name, text = _ingest_sample(tmp_path, sample_id(sample))
    lines = text.split("\n")
    for e in events(store, name):
        words = lines[e["line"] - 1].split()
        assert (e["pid"], e["comm"], e["kind"]) == (int(words[0]), words[1], words[2])
        assert e["tid"] is None and e["cpu"] is None and e["ts"] is None


def test_01_execve_justreturn_errno_and_gio(tmp_path):
    store, name, _ = _ingest_sample(tmp_path, "01")
    by_line = {e["line"]: e for e in events(store, name)}

    execve = by_line[4]
    assert (execve["kind"], execve["syscall"], execve["ret_kind"]) == (
        "RET",
        "execve",
        "justreturn",
    )
    assert execve["retval"] is None and execve["errno"] is None
    assert execve["comm"] == "uul"  # the new image's name is already on the RET line
    assert by_line[2]["comm"] == "ktrace"

    chdir = by_line[10]
    assert (chdir["kind"], chdir["syscall"]) == ("RET", "chdir")
    assert (chdir["retval"], chdir["errno"], chdir["ret_kind"]) == (-1, 2, "error")
    assert (by_line[7]["retval"], by_line[7]["ret_kind"]) == (0, "value")

    gio = by_line[12]
    assert gio["kind"] == "GIO"
    assert (gio["gio_fd"], gio["gio_dir"], gio["gio_bytes"]) == (1, "wrote", 4)
    assert gio["cont_lines"] == 2
    assert gio["cont"] == '       "BSD\n       "'
    assert 13 not in by_line and 14 not in by_line
    assert by_line[15]["retval"] == 4

    assert by_line[3]["path"] == "/tmp/uul"
    assert by_line[11]["args"] == "0x1,0x60023f,0x4"
    # exit has no RET: it is the last record.
    assert (by_line[16]["kind"], by_line[16]["syscall"]) == ("CALL", "exit")
    assert parse_errors(store, name) == []


def test_02_execve_returns_zero_and_ebadf(tmp_path):
    store, name, _ = _ingest_sample(tmp_path, "02")
    by_line = {e["line"]: e for e in events(store, name)}
    assert (by_line[4]["syscall"], by_line[4]["retval"], by_line[4]["ret_kind"]) == (
        "execve",
        0,
        "value",
    )
    assert (by_line[6]["syscall"], by_line[6]["errno"]) == ("close", 9)


def test_05_mmap_return_address_and_old_stat_struct(tmp_path):
    store, name, _ = _ingest_sample(tmp_path, "05")
    by_line = {e["line"]: e for e in events(store, name)}

    mmap = by_line[8]
    assert (mmap["kind"], mmap["syscall"], mmap["ret_kind"]) == ("RET", "mmap", "value")
    assert mmap["retval"] == 34366296064 == 0x800641000

    stru = by_line[5]
    assert stru["kind"] == "STRU"
    assert stru["body"].startswith("struct stat {dev=112, ino=16465, mode=-r--r--r-- ,")
    assert stru["body"].endswith("flags=0x0 }")

    assert by_line[1]["args"] == "0x80063a120,0<O_RDONLY>,<unused>0x839ac0"
    assert by_line[2]["path"] == "/lib/libc.so.7"
    assert [e["syscall"] for e in events(store, name) if e["kind"] == "RET"] == [
        "open",
        "fstat",
        "mmap",
        "mmap",
        "mmap",
        "mmap",
        "mmap",
    ]


def test_07_new_thread_ret_fork_zero_and_long_comm(tmp_path):
    store, name, _ = _ingest_sample(tmp_path, "07")
    evs = events(store, name)
    by_line = {e["line"]: e for e in evs}

    fork = by_line[8]
    assert (fork["kind"], fork["syscall"], fork["retval"], fork["ret_kind"]) == (
        "RET",
        "fork",
        0,
        "value",
    )
    assert (fork["pid"], fork["comm"], fork["tid"]) == (2121, "tst_qtendian", None)

    # 12 characters: longer than kdump's 8-column padding, and the first line has only
    # one leading space (the author's paste); trailing spaces are not part of any field.
    assert {e["comm"] for e in evs} == {"tst_qtendian"}
    assert {e["pid"] for e in evs} == {2121}
    assert by_line[1]["kind"] == "CALL"
    assert by_line[1]["args"].endswith(",0xffffffff,0")
    assert by_line[2]["retval"] == 45056
    assert (by_line[6]["syscall"], by_line[6]["retval"]) == ("thr_new", 0)
    assert by_line[7]["args"] == "0x121334ea0,UMTX_OP_WAIT_UINT_PRIVATE,0,0,0"


def test_10_book_decorations_are_parse_errors(tmp_path):
    store, name, text = _ingest_sample(tmp_path, "10")
    errs = parse_errors(store, name)
    assert [p["line"] for p in errs] == [9, 10, 14, 16, 18]
    assert errs[0]["text"] == ". . ."
    lines = text.split("\n")
    for p in errs:
        assert p["text"].strip() == lines[p["line"] - 1].strip()
        assert p["reason"]
    assert all("\u2776" <= p["text"].split("CALL  ")[1][0] <= "\u2779" for p in errs[1:])

    by_line = {e["line"]: e for e in events(store, name)}
    gio = by_line[29]
    assert (gio["kind"], gio["gio_bytes"], gio["cont_lines"]) == ("GIO", 25, 2)
    assert gio["cont"].startswith('       "file1')
    assert (by_line[11]["syscall"], by_line[11]["retval"]) == ("getdirentries", 512)
    # The undecorated RETs right after a decorated CALL are still events.
    assert {11, 15, 17, 19} <= by_line.keys()


def test_11_all_digit_command_name(tmp_path):
    store, name, _ = _ingest_sample(tmp_path, "11")
    evs = events(store, name)
    assert len(evs) == 25
    assert {e["comm"] for e in evs} == {"8"}
    assert {e["pid"] for e in evs} == {10437}
    assert {e["tid"] for e in evs} == {None}
    assert evs[1]["retval"] == 23060159660032 == 0x14F91CA00000
    nami = [e for e in evs if e["kind"] == "NAMI"]
    assert [e["path"] for e in nami] == ["/etc/malloc.conf"]


def test_12_hexdump_lines_without_their_gio_record(tmp_path):
    store, name, _ = _ingest_sample(tmp_path, "12")
    (nami,) = events(store, name)
    assert (nami["line"], nami["kind"], nami["path"], nami["comm"]) == (
        1,
        "NAMI",
        "/etc/malloc.conf",
        "3",
    )
    assert nami["cont_lines"] is None
    errs = parse_errors(store, name)
    assert [p["line"] for p in errs] == [2, 3]
    assert all("GIO" in p["reason"] for p in errs)
    assert errs[0]["text"].lstrip().startswith("0x0000 d0a2")


def test_all_samples_in_one_store(tmp_path):
    """Several traces in one store keep their rows apart."""
    paths = [copy_sample(tmp_path, sample_id(p)) for p in SAMPLE_FILES]
    store = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(store), *map(str, paths)])
    assert result.exit_code == 0, result.output
    rows = query(
        store,
        "SELECT t.name, t.events, (SELECT count(*) FROM events e WHERE e.trace_id = t.trace_id)"
        " AS n FROM traces t ORDER BY name",
    )
    assert len(rows) == len(SAMPLE_FILES)
    assert all(r["events"] == r["n"] for r in rows)
    assert len({r["name"] for r in rows}) == len(rows)
