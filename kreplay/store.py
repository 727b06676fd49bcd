"""The DuckDB store: schema, idempotent ingest, queries. The one module that runs SQL.

The store is a plain DuckDB file a user can open with the duckdb CLI; docs/schema.md
documents every table. A trace is identified by the sha256 of its decompressed bytes and
is written in one transaction, so an interrupted or failed ingest leaves nothing behind.
"""

import difflib
import functools
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import duckdb

from kreplay import __version__
from kreplay.errors import (
    DuplicateTrace,
    StoreError,
    StoreLocked,
    TraceFormatError,
    TraceNotFound,
)
from kreplay.events import IdleGap, LifecycleEvent
from kreplay.schema import (
    CORE_EXPRESSIONS,
    EVENT_TABLES,
    EVENTS_VIEW,
    KIND_CODE,
    SCHEMA_VERSION,
    Batch,
    Counts,
    batch_select,
)

DEFAULT_DB = "kreplay.duckdb"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS traces (
    trace_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    sha256 VARCHAR NOT NULL UNIQUE,
    source VARCHAR,
    format VARCHAR NOT NULL,
    compression VARCHAR,
    options VARCHAR,
    options_source VARCHAR,
    header_version INTEGER,
    bytes BIGINT,
    lines BIGINT,
    events BIGINT,
    continuations BIGINT,
    parse_errors BIGINT,
    dropped BIGINT,
    first_ts BIGINT,
    last_ts BIGINT,
    machine VARCHAR,
    kreplay_version VARCHAR,
    ingested_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS ops (
    trace_id INTEGER NOT NULL,
    version VARCHAR NOT NULL,
    idx BIGINT NOT NULL,
    kind TINYINT,
    pid INTEGER,
    tid BIGINT,
    cpu INTEGER,
    tick BIGINT,
    arg BIGINT,
    arg2 BIGINT,
    line BIGINT
);
CREATE TABLE IF NOT EXISTS op_sets (
    trace_id INTEGER NOT NULL,
    version VARCHAR NOT NULL,
    ops BIGINT,
    preflight VARCHAR,
    initial VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    run_key VARCHAR PRIMARY KEY,
    trace_sha256 VARCHAR NOT NULL,
    revision VARCHAR NOT NULL,
    machine VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    outcome VARCHAR,
    result VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    value DOUBLE
);
CREATE TABLE IF NOT EXISTS checks (
    check_id INTEGER PRIMARY KEY,
    label VARCHAR NOT NULL,
    started_at TIMESTAMP,
    kreplay_version VARCHAR,
    model_version VARCHAR,
    cells INTEGER,
    failed INTEGER
);
CREATE TABLE IF NOT EXISTS check_cells (
    check_id INTEGER NOT NULL,
    trace VARCHAR NOT NULL,
    revision VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    run_key VARCHAR
);
CREATE TABLE IF NOT EXISTS parse_errors (
    trace_id INTEGER NOT NULL,
    line BIGINT,
    text VARCHAR,
    reason VARCHAR
);
"""


# Bounded memory: a large ingest spills to DuckDB's temporary directory instead of
# growing the process (the bench's target is a peak RSS under 1 GiB).
_CONFIG = {"memory_limit": "600MB"}
_INGEST_MEMORY = "350MB"  # and the reader's ~400 MiB beside it (_ingesting)
# A user's SQL (kreplay sql) runs on a connection DuckDB itself keeps from writing: the
# store read-only, no file or network access (COPY TO, EXPORT, read_csv, ATTACH, INSTALL
# all refuse), no extension loaded, and the configuration locked so that no statement
# can turn any of it back on.
_SANDBOX = _CONFIG | {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}
# What a read-only query can be. DuckDB allows temporary tables and views, CHECKPOINT
# (a CALL) and PRAGMAs on a read-only store, which this list does not; a SELECT covers
# what they show (DESCRIBE, SHOW TABLES, FROM pragma_table_info('events')).
QUERY_TYPES = ("SELECT", "EXPLAIN")
SQL_BATCH = 10_000


@dataclass(frozen=True)
class NewTrace:
    """What ingest knows about a trace before its lines are parsed."""

    name: str
    sha256: str
    source: str
    format: str
    compression: str | None
    options: str
    options_source: str
    header_version: int | None
    bytes: int
    machine: str | None  # the sidecar's [replay] table as JSON (ingest/sidecar.py)

    @property
    def recorded_machine(self) -> dict | None:
        """{"preset": ..., "set": {...}} as the sidecar gave it at ingest, or None."""
        return json.loads(self.machine) if self.machine else None


@dataclass(frozen=True)
class TraceInfo(NewTrace):
    """A stored trace: its row in `traces`."""

    trace_id: int
    lines: int
    events: int
    continuations: int
    parse_errors: int
    dropped: int
    first_ts: int | None
    last_ts: int | None


_TRACE_COLUMNS = ", ".join(TraceInfo.__dataclass_fields__)


def resolve_db(db: str | None) -> str:
    """--db, else $KREPLAY_DB, else ./kreplay.duckdb."""
    return db or os.environ.get("KREPLAY_DB") or DEFAULT_DB


class _Already(Exception):
    """The streamed trace's content is stored already: roll it back."""


@dataclass
class QueryRows:
    """A user's query as it is fetched: the columns, the rows in batches (at most the limit
    in all), and how many rows the limit left out (0 when it left none)."""

    columns: list[str]
    batches: Iterator[list[tuple]]
    cut: int


class Store:
    def __init__(
        self, path: str, *, read_only: bool = False, create: bool = True, sandbox: bool = False
    ):
        """Open the store at `path`. Only commands that write traces (ingest, check,
        golden update) create a missing store; every other one (create=False, or
        read_only) says there is none. A sandbox is read-only and DuckDB refuses any file
        access (kreplay sql)."""
        self.path, self.read_only = path, read_only or sandbox
        if (self.read_only or not create) and not os.path.exists(path):
            raise StoreError("no store here (run `kreplay ingest` first)", path=path)
        config = _SANDBOX if sandbox else _CONFIG
        try:
            self.con = duckdb.connect(path, read_only=self.read_only, config=config)
        except duckdb.Error as e:
            raise _store_failed(path, e) from None
        try:
            if not self.read_only:
                self._create_schema()
            self._check_version()
        except duckdb.Error as e:
            self.con.close()
            raise _store_failed(path, e) from None

    @classmethod
    def for_caching(cls, path: str) -> "Store":
        """An existing store opened to read and to write the ops and runs caches, or, while
        other processes only read it, read-only (the caches then wait: DuckDB allows one
        writer or many readers)."""
        try:
            return cls(path, create=False)
        except StoreLocked:
            return cls(path, read_only=True)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _create_schema(self) -> None:
        if self._version() not in (None, str(SCHEMA_VERSION)):
            return  # another version: _check_version refuses it, nothing is added to it
        self.con.execute(_SCHEMA)
        for table, columns in EVENT_TABLES.items():
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        self.con.execute(EVENTS_VIEW)
        self.con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
            [str(SCHEMA_VERSION)],
        )

    def _check_version(self) -> None:
        has_meta = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE table_name = 'meta' AND database_name = current_database()"
        ).fetchone()[0]
        if not has_meta:
            raise StoreError(
                "not a kreplay store (a DuckDB file without its tables)", path=self.path
            )
        found = self._version()
        if found != str(SCHEMA_VERSION):
            raise StoreError(
                f"store schema version {found or 'none'}, this kreplay reads version "
                f"{SCHEMA_VERSION} (ingest the traces again into a new store)",
                path=self.path,
            )

    def _version(self) -> str | None:
        """The store's schema version, None for a store without one (a new file)."""
        try:
            row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except duckdb.CatalogException:
            return None
        return row[0] if row else None

    # ------------------------------------------------------------------ ingest

    def has_size(self, nbytes: int) -> bool:
        """A stored trace has this many (decompressed) bytes."""
        row = self.con.execute("SELECT 1 FROM traces WHERE bytes = ?", [nbytes]).fetchone()
        return row is not None

    def find_sha(self, sha256: str) -> str | None:
        row = self.con.execute("SELECT name FROM traces WHERE sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

    def has_name(self, name: str) -> bool:
        row = self.con.execute("SELECT 1 FROM traces WHERE name = ?", [name]).fetchone()
        return row is not None

    @contextmanager
    def watched(
        self, report: Callable[[float | None], None] | None, every_s: float = 0.25
    ) -> Iterator[None]:
        """While the block runs, report(percent) of the statement DuckDB is running (its
        query_progress(), 0-100, per statement) every `every_s` from a helper thread;
        report(None) at the end. Nothing at all without a report."""
        if report is None:
            yield
            return
        self.con.execute("SET enable_progress_bar = true")
        self.con.execute("SET enable_progress_bar_print = false")
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(every_s):
                percent = self.con.query_progress()
                if percent >= 0:
                    report(percent)

        poller = threading.Thread(target=poll, name="kreplay-progress", daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()
            self.con.execute("RESET enable_progress_bar")
            self.con.execute("RESET enable_progress_bar_print")
            report(None)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: any error or interrupt rolls the whole trace back. The error
        raised is the one that stopped the work, never one of the rollback."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            with suppress(duckdb.Error):  # a connection gone: nothing was committed either
                self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    @contextmanager
    def _unordered(self) -> Iterator[None]:
        """No insertion order: with it, DuckDB runs the chunks' UNION ALL branches one after
        another (one core) and writes tables in one ordered stream; seq and line carry the
        file order."""
        self.con.execute("SET preserve_insertion_order = false")
        try:
            yield
        finally:
            self.con.execute("RESET preserve_insertion_order")

    @contextmanager
    def _ingesting(self, parallel_reader: bool) -> Iterator[None]:
        """DuckDB with less memory while an ingest writes: the reader's own ~400 MiB (a
        text parse's chunks, a binary window and its chunk's columns) come on top of
        DuckDB's cache, which fills its limit over a long trace (measured, 600 MB: peak
        RSS 1,101 MiB over a 50 M-line text, 1,153 MiB over 50 M binary records; 350 MB
        took no longer). And on one thread while a text parse runs on the other core:
        DuckDB's second thread saved no time on inserts of this size, only cost CPU
        (measured: 40 k-row inserts 4.6 s CPU on two threads, 3.7 s on one)."""
        self.con.execute(f"SET memory_limit = '{_INGEST_MEMORY}'")
        if parallel_reader:
            self.con.execute("SET threads = 1")
        try:
            yield
        finally:
            if parallel_reader:
                self.con.execute("RESET threads")
            self.con.execute(f"SET memory_limit = '{_CONFIG['memory_limit']}'")

    def _next_trace_id(self) -> int:
        # fetchall: a result left unread would make the next register() refuse
        rows = self.con.execute("SELECT coalesce(max(trace_id), 0) + 1 FROM traces").fetchall()
        return rows[0][0]

    def _insert_trace_row(self, trace_id: int, t: NewTrace, counts: "Counts") -> None:
        self.con.execute(
            """
            INSERT INTO traces (trace_id, name, sha256, source, format, compression, options,
                options_source, header_version, bytes, lines, events, continuations,
                parse_errors, dropped, first_ts, last_ts, machine, kreplay_version)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                trace_id,
                t.name,
                t.sha256,
                t.source,
                t.format,
                t.compression,
                t.options,
                t.options_source,
                t.header_version,
                t.bytes,
                counts.lines,
                counts.events,
                counts.conts,
                counts.errors,
                counts.drops,
                counts.first_ts,
                counts.last_ts,
                t.machine,
                __version__,
            ],
        )

    # ------------------------------------------------------------------ ingest

    def add_trace(
        self,
        batches: Iterator["Batch"],
        finish: Callable[[], NewTrace],
        *,
        replace: bool,
        strict: bool,
        parallel_reader: bool,
    ) -> TraceInfo | None:
        """Insert a trace from batches of column arrays (the narrow tables' rows, in file
        order; both readers make them) in one transaction, as they come: a text input
        streams through, and its sha256 is known only at the end (finish() gives the
        trace's row then). A trace whose content is stored already is rolled back: None.
        parallel_reader: the batches are made on two other threads meanwhile (the text
        parse), so DuckDB writes on one (_ingesting); else on all of them (the binary
        reader makes the next batch on one thread: DuckDB on one thread beside it was
        no faster, 4.8-5.3 s against 4.7 s for 5 M records)."""
        try:
            with self._unordered(), self._ingesting(parallel_reader), self.transaction():
                trace_id = self._next_trace_id()
                counts, first_error = Counts(), None
                for batch in batches:
                    if first_error is None:
                        first_error = batch.first_error
                    self._insert_batch(trace_id, batch)
                    counts.add(batch)
                trace = finish()
                if self.find_sha(trace.sha256) is not None:
                    raise _Already
                self._claim_name(trace, replace)
                if counts.events == 0 or (strict and first_error is not None):
                    _refuse(trace.source, first_error, counts.events)
                self._insert_trace_row(trace_id, trace, counts)
        except _Already:
            return None
        except duckdb.Error as e:
            raise StoreError(f"ingest failed: {_first_line(e)}", path=self.path) from None
        return self.trace(trace.name)

    def _claim_name(self, trace: NewTrace, replace: bool) -> None:
        if replace:
            self._delete_trace(trace.name)
        elif self.has_name(trace.name):
            raise DuplicateTrace(
                f"a different trace is already stored as {trace.name!r} "
                "(use --replace, or --name to store it under another name)",
                path=trace.source,
            )

    def _insert_batch(self, trace_id: int, batch: "Batch") -> None:
        for table, columns in batch.tables:
            if len(next(iter(columns.values()))) == 0:
                continue
            # Read by DuckDB's replacement scan of this local variable, not register():
            # a registered object stays referenced until the transaction ends (measured:
            # RSS grew by every batch's arrays), a replacement scan's only while it runs.
            batch_rows = columns  # noqa: F841 (named in the SQL)
            select = batch_select(table, columns)
            self.con.execute(
                f"INSERT INTO {table} SELECT {trace_id}, {select} FROM batch_rows"
            ).fetchall()

    def _delete_trace(self, name: str) -> None:
        row = self.con.execute("SELECT trace_id FROM traces WHERE name = ?", [name]).fetchone()
        if row is None:
            return
        for table in (*EVENT_TABLES, "parse_errors", "ops", "op_sets", "traces"):
            self.con.execute(f"DELETE FROM {table} WHERE trace_id = ?", [row[0]])

    # ------------------------------------------------------------------ queries

    def traces(self) -> list[TraceInfo]:
        rows = self.con.execute(f"SELECT {_TRACE_COLUMNS} FROM traces ORDER BY name").fetchall()
        return [TraceInfo(*row) for row in rows]

    def trace(self, name: str) -> TraceInfo:
        row = self.con.execute(
            f"SELECT {_TRACE_COLUMNS} FROM traces WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            names = [t.name for t in self.traces()]
            close = difflib.get_close_matches(name, names, n=1)
            if close:
                hint = f"did you mean {close[0]!r}?"
            elif len(names) <= 8:
                hint = f"known: {', '.join(names) or 'none'}"
            else:
                hint = f"{len(names)} traces; `kreplay traces` lists them"
            raise TraceNotFound(f"no trace named {name!r} in the store ({hint})", path=self.path)
        return TraceInfo(*row)

    def kind_counts(self, trace_id: int) -> list[tuple[str, int]]:
        return self.con.execute(
            "SELECT kind, count(*) FROM events WHERE trace_id = ? GROUP BY kind ORDER BY kind",
            [trace_id],
        ).fetchall()

    def entity_counts(self, trace_id: int) -> tuple[int, int | None]:
        """(distinct pids, distinct (pid, tid) pairs or None when the trace has no tids)."""
        return self.con.execute(
            "SELECT count(DISTINCT pid), CASE WHEN count(tid) > 0 THEN "
            "count(DISTINCT (pid, tid)) END FROM events WHERE trace_id = ?",
            [trace_id],
        ).fetchone()

    def lifecycle_events(
        self, trace_id: int, calls: tuple[str, ...], rets: tuple[str, ...]
    ) -> list[LifecycleEvent]:
        """The events lifecycle derivation reads, in trace order: page faults, dropped
        markers, default-action signals, and CALL/RET of the given syscalls. Read from
        event_core, its names looked up in the trace's dictionaries as lists (no join), the
        side rows joined only for the CALLs and signals chosen (the `events` view joins
        every side table to every event)."""
        k = KIND_CODE
        syscalls = self._dictionary("syscalls", "syscall_id", "syscall", trace_id)
        faults = self._dictionary("fault_results", "fault_id", "fault_result", trace_id)
        call_ids = [i for i, name in enumerate(syscalls) if name in calls] or [-1]
        ret_ids = [i for i, name in enumerate(syscalls) if name in rets] or [-1]
        exprs = dict(CORE_EXPRESSIONS)
        exprs["syscall"] = "$2[e.syscall_id + 1] AS syscall"
        exprs["fault_result"] = "$3[e.fault_id + 1] AS fault_result"
        chosen_calls = f"kind = {k['CALL']} AND syscall_id IN ({', '.join(map(str, call_ids))})"
        rows = self.con.execute(
            f"""
            SELECT {", ".join(exprs.get(c, "e." + c) for c in LifecycleEvent._fields)}
            FROM event_core e
            LEFT JOIN (SELECT seq, args FROM event_args WHERE trace_id = $1 AND seq IN (
                SELECT seq FROM event_core WHERE trace_id = $1 AND {chosen_calls})) a
                ON a.seq = e.seq
            LEFT JOIN (SELECT seq, signal, sig_action FROM event_details
                WHERE trace_id = $1 AND signal IS NOT NULL) d ON d.seq = e.seq
            WHERE e.trace_id = $1 AND (
                e.kind IN ({k["PFLT"]}, {k["PRET"]}, {k["DROP"]})
                OR (e.kind = {k["PSIG"]} AND d.sig_action = 'SIG_DFL')
                OR (e.{chosen_calls})
                OR (e.kind = {k["RET"]} AND e.syscall_id IN ({", ".join(map(str, ret_ids))})))
            ORDER BY e.seq
            """,
            [trace_id, syscalls, faults],
        ).fetchall()
        return list(map(LifecycleEvent._make, rows))

    def _dictionary(self, table: str, id_column: str, name: str, trace_id: int) -> list:
        """A trace's dictionary as a list: list[id] is the name of id."""
        rows = self.con.execute(
            f"SELECT {id_column}, {name} FROM {table} WHERE trace_id = ? ORDER BY {id_column}",
            [trace_id],
        ).fetchall()
        out: list = [None] * (rows[-1][0] + 1 if rows else 0)
        for number, value in rows:
            out[number] = value
        return out

    def idle_gaps(self, trace_id: int, min_gap_ns: int) -> list[IdleGap]:
        """Where a process falls silent for at least min_gap_ns: each record that is
        followed by no record of the same process for that long (next_* are None when the
        silence lasts to the end of the trace), in seq order."""
        rows = self.con.execute(
            "SELECT seq, ts, cpu, line, nseq, nts, ncpu, nline, pid, tid, ntid FROM ("
            " SELECT seq, ts, cpu, line, pid, tid, lead(seq) OVER w AS nseq,"
            "  lead(ts) OVER w AS nts, lead(cpu) OVER w AS ncpu, lead(line) OVER w AS nline,"
            "  lead(tid) OVER w AS ntid"
            " FROM event_core WHERE trace_id = ? AND ts IS NOT NULL"
            f" AND kind <> {KIND_CODE['DROP']} WINDOW w AS (PARTITION BY pid ORDER BY seq))"
            " WHERE coalesce(nts, (SELECT max(ts) FROM event_core WHERE trace_id = ?)) - ts >= ?"
            " ORDER BY seq",
            [trace_id, trace_id, min_gap_ns],
        ).fetchall()
        return list(map(IdleGap._make, rows))

    def calls_without_ret(self, trace_id: int) -> int:
        """Threads whose last CALL/RET record is a CALL that returns (not exit/thr_exit):
        the trace ended while they were in a syscall."""
        return self.con.execute(
            "SELECT count(*) FROM (SELECT arg_max(kind, seq) AS k, arg_max(syscall, seq) AS s "
            "FROM events WHERE trace_id = ? AND kind IN ('CALL', 'RET') GROUP BY pid, tid) "
            "WHERE k = 'CALL' AND s NOT IN ('exit', 'thr_exit')",
            [trace_id],
        ).fetchone()[0]

    # ------------------------------------------------------------------ results cache

    def cached_run(self, run_key: str) -> str | None:
        row = self.con.execute("SELECT result FROM runs WHERE run_key = ?", [run_key]).fetchone()
        return row[0] if row else None

    def save_run(
        self,
        run_key: str,
        sha256: str,
        revision: str,
        machine: str,
        model_version: str,
        outcome: str,
        result: str,
        metrics: dict[str, float],
    ) -> None:
        """One replay's Result, and its metrics in long form for SQL across revisions."""
        if self.read_only:
            return
        try:
            with self.transaction():
                self.con.execute("DELETE FROM metrics WHERE run_key = ?", [run_key])
                self.con.execute("DELETE FROM runs WHERE run_key = ?", [run_key])
                self.con.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [run_key, sha256, revision, machine, model_version, outcome, result],
                )
                names = sorted(metrics)
                self.con.execute(
                    "INSERT INTO metrics SELECT $1, unnest($2::VARCHAR[]), unnest($3::DOUBLE[])",
                    [run_key, names, [float(metrics[n]) for n in names]],
                )
        except duckdb.Error as e:
            raise StoreError(f"cannot cache the result: {_first_line(e)}", path=self.path) from None

    # ------------------------------------------------------------------ check history

    def record_check(
        self,
        label: str | None,
        model_version: str,
        cells: list[tuple[str, str, str, str]],
        failed: int,
    ) -> str:
        """One check, its cells (trace, revision, status, run_key) and how many of them
        failed; the label defaults to `check N`. Returns the label."""
        try:
            with self.transaction():
                check_id = self.con.execute(
                    "SELECT coalesce(max(check_id), 0) + 1 FROM checks"
                ).fetchone()[0]
                self.con.execute(
                    "INSERT INTO checks VALUES (?, ?, now()::TIMESTAMP, ?, ?, ?, ?)",
                    [
                        check_id,
                        label or f"check {check_id}",
                        __version__,
                        model_version,
                        len(cells),
                        failed,
                    ],
                )
                if cells:
                    self.con.executemany(
                        "INSERT INTO check_cells VALUES (?, ?, ?, ?, ?)",
                        [(check_id, *cell) for cell in cells],
                    )
        except duckdb.Error as e:
            raise StoreError(f"cannot record the check: {_first_line(e)}", path=self.path) from None
        return label or f"check {check_id}"

    def checks(self) -> list[tuple]:
        """(check_id, label, kreplay_version, model_version, cells, failed), oldest first."""
        return self.con.execute(
            "SELECT check_id, label, kreplay_version, model_version, cells, failed "
            "FROM checks ORDER BY check_id"
        ).fetchall()

    def check_history(
        self, trace: str | None, revision: str | None, metrics: list[str] | None, last: int
    ) -> list[tuple]:
        """(check_id, label, trace, revision, status, metric, value) of the cells of the
        last `last` checks, filtered; every metric when `metrics` is None, none when it is
        empty (metric and value are NULL then, and for a cell without a Result)."""
        wanted = "m.name IN (SELECT unnest($metrics::VARCHAR[]))" if metrics else "false"
        if metrics is None:
            wanted = "true"
        return self.con.execute(
            f"""
            SELECT c.check_id, k.label, c.trace, c.revision, c.status, m.name, m.value
            FROM check_cells c JOIN checks k USING (check_id)
            LEFT JOIN metrics m ON m.run_key = c.run_key AND {wanted}
            WHERE c.check_id > (SELECT coalesce(max(check_id), 0) FROM checks) - $last
              AND ($trace IS NULL OR c.trace = $trace)
              AND ($revision IS NULL OR c.revision = $revision)
            ORDER BY c.check_id, c.trace, c.revision, m.name
            """,
            {"trace": trace, "revision": revision, "last": last}
            | ({"metrics": metrics} if metrics else {}),
        ).fetchall()

    # ------------------------------------------------------------------ ops cache

    _OP_COLUMNS = ("kind", "pid", "tid", "cpu", "tick", "arg", "arg2", "line")

    def cached_ops(self, trace_id: int, version: str) -> tuple[dict, str, str] | None:
        """(columns, preflight JSON, initial-threads JSON) of a derivation, if cached."""
        meta = self.con.execute(
            "SELECT preflight, initial FROM op_sets WHERE trace_id = ? AND version = ?",
            [trace_id, version],
        ).fetchone()
        if meta is None:
            return None
        arrays = self.con.execute(
            f"SELECT {', '.join(self._OP_COLUMNS)} FROM ops "
            "WHERE trace_id = ? AND version = ? ORDER BY idx",
            [trace_id, version],
        ).fetchnumpy()  # then tolist(): 3x faster than list() aggregates to Python lists
        return {c: arrays[c].tolist() for c in self._OP_COLUMNS}, meta[0], meta[1]

    def save_ops(
        self,
        trace_id: int,
        version: str,
        columns: dict[str, list[int]],
        preflight: str,
        initial: str,
    ) -> None:
        """Cache a derivation: one bulk insert of the columns, in one transaction."""
        unnests = ", ".join(f"unnest(${i + 3}::BIGINT[])" for i in range(len(self._OP_COLUMNS)))
        n = len(columns["kind"])
        try:
            with self.transaction():
                self.con.execute(
                    "DELETE FROM ops WHERE trace_id = ? AND version = ?", [trace_id, version]
                )
                self.con.execute(
                    "DELETE FROM op_sets WHERE trace_id = ? AND version = ?", [trace_id, version]
                )
                if n:
                    self.con.execute(
                        f"INSERT INTO ops SELECT $1, $2, unnest(range({n})), {unnests}",
                        [trace_id, version] + [columns[c] for c in self._OP_COLUMNS],
                    )
                self.con.execute(
                    "INSERT INTO op_sets VALUES (?, ?, ?, ?, ?)",
                    [trace_id, version, n, preflight, initial],
                )
        except duckdb.Error as e:
            raise StoreError(f"cannot cache ops: {_first_line(e)}", path=self.path) from None

    def first_parse_errors(self, trace_id: int, limit: int) -> list[tuple[int, str, str]]:
        return self.con.execute(
            "SELECT line, reason, text FROM parse_errors WHERE trace_id = ? ORDER BY line LIMIT ?",
            [trace_id, limit],
        ).fetchall()

    def query(self, sql: str, limit: int = 0) -> QueryRows:
        """A user's SQL: one statement of QUERY_TYPES, on a store opened with sandbox=True.
        At most `limit` rows (0: all), fetched in batches as they are read; `cut` is set
        once the batches are read."""
        if not self.read_only:
            raise StoreError("a user's query runs only on a store opened read-only")
        kind = self._statement_kind(sql)
        try:
            cursor = self.con.cursor()  # its own result: the count below runs beside it
            cursor.execute(sql)
            columns = [d[0] for d in cursor.description] if cursor.description else []
        except duckdb.Error as e:
            raise StoreError(f"query failed: {_first_line(e)}", path=self.path) from None
        rows = QueryRows(columns, iter(()), 0)
        rows.batches = self._batches(cursor, sql, kind, limit, rows)
        return rows

    def _statement_kind(self, sql: str) -> str:
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as e:
            raise StoreError(f"query failed: {_first_line(e)}", path=self.path) from None
        if len(statements) != 1:
            raise StoreError(f"kreplay sql runs one statement, not {len(statements)}")
        kind = statements[0].type.name
        if kind not in QUERY_TYPES:
            raise StoreError(
                f"kreplay sql is read-only: {kind} statements are refused "
                f"(it runs {' and '.join(QUERY_TYPES)})"
            )
        return kind

    def _batches(self, cursor, sql: str, kind: str, limit: int, rows: QueryRows):
        left = limit or None
        try:
            while left is None or left > 0:
                batch = cursor.fetchmany(SQL_BATCH if left is None else min(left, SQL_BATCH))
                if not batch:
                    return
                if left is not None:
                    left -= len(batch)
                yield batch
            rows.cut = self._rows_beyond(sql, kind, cursor, limit)
        except duckdb.Error as e:
            raise StoreError(f"query failed: {_first_line(e)}", path=self.path) from None
        finally:
            cursor.close()

    def _rows_beyond(self, sql: str, kind: str, cursor, limit: int) -> int:
        """How many rows past the limit: a count of the query (DuckDB plans it without its
        columns), else by reading the rest (an EXPLAIN is short)."""
        if kind != "SELECT":
            return sum(len(b) for b in iter(lambda: cursor.fetchmany(SQL_BATCH), []))
        query = sql.strip().rstrip(";")
        return self.con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0] - limit


def _store_failed(path: str, error: Exception) -> StoreError:
    """A DuckDB error as the one line a user sees: a store another process holds, a damaged
    file, or what DuckDB said."""
    text = _first_line(error)
    held = re.search(r"Conflicting lock is held in .*?\(PID (\d+)\)", str(error))
    if held:
        return StoreLocked(
            f"the store is in use by another process (pid {held[1]}), which writes it or "
            "reads it: retry when it finishes",
            path=path,
        )
    if "Corrupt database file" in text or "Could not read enough bytes" in text:
        return StoreError(
            f"the store file is damaged ({text}); ingest the traces into a new store",
            path=path,
        )
    return StoreError(f"the store failed: {text}", path=path)


def _guarded(method: Callable) -> Callable:
    """The method with any DuckDB error it meets as a StoreError naming the store."""

    @functools.wraps(method)
    def run(self: "Store", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except duckdb.Error as e:
            raise _store_failed(self.path, e) from None

    return run


# Every method, so that no DuckDB error leaves the store as anything but a StoreError (a
# context manager's or generator's body is guarded where it runs: watched, _batches).
for _name, _method in list(vars(Store).items()):
    if callable(_method) and not _name.startswith("__"):
        setattr(Store, _name, _guarded(_method))


def _refuse(source: str, error: tuple | None, events: int) -> None:
    """The refusal of a trace: no event in it, or (--strict) a parse error."""
    if error is None:
        raise TraceFormatError("no kdump record in this file", path=source)
    line, text, reason = error
    what = "no kdump record in this file; first bad line" if not events else "parse error"
    raise TraceFormatError(f"{what}: {reason}: {_clip(text)}", path=source, line=line)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _clip(text: str | None, width: int = 80) -> str:
    text = text or ""
    return repr(text if len(text) <= width else text[:width] + "...")
