"""Ingest benchmark: how fast `kreplay ingest` turns kdump text into a store.

It writes (once per size, seeded, so the same bytes on every run and machine) a synthetic
`kdump -H -T -c` trace of a parallel FreeBSD build -- make, sh, cc, ld.lld, rustc and
friends forking, exec'ing, creating and ending threads, mapping memory, taking page
faults, doing I/O with GIO text and hex dumps -- and then measures, in the same run:

* kreplay ingest end to end, as a user runs it (a child process): wall time, lines/s and
  the child's peak RSS;
* the raw scan floor: DuckDB counting the file's lines with the CSV reader ingest uses.
  No parse can be faster than reading its input, so ingest time / scan time is the cost of
  the parse in units of this machine's I/O and DuckDB speed;
* the write floor: DuckDB storing the raw, unparsed lines in a fresh file store, the cost
  of writing a store at all;
* the events write floor: DuckDB copying the `events` table that ingest wrote into a fresh
  file store, the cost of writing that table (its ~30 columns) without parsing anything.

The ratios against the floors mean the same on a laptop and a server; the issue's
absolute targets (at least 1.5 M lines/s end to end, within 12x of the raw scan, peak RSS
under 1 GiB) are printed PASS/MISS. A benchmark, not a test: it exits 0 unless
something crashes. Usage: `python bench/ingest.py [--lines N] [--workdir DIR]`.
"""

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from kreplay.synth.build import TraceGenerator

SEED = 2026  # the same bytes on every run and machine
CHUNK_LINES = 250_000  # lines per write(): big joined chunks keep generation fast

DEFAULT_LINES = 5_000_000
TARGET_LINES_PER_S = 1.5e6
TARGET_SCAN_RATIO = 12.0
TARGET_RSS_MIB = 1024


def write_trace(path: Path, n_lines: int) -> float:
    """Write the first n_lines of the seeded build atomically (a partial file is never
    reused); seconds taken."""
    start = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="ascii", newline="\n") as f:
        for chunk in TraceGenerator(SEED).generate(n_lines, CHUNK_LINES):
            f.write("\n".join(chunk))
            f.write("\n")
    os.replace(tmp, path)
    return time.perf_counter() - start


# ------------------------------------------------------------------ measurements


@dataclass
class Timing:
    label: str
    seconds: float
    lines: int

    @property
    def rate(self) -> float:
        return self.lines / self.seconds


def read_csv_sql(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    return (
        f"read_csv('{quoted}', columns={{'line': 'VARCHAR'}}, delim='\x01', quote='', "
        "escape='', header=false, auto_detect=false, new_line='\\n')"
    )


def remove_store(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)


def measure_ingest(trace: Path, store: Path, log: Path) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of `kreplay ingest` in a child process."""
    remove_store(store)
    cmd = [sys.executable, "-m", "kreplay", "ingest", "--db", str(store), str(trace)]
    with open(log, "wb") as out:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    return seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def measure_scan(trace: Path, lines: int) -> Timing:
    """Best of 3 after one warm-up run that fills the page cache."""
    con = duckdb.connect()
    sql = f"SELECT count(*) FROM {read_csv_sql(trace)}"
    con.execute(sql).fetchone()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        con.execute(sql).fetchone()
        best = min(best, time.perf_counter() - start)
    con.close()
    return Timing("raw scan: count(*) over read_csv, best of 3", best, lines)


def measure_write_floor(trace: Path, store: Path, lines: int) -> Timing:
    remove_store(store)
    start = time.perf_counter()
    con = duckdb.connect(str(store))
    con.execute(f"CREATE TABLE raw AS SELECT line FROM {read_csv_sql(trace)}")
    con.close()
    return Timing("write floor: CREATE TABLE raw AS read_csv", time.perf_counter() - start, lines)


def measure_events_floor(ingested: Path, store: Path, lines: int) -> Timing:
    """Writing the events table ingest produced, read back from its store, into a new one."""
    remove_store(store)
    start = time.perf_counter()
    con = duckdb.connect(str(store))
    con.execute(f"ATTACH '{ingested}' AS ingested (READ_ONLY)")
    con.execute("CREATE TABLE events AS SELECT * FROM ingested.events")
    con.close()
    seconds = time.perf_counter() - start
    return Timing("events write floor: copy of the events table", seconds, lines)


@dataclass
class Stored:
    lines: int
    events: int
    continuations: int
    parse_errors: int
    pids: int
    tids: int
    kinds: list[tuple[str, int]]


def read_store(store: Path) -> Stored:
    con = duckdb.connect(str(store), read_only=True)
    try:
        counts = con.execute(
            "SELECT lines, events, continuations, parse_errors FROM traces"
        ).fetchone()
        pids, tids = con.execute(
            "SELECT count(DISTINCT pid), count(DISTINCT (pid, tid)) FROM events"
        ).fetchone()
        kinds = con.execute(
            "SELECT kind, count(*) FROM events GROUP BY kind ORDER BY count(*) DESC"
        ).fetchall()
    finally:
        con.close()
    return Stored(*counts, pids, tids, kinds)


# ------------------------------------------------------------------ report


def report_lines(
    n: int, timings: list[Timing], ingest: Timing, rss_kib: int, stored: Stored
) -> list[str]:
    scan, floor, events_floor = timings
    rss_mib = rss_kib / 1024
    scan_ratio, floor_ratio = ingest.seconds / scan.seconds, ingest.seconds / floor.seconds
    events_ratio = ingest.seconds / events_floor.seconds
    rows = [f"{'measurement':<48} {'seconds':>8} {'lines/s':>12}"]
    rows += [
        f"{t.label:<48} {t.seconds:8.2f} {t.rate:12,.0f}"
        for t in (scan, floor, events_floor, ingest)
    ]
    total = stored.events + stored.continuations + stored.parse_errors
    kinds = ", ".join(f"{k} {c:,}" for k, c in stored.kinds)
    return rows + [
        "",
        f"ingest / raw scan {scan_ratio:.1f}x, ingest / write floor {floor_ratio:.1f}x, "
        f"ingest / events write floor {events_ratio:.1f}x, "
        f"peak RSS of kreplay ingest {rss_mib:,.0f} MiB",
        f"check traces.lines == {n:,}: {stored.lines:,} {'ok' if stored.lines == n else 'WRONG'}",
        f"check events + continuations + parse_errors == {n:,}: {stored.events:,} + "
        f"{stored.continuations:,} + {stored.parse_errors:,} = {total:,} "
        f"{'ok' if total == n else 'WRONG'}",
        f"parse errors: {stored.parse_errors:,}",
        f"trace: {stored.pids:,} pids, {stored.tids:,} threads; {kinds}",
        "",
        f"{'target (issue)':<34} {'measured':<16} verdict",
        target_line(
            f"end to end >= {TARGET_LINES_PER_S / 1e6:.1f} M lines/s",
            f"{ingest.rate / 1e6:.2f} M lines/s",
            ingest.rate >= TARGET_LINES_PER_S,
        ),
        target_line(
            f"within {TARGET_SCAN_RATIO:.0f}x of the raw scan",
            f"{scan_ratio:.1f}x",
            scan_ratio <= TARGET_SCAN_RATIO,
        ),
        target_line("peak RSS < 1 GiB", f"{rss_mib:,.0f} MiB", rss_mib < TARGET_RSS_MIB),
    ]


def target_line(target: str, measured: str, ok: bool) -> str:
    return f"{target:<34} {measured:<16} {'PASS' if ok else 'MISS'}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lines",
        type=int,
        default=DEFAULT_LINES,
        help=f"trace size in lines (default {DEFAULT_LINES:,})",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(__file__).parent / "out",
        help="where the trace and stores go (default bench/out)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    trace = args.workdir / f"bench-HTc-{args.lines}.kdump"
    made = "reused" if trace.exists() else f"generated in {write_trace(trace, args.lines):.1f} s"
    print(f"trace: {trace} ({args.lines:,} lines, {trace.stat().st_size / 1e6:,.1f} MB, {made})")
    print(
        f"machine: {os.cpu_count()} cpus, Python {sys.version.split()[0]}, "
        f"duckdb {duckdb.__version__}"
    )

    # The ingest first, while this process is small: the child starts as a vfork of it, and
    # Linux counts the parent's peak RSS up to the exec in the child's ru_maxrss.
    store, log = args.workdir / "ingest.duckdb", args.workdir / "ingest.log"
    seconds, rss_kib, code = measure_ingest(trace, store, log)
    print(f"kreplay ingest (exit {code}): {log.read_text().strip()}")
    if code != 0:
        return 1
    ingest = Timing("kreplay ingest, end to end (child process)", seconds, args.lines)
    timings = [
        measure_scan(trace, args.lines),
        measure_write_floor(trace, args.workdir / "write-floor.duckdb", args.lines),
        measure_events_floor(store, args.workdir / "events-floor.duckdb", args.lines),
    ]
    print("\n".join(["", *report_lines(args.lines, timings, ingest, rss_kib, read_store(store))]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
