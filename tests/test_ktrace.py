"""Binary ktrace.out ingest (spec/kdump-format.md §2).

The oracle is the kdump text parser: ktrace_writer builds a recording as the kernel writes
it and prints it as kdump does; both are ingested and must give the same events on every
column the text carries. The rest checks what only the binary has (record types kdump
does not print, byte offsets, the i386 layouts) and that a bad file is one clear error
with its byte offset and leaves the store as it was.
"""

import bz2
import gzip
import hashlib
import lzma
import random
import struct

import ktrace_writer as kw
import numpy as np
import pytest
from conftest import (
    assert_one_line_error,
    events,
    ingest_text,
    query,
    run_main,
    table_counts,
    trace_row,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kreplay import lifecycle as lc
from kreplay import ops as kops
from kreplay.errors import TraceFormatError
from kreplay.ingest.ktrace_chain import comm_ids, find_records
from kreplay.ingest.ktrace_layout import AMD64, I386, PAD
from kreplay.ingest.ktrace_rules import check_one
from kreplay.ingest.source import BinaryStream, Input
from kreplay.store import Store

# The columns a kdump text line carries (and the binary reader fills the same way).
SHARED = ("pid", "tid", "comm", "cpu", "ts", "kind", "syscall", "sysnum", "args", "retval",
          "errno", "ret_kind", "addr", "prot", "fault_result", "path", "signal", "sig_action",
          "sig_code", "csw", "csw_mode", "wmesg", "gio_fd", "gio_dir", "gio_bytes",
          "body")  # fmt: skip
NOT_PRINTED = ("PCTR", "PDTR")  # records kdump reads silently


def ingest_pair(tmp_path, records, abi="amd64", name="t"):
    """Ingest the records as ktrace.out and as their kdump text; both event lists."""
    binary = ingest_text(tmp_path, kw.write(records, abi), f"{name}-bin", filename="ktrace.out")
    text = ingest_text(tmp_path, kw.render(records), f"{name}-txt")
    db = tmp_path / "store.duckdb"
    return binary, text, events(db, f"{name}-bin"), events(db, f"{name}-txt")


def shared(rows, drop_kinds=()):
    return [{c: r[c] for c in SHARED} for r in rows if r["kind"] not in drop_kinds]


def assert_same_events(bin_rows, txt_rows):
    left, right = shared(bin_rows, NOT_PRINTED), shared(txt_rows)
    assert len(left) == len(right)
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        assert a == b, f"event {i}: " + str({k: (a[k], b[k]) for k in a if a[k] != b[k]})


# ---------------------------------------------------------------------------- the oracle


@pytest.mark.parametrize(
    ("seed", "abi", "v0_share", "chunk", "window"),
    [
        (1, "amd64", 0.0, None, None),
        (2, "amd64", 1.0, None, None),
        (3, "i386", 0.0, None, None),
        (4, "i386", 1.0, None, None),
        # chunks of 97 records: dropped-events markers, dictionaries and seq across them
        (5, "amd64", 0.0, 97, None),
        # windows of 4,096 bytes: records cut by a window's end, byte offsets across them
        (6, "amd64", 0.0, 97, 4096),
        (7, "i386", 1.0, None, 4096),
    ],
)
def test_binary_and_its_kdump_text_give_the_same_events(
    tmp_path, monkeypatch, seed, abi, v0_share, chunk, window
):
    from kreplay.ingest import ktrace

    if chunk is not None:
        monkeypatch.setattr(ktrace, "CHUNK_RECORDS", chunk)
    if window is not None:
        monkeypatch.setattr(ktrace, "WINDOW_BYTES", window)
    records = list(kw.random_records(random.Random(seed), 1500, abi, v0_share))
    binary, text, bin_rows, txt_rows = ingest_pair(tmp_path, records, abi)
    assert text.parse_errors == 0, "the renderer printed something kdump would not"
    assert_same_events(bin_rows, txt_rows)
    assert (binary.format, text.format) == ("ktrace", "kdump")
    assert binary.options == text.options == ("HT" if v0_share == 1.0 else "HTc")
    assert binary.header_version == text.header_version == (0 if v0_share == 1.0 else 1)
    assert binary.dropped == text.dropped > 0
    assert binary.events == len(bin_rows) == len({r["seq"] for r in bin_rows})
    assert (binary.first_ts, binary.last_ts) == (text.first_ts, text.last_ts)


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(1, 60),
    abi=st.sampled_from(kw.ABIS),
    v0=st.booleans(),
)
def test_any_recording_reads_the_same_both_ways(tmp_path_factory, seed, n, abi, v0):
    tmp_path = tmp_path_factory.mktemp("pair")
    records = list(kw.random_records(random.Random(seed), n, abi, 1.0 if v0 else 0.0))
    _, text, bin_rows, txt_rows = ingest_pair(tmp_path, records, abi)
    assert text.parse_errors == 0
    assert_same_events(bin_rows, txt_rows)


# ---------------------------------------------------------------------------- every type

HDR = {"pid": 700, "tid": 100700, "comm": b"cc", "sec": 1_700_000_123, "frac": 5, "cpu": 3}


def every_type(abi: str) -> list[kw.Record]:
    """One record (or more) of each type 1-18, both CSW and CAPFAIL layouts."""
    h = HDR
    return [
        kw.procctor(0x100, **h),
        kw.call(477, [0, 0x1000, 3, 0x1002, 0xFFFFFFFF, 0], abi, **h),
        kw.ret(477, 0x800531000 if abi == "amd64" else 0x2800000, 0, abi, **h),
        kw.call(2, [], abi, **h),
        kw.ret(5, 0, 2, abi, **h),
        kw.ret(454, 0, -1, abi, **h),
        kw.ret(59, 0, -2, abi, **h),
        kw.namei(b"/usr/lib/libc.so.7", **h),
        kw.gio(4, True, b"hello\n", **h),
        kw.gio(0, False, b"x", **h),
        kw.psig(11, 0, 1, 0, abi, **h),
        kw.psig(30, 0x401000, 0x10001, 0x5, abi, **h),
        kw.csw(True, False, b"select", **h),
        kw.csw(False, True, None, **h),
        kw.user(b"\x01\x02\xff", **h),
        kw.malloc_utrace(0, 26, 0x800607420 if abi == "amd64" else 0x28607420, abi, **h),
        kw.struct_record(b"stat", bytes(range(8)), **h),
        kw.sysctl(b"kern.ostype", **h),
        kw.capfail_syscall(abi, **h),
        kw.capfail_new_syscall(455, abi, **h),
        kw.fault(0x7FFFDEAD1234 if abi == "amd64" else 0x2DEAD123, 3, abi, **h),
        kw.faultend(0, **h),
        kw.faultend(42, **h),
        kw.struct_array(b"kevent", 32, bytes(64), abi, **h),
        kw.strings_record(kw.ARGS, [b"ls", b"-l", b"/tmp"], **h),
        kw.strings_record(kw.ENVS, [b"HOME=/root"], **h),
        kw.exterr(22, 3, 1234, 0x10, 0, b"bad flags", **h),
        kw.procdtor(**h),
    ]


@pytest.mark.parametrize("abi", kw.ABIS)
def test_every_record_type(tmp_path, abi):
    records = every_type(abi)
    trace = ingest_text(tmp_path, kw.write(records, abi), "all", filename="ktrace.out")
    rows = events(tmp_path / "store.duckdb", "all")
    assert [r["kind"] for r in rows] == [
        "PCTR", "CALL", "RET", "CALL", "RET", "RET", "RET", "NAMI", "GIO", "GIO", "PSIG",
        "PSIG", "CSW", "CSW", "USER", "USER", "STRU", "SCTL", "CAP", "CAP", "PFLT", "PRET",
        "PRET", "STRU", "ARGS", "ENVS", "EERR", "PDTR",
    ]  # fmt: skip
    assert trace.events == len(records) and trace.parse_errors == 0
    by = dict(enumerate(rows))
    assert by[1]["syscall"] == "mmap" and by[1]["sysnum"] == 477
    assert by[1]["args"] == "0,0x1000,0x3,0x1002,0xffffffff,0"
    assert by[2]["retval"] == (0x800531000 if abi == "amd64" else 0x2800000)
    assert (by[3]["syscall"], by[3]["args"]) == ("fork", None)
    assert (by[4]["ret_kind"], by[4]["retval"], by[4]["errno"]) == ("error", -1, 2)
    assert (by[5]["ret_kind"], by[5]["retval"]) == ("restart", None)
    assert by[6]["ret_kind"] == "justreturn"
    assert by[7]["path"] == "/usr/lib/libc.so.7"
    assert (by[8]["gio_fd"], by[8]["gio_dir"], by[8]["gio_bytes"]) == (4, "wrote", 6)
    assert (by[9]["gio_dir"], by[9]["gio_bytes"]) == ("read", 1)
    assert (by[10]["signal"], by[10]["sig_action"], by[10]["sig_code"]) == (
        "SIGSEGV", "SIG_DFL", "SEGV_MAPERR",
    )  # fmt: skip
    assert by[11]["body"] == "SIGUSR1 caught handler=0x401000 mask=0x5 code=SI_USER"
    assert (by[12]["csw"], by[12]["csw_mode"], by[12]["wmesg"]) == ("stop", "kernel", "select")
    assert (by[13]["csw"], by[13]["csw_mode"], by[13]["wmesg"]) == ("resume", "user", None)
    assert by[14]["body"] == "3  01 02 ff"
    assert by[15]["body"] == ("0x800607420" if abi == "amd64" else "0x28607420") + " = malloc(26)"
    assert by[16]["body"] == "struct stat 0001020304050607"
    assert by[17]["path"] == "kern.ostype"
    assert by[18]["body"] == "disallowed system call"
    assert by[19]["body"] == "system call not allowed: thr_new"
    assert (by[20]["addr"], by[20]["prot"]) == (
        0x7FFFDEAD1234 if abi == "amd64" else 0x2DEAD123, 3,
    )  # fmt: skip
    assert (by[21]["fault_result"], by[22]["fault_result"]) == ("KERN_SUCCESS", "<invalid=42>")
    assert by[23]["body"] == "struct kevent[] size=32 " + "00" * 64
    assert (by[24]["body"], by[25]["body"]) == ('"ls", "-l", "/tmp"', '"HOME=/root"')
    assert by[26]["body"] == "{ errno 22 category 3 (src line 1234) p1 0x10 p2 0 bad flags }"
    assert by[0]["body"] == "sv_flags=0x100" and by[27]["body"] is None
    for row in rows:
        assert (row["pid"], row["tid"], row["comm"], row["cpu"]) == (700, 100700, "cc", 3)
        assert row["ts"] == 1_700_000_123 * 10**9 + 5


def test_header_fields_per_record(tmp_path):
    """v0 and v1 headers in one file, a dropped-events marker, ordinals and offsets."""
    records = [
        kw.call(20, [], version=0, frac=250, tid=-5, **{k: HDR[k] for k in ("pid", "comm")}),
        kw.ret(20, 700, dropped=True, **HDR),
        kw.namei(b"/a", comm=b"a-long-thread-name-x", **{k: HDR[k] for k in ("pid", "tid")}),
    ]
    data = kw.write(records)
    trace = ingest_text(tmp_path, data, "h", filename="ktrace.out")
    rows = events(tmp_path / "store.duckdb", "h")
    assert [r["kind"] for r in rows] == ["CALL", "DROP", "RET", "NAMI"]
    assert [r["seq"] for r in rows] == [0, 1, 2, 3]
    assert [r["line"] for r in rows] == [1, 2, 2, 3]
    sizes = [len(r.to_bytes()) for r in records]
    assert [r["byte_offset"] for r in rows] == [0, sizes[0], sizes[0], sizes[0] + sizes[1]]
    v0, drop, v1, name = rows
    assert (v0["ts"], v0["cpu"], v0["tid"]) == (1_700_000_000 * 10**9 + 250_000, None, 0)
    assert (drop["ts"], drop["cpu"], drop["pid"], drop["tid"]) == (None, None, 700, 100700)
    assert (v1["ts"], v1["cpu"]) == (1_700_000_123 * 10**9 + 5, 3)
    assert name["comm"] == "a-long-thread-name-"  # MAXCOMLEN = 19
    assert (trace.header_version, trace.dropped, trace.lines, trace.events) == (1, 1, 4, 4)
    assert trace_row(tmp_path / "store.duckdb", "h")["options_source"] == "ktrace"


def test_comm_bytes_that_are_not_utf8(tmp_path):
    records = [kw.namei(b"/caf\xe9", comm=b"caf\xc3", **{k: HDR[k] for k in ("pid", "tid")})]
    ingest_text(tmp_path, kw.write(records), "u", filename="ktrace.out")
    (row,) = events(tmp_path / "store.duckdb", "u")
    assert (row["comm"], row["path"]) == ("caf\\xc3", "/caf\\xe9")


def test_a_lifecycle_reads_a_binary_trace(tmp_path, capsys):
    """The lifecycle derivation takes tids from a binary trace ("H" in its options)."""
    h = {"comm": b"sh", "sec": 1_700_000_000, "cpu": 1}
    records = [
        kw.call(2, [], pid=10, tid=100010, **h),
        kw.ret(2, 0, pid=11, tid=100011, **h),
        kw.ret(2, 11, pid=10, tid=100010, **h),
        kw.call(1, [0], pid=11, tid=100011, **h),
    ]
    ingest_text(tmp_path, kw.write(records), "life", filename="ktrace.out")
    code, out, _ = run_main(["show", "life", "--db", tmp_path / "store.duckdb"], capsys)
    assert code == 0 and "ktrace" in out
    assert "no -H tid column" not in out
    with Store(str(tmp_path / "store.duckdb"), read_only=True) as store:
        info = store.trace("life")
        d = lc.derive_trace(store, info.trace_id, info.options)
    ops = [
        (kops.OP_NAMES[k], p, t) for k, p, t in zip(d.ops.kind, d.ops.pid, d.ops.tid, strict=True)
    ]
    assert ops == [("PROC_NEW", 11, 100011), ("PROC_EXIT", 11, 100011)]


# ---------------------------------------------------------------------------- formats


def test_format_is_told_by_content(tmp_path, capsys):
    records = list(kw.random_records(random.Random(5), 50))
    (tmp_path / "trace.kdump").write_bytes(kw.write(records))  # a misleading name
    (tmp_path / "ktrace.out").write_text(kw.render(records))
    db = tmp_path / "s.duckdb"
    code, out, err = run_main(["ingest", "--db", db, tmp_path / "trace.kdump"], capsys)
    assert (code, err) == (0, "") and "binary ktrace.out" in out
    code, out, _ = run_main(["ingest", "--db", db, tmp_path / "ktrace.out"], capsys)
    assert code == 0 and "lines" in out
    assert query(db, "SELECT name, format FROM traces ORDER BY name") == [
        {"name": "ktrace", "format": "kdump"},
        {"name": "trace", "format": "ktrace"},
    ]


def test_format_ktrace_is_forced_and_refuses_text(tmp_path, capsys):
    path = tmp_path / "t.kdump"
    path.write_text(kw.render(list(kw.random_records(random.Random(6), 20))))
    db = tmp_path / "s.duckdb"
    code, out, err = run_main(["ingest", "--db", db, "--format", "ktrace", path], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, str(path), "not a binary ktrace.out", "byte offset 0")


def test_compressed_binary_and_idempotence(tmp_path, capsys):
    data = kw.write(list(kw.random_records(random.Random(7), 200)))
    (tmp_path / "a.ktrace.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.ktrace").write_bytes(data)
    db = tmp_path / "s.duckdb"
    assert run_main(["ingest", "--db", db, tmp_path / "a.ktrace.gz"], capsys)[0] == 0
    code, out, _ = run_main(["ingest", "--db", db, tmp_path / "b.ktrace"], capsys)
    assert code == 0 and "already ingested as a" in out
    row = trace_row(db, "a")
    assert (row["compression"], row["bytes"]) == ("gzip", len(data))


@pytest.mark.parametrize("fmt", ["ktrace", "kdump"])
def test_a_stored_plain_file_is_found_before_it_is_written_again(tmp_path, monkeypatch, fmt):
    """Both readers learn a file's sha256 at its end; a plain file as big as a stored
    trace is hashed first, and found stored without a write and a rollback. A file of
    that size with other bytes is ingested."""
    from kreplay.ingest import ingest

    def written(records) -> bytes:
        return kw.write(records) if fmt == "ktrace" else kw.render(records).encode()

    records = list(kw.random_records(random.Random(17), 200))
    first, other = tmp_path / "a.trace", tmp_path / "b.trace"
    first.write_bytes(data := written(records))
    other.write_bytes(swapped := written(records[100:] + records[:100]))  # other bytes
    assert len(swapped) == len(data) and swapped != data
    with Store(str(tmp_path / "s.duckdb")) as store:
        assert ingest(store, str(first)).trace.format == fmt
        with monkeypatch.context() as m:
            m.setattr(Store, "add_trace", lambda *a, **k: pytest.fail("written again"))
            result = ingest(store, str(first), name="again")
        assert (result.status, result.name) == ("already", "a")
        assert ingest(store, str(other)).status == "ingested"


def test_replace_and_strict(tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    path = tmp_path / "x.ktrace"
    path.write_bytes(kw.write(list(kw.random_records(random.Random(8), 30))))
    assert run_main(["ingest", "--db", db, "--strict", path], capsys)[0] == 0
    path.write_bytes(kw.write(list(kw.random_records(random.Random(9), 40))))
    code, _, err = run_main(["ingest", "--db", db, path], capsys)
    assert code == 2 and "--replace" in err
    code, out, _ = run_main(["ingest", "--db", db, "--replace", path], capsys)
    assert code == 0 and "replaced as x" in out
    assert query(db, "SELECT count(*) AS n FROM events WHERE kind NOT IN ('DROP')")[0]["n"] == 40


def test_a_ktrace_event_has_its_byte_offset(tmp_path):
    db = tmp_path / "s.duckdb"
    ingest_text(tmp_path, kw.write([kw.call(20, [], **HDR)]), "o", db=db, filename="ktrace.out")
    assert events(db, "o")[0]["byte_offset"] == 0


# ---------------------------------------------------------------------------- bad files


def good_file() -> bytes:
    return kw.write([kw.call(20, [], **HDR), kw.ret(20, 700, **HDR), kw.namei(b"/x", **HDR)])


CALL_SIZE = 64 + 8
RET_SIZE = 64 + 16


def patch(data: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


BAD_FILES = {
    "truncated record": (good_file()[:-1], CALL_SIZE + RET_SIZE, "truncated record: ktr_len 2"),
    "truncated header": (good_file()[: CALL_SIZE + 30], CALL_SIZE, "truncated record header"),
    "negative ktr_len": (patch(good_file(), CALL_SIZE, "<i", -8), CALL_SIZE, "ktr_len -8"),
    "huge ktr_len": (patch(good_file(), 0, "<i", 1 << 24), 0, "impossible ktr_len 16777216"),
    "ktr_len too long for the file": (
        patch(good_file(), CALL_SIZE, "<i", 5000),
        CALL_SIZE,
        "truncated record: ktr_len 5000",
    ),
    "ktr_len that does not fit the type": (
        good_file()[:CALL_SIZE] + patch(good_file()[CALL_SIZE:], 0, "<i", 24)[: RET_SIZE + 8],
        CALL_SIZE,
        "RET record (type 2) with ktr_len 24, expected 16",
    ),
    "unknown type": (patch(good_file(), CALL_SIZE + 4, "<H", 0x4000 | 19), CALL_SIZE, "type 19"),
    "header version 2": (patch(good_file(), CALL_SIZE + 6, "<H", 2), CALL_SIZE, "version 2"),
    "narg that does not fit": (patch(good_file(), 64 + 2, "<h", 3), 0, "arguments"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_one_error_with_its_byte_offset(tmp_path, capsys, case):
    data, offset, reason = BAD_FILES[case]
    db = tmp_path / "s.duckdb"
    good = tmp_path / "good.ktrace"
    good.write_bytes(kw.write(list(kw.random_records(random.Random(10), 30))))
    assert run_main(["ingest", "--db", db, good], capsys)[0] == 0
    before = table_counts(db)
    path = tmp_path / "bad.ktrace"
    path.write_bytes(data)
    code, out, err = run_main(["ingest", "--db", db, "--format", "ktrace", path], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, str(path), f"byte offset {offset} ", reason)
    assert table_counts(db) == before


def test_the_error_names_the_first_bad_record_in_a_long_file(tmp_path):
    """Past the first segments of the chain walk: the record number and offset are exact."""
    records = list(kw.random_records(random.Random(11), 3000))
    data = kw.write(records)
    offsets = [0]
    for r in records:
        offsets.append(offsets[-1] + len(r.to_bytes()))
    bad = 2345
    data = patch(data, offsets[bad], "<i", -1)
    path = tmp_path / "bad.ktrace"
    path.write_bytes(data)
    with Store(str(tmp_path / "s.duckdb")) as store, pytest.raises(TraceFormatError) as e:
        from kreplay.ingest import ingest

        ingest(store, str(path))
    assert f"byte offset {offsets[bad]} (record {bad + 1}," in str(e.value)
    assert "impossible ktr_len -1" in str(e.value)


@SETTINGS
@given(
    seed=st.integers(0, 2**32),
    abi=st.sampled_from(kw.ABIS),
    patches=st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, 71), st.integers(0, 255)),
        min_size=1,
        max_size=3,
    ),
)
def test_the_compiled_walk_keeps_the_rules_in_words(seed, abi, patches):
    """The walk (compiled) stops at the first record that check_one (in words) refuses:
    header bytes of a good file overwritten, both walks compared."""
    records = list(kw.random_records(random.Random(seed), 40, abi, 0.3))
    starts = [0]
    for r in records:
        starts.append(starts[-1] + len(r.to_bytes()))
    data = bytearray(kw.write(records, abi))
    for record, byte, value in patches:
        data[min(starts[record] + byte, len(data) - 1)] = value
    buf, nbytes = np.frombuffer(bytes(data) + bytes(PAD), np.uint8), len(data)
    layout = {"amd64": AMD64, "i386": I386}[abi]
    off = 0
    while off < nbytes and (size := check_one(buf, off, nbytes, layout)[0]):
        off += size
    assert find_records(buf, nbytes, layout)[2] == off


@pytest.mark.parametrize("seed", range(6))
def test_garbage_forced_as_ktrace(tmp_path, capsys, seed):
    rnd = random.Random(seed)
    path = tmp_path / "garbage"
    path.write_bytes(bytes(rnd.randrange(256) for _ in range(3000)))
    code, out, err = run_main(
        ["ingest", "--db", tmp_path / "s.duckdb", "--format", "ktrace", path], capsys
    )
    assert code == 2 and out == ""
    assert_one_line_error(err, str(path), "byte offset 0")
    assert table_counts(tmp_path / "s.duckdb")["traces"] == 0


def test_a_good_file_followed_by_garbage(tmp_path, capsys):
    """Garbage after valid records: the error is at the first garbage byte."""
    data = good_file()
    path = tmp_path / "tail.ktrace"
    path.write_bytes(data + b"\x07" * 100)
    code, _, err = run_main(["ingest", "--db", tmp_path / "s.duckdb", path], capsys)
    assert code == 2
    assert_one_line_error(err, f"byte offset {len(data)} (record 4,")


@pytest.mark.parametrize("window", [512, 4096, 1 << 16])
@pytest.mark.parametrize("where", ["middle", "end"])
def test_a_bad_record_windows_later_rolls_back_what_came_before(
    tmp_path, capsys, monkeypatch, window, where
):
    """The reader writes a window's records before it reads the next: a bad record
    found windows later names its byte offset and record number in the file and leaves
    the store as it was; a record of the last bytes cut short is one too."""
    from kreplay.ingest import ktrace

    monkeypatch.setattr(ktrace, "WINDOW_BYTES", window)
    db = tmp_path / "s.duckdb"
    ingest_text(tmp_path, good_file(), "before", filename="before.ktrace", db=db)
    before = table_counts(db)
    records = list(kw.random_records(random.Random(21), 600))
    good = kw.write(records)
    if where == "middle":
        bad, at, record = good + b"\x07" * 100 + good, len(good), len(records) + 1
    else:
        last = len(records[-1].to_bytes())
        bad, at, record = good + good[:-5], 2 * len(good) - last, 2 * len(records)
    path = tmp_path / "bad.ktrace"
    path.write_bytes(bad)
    code, out, err = run_main(["ingest", "--db", db, path], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, str(path), f"byte offset {at} (record {record},")
    assert ("truncated record" in err) == (where == "end")
    assert table_counts(db) == before


def test_thread_names_survive_a_hash_collision(tmp_path, monkeypatch):
    """Names are looked up by a hash of their bytes and told apart by the bytes: with
    every name hashed alike, each record still gets its own."""
    from kreplay.ingest import ktrace

    records = list(kw.random_records(random.Random(12), 300))
    ingest_text(tmp_path, kw.write(records), "plain", filename="a.ktrace")
    monkeypatch.setattr(ktrace, "SPREAD", np.uint64(0))
    ingest_text(tmp_path, kw.write(records) + kw.write(records[:1]), "hashed", filename="b.ktrace")
    comms = [[r["comm"] for r in events(tmp_path / "store.duckdb", n)] for n in ("plain", "hashed")]
    assert comms[0] == comms[1][:-1] and len(set(comms[0])) == 8


@pytest.mark.parametrize("spread", [None, 0])
def test_many_thread_names_are_numbered_as_they_first_appear(spread):
    """1000 names, 3 records each, shuffled: the name table grows several times; with
    every name hashed alike (spread 0) too."""
    from kreplay.ingest import ktrace

    order = list(range(1000)) * 3
    random.Random(14).shuffle(order)
    records = [kw.namei(b"/x", comm=b"thread-%d" % i, pid=700, tid=100700) for i in order]
    data = np.frombuffer(kw.write(records) + bytes(PAD), np.uint8)
    offsets, _, _ = find_records(data, len(data) - PAD, AMD64)
    ids = np.empty(len(offsets), np.int32)
    firsts = comm_ids(data, offsets, ktrace.SPREAD if spread is None else np.uint64(spread), ids)
    first_seen = list(dict.fromkeys(order))
    assert ids.tolist() == [first_seen.index(i) for i in order]
    assert [order[offsets.tolist().index(f)] for f in firsts] == first_seen


@pytest.mark.parametrize("compress", [None, gzip.compress, lzma.compress, bz2.compress])
def test_windows_give_every_byte_once(tmp_path, compress):
    """source.BinaryStream: whatever a reader leaves of each window starts the next; the
    bytes the reader used, in order, are the file, hashed and counted as a whole."""
    rnd = random.Random(31)
    data = rnd.randbytes(100_000)
    path = tmp_path / "in"
    path.write_bytes(compress(data) if compress else data)
    with Input(str(path)) as source:
        stream = BinaryStream(source, window=4096, keep=700, pad=PAD)
        got, used = [], 0
        while stream.next(used):
            assert bytes(stream.buf[stream.nbytes : stream.nbytes + PAD]) == bytes(PAD)
            window = bytes(stream.buf[: stream.nbytes])
            assert data[stream.base : stream.base + stream.nbytes] == window
            used = stream.nbytes if stream.last else stream.nbytes - rnd.randrange(700)
            got.append(window[:used])
    assert b"".join(got) == data
    assert (stream.sha256, stream.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_batches_made_ahead_come_in_order_and_stop_with_their_caller():
    """ahead.made_ahead: the batches in order, at most two alive (the one taken and the
    next), the reader's error raised in the caller, and, when the caller stops early,
    the helper thread gone and the reader closed."""
    import threading

    from kreplay.ingest.ahead import made_ahead

    made, closed = [], []

    def batches(error=None):
        try:
            for i in range(5):
                made.append(i)
                yield i
            if error:
                raise error
        finally:
            closed.append(True)

    def helpers() -> int:
        return sum(t.name == "kreplay-ahead" for t in threading.enumerate())

    ahead = made_ahead(batches())
    assert next(ahead) == 0
    for _ in range(100):  # the helper makes the next one, then waits
        if made == [0, 1]:
            break
        threading.Event().wait(0.01)
    assert made == [0, 1]
    ahead.close()
    assert helpers() == 0 and closed == [True]
    assert list(made_ahead(batches())) == list(range(5))
    with pytest.raises(TraceFormatError, match="bad"):
        list(made_ahead(batches(TraceFormatError("bad", path="t"))))
    assert helpers() == 0 and closed == [True] * 3


def test_binary_from_stdin(tmp_path):
    """A pipe gives its bytes in small pieces; the format is still told from the head."""
    from click.testing import CliRunner

    from kreplay.cli import cli

    data = kw.write(list(kw.random_records(random.Random(13), 100)))
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), "-"], input=data)
    assert result.exit_code == 0, result.output
    row = trace_row(db, "stdin")
    assert (row["format"], row["bytes"]) == ("ktrace", len(data))


@SETTINGS
@given(st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\0", b"")), max_size=20))
def test_strings_decode_the_same_joined_as_alone(strings):
    """The reader decodes all paths at once, NUL-separated: as each would decode alone,
    invalid UTF-8 included."""
    from kreplay.ingest import ktrace

    joined = np.frombuffer(b"".join(s + b"\0" for s in strings), np.uint8)
    alone = [s.decode("utf-8", "backslashreplace") for s in strings]
    assert list(ktrace._decoded(joined)) == alone


def test_a_long_path_among_short_ones_reads_whole_and_in_place(tmp_path):
    """Paths longer than a batch row are read one by one, in their place."""
    paths = [b"/a", b"/usr/obj" + b"/sub" * 240 + b"/x.o", b"/b\0junk", b""]
    records = [kw.namei(p, **{k: HDR[k] for k in ("pid", "tid")}) for p in paths]
    ingest_text(tmp_path, kw.write(records), "long", filename="ktrace.out")
    rows = events(tmp_path / "store.duckdb", "long")
    assert [r["path"] for r in rows] == [p.split(b"\0")[0].decode() for p in paths]


def test_syscall_names_of_freebsd_15():
    """Spot checks of the table's newest part against syscalls.master: OBSOL numbers
    (548, 549) and numbers past the table print as kdump prints an unknown one."""
    from kreplay.ingest.sysdecode import syscall_name

    named = {545: "ppoll", 551: "fstat", 577: "__specialfd", 587: "timerfd_settime"}
    named |= {592: "exterrctl", 593: "inotify_add_watch_at", 594: "inotify_rm_watch"}
    assert {n: syscall_name(n) for n in named} == named
    assert [syscall_name(n) for n in (548, 549, 595)] == ["[548]", "[549]", "[595]"]
