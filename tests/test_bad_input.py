"""Bad and unusual input (DESIGN.md §8): kreplay never crashes and never half-writes the
store; it ingests what is valid, reports each bad line with its number, and exits 2 only
when nothing usable was found or --strict was asked for.
"""

import bz2
import gc
import gzip
import hashlib
import lzma
import random
import shutil
import struct
import warnings

import pytest
from click.testing import CliRunner
from conftest import (
    assert_one_line_error,
    copy_sample,
    events,
    header,
    ingest_text,
    parse_errors,
    query,
    run_main,
    table_counts,
    trace_row,
)

from kreplay.cli import cli

GOOD = [
    header(1234, "proc", "CALL") + "open(0x800a00000,0<O_RDONLY>)",
    header(1234, "proc", "NAMI") + '"/etc/passwd"',
    header(1234, "proc", "RET") + "open 3",
    header(1234, "proc", "CALL") + "read(0x3,0x7fffffffe000,0x80)",
    header(1234, "proc", "GIO ") + "fd 3 read 4 bytes",
    '       "root"',
    header(1234, "proc", "RET") + "read 4",
    header(1234, "proc", "CALL") + "exit(0)",
]
GOOD_TEXT = "\n".join(GOOD) + "\n"


def summary(db, name) -> tuple:
    t = trace_row(db, name)
    return t["lines"], t["events"], t["continuations"], t["parse_errors"]


# ---------------------------------------------------------------------------- nothing usable


def test_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.kdump"
    path.write_bytes(b"")
    code, out, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", path], capsys)
    assert code == 2
    assert_one_line_error(err, str(path), "empty")
    assert out == ""


def test_only_blank_lines(tmp_path, capsys):
    path = tmp_path / "blank.kdump"
    path.write_text("\n\n\n")
    code, _, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", path], capsys)
    assert code == 2
    assert_one_line_error(err, f"{path}:1:", "no kdump record")


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.kdump"
    code, _, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", path], capsys)
    assert code == 2
    assert_one_line_error(err, str(path), "cannot open")


def _garbage(seed: int, size: int = 64 << 10, exclude: bytes = b"") -> bytes:
    rnd = random.Random(seed)
    data = bytes(rnd.randrange(256) for _ in range(size))
    for byte in exclude:
        data = data.replace(bytes([byte]), b"")
    assert data[:2] != b"\x1f\x8b"  # not taken for gzip by accident
    return data


@pytest.mark.parametrize("seed", [1, 20240611])
def test_binary_garbage_read_as_kdump(tmp_path, capsys, seed):
    path = tmp_path / "garbage.bin"
    path.write_bytes(_garbage(seed))
    code, _, err = run_main(
        ["ingest", "--db", tmp_path / "s.duckdb", "--format", "kdump", path], capsys
    )
    assert code == 2
    assert_one_line_error(err, str(path), "no kdump record")


@pytest.mark.parametrize("seed", range(5))
def test_binary_garbage_auto_format(tmp_path, capsys, seed):
    """Whatever the garbage looks like (ktrace.out or text), one line and exit 2."""
    path = tmp_path / "garbage.bin"
    path.write_bytes(_garbage(seed, size=4096))
    code, out, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", path], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, str(path))
    assert table_counts(tmp_path / "s.duckdb")["traces"] == 0


def test_binary_garbage_without_newlines_read_as_kdump(tmp_path, capsys):
    """One 64 KiB line of binary garbage."""
    path = tmp_path / "garbage.bin"
    path.write_bytes(_garbage(7, exclude=b"\n"))
    code, _, err = run_main(
        ["ingest", "--db", tmp_path / "s.duckdb", "--format", "kdump", path], capsys
    )
    assert code == 2
    assert_one_line_error(err, str(path), "no kdump record")
    assert table_counts(tmp_path / "s.duckdb") == {"traces": 0, "events": 0, "parse_errors": 0}


def _ktrace_record() -> bytes:
    """One v1 SYSCALL record of an amd64 binary ktrace.out (spec §2.2, §2.4)."""
    payload = struct.pack("<hh4x", 20, 0)  # getpid, no args
    head = struct.pack("<iHH", len(payload), 0x4000 | 1, 1)
    head += struct.pack("<i20s", 1234, b"proc") + struct.pack("<qqqi4x", 1700000000, 5, 100123, 3)
    assert len(head) == 64
    return head + payload


def test_binary_ktrace_file_is_recognised(tmp_path, capsys):
    """--format auto reads a binary ktrace.out as one (tests/test_ktrace.py has the rest)."""
    path = tmp_path / "ktrace.out"
    path.write_bytes(_ktrace_record() * 20)
    code, out, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", path], capsys)
    assert (code, err) == (0, "")
    assert "20 events" in out
    assert query(tmp_path / "s.duckdb", "SELECT format FROM traces") == [{"format": "ktrace"}]


def test_binary_ktrace_file_forced_as_text_has_no_record(tmp_path, capsys):
    path = tmp_path / "ktrace.out"
    path.write_bytes(_ktrace_record() * 20)
    code, _, err = run_main(
        ["ingest", "--db", tmp_path / "s.duckdb", "--format", "kdump", path], capsys
    )
    assert code == 2
    assert_one_line_error(err, str(path), "no kdump record")


def test_ktrace_format_is_not_read_from_text(tmp_path, capsys):
    path = tmp_path / "t.kdump"
    path.write_text(GOOD_TEXT)
    code, _, err = run_main(
        ["ingest", "--db", tmp_path / "s.duckdb", "--format", "ktrace", path], capsys
    )
    assert code == 2
    assert_one_line_error(err, str(path))


# ---------------------------------------------------------------------------- bad lines among good


def test_truncated_last_line_without_newline(tmp_path, db):
    text = GOOD_TEXT + header(1234, "proc", "CALL") + "munmap(0x"
    info = ingest_text(tmp_path, text)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (9, 7, 1, 1)
    (err,) = parse_errors(db, "t")
    assert err["line"] == 9
    assert err["text"] == header(1234, "proc", "CALL") + "munmap(0x"


def test_complete_last_line_without_newline(tmp_path, db):
    info = ingest_text(tmp_path, GOOD_TEXT.rstrip("\n"))
    assert (info.lines, info.events, info.parse_errors) == (8, 7, 0)
    assert events(db, "t")[-1]["syscall"] == "exit"


def test_header_cut_before_its_tag(tmp_path, db):
    """The cut of sample 07: `  2121 tst_qtendian RET` with nothing after."""
    info = ingest_text(tmp_path, GOOD_TEXT + "  2121 tst_qtendian RET")
    assert (info.lines, info.parse_errors) == (9, 1)
    assert parse_errors(db, "t")[0]["line"] == 9


def test_invalid_utf8_line(tmp_path, db):
    """A line of bytes that are not UTF-8 and no kdump record is a parse error, shown with
    \\xNN escapes; the lines around it are read as usual."""
    bad = b"\xff\xfe\xc3 binary \xff\xff"
    good = [line.encode() for line in GOOD]
    data = b"\n".join(good[:2] + [bad] + good[2:]) + b"\n"
    info = ingest_text(tmp_path, data)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (9, 7, 1, 1)
    (err,) = parse_errors(db, "t")
    assert err["line"] == 3
    assert "\\xff\\xfe\\xc3 binary" in err["text"]
    assert [e["line"] for e in events(db, "t")] == [1, 2, 4, 5, 6, 8, 9]
    assert events(db, "t")[4]["cont_lines"] == 1  # the GIO still owns its dump


def test_record_with_non_utf8_bytes(tmp_path, db):
    """kdump prints paths and thread names as raw bytes: a Latin-1 file name does not make
    its record a parse error, and its bytes are not dropped."""
    nami = header(1234, "proc", "NAMI").encode() + b'"/tmp/caf\xe9 menu"'
    good = [line.encode() for line in GOOD]
    data = b"\n".join(good[:2] + [nami] + good[2:]) + b"\n"
    info = ingest_text(tmp_path, data)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (9, 8, 1, 0)
    e = events(db, "t")[2]
    assert (e["line"], e["kind"], e["pid"]) == (3, "NAMI", 1234)
    assert e["path"].startswith("/tmp/caf") and e["path"].endswith(" menu")
    assert len(e["path"]) > len("/tmp/caf menu")


def test_crlf_line_endings(tmp_path, db):
    ingest_text(tmp_path, GOOD_TEXT, name="lf")
    info = ingest_text(tmp_path, GOOD_TEXT.replace("\n", "\r\n"), name="crlf")
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (8, 7, 1, 0)
    keep = ("line", "pid", "comm", "kind", "syscall", "args", "retval", "path", "cont")
    lf, crlf = ([{k: e[k] for k in keep} for e in events(db, n)] for n in ("lf", "crlf"))
    assert crlf == lf
    assert not any("\r" in str(v) for e in crlf for v in e.values())
    assert trace_row(db, "crlf")["sha256"] != trace_row(db, "lf")["sha256"]


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00",
        b"\x00\x00\x00\x00",
        b'  1234 proc     NAMI  "a\x00b"',
        b"\x1b[31mred\x1b[0m",
        b"\x7f",
    ],
)
def test_control_characters_make_a_line_bad(tmp_path, db, bad):
    good = [line.encode() for line in GOOD]
    data = b"\n".join(good[:1] + [bad] + good[1:]) + b"\n"
    info = ingest_text(tmp_path, data)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (9, 7, 1, 1)
    (err,) = parse_errors(db, "t")
    assert err["line"] == 2 and err["reason"]
    assert "\x00" not in err["text"]


def test_backslash_x01_text_in_a_line(tmp_path, db):
    """The text `\x01` is also how a raw 0x01 byte is shown in a parse error."""
    path = r'"C:\x01\x01dir"'
    text = GOOD_TEXT + header(1234, "proc", "NAMI") + path + "\n"
    info = ingest_text(tmp_path, text)
    assert (info.events, info.parse_errors) == (8, 0)
    assert events(db, "t")[-1]["path"] == path.strip('"')


def test_long_preamble_before_the_trace(tmp_path, db):
    """A capture that starts with 2500 lines of build output before kdump's lines."""
    preamble = "".join(f"===> building target {i} of 2500\n" for i in range(2500))
    info = ingest_text(tmp_path, preamble + GOOD_TEXT)
    assert (info.lines, info.events, info.parse_errors) == (2508, 7, 2500)
    assert info.options == ""


MIB = 1 << 20


def _long_line_file(position: str, line: bytes) -> bytes:
    good = GOOD_TEXT.encode()
    if position == "first":
        return line + b"\n" + good
    if position == "middle":
        return good + line + b"\n" + good
    return good + line  # last, without newline


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_two_mib_line_is_a_parse_error(tmp_path, db, position):
    data = _long_line_file(position, b"y" * (2 * MIB))
    info = ingest_text(tmp_path, data)
    assert info.lines == (17 if position == "middle" else 9)
    assert info.parse_errors == 1
    (err,) = parse_errors(db, "t")
    assert err["line"] == {"first": 1, "middle": 9, "last": 9}[position]


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_over_long_line_is_reported_as_such(tmp_path, db, position):
    """MAX_LINE (1 MiB): longer lines are reported, not parsed, wherever they are; even one
    that starts like a record. The stored text is clipped."""
    long_call = header(1234, "proc", "CALL").encode() + b"write(" + b"0x1," * (MIB // 2) + b"0)"
    info = ingest_text(tmp_path, _long_line_file(position, long_call))
    assert info.parse_errors == 1
    (err,) = parse_errors(db, "t")
    assert "longer than" in err["reason"]
    assert len(err["text"]) < 4096
    assert all(len(e["args"] or "") < MIB for e in events(db, "t"))


@pytest.mark.parametrize(("length", "is_event"), [(MIB - 1, True), (MIB, True), (MIB + 1, False)])
def test_line_length_limit(tmp_path, db, length, is_event):
    prefix = header(1234, "proc", "CALL").encode() + b"write(0x1,"
    line = prefix + b"0" * (length - len(prefix) - 1) + b")"
    assert len(line) == length
    info = ingest_text(tmp_path, _long_line_file("middle", line))
    assert info.lines == 17
    assert (info.events, info.parse_errors) == ((15, 0) if is_event else (14, 1))
    if is_event:
        (call,) = [e for e in events(db, "t") if e["line"] == 9]
        assert (call["syscall"], len(call["args"])) == ("write", length - len(prefix) + 3)
    else:
        assert "longer than" in parse_errors(db, "t")[0]["reason"]


def test_five_mib_line_in_the_middle(tmp_path, db):
    info = ingest_text(tmp_path, _long_line_file("middle", b"z" * (5 * MIB)))
    assert (info.lines, info.events, info.parse_errors) == (17, 14, 1)
    assert parse_errors(db, "t")[0]["line"] == 9


# ---------------------------------------------------------------------------- compression, stdin


@pytest.mark.parametrize(
    ("suffix", "compress", "label"),
    [
        (".gz", gzip.compress, "gzip"),
        (".xz", lzma.compress, "xz"),
        (".bz2", bz2.compress, "bzip2"),
    ],
)
def test_compressed_input_equals_plain(tmp_path, db, suffix, compress, label):
    plain = copy_sample(tmp_path, "10")
    raw = plain.read_bytes()
    packed = tmp_path / ("packed.kdump" + suffix)
    packed.write_bytes(compress(raw))

    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(plain), str(packed)])
    assert result.exit_code == 0, result.output
    # Same decompressed bytes, same identity: the second file is already there.
    assert f"{packed}: already ingested as {plain.name.split('.')[0]}" in result.output

    result = CliRunner().invoke(cli, ["ingest", "--db", str(tmp_path / "z.duckdb"), str(packed)])
    assert result.exit_code == 0, result.output
    z = tmp_path / "z.duckdb"
    t_plain, t_packed = trace_row(db, plain.name.split(".")[0]), trace_row(z, "packed")
    assert t_packed["sha256"] == t_plain["sha256"] == hashlib.sha256(raw).hexdigest()
    assert (t_packed["compression"], t_plain["compression"]) == (label, None)
    assert t_packed["bytes"] == len(raw)
    assert summary(z, "packed") == summary(db, plain.name.split(".")[0])

    def rows(store, name):
        return [{k: v for k, v in e.items() if k != "trace_id"} for e in events(store, name)]

    assert rows(z, "packed") == rows(db, plain.name.split(".")[0])
    assert parse_errors(z, "packed")[0]["line"] == 9


@pytest.mark.parametrize(
    ("compress", "label"),
    [
        (gzip.compress, "gzip"),
        (lzma.compress, "xz"),
        (bz2.compress, "bzip2"),
    ],
)
def test_broken_compressed_data(tmp_path, capsys, compress, label):
    path = tmp_path / "broken.kdump.z"
    path.write_bytes(compress(GOOD_TEXT.encode() * 50)[:60])
    code, _, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", path], capsys)
    assert code == 2
    assert_one_line_error(err, str(path), label)


def test_default_name_drops_all_extensions(tmp_path, db):
    path = tmp_path / "storm.kdump.gz"
    path.write_bytes(gzip.compress(GOOD_TEXT.encode()))
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(path)])
    assert result.exit_code == 0, result.output
    assert "ingested as storm:" in result.output
    assert trace_row(db, "storm")["source"] == str(path)


def test_stdin(tmp_path, db):
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), "-"], input=GOOD_TEXT)
    assert result.exit_code == 0, result.output
    assert "ingested as stdin" in result.output
    assert summary(db, "stdin") == (8, 7, 1, 0)
    assert trace_row(db, "stdin")["sha256"] == hashlib.sha256(GOOD_TEXT.encode()).hexdigest()


@pytest.mark.parametrize(
    ("compress", "label"),
    [
        (gzip.compress, "gzip"),
        (lzma.compress, "xz"),
    ],
)
def test_stdin_compressed_with_a_name(tmp_path, db, compress, label):
    result = CliRunner().invoke(
        cli, ["ingest", "--db", str(db), "--name", "piped", "-"], input=compress(GOOD_TEXT.encode())
    )
    assert result.exit_code == 0, result.output
    t = trace_row(db, "piped")
    assert (t["compression"], t["events"]) == (label, 7)
    assert t["sha256"] == hashlib.sha256(GOOD_TEXT.encode()).hexdigest()


def test_default_name_of_an_xz_file(tmp_path, db):
    path = tmp_path / "storm.kdump.xz"
    path.write_bytes(lzma.compress(GOOD_TEXT.encode()))
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(path)])
    assert result.exit_code == 0, result.output
    assert "ingested as storm:" in result.output


@pytest.mark.parametrize("compress", [lzma.compress, bz2.compress], ids=["xz", "bzip2"])
def test_compressed_input_file_is_closed(tmp_path, compress):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ingest_text(tmp_path, compress(GOOD_TEXT.encode()), filename="t.kdump.z")
        gc.collect()
    leaks = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) and str(tmp_path) in str(w.message)
    ]
    assert leaks == []


# ---------------------------------------------------------------------------- identity and safety


def test_same_file_twice_is_a_no_op(tmp_path, db):
    path = tmp_path / "a.kdump"
    path.write_text(GOOD_TEXT)
    first = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(path)])
    assert first.exit_code == 0, first.output
    before = table_counts(db)
    again = CliRunner().invoke(cli, ["ingest", "--db", str(db), "--name", "other", str(path)])
    assert again.exit_code == 0, again.output
    assert again.output.strip() == f"{path}: already ingested as a"
    assert table_counts(db) == before == {"traces": 1, "events": 7, "parse_errors": 0}


def test_same_name_other_content(tmp_path, db, capsys):
    a, b = tmp_path / "a.kdump", tmp_path / "b.kdump"
    a.write_text(GOOD_TEXT)
    b.write_text(GOOD_TEXT.replace("open 3", "open 4"))
    assert run_main(["ingest", "--db", db, "--name", "t", a], capsys)[0] == 0
    before = table_counts(db)

    code, _, err = run_main(["ingest", "--db", db, "--name", "t", b], capsys)
    assert code == 2
    assert_one_line_error(err, str(b), "'t'", "--replace")
    assert table_counts(db) == before

    code, out, _ = run_main(["ingest", "--db", db, "--name", "t", "--replace", b], capsys)
    assert code == 0
    assert "replaced as t" in out
    assert table_counts(db) == before
    assert trace_row(db, "t")["sha256"] == hashlib.sha256(b.read_bytes()).hexdigest()
    assert [e["retval"] for e in events(db, "t") if e["kind"] == "RET"][0] == 4


def test_strict_fails_naming_file_and_line(tmp_path, db, capsys):
    path = tmp_path / "bad.kdump"
    path.write_text(GOOD_TEXT.replace(GOOD[3], "oops, a pasted shell prompt $"))
    code, _, err = run_main(["ingest", "--db", db, "--strict", path], capsys)
    assert code == 2
    assert_one_line_error(err, f"{path}:4:", "oops")
    # Without --strict the same file goes in, with its parse error.
    code, _, _ = run_main(["ingest", "--db", db, path], capsys)
    assert code == 0
    assert summary(db, "bad") == (8, 6, 1, 1)


def test_failed_ingest_leaves_the_store_unchanged(tmp_path, db, capsys):
    good = copy_sample(tmp_path, "01")
    bad = copy_sample(tmp_path, "10")  # has decorations: parse errors
    assert run_main(["ingest", "--db", db, good], capsys)[0] == 0
    before = table_counts(db)
    assert before["events"] > 0

    code, _, err = run_main(["ingest", "--db", db, "--strict", bad], capsys)
    assert code == 2 and f"{bad}:9:" in err
    assert table_counts(db) == before
    assert query(db, "SELECT name FROM traces") == [{"name": good.name.split(".")[0]}]

    # A failed --replace keeps the trace it was to replace.
    shutil.copyfile(bad, tmp_path / "uul-freebsd12.kdump")
    replacement = tmp_path / "uul-freebsd12.kdump"
    code, _, _ = run_main(["ingest", "--db", db, "--strict", "--replace", replacement], capsys)
    assert code == 2
    assert table_counts(db) == before


def test_a_failed_file_does_not_undo_the_ones_before_it(tmp_path, db, capsys):
    a, empty = tmp_path / "a.kdump", tmp_path / "empty.kdump"
    a.write_text(GOOD_TEXT)
    empty.write_text("")
    code, out, err = run_main(["ingest", "--db", db, a, empty], capsys)
    assert code == 2
    assert "ingested as a" in out and str(empty) in err
    assert summary(db, "a") == (8, 7, 1, 0)


def test_kreplay_db_environment_variable(tmp_path, monkeypatch, capsys):
    store = tmp_path / "from-env.duckdb"
    monkeypatch.setenv("KREPLAY_DB", str(store))
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "a.kdump"
    path.write_text(GOOD_TEXT)
    assert run_main(["ingest", path], capsys)[0] == 0
    assert store.exists() and not (tmp_path / "kreplay.duckdb").exists()
    code, out, _ = run_main(["traces"], capsys)
    assert code == 0 and "a " in out
    # --db wins over the environment.
    other = tmp_path / "other.duckdb"
    assert run_main(["ingest", "--db", other, path], capsys)[0] == 0
    assert table_counts(other)["traces"] == 1 == table_counts(store)["traces"]


# ---------------------------------------------------------------------------- large input


def test_large_file_keeps_line_numbers_and_continuations(tmp_path, db):
    """A file of several tens of MiB is parsed in pieces (in parallel): line numbers, seq
    and continuation ownership must not depend on where the pieces are cut. A GIO whose hex
    dump ends with a short row (so kdump prints an empty line after it) is placed so that
    the empty line starts exactly at each multiple of 8 MiB, where a reader working in
    blocks would decide where pieces start."""
    block = 8 << 20
    filler = (header(1234, "proc", "CALL") + "getpid\n").encode()
    gio = [
        (header(1234, "proc", "GIO ") + "fd 1 wrote 3 bytes\n").encode(),
        b"       0x0000 6162 63                                  |abc|\n",
        b"\n",
    ]
    parts, size, n_lines, gio_lines, x_lines = [], 0, 0, [], []
    for boundary in range(block, 5 * block + 1, block):
        head = len(gio[0]) + len(gio[1])
        count, rest = divmod(boundary - head - size, len(filler))
        parts.append(filler * count)
        n_lines += count
        if rest:  # a line of x to land exactly on the boundary: one parse error
            parts.append(b"x" * (rest - 1) + b"\n")
            n_lines += 1
            x_lines.append(n_lines)
        size += count * len(filler) + rest
        assert size + head == boundary
        gio_lines.append(n_lines + 1)
        parts += gio
        n_lines += len(gio)
        size += sum(map(len, gio))
    parts.append(filler * 1000)
    n_lines += 1000
    data = b"".join(parts)
    assert len(data) > 40 << 20

    info = ingest_text(tmp_path, data)
    n_gio = len(gio_lines)
    assert info.lines == n_lines
    assert info.parse_errors == len(x_lines)
    assert info.continuations == 2 * n_gio
    assert info.events == n_lines - 2 * n_gio - len(x_lines)

    errors = query(db, "SELECT line, text FROM parse_errors ORDER BY line")
    assert [r["line"] for r in errors] == x_lines
    assert all(set(r["text"]) == {"x"} for r in errors)
    rows = query(db, "SELECT line, seq, kind, cont_lines, cont FROM events ORDER BY seq")
    assert [r["seq"] for r in rows] == list(range(len(rows)))
    assert [r["line"] for r in rows] == sorted(r["line"] for r in rows)
    assert rows[-1]["line"] == n_lines
    gios = [r for r in rows if r["kind"] == "GIO"]
    assert [r["line"] for r in gios] == gio_lines
    dump = gio[1].decode() + gio[2].decode().rstrip("\n")
    assert [(r["cont_lines"], r["cont"]) for r in gios] == [(2, dump)] * n_gio


def test_large_file_line_numbers(tmp_path, db):
    """Every line's number is right in a file of ~43 MiB: each record names its own line
    in its command field, and every tenth line continues the GIO record before it."""
    rows = []
    for n in range(1, 280_001):
        if n % 10 == 0:
            rows.append(f"\t{n}")
        elif n % 10 == 9:
            rows.append(header(n % 99999 + 1, f"L{n}", "GIO ") + "fd 1 wrote 3 bytes")
        else:
            rows.append(header(n % 99999 + 1, f"L{n}", "CALL") + "x(" + "0x1234567," * 16 + ")")
    data = ("\n".join(rows) + "\n").encode()
    assert len(data) > 40 << 20
    info = ingest_text(tmp_path, data)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (
        280_000,
        252_000,
        28_000,
        0,
    )
    (bad,) = query(
        db,
        """
        SELECT count(*) FILTER (WHERE comm <> 'L' || line) AS wrong_line,
               count(*) FILTER (WHERE seq <> line - 1 - line // 10) AS wrong_seq,
               count(*) FILTER (WHERE kind = 'GIO' AND cont IS DISTINCT FROM
                                chr(9) || (line + 1)) AS wrong_cont
        FROM events""",
    )
    assert bad == {"wrong_line": 0, "wrong_seq": 0, "wrong_cont": 0}
