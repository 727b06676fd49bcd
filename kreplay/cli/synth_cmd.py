"""`kreplay synth`: write a synthetic workload (kreplay/synth, docs/synth.md)."""

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
    help="The trace file (.gz, .xz, .bz2: compressed).",
)
@click.option(
    "--sidecar/--no-sidecar",
    default=True,
    show_default=True,
    help="Also write <name>.toml next to it: provenance and the machine to replay it on.",
)
@json_option
def synth_cmd(shape, seed, scale, output, sidecar, as_json) -> None:
    """Write a synthetic workload as `kdump -H -T -c` prints it: the same bytes for
    the same shape, seed and scale."""
    done = synth_file(shape, seed, scale, output, sidecar)
    if as_json:
        click.echo(text.to_json(asdict(done)), nl=False)
        return
    also = f", sidecar {done.sidecar}" if done.sidecar else ""
    click.echo(f"{done.path}: {shape}, seed {seed}, scale {scale}: {done.lines:,} lines{also}")
