"""The store's tables (docs/schema.md): a narrow core table of events, side tables for
what is rare or bulky, and the `events` view that joins them back into the columns users'
SQL reads. store.py creates and writes them; ingest encodes into their codes.

Why narrow: DuckDB writes a table of ~30 columns, most of them VARCHARs that are NULL in
most rows, at ~0.9 M rows/s on this machine; the 17 integer columns of event_core at
~1.7 M rows/s, and the side tables hold only the rows that have their fields (measured:
docs/schema.md, "Why this layout").
"""

from dataclasses import dataclass

import numpy as np

SCHEMA_VERSION = 2

# Event kinds as stored (event_core.kind is the index): kdump's tags without padding,
# UNKNOWN for `UNKNOWN(n)`, DROP for "Events dropped.", and the binary-only PCTR, PDTR.
EVENT_KINDS = (
    "CALL",
    "RET",
    "NAMI",
    "GIO",
    "PSIG",
    "CSW",
    "USER",
    "STRU",
    "SCTL",
    "CAP",
    "PFLT",
    "PRET",
    "ARGS",
    "ENVS",
    "EERR",
    "ERR",
    "UNKNOWN",
    "DROP",
    "PCTR",
    "PDTR",
)
KIND_CODE = {kind: code for code, kind in enumerate(EVENT_KINDS)}
# event_core.ret_kind (0: not a RET).
RET_KINDS = (None, "value", "error", "restart", "justreturn")

# (table, DDL body). Dictionaries are per trace: (trace_id, id) -> name.
EVENT_TABLES = {
    "event_core": """
    trace_id INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    line BIGINT,
    byte_offset BIGINT,
    pid INTEGER,
    tid BIGINT,
    cpu INTEGER,
    ts BIGINT,
    kind UTINYINT NOT NULL,
    comm_id INTEGER,
    syscall_id INTEGER,
    sysnum INTEGER,
    retval BIGINT,
    errno INTEGER,
    ret_kind UTINYINT,
    addr UBIGINT,
    prot INTEGER,
    fault_id INTEGER""",
    "event_args": "trace_id INTEGER NOT NULL, seq BIGINT NOT NULL, args VARCHAR",
    "event_paths": "trace_id INTEGER NOT NULL, seq BIGINT NOT NULL, path VARCHAR",
    "event_details": """
    trace_id INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    abi VARCHAR,
    signal VARCHAR,
    sig_action VARCHAR,
    sig_code VARCHAR,
    csw VARCHAR,
    csw_mode VARCHAR,
    wmesg VARCHAR,
    gio_fd INTEGER,
    gio_dir VARCHAR,
    gio_bytes BIGINT,
    body VARCHAR""",
    "event_conts": "trace_id INTEGER NOT NULL, seq BIGINT NOT NULL, cont_lines INTEGER, "
    "cont VARCHAR",
    "comms": "trace_id INTEGER NOT NULL, comm_id INTEGER NOT NULL, comm VARCHAR",
    "syscalls": "trace_id INTEGER NOT NULL, syscall_id INTEGER NOT NULL, syscall VARCHAR",
    "fault_results": "trace_id INTEGER NOT NULL, fault_id INTEGER NOT NULL, fault_result VARCHAR",
}
DETAIL_COLUMNS = (
    "abi",
    "signal",
    "sig_action",
    "sig_code",
    "csw",
    "csw_mode",
    "wmesg",
    "gio_fd",
    "gio_dir",
    "gio_bytes",
    "body",
)


def _list(values) -> str:
    return "[" + ", ".join("NULL" if v is None else f"'{v}'" for v in values) + "]"


# The view's expressions for the columns that are not event_core's own (`e`), by the
# aliases of EVENTS_VIEW's joins.
CORE_EXPRESSIONS = {
    "kind": f"{_list(EVENT_KINDS)}[e.kind + 1] AS kind",
    "ret_kind": f"{_list(RET_KINDS)}[e.ret_kind + 1] AS ret_kind",
    "comm": "c.comm",
    "syscall": "s.syscall",
    "fault_result": "f.fault_result",
    "args": "a.args",
    "signal": "d.signal",
    "sig_action": "d.sig_action",
}

# Today's columns, in their order (docs/schema.md), from the core and side tables.
EVENTS_VIEW = f"""
CREATE OR REPLACE VIEW events AS
SELECT e.trace_id, e.seq, e.line, e.pid, e.tid, c.comm, e.cpu, e.ts,
    {_list(EVENT_KINDS)}[e.kind + 1] AS kind, d.abi, s.syscall, e.sysnum, a.args,
    e.retval, e.errno, {_list(RET_KINDS)}[e.ret_kind + 1] AS ret_kind, e.addr, e.prot,
    f.fault_result, p.path, d.signal, d.sig_action, d.sig_code, d.csw, d.csw_mode, d.wmesg,
    d.gio_fd, d.gio_dir, d.gio_bytes, d.body, n.cont_lines, n.cont, e.byte_offset
FROM event_core e
LEFT JOIN comms c ON c.trace_id = e.trace_id AND c.comm_id = e.comm_id
LEFT JOIN syscalls s ON s.trace_id = e.trace_id AND s.syscall_id = e.syscall_id
LEFT JOIN fault_results f ON f.trace_id = e.trace_id AND f.fault_id = e.fault_id
LEFT JOIN event_args a ON a.trace_id = e.trace_id AND a.seq = e.seq
LEFT JOIN event_paths p ON p.trace_id = e.trace_id AND p.seq = e.seq
LEFT JOIN event_details d ON d.trace_id = e.trace_id AND d.seq = e.seq
LEFT JOIN event_conts n ON n.trace_id = e.trace_id AND n.seq = e.seq
"""

# The narrow tables' rows from in-memory columns (a table registered as `{src}`): integer
# columns arrive as int64 with NULL_INT for NULL (numpy has no NULL), retval and addr are
# NULL by the row's kind instead (every int64 and uint64 is a value they can hold). A
# column a batch does not have is NULL (the text parse has no byte offsets).
NULL_INT = -(2**63)


def _n(column: str) -> tuple[str, str]:
    return column, f"nullif({column}, {NULL_INT})"


def _same(*columns: str) -> tuple[tuple[str, str], ...]:
    return tuple((c, c) for c in columns)


BATCH_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "event_core": (
        *_same("seq", "line"),
        *map(_n, ("byte_offset", "pid", "tid", "cpu", "ts")),
        *_same("kind", "comm_id"),
        *map(_n, ("syscall_id", "sysnum")),
        ("retval", "CASE WHEN ret_kind IN (1, 2) THEN retval END"),
        _n("errno"),
        ("ret_kind", "ret_kind"),
        ("addr", f"CASE WHEN kind = {KIND_CODE['PFLT']} THEN addr END"),
        *map(_n, ("prot", "fault_id")),
    ),
    "event_args": _same("seq", "args"),
    "event_paths": _same("seq", "path"),
    "event_details": (
        ("seq", "seq"),
        *(_n(c) if c in ("gio_fd", "gio_bytes") else (c, c) for c in DETAIL_COLUMNS),
    ),
    "event_conts": _same("seq", "cont_lines", "cont"),
    "comms": _same("comm_id", "comm"),
    "syscalls": _same("syscall_id", "syscall"),
    "fault_results": _same("fault_id", "fault_result"),
    "parse_errors": _same("line", "text", "reason"),
}


def batch_select(table: str, have) -> str:
    """The SELECT list that turns a batch's columns (`have`) into `table`'s row."""
    return ", ".join(expr if c in have else "NULL" for c, expr in BATCH_COLUMNS[table])


@dataclass
class Strings:
    """A per-chunk dictionary: the distinct values, and a number into them per row."""

    values: list[str]
    ids: np.ndarray  # int32, or NULL_INT where the row has none (int64)


class Dictionary:
    """A trace's numbers for one string column (the comms, syscalls and fault_results
    tables): per-chunk numbers to the trace's, each value numbered once."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.new: list[str] = []

    def map(self, strings: Strings) -> np.ndarray:
        table = np.empty(len(strings.values) + 1, dtype=np.int64)
        for k, value in enumerate(strings.values):
            number = self.ids.get(value)
            if number is None:
                number = self.ids[value] = len(self.ids)
                self.new.append(value)
            table[k] = number
        table[-1] = NULL_INT
        local = strings.ids.astype(np.int64)
        return table[np.where(local == NULL_INT, len(strings.values), local)]

    def take_new(self, id_name: str, value_name: str) -> dict[str, np.ndarray]:
        """The numbers given since the last call, as rows of the dictionary table."""
        new, self.new = self.new, []
        values = np.empty(len(new), dtype=object)
        values[:] = new
        first = len(self.ids) - len(new)
        return {id_name: np.arange(first, first + len(new), dtype=np.int64), value_name: values}


@dataclass
class Batch:
    """Rows of a trace for the narrow tables and what they count towards the traces row.
    `tables`: (table, columns) in the order they are written; a table may come more
    than once, each part with the columns it has (BATCH_COLUMNS: the others are NULL;
    seq final)."""

    tables: list[tuple[str, dict]]
    lines: int = 0
    events: int = 0
    conts: int = 0
    errors: int = 0
    drops: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    first_error: tuple | None = None  # (line, text, reason) of its first parse error

    @classmethod
    def merged(cls, batches: list["Batch"]) -> "Batch":
        """One batch of these (each with the same parts), in their order: DuckDB writes
        fewer, larger inserts with less CPU (4.8 M core rows: 3.3 s in one insert, 3.7 s
        in 160 k-row ones, 4.6 s in 40 k-row ones)."""
        if len(batches) == 1:
            return batches[0]
        tables = [
            (name, {c: np.concatenate([b.tables[k][1][c] for b in batches]) for c in columns})
            for k, (name, columns) in enumerate(batches[0].tables)
        ]
        total = Counts()
        for b in batches:
            total.add(b)
        errors = [b.first_error for b in batches if b.first_error is not None]
        return cls(tables, **vars(total), first_error=errors[0] if errors else None)


@dataclass
class Counts:
    lines: int = 0
    events: int = 0
    conts: int = 0
    errors: int = 0
    drops: int = 0
    first_ts: int | None = None
    last_ts: int | None = None

    def add(self, b: Batch) -> None:
        self.lines += b.lines
        self.events += b.events
        self.conts += b.conts
        self.errors += b.errors
        self.drops += b.drops
        if b.first_ts is not None:
            self.first_ts = b.first_ts if self.first_ts is None else min(self.first_ts, b.first_ts)
            self.last_ts = b.last_ts if self.last_ts is None else max(self.last_ts, b.last_ts)
