"""kdump text as a stream of batches for the store: chunks parsed on both cores, handed
over in file order with their final seq and the trace's dictionary numbers.

Memory stays bounded: the input is read block by block (source.TextStream), at most
IN_FLIGHT chunks are being parsed or waiting to be written, and each batch is written
before the next is taken. The parse (kdump_scan, numba) runs without the GIL, so two
chunks parse at once while DuckDB (also without the GIL) writes the batch before them.
"""

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from kreplay.ingest.kdump import Layout
from kreplay.ingest.kdump_parse import NULL, ChunkParser, ParsedChunk, Strings
from kreplay.ingest.source import TextStream
from kreplay.store import Batch

WORKERS = min(2, os.cpu_count() or 1)
IN_FLIGHT = WORKERS + 1


class _Dictionary:
    """A trace's numbers for one string column: per-chunk numbers to the trace's."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.new: list[str] = []

    def map(self, strings: Strings) -> np.ndarray:
        table = np.empty(len(strings.values) + 1, dtype=np.int64)
        for k, value in enumerate(strings.values):
            number = self.ids.get(value)
            if number is None:
                number = self.ids[value] = len(self.ids)
                self.new.append(value)
            table[k] = number
        table[-1] = NULL
        local = strings.ids.astype(np.int64)
        return table[np.where(local == NULL, len(strings.values), local)]

    def take_new(self, id_name: str, value_name: str) -> dict[str, np.ndarray]:
        """The numbers given since the last call, as rows of the dictionary table."""
        new, self.new = self.new, []
        values = np.empty(len(new), dtype=object)
        values[:] = new
        first = len(self.ids) - len(new)
        return {id_name: np.arange(first, first + len(new), dtype=np.int64), value_name: values}


def batches(stream: TextStream, layout: Layout) -> Iterator[Batch]:
    """Every line of the stream, as batches in file order."""
    parser = ChunkParser(layout)
    comms, syscalls, faults = _Dictionary(), _Dictionary(), _Dictionary()
    seq_base = 0
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="kreplay-parse") as pool:
        pending: deque[Future] = deque()
        chunks = iter(stream)
        try:
            for chunk in _parsed(pool, parser, chunks, pending):
                yield _batch(chunk, seq_base, comms, syscalls, faults)
                seq_base += chunk.events
        finally:
            for future in pending:
                future.cancel()


def _parsed(pool, parser, chunks, pending: deque) -> Iterator[ParsedChunk]:
    """The chunks parsed, in order, with up to IN_FLIGHT of them submitted at a time."""
    for data, first_line, nlines in chunks:
        buf = np.frombuffer(data, dtype=np.uint8)
        pending.append(pool.submit(parser.parse, buf, first_line, nlines))
        if len(pending) >= IN_FLIGHT:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _batch(chunk: ParsedChunk, seq_base: int, comms, syscalls, faults) -> Batch:
    core = chunk.core
    core["seq"] = core["seq"] + seq_base
    core["comm_id"] = comms.map(chunk.comm)
    core["syscall_id"] = syscalls.map(chunk.syscall)
    core["fault_id"] = faults.map(chunk.fault)
    tables = {"event_core": core}
    for name, side in chunk.sides.items():
        side["seq"] = side["seq"] + seq_base
        tables[name] = side
    tables["comms"] = comms.take_new("comm_id", "comm")
    tables["syscalls"] = syscalls.take_new("syscall_id", "syscall")
    tables["fault_results"] = faults.take_new("fault_id", "fault_result")
    tables["parse_errors"] = chunk.errors
    ts = core["ts"][core["ts"] != NULL]
    if chunk.error_ts is not None:
        ts = np.concatenate([ts, np.array(chunk.error_ts, dtype=np.int64)])
    first_error = None
    if len(chunk.errors["line"]):
        e = chunk.errors
        first_error = (int(e["line"][0]), e["text"][0], e["reason"][0])
    return Batch(
        tables=tables,
        lines=chunk.lines,
        events=chunk.events,
        conts=chunk.conts,
        errors=len(chunk.errors["line"]),
        drops=chunk.drops + chunk.error_drops,
        first_ts=int(ts.min()) if len(ts) else None,
        last_ts=int(ts.max()) if len(ts) else None,
        first_error=first_error,
    )
