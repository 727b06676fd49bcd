"""Commands over the model: revisions, revision new, replay, diff, check, golden update."""

from pathlib import Path

import click

from kreplay.check import check, golden_update
from kreplay.cli import (
    _cell_bar,
    _matrix_options,
    _progress_bar,
    _registry,
    _revision_list,
    _settings,
    cli,
    db_option,
    json_option,
    revisions_option,
)
from kreplay.compare import compare, parse_thresholds
from kreplay.errors import EXIT_DIFFERENCES, StoreError
from kreplay.model.machine import PRESETS
from kreplay.replay import cached_replay, trace_machine
from kreplay.report import text
from kreplay.report.directory import write_report
from kreplay.result import to_json as result_json
from kreplay.revisions import lookup
from kreplay.revisions.new import new_revision
from kreplay.store import Store, resolve_db


@cli.command("revisions")
@db_option
@revisions_option
@json_option
def revisions_cmd(db, revision_files, as_json) -> None:
    """List the built-in and user revisions."""
    revs = _registry(db, revision_files)
    click.echo(text.revisions_view(list(revs.values()), as_json), nl=False)


@cli.group("revision")
def revision_group() -> None:
    """A revision of your own (docs/plugins.md)."""


@revision_group.command("new")
@click.argument("name")
@click.option("--based-on", "based_on", default="D38852", show_default=True, metavar="REV")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="POINT=POLICY",
    help="A decision point's named policy (pindex=linear, swap=none, reservations=false, ...).",
)
@click.option(
    "--plugin",
    metavar="POINT",
    help="Also write NAME.py: a new policy for this decision point (pindex, kva, ...) to edit.",
)
@click.option(
    "--dir",
    "folder",
    default="revisions",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The project's revisions folder (every command reads ./revisions/*.toml).",
)
@db_option
@revisions_option
@json_option
def revision_new_cmd(name, based_on, sets, plugin, folder, db, revision_files, as_json) -> None:
    """Write revisions/NAME.toml (and with --plugin, NAME.py) for your next patch."""
    written = new_revision(
        _registry(db, revision_files), name, based_on, _settings(sets), plugin, Path(folder)
    )
    if as_json:
        click.echo(text.to_json({"name": name, "written": [str(p) for p in written]}), nl=False)
        return
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"then: kreplay replay TRACE --rev {name}; kreplay diff {based_on} {name}")


@cli.command("replay")
@click.argument("trace")
@click.option("--rev", "rev_name", required=True, help="The revision to replay against.")
@click.option(
    "--machine",
    "preset",
    type=click.Choice(sorted(PRESETS)),
    help="Machine preset (default: the one the trace's sidecar named at ingest, else amd64; "
    "--set applies on top of the sidecar's settings).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a machine parameter (kstack_pages, guard_pages, domains, ncpu, "
    "mem_per_domain_mb, kstack_cache_size, ...).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the Result JSON.")
@db_option
@revisions_option
@json_option
def replay_cmd(trace, rev_name, preset, sets, output, db, revision_files, as_json) -> None:
    """Replay a stored trace against a revision of the kernel's allocators."""
    revision = lookup(_registry(db, revision_files), rev_name)
    with Store.for_caching(resolve_db(db)) as store:
        info = store.trace(trace)
        cfg, settings = trace_machine(info, preset, _settings(sets))
        result = cached_replay(store, info, revision, cfg, settings, _progress_bar("replay"))
    data = result_json(result)
    if output:
        with open(output, "wb") as f:
            f.write(data)
    click.echo(data.decode() if as_json else text.result_view(result), nl=False)


@cli.command("diff")
@click.argument("rev_a", metavar="REV1")
@click.argument("rev_b", metavar="REV2")
@click.argument("traces", nargs=-1, metavar="[TRACE...]")
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="METRIC=PCT%|METRIC=+N",
    help="Count a change of METRIC only beyond PCT percent of REV1's value, or beyond N "
    "(both may be given; default: any change). From 0 only +N tolerates a change.",
)
@click.option(
    "--all", "show_all", is_flag=True, help="List every metric, not only those that changed."
)
@click.option(
    "--machine",
    "preset",
    type=click.Choice(sorted(PRESETS)),
    help="Machine preset for every trace (default: each trace's own, as for replay).",
)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE")
@db_option
@revisions_option
@json_option
def diff_cmd(
    rev_a, rev_b, traces, thresholds, show_all, preset, sets, db, revision_files, as_json
) -> None:
    """What REV2 changes against REV1, per trace (default: every trace in the store).
    Exit 1 when anything got worse or a new panic/hang appeared."""
    revs = _registry(db, revision_files)
    a, b = lookup(revs, rev_a), lookup(revs, rev_b)
    settings = _settings(sets)
    limits = parse_thresholds(list(thresholds))
    with Store.for_caching(resolve_db(db)) as store:
        comparisons = []
        infos = [store.trace(name) for name in traces] or store.traces()
        if not infos:
            raise StoreError(
                "no traces in the store to compare (kreplay ingest FILE)", path=store.path
            )
        for info in infos:
            cfg, trace_settings = trace_machine(info, preset, settings)
            comparisons.append(
                compare(
                    cached_replay(store, info, a, cfg, trace_settings),
                    cached_replay(store, info, b, cfg, trace_settings),
                    limits,
                )
            )
    click.echo(text.diff_view(comparisons, as_json, show_all), nl=False)
    if any(c.worse for c in comparisons):
        raise click.exceptions.Exit(EXIT_DIFFERENCES)


@cli.command("check")
@click.argument("traces", nargs=-1, metavar="[TRACE...]")
@_matrix_options
@click.option(
    "--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True
)
@click.option("--scheduler", metavar="ADDR", help="Dask scheduler (default: a LocalCluster).")
@click.option(
    "--report",
    "report_dir",
    metavar="DIR",
    help="Write DIR/report.json and DIR/index.html (with pictures, and the metric history "
    "of earlier runs in DIR's sibling directories).",
)
@db_option
@revisions_option
@json_option
def check_cmd(
    traces,
    rev_names,
    traces_dir,
    golden_dir,
    jobs,
    executor,
    scheduler,
    report_dir,
    db,
    revision_files,
    as_json,
) -> None:
    """Every trace in traces/ x every revision, compared with golden/. Exit 1 on any
    mismatch, missing golden or orphaned golden."""
    revisions = _revision_list(db, revision_files, rev_names)
    with Store(resolve_db(db)) as store:
        report = check(
            store,
            traces_dir,
            golden_dir,
            revisions,
            list(traces),
            jobs,
            executor,
            scheduler,
            pictures=bool(report_dir),
            known_revisions=list(_registry(db, revision_files)),
            progress=_cell_bar("check"),
        )
    if report_dir:
        write_report(report, {r.name: r.description for r in revisions}, report_dir)
    click.echo(text.check_view(report, as_json), nl=False)
    if report.failed:
        raise click.exceptions.Exit(EXIT_DIFFERENCES)


@cli.group("golden")
def golden_group() -> None:
    """Golden results (golden/<trace>/<revision>.json)."""


@golden_group.command("update")
@click.argument("traces", nargs=-1, metavar="[TRACE...]")
@_matrix_options
@click.option("--new-only", is_flag=True, help="Only write goldens that do not exist yet.")
@db_option
@revisions_option
@json_option
def golden_update_cmd(
    traces, rev_names, traces_dir, golden_dir, jobs, new_only, db, revision_files, as_json
) -> None:
    """Replay and write golden files; prints what changed. Refuses when CI is set."""
    revisions = _revision_list(db, revision_files, rev_names)
    with Store(resolve_db(db)) as store:
        done = golden_update(
            store, traces_dir, golden_dir, revisions, list(traces), new_only, jobs,
            progress=_cell_bar("golden update"),
        )  # fmt: skip
    click.echo(text.golden_view(done, as_json), nl=False)
