"""Commands over the model: revisions, revision new, replay, diff, check, golden update."""

import difflib
from pathlib import Path

import click

from kreplay import work
from kreplay.check import check, golden_update
from kreplay.cli import (
    _cell_bar,
    _matrix_options,
    _note,
    _progress_bar,
    _registry,
    _revision_list,
    _settings,
    cli,
    db_option,
    json_option,
    revisions_option,
)
from kreplay.compare import parse_thresholds
from kreplay.errors import EXIT_DIFFERENCES, UsageError
from kreplay.model.machine import PRESETS
from kreplay.report import text
from kreplay.report.directory import choose_baseline, write_report
from kreplay.report.history import MAX_RUNS, from_rows
from kreplay.result import METRICS
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
        _note(work.sidecar_note(info, None, store))
        unit = work.resolve(info, revision, preset, _settings(sets))
        result = work.result(store, unit, _progress_bar("replay"))
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
    limits = parse_thresholds(list(thresholds))
    with Store.for_caching(resolve_db(db)) as store:
        infos = [store.trace(name) for name in traces] or store.traces()
        for info in infos:
            _note(work.sidecar_note(info, None, store))
        comparisons = work.diff(store, a, b, infos, preset, _settings(sets), limits)
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
    "of the store's earlier checks).",
)
@click.option(
    "--label",
    metavar="TEXT",
    help="The check's name in the store's history (default: the --report directory's "
    "name, else `check N`).",
)
@click.option(
    "--baseline",
    metavar="REV",
    help="The report compares every revision with this one (one of the revisions checked; "
    "default: base, else the first).",
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
    label,
    baseline,
    db,
    revision_files,
    as_json,
) -> None:
    """Every trace in traces/ x every revision, compared with golden/. Exit 1 on any
    mismatch, missing golden or orphaned golden. The check is recorded in the store
    (kreplay history)."""
    revisions = _revision_list(db, revision_files, rev_names)
    if baseline is not None and not report_dir:
        raise UsageError("--baseline is for the report: give --report DIR too")
    baseline = choose_baseline(baseline, [r.name for r in revisions])  # before the replays
    if label is None and report_dir:
        label = Path(report_dir).resolve().name
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
            label=label,
        )
        if report_dir:
            hist = from_rows(store.check_history(None, None, None, MAX_RUNS))
            descriptions = {r.name: r.description for r in revisions}
            write_report(report, descriptions, report_dir, hist, report.label, baseline)
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


@cli.command("history")
@click.argument("trace", required=False)
@click.option("--rev", "revision", metavar="REV", help="Only this revision's cells.")
@click.option(
    "--metric", "metrics", multiple=True, metavar="NAME", help="A metric to show (repeatable)."
)
@click.option(
    "--last",
    type=click.IntRange(min=1),
    default=MAX_RUNS,
    show_default=True,
    help="The newest checks to show.",
)
@db_option
@json_option
def history_cmd(trace, revision, metrics, last, db, as_json) -> None:
    """The checks recorded in the store; with TRACE, --rev or --metric, their cells, and
    each metric's value check after check."""
    for name in metrics:
        if name not in METRICS:
            close = difflib.get_close_matches(name, list(METRICS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "kreplay replay prints them all"
            raise UsageError(f"no metric {name!r}: {hint}")
    with Store(resolve_db(db), read_only=True) as store:
        if trace is None and revision is None and not metrics:
            click.echo(text.checks_view(store.checks()[-last:], as_json), nl=False)
            return
        if trace is not None:
            store.trace(trace)  # an unknown name: an error that suggests the near one
        rows = store.check_history(trace, revision, list(metrics), last)
    click.echo(text.history_view(rows, list(metrics), as_json), nl=False)
