"""kdump text forms that no published sample uses, written as kdump(1) prints them
(spec/kdump-format.md §1.1-1.5): header columns for -H -T -E -R -c -A, every RET form,
the PFLT/PRET/PSIG/CSW bodies, continuation lines, dropped-event markers, odd command
names and wide numbers.

Lines are literal where the exact spacing matters; `header()` (conftest) renders the
printf formats of dumpheader() for the rest.
"""

import pytest
from conftest import events, header, ingest_text, parse_errors, printf_comm, trace_row

from kreplay.errors import TraceFormatError, UsageError


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


def only_event(tmp_path, text, **kw) -> dict:
    info = ingest_text(tmp_path, text, **kw)
    assert info.parse_errors == 0, parse_errors(tmp_path / "store.duckdb", "t")
    (event,) = events(tmp_path / "store.duckdb", "t")
    return event


# ---------------------------------------------------------------------------- header columns


def test_header_with_tid_absolute_ns_time_and_cpu(tmp_path, db):
    text = lines(
        "  1234 100123 proc     1700000000.123456789   3 CALL  fork",
        "  1234 100123 proc     1700000000.123457000  12 RET   fork 1235/0x4d3",
        "  1235 100200 proc     1700000000.223456789 100 RET   fork 0",
    )
    info = ingest_text(tmp_path, text)
    assert (info.options, info.options_source, info.header_version) == ("HTc", "detected", 1)
    assert (info.events, info.parse_errors) == (3, 0)
    got = [(e["pid"], e["tid"], e["comm"], e["cpu"], e["ts"], e["kind"]) for e in events(db, "t")]
    assert got == [
        (1234, 100123, "proc", 3, 1700000000123456789, "CALL"),
        (1234, 100123, "proc", 12, 1700000000123457000, "RET"),
        (1235, 100200, "proc", 100, 1700000000223456789, "RET"),
    ]
    assert (info.first_ts, info.last_ts) == (1700000000123456789, 1700000000223456789)


def test_absolute_time_in_microseconds_is_scaled_to_ns(tmp_path, db):
    text = lines(
        "  1234 proc     1700000000.123456 CALL  getpid",
        "  1234 proc     1700000000.999999 RET   getpid 1234/0x4d2",
        "  1234 proc     1700000001.000000 CALL  exit(0)",
    )
    info = ingest_text(tmp_path, text)
    assert (info.options, info.header_version) == ("T", 0)
    assert [e["ts"] for e in events(db, "t")] == [
        1700000000123456000,
        1700000000999999000,
        1700000001000000000,
    ]
    assert [e["tid"] for e in events(db, "t")] == [None, None, None]


def test_elapsed_time_whose_seconds_grow_a_digit(tmp_path, db):
    text = lines(
        "  1234 proc     0.000000 CALL  getpid",
        "  1234 proc     0.000100 RET   getpid 1234/0x4d2",
        "  1234 proc     9.999999 CALL  getpid",
        "  1234 proc     12.500000 RET   getpid 1234/0x4d2",
        "  1234 proc     123.000001 CALL  exit(0)",
    )
    info = ingest_text(tmp_path, text)
    assert info.options == "E"
    assert [e["ts"] for e in events(db, "t")] == [
        0,
        100_000,
        9_999_999_000,
        12_500_000_000,
        123_000_001_000,
    ]


def test_relative_time_can_be_negative(tmp_path, db):
    """-R prints `-` when a (queued) record is older than the one before it."""
    text = lines(
        "  1234 proc     0.000000 CALL  read(0x3,0x7fffffffe000,0x80)",
        "  1234 proc     -0.000012 PSIG  SIGINT SIG_DFL code=SI_USER",
        "  1234 proc     0.000030 RET   read 128/0x80",
    )
    info = ingest_text(tmp_path, text)
    assert info.options == "R"
    assert [e["ts"] for e in events(db, "t")] == [0, -12_000, 30_000]
    assert info.first_ts == -12_000


def test_elapsed_and_relative_columns(tmp_path, db):
    text = lines(
        "  1234 proc     0.000000000 0.000000000 CALL  getpid",
        "  1234 proc     0.000000100 -0.000000012 RET   getpid 1234/0x4d2",
    )
    info = ingest_text(tmp_path, text)
    assert (info.options, info.header_version) == ("ER", 1)
    assert [e["ts"] for e in events(db, "t")] == [0, 100]


def test_all_three_timestamps_ts_is_the_absolute_one(tmp_path, db):
    text = lines(
        "  1234 100123 proc     1700000000.123456789 0.000000000 0.000000000   0 CALL  getpid",
        "  1234 100123 proc     1700000000.123457000 0.000000211 0.000000211   1 RET   getpid"
        " 1234/0x4d2",
    )
    info = ingest_text(tmp_path, text)
    assert info.options == "HTERc"
    assert [(e["ts"], e["cpu"]) for e in events(db, "t")] == [
        (1700000000123456789, 0),
        (1700000000123457000, 1),
    ]


def test_abi_column(tmp_path, db):
    text = lines(
        "  1234 proc     CALL  F64  fork",
        "  1234 proc     RET   F64  fork 1235/0x4d3",
        "  1235 proc     RET   L32  fork 0",
        '  1236 proc     NAMI  F64C  "/bin/sh"',
    )
    info = ingest_text(tmp_path, text)
    assert (info.options, info.parse_errors) == ("A", 0)
    got = [(e["kind"], e["abi"], e["syscall"], e["retval"], e["path"]) for e in events(db, "t")]
    assert got == [
        ("CALL", "F64", "fork", None, None),
        ("RET", "F64", "fork", 1235, None),
        ("RET", "L32", "fork", 0, None),
        ("NAMI", "F64C", None, None, "/bin/sh"),
    ]


def test_abi_column_with_tid_time_and_cpu(tmp_path, db):
    text = lines(
        "  1234 100123 proc     1700000000.123456789   3 CALL  F64  mmap(0,0x1000,0x3<PROT_READ"
        "|PROT_WRITE>,0x1002<MAP_PRIVATE|MAP_ANON>,0xffffffff,0)",
        "  1234 100123 proc     1700000000.123457000   3 RET   F64  mmap 34366296064/0x800641000",
    )
    info = ingest_text(tmp_path, text)
    assert info.options == "HTcA"
    call, ret = events(db, "t")
    assert (call["abi"], call["tid"], call["cpu"], call["syscall"]) == ("F64", 100123, 3, "mmap")
    assert call["args"].startswith("0,0x1000,0x3<PROT_READ|PROT_WRITE>")
    assert (ret["abi"], ret["retval"]) == ("F64", 34366296064)


def test_syscall_numbers_with_S(tmp_path, db):
    text = lines(
        "  1234 proc     CALL  mmap[477](0,0x1000)",
        "  1234 proc     RET   mmap[477] 34366296064/0x800641000",
        "  1234 proc     CALL  getpid[20]",
        "  1234 proc     CALL  [600](0x1)",
    )
    ingest_text(tmp_path, text)
    got = [(e["syscall"], e["sysnum"], e["args"], e["retval"]) for e in events(db, "t")]
    assert got == [
        ("mmap", 477, "0,0x1000", None),
        ("mmap", 477, None, 34366296064),
        ("getpid", 20, None, None),
        ("[600]", 600, "0x1", None),
    ]


# ---------------------------------------------------------------------------- CALL and RET


def test_call_forms(tmp_path, db):
    text = lines(
        "  1234 proc     CALL  fork",
        "  1234 proc     CALL  kill(1235,SIGTERM)",
        "  1234 proc     CALL  kill(1235,SIG 32)",
        "  1234 proc     CALL  wait4(-1,0x7fffffffe5cc,0x1<WNOHANG>,0)",
    )
    ingest_text(tmp_path, text)
    got = [(e["kind"], e["syscall"], e["args"], e["sysnum"]) for e in events(db, "t")]
    assert got == [
        ("CALL", "fork", None, None),
        ("CALL", "kill", "1235,SIGTERM", None),
        ("CALL", "kill", "1235,SIG 32", None),
        ("CALL", "wait4", "-1,0x7fffffffe5cc,0x1<WNOHANG>,0", None),
    ]


RET_FORMS = [
    # body, syscall, retval, errno, ret_kind
    ("read 128/0x80", "read", 128, None, "value"),
    ("close 0", "close", 0, None, "value"),
    ("write 9", "write", 9, None, "value"),
    ("read 0x80", "read", 128, None, "value"),  # -n
    ("read 0", "read", 0, None, "value"),
    ("mmap -1/0xffffffffffffffff", "mmap", -1, None, "value"),
    ("lseek 0xffffffffffffffff", "lseek", -1, None, "value"),  # -n, -1 success
    ("mmap 34366296064/0x800641000", "mmap", 34366296064, None, "value"),
    ("open -1 errno 2 No such file or directory", "open", -1, 2, "error"),
    ("open -1 errno 2", "open", -1, 2, "error"),  # -n
    ("_umtx_op -1 errno 60 Operation timed out", "_umtx_op", -1, 60, "error"),
    ("wait4 RESTART", "wait4", None, None, "restart"),
    ("execve JUSTRETURN", "execve", None, None, "justreturn"),
    ("fork 1234/0x4d2", "fork", 1234, None, "value"),
]


@pytest.mark.parametrize(
    ("body", "syscall", "retval", "errno", "ret_kind"), RET_FORMS, ids=[f[0] for f in RET_FORMS]
)
def test_ret_forms(tmp_path, body, syscall, retval, errno, ret_kind):
    e = only_event(tmp_path, header(1234, "proc", "RET") + body + "\n")
    assert e["kind"] == "RET"
    assert (e["syscall"], e["retval"], e["errno"], e["ret_kind"]) == (
        syscall,
        retval,
        errno,
        ret_kind,
    )


@pytest.mark.parametrize(
    "body",
    [
        "read",  # no value
        "read 12abc",
        "read -1 errno",
        "read(0x3) 0",
    ],
)
def test_malformed_ret_body_is_a_parse_error(tmp_path, db, body):
    text = lines(
        header(1234, "proc", "CALL") + "read(0x3,0x1000,0x80)", header(1234, "proc", "RET") + body
    )
    info = ingest_text(tmp_path, text)
    assert (info.events, info.parse_errors) == (1, 1)
    (err,) = parse_errors(db, "t")
    assert err["line"] == 2 and "RET" in err["reason"]
    assert err["text"] == header(1234, "proc", "RET") + body


# ---------------------------------------------------------------------------- other bodies


def test_page_fault_records(tmp_path, db):
    text = lines(
        "  1234 proc     PFLT  0x8228ce123 0x2<VM_PROT_WRITE>",
        "  1234 proc     PRET  KERN_SUCCESS",
        "  1234 proc     PFLT  0x7fffffffe000 0x5<VM_PROT_READ|VM_PROT_EXECUTE>",
        "  1234 proc     PRET  KERN_PROTECTION_FAILURE",
        "  1234 proc     PFLT  0xfffffffffffff000 0x1<VM_PROT_READ>",
        "  1234 proc     PRET  <invalid=99>",
    )
    info = ingest_text(tmp_path, text)
    assert info.parse_errors == 0
    got = [(e["kind"], e["addr"], e["prot"], e["fault_result"]) for e in events(db, "t")]
    assert got == [
        ("PFLT", 0x8228CE123, 2, None),
        ("PRET", None, None, "KERN_SUCCESS"),
        ("PFLT", 0x7FFFFFFFE000, 5, None),
        ("PRET", None, None, "KERN_PROTECTION_FAILURE"),
        ("PFLT", 0xFFFFFFFFFFFFF000, 1, None),  # needs the unsigned 64-bit column
        ("PRET", None, None, "<invalid=99>"),
    ]


PSIG_FORMS = [
    (
        "SIGSEGV caught handler=0x401000 mask=0x0 code=SEGV_MAPERR",
        "SIGSEGV",
        "caught",
        "SEGV_MAPERR",
    ),
    ("SIGTERM SIG_DFL code=SI_USER", "SIGTERM", "SIG_DFL", "SI_USER"),
    ("SIGCHLD SIG_IGN code=CLD_EXITED", "SIGCHLD", "SIG_IGN", "CLD_EXITED"),
    ("SIGINT SIG_DFL code=0x0", "SIGINT", "SIG_DFL", "0x0"),  # older kdump
    ("SIGHUP SIG_DFL", "SIGHUP", "SIG_DFL", None),  # oldest
    ("SIG 32 SIG_DFL code=<invalid=0x7>", "SIG 32", "SIG_DFL", "<invalid=0x7>"),
]


@pytest.mark.parametrize(
    ("body", "signal", "action", "code"), PSIG_FORMS, ids=[f[0] for f in PSIG_FORMS]
)
def test_psig_forms(tmp_path, body, signal, action, code):
    e = only_event(tmp_path, header(1234, "proc", "PSIG") + body + "\n")
    assert (e["kind"], e["signal"], e["sig_action"], e["sig_code"]) == (
        "PSIG",
        signal,
        action,
        code,
    )


CSW_FORMS = [
    ('stop kernel "select"', "stop", "kernel", "select"),
    ('resume kernel "uwait"', "resume", "kernel", "uwait"),
    ('stop user ""', "stop", "user", None),  # involuntary: no wait channel
    ("resume user", "resume", "user", None),  # kernels before the wmesg field
]


@pytest.mark.parametrize(("body", "csw", "mode", "wmesg"), CSW_FORMS, ids=[f[0] for f in CSW_FORMS])
def test_csw_forms(tmp_path, body, csw, mode, wmesg):
    e = only_event(tmp_path, header(1234, "proc", "CSW ") + body + "\n")
    assert (e["kind"], e["csw"], e["csw_mode"], e["wmesg"]) == ("CSW", csw, mode, wmesg)


@pytest.mark.parametrize("body", ["pause kernel", 'stop "select"', "stop kernel select"])
def test_malformed_csw_is_a_parse_error(tmp_path, body):
    text = lines(
        header(1234, "proc", "CALL") + "select(0x4,0,0,0,0)", header(1234, "proc", "CSW ") + body
    )
    info = ingest_text(tmp_path, text)
    assert (info.events, info.parse_errors) == (1, 1)


def test_paths_and_raw_bodies(tmp_path, db):
    text = lines(
        header(1234, "proc", "NAMI") + '"/etc/malloc.conf"',
        header(1234, "proc", "NAMI") + '"relative dir/with space"',
        header(1234, "proc", "NAMI") + '""',
        header(1234, "proc", "SCTL") + '"kern.ostype"',
        header(1234, "proc", "CAP ") + "operation requires CAP_READ, descriptor holds CAP_WRITE",
        header(1234, "proc", "CAP ") + "system call not allowed: open",
        header(1234, "proc", "USER") + "RTLD: loading libc.so.7",
        header(1234, "proc", "USER") + "4  01 02 03 04",
        header(1234, "proc", "ARGS") + '"ls", "-l", "/tmp"',
        header(1234, "proc", "ENVS") + '"HOME=/root", "TERM=xterm"',
        header(1234, "proc", "EERR") + "{ errno 22 category 1 (src line 100) p1 0 p2 0 bad }",
        header(1234, "proc", "STRU") + "struct sockaddr { AF_INET, 127.0.0.1:80 }",
    )
    info = ingest_text(tmp_path, text)
    assert (info.events, info.parse_errors) == (12, 0)
    evs = events(db, "t")
    assert [e["kind"] for e in evs] == [
        "NAMI",
        "NAMI",
        "NAMI",
        "SCTL",
        "CAP",
        "CAP",
        "USER",
        "USER",
        "ARGS",
        "ENVS",
        "EERR",
        "STRU",
    ]
    assert [e["path"] for e in evs[:4]] == [
        "/etc/malloc.conf",
        "relative dir/with space",
        "",
        "kern.ostype",
    ]
    for e in evs[4:]:
        assert e["body"] == text.split("\n")[e["line"] - 1][len(header(1234, "proc", "CALL")) :]
        assert e["syscall"] is None and e["path"] is None


def test_unknown_record_type(tmp_path, db):
    text = lines(header(1234, "proc", "CALL") + "getpid", "  1234 proc     UNKNOWN(42)  ")
    info = ingest_text(tmp_path, text)
    assert (info.events, info.parse_errors) == (2, 0)
    unknown = events(db, "t")[1]
    assert (unknown["kind"], unknown["pid"], unknown["comm"]) == ("UNKNOWN", 1234, "proc")
    assert "42" in unknown["body"]


def test_unknown_record_type_with_tid_time_and_cpu(tmp_path, db):
    text = lines(
        "  1234 100123 proc     1700000000.123456789   3 UNKNOWN(42)  ",
        "  1234 100123 proc     1700000000.123456789   3 CALL  getpid",
    )
    info = ingest_text(tmp_path, text)
    assert (info.options, info.events, info.parse_errors) == ("HTc", 2, 0)
    unknown = events(db, "t")[0]
    assert (unknown["kind"], unknown["tid"], unknown["cpu"], unknown["ts"]) == (
        "UNKNOWN",
        100123,
        3,
        1700000000123456789,
    )


def test_cheribsd_syscall_error_cause(tmp_path, db):
    e = only_event(tmp_path, header(1234, "proc", "ERR ") + '"capability violation"\n')
    assert (e["kind"], e["path"]) == ("ERR", "capability violation")


def test_struct_array_continuation_lines(tmp_path, db):
    stru = header(1234, "proc", "STRU") + (
        "struct kevent[] = { { ident=3, filter=EVFILT_READ, flags=0x1<EV_ADD>, fflags=0,"
        " data=0, udata=0x0 }"
    )
    elems = [
        " " * 13 + "{ ident=4, filter=EVFILT_WRITE, flags=0x1<EV_ADD>, fflags=0, data=0,"
        " udata=0x0 }",
        " " * 13 + "{ ident=5, filter=EVFILT_READ, flags=0x1<EV_ADD>, fflags=0, data=0,"
        " udata=0x0 } }",
    ]
    text = lines(
        header(1234, "proc", "CALL") + "kevent(0x3,0x7fffffffe000,0x3,0,0,0)",
        stru,
        *elems,
        header(1234, "proc", "RET") + "kevent 0",
    )
    info = ingest_text(tmp_path, text)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (5, 3, 2, 0)
    call, s, ret = events(db, "t")
    assert (s["kind"], s["line"], s["cont_lines"]) == ("STRU", 2, 2)
    assert s["cont"] == "\n".join(elems)
    assert call["cont_lines"] is None and ret["cont_lines"] is None
    assert (ret["line"], ret["retval"]) == (5, 0)


def test_gio_text_dump_with_tab_continuations(tmp_path, db):
    dump = [
        '       "line one',
        "\tline two with \\t and \\\\",
        "\tlast line, then a lone quote",
        '       "',
    ]
    text = lines(
        header(1234, "proc", "CALL") + "write(0x1,0x800a00000,0x3c)",
        header(1234, "proc", "GIO ") + "fd 1 wrote 60 bytes",
        *dump,
        header(1234, "proc", "RET") + "write 60/0x3c",
        header(1234, "proc", "GIO ") + "fd 0 read 1 byte",
        '       "x"',
        header(1234, "proc", "GIO ") + "fd 5 read 0 bytes",
        '       ""',
    )
    info = ingest_text(tmp_path, text)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (11, 5, 6, 0)
    _, gio, ret, one, empty = events(db, "t")
    assert (gio["gio_fd"], gio["gio_dir"], gio["gio_bytes"]) == (1, "wrote", 60)
    assert (gio["cont_lines"], gio["cont"]) == (4, "\n".join(dump))
    assert (ret["line"], ret["retval"]) == (7, 60)
    assert (one["gio_dir"], one["gio_bytes"], one["cont"]) == ("read", 1, '       "x"')
    assert (empty["gio_bytes"], empty["cont_lines"]) == (0, 1)


def test_gio_hex_dump_continuations(tmp_path, db):
    """hexdump() prints rows of 16 bytes (80 columns) and, after a short last row, an
    empty line; the offset restarts at 0 for every record and may pass 4 digits."""
    full = [
        "       0x0000 d0a2 d0b5 d181 d182 206d 616c 6c6f 6328  |........ malloc(|",
        "       0x0010 3029 2064 6f6e 650a 2020 2020 2020 2020  |0) done.        |",
    ]
    short = [
        "       0x0000 d0a2 d0b5 d181 d182 206d 616c 6c6f 6328  |........ malloc(|",
        "       0x0010 3029 0a                                  |0).|",
        "",
    ]
    big = ["       0x10000 4142 4344                               |ABCD|", ""]
    text = lines(
        header(1234, "proc", "GIO ") + "fd 1 wrote 32 bytes",
        *full,
        header(1234, "proc", "GIO ") + "fd 1 wrote 19 bytes",
        *short,
        header(1234, "proc", "GIO ") + "fd 3 read 65540 bytes",
        *big,
        header(1234, "proc", "RET") + "read 65540/0x10004",
    )
    info = ingest_text(tmp_path, text)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (11, 4, 7, 0)
    first, second, third, ret = events(db, "t")
    assert (first["cont_lines"], first["cont"]) == (2, "\n".join(full))
    assert (second["cont_lines"], second["cont"]) == (3, "\n".join(short))
    assert (third["cont_lines"], third["cont"]) == (2, "\n".join(big))
    assert (ret["line"], ret["retval"], ret["cont_lines"]) == (11, 65540, None)


def test_blank_line_not_after_a_hex_dump_is_a_parse_error(tmp_path, db):
    """Only a hex dump is followed by an empty line; elsewhere a blank line is foreign."""
    text = lines(
        header(1234, "proc", "CALL") + "getpid",
        "",
        header(1234, "proc", "RET") + "getpid 1234/0x4d2",
        "",
    )
    info = ingest_text(tmp_path, text)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (4, 2, 0, 2)
    assert [(p["line"], p["reason"]) for p in parse_errors(db, "t")] == [
        (2, "blank line"),
        (4, "blank line"),
    ]


@pytest.mark.parametrize(
    "dump",
    [
        ['       "abc"'],  # a text dump ends with its closing quote
        ['       "abc', '       "'],  # ... also when the data ends with a newline
        [],  # kdump -s: no data lines at all
    ],
)
def test_blank_line_after_a_gio_text_dump_is_a_parse_error(tmp_path, db, dump):
    text = lines(
        header(1234, "proc", "GIO ") + "fd 1 wrote 3 bytes",
        *dump,
        "",
        header(1234, "proc", "RET") + "write 3",
    )
    info = ingest_text(tmp_path, text)
    assert (info.events, info.continuations, info.parse_errors) == (2, len(dump), 1)
    assert parse_errors(db, "t")[0]["line"] == 2 + len(dump)
    assert events(db, "t")[0]["cont"] == ("\n".join(dump) if dump else None)


def test_continuation_lines_belong_only_to_their_kind_of_record(tmp_path, db):
    """A hex-dump line after a NAMI, or a struct element after a GIO, owns no record."""
    text = lines(
        header(1234, "proc", "NAMI") + '"/etc/malloc.conf"',
        "       0x0000 6d61 6c6c 6f63                           |malloc|",
        header(1234, "proc", "GIO ") + "fd 1 wrote 3 bytes",
        '       "abc"',
        " " * 13 + "{ fd=3, events=0x1<POLLIN>, revents=0}",
        '       "stray"',
    )
    info = ingest_text(tmp_path, text)
    assert (info.lines, info.events, info.continuations, info.parse_errors) == (6, 2, 2, 2)
    assert [p["line"] for p in parse_errors(db, "t")] == [2, 5]
    nami, gio = events(db, "t")
    assert nami["cont_lines"] is None
    # The element line between them does not end the GIO dump: line 6 still attaches.
    assert (gio["cont_lines"], gio["cont"]) == (2, '       "abc"\n       "stray"')


def test_continuation_after_a_parse_error_is_not_attached(tmp_path, db):
    text = lines(
        header(1234, "proc", "GIO ") + "fd 1 wrote 3 bytes",
        "garbage in the middle",
        '       "abc"',
    )
    info = ingest_text(tmp_path, text)
    assert (info.events, info.continuations, info.parse_errors) == (1, 0, 2)
    assert events(db, "t")[0]["cont_lines"] is None


# ---------------------------------------------------------------------------- dropped events


def test_events_dropped_without_tid(tmp_path, db):
    text = lines(
        header(1234, "proc", "CALL") + "getpid",
        "  1234 proc     Events dropped.",
        header(1234, "proc", "RET") + "getpid 1234/0x4d2",
    )
    info = ingest_text(tmp_path, text)
    assert (info.events, info.dropped, info.parse_errors) == (3, 1, 0)
    drop = events(db, "t")[1]
    assert (drop["kind"], drop["pid"], drop["tid"], drop["comm"], drop["line"]) == (
        "DROP",
        1234,
        None,
        "proc",
        2,
    )
    assert drop["ts"] is None


def test_events_dropped_with_tid_time_and_cpu(tmp_path, db):
    text = lines(
        "  1234 100123 my prog  1700000000.123456789   3 CALL  getpid",
        "  1234 100123 my prog  Events dropped.",
        "  1234 100124 8        Events dropped.",
        "  1234 100123 my prog  1700000000.223456789   3 RET   getpid 1234/0x4d2",
    )
    info = ingest_text(tmp_path, text)
    assert (info.options, info.events, info.dropped, info.parse_errors) == ("HTc", 4, 2, 0)
    drops = [e for e in events(db, "t") if e["kind"] == "DROP"]
    assert [(d["pid"], d["tid"], d["comm"], d["cpu"], d["ts"]) for d in drops] == [
        (1234, 100123, "my prog", None, None),
        (1234, 100124, "8", None, None),
    ]
    # A drop marker has no time: the trace's span comes from the records.
    assert (info.first_ts, info.last_ts) == (1700000000123456789, 1700000000223456789)


# ---------------------------------------------------------------------------- command names

COMMS = [
    "a",
    "my prog",
    "sh",
    "8",
    "12345678",
    "abcdefghijklmnopqrs",
    "a b c d e f g h i j",
    "x  y",
    "CALL",
    "thr RET",
    "tst_qtendian",
]


@pytest.mark.parametrize("opts", ["", "HTc"])
def test_command_names(tmp_path, db, opts):
    with_tid = "H" in opts
    rows = [
        header(
            1000 + i,
            comm,
            "CALL",
            tid=100000 + i if with_tid else None,
            ts=("1700000000.000000001",) if with_tid else (),
            cpu=i if with_tid else None,
        )
        + "getpid"
        for i, comm in enumerate(COMMS)
    ]
    info = ingest_text(tmp_path, lines(*rows))
    assert (info.options, info.parse_errors) == (opts, 0)
    evs = events(db, "t")
    assert [e["comm"] for e in evs] == COMMS
    assert [e["pid"] for e in evs] == [1000 + i for i in range(len(COMMS))]
    if with_tid:
        assert [e["tid"] for e in evs] == [100000 + i for i in range(len(COMMS))]
        assert [e["cpu"] for e in evs] == list(range(len(COMMS)))


def test_all_digit_command_name_with_tid_column(tmp_path, db):
    """Without -H, `  9630 3        NAMI` must not be read as pid 9630, tid 3; with -H the
    tid column comes first."""
    text = lines(
        header(9630, "3", "NAMI", tid=100001) + '"/etc/malloc.conf"',
        header(9630, "3", "CALL", tid=100001) + "exit(0)",
    )
    info = ingest_text(tmp_path, text)
    assert info.options == "H"
    assert [(e["pid"], e["tid"], e["comm"]) for e in events(db, "t")] == [
        (9630, 100001, "3"),
        (9630, 100001, "3"),
    ]


def test_all_digit_command_name_with_cpu_column(tmp_path, db):
    """The padding of `%3d` cpu must not be read as a command field after a tid `8`."""
    text = lines(
        header(10437, "8", "CALL", cpu=0) + "munmap(0x823c1a000,0x1000)",
        header(10437, "8", "RET", cpu=1) + "munmap 0",
    )
    assert text.startswith(" 10437 8          0 CALL  munmap")
    info = ingest_text(tmp_path, text)
    assert info.options == "c"
    assert [(e["tid"], e["comm"], e["cpu"]) for e in events(db, "t")] == [
        (None, "8", 0),
        (None, "8", 1),
    ]


def test_all_digit_command_name_with_elapsed_time(tmp_path, db):
    """Nor a short -E time as the command field after a tid `3`."""
    text = lines(
        header(9630, "3", "NAMI", ts=("0.000012",)) + '"/etc/malloc.conf"',
        header(9630, "3", "CALL", ts=("0.000100",)) + "exit(0)",
    )
    assert text.startswith("  9630 3        0.000012 NAMI")
    info = ingest_text(tmp_path, text)
    assert info.options == "E"
    assert [(e["tid"], e["comm"], e["ts"]) for e in events(db, "t")] == [
        (None, "3", 12_000),
        (None, "3", 100_000),
    ]


def test_command_name_starting_with_a_number_word(tmp_path, db):
    text = lines(
        header(1234, "2 workers", "CALL") + "getpid",
        header(1234, "2 workers", "RET") + "getpid 1234/0x4d2",
    )
    assert text.startswith("  1234 2 workers CALL  getpid")
    info = ingest_text(tmp_path, text)
    assert info.options == ""
    assert [(e["tid"], e["comm"]) for e in events(db, "t")] == [(None, "2 workers")] * 2


def test_eight_digit_command_name_with_microsecond_time(tmp_path, db):
    text = lines(
        header(4321, "20240611", "CALL", ts=("1700000000.123456",)) + "getpid",
        header(4321, "20240611", "RET", ts=("1700000000.123457",)) + "getpid 4321/0x10e1",
    )
    assert text.startswith("  4321 20240611 1700000000.123456 CALL  getpid")
    info = ingest_text(tmp_path, text)
    assert (info.options, info.header_version) == ("T", 0)
    assert [(e["tid"], e["comm"], e["ts"]) for e in events(db, "t")] == [
        (None, "20240611", 1700000000123456000),
        (None, "20240611", 1700000000123457000),
    ]


def test_all_digit_command_name_with_given_options(tmp_path, db):
    text = lines(
        header(10437, "8", "CALL", ts=("0.000012",), cpu=0) + "munmap(0x823c1a000,0x1000)",
        header(10437, "8", "RET", ts=("0.000100",), cpu=1) + "munmap 0",
    )
    info = ingest_text(tmp_path, text, kdump_options="Ec")
    assert (info.options, info.parse_errors) == ("Ec", 0)
    assert [(e["tid"], e["comm"], e["cpu"], e["ts"]) for e in events(db, "t")] == [
        (None, "8", 0, 12_000),
        (None, "8", 1, 100_000),
    ]


def test_comm_longer_than_19_is_cut_by_kdump(tmp_path, db):
    assert printf_comm("abcdefghijklmnopqrstuvwxyz") == "abcdefghijklmnopqrs"
    e = only_event(tmp_path, header(1, "abcdefghijklmnopqrstuvwxyz", "CALL") + "getpid\n")
    assert e["comm"] == "abcdefghijklmnopqrs"


def test_multibyte_command_name(tmp_path, db):
    text = lines(
        header(1234, "café", "CALL") + "getpid",  # 5 bytes: 3 padding spaces, not 4
        header(1234, "日本語", "CALL") + "getpid",  # 9 bytes: no padding
        header(1234, "proc", "CALL") + "getpid",
    )
    assert text.startswith("  1234 café    CALL  getpid\n")
    info = ingest_text(tmp_path, text)
    assert info.parse_errors == 0
    assert [e["comm"] for e in events(db, "t")] == ["café", "日本語", "proc"]


def test_multibyte_command_name_does_not_change_detected_options(tmp_path, db):
    text = lines(
        header(1234, "café", "CALL", tid=100123, ts=("1700000000.123456789",), cpu=3) + "getpid",
        header(1234, "proc", "CALL", tid=100124, ts=("1700000000.123456789",), cpu=3) + "getpid",
    )
    info = ingest_text(tmp_path, text)
    assert info.options == "HTc"
    assert [e["tid"] for e in events(db, "t")] == [100123, 100124]


def test_command_name_cut_inside_a_multibyte_character(tmp_path, db):
    name = "Ä" * 10  # 20 bytes: kdump prints 19 of them
    cut = name.encode()[:19]
    line = b"  1234 " + cut + b" CALL  getpid"
    data = line + b"\n" + (header(1234, "proc", "RET") + "getpid 1234/0x4d2\n").encode()
    info = ingest_text(tmp_path, data)
    assert (info.events, info.parse_errors) == (2, 0)
    call = events(db, "t")[0]
    assert (call["pid"], call["kind"], call["syscall"]) == (1234, "CALL", "getpid")
    assert call["comm"].startswith("Ä" * 9)


# ---------------------------------------------------------------------------- wide numbers


def test_wide_pid_tid_and_cpu_in_a_file_of_narrow_ones(tmp_path, db):
    """FreeBSD tids start at 100000, so `%6d` fills the column until they pass 999999;
    kdump prints an invalid (negative) tid as 0."""
    ts = ("1700000000.000000001",)
    text = lines(
        header(1234, "proc", "CALL", tid=100123, ts=ts, cpu=3) + "getpid",
        header(1234, "proc", "CALL", tid=1234567, ts=ts, cpu=3) + "getpid",
        header(1234567, "proc", "CALL", tid=100123, ts=ts, cpu=3) + "getpid",
        header(1234, "proc", "CALL", tid=100123, ts=ts, cpu=1000) + "getpid",
        header(99999999, "wide all", "RET", tid=12345678, ts=ts, cpu=1023) + "getpid 5/0x5",
        header(1, "p", "CALL", tid=0, ts=ts, cpu=0) + "getpid",
    )
    assert "1234567 1234567" not in text and " 1234 1234567 proc" in text
    info = ingest_text(tmp_path, text)
    assert (info.options, info.parse_errors) == ("HTc", 0)
    got = [(e["pid"], e["tid"], e["cpu"], e["comm"], e["ts"]) for e in events(db, "t")]
    t = 1700000000000000001
    assert got == [
        (1234, 100123, 3, "proc", t),
        (1234, 1234567, 3, "proc", t),
        (1234567, 100123, 3, "proc", t),
        (1234, 100123, 1000, "proc", t),
        (99999999, 12345678, 1023, "wide all", t),
        (1, 0, 0, "p", t),
    ]


def test_wide_pid_without_tid_column(tmp_path, db):
    text = lines(header(1234567, "proc", "CALL") + "getpid", header(12, "proc", "CALL") + "getpid")
    assert text.startswith("1234567 proc     CALL")
    info = ingest_text(tmp_path, text)
    assert (info.options, info.parse_errors) == ("", 0)
    assert [(e["pid"], e["tid"]) for e in events(db, "t")] == [(1234567, None), (12, None)]


# ---------------------------------------------------------------------------- options

HTC_TEXT = lines(
    "  1234 100123 proc     1700000000.123456789   3 CALL  getpid",
    "  1234 100123 proc     1700000000.123457000   3 RET   getpid 1234/0x4d2",
)


def test_detected_options_are_recorded(tmp_path, db):
    ingest_text(tmp_path, HTC_TEXT)
    t = trace_row(db, "t")
    assert (t["options"], t["options_source"], t["header_version"]) == ("HTc", "detected", 1)


@pytest.mark.parametrize("given", ["HTc", "-H -T -c", "-HTc", "HTcn", "H,T,c"])
def test_given_options_are_recorded(tmp_path, db, given):
    info = ingest_text(tmp_path, HTC_TEXT, kdump_options=given)
    assert (info.options, info.options_source, info.events) == ("HTc", "given", 2)
    assert [e["tid"] for e in events(db, "t")] == [100123, 100123]


def test_given_options_override_detection(tmp_path, db):
    """`  1234 100123 proc ...` is also a valid header without -H if the tid is taken for
    part of the command name; the given options decide."""
    text = lines(
        "  1234 100123 proc     CALL  getpid",
        "  1234 100123 proc     RET   getpid 1234/0x4d2",
    )
    ingest_text(tmp_path, text, name="h", kdump_options="H")
    ingest_text(
        tmp_path, text.replace("getpid 1234", "getpid 1235"), name="plain", kdump_options=""
    )
    assert [(e["tid"], e["comm"]) for e in events(db, "h")] == [(100123, "proc")] * 2
    assert [(e["tid"], e["comm"]) for e in events(db, "plain")] == [(None, "100123 proc")] * 2
    assert trace_row(db, "plain")["options"] == ""


def test_wrong_given_options_find_no_record(tmp_path):
    text = lines(header(1234, "proc", "CALL") + "getpid")
    with pytest.raises(TraceFormatError, match="no kdump record") as excinfo:
        ingest_text(tmp_path, text, kdump_options="HTc")
    assert "t.kdump:1" in str(excinfo.value)


def test_unknown_option_letter(tmp_path):
    with pytest.raises(UsageError, match="Z"):
        ingest_text(tmp_path, HTC_TEXT, kdump_options="HZ")


def test_header_version_from_timestamp_precision(tmp_path, db):
    ingest_text(tmp_path, HTC_TEXT, name="ns")
    ingest_text(
        tmp_path, lines(header(1, "p", "CALL", ts=("1700000000.123456",)) + "getpid"), name="us"
    )
    ingest_text(tmp_path, lines(header(1, "p", "CALL") + "getpid"), name="none")
    assert [trace_row(db, n)["header_version"] for n in ("ns", "us", "none")] == [1, 0, None]
