"""Binary ktrace.out: the bytes of a recording in, event columns out (spec/kdump-format.md §2).

A ktrace.out has no file header: it is record after record, each a `ktr_header` and
`ktr_len` payload bytes, in the native layout of the traced machine (ktrace_layout.py).
ktrace_chain.py finds and checks the records in one compiled walk; ktrace_cut.py cuts the
headers and fixed payload fields of all of them into the tables' columns in another; the
strings are decoded all at once, and only the payloads kdump prints as text
(ktrace_bodies.py) record by record.

The result is columns for DuckDB to read, one table per group of kinds; ktrace_sql.py
turns them into the staged rows the store inserts, with the values the kdump text parse
gives for the same recording.
"""

from dataclasses import dataclass

import numpy as np

from kreplay.ingest import ktrace_cut as cut
from kreplay.ingest.ktrace_bodies import DECODERS, TEXT_COLUMNS
from kreplay.ingest.ktrace_chain import COMM_AT, comm_ids, find_records, layout_array
from kreplay.ingest.ktrace_layout import (
    CSW,
    FAULT,
    FAULTEND,
    GENIO,
    KTR_DROP,
    KTR_TYPE,
    MAX_NARG,
    MAX_TYPE,
    MAXCOMLEN,
    NAMEI,
    SYSCALL,
    SYSCTL,
    SYSRET,
    Abi,
)
from kreplay.ingest.ktrace_rules import choose_abi

SPREAD = np.uint64(0x9E3779B97F4A7C15)  # comm_ids' hash multiplier (Fibonacci hashing)

# The tables, each with the record types of its rows (ktrace_sql.py reads them), in the
# order of their numbers in ktrace_cut.cut_records; kt_drops is made of the others' rows.
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


@dataclass
class Decoded:
    """A ktrace.out as columns: `tables` maps a table name to its columns (numpy arrays of
    equal length), for DuckDB to read (ktrace_sql.py says what each one holds)."""

    abi: str
    records: int
    header_version: int  # 1 if any record has a v1 header, else 0
    tables: dict[str, dict[str, np.ndarray]]


def decode(data: np.ndarray, nbytes: int, path: str) -> Decoded:
    """Decode the records of data[:nbytes] (followed by PAD zero bytes)."""
    abi = choose_abi(data, nbytes)
    offsets, types = find_records(data, nbytes, abi, path)
    records = _Records(data, offsets, types, abi)
    version = int(records.header["has_cpu"].any())  # a v1 header: a cpu
    return Decoded(abi.name, len(offsets), version, records.tables())


class _Records:
    """The checked records of one file as tables of columns, one table per group of
    kinds: every table has the header columns of its rows and the payload columns of its
    kinds, so that no table has to be joined to another."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray, types: np.ndarray, abi: Abi):
        self.data, self.buf, self.abi = data, np.frombuffer(data, dtype=np.uint8), abi
        self.rtype = types & KTR_TYPE
        comm_id = np.empty(len(offsets), dtype=np.int32)
        names = comm_ids(self.buf, offsets, SPREAD, comm_id)
        self.comm_names = _strings(self._comm_at(int(f)) for f in names)
        self._cut(offsets, types, comm_id)

    def _cut(self, offsets: np.ndarray, types: np.ndarray, comm_id: np.ndarray) -> None:
        """The columns of every record (ktrace_cut.cut_records), into arrays numpy
        allocates: the header columns grouped by table, the payload columns by kind."""
        by_type = np.bincount(self.rtype, minlength=MAX_TYPE + 1)
        counts = [int(by_type[list(kinds)].sum()) for kinds in TABLES.values()]
        self.first = np.concatenate(([0], np.cumsum(counts)))  # each table's header rows
        table_of = np.zeros(MAX_TYPE + 1, dtype=np.int64)
        for number, kinds in enumerate(TABLES.values()):
            table_of[list(kinds)] = number
        self.header = cut.empty(cut.HEADER, len(offsets))
        self.payloads = {t: cut.empty(dtypes, by_type[t]) for t, dtypes in cut.PAYLOADS.items()}
        self.args = np.empty((MAX_NARG, by_type[SYSCALL]), dtype=np.uint64)
        self.drop_rows = np.empty(np.count_nonzero(types & KTR_DROP), dtype=np.int64)
        p = {t: tuple(columns.values()) for t, columns in self.payloads.items()}
        self.paths, self.wmesgs = cut.cut_records(
            self.buf, offsets, types, layout_array(self.abi), table_of, self.first, comm_id,
            tuple(self.header.values()), self.drop_rows, p[SYSCALL], self.args, p[SYSRET],
            p[FAULT], p[FAULTEND], p[GENIO], p[CSW],
        )  # fmt: skip

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {
            "kt_calls": self._calls(),
            "kt_rets": self._rets(),
            "kt_faults": self._faults(),
            "kt_fault_ends": self._fault_ends(),
            "kt_gios": self._gios(),
            "kt_csws": self._switches(),
            "kt_paths": self._paths(),
            "kt_texts": self._texts(),
            "kt_drops": self._drops(),
        }

    def _header(self, table: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The header columns of a table's rows (line: the record's ordinal); ktr_len."""
        number = list(TABLES).index(table)
        rows = slice(self.first[number], self.first[number + 1])
        h = {name: column[rows] for name, column in self.header.items()}
        names = ("byte_offset", "seq", "line", "pid", "tid", "cpu", "has_cpu", "ts")
        out = {name: h[name] for name in names} | {"comm": self.comm_names[h["comm"]]}
        return out, h["length"]

    def _comm_at(self, off: int) -> str:
        raw = bytes(self.data[off + COMM_AT : off + COMM_AT + MAXCOMLEN]).split(b"\0", 1)[0]
        return raw.decode("utf-8", "backslashreplace").rstrip(" ")

    def _calls(self) -> dict[str, np.ndarray]:
        """CALL: the syscall number, narg and the arguments a0..a7 (unsigned; zero past
        narg, where SQL does not look)."""
        out = self._header("kt_calls")[0] | self.payloads[SYSCALL]
        return out | {f"a{i}": self.args[i] for i in range(MAX_NARG)}

    def _rets(self) -> dict[str, np.ndarray]:
        """RET: the syscall number, the RET form (RET_KINDS), the value and the error."""
        return self._header("kt_rets")[0] | self.payloads[SYSRET]

    def _faults(self) -> dict[str, np.ndarray]:
        return self._header("kt_faults")[0] | self.payloads[FAULT]

    def _fault_ends(self) -> dict[str, np.ndarray]:
        return self._header("kt_fault_ends")[0] | self.payloads[FAULTEND]

    def _gios(self) -> dict[str, np.ndarray]:
        header, length = self._header("kt_gios")
        gio = self.payloads[GENIO]
        return header | {
            "gio_fd": gio["fd"],
            "gio_read": gio["rw"] == 0,  # UIO_READ
            "gio_bytes": length.astype(np.int64) - 8,
        }

    def _switches(self) -> dict[str, np.ndarray]:
        """CSW: out, user, and the wait message (none in the 8-byte records of kernels
        before it was added)."""
        csw, wmesg = self.payloads[CSW], _decoded(self.wmesgs)
        header = self._header("kt_csws")[0]
        return header | {"stop": csw["out"] != 0, "user": csw["user"] != 0, "wmesg": wmesg}

    def _paths(self) -> dict[str, np.ndarray]:
        """NAMI and SCTL: the string, as kdump prints it with `%.*s` (up to a NUL)."""
        header = self._header("kt_paths")[0]
        return header | {"rtype": self._rtypes(header), "path": _decoded(self.paths)}

    def _texts(self) -> dict[str, np.ndarray]:
        """The kinds decoded record by record (ktrace_bodies.py), each distinct payload
        once (signals, process flags and malloc records repeat)."""
        header, length = self._header("kt_texts")
        abi, rtypes = self.abi, self._rtypes(header)
        payload = header["byte_offset"] + np.where(header["has_cpu"], abi.header_v1, abi.header_v0)
        mv, decoded, rows = memoryview(self.data), {}, []
        for t, p, n in zip(rtypes.tolist(), payload.tolist(), length.tolist(), strict=True):
            key = (t, mv[p : p + n].tobytes())
            row = decoded.get(key)
            if row is None:
                row = decoded[key] = DECODERS[t](key[1], abi)
            rows.append(row)
        columns = list(zip(*rows, strict=True)) or [()] * len(TEXT_COLUMNS)
        out = header | {"rtype": rtypes}
        return out | {name: _strings(v) for name, v in zip(TEXT_COLUMNS, columns, strict=True)}

    def _rtypes(self, header: dict[str, np.ndarray]) -> np.ndarray:
        return self.rtype[header["line"] - 1].astype(np.uint8)  # line: the ordinal

    def _drops(self) -> dict[str, np.ndarray]:
        """The "Events dropped." markers: who, no time, no cpu (as kdump prints them)."""
        h, rows = self.header, self.drop_rows
        names = ("line", "byte_offset", "pid", "tid")
        out = {"seq": h["seq"][rows] - 1} | {name: h[name][rows] for name in names}
        return out | {"comm": self.comm_names[h["comm"][rows]]}


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
