"""The command line: parse options, call one core function, render. No logic here."""

import os
import sys
import traceback

import click

from kreplay import __version__
from kreplay.check import check, golden_update
from kreplay.compare import compare
from kreplay.errors import EXIT_DIFFERENCES, EXIT_OK, EXIT_TROUBLE, KreplayError, exit_code_for
from kreplay.ingest import FORMATS, ingest
from kreplay.lifecycle import derive_trace
from kreplay.model.machine import PRESETS, machine_config
from kreplay.replay import cached_replay
from kreplay.report import text
from kreplay.result import METRICS
from kreplay.result import to_json as result_json
from kreplay.revisions import lookup, registry
from kreplay.store import Store, resolve_db

db_option = click.option(
    "--db", metavar="FILE", help="The store (default: $KREPLAY_DB, else ./kreplay.duckdb)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kreplay")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Replay FreeBSD ktrace/kdump recordings against a model of the kernel's kstack
    and physical page allocators, and compare patch revisions."""
    ctx.obj = {"traceback": traceback}


@cli.command("ingest")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--name", help="Store the trace under this name (one PATH only).")
@db_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option(
    "--kdump-options",
    metavar="LETTERS",
    help="The kdump options the text was printed with, e.g. HTc (default: detected).",
)
@click.option("--replace", is_flag=True, help="Replace a stored trace of the same name.")
@click.option("--strict", is_flag=True, help="Fail (exit 2) on any parse error.")
@json_option
def ingest_cmd(paths, name, db, fmt, kdump_options, replace, strict, as_json) -> None:
    """Parse kdump text (plain, .gz, .xz, .bz2, or - for stdin) into the store."""
    if name and len(paths) > 1:
        raise click.UsageError("--name needs exactly one PATH")
    results = []
    with Store(resolve_db(db)) as store:
        for path in paths:
            result = ingest(
                store,
                path,
                name=name,
                fmt=fmt,
                kdump_options=kdump_options,
                replace=replace,
                strict=strict,
            )
            results.append(result)
            if not as_json:
                click.echo(_ingest_line(result))
    if as_json:
        click.echo(
            text.to_json(
                [
                    {"path": r.path, "name": r.name, "status": r.status, "trace": r.trace}
                    for r in results
                ]
            ),
            nl=False,
        )


def _ingest_line(r) -> str:
    t = r.trace
    if r.status == "already":
        return f"{r.path}: already ingested as {r.name}"
    return (
        f"{r.path}: {r.status} as {r.name}: {t.lines} lines, {t.events} events, "
        f"{t.continuations} continuation lines, {t.parse_errors} parse errors "
        f"(options {t.options or 'none'}, {t.options_source})"
    )


@cli.command("traces")
@db_option
@json_option
def traces_cmd(db, as_json) -> None:
    """List the traces in the store."""
    with Store(resolve_db(db), read_only=True) as store:
        traces = store.traces()
    click.echo(text.to_json(traces) if as_json else text.traces_table(traces), nl=False)


@cli.command("show")
@click.argument("trace")
@db_option
@json_option
@click.option(
    "--errors", "max_errors", default=10, show_default=True, help="How many parse errors to list."
)
def show_cmd(trace, db, as_json, max_errors) -> None:
    """Statistics of one trace: kinds, options, time span, parse errors."""
    with Store(resolve_db(db), read_only=True) as store:
        info = store.trace(trace)
        kinds = store.kind_counts(info.trace_id)
        entities = store.entity_counts(info.trace_id)
        errors = store.first_parse_errors(info.trace_id, max_errors)
        preflight = derive_trace(store, info.trace_id, info.options).preflight.findings()
    if as_json:
        click.echo(
            text.to_json(
                {
                    "trace": info,
                    "kinds": dict(kinds),
                    "processes": entities[0],
                    "threads": entities[1],
                    "parse_errors": [{"line": ln, "reason": r, "text": t} for ln, r, t in errors],
                    "preflight": dict(preflight),
                }
            ),
            nl=False,
        )
    else:
        click.echo(text.trace_summary(info, kinds, entities, errors, preflight), nl=False)


@cli.command("sql")
@click.argument("query")
@db_option
@json_option
def sql_cmd(query, db, as_json) -> None:
    """Run read-only SQL over the store (tables: traces, events, parse_errors)."""
    with Store(resolve_db(db), read_only=True) as store:
        columns, rows = store.query(query)
    if as_json:
        click.echo(text.to_json([dict(zip(columns, row, strict=True)) for row in rows]), nl=False)
    else:
        click.echo(text.table(columns, rows), nl=False)


revisions_option = click.option(
    "--revisions",
    "revision_files",
    multiple=True,
    metavar="FILE",
    help="A TOML file of extra revisions (also: every *.toml in revisions/ next to the store).",
)


def _registry(db: str | None, files: tuple[str, ...]):
    path = resolve_db(db)
    return registry(list(files), store_dir=os.path.dirname(os.path.abspath(path)))


def _settings(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--set takes name=value, not {pair!r}")
        out[name.strip()] = value.strip()
    return out


@cli.command("revisions")
@db_option
@revisions_option
@json_option
def revisions_cmd(db, revision_files, as_json) -> None:
    """List the built-in and user revisions."""
    revs = _registry(db, revision_files)
    click.echo(text.revisions_view(list(revs.values()), as_json), nl=False)


@cli.command("replay")
@click.argument("trace")
@click.option("--rev", "rev_name", required=True, help="The revision to replay against.")
@click.option(
    "--machine",
    "preset",
    default="amd64",
    show_default=True,
    type=click.Choice(sorted(PRESETS)),
    help="Machine preset.",
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
    settings = _settings(sets)
    cfg = machine_config(preset, settings)
    with Store(resolve_db(db)) as store:  # writes the ops cache on first use
        result = cached_replay(store, trace, revision, cfg, settings, _progress_bar("replay"))
    data = result_json(result)
    if output:
        with open(output, "wb") as f:
            f.write(data)
    click.echo(data.decode() if as_json else text.result_view(result), nl=False)


def _thresholds(pairs: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name] = float(value.rstrip("%"))
        except ValueError:
            raise click.UsageError(f"--threshold takes METRIC=PCT, not {pair!r}") from None
        if not sep or name not in METRICS:
            raise click.UsageError(f"--threshold {pair!r}: unknown metric {name!r}")
    return out


@cli.command("diff")
@click.argument("rev_a", metavar="REV1")
@click.argument("rev_b", metavar="REV2")
@click.argument("traces", nargs=-1, metavar="[TRACE...]")
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="METRIC=PCT",
    help="Count a change of METRIC only beyond PCT percent (default: any change).",
)
@click.option("--only-changed", is_flag=True, help="List only metrics that changed.")
@click.option(
    "--machine", "preset", default="amd64", show_default=True, type=click.Choice(sorted(PRESETS))
)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE")
@db_option
@revisions_option
@json_option
def diff_cmd(
    rev_a, rev_b, traces, thresholds, only_changed, preset, sets, db, revision_files, as_json
) -> None:
    """What REV2 changes against REV1, per trace (default: every trace in the store).
    Exit 1 when anything got worse or a new panic/hang appeared."""
    revs = _registry(db, revision_files)
    a, b = lookup(revs, rev_a), lookup(revs, rev_b)
    settings = _settings(sets)
    cfg = machine_config(preset, settings)
    limits = _thresholds(thresholds)
    with Store(resolve_db(db)) as store:
        names = list(traces) or [t.name for t in store.traces()]
        comparisons = [
            compare(
                cached_replay(store, name, a, cfg, settings),
                cached_replay(store, name, b, cfg, settings),
                limits,
            )
            for name in names
        ]
    click.echo(text.diff_view(comparisons, as_json, only_changed), nl=False)
    if any(c.worse for c in comparisons):
        raise click.exceptions.Exit(EXIT_DIFFERENCES)


def _revision_list(db, files, names: tuple[str, ...]) -> list:
    revs = _registry(db, files)
    if names:
        return [lookup(revs, n) for n in names]
    return [r for r in revs.values() if r.origin == "built-in"]


matrix_options = [
    click.option("--rev", "rev_names", multiple=True, help="Revisions (default: all built-in)."),
    click.option(
        "--traces",
        "traces_dir",
        default="traces",
        show_default=True,
        help="Folder of recorded workloads.",
    ),
    click.option(
        "--golden",
        "golden_dir",
        default="golden",
        show_default=True,
        help="Folder of golden results.",
    ),
    click.option(
        "--jobs", type=int, default=os.cpu_count() or 1, show_default=True, help="Worker processes."
    ),
]


def _matrix_options(fn):
    for option in reversed(matrix_options):
        fn = option(fn)
    return fn


@cli.command("check")
@click.argument("traces", nargs=-1, metavar="[TRACE...]")
@_matrix_options
@click.option(
    "--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True
)
@click.option("--scheduler", metavar="ADDR", help="Dask scheduler (default: a LocalCluster).")
@click.option("--report", "report_dir", metavar="DIR", help="Write DIR/report.json.")
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
            store, traces_dir, golden_dir, revisions, list(traces), jobs, executor, scheduler
        )
    if report_dir:
        os.makedirs(report_dir, exist_ok=True)
        with open(os.path.join(report_dir, "report.json"), "w") as f:
            f.write(text.check_view(report, as_json=True))
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
def golden_update_cmd(
    traces, rev_names, traces_dir, golden_dir, jobs, new_only, db, revision_files
) -> None:
    """Replay and write golden files; prints what changed. Refuses when CI is set."""
    revisions = _revision_list(db, revision_files, rev_names)
    with Store(resolve_db(db)) as store:
        done = golden_update(store, traces_dir, golden_dir, revisions, list(traces), new_only, jobs)
    click.echo(text.golden_view(done), nl=False)


def _progress_bar(label: str):
    """A one-line progress report on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        click.echo(f"\r{label}: {done:,} of {total:,} ops ({percent}%)", err=True, nl=done == total)

    return report


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become messages and exit codes."""
    args = sys.argv[1:] if argv is None else argv
    show_tb = "--traceback" in args
    try:
        code = cli.main(args=args, prog_name="kreplay", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        e.show()
        code = e.exit_code
    except click.exceptions.Abort:
        click.echo("kreplay: interrupted", err=True)
        code = EXIT_TROUBLE
    except KreplayError as e:
        if show_tb:
            traceback.print_exc()
        click.echo(f"kreplay: error: {e}", err=True)
        code = exit_code_for(e)
    except KeyboardInterrupt:
        click.echo("kreplay: interrupted", err=True)
        code = EXIT_TROUBLE
    except Exception as e:  # a bug in kreplay: still one line, the traceback on request
        if show_tb:
            traceback.print_exc()
        click.echo(
            f"kreplay: internal error: {type(e).__name__}: {e} "
            "(run with --traceback and report it)",
            err=True,
        )
        code = EXIT_TROUBLE
    sys.exit(EXIT_OK if code is None else code)
