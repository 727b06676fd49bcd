"""Ingest: a trace file in, its events in the store.

Reading the input (source.py), knowing the kdump format (kdump.py) and compiling it to
the bulk parse (kdump_sql.py) are separate; this function puts them in order.
"""

import tempfile
from dataclasses import dataclass

from kreplay.errors import TraceFormatError, UsageError
from kreplay.ingest.kdump import (
    KdumpOptions,
    detect_layout,
    detect_options,
    header_version,
    parse_options,
)
from kreplay.ingest.kdump_sql import staged_parse_sql
from kreplay.ingest.source import default_trace_name, open_text
from kreplay.store import NewTrace, Store, TraceInfo

FORMATS = ("auto", "kdump", "ktrace")


@dataclass(frozen=True)
class IngestResult:
    path: str
    name: str
    status: str  # "ingested" | "replaced" | "already"
    trace: TraceInfo


def ingest(
    store: Store,
    path: str,
    *,
    name: str | None = None,
    fmt: str = "auto",
    kdump_options: str | None = None,
    replace: bool = False,
    strict: bool = False,
) -> IngestResult:
    """Parse one trace file into the store (or find it already there)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if name is None:
        name = "stdin" if path == "-" else default_trace_name(path)
    with tempfile.TemporaryDirectory(prefix="kreplay-ingest-") as workdir:
        source = open_text(path, workdir)
        if fmt == "ktrace" or (fmt == "auto" and source.binary_ktrace):
            raise TraceFormatError(
                "this is a binary ktrace.out; reading it directly is not implemented yet: "
                "convert it with `kdump -H -T -c -f FILE > FILE.kdump` "
                "(or pass --format kdump to read it as text anyway)",
                path=path,
            )
        already = store.find_sha(source.sha256)
        if already is not None:
            return IngestResult(path, already, "already", store.trace(already))
        opts, opts_source = _options(source.head, kdump_options)
        new = NewTrace(
            name=name,
            sha256=source.sha256,
            source=path,
            format="kdump",
            compression=source.compression,
            options=opts.letters,
            options_source=opts_source,
            header_version=header_version(source.head, opts),
            bytes=source.nbytes,
        )
        existed = store.has_name(name)
        layout = detect_layout(source.head, opts)
        sql = staged_parse_sql(source.chunks, layout)
        trace = store.add_parsed_trace(new, sql, replace=replace, strict=strict)
    return IngestResult(path, name, "replaced" if existed else "ingested", trace)


def _options(head: list[str], given: str | None) -> tuple[KdumpOptions, str]:
    if given is not None:
        return parse_options(given), "given"
    return detect_options(head), "detected"
