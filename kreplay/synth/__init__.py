"""Synthetic workloads: `kreplay synth SHAPE --seed N --scale N -o FILE` (docs/synth.md).

Each shape is a seeded simulation of a FreeBSD workload printed exactly as
`kdump -H -T -c` prints it, with synthetic timestamps: the same seed and scale give the
same bytes on every run and machine. A shape also names the machine to replay it on,
which goes into the trace's sidecar (<name>.toml, the format of traces/).

    render.py   kdump text: headers, arguments, RET values, GIO dumps, the clock
    build.py    buildworld (also the ingest bench's workload), with build_programs.py (what
                the build runs) and build_episodes.py (what a program does meanwhile)
    sim.py      a seeded scheduler of traced threads and the libc/libthr call sequences
    shapes.py   thread-storm, threadpool-server, numa-migrate, memory-pressure, idle-swap
"""

import bz2
import gzip
import lzma
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kreplay.errors import KreplayError, UsageError
from kreplay.ingest.sidecar import sidecar_path
from kreplay.synth import shapes
from kreplay.synth.build import TraceGenerator
from kreplay.synth.recording import add_snapshots

BUILD_LINES = 50_000  # buildworld lines per unit of scale
BUILD_JOB_DIVISOR = 8  # buildworld's jobs are 8 times shorter than the bench's


def buildworld(seed: int, scale: int) -> list[str]:
    """The bench's build with shorter jobs: more fork/exec/exit/wait4 per line."""
    return TraceGenerator(seed, BUILD_JOB_DIVISOR).run(BUILD_LINES * scale)


@dataclass(frozen=True)
class Shape:
    name: str
    summary: str
    generate: Callable[[int, int], list[str]]
    recording: str  # the ktrace command whose output the shape imitates
    machine: str = "amd64"
    settings: dict[str, int] = field(default_factory=dict)
    cpu_domains: tuple[str, ...] = ()  # cpus of each NUMA domain, when more than one


CFW = "ktrace -i -d -t cfw"
SHAPES = {
    s.name: s
    for s in (
        Shape(
            "buildworld",
            "make -j16: fork/vfork/execve/exit/wait4 storms, rtld mappings, page faults, "
            "short-lived threads, GIO text and hex dumps",
            buildworld,
            "ktrace -i -t +f",
        ),
        Shape(
            "thread-storm",
            "stress-ng --pthread 4: thr_new/thr_exit churn with thousands of live threads",
            shapes.thread_storm,
            CFW,
        ),
        Shape(
            "threadpool-server",
            "a Java server on a 14.x kernel: long-lived pools, idle gaps, bursts of "
            "short-lived workers",
            shapes.threadpool_server,
            CFW,
        ),
        Shape(
            "numa-migrate",
            "threads created on domain 0's cpus while user memory fills domain 0, exiting "
            "on domain 1's cpus",
            shapes.numa_migrate,
            CFW,
            machine="amd64-numa2",
            settings={"mem_per_domain_mb": shapes.NUMA_MEM_MB},
            cpu_domains=shapes.NUMA2_CPU_DOMAINS,
        ),
        Shape(
            "memory-pressure",
            "stress-ng --vm on a 64 MiB machine: sparse faults exhaust free memory and "
            "reservations are reclaimed",
            shapes.memory_pressure,
            CFW,
            settings={"mem_per_domain_mb": shapes.PRESSURE_MEM_MB},
        ),
        Shape(
            "idle-swap",
            "daemons asleep on domain 0 while a memory hog fills it: the swapper takes their "
            "kernel stacks, which they need back when they wake with domain 0 still full",
            shapes.idle_swap,
            CFW,
            machine="amd64-numa2",
            settings={"mem_per_domain_mb": shapes.SWAP_MEM_MB},
            cpu_domains=shapes.NUMA2_CPU_DOMAINS,
        ),
    )
}


def synthesize(shape: str, seed: int, scale: int) -> list[str]:
    """The trace's lines (without line ends)."""
    if shape not in SHAPES:
        raise UsageError(f"unknown shape {shape!r} (shapes: {', '.join(SHAPES)})")
    if scale < 1 or seed < 0:
        raise UsageError(f"need --scale >= 1 and --seed >= 0, not {scale} and {seed}")
    return SHAPES[shape].generate(seed, scale)


def write(shape: str, seed: int, scale: int, path: str, stdout: BinaryIO | None = None) -> int:
    """Write the trace atomically, compressed by the name (.gz, .xz, .bz2, with no
    timestamp or file name inside, so that the file is byte-identical too); to `stdout`,
    uncompressed, when the path is "-". Its lines."""
    lines = synthesize(shape, seed, scale)
    data = ("\n".join(lines) + "\n").encode("ascii")
    if path == "-":
        if stdout is None:
            raise UsageError("the trace goes to stdout (-o -), but no stdout was given")
        stdout.write(data)
        return len(lines)
    if path.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    elif path.endswith(".xz"):
        data = lzma.compress(data, preset=9)
    elif path.endswith(".bz2"):
        data = bz2.compress(data, 9)
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise KreplayError(f"cannot write the trace: {e.strerror}", path=path) from None
    return len(lines)


def sidecar(
    shape: str, seed: int, scale: int, lines: int, path: str, snapshots: bool = False
) -> str:
    """The provenance and replay machine of a synthesized trace, as traces/ keeps them."""
    s = SHAPES[shape]
    command = f"kreplay synth {shape} --seed {seed} --scale {scale}"
    command += f"{' --snapshots' if snapshots else ''} -o {path}"
    out = [
        f"# Synthetic, from `kreplay synth`: {s.summary}.",
        f"# Printed as `kdump -H -T -c` prints a `{s.recording}` recording.",
        "[provenance]",
        'kind = "synthetic"',
        'generator = "kreplay synth (kreplay/synth)"',
        f'shape = "{shape}"',
        f"seed = {seed}",
        f"scale = {scale}",
        f"lines = {lines}",
        f"command = {_toml_string(command)}",
        f'recording = "{s.recording}; kdump -H -T -c"',
        "",
        "[replay]",
        f'machine = "{s.machine}"',
    ]
    if s.settings:
        pairs = ", ".join(f"{k} = {v}" for k, v in sorted(s.settings.items()))
        out.append(f"set = {{ {pairs} }}")
    if s.cpu_domains:
        out.append("cpu_domains = [" + ", ".join(f'"{c}"' for c in s.cpu_domains) + "]")
    return "\n".join(out) + "\n"


def _toml_string(text: str) -> str:
    """A TOML basic string (the output path may hold quotes or backslashes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Written:
    path: str
    shape: str
    seed: int
    scale: int
    lines: int
    sidecar: str | None


def synth_file(
    shape: str,
    seed: int,
    scale: int,
    path: str,
    with_sidecar: bool,
    sidecar_to: str | None = None,
    stdout: BinaryIO | None = None,
    snapshots: bool = False,
) -> Written:
    """`kreplay synth`: the trace (to `stdout` for "-") and, unless told not to, its
    sidecar: at `sidecar_to`, else next to the trace. A trace on stdout has no place
    beside it, so its sidecar must be named. `snapshots`: also the counters a box would
    show before and after the workload (recording.py), beside the trace."""
    if snapshots and (path == "-" or not with_sidecar or sidecar_to):
        raise UsageError("--snapshots goes beside a trace file and its own sidecar")
    if path == "-" and with_sidecar and sidecar_to is None:
        raise UsageError(
            "-o - writes the trace to stdout: name the sidecar's file with --sidecar-to FILE, "
            "or pass --no-sidecar"
        )
    lines = write(shape, seed, scale, path, stdout)
    side = (sidecar_to or sidecar_path(path)) if with_sidecar else None
    if side is not None:
        try:
            Path(side).write_text(sidecar(shape, seed, scale, lines, path, snapshots))
        except OSError as e:
            raise KreplayError(f"cannot write the sidecar: {e.strerror}", path=side) from None
    if snapshots:
        add_snapshots(shape, seed, scale, path)
    return Written(path, shape, seed, scale, lines, side)
