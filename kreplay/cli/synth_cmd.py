"""`kreplay synth`: write a synthetic workload (kreplay/synth, docs/synth.md)."""

import sys
from dataclasses import asdict

import click

from kreplay.cli import cli, json_option
from kreplay.report import text
from kreplay.synth import SHAPES, synth_file


@cli.command("synth")
@click.argument("shape", type=click.Choice(list(SHAPES)))
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True)
@click.option(
    "--scale", type=click.IntRange(min=1), default=1, show_default=True, help="Multiplies the work."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The trace file (.gz, .xz, .bz2: compressed; - for stdout, uncompressed).",
)
@click.option(
    "--sidecar/--no-sidecar",
    default=True,
    show_default=True,
    help="Also write the sidecar: provenance and the machine to replay it on.",
)
@click.option(
    "--sidecar-to",
    type=click.Path(dir_okay=False),
    help="The sidecar's file (default: <name>.toml next to the trace; needed with -o -).",
)
@click.option(
    "--snapshots",
    is_flag=True,
    help="Also write the counters a box would show before and after the workload, as "
    "kreplay's recording script does, from what the simulation counted (kreplay validate).",
)
@json_option
def synth_cmd(shape, seed, scale, output, sidecar, sidecar_to, snapshots, as_json) -> None:
    """Write a synthetic workload as `kdump -H -T -c` prints it: the same bytes for
    the same shape, seed and scale. With -o - the trace goes to stdout and what was
    written is said on stderr."""
    done = synth_file(shape, seed, scale, output, sidecar, sidecar_to, sys.stdout.buffer, snapshots)
    to_stderr = output == "-"
    if as_json:
        click.echo(text.to_json(asdict(done)), nl=False, err=to_stderr)
        return
    also = f", sidecar {done.sidecar}" if done.sidecar else ""
    where = "stdout" if to_stderr else done.path
    click.echo(
        f"{where}: {shape}, seed {seed}, scale {scale}: {done.lines:,} lines{also}", err=to_stderr
    )
