"""One chunk of kdump text (whole lines) in, its events, continuations and parse errors
out as column arrays for the narrow tables (kreplay/schema.py).

The compiled scan (kdump_scan.py) reads the lines whose reading is certain; the others go
through the per-line SQL of kdump_sql.line_parse_sql, in a private in-memory DuckDB (it
reads only the lines handed to it, never the store). Then the compiled resolve decides,
for all lines at once, which are events, which continue which record and which are
errors. Strings leave as per-chunk dictionaries (command names, syscall names, fault
results: a number per row) or as object arrays of the side tables' rows.
"""

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np

from kreplay.ingest import kdump_scan as ks
from kreplay.ingest.kdump import Layout
from kreplay.ingest.kdump_sql import LINE_COLUMNS, line_parse_sql
from kreplay.schema import KIND_CODE, RET_KINDS, Strings

NULL = ks.NULL_INT
_REASONS = {
    ks.R_BLANK: "blank line",
    ks.R_GIO: "GIO data line without its GIO record before it",
    ks.R_STRU: "struct array element without its STRU record before it",
}
_CORE_INTS = ("pid", "tid", "cpu", "ts", "sysnum", "retval", "errno", "prot")


@dataclass
class ParsedChunk:
    lines: int
    first_line: int
    core: dict[str, np.ndarray]  # seq: the event's ordinal in the chunk
    comm: Strings
    syscall: Strings
    fault: Strings
    sides: dict[str, dict[str, np.ndarray]]  # side table -> columns (seq: ordinal)
    errors: dict[str, np.ndarray]  # line, text, reason
    conts: int = 0
    drops: int = 0
    first_error: int | None = None  # the line of the first error
    error_ts: tuple[int, int] | None = None  # (min, max) ts of the error lines that have one
    error_drops: int = 0

    @property
    def events(self) -> int:
        return len(self.core["seq"])


class ChunkParser:
    """Parses chunks of one file's layout; thread-safe (each parse its own DuckDB
    connection, _connection)."""

    def __init__(self, layout: Layout, *, all_sql: bool = False):
        """all_sql: every non-empty line read by SQL (tests compare the two tiers)."""
        self.layout, self.all_sql = layout, all_sql
        opts = layout.opts
        widths = layout.ts_widths if opts.timestamps else ()
        self._args = (
            opts.tid,
            np.array([w[0] for w in widths], dtype=np.int64),
            np.array([w[1] for w in widths], dtype=np.int64),
            opts.cpu,
            opts.abi,
            ks._TAG_BYTES,
            ks._TAG_KIND,
        )
        self._sql = line_parse_sql(layout, "hard")
        self._other = f"not a kdump record line (options {opts})"
        self._local = threading.local()

    def _fields(self, nlines: int) -> np.ndarray:
        """This thread's field matrix, reused from chunk to chunk: numpy allocates it with
        huge pages, and it is written only once, not page-faulted in for every chunk."""
        F = getattr(self._local, "F", None)
        if F is None or len(F) < nlines:
            F = self._local.F = np.empty((nlines + nlines // 4, ks.NFIELDS), dtype=np.int64)
        return F

    def parse(self, buf: np.ndarray, first_line: int, nlines: int) -> ParsedChunk:
        """buf: the chunk's bytes (uint8, every line ending in a newline)."""
        F = ks.scan(buf, self._fields(nlines), *self._args)
        if self.all_sql:
            F[F[:, ks.LE] > F[:, ks.LS], ks.TIER] = 1
        hard = np.flatnonzero(F[:, ks.TIER] == 1)
        rows = self._hard_rows(buf, F, hard, first_line)
        for j, i in enumerate(hard):
            F[i, ks.CAND], F[i, ks.SHAPE], F[i, ks.OWNS] = rows[j][1], rows[j][2], rows[j][3]
        cls, owner, ordinal = ks.resolve(F)
        fast = np.flatnonzero((cls == 0) & (F[:, ks.TIER] == 0))
        slow = [(j, i) for j, i in enumerate(hard) if cls[i] == 0]
        out = _Columns(buf, F, fast, ordinal)
        out.add_rows([rows[j] for j, _ in slow], ordinal[[i for _, i in slow]])
        chunk = out.chunk(nlines, first_line)
        self._add_conts(chunk, buf, F, cls, owner, ordinal)
        self._add_errors(chunk, buf, F, cls, hard, rows, first_line)
        chunk.drops = int(np.count_nonzero(chunk.core["kind"] == KIND_CODE["DROP"]))
        return chunk

    def _hard_rows(self, buf, F, hard, first_line) -> list[tuple]:
        if len(hard) == 0:
            return []
        starts, ends = F[hard, ks.LS], F[hard, ks.LE]
        texts = np.empty(len(hard), dtype=object)
        texts[:] = _decode(ks.gather(buf, starts, ends))
        with _connection() as con:
            con.register("hard", {"line": hard + first_line, "text": texts})
            try:
                return con.execute(self._sql + " ORDER BY line").fetchall()
            finally:
                con.unregister("hard")

    def _add_conts(self, chunk, buf, F, cls, owner, ordinal) -> None:
        owners, counts, joined = ks.join_conts(buf, F, cls, owner)
        chunk.conts = int(counts.sum())
        chunk.sides["event_conts"] = {
            "seq": ordinal[owners],
            "cont_lines": counts,
            "cont": _objects(_decode(joined)),
        }

    def _add_errors(self, chunk, buf, F, cls, hard, rows, first_line) -> None:
        bad = np.flatnonzero(cls == 2)
        texts = _objects(_decode(ks.gather(buf, F[bad, ks.LS], F[bad, ks.LE])))
        reasons = np.empty(len(bad), dtype=object)
        codes = F[bad, ks.REASON]
        for code, reason in _REASONS.items():
            reasons[codes == code] = reason
        reasons[codes == ks.R_OTHER] = self._other
        sql = {i: rows[j] for j, i in enumerate(hard) if cls[i] == 2}
        for k, i in enumerate(bad):
            if i in sql:
                reasons[k], texts[k] = sql[i][4], sql[i][5]
        # The traces row counts these as the old staged rows did: a header line that is an
        # error still has its timestamp (first_ts, last_ts), a dropped-events line its kind.
        ts = [r[_TS] for r in sql.values() if r[_TS] is not None]
        chunk.error_ts = (min(ts), max(ts)) if ts else None
        chunk.error_drops = sum(1 for r in sql.values() if r[_KIND] == "DROP")
        chunk.errors = {"line": bad + first_line, "text": texts, "reason": reasons}
        chunk.first_error = int(bad[0]) + first_line if len(bad) else None


# Private in-memory DuckDBs for the per-line SQL, kept from ingest to ingest: opening one
# costs ~21 ms, more than the parse of a small file (a fuzz case, a short recording).
_IDLE: queue.SimpleQueue = queue.SimpleQueue()


@contextmanager
def _connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """An idle connection of this process, or a new one; one thread uses it at a time."""
    try:
        con = _IDLE.get_nowait()
    except queue.Empty:
        con = duckdb.connect(config={"threads": 1})
    try:
        yield con
    finally:
        _IDLE.put(con)


def _decode(joined: np.ndarray) -> list[str]:
    return joined.tobytes().decode("utf-8", "backslashreplace").split("\0")[:-1]


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _strings(buf, starts, ends, rows) -> tuple[np.ndarray, list[str]]:
    """Per-row numbers of the byte strings at rows (-1 starts: none) and the values."""
    have = np.flatnonzero(starts[rows] >= 0) if len(rows) else rows
    sel = rows[have]
    ids = np.full(len(rows), NULL, dtype=np.int64)
    local, first = ks.intern(buf, starts[sel], ends[sel])
    ids[have] = local
    values = _decode(ks.gather(buf, starts[sel][first], ends[sel][first]))
    return ids, values


class _Columns:
    """The event rows of one chunk: those the scan read, then those SQL read."""

    def __init__(self, buf, F, fast, ordinal):
        self.buf, self.fast = buf, fast
        self.T = np.empty((ks.NFIELDS, len(fast)), dtype=np.int64)
        ks.take(F, fast, self.T)  # T[field]: that field of every event row, contiguous
        self.seq = ordinal[fast]
        self.extra_rows: list[tuple] = []
        self.extra_seq = np.empty(0, dtype=np.int64)

    def add_rows(self, rows: list[tuple], seqs: np.ndarray) -> None:
        self.extra_rows, self.extra_seq = rows, seqs

    def chunk(self, nlines: int, first_line: int) -> ParsedChunk:
        T, fast, buf = self.T, self.fast, self.buf
        every = np.arange(len(fast))
        kind = T[ks.KIND]
        rk = T[ks.RET_KIND]
        core = {
            "seq": self.seq,
            "line": fast + first_line,
            "pid": T[ks.PID].copy(),  # copies: a view would keep all of T alive
            "tid": T[ks.TID].copy(),
            "cpu": T[ks.CPU].copy(),
            "ts": T[ks.TS].copy(),
            "kind": kind.copy(),
            "sysnum": np.full(len(fast), NULL, dtype=np.int64),
            "retval": np.where((rk == 1) | (rk == 2), T[ks.RETVAL], NULL),
            "errno": np.where(rk == 2, T[ks.ERRNO], NULL),
            "ret_kind": rk.copy(),
            "addr": np.where(kind == KIND_CODE["PFLT"], T[ks.ADDR], 0).view(np.uint64),
            "prot": np.where(kind == KIND_CODE["PFLT"], T[ks.PROT], NULL),
        }
        comm_ids, comms = _strings(buf, T[ks.COMM_S], T[ks.COMM_E], every)
        call = np.flatnonzero((kind == KIND_CODE["CALL"]) | (kind == KIND_CODE["RET"]))
        sys_ids = np.full(len(fast), NULL, dtype=np.int64)
        sys_ids[call], names = _strings(buf, T[ks.NAME_S], T[ks.NAME_E], call)
        pret = np.flatnonzero(kind == KIND_CODE["PRET"])
        fault_ids = np.full(len(fast), NULL, dtype=np.int64)
        fault_ids[pret], faults = _strings(buf, T[ks.STR_S], T[ks.STR_E], pret)
        chunk = ParsedChunk(
            lines=nlines,
            first_line=first_line,
            core=core,
            comm=Strings(comms, comm_ids),
            syscall=Strings(names, sys_ids),
            fault=Strings(faults, fault_ids),
            sides=self._sides(kind),
            errors={},
        )
        _append_rows(chunk, self.extra_rows, self.extra_seq)
        return chunk

    def _text(self, rows: np.ndarray, s: int, e: int) -> np.ndarray:
        T = self.T
        return _objects(_decode(ks.gather(self.buf, T[s][rows], T[e][rows])))

    def _sides(self, kind: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        T, seq = self.T, self.seq
        call = np.flatnonzero((kind == KIND_CODE["CALL"]) & (T[ks.ARGS_S] >= 0))
        path = np.flatnonzero((kind == KIND_CODE["NAMI"]) | (kind == KIND_CODE["SCTL"]))
        sides = {
            "event_args": {"seq": seq[call], "args": self._text(call, ks.ARGS_S, ks.ARGS_E)},
            "event_paths": {"seq": seq[path], "path": self._text(path, ks.STR_S, ks.STR_E)},
        }
        sides["event_details"] = self._details(kind)
        return sides

    def _details(self, kind: np.ndarray) -> dict[str, np.ndarray]:
        T = self.T
        csw, gio = kind == KIND_CODE["CSW"], kind == KIND_CODE["GIO"]
        raw = np.isin(kind, [KIND_CODE[k] for k in ("USER", "STRU", "CAP", "ARGS", "ENVS", "EERR")])
        rows = np.flatnonzero(csw | gio | raw)
        r = rows
        flags = T[ks.FLAGS][r]
        is_csw, is_gio = csw[rows], gio[rows]
        text = np.full(len(rows), None, dtype=object)
        have = np.flatnonzero(T[ks.STR_S][r] >= 0)
        text[have] = self._text(r[have], ks.STR_S, ks.STR_E)
        none = np.full(len(rows), None, dtype=object)
        return {
            "seq": self.seq[rows],
            "abi": none,
            "signal": none,
            "sig_action": none,
            "sig_code": none,
            "csw": np.where(is_csw, np.where(flags & 1, "stop", "resume"), None).astype(object),
            "csw_mode": np.where(is_csw, np.where(flags & 2, "user", "kernel"), None).astype(
                object
            ),
            "wmesg": np.where(is_csw, text, None).astype(object),
            "gio_fd": np.where(is_gio, T[ks.GIO_FD][r], NULL),
            "gio_dir": np.where(is_gio, np.where(flags & 1, "read", "wrote"), None).astype(object),
            "gio_bytes": np.where(is_gio, T[ks.GIO_BYTES][r], NULL),
            "body": np.where(is_csw | is_gio, None, text).astype(object),
        }


_WIDE = LINE_COLUMNS  # the columns line_parse_sql puts before the event's
_TS, _KIND = len(_WIDE) + 4, len(_WIDE) + 5


def _append_rows(chunk: ParsedChunk, rows: list[tuple], seqs: np.ndarray) -> None:
    """The events SQL read (line_parse_sql rows), appended to the chunk's columns."""
    if not rows:
        return
    names = [
        "pid", "tid", "comm", "cpu", "ts", "kind", "abi", "syscall", "sysnum", "args",
        "retval", "errno", "ret_kind", "addr", "prot", "fault_result", "path", "signal",
        "sig_action", "sig_code", "csw", "csw_mode", "wmesg", "gio_fd", "gio_dir",
        "gio_bytes", "body",
    ]  # fmt: skip
    cols = {name: [r[len(_WIDE) + k] for r in rows] for k, name in enumerate(names)}
    core = chunk.core
    add = {
        "seq": seqs,
        "line": np.array([r[0] for r in rows], dtype=np.int64),
        "kind": np.array([KIND_CODE[k] for k in cols["kind"]], dtype=np.int64),
        "ret_kind": np.array([RET_KINDS.index(k) for k in cols["ret_kind"]], dtype=np.int64),
        "addr": np.array([a or 0 for a in cols["addr"]], dtype=np.uint64),
    }
    for name in _CORE_INTS:
        add[name] = np.array([NULL if v is None else v for v in cols[name]], dtype=np.int64)
    for name, values in add.items():
        core[name] = np.concatenate([core[name], values])
    _extend(chunk.comm, cols["comm"])
    _extend(chunk.syscall, cols["syscall"])
    _extend(chunk.fault, cols["fault_result"])
    _extend_sides(chunk, seqs, cols)


def _extend(strings: Strings, values: list) -> None:
    index = {v: i for i, v in enumerate(strings.values)}
    ids = np.empty(len(values), dtype=np.int64)
    for k, v in enumerate(values):
        if v is None:
            ids[k] = NULL
            continue
        if v not in index:
            index[v] = len(strings.values)
            strings.values.append(v)
        ids[k] = index[v]
    strings.ids = np.concatenate([strings.ids.astype(np.int64), ids])


def _extend_sides(chunk: ParsedChunk, seqs: np.ndarray, cols: dict[str, list]) -> None:
    sides = chunk.sides
    for table, column in (("event_args", "args"), ("event_paths", "path")):
        have = [k for k, v in enumerate(cols[column]) if v is not None]
        values = _objects([cols[column][k] for k in have])
        _concat(sides[table], {"seq": seqs[have], column: values})
    details = sides["event_details"]
    names = [c for c in details if c != "seq"]
    have = [k for k in range(len(seqs)) if any(cols[c][k] is not None for c in names)]
    add = {"seq": seqs[have]}
    for c in names:
        values = [cols[c][k] for k in have]
        if c in ("gio_fd", "gio_bytes"):
            add[c] = np.array([NULL if v is None else v for v in values], dtype=np.int64)
        else:
            add[c] = _objects(values)
    _concat(details, add)


def _concat(table: dict[str, np.ndarray], add: dict[str, np.ndarray]) -> None:
    for name in table:
        table[name] = np.concatenate([table[name], add[name]])
