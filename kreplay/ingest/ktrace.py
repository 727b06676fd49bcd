"""Binary ktrace.out: the bytes of a recording in, event columns out (spec/kdump-format.md §2).

A ktrace.out has no file header: it is record after record, each a `ktr_header` and
`ktr_len` payload bytes, in the native layout of the traced machine (ktrace_layout.py).
ktrace_chain.py finds the records and checks them; here their header and fixed payload
fields are cut out of all records at once (one gather of whole structs per kind), and only
variable-length payloads (ktrace_bodies.py) are decoded record by record.

The result is columns for DuckDB to read, one table per group of kinds; ktrace_sql.py
turns them into the staged rows the store inserts, with the values the kdump text parse
gives for the same recording.
"""

from dataclasses import dataclass

import numpy as np

from kreplay.ingest.ktrace_bodies import DECODERS, TEXT_COLUMNS, c_string
from kreplay.ingest.ktrace_chain import (
    COMM_FIELDS,
    HEADER_FIELDS,
    byte_rows,
    check_one,
    check_records,
    choose_abi,
    cut_fields,
    find_records,
    header_size,
)
from kreplay.ingest.ktrace_layout import (
    AMD64,
    BATCH,
    CSW,
    CSW_DTYPE,
    EJUSTRETURN,
    ERESTART,
    FAULT,
    FAULT_DTYPE,
    FAULTEND,
    GENIO,
    GIO_DTYPE,
    I386,
    KTR_DROP,
    KTR_TYPE,
    KTR_VERSIONED,
    MAX_NARG,
    NAMEI,
    RET_DTYPE,
    SYSCALL,
    SYSCTL,
    SYSRET,
    Abi,
    field_dtype,
    struct_dtype,
)


@dataclass
class Decoded:
    """A ktrace.out as columns: `tables` maps a table name to its columns (numpy arrays of
    equal length), for DuckDB to read (ktrace_sql.py says what each one holds)."""

    abi: str
    records: int
    header_version: int  # 1 if any record has a v1 header, else 0
    tables: dict[str, dict[str, np.ndarray]]


def looks_like_ktrace(head: bytes) -> bool:
    """The first bytes of a file start with a whole, possible ktrace record (amd64 or
    i386). kdump text never does: its first bytes read as a length above 1 MiB."""
    return any(check_one(head, 0, len(head), abi)[1] is None for abi in (AMD64, I386))


def decode(data: bytearray, nbytes: int, path: str) -> Decoded:
    """Decode the records of data[:nbytes] (followed by PAD zero bytes)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    abi = choose_abi(data, nbytes)
    offsets = find_records(buf, data, nbytes, abi, path)
    head = cut_fields(buf, offsets, abi.header_dtype(), HEADER_FIELDS + COMM_FIELDS)
    check_records(head, offsets, buf, data, nbytes, abi, path)
    records = _Records(buf, data, offsets, head, abi)
    return Decoded(abi.name, len(offsets), int(records.versioned.any()), records.tables())


class _Records:
    """The checked records of one file as tables of columns, one table per group of
    kinds (ktrace_sql.py reads them): every table has the header columns of its rows and
    the payload columns of its kinds, so that no table has to be joined to another."""

    def __init__(self, buf, data, offsets, head, abi: Abi):
        self.buf, self.data, self.offsets, self.head, self.abi = buf, data, offsets, head, abi
        self.rtype = (head["type"] & KTR_TYPE).astype(np.uint8)
        self.versioned = (head["type"] & KTR_VERSIONED) != 0
        self.payload = offsets + header_size(head, abi)
        # A dropped-events marker comes just before its record: seq of record i.
        dropped = (head["type"] & KTR_DROP) != 0
        self.seq = np.arange(len(offsets), dtype=np.int64) + np.cumsum(dropped)
        self.drops = np.flatnonzero(dropped)
        self.comm = _strings([])

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        ids, names = self._comms()
        self.comm = _strings(names)[ids]  # per record, the one str object of its name
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

    def _header(self, at: np.ndarray) -> dict[str, np.ndarray]:
        """The header columns of the records at these indices."""
        head, versioned = self.head, self.versioned[at]
        frac = head["frac"][at].astype(np.int64)
        return {
            "seq": self.seq[at],
            "line": at + 1,  # the record's ordinal
            "byte_offset": self.offsets[at],
            "pid": head["pid"][at],
            "tid": np.maximum(head["tid"][at].astype(np.int64), 0),  # kdump prints < 0 as 0
            "comm": self.comm[at],
            "cpu": head["cpu"][at],
            "has_cpu": versioned,  # v0 headers have no cpu
            "ts": head["sec"][at].astype(np.int64) * 10**9 + np.where(versioned, frac, frac * 1000),
        }

    def _comms(self) -> tuple[np.ndarray, list[str]]:
        """Distinct thread names, by a hash of their 20 bytes (sorting 8 bytes a record,
        not 20); a collision, checked for, falls back to the bytes themselves."""
        h = self.head
        key = _comm_keys(h)
        distinct = np.sort(np.unique(key, sorted=False))  # a hash table, not a sort of all
        ids = np.searchsorted(distinct, key)
        first = np.empty(len(distinct), dtype=np.int64)
        first[ids] = np.arange(len(key))  # some record of each name
        if not all(np.array_equal(h[p][first][ids], h[p]) for p in ("comm0", "comm1", "comm2")):
            exact = np.stack([h["comm0"], h["comm1"], h["comm2"].astype(np.uint64)], axis=1)
            _, first, ids = np.unique(exact, axis=0, return_index=True, return_inverse=True)
            ids = ids.ravel()
        names = [self._comm_at(int(self.offsets[i])) for i in first]
        return ids, names

    def _comm_at(self, off: int) -> str:
        raw = bytes(self.data[off + 12 : off + 31]).split(b"\0", 1)[0]  # MAXCOMLEN = 19
        return raw.decode("utf-8", "backslashreplace").rstrip(" ")

    def _of(self, *rtypes: int) -> np.ndarray:
        return np.flatnonzero(np.isin(self.rtype, rtypes))

    def _calls(self) -> dict[str, np.ndarray]:
        """CALL: the syscall number, narg and the arguments a0..a7 (unsigned)."""
        w, at = self.abi.word, self._of(SYSCALL)
        fields = {"code": ("<i2", 0), "narg": ("<i2", 2)}
        fields |= {f"a{i}": (f"<u{w}", self.abi.args_at + i * w) for i in range(MAX_NARG)}
        cut = cut_fields(self.buf, self.payload[at], struct_dtype(fields, 72), tuple(fields))
        out = self._header(at) | {"sysnum": cut["code"], "narg": cut["narg"]}
        for i in range(MAX_NARG):  # past narg: the next bytes of the file (SQL ignores them)
            out[f"a{i}"] = cut[f"a{i}"].astype(np.uint64, copy=False)
        return out

    def _rets(self) -> dict[str, np.ndarray]:
        """RET: the syscall number, the RET form (RET_KINDS), the value and the error."""
        at = self._of(SYSRET)
        ret = cut_fields(
            self.buf, self.payload[at], RET_DTYPE[self.abi.word], ("code", "error", "retval")
        )
        error = ret["error"]
        form = np.select([error == 0, error == ERESTART, error == EJUSTRETURN], [1, 3, 4], 2)
        return self._header(at) | {
            "sysnum": ret["code"],
            "ret_kind": form.astype(np.uint8),
            "retval": np.where(form == 1, ret["retval"].astype(np.int64), -1),
            "errno": error,
        }

    def _faults(self) -> dict[str, np.ndarray]:
        at = self._of(FAULT)
        fault = cut_fields(
            self.buf, self.payload[at], FAULT_DTYPE[self.abi.word], ("vaddr", "type")
        )
        return self._header(at) | {"addr": fault["vaddr"].astype(np.uint64), "prot": fault["type"]}

    def _fault_ends(self) -> dict[str, np.ndarray]:
        at = self._of(FAULTEND)
        result = cut_fields(self.buf, self.payload[at], field_dtype("<i4", 0), ("v",))["v"]
        return self._header(at) | {"fault_code": result}

    def _gios(self) -> dict[str, np.ndarray]:
        at = self._of(GENIO)
        gio = cut_fields(self.buf, self.payload[at], GIO_DTYPE, ("fd", "rw"))
        return self._header(at) | {
            "gio_fd": gio["fd"],
            "gio_read": gio["rw"] == 0,  # UIO_READ
            "gio_bytes": self.head["len"][at].astype(np.int64) - 8,
        }

    def _switches(self) -> dict[str, np.ndarray]:
        """CSW: out, user, and the wait message (none in the 8-byte records of kernels
        before it was added)."""
        at = self._of(CSW)
        cut = cut_fields(self.buf, self.payload[at], CSW_DTYPE, ("out", "user"))
        has_wmesg = self.head["len"][at] == 16
        wmesg = self._c_strings(self.payload[at] + 8, np.where(has_wmesg, 8, 0))
        return self._header(at) | {
            "stop": cut["out"] != 0,
            "user": cut["user"] != 0,
            "wmesg": wmesg,
        }

    def _paths(self) -> dict[str, np.ndarray]:
        """NAMI and SCTL: the string, as kdump prints it with `%.*s` (up to a NUL)."""
        at = self._of(NAMEI, SYSCTL)
        paths = self._c_strings(self.payload[at], self.head["len"][at])
        return self._header(at) | {"rtype": self.rtype[at], "path": paths}

    def _texts(self) -> dict[str, np.ndarray]:
        """The kinds decoded record by record (ktrace_bodies.py)."""
        at = self._of(*DECODERS)
        mv, rtypes = memoryview(self.data), self.rtype[at].tolist()
        payload, length = self.payload[at].tolist(), self.head["len"][at].tolist()
        rows = [
            DECODERS[t](bytes(mv[p : p + n]), self.abi)
            for t, p, n in zip(rtypes, payload, length, strict=True)
        ]
        columns = list(zip(*rows, strict=True)) or [()] * len(TEXT_COLUMNS)
        out = self._header(at) | {"rtype": self.rtype[at]}
        return out | {name: _strings(v) for name, v in zip(TEXT_COLUMNS, columns, strict=True)}

    def _drops(self) -> dict[str, np.ndarray]:
        """The "Events dropped." markers: who, no time, no cpu (as kdump prints them)."""
        header = self._header(self.drops)
        names = ("line", "byte_offset", "pid", "tid", "comm")
        return {"seq": header["seq"] - 1} | {name: header[name] for name in names}

    def _c_strings(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The strings of `lengths` bytes at `starts`, each cut at its first NUL. Strings
        up to SHORT bytes are cut out a batch at a time as rows of the batch's longest
        length; longer ones one by one (one long path must not widen a whole batch)."""
        lengths = lengths.astype(np.int64)
        out = np.empty(len(starts), dtype=object)
        data = memoryview(self.data)
        for i in np.flatnonzero(lengths > SHORT).tolist():
            out[i] = c_string(bytes(data[starts[i] : starts[i] + lengths[i]]))
        short = np.flatnonzero(lengths <= SHORT)
        for a in range(0, len(short), BATCH):
            idx = short[a : a + BATCH]
            s, n = starts[idx], lengths[idx]
            width = int(n.max(initial=0))
            if width == 0:
                out[idx] = ""
                continue
            fits = s + width <= len(self.buf)
            rows = np.zeros((len(s), width), dtype=np.uint8)
            rows[fits] = byte_rows(self.buf, width)[s[fits]]
            for k in np.flatnonzero(~fits):  # the last records of the file
                rows[k, : n[k]] = self.buf[s[k] : s[k] + n[k]]
            rows[np.arange(width) >= n[:, None]] = 0
            rows[np.logical_or.accumulate(rows == 0, axis=1)] = 0
            raw = rows.view(f"S{width}")[:, 0].tolist()
            out[idx] = [r.decode("utf-8", "backslashreplace") for r in raw]
        return out


SHORT = 256  # bytes: the longest string cut out in a batch (most paths are far shorter)


def _comm_keys(head: dict) -> np.ndarray:
    """A 64-bit hash of each record's 20 bytes of ktr_comm."""
    key = head["comm0"] * np.uint64(0x9E3779B97F4A7C15)
    return key ^ head["comm1"] * np.uint64(0xC2B2AE3D27D4EB4F) ^ head["comm2"].astype(np.uint64)


def _strings(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out
