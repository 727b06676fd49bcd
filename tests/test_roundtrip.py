"""parse(render(records)) == records: random records printed the way kdump(1) prints them
(spec/kdump-format.md §1.1, §1.3), in every header layout, read back field by field.

`render` follows the printf formats of kdump's dumpheader() and of the record printers;
it is written from the spec, not from kreplay's parser.
"""

from conftest import events, ingest_text
from hypothesis import HealthCheck, given, settings
from kdump_grammar import COLUMNS, Opts, Record, detectable_traces, render, traces

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------- properties


def check_roundtrip(tmp_path, opts: Opts, recs: list[Record], **ingest_kw) -> None:
    text = "".join(render(r, opts) + "\n" for r in recs)
    info = ingest_text(tmp_path, text, **ingest_kw)
    assert (info.lines, info.events, info.parse_errors) == (len(recs), len(recs), 0), text
    got = [{c: e[c] for c in COLUMNS} for e in events(tmp_path / "store.duckdb", "t")]
    for line_no, (row, rec) in enumerate(zip(got, recs, strict=True), 1):
        assert row == rec.expected(opts), f"line {line_no}: {render(rec, opts)!r}"
    assert info.options == opts.letters
    if opts.timestamps:
        firsts = [r.ts[0] for r in recs]
        assert (info.first_ts, info.last_ts) == (min(firsts), max(firsts))
        assert info.header_version == (1 if opts.ns else 0)


def test_render_matches_the_spec_examples():
    """The renderer itself, against lines quoted in the spec and the samples."""
    rec = Record(755, 0, "uul", 0, (), "RET ", "write 4")
    assert render(rec, Opts()) == "   755 uul      RET   write 4"
    rec = Record(1234, 100123, "my prog", 3, (1700000000123456789, -12000), "CALL", "fork")
    assert render(rec, Opts(tid=True, timestamps="TR", cpu=True)) == (
        "  1234 100123 my prog  1700000000.123456789 -0.000012000   3 CALL  fork"
    )
    assert render(rec, Opts(timestamps="TR", ns=False)) == (
        "  1234 my prog  1700000000.123456 -0.000012 CALL  fork"
    )


@SETTINGS
@given(trace=traces())
def test_roundtrip(tmp_path_factory, trace):
    opts, recs = trace
    check_roundtrip(tmp_path_factory.mktemp("rt"), opts, recs, kdump_options=opts.letters)


@SETTINGS
@given(trace=traces(wide=True))
def test_roundtrip_wide_numbers(tmp_path_factory, trace):
    """pids and tids beyond `%6d`'s six columns and cpus beyond `%3d`'s three, mixed with
    ordinary ones in one file."""
    opts, recs = trace
    check_roundtrip(tmp_path_factory.mktemp("rt"), opts, recs, kdump_options=opts.letters)


@SETTINGS
@given(trace=detectable_traces())
def test_roundtrip_with_detected_options(tmp_path_factory, trace):
    opts, recs = trace
    check_roundtrip(tmp_path_factory.mktemp("rt"), opts, recs)
