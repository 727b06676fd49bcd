"""Ingest: a trace file in, its events in the store.

Reading the input (source.py), knowing the kdump format (kdump.py), parsing its text in
chunks (kdump_stream.py) and reading binary ktrace.out records (ktrace.py) are separate;
both readers make the same batches of the store's narrow tables (schema.Batch), which
one Store.add_trace writes. This module puts them in order.
"""

from dataclasses import dataclass
from typing import Literal

from kreplay.errors import UsageError
from kreplay.ingest import kdump_stream
from kreplay.ingest.kdump import (
    KdumpOptions,
    detect_layout,
    detect_options,
    header_version,
    parse_options,
)
from kreplay.ingest.ktrace_layout import PAD
from kreplay.ingest.ktrace_rules import looks_like_ktrace
from kreplay.ingest.sidecar import recorded_machine, to_json
from kreplay.ingest.source import Input, TextStream, default_trace_name, read_bytes
from kreplay.names import ALPHABET, NAME
from kreplay.store import NewTrace, Store, TraceInfo

FORMATS = ("auto", "kdump", "ktrace")


# What ingest did with a file: stored it as a new trace, replaced the trace of that name
# (--replace), or found its bytes already stored (under the name given).
IngestStatus = Literal["ingested", "replaced", "already"]


@dataclass(frozen=True)
class IngestResult:
    path: str
    name: str
    status: IngestStatus
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
    if NAME.fullmatch(name) is None:
        raise UsageError(
            f"{name!r} is not a valid trace name ({ALPHABET}): give one with --name", path=path
        )
    existed = store.has_name(name)
    machine = to_json(recorded_machine(path))
    with Input(path) as source:
        if fmt == "ktrace" or (fmt == "auto" and looks_like_ktrace(source.first)):
            sha256, trace = _ingest_ktrace(store, source, name, machine, replace, strict)
        else:
            sha256, trace = _ingest_kdump(
                store, source, name, machine, kdump_options, replace, strict
            )
    if trace is None:
        already = store.find_sha(sha256)
        assert already is not None  # write_trace found these bytes stored
        return IngestResult(path, already, "already", store.trace(already))
    return IngestResult(path, name, "replaced" if existed else "ingested", trace)


def _ingest_kdump(
    store, source, name, machine, kdump_options, replace, strict
) -> tuple[str, TraceInfo | None]:
    """kdump text: option detection from the head, then the stream of parsed chunks into
    the store (sha256, the stored trace, or None when this content is stored already:
    known only once the stream has been read, so that write is rolled back)."""
    text = TextStream(source)
    opts, opts_source = _options(text.head, kdump_options)
    layout = detect_layout(text.head, opts)

    def finish() -> NewTrace:
        return NewTrace(
            name=name,
            sha256=text.sha256,
            source=source.path,
            format="kdump",
            compression=source.compression,
            options=opts.letters,
            options_source=opts_source,
            header_version=header_version(text.head, opts),
            bytes=text.nbytes,
            machine=machine,
        )

    trace = store.add_trace(
        kdump_stream.batches(text, layout),
        finish,
        replace=replace,
        strict=strict,
        parallel_reader=True,
    )
    return text.sha256, trace


def _ingest_ktrace(store, source, name, machine, replace, strict) -> tuple[str, TraceInfo | None]:
    """A binary ktrace.out: all of it in memory, its records found and checked, then cut
    and written a chunk at a time."""
    from kreplay.ingest import ktrace  # imports numba (~0.5 s): only binary ingest pays it

    raw = read_bytes(source, pad=PAD)
    if store.find_sha(raw.sha256) is not None:
        return raw.sha256, None
    decoded = ktrace.decode(raw.data, raw.nbytes, source.path)
    new = NewTrace(
        name=name,
        sha256=raw.sha256,
        source=source.path,
        format="ktrace",
        compression=raw.compression,
        # What the records carry, in kdump's letters: tids and timestamps always, cpu
        # numbers with v1 headers (lifecycle.py reads "H" as "the trace has tids").
        options="HTc" if decoded.header_version else "HT",
        options_source="ktrace",
        header_version=decoded.header_version,
        bytes=raw.nbytes,
        machine=machine,
    )
    trace = store.add_trace(
        decoded.batches, lambda: new, replace=replace, strict=strict, parallel_reader=False
    )
    return raw.sha256, trace


def _options(head: list[str], given: str | None) -> tuple[KdumpOptions, str]:
    if given is not None:
        return parse_options(given), "given"
    return detect_options(head), "detected"
