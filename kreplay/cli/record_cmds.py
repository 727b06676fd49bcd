"""Commands of a recording on a FreeBSD machine: record (the script), snapshot (what a
captured counter file, or a recording's sidecar, holds) and validate (the model against
the recording's snapshots)."""

import click

from kreplay import work
from kreplay.cli import _note, _registry, cli, db_option, json_option, revisions_option
from kreplay.errors import EXIT_DIFFERENCES
from kreplay.record import script_info, script_text
from kreplay.report import text
from kreplay.report.snapshot import capture_view, recording_view, validation_view
from kreplay.snapshot import FORMATS, read_capture
from kreplay.snapshot.recording import read_recording
from kreplay.store import Store, resolve_db
from kreplay.validate import validate


@cli.command("record")
@click.option("--script", "print_script", is_flag=True, help="Print the recording script.")
@json_option
def record_cmd(print_script, as_json) -> None:
    """The script that records a workload on FreeBSD: counters before and after, the
    workload under ktrace, kdump text and a sidecar (docs/recording.md). Without --script:
    where the installed script is and how to run it."""
    if print_script:
        script = script_text()
        click.echo(text.to_json({"script": script}) if as_json else script, nl=False)
        return
    info = script_info()
    click.echo(text.to_json(info) if as_json else text.facts(list(info.items())), nl=False)


@cli.command("snapshot")
@click.argument("path", metavar="FILE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="The capture's format (auto: told from its first line).",
)
@json_option
def snapshot_cmd(path, fmt, as_json) -> None:
    """What a captured file holds, parsed: `vmstat -z` (one entry per zone, every column by
    its header name), `vmstat --libxo json -z`, or sysctl output. A recording's sidecar
    (.toml): each capture of its snapshots and the change of each counter. A line that does
    not parse is an error naming it (exit 2)."""
    if path.endswith(".toml"):
        click.echo(recording_view(read_recording(path), as_json), nl=False)
        return
    click.echo(capture_view(read_capture(path, fmt), as_json), nl=False)


@cli.command("validate")
@click.argument("trace")
@click.option(
    "--rev",
    "rev_name",
    metavar="REV",
    help="The revision the machine ran (default: the one that follows the sidecar's kernel).",
)
@db_option
@revisions_option
@json_option
def validate_cmd(trace, rev_name, db, revision_files, as_json) -> None:
    """Replay a trace recorded with kreplay's recording script on its machine, and set each
    counter the model predicts beside the change its snapshots saw. Exit 1 when a counter
    is outside its tolerance (or the model panics or hangs), 0 when all agree."""
    revisions = _registry(db, revision_files)
    with Store.for_caching(resolve_db(db)) as store:
        info = store.trace(trace)
        _note(work.sidecar_note(info, None, store))
        result = validate(store, info, revisions, rev_name)
    click.echo(validation_view(result, as_json), nl=False)
    if not result.agrees:
        raise click.exceptions.Exit(EXIT_DIFFERENCES)
