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
* the core write floor: DuckDB copying the narrow `event_core` table that ingest wrote
  into a fresh file store (schema 2, issue 16), the cost of writing it without parsing;
* the events write floor: the same for the 33 columns of the `events` view (what schema 1
  stored as one table), the floor the old design could not get under;
* with --against DIR: `kreplay ingest` of the same file by another checkout (DIR, e.g. a
  `git worktree` of the commit before a change), right after, for a same-run baseline.

The ratios against the floors mean the same on a laptop and a server; the issue's targets
(issue 16: at least 1.5 M lines/s end to end, at least 4x the --against code, within 10x
of the raw scan, peak RSS under 1 GiB) are printed PASS/MISS. CPU seconds are printed
beside wall seconds: the machine may be shared. A benchmark, not a test: it exits 0
unless something crashes.
Usage: `python bench/ingest.py [--lines N] [--workdir DIR] [--against DIR]`.
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
TARGET_SCAN_RATIO = 10.0
TARGET_SPEEDUP = 4.0
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


@dataclass
class Run:
    """One `kreplay ingest` in a child process."""

    seconds: float
    cpu: float  # user + system CPU seconds of the child
    rss_kib: int  # its peak RSS
    code: int


def measure_ingest(trace: Path, store: Path, log: Path, checkout: Path | None = None) -> Run:
    """`kreplay ingest` in a child process: of this checkout, or of `checkout` (never
    whatever the environment's editable install points at)."""
    checkout = checkout or Path(__file__).resolve().parents[1]
    remove_store(store)
    cmd = [sys.executable, "-m", "kreplay", "ingest", "--db", str(store), str(trace)]
    cmd[-2:] = [str(store.resolve()), str(trace.resolve())]
    # `python -m` puts the working directory first on sys.path: run in the checkout
    env = dict(os.environ, PYTHONPATH=str(checkout))
    with open(log, "wb") as out:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=checkout)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss, os.waitstatus_to_exitcode(status))


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


def measure_copy_floor(ingested: Path, store: Path, lines: int, table: str) -> Timing:
    """Writing a table (or the events view) of the ingested store into a new store."""
    remove_store(store)
    start = time.perf_counter()
    con = duckdb.connect(str(store))
    con.execute(f"ATTACH '{ingested}' AS ingested (READ_ONLY)")
    con.execute(f"CREATE TABLE copy AS SELECT * FROM ingested.{table}")
    con.close()
    seconds = time.perf_counter() - start
    what = "event_core table" if table == "event_core" else "events view (33 columns)"
    return Timing(f"write floor: copy of the {what}", seconds, lines)


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
    n: int, timings: list[Timing], runs: dict[str, Run], stored: Stored, against: str
) -> list[str]:
    new, old = runs["new"], runs.get("old")
    scan = timings[0]
    rate = n / new.seconds
    rows = [f"{'measurement':<52} {'seconds':>8} {'CPU s':>7} {'lines/s':>12}"]
    rows += [f"{t.label:<52} {t.seconds:8.2f} {'':>7} {t.rate:12,.0f}" for t in timings]
    for key, label in (("new", "kreplay ingest, end to end (child process)"), ("old", against)):
        if key in runs:
            r = runs[key]
            rows.append(f"{label:<52} {r.seconds:8.2f} {r.cpu:7.2f} {n / r.seconds:12,.0f}")
    total = stored.events + stored.continuations + stored.parse_errors
    kinds = ", ".join(f"{k} {c:,}" for k, c in stored.kinds)
    names = ("raw scan", "raw write floor", "core write floor", "events-view write floor")
    ratios = ", ".join(
        f"ingest / {name} {new.seconds / t.seconds:.1f}x"
        for name, t in zip(names, timings, strict=False)
    )
    out = rows + [
        "",
        ratios,
        f"peak RSS of kreplay ingest {new.rss_kib / 1024:,.0f} MiB"
        + (f" ({against}: {old.rss_kib / 1024:,.0f} MiB)" if old else ""),
        f"time per line {new.seconds / n * 1e9:.0f} ns wall, {new.cpu / n * 1e9:.0f} ns CPU",
        f"check traces.lines == {n:,}: {stored.lines:,} {'ok' if stored.lines == n else 'WRONG'}",
        f"check events + continuations + parse_errors == {n:,}: {stored.events:,} + "
        f"{stored.continuations:,} + {stored.parse_errors:,} = {total:,} "
        f"{'ok' if total == n else 'WRONG'}",
        f"parse errors: {stored.parse_errors:,}",
        f"trace: {stored.pids:,} pids, {stored.tids:,} threads; {kinds}",
        "",
        f"{'target (issue 16)':<34} {'measured':<22} verdict",
        target_line(
            f"end to end >= {TARGET_LINES_PER_S / 1e6:.1f} M lines/s",
            f"{rate / 1e6:.2f} M lines/s",
            rate >= TARGET_LINES_PER_S,
        ),
        target_line(
            f"within {TARGET_SCAN_RATIO:.0f}x of the raw scan",
            f"{new.seconds / scan.seconds:.1f}x",
            new.seconds / scan.seconds <= TARGET_SCAN_RATIO,
        ),
        target_line(
            "peak RSS < 1 GiB",
            f"{new.rss_kib / 1024:,.0f} MiB",
            new.rss_kib / 1024 < TARGET_RSS_MIB,
        ),
    ]
    if old:
        wall, cpu = old.seconds / new.seconds, old.cpu / new.cpu
        out.append(
            target_line(
                f">= {TARGET_SPEEDUP:.0f}x the --against code",
                f"{wall:.1f}x wall, {cpu:.1f}x CPU",
                wall >= TARGET_SPEEDUP,
            )
        )
    return out


def target_line(target: str, measured: str, ok: bool) -> str:
    return f"{target:<34} {measured:<22} {'PASS' if ok else 'MISS'}"


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
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout whose `kreplay ingest` runs too (same-run baseline)",
    )
    parser.add_argument(
        "--no-floors", action="store_true", help="skip the write floors (for large --lines)"
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
        f"duckdb {duckdb.__version__}, load {os.getloadavg()[0]:.1f}"
    )

    # The ingests first, while this process is small: the child starts as a vfork of it, and
    # Linux counts the parent's peak RSS up to the exec in the child's ru_maxrss.
    store, log = args.workdir / "ingest.duckdb", args.workdir / "ingest.log"
    runs = {"new": measure_ingest(trace, store, log)}
    print(f"kreplay ingest (exit {runs['new'].code}): {log.read_text().strip()}")
    if runs["new"].code != 0:
        return 1
    against = f"kreplay ingest of {args.against}"
    if args.against:
        old_store, old_log = args.workdir / "ingest-against.duckdb", args.workdir / "against.log"
        runs["old"] = measure_ingest(trace, old_store, old_log, args.against)
        print(f"{against} (exit {runs['old'].code}): {old_log.read_text().strip()}")
        remove_store(old_store)
    timings = [measure_scan(trace, args.lines)]
    if not args.no_floors:
        timings += [
            measure_write_floor(trace, args.workdir / "write-floor.duckdb", args.lines),
            measure_copy_floor(store, args.workdir / "core-floor.duckdb", args.lines, "event_core"),
            measure_copy_floor(store, args.workdir / "events-floor.duckdb", args.lines, "events"),
        ]
    print("\n".join(["", *report_lines(args.lines, timings, runs, read_store(store), against)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
