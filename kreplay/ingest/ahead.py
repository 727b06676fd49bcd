"""Batches made ahead: a reader's next batch made on a helper thread while the caller's
thread has DuckDB write the one before. Both readers' batch making runs mostly without
the GIL (the compiled walk, cut and scan; numpy's copies), and so does DuckDB's insert:
measured, 5 M binary records 4.6-5.0 s instead of 5.5-6.3 s, 5 M text lines 5.9-6.0 s
instead of 6.5-6.9 s (docs/performance.md, session 11).
"""

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")


def made_ahead(batches: Generator[T, None, None]) -> Iterator[T]:
    """The batches in their order, the next made while the caller has one. At most two
    are alive, the one the caller has and the next (the helper waits until the caller
    takes one before it makes the next). A reader's error is raised in the caller's
    thread; a caller that stops early (an error, Ctrl-C) stops the helper, and the
    reader is closed (its own clean-up runs) before this returns."""
    handoff: queue.Queue = queue.Queue(1)
    taken, stop = threading.Semaphore(0), threading.Event()

    def make() -> None:
        try:
            for batch in batches:
                handoff.put(batch)  # never waits: the caller took the one before
                while not taken.acquire(timeout=0.1):
                    if stop.is_set():
                        return
            handoff.put(None)
        except BaseException as e:  # the caller raises it, in its thread
            handoff.put(e)

    helper = threading.Thread(target=make, name="kreplay-ahead", daemon=True)
    helper.start()
    try:
        while (item := handoff.get()) is not None:
            taken.release()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        helper.join()
        batches.close()  # not running now: its finally blocks run here
