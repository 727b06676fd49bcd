"""Binary ktrace.out: the bytes of a recording in, event columns out (spec/kdump-format.md §2).

A ktrace.out has no file header: it is record after record, each a `ktr_header` and
`ktr_len` payload bytes, in the native layout of the traced machine (ktrace_layout.py).
The file is read a window of WINDOW_BYTES at a time (source.BinaryStream; a record cut by
a window's end starts the next). ktrace_chain.py finds and checks a window's records in
one compiled walk; ktrace_cut.py cuts the headers and fixed payload fields of a chunk of
them into the tables' columns in another; the strings are decoded all at once, and only
the payloads kdump prints as text (ktrace_bodies.py) record by record.

The result is the rows of the store's narrow tables (schema.py), as a text ingest
writes them: the same event_core columns, side tables and per-trace dictionaries, with
the values the kdump text parse gives for the same recording (numbers become kdump's
names here: syscall names, RET forms, vm_fault results, CALL arguments as `kdump -n`
prints them).
"""

from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np

from kreplay.ingest import ktrace_cut as cut
from kreplay.ingest.ahead import made_ahead
from kreplay.ingest.ktrace_bodies import DECODERS, TEXT_COLUMNS
from kreplay.ingest.ktrace_chain import COMM_AT, comm_ids, find_records, layout_array
from kreplay.ingest.ktrace_layout import (
    AMD64,
    CSW,
    FAULT,
    FAULTEND,
    GENIO,
    I386,
    KINDS,
    KTR_DROP,
    KTR_TYPE,
    KTR_VERSIONED,
    MAX_LEN,
    MAX_NARG,
    MAX_TYPE,
    MAXCOMLEN,
    NAMEI,
    PAD,
    SYSCALL,
    SYSCTL,
    SYSRET,
    Abi,
)
from kreplay.ingest.ktrace_rules import choose_abi, format_error
from kreplay.ingest.source import BinaryStream, Input
from kreplay.ingest.sysdecode import FAULT_RESULTS, SYSCALL_NAMES
from kreplay.schema import KIND_CODE, NULL_INT, Batch, Dictionary, Strings

SPREAD = np.uint64(0x9E3779B97F4A7C15)  # comm_ids' hash multiplier (Fibonacci hashing)

# The groups of kinds ktrace_cut.cut_records puts the header rows in, in the order of
# their numbers: each group's rows are consecutive, in file order.
TABLES = {
    "kt_calls": (SYSCALL,),
    "kt_rets": (SYSRET,),
    "kt_faults": (FAULT,),
    "kt_fault_ends": (FAULTEND,),
    "kt_gios": (GENIO,),
    "kt_csws": (CSW,),
    "kt_paths": (NAMEI, SYSCTL),
    "kt_texts": tuple(DECODERS),
}

WINDOW_BYTES = 64 << 20  # bytes of the file read and checked at a time (the reader's memory)
CHUNK_RECORDS = 1_000_000  # records cut and written at a time (~200 MB of columns)
MAX_RECORD = max(abi.header_v1 for abi in (AMD64, I386)) + MAX_LEN  # a window keeps one


class Reader:
    """A ktrace.out read a window at a time (memory does not grow with the file), its
    records found and checked, then cut into batches of the store's narrow tables
    (schema.Batch) a chunk at a time. A bad record raises the file's error, at its byte
    offset, when the reader reaches it: the batches before it are in the transaction the
    error rolls back. What the trace's row needs (sha256, size, header version) is known
    after the last batch."""

    def __init__(self, source: Input):
        self.path = source.path
        self.stream = BinaryStream(source, WINDOW_BYTES, MAX_RECORD, PAD)
        self.records = 0
        self.header_version = 0  # 1 if any record has a v1 header
        self.abi: Abi | None = None

    def batches(self) -> Iterator[Batch]:
        """The batches, each made on a helper thread while DuckDB writes the one before
        (ahead.py)."""
        return made_ahead(self._batches())

    def _batches(self) -> Generator[Batch, None, None]:
        stream, used = self.stream, 0
        trace = _Trace(Dictionary(), Dictionary(), Dictionary())
        dropped = 0
        while stream.next(used):
            data, nbytes = stream.buf, stream.nbytes
            abi = self.abi = self.abi or choose_abi(data, nbytes, whole=stream.last)
            offsets, types, used = find_records(data, nbytes, abi)
            if used < nbytes and (stream.last or nbytes - used >= MAX_RECORD):  # a bad record
                n = self.records + len(offsets) + 1
                raise format_error(self.path, data, used, nbytes, abi, base=stream.base, record=n)
            self.header_version |= int(np.any(types & KTR_VERSIONED))
            comm_id = _comm_ids(data, offsets, trace)
            base = stream.base
            for first in range(0, len(offsets), CHUNK_RECORDS):
                rows = slice(first, first + CHUNK_RECORDS)
                records = _Records(data, base, offsets[rows], types[rows], abi, comm_id[rows])
                records.renumber(self.records + first, dropped)
                dropped += len(records.drop_rows)
                yield records.batch(trace)
            self.records += len(offsets)


def _comm_ids(data: np.ndarray, offsets: np.ndarray, trace: "_Trace") -> np.ndarray:
    """The trace's number of each record's thread name (two byte strings may print alike)."""
    local = np.empty(len(offsets), dtype=np.int32)
    firsts = comm_ids(data, offsets, SPREAD, local)
    names = [_comm_at(data, int(f)) for f in firsts]
    return trace.comms.map(Strings(names, local)).astype(np.int32)


def _comm_at(data: np.ndarray, off: int) -> str:
    raw = bytes(data[off + COMM_AT : off + COMM_AT + MAXCOMLEN]).split(b"\0", 1)[0]
    return raw.decode("utf-8", "backslashreplace").rstrip(" ")


@dataclass
class _Trace:
    """The trace's dictionaries, across its chunks."""

    comms: Dictionary
    syscalls: Dictionary
    faults: Dictionary


class _Records:
    """A chunk of a file's checked records as columns: the header columns of every
    record, grouped by TABLES, and the payload columns of each kind."""

    def __init__(self, data, base: int, offsets, types, abi: Abi, comm_id: np.ndarray):
        """data: the window (byte `base` of the file on) that holds the records at
        `offsets`."""
        self.data, self.base, self.abi = data, base, abi
        by_type = np.bincount(types & KTR_TYPE, minlength=MAX_TYPE + 1)
        counts = [int(by_type[list(kinds)].sum()) for kinds in TABLES.values()]
        self.first = np.concatenate(([0], np.cumsum(counts)))  # each table's header rows
        table_of = np.zeros(MAX_TYPE + 1, dtype=np.int64)
        for number, kinds in enumerate(TABLES.values()):
            table_of[list(kinds)] = number
        # The columns of every record (ktrace_cut.cut_records), into arrays numpy allocates.
        self.header = cut.empty(cut.HEADER, len(offsets))
        self.payloads = {t: cut.empty(dtypes, by_type[t]) for t, dtypes in cut.PAYLOADS.items()}
        self.core = self._core_payloads(len(offsets))
        self.args = np.empty((MAX_NARG, by_type[SYSCALL]), dtype=np.uint64)
        self.drop_rows = np.empty(np.count_nonzero(types & KTR_DROP), dtype=np.int64)
        p = {t: tuple(columns.values()) for t, columns in self.payloads.items()}
        self.paths, self.wmesgs = cut.cut_records(
            self.data, offsets, types, layout_array(self.abi), table_of, self.first,
            comm_id, tuple(self.header.values()),
            self.drop_rows, p[SYSCALL], self.args, p[SYSRET], p[FAULT], p[FAULTEND],
            p[GENIO], p[CSW],
        )  # fmt: skip
        self.rtype = (types & KTR_TYPE)[self.header["line"] - 1]  # per row; line: the ordinal

    def _core_payloads(self, n: int) -> dict[str, np.ndarray]:
        """The event_core columns of payload fields, one array each for all the chunk's
        rows (so event_core is one insert, not a part per kind: DuckDB writes it in about
        half the time, 1.3 s against 2.45 s for 5 M records): the kinds' rows are ranges
        of them (TABLES' groups), and their payload columns here are views of those
        ranges, which cut_records fills. The other rows hold what is stored as NULL
        (BATCH_COLUMNS: NULL_INT; retval and addr are read by the row's kind, and
        ret_kind is 0 off the RETs, as text stores it)."""
        core = {
            "sysnum": np.full(n, NULL_INT),
            "ret_kind": np.zeros(n, np.uint8),
            "retval": np.empty(n, np.int64),
            "addr": np.empty(n, np.uint64),
            "prot": np.full(n, NULL_INT),
        }
        calls, rets, faults = (self._rows(t) for t in ("kt_calls", "kt_rets", "kt_faults"))
        self.payloads[SYSCALL]["sysnum"] = core["sysnum"][calls]
        for column in ("sysnum", "ret_kind", "retval"):  # in place: PAYLOADS' order stays
            self.payloads[SYSRET][column] = core[column][rets]
        for column in ("addr", "prot"):
            self.payloads[FAULT][column] = core[column][faults]
        return core

    def renumber(self, first: int, dropped: int) -> None:
        """The file's line, seq and byte offset, for a chunk that starts at record `first`,
        after `dropped` markers."""
        h = self.header
        h["line"] += first
        h["seq"] += first + dropped
        h["byte_offset"] += self.base

    def batch(self, trace: _Trace) -> Batch:
        """The chunk's records as rows of the narrow tables (schema.py): event_core in
        one part with every column, and one for the dropped-events markers (the store
        writes NULL for the columns a part does not have)."""
        h = self.header
        core = {
            "seq": h["seq"],
            "line": h["line"],
            "byte_offset": h["byte_offset"],
            "pid": h["pid"],
            "tid": h["tid"],
            "ts": h["ts"],
            "kind": _KIND_CODES[self.rtype],
            "comm_id": h["comm"],
            **self.core,
        }
        if h["has_cpu"].all():
            core["cpu"] = h["cpu"]
        elif h["has_cpu"].any():  # v0 headers have no cpu: NULL
            core["cpu"] = np.where(h["has_cpu"], h["cpu"].astype(np.int64), NULL_INT)
        n = len(h["seq"])
        calls_rets = slice(self.first[0], self.first[2])  # kt_calls, then kt_rets
        names = _named(self.core["sysnum"][calls_rets], _syscall)
        syscall_id = core["syscall_id"] = np.full(n, NULL_INT)
        syscall_id[calls_rets] = trace.syscalls.map(names)
        ret = self.payloads[SYSRET]
        errno = core["errno"] = np.full(n, NULL_INT)
        error = ret["ret_kind"] == 2  # errno is i4: widen it, NULL_INT does not fit
        errno[self._rows("kt_rets")] = np.where(error, ret["errno"].astype(np.int64), NULL_INT)
        results = _named(self.payloads[FAULTEND]["fault_code"], _fault_result)
        fault_id = core["fault_id"] = np.full(n, NULL_INT)
        fault_id[self._rows("kt_fault_ends")] = trace.faults.map(results)
        drops = self.drop_rows
        dropped = {c: h[c][drops] for c in ("line", "byte_offset", "pid", "tid")}
        dropped |= {
            "seq": h["seq"][drops] - 1,  # the marker comes before its record
            "comm_id": h["comm"][drops],
            "kind": np.full(len(drops), KIND_CODE["DROP"]),  # no time, no cpu (kdump)
        }
        calls, call = self._rows("kt_calls"), self.payloads[SYSCALL]
        args = cut.format_args(self.args, call["narg"]).tobytes().decode("ascii")
        tables = [("event_core", core), ("event_core", dropped)]
        tables += [
            (
                "event_args",
                {"seq": h["seq"][calls][call["narg"] > 0], "args": _strings(args.split("\0")[:-1])},
            ),
            (
                "event_paths",
                {"seq": h["seq"][self._rows("kt_paths")], "path": _decoded(self.paths)},
            ),
            *self._details(),
            ("comms", trace.comms.take_new("comm_id", "comm")),
            ("syscalls", trace.syscalls.take_new("syscall_id", "syscall")),
            ("fault_results", trace.faults.take_new("fault_id", "fault_result")),
        ]
        nd = len(drops)
        return Batch(
            tables=tables,
            lines=n + nd,
            events=n + nd,
            drops=nd,
            first_ts=int(h["ts"].min()) if n else None,
            last_ts=int(h["ts"].max()) if n else None,
        )

    def _rows(self, table: str) -> slice:
        """The header rows of a table (ktrace_cut.cut_records groups them by table)."""
        number = list(TABLES).index(table)
        return slice(self.first[number], self.first[number + 1])

    def _details(self) -> list[tuple[str, dict]]:
        """event_details, a part per kind of detail: GIO's fd, direction and size;
        CSW's direction, mode and wait message (none in the 8-byte records of kernels
        before it was added); the kinds decoded record by record (ktrace_bodies.py)."""
        h = self.header
        gios, csws, texts = self._rows("kt_gios"), self._rows("kt_csws"), self._rows("kt_texts")
        gio, csw = self.payloads[GENIO], self.payloads[CSW]
        decoded = self._texts()
        keep = np.array([any(v is not None for v in row) for row in decoded], dtype=bool)
        columns = list(zip(*(row for row, k in zip(decoded, keep, strict=True) if k), strict=True))
        text = {
            name: _strings(values)
            for name, values in zip(TEXT_COLUMNS, columns or [()] * len(TEXT_COLUMNS), strict=True)
        }
        wmesg = _decoded(self.wmesgs)
        wmesg[wmesg == ""] = None
        return [
            ("event_details", {
                "seq": h["seq"][gios],
                "gio_fd": gio["fd"],
                "gio_dir": _choose(gio["rw"] == 0, "read", "wrote"),  # UIO_READ is 0
                "gio_bytes": h["length"][gios] - 8,  # the 8-byte ktr_genio, then the data
            }),
            ("event_details", {
                "seq": h["seq"][csws],
                "csw": _choose(csw["out"] != 0, "stop", "resume"),
                "csw_mode": _choose(csw["user"] != 0, "user", "kernel"),
                "wmesg": wmesg,
            }),
            ("event_details", {"seq": h["seq"][texts][keep], **text}),
        ]  # fmt: skip

    def _texts(self) -> list[tuple]:
        """The TEXT_COLUMNS of the kinds decoded record by record (ktrace_bodies.py), each
        distinct payload once (signals, process flags and malloc records repeat); the
        body as kdump prints it, without trailing blanks."""
        rows = self._rows("kt_texts")
        h, abi = self.header, self.abi
        rtypes = self.rtype[rows]
        at = h["byte_offset"][rows] - self.base  # in the window
        payload = at + np.where(h["has_cpu"][rows], abi.header_v1, abi.header_v0)
        mv, decoded, out = memoryview(self.data), {}, []
        length = h["length"][rows]
        for t, p, n in zip(rtypes.tolist(), payload.tolist(), length.tolist(), strict=True):
            key = (t, mv[p : p + n].tobytes())
            row = decoded.get(key)
            if row is None:
                body, *rest = DECODERS[t](key[1], abi)
                row = decoded[key] = (None if body is None else body.rstrip(" "), *rest)
            out.append(row)
        return out


# The stored kind of each record type (ktrace_layout.KINDS, by number).
_KIND_CODES = np.array([KIND_CODE[k] for k in KINDS], dtype=np.uint8)


def _named(numbers: np.ndarray, name) -> Strings:
    """A chunk's numbers (syscall numbers, vm_fault results) as the names kdump prints."""
    distinct, local = np.unique(numbers.astype(np.int64), return_inverse=True)
    return Strings([name(int(v)) for v in distinct], local)


def _syscall(number: int) -> str:
    """The syscall's name as kdump prints it: from the table, else `[N]`."""
    return SYSCALL_NAMES.get(number, f"[{number}]")


def _fault_result(code: int) -> str:
    """vm_fault's result as kdump prints it (`<invalid=N>` past the table)."""
    return FAULT_RESULTS[code] if 0 <= code < len(FAULT_RESULTS) else f"<invalid={code}>"


def _choose(condition: np.ndarray, yes: str, no: str) -> np.ndarray:
    return np.where(condition, yes, no).astype(object)


def _decoded(strings: np.ndarray) -> np.ndarray:
    """The strings of ktrace_cut's NUL-separated bytes, decoded at once: a NUL ends any
    UTF-8 sequence, so each string decodes as it would alone."""
    text = strings.tobytes().decode("utf-8", "backslashreplace")
    return _strings(text.split("\0")[:-1])  # the last NUL ends the last string


def _strings(values) -> np.ndarray:
    values = list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
