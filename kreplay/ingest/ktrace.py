"""Binary ktrace.out: the bytes of a recording in, event columns out (spec/kdump-format.md §2).

A ktrace.out has no file header: it is record after record, each a `ktr_header` and
`ktr_len` payload bytes, in the native layout of the traced machine. amd64 headers are 56
bytes (v0, kernels before FreeBSD 14) or 64 bytes (v1), chosen per record by the
KTR_VERSIONED bit; i386 ones are 44 or 48. A file's ABI is the one its first records read
under.

Finding the records is a chain (each header gives the offset of the next one), which a
Python loop walks at about 1 M records/s on the project's machine. So the chain is found in
bulk with numpy: every byte position whose bytes could begin a header is a candidate, the
successor of every candidate is computed at once, and a run of candidates that each lead to
the next is part of the chain as soon as its first one is. Python only steps over the few
candidates that are not records (payload bytes that look like a header). Header and fixed
payload fields are then cut out of all records at once, as rows of a strided view of the
bytes. Only variable-length payloads (paths, signal, struct and exec bodies) are decoded
record by record.

The result is columns for DuckDB to read; ktrace_sql.py turns them into the staged rows the
store inserts, with the values the kdump text parse gives for the same recording.
"""

import struct
from dataclasses import dataclass

import numpy as np

from kreplay.errors import TraceFormatError
from kreplay.ingest.ktrace_bodies import DECODERS, TEXT_COLUMNS
from kreplay.ingest.ktrace_layout import (
    AMD64,
    BATCH,
    CAPFAIL,
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
    KINDS,
    KTR_DROP,
    KTR_TYPE,
    KTR_USER_MAXLEN,
    KTR_VERSIONED,
    LEN_TYPE,
    MAX_LEN,
    MAX_NARG,
    MAX_TYPE,
    NAMEI,
    NARG,
    PID_MAX,
    PROBE,
    RET_DTYPE,
    SEGMENT,
    STRUCT_ARRAY,
    SYSCALL,
    SYSCTL,
    SYSRET,
    USER,
    Abi,
    field_dtype,
    struct_dtype,
)

HEADER_FIELDS = ("len", "type", "version", "pid", "sec", "frac", "tid", "cpu")
COMM_FIELDS = ("comm0", "comm1", "comm2")


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
    return any(_check_one(head, 0, len(head), abi)[1] is None for abi in (AMD64, I386))


def decode(data: bytearray, nbytes: int, path: str) -> Decoded:
    """Decode the records of data[:nbytes] (followed by PAD zero bytes)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    abi = _choose_abi(data, nbytes)
    offsets = _chain(buf, data, nbytes, abi, path)
    head = _cut(buf, offsets, abi.header_dtype(), HEADER_FIELDS + COMM_FIELDS)
    impossible = np.flatnonzero(~_possible(head, offsets, nbytes, abi))
    if len(impossible):
        first = int(impossible[0])
        raise _format_error(path, data, int(offsets[first]), first + 1, nbytes, abi)
    _check_lengths(head, offsets, buf, data, nbytes, abi, path)
    records = _Records(buf, data, offsets, head, abi)
    return Decoded(abi.name, len(offsets), int(records.versioned.any()), records.tables())


def _choose_abi(data: bytearray, nbytes: int, probe: int = 64) -> Abi:
    """amd64, unless the first records read as i386 and not as amd64."""
    for abi in (AMD64, I386):
        off = 0
        for _ in range(probe):
            if off >= nbytes:
                break
            size, reason = _check_one(data, off, nbytes, abi)
            if reason:
                break
            off += size
        else:
            return abi
        if off >= nbytes:
            return abi
    return AMD64  # neither: report the error as amd64 reads it


def _lane_starts(buf: np.ndarray, nbytes: int, abi: Abi) -> np.ndarray:
    """Offset 0 and every possible header in a short probe at the start of each segment of
    the file (a superset of the records there)."""
    last = nbytes - abi.header_v0  # the last offset with room for a header
    probes = np.arange(SEGMENT, nbytes - PROBE, SEGMENT, dtype=np.int64)
    at = np.zeros(1, dtype=np.int64)
    if len(probes):
        rows = _rows(buf, PROBE + abi.header_v1)[probes]
        r, c = np.nonzero(_maybe_headers(rows, PROBE, abi))
        at = np.concatenate([at, probes[r] + c])
        at = at[at <= last]
    head = _structs(buf, abi.header_dtype())[at]
    keep = _possible(head, at, nbytes, abi)
    keep[0] = True  # the first record is checked by the walk, with its error if bad
    return at[keep]


def _maybe_headers(rows: np.ndarray, width: int, abi: Abi) -> np.ndarray:
    """For rows of bytes, for each of the first `width` offsets of a row: could a header
    start there, by its bytes? (A type 1-18 with flag bits only in its top two bits, a
    length below 16 MiB, a pid from 1 to 2**24, a fraction of a second.)"""

    def byte(i: int) -> np.ndarray:
        return rows[:, i : i + width]

    frac_top = 31 + 2 * abi.word  # the fraction's most significant byte: < 0x3B9ACA00
    maybe = (byte(4) - np.uint8(1)) < MAX_TYPE
    maybe &= byte(3) == 0
    maybe &= (byte(5) & np.uint8(0x3F)) == 0
    maybe &= byte(11) == 0
    maybe &= (byte(8) | byte(9) | byte(10)) != 0
    maybe &= byte(frac_top) == 0 if abi.word == 8 else byte(frac_top) <= 0x3B
    return maybe


def _possible(head: dict, at: np.ndarray, nbytes: int, abi: Abi) -> np.ndarray:
    """The header rules of _check_one, for many headers at once."""
    rtype, length = head["type"] & KTR_TYPE, head["len"]
    versioned = (head["type"] & KTR_VERSIONED) != 0
    ok = (rtype >= 1) & (rtype <= MAX_TYPE) & (length >= 0) & (length <= MAX_LEN)
    ok &= (head["pid"] >= 1) & (head["pid"] <= PID_MAX)
    ok &= (head["frac"] >= 0) & (head["frac"] < np.where(versioned, 10**9, 10**6))
    v1 = (head["version"] == 1) & (head["tid"] > PID_MAX) & (at + abi.header_v1 <= nbytes)
    return ok & (~versioned | v1) & (at + abi.header_v0 <= nbytes)


_EOF, _BAD, _JOINS = 0, 1, 2  # how a lane ends


@dataclass
class _Lanes:
    """Walks from many starting offsets at once, one record per step each, until each
    reaches the start of another lane, the end of the file, or a bad record."""

    starts: np.ndarray
    steps: list  # per step: (lane ids, offsets) of the records read
    end: np.ndarray  # _EOF, _BAD or _JOINS
    end_at: np.ndarray  # the bad offset, or the lane joined

    @classmethod
    def walk(cls, buf: np.ndarray, nbytes: int, abi: Abi, starts: np.ndarray) -> "_Lanes":
        """Only what it takes to step is read here (ktr_len, type, version): the whole
        header of every record on the chain is checked once the chain is known."""
        n = len(starts)
        end, end_at = np.full(n, _BAD, dtype=np.int8), np.zeros(n, dtype=np.int64)
        lanes, at, steps = np.arange(n), starts.copy(), []
        structs = _structs(buf, LEN_TYPE)
        ahead = np.append(starts, np.iinfo(np.int64).max)  # a sentinel start past the end
        next_start = np.arange(1, n + 1)  # per lane: the first start after its position
        while len(lanes):
            head = structs[at]
            rtype, length = head["type"], head["len"]
            ok = ((rtype & KTR_TYPE) - 1 < MAX_TYPE) & (length >= 0) & (length <= MAX_LEN)
            if not ok.all():
                end_at[lanes[~ok]] = at[~ok]
                lanes, at, rtype, length = lanes[ok], at[ok], rtype[ok], length[ok]
            steps.append((lanes, at))
            versioned = (rtype & KTR_VERSIONED) != 0
            following = at + np.where(versioned, abi.header_v1, abi.header_v0) + length
            join = next_start[lanes]
            while (behind := ahead[join] < following).any():
                join[behind] += 1
            next_start[lanes] = join
            joins = ahead[join] == following
            eof = following == nbytes
            end[lanes[eof]] = _EOF
            end[lanes[joins]], end_at[lanes[joins]] = _JOINS, join[joins]
            bad = following > nbytes  # a truncated record: the error is at its offset
            end_at[lanes[bad]] = at[bad]
            stop = eof | joins | bad
            lanes, at = (lanes[~stop], following[~stop]) if stop.any() else (lanes, following)
        return cls(starts, steps, end, end_at)

    def chain(self, path: str, data: bytearray, nbytes: int, abi: Abi) -> np.ndarray:
        """The record offsets from 0 to the end of the file: the lanes that lane 0 leads
        through, joined; or the error at the first bad record on that way."""
        counts = np.zeros(len(self.starts), dtype=np.int64)
        for lanes, _ in self.steps:
            counts[lanes] += 1
        base = np.full(len(self.starts), -1, dtype=np.int64)
        lane, total = 0, 0
        while True:
            base[lane], total = total, total + counts[lane]
            if self.end[lane] == _BAD:
                raise _first_error(path, data, int(self.end_at[lane]), total + 1, nbytes, abi)
            if self.end[lane] == _EOF:
                break
            lane = int(self.end_at[lane])
        offsets = np.empty(total, dtype=np.int64)
        for step, (lanes, at) in enumerate(self.steps):
            on_path = base[lanes] >= 0
            offsets[base[lanes[on_path]] + step] = at[on_path]
        return offsets


def _chain(buf, data: bytearray, nbytes: int, abi: Abi, path: str) -> np.ndarray:
    """The offsets of the records, in file order from byte 0 to the end of the file. The
    chain is walked from byte 0 and, at the same time (one numpy step per record for all
    of them), from every possible header found at the start of each SEGMENT bytes; a walk
    stops where another one starts, and the walks that byte 0 leads through are the chain."""
    starts = _lane_starts(buf, nbytes, abi)
    return _Lanes.walk(buf, nbytes, abi, starts).chain(path, data, nbytes, abi)


def _first_error(path, data, off, record, nbytes, abi) -> TraceFormatError:
    """The error at the first bad record from `off` on: a record left out of the chain
    only because a later one in it is bad is checked here one by one, up to that one."""
    while True:
        size, reason = _check_one(data, off, nbytes, abi)
        if reason:
            return _format_error(path, data, off, record, nbytes, abi, not_ktrace=off == 0)
        off, record = off + size, record + 1


def _rows(buf: np.ndarray, width: int) -> np.ndarray:
    """A view of the bytes as overlapping rows: row i is buf[i : i + width]."""
    shape = (len(buf) - width + 1, width)
    return np.lib.stride_tricks.as_strided(buf, shape=shape, strides=(1, 1), writeable=False)


def _structs(buf: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The bytes as overlapping structs: item i is the struct at offset i. Indexing it
    with offsets copies whole structs, one memcpy each."""
    shape = (len(buf) - dtype.itemsize + 1,)
    return np.ndarray(shape=shape, dtype=dtype, buffer=buf, strides=(1,))


def _cut(buf: np.ndarray, at: np.ndarray, dtype: np.dtype, names) -> dict[str, np.ndarray]:
    """The fields `names` of the struct of this dtype at each offset in `at` (as views
    into one array of the structs)."""
    structs = _structs(buf, dtype)[at]
    return {name: structs[name] for name in names}


# ---------------------------------------------------------------------------- checks


def _check_lengths(head, offsets, buf, data, nbytes, abi, path) -> None:
    """Every record's ktr_len fits its type (the headers passed _possible); else an error
    at the first record whose length does not."""
    rtype, length = head["type"] & KTR_TYPE, head["len"]
    expected = np.full(MAX_TYPE + 1, -1, dtype=np.int64)
    for t, n in abi.fixed_lengths().items():
        expected[t] = n
    fixed = expected[rtype]
    bad = np.flatnonzero((fixed >= 0) & (length != fixed)).tolist()
    ruled = np.zeros(MAX_TYPE + 1, dtype=bool)
    ruled[[GENIO, CSW, USER, CAPFAIL, STRUCT_ARRAY, SYSCALL]] = True
    at = np.flatnonzero(ruled[rtype])  # the types with a rule of their own
    t, n = rtype[at], length[at]
    wrong = (t == GENIO) & (n < 8)
    wrong |= (t == CSW) & (n != 8) & (n != 16)
    wrong |= (t == USER) & (n > KTR_USER_MAXLEN)
    wrong |= (t == CAPFAIL) & ~np.isin(n, abi.capfail_lengths)
    wrong |= (t == STRUCT_ARRAY) & (n < abi.word)
    calls = t == SYSCALL
    narg = _cut(buf, offsets[at[calls]] + _header_size(head, abi)[at[calls]], NARG, ("narg",))
    narg = narg["narg"]
    wrong[calls] |= (narg < 0) | (narg > MAX_NARG) | (n[calls] != abi.args_at + abi.word * narg)
    bad += at[wrong].tolist()
    if bad:
        index = min(bad)
        raise _format_error(path, data, int(offsets[index]), index + 1, nbytes, abi)


def _header_size(head, abi: Abi) -> np.ndarray:
    return np.where((head["type"] & KTR_VERSIONED) != 0, abi.header_v1, abi.header_v0)


def _check_one(data: bytearray, off: int, nbytes: int, abi: Abi) -> tuple[int, str | None]:
    """(record size, None) for a possible record at `off`, else (0, why not). The rules
    of _possible and _check_lengths, one record at a time, in words. Beyond what kdump
    checks: pid 0 (the kernel) is never traced, thread ids are above PID_MAX, and
    timestamp fractions below a second: garbage seldom passes all of them."""
    left = nbytes - off
    if left < abi.header_v0:
        return 0, f"truncated record header: {left} bytes left, a header has {abi.header_v0}"
    length, rtype, version, pid = struct.unpack_from("<iHHi", data, off)
    versioned, rtype = rtype & KTR_VERSIONED, rtype & KTR_TYPE
    size = abi.header_v1 if versioned else abi.header_v0
    frac, tid = struct.unpack_from("<qq" if abi.word == 8 else "<ii", data, off + 32 + abi.word)
    checks = (
        (versioned and left < size, f"truncated record header: {left} bytes left, a v1 header "
         f"has {size}"),
        (not 1 <= rtype <= MAX_TYPE, f"unknown record type {rtype} (ktrace types are 1-18)"),
        (length < 0 or length > MAX_LEN, f"impossible ktr_len {length}"),
        (versioned and version != 1, f"header version {version} (only version 1 exists)"),
        (not 1 <= pid <= PID_MAX, f"impossible pid {pid}"),
        (versioned and tid <= PID_MAX, f"impossible thread id {tid}"),
        (not 0 <= frac < (10**9 if versioned else 10**6), f"impossible timestamp fraction {frac}"),
    )  # fmt: skip
    for failed, reason in checks:
        if failed:
            return 0, reason
    if length > left - size:
        return 0, f"truncated record: ktr_len {length}, {left - size} bytes left after the header"
    reason = _length_problem(data, off + size, rtype, length, abi)
    return (0, reason) if reason else (size + length, None)


def _length_problem(data: bytearray, payload: int, rtype: int, length: int, abi: Abi) -> str:
    name = f"{KINDS[rtype]} record (type {rtype}) with ktr_len {length}"
    fixed = abi.fixed_lengths().get(rtype)
    if fixed is not None and length != fixed:
        return f"{name}, expected {fixed}"
    if rtype == SYSCALL:
        narg = struct.unpack_from("<h", data, payload + 2)[0] if length >= 4 else -1
        if not 0 <= narg <= MAX_NARG or length != abi.args_at + abi.word * narg:
            return f"{name}: does not hold the {narg} arguments it announces"
    rules = {
        GENIO: (length >= 8, "shorter than its fixed part"),
        CSW: (length in (8, 16), "expected 8 or 16"),
        USER: (length <= KTR_USER_MAXLEN, f"longer than {KTR_USER_MAXLEN}"),
        CAPFAIL: (length in abi.capfail_lengths, f"expected one of {abi.capfail_lengths}"),
        STRUCT_ARRAY: (length >= abi.word, "shorter than its fixed part"),
    }
    ok, why = rules.get(rtype, (True, ""))
    return "" if ok else f"{name}: {why}"


def _format_error(path, data, off, record, nbytes, abi, not_ktrace=False) -> TraceFormatError:
    reason = _check_one(data, off, nbytes, abi)[1] or "not a record header"
    where = f"byte offset {off} (record {record}, {abi.name} layout)"
    prefix = "not a binary ktrace.out: " if not_ktrace else ""
    return TraceFormatError(f"{prefix}{where}: {reason}", path=path)


# ---------------------------------------------------------------------------- columns


class _Records:
    """The checked records of one file as tables of columns, one table per group of
    kinds (ktrace_sql.py reads them): every table has the header columns of its rows and
    the payload columns of its kinds, so that no table has to be joined to another."""

    def __init__(self, buf, data, offsets, head, abi: Abi):
        self.buf, self.data, self.offsets, self.head, self.abi = buf, data, offsets, head, abi
        self.rtype = (head["type"] & KTR_TYPE).astype(np.uint8)
        self.versioned = (head["type"] & KTR_VERSIONED) != 0
        self.payload = offsets + _header_size(head, abi)
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
        cut = _cut(self.buf, self.payload[at], struct_dtype(fields, 72), tuple(fields))
        out = self._header(at) | {"sysnum": cut["code"], "narg": cut["narg"]}
        for i in range(MAX_NARG):  # past narg: the next bytes of the file (SQL ignores them)
            out[f"a{i}"] = cut[f"a{i}"].astype(np.uint64, copy=False)
        return out

    def _rets(self) -> dict[str, np.ndarray]:
        """RET: the syscall number, the RET form (RET_KINDS), the value and the error."""
        at = self._of(SYSRET)
        ret = _cut(
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
        fault = _cut(self.buf, self.payload[at], FAULT_DTYPE[self.abi.word], ("vaddr", "type"))
        return self._header(at) | {"addr": fault["vaddr"].astype(np.uint64), "prot": fault["type"]}

    def _fault_ends(self) -> dict[str, np.ndarray]:
        at = self._of(FAULTEND)
        result = _cut(self.buf, self.payload[at], field_dtype("<i4", 0), ("v",))["v"]
        return self._header(at) | {"fault_code": result}

    def _gios(self) -> dict[str, np.ndarray]:
        at = self._of(GENIO)
        gio = _cut(self.buf, self.payload[at], GIO_DTYPE, ("fd", "rw"))
        return self._header(at) | {
            "gio_fd": gio["fd"],
            "gio_read": gio["rw"] == 0,  # UIO_READ
            "gio_bytes": self.head["len"][at].astype(np.int64) - 8,
        }

    def _switches(self) -> dict[str, np.ndarray]:
        """CSW: out, user, and the wait message (none in the 8-byte records of kernels
        before it was added)."""
        at = self._of(CSW)
        cut = _cut(self.buf, self.payload[at], CSW_DTYPE, ("out", "user"))
        has_wmesg = self.head["len"][at] == 16
        wmesg = self._c_strings(self.payload[at] + 8, np.where(has_wmesg, 8, 0))
        return self._header(at) | {
            "stop": cut["out"] != 0,
            "user": cut["user"] != 0,
            "wmesg": _strings(wmesg),
        }

    def _paths(self) -> dict[str, np.ndarray]:
        """NAMI and SCTL: the string, as kdump prints it with `%.*s` (up to a NUL)."""
        at = self._of(NAMEI, SYSCTL)
        paths = self._c_strings(self.payload[at], self.head["len"][at])
        return self._header(at) | {"rtype": self.rtype[at], "path": _strings(paths)}

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

    def _c_strings(self, starts: np.ndarray, lengths: np.ndarray) -> list[str]:
        """The strings of `lengths` bytes at `starts`, each cut at its first NUL, cut out
        a batch at a time as rows of the batch's longest length."""
        out: list[str] = []
        for a in range(0, len(starts), BATCH):
            s, n = starts[a : a + BATCH], lengths[a : a + BATCH].astype(np.int64)
            width = int(n.max(initial=0))
            if width == 0:
                out.extend([""] * len(s))
                continue
            fits = s + width <= len(self.buf)
            rows = np.zeros((len(s), width), dtype=np.uint8)
            rows[fits] = _rows(self.buf, width)[s[fits]]
            for i in np.flatnonzero(~fits):  # the last records of the file
                rows[i, : n[i]] = self.buf[s[i] : s[i] + n[i]]
            rows[np.arange(width) >= n[:, None]] = 0
            rows[np.logical_or.accumulate(rows == 0, axis=1)] = 0
            raw = rows.view(f"S{width}")[:, 0].tolist()
            out.extend(r.decode("utf-8", "backslashreplace") for r in raw)
        return out


def _comm_keys(head: dict) -> np.ndarray:
    """A 64-bit hash of each record's 20 bytes of ktr_comm."""
    key = head["comm0"] * np.uint64(0x9E3779B97F4A7C15)
    return key ^ head["comm1"] * np.uint64(0xC2B2AE3D27D4EB4F) ^ head["comm2"].astype(np.uint64)


def _strings(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out
