"""Check benchmark: the nightly matrix with one worker and with two, and a cached diff.

Runs `kreplay check` over every trace in traces/ x every built-in revision with `--jobs 1`
and `--jobs 2` in the same run, alternating, best of 3 each (in-process calls, against a
fresh store and golden folder in a work dir; a first, untimed pass ingests the traces,
derives their ops and writes the goldens). Prints both wall times and the speed-up (the
issue's target: >= 1.7 on 2 cores) and the speed-up of each alternating pair, then times a
second `kreplay diff base D38852` served from the results cache against the first one. A
benchmark, not a test. Usage: `python bench/check.py [--workdir DIR]`.
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from kreplay.cli import cli
from kreplay.revisions import BUILTIN

REPO = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 1.7


def timed(args: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    result = CliRunner().invoke(cli, args)
    return time.perf_counter() - start, result.exit_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="kreplay-bench-check-"))
    os.environ.pop("CI", None)
    store, golden = str(work / "bench.duckdb"), str(work / "golden")
    shutil.rmtree(golden, ignore_errors=True)
    for suffix in ("", ".wal"):
        if os.path.exists(store + suffix):
            os.remove(store + suffix)
    common = ["--db", store, "--traces", str(REPO / "traces"), "--golden", golden]
    setup, _ = timed(["golden", "update", "--jobs", "2", *common])
    ones, twos = [], []
    for _ in range(3):  # alternating, so that a drift of the machine's speed hits both
        ones.append(timed(["check", "--jobs", "1", *common]))
        twos.append(timed(["check", "--jobs", "2", *common]))
    (one, code1), (two, code2) = min(ones), min(twos)
    pairs = sorted(a / b for (a, _), (b, _) in zip(ones, twos, strict=True))
    first_diff, _ = timed(["diff", "base", "D38852", "--db", store, "--set", "uma_burst=17"])
    cached_diff, _ = timed(["diff", "base", "D38852", "--db", store, "--set", "uma_burst=17"])
    n_traces = len([p for p in (REPO / "traces").iterdir() if ".kdump" in p.name])
    print(
        f"matrix: {n_traces} traces x {len(BUILTIN)} built-in revisions; set-up (ingest, ops, "
        f"goldens) "
        f"{setup:.2f} s"
    )
    print(f"{'measurement':44s} {'seconds':>8s}")
    print(f"{'kreplay check --jobs 1 (best of 3)':44s} {one:8.2f}   exit {code1}")
    print(f"{'kreplay check --jobs 2 (best of 3)':44s} {two:8.2f}   exit {code2}")
    print(f"{'kreplay diff base D38852 (replays)':44s} {first_diff:8.2f}")
    print(f"{'kreplay diff base D38852 (from the cache)':44s} {cached_diff:8.2f}")
    speedup = one / two
    verdict = "PASS" if speedup >= TARGET_SPEEDUP else "MISS"
    print(f"speed-up with 2 jobs: {speedup:.2f}x (target >= {TARGET_SPEEDUP}): {verdict}")
    print(f"speed-up of each alternating pair: {', '.join(f'{p:.2f}x' for p in pairs)}")


if __name__ == "__main__":
    main()
