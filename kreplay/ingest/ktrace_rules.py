"""Whether a kernel could have written the record at an offset of a binary ktrace.out, in
words (spec/kdump-format.md §2): the rules one record at a time, for the first bytes of a
file (is it a ktrace.out, which ABI) and for the error at a bad record.

ktrace_chain.py holds every record of a file to the same rules in compiled code; this
module says what is wrong with the one it stopped at. No numba here: telling a file's
format must not pay for importing it.
"""

import struct

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

Buffer = bytes | np.ndarray  # the head of a file, or a window of it (source.BinaryStream)


def looks_like_ktrace(head: bytes) -> bool:
    """The first bytes of a file start with a whole, possible ktrace record (amd64 or
    i386). kdump text never does: its first bytes read as a length above 1 MiB."""
    return any(check_one(head, 0, len(head), abi)[1] is None for abi in (AMD64, I386))


def choose_abi(data: Buffer, nbytes: int, probe: int = 64, whole: bool = True) -> Abi:
    """amd64, unless the first records read as i386 and not as amd64. Of the first window
    of a file (not whole), a record that may run past its end counts as read."""
    for abi in (AMD64, I386):
        off = 0
        for _ in range(probe):
            if off >= nbytes or (not whole and _may_run_past(data, off, nbytes, abi)):
                return abi
            size, reason = check_one(data, off, nbytes, abi)
            if reason:
                break
            off += size
        else:
            return abi
    return AMD64  # neither: report the error as amd64 reads it


def _may_run_past(data: Buffer, off: int, nbytes: int, abi: Abi) -> bool:
    left = nbytes - off
    if left < abi.header_v1:
        return True
    (length,) = struct.unpack_from("<i", data, off + abi.at("ktr_header.ktr_len"))
    return 0 <= length <= MAX_LEN and length > left - abi.header_v1


def check_one(data: Buffer, off: int, nbytes: int, abi: Abi) -> tuple[int, str | None]:
    """(record size, None) for a possible record at `off`, else (0, why not). Beyond what
    kdump checks: pid 0 (the kernel) is never traced, thread ids are above PID_MAX, and
    timestamp fractions below a second: garbage seldom passes all of them."""
    left = nbytes - off
    if left < abi.header_v0:
        return 0, f"truncated record header: {left} bytes left, a header has {abi.header_v0}"
    at, word = abi.at, "<q" if abi.word == 8 else "<i"
    (length,) = struct.unpack_from("<i", data, off + at("ktr_header.ktr_len"))
    (rtype,) = struct.unpack_from("<H", data, off + at("ktr_header.ktr_type"))
    (version,) = struct.unpack_from("<H", data, off + at("ktr_header.ktr_version"))
    (pid,) = struct.unpack_from("<i", data, off + at("ktr_header.ktr_pid"))
    versioned, rtype = rtype & KTR_VERSIONED, rtype & KTR_TYPE
    size = abi.header_v1 if versioned else abi.header_v0
    # tv_usec or tv_nsec, and the tid: where both header versions have them (ktrace_chain)
    frac_at = at("ktr_header.ktr_time") + at("timespec.tv_nsec")
    (frac,) = struct.unpack_from(word, data, off + frac_at)
    (sec,) = struct.unpack_from(word, data, off + at("ktr_header.ktr_time"))
    (tid,) = struct.unpack_from(word, data, off + at("ktr_header.ktr_tid"))
    checks = (
        (versioned and left < size, f"truncated record header: {left} bytes left, a v1 header "
         f"has {size}"),
        (not 1 <= rtype <= MAX_TYPE, f"unknown record type {rtype} (ktrace types are 1-18)"),
        (length < 0 or length > MAX_LEN, f"impossible ktr_len {length}"),
        (versioned and version != 1, f"header version {version} (only version 1 exists)"),
        (not 1 <= pid <= PID_MAX, f"impossible pid {pid}"),
        (versioned and tid <= PID_MAX, f"impossible thread id {tid}"),
        (not 0 <= frac < (10**9 if versioned else 10**6), f"impossible timestamp fraction {frac}"),
        (not 0 <= sec < MAX_TS_SECONDS, f"timestamp seconds {sec} beyond 64-bit nanoseconds"),
    )  # fmt: skip
    for failed, reason in checks:
        if failed:
            return 0, reason
    if length > left - size:
        return 0, f"truncated record: ktr_len {length}, {left - size} bytes left after the header"
    reason = _length_problem(data, off + size, rtype, length, abi)
    return (0, reason) if reason else (size + length, None)


def _length_problem(data: Buffer, payload: int, rtype: int, length: int, abi: Abi) -> str:
    name = f"{KINDS[rtype]} record (type {rtype}) with ktr_len {length}"
    fixed = abi.fixed_lengths().get(rtype)
    if fixed is not None and length != fixed:
        return f"{name}, expected {fixed}"
    if rtype == SYSCALL:
        narg_at = abi.at("ktr_syscall.ktr_narg")
        narg = struct.unpack_from("<h", data, payload + narg_at)[0] if length >= abi.args_at else -1
        if not 0 <= narg <= MAX_NARG or length != abi.args_at + abi.word * narg:
            return f"{name}: does not hold the {narg} arguments it announces"
    csw = (abi.at("ktr_csw_old"), abi.at("ktr_csw"))
    rules = {
        GENIO: (length >= abi.at("ktr_genio"), "shorter than its fixed part"),
        CSW: (length in csw, f"expected one of {csw}"),
        USER: (length <= KTR_USER_MAXLEN, f"longer than {KTR_USER_MAXLEN}"),
        CAPFAIL: (length in abi.capfail_lengths, f"expected one of {abi.capfail_lengths}"),
        STRUCT_ARRAY: (length >= abi.at("ktr_struct_array"), "shorter than its fixed part"),
    }
    ok, why = rules.get(rtype, (True, ""))
    return "" if ok else f"{name}: {why}"


def format_error(path, data, off, nbytes, abi, *, base=0, record=1) -> TraceFormatError:
    """The error at the record at data[off] (byte base + off of the file, its record-th
    record): what check_one finds wrong with it, and for a file whose very first record is
    bad, that it is no ktrace.out."""
    reason = check_one(data, off, nbytes, abi)[1] or "not a record header"
    where = f"byte offset {base + off} (record {record}, {abi.name} layout)"
    prefix = "not a binary ktrace.out: " if base + off == 0 else ""
    return TraceFormatError(f"{prefix}{where}: {reason}", path=path)
