"""Commands over the store: ingest, traces, show, sql."""

import click

from kreplay.cli import _percent_bar, cli, db_option, json_option
from kreplay.ingest import FORMATS, ingest
from kreplay.lifecycle import derive_trace
from kreplay.report import text
from kreplay.store import Store, resolve_db


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
    """Parse kdump text or a binary ktrace.out (plain, .gz, .xz, .bz2, or - for stdin)
    into the store."""
    if name and len(paths) > 1:
        raise click.UsageError("--name needs exactly one PATH")
    results = []
    with Store(resolve_db(db)) as store:
        for path in paths:
            with store.watched(_percent_bar(f"ingest {path}")):
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
    if t.format == "ktrace":
        return (
            f"{r.path}: {r.status} as {r.name}: {t.events} events from a binary ktrace.out "
            f"({t.dropped} dropped-events markers, header version {t.header_version})"
        )
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
