"""Ops-read benchmark: how fast replay and check get a stored trace's ops.

Every `replay` or `check` of a trace whose ops are not cached reads its lifecycle events
from the store and derives the ops (kreplay.lifecycle.derive_trace: store.lifecycle_events,
store.idle_gaps, store.calls_without_ret, then the pure derivation). This ingests the
given traces (default: every trace in traces/) into a fresh store, then times derive_trace
of each, CPU seconds of the process (time.process_time), best of --repeat. `--against DIR`
runs the same measurement in another checkout (a child process started in DIR, so that its
kreplay is imported), alternating with this one: the before/after figure of a store change.
Prints seconds per trace, the total, and the ratio. A benchmark, not a test.
Usage: `python bench/ops_read.py [TRACE ...] [--repeat N] [--against DIR]`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(paths: list[str], repeat: int) -> dict[str, float]:
    from kreplay import lifecycle
    from kreplay.ingest import ingest
    from kreplay.store import Store

    with (
        tempfile.TemporaryDirectory(prefix="kreplay-opsread-") as tmp,
        Store(str(Path(tmp) / "bench.duckdb")) as store,
    ):
        traces = [ingest(store, p).trace for p in paths]
        out = {}
        for t in traces:
            best = float("inf")
            for _ in range(repeat):
                start = time.process_time()
                lifecycle.derive_trace(store, t.trace_id, t.options)
                best = min(best, time.process_time() - start)
            out[t.name] = best
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", metavar="DIR")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    paths = [str(Path(p).resolve()) for p in args.traces] or sorted(
        str(p) for p in (REPO / "traces").iterdir() if p.name.endswith((".kdump", ".kdump.gz"))
    )
    if args.child:
        print(json.dumps(measure(paths, args.repeat)))
        return
    here = measure(paths, args.repeat)
    there = None
    if args.against:
        child = [sys.executable, str(Path(__file__).resolve()), "--child", "--repeat"]
        proc = subprocess.run(
            [*child, str(args.repeat), *paths], cwd=args.against, capture_output=True, text=True
        )
        if proc.returncode:
            sys.exit(f"--against {args.against}: {proc.stderr.strip().splitlines()[-1]}")
        there = json.loads(proc.stdout)
    print(f"{'trace':<28} {'this s':>9}" + (f" {'against s':>10} {'ratio':>6}" if there else ""))
    for name, secs in here.items():
        line = f"{name:<28} {secs:9.3f}"
        if there:
            line += f" {there[name]:10.3f} {there[name] / secs:6.2f}"
        print(line)
    total = sum(here.values())
    line = f"{'total':<28} {total:9.3f}"
    if there:
        other = sum(there.values())
        line += f" {other:10.3f} {other / total:6.2f}"
    print(line)


if __name__ == "__main__":
    main()
