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
from kreplay.ingest.ktrace_rules import looks_like_ktrace
from kreplay.ingest.sidecar import recorded_machine, to_json
from kreplay.ingest.source import Input, TextStream, default_trace_name, file_sha256
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
        if (sha256 := _stored_already(store, source)) is not None:
            trace = None
        elif fmt == "ktrace" or (fmt == "auto" and looks_like_ktrace(source.first)):
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


def _stored_already(store: Store, source: Input) -> str | None:
    """The sha256 of a plain file the store holds already, found without reading it into
    the store and rolling back (both readers learn a file's sha256 only at its end): only
    when a stored trace has its size, and so may have its bytes (a compressed input's
    size is known only once it is read)."""
    size = source.size_hint()
    if not size or not store.has_size(size):
        return None
    sha256 = file_sha256(source.path)
    return sha256 if store.find_sha(sha256) is not None else None


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
    """A binary ktrace.out: read, checked, cut and written a window at a time. Like text,
    its sha256 is known only at the end: a trace stored already is rolled back."""
    from kreplay.ingest import ktrace  # imports numba (~0.5 s): only binary ingest pays it

    reader = ktrace.Reader(source)

    def finish() -> NewTrace:
        return NewTrace(
            name=name,
            sha256=reader.stream.sha256,
            source=source.path,
            format="ktrace",
            compression=source.compression,
            # What the records carry, in kdump's letters: tids and timestamps always, cpu
            # numbers with v1 headers (lifecycle.py reads "H" as "the trace has tids").
            options="HTc" if reader.header_version else "HT",
            options_source="ktrace",
            header_version=reader.header_version,
            bytes=reader.stream.size,
            machine=machine,
        )

    trace = store.add_trace(
        reader.batches(), finish, replace=replace, strict=strict, parallel_reader=False
    )
    return reader.stream.sha256, trace


def _options(head: list[str], given: str | None) -> tuple[KdumpOptions, str]:
    if given is not None:
        return parse_options(given), "given"
    return detect_options(head), "detected"
