"""Where the records of a binary ktrace.out are, and whether a kernel could have written
them (spec/kdump-format.md §2).

A ktrace.out is a chain: each header gives the offset of the next record, which a Python
loop walks at about 1 M records/s. find_records walks it with numpy instead: possible
headers are looked for in a short probe at the start of every SEGMENT bytes, and walks
from each of them and from byte 0 go on at the same time, one numpy step per record for
all walks; a walk stops where another one starts, and the walks byte 0 leads through are
the chain. check_records then holds every record to the rules of check_one, which says in
words what is wrong with the first bad record.
"""

import struct
from dataclasses import dataclass

import numpy as np

from kreplay.errors import TraceFormatError
from kreplay.ingest.ktrace_layout import (
    AMD64,
    CAPFAIL,
    CSW,
    GENIO,
    I386,
    KINDS,
    KTR_TYPE,
    KTR_USER_MAXLEN,
    KTR_VERSIONED,
    LEN_TYPE,
    MAX_LEN,
    MAX_NARG,
    MAX_TYPE,
    NARG,
    PID_MAX,
    PROBE,
    SEGMENT,
    STRUCT_ARRAY,
    SYSCALL,
    USER,
    Abi,
)

HEADER_FIELDS = ("len", "type", "version", "pid", "sec", "frac", "tid", "cpu")
COMM_FIELDS = ("comm0", "comm1", "comm2")


def check_records(head, offsets, buf, data, nbytes: int, abi: Abi, path: str) -> None:
    """Every record's header is possible and its ktr_len fits its type; else the error
    at the first record that breaks a rule."""
    impossible = np.flatnonzero(~possible(head, offsets, nbytes, abi))
    if len(impossible):
        first = int(impossible[0])
        raise format_error(path, data, int(offsets[first]), first + 1, nbytes, abi)
    check_lengths(head, offsets, buf, data, nbytes, abi, path)


def choose_abi(data: bytearray, nbytes: int, probe: int = 64) -> Abi:
    """amd64, unless the first records read as i386 and not as amd64."""
    for abi in (AMD64, I386):
        off = 0
        for _ in range(probe):
            if off >= nbytes:
                break
            size, reason = check_one(data, off, nbytes, abi)
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
        rows = byte_rows(buf, PROBE + abi.header_v1)[probes]
        r, c = np.nonzero(_maybe_headers(rows, PROBE, abi))
        at = np.concatenate([at, probes[r] + c])
        at = at[at <= last]
    head = struct_view(buf, abi.header_dtype())[at]
    keep = possible(head, at, nbytes, abi)
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


def possible(head: dict, at: np.ndarray, nbytes: int, abi: Abi) -> np.ndarray:
    """The header rules of check_one, for many headers at once."""
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
        structs = struct_view(buf, LEN_TYPE)
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


def find_records(buf, data: bytearray, nbytes: int, abi: Abi, path: str) -> np.ndarray:
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
        size, reason = check_one(data, off, nbytes, abi)
        if reason:
            return format_error(path, data, off, record, nbytes, abi, not_ktrace=off == 0)
        off, record = off + size, record + 1


def byte_rows(buf: np.ndarray, width: int) -> np.ndarray:
    """A view of the bytes as overlapping rows: row i is buf[i : i + width]."""
    shape = (len(buf) - width + 1, width)
    return np.lib.stride_tricks.as_strided(buf, shape=shape, strides=(1, 1), writeable=False)


def struct_view(buf: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The bytes as overlapping structs: item i is the struct at offset i. Indexing it
    with offsets copies whole structs, one memcpy each."""
    shape = (len(buf) - dtype.itemsize + 1,)
    return np.ndarray(shape=shape, dtype=dtype, buffer=buf, strides=(1,))


def cut_fields(buf: np.ndarray, at: np.ndarray, dtype: np.dtype, names) -> dict[str, np.ndarray]:
    """The fields `names` of the struct of this dtype at each offset in `at` (as views
    into one array of the structs)."""
    structs = struct_view(buf, dtype)[at]
    return {name: structs[name] for name in names}


def check_lengths(head, offsets, buf, data, nbytes, abi, path) -> None:
    """Every record's ktr_len fits its type (the headers passed possible); else an error
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
    narg = cut_fields(buf, offsets[at[calls]] + header_size(head, abi)[at[calls]], NARG, ("narg",))
    narg = narg["narg"]
    wrong[calls] |= (narg < 0) | (narg > MAX_NARG) | (n[calls] != abi.args_at + abi.word * narg)
    bad += at[wrong].tolist()
    if bad:
        index = min(bad)
        raise format_error(path, data, int(offsets[index]), index + 1, nbytes, abi)


def header_size(head, abi: Abi) -> np.ndarray:
    return np.where((head["type"] & KTR_VERSIONED) != 0, abi.header_v1, abi.header_v0)


def check_one(data: bytearray, off: int, nbytes: int, abi: Abi) -> tuple[int, str | None]:
    """(record size, None) for a possible record at `off`, else (0, why not). The rules
    of possible and check_lengths, one record at a time, in words. Beyond what kdump
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


def format_error(path, data, off, record, nbytes, abi, not_ktrace=False) -> TraceFormatError:
    reason = check_one(data, off, nbytes, abi)[1] or "not a record header"
    where = f"byte offset {off} (record {record}, {abi.name} layout)"
    prefix = "not a binary ktrace.out: " if not_ktrace else ""
    return TraceFormatError(f"{prefix}{where}: {reason}", path=path)
