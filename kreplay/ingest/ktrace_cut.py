"""The columns of a ktrace.out's records cut out of its bytes in one compiled pass
(spec/kdump-format.md §2.3-2.4: the C structs, by offset; ktrace.py says which tables).

The records are read in file order, as the hardware prefetches them: a pass per kind
over the records of that kind only reads the file out of order and waits on memory for
each record (4x slower). Each record's header goes to the next row of its table, its
fixed payload fields to its kind's columns, its strings (paths, wait messages) to a
NUL-separated buffer. Every column is written once, in the dtype the table holds, into
arrays numpy allocates: numpy asks for huge pages for large arrays
(numba's own allocations get 4 KiB pages), and at 5 M records the page faults of fresh
columns cost more than the reading does.
"""

import numpy as np
from numba import njit

from kreplay.ingest.ktrace_chain import NS_PER_S, signed, unsigned
from kreplay.ingest.ktrace_layout import (
    CSW,
    EJUSTRETURN,
    ERESTART,
    FAULT,
    FAULTEND,
    GENIO,
    KTR_DROP,
    KTR_TYPE,
    KTR_VERSIONED,
    L_ARGS,
    L_CPU,
    L_CSW,
    L_CSW_USER,
    L_CSW_WMESG,
    L_FAULT_TYPE,
    L_FRAC,
    L_GENIO_RW,
    L_HEADER_V0,
    L_HEADER_V1,
    L_NARG,
    L_PID,
    L_RET_ERROR,
    L_RET_VALUE,
    L_TID,
    L_TIME,
    L_TYPE,
    L_WORD,
    MAX_NARG,
    NAMEI,
    SYSCALL,
    SYSCTL,
    SYSRET,
)

# The columns cut_records fills, in the order it takes them; comm is a name's number
# (ktrace_chain.comm_ids), length the record's ktr_len.
HEADER = {"byte_offset": "i8", "seq": "i8", "line": "i8", "pid": "i4", "tid": "i8", "cpu": "i4",
          "has_cpu": "?", "ts": "i8", "comm": "i4", "length": "i4"}  # fmt: skip
PAYLOADS = {
    SYSCALL: {"sysnum": "i2", "narg": "i2"},  # and MAX_NARG rows of args
    SYSRET: {"sysnum": "i2", "ret_kind": "u1", "retval": "i8", "errno": "i4"},
    FAULT: {"addr": "u8", "prot": "i4"},
    FAULTEND: {"fault_code": "i4"},
    GENIO: {"fd": "i4", "rw": "i4"},
    CSW: {"out": "i4", "user": "i4"},
}


def empty(dtypes: dict[str, str], n: int) -> dict[str, np.ndarray]:
    return {name: np.empty(n, dtype) for name, dtype in dtypes.items()}


@njit(cache=True, nogil=True)
def cut_records(buf, offsets, types, lay, table_of, first, comm_id, header, drop_rows,
                calls, args, rets, faults, fault_ends, gios, csws):  # fmt: skip
    """Every record's HEADER columns into the next row of its table (table t: rows
    first[t] to first[t + 1] of `header`, in file order), the PAYLOADS of its kind into
    that kind's columns (from row 0 of each), and the header rows of the records that
    follow dropped events into drop_rows. Returned: the strings of the NAMI and SCTL
    records (their payloads) and of the CSW records (wmesg), each set as the bytes of its
    strings, each cut at its first NUL and followed by one (one decode and one split make
    them str)."""
    # Arrays taken out of their tuples once: taking one out in the loop costs a
    # reference count increment and decrement (atomic) each time.
    byte_offset, seq, line, pid, tid, cpu, has_cpu, ts, comm, length = header
    code, narg = calls
    (ret_code, ret_form, retval, error), (vaddr, prot), (result,) = rets, faults, fault_ends
    (fd, rw), (out, user) = gios, csws
    row, dropped, word = first[:-1].copy(), 0, lay[L_WORD]
    paths, wmesgs = _Strings(1 << 20), _Strings(1 << 16)
    for i in range(len(offsets)):
        s, rtype = offsets[i], types[i] & KTR_TYPE
        table = table_of[rtype]
        k = row[table]
        row[table] += 1
        if types[i] & KTR_DROP:
            drop_rows[dropped] = k
            dropped += 1
        byte_offset[k], seq[k], line[k], comm[k] = s, i + dropped, i + 1, comm_id[i]
        length[k], pid[k] = signed(buf, s, 4), signed(buf, s + lay[L_PID], 4)  # ktr_len, ktr_pid
        v1 = (unsigned(buf, s + lay[L_TYPE], 2) & KTR_VERSIONED) != 0
        sec = signed(buf, s + lay[L_TIME], word)  # ktr_time: a timespec (v1), a timeval (v0)
        frac = signed(buf, s + lay[L_TIME] + lay[L_FRAC], word)
        ts[k] = sec * NS_PER_S + (frac if v1 else frac * 1000)  # nsec (v1), usec (v0)
        tid[k] = max(signed(buf, s + lay[L_TID], word), 0)  # kdump prints < 0 as 0
        cpu[k], has_cpu[k] = (signed(buf, s + lay[L_CPU], 4), True) if v1 else (0, False)
        p, j = payload_at(buf, s, lay), k - first[table]
        if rtype == SYSCALL:  # struct ktr_syscall: ktr_code, ktr_narg, ktr_args
            code[j], narg[j] = signed(buf, p, 2), signed(buf, p + lay[L_NARG], 2)
            _registers(buf, p + lay[L_ARGS], word, narg[j], args, j)
        elif rtype == SYSRET:  # struct ktr_sysret: ktr_code, ktr_error, ktr_retval
            ret_code[j], e = signed(buf, p, 2), signed(buf, p + lay[L_RET_ERROR], 4)
            ret_form[j], error[j] = _ret_form(e), e
            retval[j] = signed(buf, p + lay[L_RET_VALUE], word) if e == 0 else -1
        elif rtype == FAULT:  # struct ktr_fault: vaddr, type (VM_PROT_*)
            vaddr[j], prot[j] = unsigned(buf, p, word), signed(buf, p + lay[L_FAULT_TYPE], 4)
        elif rtype == FAULTEND:  # struct ktr_faultend: result
            result[j] = signed(buf, p, 4)
        elif rtype == GENIO:  # struct ktr_genio: ktr_fd, ktr_rw
            fd[j], rw[j] = signed(buf, p, 4), signed(buf, p + lay[L_GENIO_RW], 4)
        elif rtype == CSW:  # struct ktr_csw: out, user, wmesg[8] (not in ktr_csw_old)
            out[j], user[j] = signed(buf, p, 4), signed(buf, p + lay[L_CSW_USER], 4)
            wmesg_len = 8 if length[k] == lay[L_CSW] else 0
            wmesgs = _append(wmesgs, buf, p + lay[L_CSW_WMESG], wmesg_len)
        elif rtype in (NAMEI, SYSCTL):  # the path or the MIB name (kdump's %.*s)
            paths = _append(paths, buf, p, length[k])
    return paths[0][: paths[1]], wmesgs[0][: wmesgs[1]]


@njit(cache=True, inline="always")
def _Strings(size):
    """Strings of bytes, each followed by a NUL: (bytes, how many are used)."""
    return np.empty(size, np.uint8), 0


@njit(cache=True, inline="always")
def _append(strings, buf, at, n):
    """strings with the n bytes at buf[at] up to the first NUL, and a NUL, appended."""
    out, used = strings
    if used + n + 1 > len(out):
        out = np.concatenate((out[:used], np.empty(len(out) + n + 1, np.uint8)))
    for k in range(at, at + n):
        if buf[k] == 0:
            break
        out[used] = buf[k]
        used += 1
    out[used] = 0
    return out, used + 1


@njit(cache=True, inline="always")
def _registers(buf, at, word, narg, args, j):
    """The narg registers at `at` into column j of args, zero after them (np.uint64(0):
    a plain 0 would make numba's if-else a float)."""
    for a in range(MAX_NARG):
        args[a, j] = unsigned(buf, at + a * word, word) if a < narg else np.uint64(0)


@njit(cache=True, inline="always")
def _ret_form(error):
    """The RET form (ktrace_layout.RET_KINDS): 1 value, 2 error, 3 ERESTART, 4 EJUSTRETURN."""
    return 1 if error == 0 else 3 if error == ERESTART else 4 if error == EJUSTRETURN else 2


@njit(cache=True, inline="always")
def payload_at(buf, start, lay):
    """The payload's offset: after the v1 or the v0 header."""
    v1 = unsigned(buf, start + lay[L_TYPE], 2) & KTR_VERSIONED
    return start + (lay[L_HEADER_V1] if v1 else lay[L_HEADER_V0])


@njit(cache=True, nogil=True)
def format_args(args, narg):
    """The CALL arguments as `kdump -n` prints them: each register `%#jx` (zero as `0`),
    joined by commas, one string per call with narg > 0, each followed by a NUL."""
    size = 0
    for k in range(len(narg)):
        n = min(narg[k], MAX_NARG)
        for a in range(n):
            size += (1 if a > 0 else 0) + _hex_digits(args[a, k])
        size += 1 if n > 0 else 0
    out = np.empty(size, np.uint8)
    at = 0
    for k in range(len(narg)):
        n = min(narg[k], MAX_NARG)
        for a in range(n):
            if a > 0:
                out[at] = 44  # ','
                at += 1
            at = _write_hex(out, at, args[a, k])
        if n > 0:
            out[at] = 0
            at += 1
    return out


@njit(cache=True, inline="always")
def _hex_digits(v):
    """Bytes of `%#jx` of v, without the NUL: `0`, or `0x` and the digits."""
    if v == 0:
        return 1
    digits = 0
    while v:
        v >>= np.uint64(4)
        digits += 1
    return 2 + digits


@njit(cache=True, inline="always")
def _write_hex(out, at, v):
    n = _hex_digits(v)
    if v == 0:
        out[at] = 48  # '0'
        return at + 1
    out[at], out[at + 1] = 48, 120  # '0x'
    end = at + n
    k = end - 1
    while v:
        d = v & np.uint64(15)
        out[k] = 48 + d if d < 10 else 87 + d  # '0'-'9', 'a'-'f'
        v >>= np.uint64(4)
        k -= 1
    return end
