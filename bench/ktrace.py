"""Binary ingest benchmark: how fast kreplay reads a ktrace.out, against reading its bytes.

It writes (once per size, seeded, so the same bytes on every run and machine) an amd64
ktrace.out with the test writer (tests/ktrace_writer.py: a few processes and threads doing
syscalls with arguments and every RET form, lookups, I/O, page faults, signals, context
switches, dropped-events markers, v1 headers) and measures, in the same run:

* the baseline: reading the file's bytes into memory and hashing them (sha256, which every
  ingest computes), best of 3. No reader can be faster than this;
* the reader: bytes -> the store's rows (kreplay.ingest.ktrace.Reader and its batches,
  the issue's "records/s" and its 2 M records/s target), in this process, best of 3 (the
  steady figure: numba's compiled code loaded);
* the reader's first call in a fresh process, as every ingest pays it: importing it (numba)
  and the first call, which loads the compiled code from numba's cache (or compiles it, the
  first time after an install or a change of the code);
* kreplay ingest end to end, as a user runs it (a child process): read, decode, and the
  DuckDB transaction that stores the events; wall time, records/s, peak RSS;
* with --scale K, the same of the file written K times over (a ktrace.out of K times the
  records: the reader streams, so time per record and peak RSS must not grow with K).

A benchmark, not a test: it exits 0 unless something crashes.
Usage: `python bench/ktrace.py [--records N] [--workdir DIR] [--against DIR] [--scale K]`.
"""

import argparse
import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import ktrace_writer  # noqa: E402
from ingest import measure_ingest  # noqa: E402  (bench/ingest.py: the same child-process run)

from kreplay.ingest import ktrace  # noqa: E402
from kreplay.ingest.source import Input  # noqa: E402

DEFAULT_RECORDS = 5_000_000
SEED = 2026
TARGET_RECORDS_PER_S = 2e6
TARGET_END_TO_END = 1.5e6  # issue 16


def write_trace(path: Path, records: int) -> float:
    start = time.perf_counter()
    rnd = random.Random(SEED)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        block = []
        for record in ktrace_writer.random_records(rnd, records):
            block.append(record.to_bytes())
            if len(block) == 100_000:
                out.write(b"".join(block))
                block = []
        out.write(b"".join(block))
    tmp.rename(path)
    return time.perf_counter() - start


def best_of(n: int, run) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds) of the fastest of n runs, and a result."""
    best, result = (float("inf"), 0.0), None
    for _ in range(n):
        start, cpu = time.perf_counter(), time.process_time()
        result = run()
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return *best, result


# Run in a fresh interpreter: prints the seconds of the import and of the first call.
FIRST_CALL = """
import sys, time
start = time.perf_counter()
from kreplay.ingest import ktrace
from kreplay.ingest.source import Input
imported = time.perf_counter()
with Input(sys.argv[1]) as source:
    sum(batch.events for batch in ktrace.Reader(source).batches())
print(imported - start, time.perf_counter() - imported)
"""


def first_call(path: Path) -> tuple[float, float]:
    """(import seconds, first read + decode seconds) in a fresh process."""
    cmd = [sys.executable, "-c", FIRST_CALL, str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    imported, called = out.split()
    return float(imported), float(called)


def raw_read(path: Path) -> int:
    data = path.read_bytes()
    hashlib.sha256(data).hexdigest()
    return len(data)


def read_and_decode(path: Path) -> int:
    """Bytes to the store's rows: every batch made (and dropped); the records read."""
    with Input(str(path)) as source:
        reader = ktrace.Reader(source)
        events = sum(batch.events for batch in reader.batches())
    assert events >= reader.records
    return reader.records


def stored_counts(store: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(
            "SELECT events, dropped, (SELECT count(*) FROM events) FROM traces"
        ).fetchone()
    finally:
        con.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--against", type=Path, help="another checkout's ingest too")
    parser.add_argument("--scale", type=int, default=0, help="ingest the file K times over too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    n = args.records
    trace = args.workdir / f"bench-{n}.ktrace"
    made = "reused" if trace.exists() else f"generated in {write_trace(trace, n):.1f} s"
    size = trace.stat().st_size
    print(f"trace: {trace} ({n:,} records, {size / 1e6:,.1f} MB, seed {SEED}, {made})")
    print(f"machine: {os.cpu_count()} cpus, Python {sys.version.split()[0]}")

    # The ingest first, while this process is small: a child's peak RSS (wait4) starts
    # from its parent's RSS at the spawn (vfork shares the parent's memory until exec).
    store, log = args.workdir / "ktrace.duckdb", args.workdir / "ktrace-ingest.log"
    run = measure_ingest(trace, store, log)
    ingest_s, rss_kib = run.seconds, run.rss_kib
    print(f"kreplay ingest (exit {run.code}): {log.read_text().strip()}")
    if run.code != 0:
        return 1
    old = None
    if args.against:
        old = measure_ingest(trace, args.workdir / "kt-against.duckdb", log, args.against)
    events, dropped, rows = stored_counts(store)
    import_s, first_s = first_call(trace)
    read_s, read_cpu, _ = best_of(3, lambda: raw_read(trace))
    decode_s, decode_cpu, records = best_of(3, lambda: read_and_decode(trace))
    assert records == n, (records, n)

    rows_out = [
        ("baseline: read the bytes + sha256, best of 3", read_s, read_cpu),
        ("reader: read + decode to the rows, best of 3", decode_s, decode_cpu),
        ("reader, first call in a fresh process", first_s, None),
        ("kreplay ingest, end to end (child process)", ingest_s, run.cpu),
    ]
    if old:
        rows_out.append((f"kreplay ingest of {args.against}", old.seconds, old.cpu))
    print(f"\n{'measurement':<52} {'seconds':>8} {'CPU s':>6} {'records/s':>12} {'x baseline':>10}")
    for label, seconds, cpu in rows_out:
        cpu_s = "" if cpu is None else f"{cpu:6.2f}"
        print(
            f"{label:<52} {seconds:8.2f} {cpu_s:>6} {n / seconds:12,.0f} {seconds / read_s:10.1f}"
        )
    rate = n / decode_s
    verdict = "PASS" if rate >= TARGET_RECORDS_PER_S else "MISS"
    print(
        f"\nreader >= {TARGET_RECORDS_PER_S / 1e6:.0f} M records/s: {rate / 1e6:.2f} M: {verdict}"
        f"\nimport of the reader (numba) in a fresh process: {import_s:.2f} s"
        f"\nend to end >= {TARGET_END_TO_END / 1e6:.1f} M records/s: {n / ingest_s / 1e6:.2f} M: "
        f"{'PASS' if n / ingest_s >= TARGET_END_TO_END else 'MISS'}"
        f"\npeak RSS of kreplay ingest {rss_kib / 1024:,.0f} MiB"
        + (f" (--against: {old.rss_kib / 1024:,.0f} MiB)" if old else "")
        + f"\ncheck events == records + dropped markers: {events:,} == {n:,} + {dropped:,} "
        f"{'ok' if events == n + dropped == rows else 'WRONG'}"
    )
    if args.scale > 1:
        scale(trace, args, n, ingest_s, rss_kib)
    return 0


def scale(trace: Path, args: argparse.Namespace, n: int, seconds: float, rss_kib: int) -> None:
    """Ingest the file written args.scale times over (made once, beside it)."""
    big = trace.with_name(f"{trace.stem}-x{args.scale}.ktrace")
    if not big.exists():
        tmp = big.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for _ in range(args.scale):
                with open(trace, "rb") as f:
                    while block := f.read(64 << 20):
                        out.write(block)
        tmp.rename(big)
    log = args.workdir / "ktrace-scale.log"
    run = measure_ingest(big, args.workdir / "ktrace-scale.duckdb", log)
    records, per = n * args.scale, run.seconds / (n * args.scale)
    print(
        f"\nscale: {big} ({records:,} records): exit {run.code}, {run.seconds:.2f} s "
        f"({run.cpu:.2f} s CPU), {records / run.seconds:,.0f} records/s, peak RSS "
        f"{run.rss_kib / 1024:,.0f} MiB (x1: {rss_kib / 1024:,.0f} MiB)"
        f"\ntime per record x{args.scale} / x1: {per / (seconds / n):.2f} (target <= 1.2)"
    )


if __name__ == "__main__":
    sys.exit(main())
