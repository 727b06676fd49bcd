"""Where the records of a binary ktrace.out are, checked, and which thread wrote each
(spec/kdump-format.md §2), in compiled code.

A ktrace.out is a chain: each header gives the offset of the next record, so finding the
records is one sequential walk. It runs compiled (numba, cached on disk after the first
call) at memory speed, checking each record against the rules of ktrace_rules.check_one on
the way; at the first bad record it stops, and check_one says in words what is wrong.
The readers below take little-endian integers from any byte offset (records are not
aligned); ktrace_cut.py cuts the columns with them.
"""

import numpy as np
from numba import njit

from kreplay.ingest.ktrace_layout import (
    CAPFAIL,
    CSW,
    GENIO,
    KTR_TYPE,
    KTR_USER_MAXLEN,
    KTR_VERSIONED,
    L_ARGS,
    L_CAPFAIL,
    L_CAPFAIL_OLD,
    L_CSW,
    L_CSW_OLD,
    L_FRAC,
    L_GENIO,
    L_HEADER_V0,
    L_HEADER_V1,
    L_NARG,
    L_PID,
    L_STRUCT_ARRAY,
    L_TID,
    L_TIME,
    L_TYPE,
    L_VERSION,
    L_WORD,
    LAYOUT,
    MAX_LEN,
    MAX_NARG,
    MAX_TYPE,
    PID_MAX,
    STRUCT_ARRAY,
    SYSCALL,
    USER,
    Abi,
)
from kreplay.ingest.limits import MAX_TS_SECONDS

NS_PER_S, US_PER_S = 10**9, 10**6  # constants to numba (a power in a loop is computed each time)
COMM_AT = LAYOUT["ktr_header.ktr_comm"][0]  # the same in both ABIs and both header versions
assert LAYOUT["ktr_header.ktr_comm"] == LAYOUT["ktr_header_v0.ktr_comm"] == (COMM_AT, COMM_AT)
# The compiled code reads a v0 header's time and tid where a v1 header has them.
assert all(
    LAYOUT[f"ktr_header_v0.{f}"] == LAYOUT[f"ktr_header.{f}"] for f in ("ktr_time", "ktr_tid")
)  # noqa: E501
assert LAYOUT["timeval.tv_usec"] == LAYOUT["timespec.tv_nsec"]


def layout_array(abi: Abi) -> np.ndarray:
    """The layout numbers the compiled code reads (ktrace_layout.COMPILED)."""
    return np.array(abi.compiled(), dtype=np.int64)


def find_records(data: np.ndarray, nbytes: int, abi: Abi):
    """(offsets, types, end): the offset and ktr_type of every record from data[0] on (up to
    nbytes, followed by PAD zero bytes), in file order, and where they end: at nbytes, or
    at the first record that breaks a rule or runs past nbytes (ktrace_rules.format_error
    says which)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    most = nbytes // abi.header_v0 + 1  # pages numpy allocates and nobody touches are free
    offsets, types = np.empty(most, dtype=np.int64), np.empty(most, dtype=np.uint16)
    n, end = _walk(buf, nbytes, layout_array(abi), _fixed_lengths(abi), offsets, types)
    return offsets[:n], types[:n], int(end)


def _fixed_lengths(abi: Abi) -> np.ndarray:
    """ktr_len by record type, -1 for the types whose length varies."""
    fixed = np.full(MAX_TYPE + 1, -1, dtype=np.int64)
    for rtype, length in abi.fixed_lengths().items():
        fixed[rtype] = length
    return fixed


@njit(cache=True, nogil=True)
def _walk(buf, nbytes, lay, fixed, offsets, types):
    """The offsets and types of the records from byte 0 on, into offsets and types; how
    many, and where the walk ended: at nbytes, or at the first record a kernel could not
    have written."""
    off, n = 0, 0
    while off < nbytes:
        size = _record_size(buf, off, nbytes, lay, fixed)
        if size == 0:
            break
        offsets[n], types[n] = off, unsigned(buf, off + 4, 2)
        off, n = off + size, n + 1
    return n, off


@njit(cache=True, inline="always")  # as a call, the walk took twice as long (measured)
def _record_size(buf, off, nbytes, lay, fixed):
    """Header plus payload size of the record at `off`, or 0 if a kernel could not have
    written it: the rules of ktrace_rules.check_one."""
    v0, v1, word = lay[L_HEADER_V0], lay[L_HEADER_V1], lay[L_WORD]
    left = nbytes - off
    if left < v0:
        return 0
    length, pid = signed(buf, off, 4), signed(buf, off + lay[L_PID], 4)
    flags = unsigned(buf, off + lay[L_TYPE], 2)
    rtype, versioned = flags & KTR_TYPE, (flags & KTR_VERSIONED) != 0
    sec = signed(buf, off + lay[L_TIME], word)
    frac = signed(buf, off + lay[L_TIME] + lay[L_FRAC], word)  # tv_usec or tv_nsec
    tid = signed(buf, off + lay[L_TID], word)  # at the same offset in both versions
    size = v1 if versioned else v0
    if versioned and (left < size or unsigned(buf, off + lay[L_VERSION], 2) != 1 or tid <= PID_MAX):
        return 0
    if not (1 <= rtype <= MAX_TYPE and 0 <= length <= MAX_LEN and 1 <= pid <= PID_MAX):
        return 0
    if not 0 <= frac < (NS_PER_S if versioned else US_PER_S) or length > left - size:
        return 0
    if not 0 <= sec < MAX_TS_SECONDS:  # its nanoseconds would not fit the store's ts
        return 0
    return size + length if _length_fits(buf, off + size, rtype, length, lay, fixed) else 0


@njit(cache=True, inline="always")
def _length_fits(buf, payload, rtype, length, lay, fixed):
    if fixed[rtype] >= 0:
        return length == fixed[rtype]
    if rtype == SYSCALL:
        narg = signed(buf, payload + lay[L_NARG], 2) if length >= lay[L_ARGS] else -1
        return 0 <= narg <= MAX_NARG and length == lay[L_ARGS] + lay[L_WORD] * narg
    if rtype == GENIO:
        return length >= lay[L_GENIO]
    if rtype == CSW:
        return length == lay[L_CSW_OLD] or length == lay[L_CSW]
    if rtype == USER:
        return length <= KTR_USER_MAXLEN
    if rtype == CAPFAIL:
        return length == lay[L_CAPFAIL_OLD] or length == lay[L_CAPFAIL]
    if rtype == STRUCT_ARRAY:
        return length >= lay[L_STRUCT_ARRAY]
    return True


@njit(cache=True)
def unsigned(buf, at, size):
    """The little-endian unsigned integer of `size` (1-8) bytes at buf[at]. It reads 8
    bytes whatever the size (the data is followed by PAD zero bytes): one load."""
    shift = np.uint64(64 - 8 * size)
    return (_load8(buf, np.uint64(at)) << shift) >> shift


@njit(cache=True)
def signed(buf, at, size):
    """The little-endian two's complement integer of `size` bytes at buf[at]."""
    shift = np.uint64(64 - 8 * size)
    return np.int64(_load8(buf, np.uint64(at)) << shift) >> np.int64(shift)


@njit(cache=True)
def _load8(buf, at):
    """8 bytes at buf[at], little-endian. Written byte by byte, compiled to one unaligned
    load; the index is unsigned, so no negative-index check stands between the bytes."""
    value = np.uint64(0)
    for k in range(7, -1, -1):
        value = (value << np.uint64(8)) | np.uint64(buf[at + np.uint64(k)])
    return value


@njit(cache=True, nogil=True)
def comm_ids(buf, offsets, spread, ids):
    """Into ids, for each record the number of its thread name (the 20 bytes of
    ktr_comm), names numbered in the order they first appear; the offset of one record of
    each name. An open-addressing table keyed by a hash of the bytes, slots compared by
    the bytes themselves; `spread` multiplies the hash (0 makes every name collide)."""
    firsts, slots, count = np.empty(64, np.int64), _empty_slots(64), 0  # a power of two
    for i in range(len(offsets)):
        slot = _find_comm(buf, offsets[i], firsts, slots, spread)
        name = slots[slot]
        if name < 0:  # a new name; the slots stay at most half full, firsts has room
            name, count = count, count + 1
            firsts[name], slots[slot] = offsets[i], name
            if 2 * count > len(slots):
                firsts, slots = _grown(buf, firsts, count, 2 * len(slots), spread)
        ids[i] = name
    return firsts[:count]


@njit(cache=True)
def _empty_slots(size):
    slots = np.empty(size, np.int32)
    for slot in range(size):
        slots[slot] = -1
    return slots


@njit(cache=True)
def _grown(buf, firsts, count, size, spread):
    """More room: `size` slots (a power of two, for the mask of _find_comm) and room in
    firsts for as many names (the next growth comes at size / 2 + 1 names). Loops, not
    slice assignments: numba takes seconds to compile one of those."""
    more, slots = np.empty(size, np.int64), _empty_slots(size)
    for name in range(count):
        more[name] = firsts[name]
        slots[_find_comm(buf, more[name], more, slots, spread)] = name
    return more, slots


@njit(cache=True)
def _find_comm(buf, off, firsts, slots, spread):
    """The slot of the name of the record at `off`, or the empty slot where it goes."""
    mask = len(slots) - 1
    slot = np.int64(_comm_hash(buf, off) * spread >> np.uint64(32)) & mask
    while slots[slot] >= 0 and not _same_comm(buf, firsts[slots[slot]], off):
        slot = (slot + 1) & mask
    return slot


@njit(cache=True)
def _comm_hash(buf, off):
    at = off + COMM_AT  # the 20 bytes of ktr_comm as 8 + 8 + 4
    a, b, c = unsigned(buf, at, 8), unsigned(buf, at + 8, 8), unsigned(buf, at + 16, 4)
    return a ^ (b * np.uint64(0xC2B2AE3D27D4EB4F)) ^ (c << np.uint64(17))


@njit(cache=True)
def _same_comm(buf, a, b):
    a, b = a + COMM_AT, b + COMM_AT
    return (
        unsigned(buf, a, 8) == unsigned(buf, b, 8)
        and unsigned(buf, a + 8, 8) == unsigned(buf, b + 8, 8)
        and unsigned(buf, a + 16, 4) == unsigned(buf, b + 16, 4)
    )
