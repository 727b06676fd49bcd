"""Commands over the store: ingest, traces, show, sql."""

import sys

import click

from kreplay.cli import _percent_bar, cli, db_option, error_line, json_option
from kreplay.errors import EXIT_TROUBLE, KreplayError
from kreplay.ingest import FORMATS, IngestResult, ingest
from kreplay.lifecycle import derive_trace
from kreplay.report import text
from kreplay.store import Store, resolve_db

SQL_TERMINAL_ROWS = 100  # kreplay sql's default limit when it prints to a terminal


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
    into the store. Every file is tried: one that fails is reported on its own line (and
    leaves the store as it was), the others are ingested; exit 2 if any failed."""
    if name and len(paths) > 1:
        raise click.UsageError("--name needs exactly one PATH")
    results, failed = [], 0
    with Store(resolve_db(db)) as store:
        for path in paths:
            try:
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
            except KreplayError as e:
                failed += 1
                click.echo(error_line(e), err=True)
                results.append({"path": path, "status": "failed", "error": str(e)})
                continue
            results.append(
                {
                    "path": result.path,
                    "name": result.name,
                    "status": result.status,
                    "trace": result.trace,
                }
            )
            if not as_json:
                click.echo(_ingest_line(result))
    if as_json:
        click.echo(text.to_json(results), nl=False)
    if failed:
        raise click.exceptions.Exit(EXIT_TROUBLE)


def _ingest_line(r: IngestResult) -> str:
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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(text.QUERY_FORMATS),
    default="table",
    show_default=True,
    help="How the rows are printed (--json is --format json).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help="Print at most N rows; 0 for all (default: 100 on a terminal, else all).",
)
@json_option
def sql_cmd(query, db, fmt, limit, as_json) -> None:
    """Run one read-only SQL query over the store (tables: docs/schema.md). DuckDB itself
    refuses writes, files, extensions and settings: the store is opened read-only with
    external access off."""
    if limit is None:
        limit = SQL_TERMINAL_ROWS if sys.stdout.isatty() else 0
    with Store(resolve_db(db), sandbox=True) as store:
        rows = store.query(query, limit)
        for piece in text.query_view(rows.columns, rows.batches, "json" if as_json else fmt):
            click.echo(piece, nl=False)
    if rows.cut:
        click.echo(f"kreplay: {rows.cut:,} more rows not shown (--limit 0 for all)", err=True)
