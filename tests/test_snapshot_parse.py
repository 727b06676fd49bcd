"""The parsers of captured counters (kreplay/snapshot): every real published capture in
tests/samples/sysctl/, every vmstat -z header FreeBSD 12-15 prints, and the refusals: a
line that does not parse, or a last line cut short, is an error naming file and line."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, run_main

from kreplay.errors import KreplayError, SnapshotFormatError, TruncatedCapture
from kreplay.snapshot import detect, parse_capture, read_capture
from kreplay.snapshot.libxo import VmstatZJson
from kreplay.snapshot.sysctl import Sysctl
from kreplay.snapshot.vmstat_z import COLUMNS_7, COLUMNS_8, VmstatZ

SAMPLES = REPO / "tests" / "samples" / "sysctl"
SAMPLE_FILES = sorted(SAMPLES.iterdir())

# What each file of the copy holds: (format, entries or zones), or the line it is refused at.
EXPECTED = {
    "03-arm64-after-buildworld-vm-pmap-l3c-l2-counters.txt": ("sysctl", 6),
    "09-drm-kmod-68-fbsd13-14-coretxt-vmstat-z-head-xdomain.txt": ("vmstat-z", 16),
    "13-openzfs-10225-fbsd12-busy-zfs-host-vmstat-z-7col-overflow.txt": ("vmstat-z", 18),
    "15-dotnet-64935-fbsd13-sysctl-vm-stats-page-counts.txt": ("sysctl", 12),
    "SOURCES.md": ("refused", 1),  # prose: not a command's output
}
CAPTURES = [p for p in SAMPLE_FILES if EXPECTED[p.name][0] != "refused"]


def sample(prefix: str) -> Path:
    return next(p for p in SAMPLE_FILES if p.name.startswith(prefix))


def parse(text: str | bytes, fmt: str = "auto"):
    data = text.encode() if isinstance(text, str) else text
    return parse_capture(data, "cap.txt", fmt)


def error_of(text: str | bytes, fmt: str = "auto") -> KreplayError:
    with pytest.raises(KreplayError) as excinfo:
        parse(text, fmt)
    return excinfo.value


# ---------------------------------------------------------------------------- the samples


def test_the_table_names_every_file_of_the_copy():
    assert sorted(EXPECTED) == [p.name for p in SAMPLE_FILES]


def test_the_copies_are_the_published_bytes():
    """tests/samples/README.md records each file's sha256 as copied."""
    recorded = dict(
        re.findall(
            r"\| `([^`]+)` \| `([0-9a-f]{64})` \|", (SAMPLES.parent / "README.md").read_text()
        )
    )
    assert recorded == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in SAMPLE_FILES}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name[:2])
def test_every_sample_parses_or_is_refused_at_a_named_line(path):
    fmt, count = EXPECTED[path.name]
    if fmt == "refused":
        with pytest.raises(SnapshotFormatError) as excinfo:
            read_capture(str(path))
        assert (excinfo.value.path, excinfo.value.line) == (str(path), count)
        return
    capture = read_capture(str(path))
    assert detect(path.read_bytes()) == fmt
    held = capture.zones if isinstance(capture, VmstatZ) else capture.entries
    assert len(held) == count
    assert [x.line for x in held] == list(
        range(
            len(path.read_text().splitlines()) - count + 1, len(path.read_text().splitlines()) + 1
        )
    )


def test_the_13_14_table_with_the_glued_header_and_an_overflowing_fail():
    z = read_capture(str(sample("09")))
    assert z.header.startswith("ITEM") and "FAILSLEEP" in z.header
    assert z.columns == COLUMNS_8
    assert [x.name for x in z.zones[:4]] == ["UMA Kegs", "UMA Zones", "UMA Slabs 0", "UMA Slabs 1"]
    assert z.zone("128 Bucket").values == (1024, 0, 138, 89, 2105, 10295, 0, 0)
    assert z.zone("vmem").line == 17


def test_the_12_table_without_a_header_and_an_overflowing_req():
    z = read_capture(str(sample("13")))
    assert z.header is None and z.columns == COLUMNS_7
    assert z.zone("g_bio").values == (376, 0, 130, 850, 1918206632, 0, 0)
    assert z.zone("NAMEI").values[4] == 96990051  # fills its 8 columns: no space before it
    assert z.zone("S VFS Cache").values[4] == 12371447
    assert z.zones[0].line == 1


def test_sysctl_samples_keep_name_order_and_values():
    stats = read_capture(str(sample("15")))
    assert stats.entries[0].name == "vm.stats.vm.v_pdpages"  # sysctl's order, not declaration's
    assert stats.get("vm.stats.vm.v_wire_count").integer() == 959532
    assert stats.get("vm.stats.vm.v_free_count") is None  # not captured: absent, not 0
    pmap = read_capture(str(sample("03")))
    assert pmap.get("vm.pmap.l3c.demotions").integer() == 45859


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name[:2])
def test_a_sample_cut_anywhere_is_reported_as_cut_at_its_last_line(path):
    """Every prefix of a published capture: whole lines parse, a prefix that stops inside
    a line is TruncatedCapture naming that line, never a parse that drops it."""
    data = path.read_bytes()
    fmt = EXPECTED[path.name][0]
    for cut in range(1, len(data)):
        prefix = data[:cut]
        if prefix.endswith(b"\n"):
            parse_capture(prefix, str(path), fmt)
            continue
        with pytest.raises(TruncatedCapture) as excinfo:
            parse_capture(prefix, str(path), fmt)
        assert excinfo.value.line == prefix.count(b"\n") + 1, cut


def test_the_partial_line_the_corpus_dropped_is_reported_if_present():
    data = sample("09").read_bytes() + b"vmem btag:"
    with pytest.raises(TruncatedCapture, match=r"cut short .*'vmem btag:'") as excinfo:
        parse_capture(data, "09.txt")
    assert str(excinfo.value).startswith("09.txt:18: the last line is cut short")


def test_a_cut_row_given_a_newline_is_a_bad_row():
    data = sample("09").read_text() + "vmem btag:              56,      0,   10\n"
    e = error_of(data)
    assert (
        e.line == 18 and "not a vmstat -z row of 8 columns" in e.message and "3 fields" in e.message
    )


# ---------------------------------------------------------------------------- vmstat -z forms

# The headers of usr.bin/vmstat/vmstat.c domemstat_zone() (docs/recording.md, V0-V5), each
# as printf renders it, with the row the same version prints for one zone.
ROW_7 = "UMA Kegs:               384,      0,     174,       0,     174,   0,   0\n"
ROW_8 = ROW_7.replace("\n", ",   0\n")
HEADERS = {
    "V0/V1 (<= 12)": (
        "ITEM                   SIZE  LIMIT     USED     FREE      REQ FAIL SLEEP\n\n",
        ROW_7,
        COLUMNS_7,
    ),
    "V2 (13)": (
        "ITEM                   SIZE  LIMIT     USED     FREE      REQ     FAILSLEEP XDOMAIN\n\n",
        ROW_8,
        COLUMNS_8,
    ),
    "V3 (13/14)": (
        "ITEM                   SIZE  LIMIT     USED     FREE      REQ     FAILSLEEP XDOMAIN\n",
        ROW_8,
        COLUMNS_8,
    ),
    "V4 (14)": (
        "ITEM                   SIZE  LIMIT     USED     FREE      REQ     FAIL SLEEP XDOMAIN\n",
        ROW_8,
        COLUMNS_8,
    ),
    "V5 (15)": (
        "ITEM                   SIZE   LIMIT     USED     FREE      REQ FAIL SLEEP XDOM\n",
        ROW_8,
        (*COLUMNS_7, "xdom"),
    ),
}
V4 = HEADERS["V4 (14)"][0]


@pytest.mark.parametrize("variant", HEADERS)
def test_every_header_variant(variant):
    header, row, columns = HEADERS[variant]
    z = parse(header + row + row.replace("UMA Kegs", "UMA Zones"))
    assert z.columns == columns
    assert [(x.name, x.values[:5]) for x in z.zones] == [
        ("UMA Kegs", (384, 0, 174, 0, 174)),
        ("UMA Zones", (384, 0, 174, 0, 174)),
    ]
    assert z.zones[0].line == header.count("\n") + 1


TAIL = ",      0,       1,       0,       1,   0,   0,   0"


@pytest.mark.parametrize(
    "row, name, size",
    [
        ("zio_buf_comb_10485760: 10485760" + TAIL, "zio_buf_comb_10485760", 10485760),
        ("zio_buf_comb_10485760:10485760" + TAIL, "zio_buf_comb_10485760", 10485760),
        ("a:b:                   384" + TAIL, "a:b", 384),
        ("name, with comma:       16" + TAIL, "name, with comma", 16),
    ],
    ids=["long name, old", "long name, 15", "colon in the name", "comma in the name"],
)
def test_names_as_printed(row, name, size):
    z = parse(V4 + row + "\n")
    assert (z.zones[0].name, z.zones[0].values[0]) == (name, size)


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        (V4 + "UMA Kegs:  384,      0,     174\n", 2, "3 fields"),
        (V4 + ROW_8.replace("\n", ",   0\n"), 2, "not a vmstat -z row"),
        (V4 + ROW_8.replace("174,", "1x4,", 1), 2, "'1x4' is not a count"),
        (V4 + ROW_8.replace("    174,", "   -174,", 1), 2, "'-174' is not a count"),
        (V4 + ROW_8 + "\n" + ROW_8, 3, "not a vmstat -z row"),
        (V4 + ROW_8 + "$ vmstat -z | head\n", 3, "not a vmstat -z row"),
        (ROW_7 + ROW_8, 2, "7 columns"),
        ("UMA Kegs:  384,      0,     174,       0,     174\n", 1, "neither the 7 columns"),
        ("ITEM SIZE LIMIT SIZE\n", 1, "names each column once"),
        ("ITEM LIMIT SIZE\n", 1, "starts ITEM SIZE"),
    ],
    ids=["too few fields", "too many fields", "not a number", "negative", "blank line inside",
         "a prompt line", "7 then 8 columns", "no header, 5 fields", "header twice SIZE",
         "header order"],
)  # fmt: skip
def test_a_line_that_is_not_the_table_is_an_error_naming_it(text, line, fragment):
    e = error_of(text, "vmstat-z")
    assert isinstance(e, SnapshotFormatError)
    assert (e.path, e.line) == ("cap.txt", line)
    assert fragment in e.message, e.message


def test_an_empty_capture_is_refused():
    assert "empty" in error_of(b"", "vmstat-z").message
    assert "empty" in error_of(b"", "sysctl").message


# ---------------------------------------------------------------------------- sysctl

RESERV = (
    "vm.reserv.reclaimed: 0\n"
    "vm.reserv.partpopq: \n"
    "DOMAIN    LEVEL     SIZE  NUMBER\n"
    "\n"
    "     0,      -1,  54264K,     38\n"
    "     1,      -1, 1234567K,1000000\n"
    "\n"
    "vm.reserv.fullpop: 246\n"
    "vm.reserv.freed: 1234\n"
    "vm.reserv.broken: 0\n"
)


def test_the_partpopq_table_and_the_values_around_it():
    s = parse(RESERV)
    assert isinstance(s, Sysctl)
    assert [e.name for e in s.entries] == [
        "vm.reserv.reclaimed", "vm.reserv.partpopq", "vm.reserv.fullpop", "vm.reserv.freed",
        "vm.reserv.broken",
    ]  # fmt: skip
    table = s.get("vm.reserv.partpopq")
    assert table.value == (
        "\nDOMAIN    LEVEL     SIZE  NUMBER\n\n"
        "     0,      -1,  54264K,     38\n"
        "     1,      -1, 1234567K,1000000\n"
    )
    assert [(r.domain, r.level, r.size_kb, r.number, r.line) for r in s.partpopq] == [
        (0, -1, 54264, 38, 5),
        (1, -1, 1234567, 1000000, 6),
    ]
    assert s.get("vm.reserv.fullpop").line == 8


def test_a_multi_line_string_value():
    s = parse(
        "kern.osrelease: 11.1-RELEASE\n"
        "kern.version: FreeBSD 11.1-RELEASE #0 r321309: Fri Jul 21 02:08:28 UTC 2017\n"
        "    root@releng2.nyi.freebsd.org:/usr/obj/usr/src/sys/GENERIC\n"
        "\n"
        "hw.ncpu: 8\n"
    )
    version = s.get("kern.version")
    assert version.value == (
        "FreeBSD 11.1-RELEASE #0 r321309: Fri Jul 21 02:08:28 UTC 2017\n"
        "    root@releng2.nyi.freebsd.org:/usr/obj/usr/src/sys/GENERIC\n"
    )
    assert version.integer() is None and s.get("hw.ncpu").integer() == 8


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("$ sysctl -a | grep vm.stats.vm\nvm.stats.vm.v_pdpages: 1\n", 1, "not a sysctl"),
        ("vm.stats.vm.v_pdpages: 1\nsome prose here\n", 2, "value is a number"),
        ("vm.stats.vm.v_pdpages: 1\n\n", 2, "value is a number"),
        ("hw.ncpu: 8\nhw.ncpu: 8\n", 2, "printed again (first at line 1)"),
        ("ncpu: 8\n", 1, "not a sysctl"),
        ("vm.reserv.partpopq: \nDOMAIN LEVEL SIZE\n", 2, "starts with its header"),
        (RESERV.replace("54264K", "54264"), 5, "not a partpopq row"),
        ("vm.reserv.partpopq: \n", 1, "holds no table"),
    ],
    ids=["a prompt first", "prose after a number", "blank after a number", "twice",
         "no dot", "partpopq header", "partpopq row", "partpopq empty"],
)  # fmt: skip
def test_a_sysctl_line_that_does_not_parse_is_an_error_naming_it(text, line, fragment):
    e = error_of(text, "sysctl")
    assert (e.path, e.line) == ("cap.txt", line)
    assert fragment in e.message, e.message


def test_a_value_may_hold_the_separator():
    s = parse("kern.conftxt: options\tKTRACE: yes\n")
    assert s.get("kern.conftxt").value == "options\tKTRACE: yes"


# ---------------------------------------------------------------------------- libxo JSON

LIBXO = {"__version": "1", "memory-zone-statistics": {"zone": [
    {"name": "kstack_cache", "size": 16384, "limit": 0, "used": 40, "free": 12,
     "requests": 900, "fail": 0, "sleep": 0, "xdomain": 0}]}}  # fmt: skip


def test_the_libxo_form():
    z = parse(json.dumps(LIBXO) + "\n")
    assert isinstance(z, VmstatZJson) and z.version == "1"
    assert z.zone("kstack_cache").requests == 900


def test_a_libxo_field_no_source_prints_is_refused_by_its_path():
    bad = json.loads(json.dumps(LIBXO))
    bad["memory-zone-statistics"]["zone"][0]["bogus"] = 1
    e = error_of(json.dumps(bad))
    assert "unknown field `bogus`" in e.message and "$.memory-zone-statistics.zone[0]" in e.message
    e = error_of('{"memory-zone-statistics":\n  {"zone": [}\n')
    assert (e.line, e.message.split(":")[0]) == (2, "not JSON")


# ---------------------------------------------------------------------------- bytes


def test_bytes_a_command_never_prints_are_errors_of_their_line():
    e = error_of(b"hw.ncpu: 8\r\nhw.physmem: 1\r\n")
    assert (e.line, "CRLF" in e.message) == (1, True)
    e = error_of(b"hw.ncpu: 8\nkern.hostname: caf\xe9\n")
    assert (e.line, "not UTF-8" in e.message) == (2, True)


def test_an_unreadable_file_is_one_error_naming_it(tmp_path):
    with pytest.raises(KreplayError, match="cannot read"):
        read_capture(str(tmp_path / "missing.txt"))


# ---------------------------------------------------------------------------- kreplay snapshot


def test_kreplay_snapshot_json_names_every_column_by_its_header(capsys):
    code, out, err = run_main(["snapshot", sample("09"), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["format"] == "vmstat-z" and len(data["zones"]) == 16
    assert data["zones"][11] == {"name": "128 Bucket", "line": 13, "size": 1024, "limit": 0,
                                 "used": 138, "free": 89, "req": 2105, "fail": 10295,
                                 "sleep": 0, "xdomain": 0}  # fmt: skip


def test_kreplay_snapshot_table(capsys):
    code, out, _ = run_main(["snapshot", sample("13")], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("vmstat -z (7 columns; no header, told by the commas), 18 zones")
    assert lines[1].split() == ["name", *COLUMNS_7]
    assert lines[7].split() == ["g_bio", "376", "0", "130", "850", "1918206632", "0", "0"]
    code, out, _ = run_main(["snapshot", sample("15"), "--json"], capsys)
    assert json.loads(out)["entries"][-1] == {"name": "vm.stats.vm.v_wire_count", "line": 12,
                                              "value": 959532}  # fmt: skip


def test_kreplay_snapshot_refuses_a_file_that_is_no_capture(capsys, tmp_path):
    code, out, err = run_main(["snapshot", sample("SOURCES")], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{sample('SOURCES')}:1: not a sysctl 'name: value' line")
    cut = tmp_path / "cut.txt"
    cut.write_bytes(sample("09").read_bytes()[:-5])
    code, _, err = run_main(["snapshot", cut, "--format", "vmstat-z"], capsys)
    assert code == 2
    assert_one_line_error(err, f"{cut}:17: the last line is cut short")
