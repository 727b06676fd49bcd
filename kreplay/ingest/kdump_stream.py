"""kdump text as a stream of batches for the store: chunks parsed on both cores, handed
over in file order with their final seq and the trace's dictionary numbers.

Memory stays bounded: the input is read block by block (source.TextStream), at most
IN_FLIGHT chunks are being parsed or waiting to be merged, and at most two batches are
alive (the one written and the next, ahead.py). The parse (kdump_scan, numba) runs
without the GIL, so two chunks parse at once while DuckDB (also without the GIL) writes
the batch before them and a helper thread merges the next.
"""

import ctypes
import os
import queue
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

import numpy as np

from kreplay.ingest.ahead import made_ahead
from kreplay.ingest.kdump import Layout
from kreplay.ingest.kdump_parse import NULL, ChunkParser, ParsedChunk
from kreplay.ingest.source import TextStream
from kreplay.schema import Batch, Dictionary

WORKERS = min(2, os.cpu_count() or 1)
IN_FLIGHT = WORKERS + 1
BATCH_LINES = 250_000  # chunks are merged into batches of this many lines for the store


def _return_freed_memory() -> None:
    """glibc's malloc serves large blocks from its heaps once one has been freed (its
    mmap threshold adapts upwards), and a heap's freed middle is not given back: the
    chunks' arrays, tens of MB each and freed in another thread than they were made in,
    then grew the process by ~200 MB per 5 M lines. A fixed threshold keeps every block
    over 1 MiB in its own mapping, returned to the system when freed."""
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD


_return_freed_memory()


def batches(stream: TextStream, layout: Layout) -> Iterator[Batch]:
    """Every line of the stream, as batches in file order, each made (merged from its
    chunks, numbered) on a helper thread while the caller writes the one before."""
    return made_ahead(_batches(stream, layout))


def _batches(stream: TextStream, layout: Layout) -> Generator[Batch, None, None]:
    parser = ChunkParser(layout)
    comms, syscalls, faults = Dictionary(), Dictionary(), Dictionary()
    seq_base = 0
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="kreplay-parse") as pool:
        reader = _Reader(stream, pool, parser)
        pending: list[Batch] = []
        try:
            for chunk in reader.results():
                pending.append(_batch(chunk, seq_base, comms, syscalls, faults))
                seq_base += chunk.events
                if sum(b.lines for b in pending) >= BATCH_LINES:
                    yield Batch.merged(pending)
                    pending = []
            if pending:
                yield Batch.merged(pending)
        finally:
            reader.stop()


class _Reader:
    """Reads, hashes and cuts the input on a thread of its own, and submits each chunk's
    parse as it is cut: the caller's thread only takes the results (and writes them).
    At most IN_FLIGHT chunks wait in the queue, so memory does not grow with the file."""

    def __init__(self, stream: TextStream, pool: ThreadPoolExecutor, parser: ChunkParser):
        self._queue: queue.Queue = queue.Queue(IN_FLIGHT)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(stream, pool, parser), name="kreplay-read", daemon=True
        )
        self._thread.start()

    def _run(self, stream, pool, parser) -> None:
        try:
            for data, first_line, nlines in stream:
                buf = np.frombuffer(data, dtype=np.uint8)
                if not self._put(pool.submit(parser.parse, buf, first_line, nlines)):
                    return
            self._put(None)
        except BaseException as e:  # the caller raises it, in its thread
            self._put(e)

    def _put(self, item) -> bool:
        while not self._stopped.is_set():
            with suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return True
        return False

    def results(self) -> Iterator[ParsedChunk]:
        while (item := self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item.result()

    def stop(self) -> None:
        self._stopped.set()
        while True:  # cancel what waits, so that the pool's shutdown does not run it
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Future):
                item.cancel()
        self._thread.join()


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
        tables=list(tables.items()),
        lines=chunk.lines,
        events=chunk.events,
        conts=chunk.conts,
        errors=len(chunk.errors["line"]),
        drops=chunk.drops + chunk.error_drops,
        first_ts=int(ts.min()) if len(ts) else None,
        last_ts=int(ts.max()) if len(ts) else None,
        first_error=first_error,
    )
