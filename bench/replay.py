"""Replay benchmark: model ops per second, against a bare loop over the same op columns.

Builds (seeded) a 1,000,000-op workload of thread churn and page faults as lifecycle op
columns, replays it on the amd64 machine for a revision (default D38852), and in the same
run times a loop that iterates the same columns and does nothing else, and the same replay
with the model run from its Python source (KREPLAY_PURE_PYTHON, in a child process: a
process loads one build of the model), alternating, best of 3 each. Times are CPU seconds
of the process (time.process_time): the machine is shared, and wall time measures the
neighbours. `--against DIR` also replays the same workload on another checkout's kreplay
(its own compiled model, e.g. a `git worktree` of the commit before a change), alternating
with this one, and prints the ratio: the before/after figure of a model change.
Prints the rates and ratios; the issue's target is at least 300,000 ops/s for D38852. A
benchmark, not a test: it exits 0 unless something crashes.
Usage: `python bench/replay.py [--ops N] [--rev NAME] [--repeat N] [--against DIR]`.
"""

import argparse
import os
import random
import subprocess
import sys
import time

try:
    from kreplay import ops as kops
except ImportError:  # --against a checkout from before kreplay/ops.py (issue 17)
    from kreplay import lifecycle as kops  # type: ignore[no-redef]
from kreplay.model import native
from kreplay.model.machine import Machine, machine_config
from kreplay.replay import run
from kreplay.revisions import lookup, registry

TARGET_OPS_PER_S = 300_000


def workload(n_ops: int, seed: int = 2026) -> kops.Derived:
    """Processes fork, fault in pages, spawn and end threads, exec, exit and are reaped."""
    rng = random.Random(seed)
    ops = kops.Ops()
    procs: dict[int, dict] = {}
    next_pid, next_tid, tick = 1000, 100_000, 0
    while len(ops) < n_ops:
        tick += 1
        cpu = rng.randrange(8)
        if len(procs) < 64 or rng.random() < 0.002:
            pid, next_pid, next_tid = next_pid, next_pid + 1, next_tid + 1
            procs[pid] = {"threads": [next_tid], "page": 0x800000 + rng.randrange(4096)}
            ops.add(kops.PROC_NEW, pid, next_tid, cpu, tick, len(ops), arg=1)
            continue
        pid = rng.choice(list(procs))
        p, r = procs[pid], rng.random()
        if r < 0.80:  # first touch of the next page of the process's heap
            p["page"] += 1
            ops.add(kops.FAULT, pid, p["threads"][0], cpu, tick, len(ops), arg=p["page"])
        elif r < 0.90:
            next_tid += 1
            p["threads"].append(next_tid)
            ops.add(kops.THREAD_NEW, pid, next_tid, cpu, tick, len(ops))
        elif r < 0.98 and len(p["threads"]) > 1:
            ops.add(kops.THREAD_EXIT, pid, p["threads"].pop(), cpu, tick, len(ops))
        elif r < 0.99:
            p["threads"] = p["threads"][:1]
            ops.add(kops.EXEC, pid, p["threads"][0], cpu, tick, len(ops))
        else:
            ops.add(kops.PROC_EXIT, pid, p["threads"][0], cpu, tick, len(ops))
            ops.add(kops.REAP, pid, 0, cpu, tick, len(ops), arg=1)
            del procs[pid]
    return kops.Derived(ops, kops.Preflight(), [])


def bare_loop(ops: kops.Ops) -> int:
    n = 0
    for _args in zip(ops.kind, ops.pid, ops.tid, ops.cpu, ops.tick, ops.arg, ops.arg2, strict=True):
        n += 1
    return n


def replay_seconds(derived: kops.Derived, rev: str) -> tuple[float, str]:
    machine = Machine(machine_config("amd64", {}), lookup(registry(), rev).policy)
    start = time.process_time()
    outcome = run(machine, derived)
    return time.process_time() - start, outcome.status


def child_seconds(args: argparse.Namespace, env: dict[str, str]) -> float:
    """One replay of the workload in a child process with this environment."""
    cmd = [sys.executable, __file__, "--ops", str(args.ops), "--rev", args.rev, "--child"]
    return float(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)


def source_seconds(args: argparse.Namespace) -> float:
    """One replay in a child process whose model runs from source."""
    return child_seconds(args, os.environ | {native.PURE_ENV: "1"})


def against_seconds(args: argparse.Namespace) -> float:
    """One replay in a child process on the other checkout's kreplay (its compiled model)."""
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    return child_seconds(args, env | {"PYTHONPATH": os.path.abspath(args.against)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--rev", default="D38852")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--against", metavar="DIR", help="another checkout to compare with")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    derived = workload(args.ops)
    n = len(derived.ops)
    if args.child:
        print(replay_seconds(derived, args.rev)[0])
        return
    bare = model = source = against = float("inf")
    for _ in range(args.repeat):  # best of N, alternating: this machine is shared
        start = time.process_time()
        bare_loop(derived.ops)
        bare = min(bare, time.process_time() - start)
        seconds, status = replay_seconds(derived, args.rev)
        model = min(model, seconds)
        source = min(source, source_seconds(args))
        if args.against:
            against = min(against, against_seconds(args))
    print(
        f"workload: {n:,} ops, revision {args.rev}, machine amd64, outcome {status}, "
        f"best of {args.repeat}; this process's model: {native.BUILD}"
    )
    print(f"{'measurement':40s} {'CPU s':>8s} {'ops/s':>12s}")
    print(f"{'bare loop over the op columns':40s} {bare:8.2f} {n / bare:12,.0f}")
    print(f"{'replay, model from source (baseline)':40s} {source:8.2f} {n / source:12,.0f}")
    this = "replay, model compiled" if native.why_source() is None else "replay, model from source"
    print(f"{this:40s} {model:8.2f} {n / model:12,.0f}")
    if args.against:
        print(f"{'replay on ' + args.against:40s} {against:8.2f} {n / against:12,.0f}")
        print(f"this / {args.against}: {against / model:.1%} of its ops/s")
    verdict = "PASS" if n / model >= TARGET_OPS_PER_S else "MISS"
    print(
        f"replay / bare loop: {model / bare:.1f}x slower; source / this: {source / model:.2f}x; "
        f"target >= {TARGET_OPS_PER_S:,} ops/s: {verdict}"
    )


if __name__ == "__main__":
    main()
