"""The command line: parse options, call one core function, render. No logic here.

Commands live in store_cmds.py (ingest, traces, show, sql), model_cmds.py (revisions,
replay, diff, check, golden), synth_cmd.py (synth) and record_cmds.py (record, snapshot);
this module holds the group, the shared options and the error boundary.
"""

import os
import signal
import sys
import threading
import traceback

import click

from kreplay import __version__
from kreplay.errors import EXIT_OK, EXIT_TROUBLE, KreplayError, exit_code_for
from kreplay.model import native
from kreplay.revisions import lookup, registry
from kreplay.store import resolve_db

db_option = click.option(
    "--db", metavar="FILE", help="The store (default: $KREPLAY_DB, else ./kreplay.duckdb)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__,
    prog_name="kreplay",
    message=f"%(prog)s, version %(version)s; model: {native.BUILD}",
)
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Replay FreeBSD ktrace/kdump recordings against a model of the kernel's kstack
    and physical page allocators, and compare patch revisions."""
    ctx.obj = {"traceback": traceback}


revisions_option = click.option(
    "--revisions",
    "revision_files",
    multiple=True,
    metavar="FILE",
    help="A TOML file of extra revisions (also: every *.toml in ./revisions/ and in "
    "revisions/ next to the store).",
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


def _revision_list(db, files, names: tuple[str, ...]) -> list:
    """The revisions named, else every one: built in, from plugins, and from the
    revisions files (--revisions, ./revisions/*.toml, revisions/ next to the store)."""
    revs = _registry(db, files)
    if names:
        return [lookup(revs, n) for n in names]
    return list(revs.values())


matrix_options = [
    click.option(
        "--rev",
        "rev_names",
        multiple=True,
        help="Revisions (default: every one, built in and from revisions files and plugins).",
    ),
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
        "--jobs",
        type=click.IntRange(min=1),
        default=os.cpu_count() or 1,
        show_default=True,
        help="Worker processes (at least 1).",
    ),
]


def _matrix_options(fn):
    for option in reversed(matrix_options):
        fn = option(fn)
    return fn


def _note(text: str | None) -> None:
    """A note the user should read (not an error): one line on stderr."""
    if text:
        click.echo(f"kreplay: note: {text}", err=True)


def _progress_bar(label: str):
    """A one-line progress report on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        click.echo(f"\r{label}: {done:,} of {total:,} ops ({percent}%)", err=True, nl=done == total)

    return report


def _cell_bar(label: str):
    """check's progress on stderr, only when stderr is a terminal: cells done of all, and
    the cell that runs (the longest of those not done, with how many others run)."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int, running: str) -> None:
        now = f", running {running}" if running else ""
        click.echo(f"\r\033[K{label}: {done} of {total} cells{now}", err=True, nl=done == total)

    return report


def _percent_bar(label: str):
    """A one-line report of a percentage on stderr, only when stderr is a terminal; None
    erases it (Store.watched)."""
    if not sys.stderr.isatty():
        return None

    def report(percent: float | None) -> None:
        text = "" if percent is None else f"{label}: {percent:3.0f}% of the current step"
        click.echo(f"\r\033[K{text}", err=True, nl=False)

    return report


def error_line(error: KreplayError) -> str:
    """The one line a user sees for an error (a command that goes on past an error, like
    ingest over several files, prints it as main does)."""
    return f"kreplay: error: {error}"


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the transaction rolls back, temporary files go."""


_SIGNALLED: list[int] = []  # the signals that came (DuckDB reports one as its own error)


def _on_signal(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _signal_line(error: BaseException) -> str | None:
    """The line for an interrupted run: a signal Python raised; or, once a signal came, the
    error DuckDB made of it: RuntimeError("Query interrupted") when it caught the signal
    in a query, or whatever failed when the handler's KeyboardInterrupt was raised inside
    DuckDB's own calls into Python, which swallow it (a batch's replacement scan then finds
    no table: `Table with name batch_rows does not exist`, seen under SIGINT mid-ingest).
    None for anything else."""
    duckdb_caught = isinstance(error, RuntimeError) and "interrupted" in str(error).lower()
    after_signal = duckdb_caught or isinstance(error, KreplayError)
    if not isinstance(error, KeyboardInterrupt) and not (after_signal and _SIGNALLED):
        return None
    terminated = isinstance(error, Terminated) or _SIGNALLED[-1:] == [signal.SIGTERM]
    return "kreplay: terminated" if terminated else "kreplay: interrupted"


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become messages and exit codes."""
    args = sys.argv[1:] if argv is None else argv
    show_tb = "--traceback" in args
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _on_signal)
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
        line = _signal_line(e)
        click.echo(line or error_line(e), err=True)
        code = EXIT_TROUBLE if line else exit_code_for(e)
    except (KeyboardInterrupt, RuntimeError) as e:
        line = _signal_line(e)
        if line is None:
            raise
        click.echo(line, err=True)
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


# Register the commands (they import the group and the options above).
from kreplay.cli import model_cmds, record_cmds, store_cmds, synth_cmd  # noqa: E402, F401
