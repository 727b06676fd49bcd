"""The compiled scan of kdump text: a chunk of whole lines in, one row of fields per line.

The format is the one kdump.py describes (its patterns stay the reference). A line is read
here only when its reading is certain: a header of the file's usual layout (the fast
prefix: fixed-width pid, tid and cpu, the usual timestamp widths, an ASCII line) with a
body of a shape decoded here (CALL and RET with plain names, NAMI, SCTL, PFLT, PRET, GIO,
CSW, and the kinds whose body is kept raw), a line that no header pattern can match
(continuation lines, blank lines, other text), or nothing else. Every other line (wide
numbers, UNKNOWN(n), dropped-events markers, PSIG, malformed bodies, numbers at the edge of
their column, non-ASCII headers, bad-line marks) is tier SQL: kdump_sql.line_parse_sql
reads it with the same SQL as before, so both tiers give a line the same reading.

Compiled with numba (nogil, so two chunks scan on two cores). Field rows of `F` below.
"""

import numpy as np
from numba import njit

from kreplay.ingest.kdump import TAGS
from kreplay.ingest.limits import MAX_TS_SECONDS
from kreplay.schema import KIND_CODE

# Rows of the field matrix F (int64, one column per line).
(
    LS,  # line start (byte offset in the chunk)
    LE,  # line end (before its newline)
    TIER,  # 0: read here; 1: read by SQL
    CAND,  # 1: an event
    SHAPE,  # continuation shape: 0 none, 1 GIO data, 2 STRU element
    OWNS,  # what continuation lines an event can own: 0, 1 GIO, 2 STRU
    REASON,  # why a tier-0 line that is no event would be an error (R_*)
    HEXROW,
    PID,
    TID,
    CPU,
    TS,
    KIND,
    COMM_S,
    COMM_E,
    NAME_S,  # CALL/RET syscall name
    NAME_E,
    ARGS_S,  # CALL arguments, -1: none
    ARGS_E,
    STR_S,  # NAMI/SCTL path, PRET result, CSW wait message, raw body (-1: none)
    STR_E,
    RETVAL,
    ERRNO,
    RET_KIND,
    ADDR,  # uint64 bits
    PROT,  # NULL_INT: NULL
    GIO_FD,
    GIO_BYTES,
    FLAGS,  # CSW: 1 stop, 2 user; GIO: 1 read
    NFIELDS,
) = range(30)

NULL_INT = np.iinfo(np.int64).min
R_BLANK, R_GIO, R_STRU, R_OTHER = 1, 2, 3, 4

_TAG_BYTES = np.frombuffer("".join(TAGS).encode(), dtype=np.uint8).copy()
_TAG_KIND = np.array([KIND_CODE[t.strip()] for t in TAGS], dtype=np.int64)
_MAX_TS = MAX_TS_SECONDS
_K_CALL, _K_RET, _K_NAMI, _K_SCTL = (KIND_CODE[k] for k in ("CALL", "RET", "NAMI", "SCTL"))
_K_PFLT, _K_PRET, _K_GIO, _K_CSW = (KIND_CODE[k] for k in ("PFLT", "PRET", "GIO", "CSW"))
_K_STRU, _K_PSIG, _K_ERR = KIND_CODE["STRU"], KIND_CODE["PSIG"], KIND_CODE["ERR"]


@njit(cache=True, inline="always")
def _digit(c):
    return 48 <= c <= 57


@njit(cache=True, inline="always")
def _hexdigit(c):
    return 48 <= c <= 57 or 97 <= c <= 102


@njit(cache=True, inline="always")
def _upper_(c):
    return 65 <= c <= 90 or c == 95 or c == 124  # [A-Z_|]


@njit(cache=True, inline="always")
def _upper(c):
    return 65 <= c <= 90 or c == 95  # [A-Z_]


@njit(cache=True, inline="always")
def _dec(b, s, e):
    """Decimal digits b[s:e] (no sign), at most 18 of them."""
    v = 0
    for i in range(s, e):
        v = v * 10 + (b[i] - 48)
    return v


@njit(cache=True, inline="always")
def _hex(b, s, e):
    """Hex digits b[s:e], at most 16, as uint64 bits in an int64."""
    v = np.uint64(0)
    for i in range(s, e):
        c = b[i]
        d = c - 48 if c <= 57 else c - 87
        v = (v << np.uint64(4)) | np.uint64(d)
    return np.int64(v)


@njit(cache=True, inline="always")
def _run(b, s, e, kind):
    """End of the run of digits (kind 0), hex digits (1), [A-Z_|] (2) or [A-Z_] (3)."""
    i = s
    while i < e:
        c = b[i]
        if kind == 0:
            ok = _digit(c)
        elif kind == 1:
            ok = _hexdigit(c)
        else:
            ok = _upper_(c) if kind == 2 else _upper(c)
        if not ok:
            break
        i += 1
    return i


@njit(cache=True)
def _ident_end(b, s, e):
    """End of `[A-Za-z_][A-Za-z0-9_.]*` from s, or s if none."""
    if s >= e:
        return s
    c = b[s]
    if not (65 <= c <= 90 or 97 <= c <= 122 or c == 95):
        return s
    i = s + 1
    while i < e:
        c = b[i]
        if not (65 <= c <= 90 or 97 <= c <= 122 or c == 95 or c == 46 or _digit(c)):
            break
        i += 1
    return i


@njit(cache=True)
def _width(b, s, n):
    """`%nd` of a small number at b[s:s+n]: spaces, then at least one digit to the end."""
    i = s
    while i < s + n and b[i] == 32:
        i += 1
    if i == s + n:
        return False
    for j in range(i, s + n):  # noqa: SIM110 (numba compiles no generators)
        if not _digit(b[j]):
            return False
    return True


@njit(cache=True)
def _tag(b, s, tags, tag_kind):
    for t in range(len(tag_kind)):
        if (
            b[s] == tags[4 * t]
            and b[s + 1] == tags[4 * t + 1]
            and b[s + 2] == tags[4 * t + 2]
            and b[s + 3] == tags[4 * t + 3]
        ):
            return tag_kind[t]
    return -1


@njit(cache=True)
def _fast_prefix(b, ls, le, has_tid, ts_s, ts_f, has_cpu, tags, tag_kind):
    """kdump.fast_prefix_pattern at b[ls:le]: (end of the prefix, end of the command
    name, kind), or end -1. The command name is the shortest of 8-19 bytes after which
    the rest of the prefix matches (the pattern's lazy `.{8,19}?`)."""
    if le - ls < 7 or not _width(b, ls, 6) or b[ls + 6] != 32:
        return -1, 0, 0
    pos = ls + 7
    if has_tid:
        if le - pos < 7 or b[pos + 6] != 32:
            return -1, 0, 0
        zero = b[pos + 5] == 48
        for i in range(pos, pos + 5):
            zero = zero and b[i] == 32
        if not zero:
            for i in range(pos, pos + 6):
                if not _digit(b[i]):
                    return -1, 0, 0
        pos += 7
    rest = 1 + 6 + (4 if has_cpu else 0)
    for k in range(len(ts_s)):
        rest += ts_s[k] + ts_f[k] + 2
    for length in range(8, 20):
        q = pos + length
        if q + rest > le:
            break
        if b[q] != 32:
            continue
        r = q + 1
        ok = True
        for k in range(len(ts_s)):
            if _run(b, r, r + ts_s[k], 0) != r + ts_s[k] or b[r + ts_s[k]] != 46:
                ok = False
                break
            r += ts_s[k] + 1
            if _run(b, r, r + ts_f[k], 0) != r + ts_f[k] or b[r + ts_f[k]] != 32:
                ok = False
                break
            r += ts_f[k] + 1
        if not ok:
            continue
        if has_cpu:
            if not _width(b, r, 3) or b[r + 3] != 32:
                continue
            r += 4
        kind = _tag(b, r, tags, tag_kind)
        if kind < 0 or b[r + 4] != 32 or b[r + 5] != 32:
            continue
        return r + 6, q, kind
    return -1, 0, 0


@njit(cache=True)
def _header_possible(b, ls, le):
    """Could any header pattern (fast, general, dropped) match: spaces, digits, a space."""
    i = ls
    while i < le and b[i] == 32:
        i += 1
    j = _run(b, i, le, 0)
    return j > i and j < le and b[j] == 32


@njit(cache=True)
def _no_header(b, ls, le, prev_hex, F, n):
    """A line no header pattern matches: its continuation shape (kdump.GIO_TEXT_LINE,
    GIO_HEX_LINE, STRU_ELEMENT_LINE; an empty line after a hex row) and reason."""
    if ls == le:
        F[n, SHAPE] = 1 if prev_hex else 0
        F[n, REASON] = R_BLANK
        return
    spaces = 0
    while ls + spaces < le and b[ls + spaces] == 32:
        spaces += 1
    hexrow = False
    if spaces == 7 and le - ls > 9 and b[ls + 7] == 48 and b[ls + 8] == 120:
        h = _run(b, ls + 9, le, 1)
        hexrow = h - (ls + 9) >= 4 and h < le and b[h] == 32
    F[n, HEXROW] = 1 if hexrow else 0
    if hexrow or b[ls] == 9 or (spaces >= 7 and b[ls + 7] == 34):
        F[n, SHAPE], F[n, REASON] = 1, R_GIO
    elif spaces >= 13:
        F[n, SHAPE], F[n, REASON] = 2, R_STRU
    else:
        F[n, SHAPE], F[n, REASON] = 0, R_OTHER


@njit(cache=True)
def _call(b, s, e, F, n):
    """`name` or `name(args)` (kdump.BODY_SHAPES["CALL"], plain names only)."""
    ne = _ident_end(b, s, e)
    if ne == s:
        return False
    F[n, NAME_S], F[n, NAME_E] = s, ne
    if ne == e:
        F[n, ARGS_S] = -1
        return True
    if b[ne] != 40 or b[e - 1] != 41 or e - ne < 2:
        return False
    F[n, ARGS_S], F[n, ARGS_E] = ne + 1, e - 1
    return True


@njit(cache=True)
def _ret_value(b, s, e, F, n):
    """The value forms of RET: `N`, `-N`, `N/0xHEX`, `0xHEX` (-n: a register, signed)."""
    if e - s > 2 and b[s] == 48 and b[s + 1] == 120:
        h = _run(b, s + 2, e, 1)
        if h != e or h - (s + 2) > 16:
            return False
        F[n, RETVAL] = _hex(b, s + 2, e)
        return True
    neg = b[s] == 45
    d = s + 1 if neg else s
    de = _run(b, d, e, 0)
    if de == d or de - d > 18:
        return False
    if de != e:
        if e - de < 4 or b[de] != 47 or b[de + 1] != 48 or b[de + 2] != 120:
            return False
        if _run(b, de + 3, e, 1) != e:
            return False
    v = _dec(b, d, de)
    F[n, RETVAL] = -v if neg else v
    return True


@njit(cache=True)
def _ret(b, s, e, F, n):
    ne = _ident_end(b, s, e)
    if ne == s or ne >= e or b[ne] != 32:
        return False
    F[n, NAME_S], F[n, NAME_E] = s, ne
    r = ne + 1
    m = e - r
    if m == 7 and b[r] == 82 and b[r + 1] == 69 and b[r + 6] == 84:  # RESTART
        if b[r + 2] == 83 and b[r + 3] == 84 and b[r + 4] == 65 and b[r + 5] == 82:
            F[n, RET_KIND] = 3
            return True
        return False
    if m == 10 and b[r] == 74 and b[r + 1] == 85 and b[r + 9] == 78:  # JUSTRETURN
        ok = True
        for i, c in enumerate((74, 85, 83, 84, 82, 69, 84, 85, 82, 78)):
            ok = ok and b[r + i] == c
        if ok:
            F[n, RET_KIND] = 4
        return ok
    if m > 9 and b[r] == 45 and b[r + 1] == 49 and b[r + 2] == 32 and b[r + 3] == 101:
        ok = True  # `-1 errno N[ text]`
        for i, c in enumerate((101, 114, 114, 110, 111, 32)):
            ok = ok and b[r + 3 + i] == c
        if not ok:
            return False
        d = r + 9
        neg = b[d] == 45
        d0 = d + 1 if neg else d
        de = _run(b, d0, e, 0)
        if de == d0 or de - d0 > 9 or (de != e and b[de] != 32):
            return False
        v = _dec(b, d0, de)
        F[n, RET_KIND], F[n, RETVAL], F[n, ERRNO] = 2, -1, -v if neg else v
        return True
    if m == 0 or not _ret_value(b, r, e, F, n):
        return False
    F[n, RET_KIND] = 1
    return True


@njit(cache=True)
def _pflt(b, s, e, F, n):
    """`0xADDR PROT`: PROT `0xN` or `N`, optionally `<NAMES>`, or `NAMES` alone."""
    if e - s < 4 or b[s] != 48 or b[s + 1] != 120:
        return False
    h = _run(b, s + 2, e, 1)
    if h == s + 2 or h - (s + 2) > 16 or h >= e or b[h] != 32:
        return False
    F[n, ADDR] = _hex(b, s + 2, h)
    p = h + 1
    if p < e and _upper_(b[p]):
        F[n, PROT] = NULL_INT
        return _run(b, p, e, 2) == e
    if e - p > 2 and b[p] == 48 and b[p + 1] == 120:
        pe = _run(b, p + 2, e, 1)
        if pe == p + 2 or pe - (p + 2) > 7:
            return False
        F[n, PROT] = _hex(b, p + 2, pe)
    else:
        pe = _run(b, p, e, 0)
        if pe == p or pe - p > 9:
            return False
        F[n, PROT] = _dec(b, p, pe)
    if pe == e:
        return True
    return b[pe] == 60 and b[e - 1] == 62 and _run(b, pe + 1, e - 1, 2) == e - 1


@njit(cache=True)
def _pret(b, s, e):
    """`KERN_NAME` or `<invalid=N>`."""
    if e - s > 5 and b[s] == 75 and b[s + 1] == 69 and b[s + 2] == 82 and b[s + 3] == 78:
        return b[s + 4] == 95 and _run(b, s + 5, e, 3) == e
    if e - s > 10 and b[s] == 60 and b[s + 1] == 105 and b[e - 1] == 62:
        ok = True
        for i, c in enumerate((105, 110, 118, 97, 108, 105, 100, 61)):
            ok = ok and b[s + 1 + i] == c
        d = s + 9
        d0 = d + 1 if b[d] == 45 else d
        return ok and _run(b, d0, e - 1, 0) == e - 1 and e - 1 > d0
    return False


@njit(cache=True)
def _gio(b, s, e, F, n):
    """`fd N read|wrote N byte[s]`."""
    if e - s < 16 or b[s] != 102 or b[s + 1] != 100 or b[s + 2] != 32:
        return False
    d = s + 3
    neg = b[d] == 45
    d0 = d + 1 if neg else d
    de = _run(b, d0, e, 0)
    if de == d0 or de - d0 > 9 or de >= e or b[de] != 32:
        return False
    fd = _dec(b, d0, de)
    r = de + 1
    if e - r > 5 and b[r] == 114 and b[r + 1] == 101 and b[r + 2] == 97 and b[r + 3] == 100:
        read, r = 1, r + 4
    elif e - r > 6 and b[r] == 119 and b[r + 1] == 114 and b[r + 2] == 111 and b[r + 3] == 116:
        if b[r + 4] != 101:
            return False
        read, r = 0, r + 5
    else:
        return False
    if b[r] != 32:
        return False
    c0 = r + 1
    ce = _run(b, c0, e, 0)
    if ce == c0 or ce - c0 > 18 or e - ce not in (5, 6):
        return False
    word = (32, 98, 121, 116, 101, 115)  # " bytes", the s optional
    for i in range(e - ce):
        if b[ce + i] != word[i]:
            return False
    F[n, GIO_FD], F[n, GIO_BYTES], F[n, FLAGS] = -fd if neg else fd, _dec(b, c0, ce), read
    return True


@njit(cache=True)
def _csw(b, s, e, F, n):
    """`stop|resume user|kernel[ "wmesg"]`."""
    if e - s >= 5 and b[s] == 115 and b[s + 1] == 116 and b[s + 2] == 111 and b[s + 3] == 112:
        flags, r = 1, s + 4
    elif e - s >= 7 and b[s] == 114 and b[s + 1] == 101 and b[s + 2] == 115:
        ok = b[s + 3] == 117 and b[s + 4] == 109 and b[s + 5] == 101
        if not ok:
            return False
        flags, r = 0, s + 6
    else:
        return False
    if r + 5 > e or b[r] != 32:
        return False
    r += 1
    if b[r] == 117 and b[r + 1] == 115 and b[r + 2] == 101 and b[r + 3] == 114:
        flags, r = flags | 2, r + 4
    elif r + 6 <= e and b[r] == 107 and b[r + 1] == 101 and b[r + 2] == 114:
        if not (b[r + 3] == 110 and b[r + 4] == 101 and b[r + 5] == 108):
            return False
        r += 6
    else:
        return False
    F[n, FLAGS], F[n, STR_S] = flags, -1
    if r == e:
        return True
    if e - r < 3 or b[r] != 32 or b[r + 1] != 34 or b[e - 1] != 34:
        return False
    if e - 1 > r + 2:  # nullif(wmesg, ''): an empty one is NULL
        F[n, STR_S], F[n, STR_E] = r + 2, e - 1
    return True


@njit(cache=True)
def _body(b, s, e, kind, F, n):
    """Decode a body of the kinds read here; False: tier SQL."""
    F[n, STR_S], F[n, ARGS_S], F[n, NAME_S] = -1, -1, -1
    if kind == _K_CALL:
        return _call(b, s, e, F, n)
    if kind == _K_RET:
        return _ret(b, s, e, F, n)
    if kind == _K_NAMI or kind == _K_SCTL:  # noqa: SIM109 (plain compares for numba)
        F[n, STR_S], F[n, STR_E] = s + 1, e - 1
        return e - s >= 2 and b[s] == 34 and b[e - 1] == 34
    if kind == _K_PFLT:
        return _pflt(b, s, e, F, n)
    if kind == _K_PRET:
        F[n, STR_S], F[n, STR_E] = s, e
        return _pret(b, s, e)
    if kind == _K_GIO:
        F[n, OWNS] = 1
        return _gio(b, s, e, F, n)
    if kind == _K_CSW:
        return _csw(b, s, e, F, n)
    if kind == _K_PSIG or kind == _K_ERR:  # noqa: SIM109
        return False
    F[n, STR_S], F[n, STR_E] = s, e  # kept raw (USER, STRU, CAP, ARGS, ENVS, EERR)
    if kind == _K_STRU:
        F[n, OWNS] = 2
    return True


@njit(cache=True)
def _header(b, ls, le, has_tid, ts_s, ts_f, has_cpu, tags, tag_kind, F, n):
    """A header line of the fast layout, decoded; False: tier SQL."""
    pend, cend, kind = _fast_prefix(b, ls, le, has_tid, ts_s, ts_f, has_cpu, tags, tag_kind)
    if pend < 0:
        return False
    F[n, PID] = _dec(b, ls + _spaces(b, ls), ls + 6)
    F[n, TID] = _dec(b, ls + 7 + _spaces(b, ls + 7), ls + 13) if has_tid else NULL_INT
    cs = ls + (14 if has_tid else 7)
    ce = cend
    while ce > cs and b[ce - 1] == 32:
        ce -= 1
    F[n, COMM_S], F[n, COMM_E] = cs, ce
    if len(ts_s) > 0:
        s0 = cend + 1
        if ts_s[0] > 18:
            return False
        sec = _dec(b, s0, s0 + ts_s[0])
        if ts_s[0] >= 10 and sec >= _MAX_TS:
            return False
        frac = _dec(b, s0 + ts_s[0] + 1, s0 + ts_s[0] + 1 + ts_f[0])
        for _ in range(9 - ts_f[0]):
            frac *= 10
        F[n, TS] = sec * 1000000000 + frac
    else:
        F[n, TS] = NULL_INT
    if has_cpu:
        c0 = pend - 10
        F[n, CPU] = _dec(b, c0 + _spaces(b, c0), c0 + 3)
    else:
        F[n, CPU] = NULL_INT
    F[n, KIND] = kind
    be = le
    while be > pend and b[be - 1] == 32:
        be -= 1
    F[n, OWNS], F[n, RET_KIND] = 0, 0
    return _body(b, pend, be, kind, F, n)


@njit(cache=True, inline="always")
def _spaces(b, s):
    i = 0
    while b[s + i] == 32:
        i += 1
    return i


@njit(cache=True, nogil=True)
def scan(b, F, has_tid, ts_s, ts_f, has_cpu, has_abi, tags, tag_kind):
    """Every line of the chunk b (whole lines, each ending in a newline) into the rows of
    F (one per line, at least as many as there are lines): F[:n] for its n lines."""
    ls, n, prev_hex = 0, 0, False
    end = len(b)
    while ls < end:
        for f in range(TIER, PID):
            F[n, f] = 0
        # An unsigned index: numba then reads a byte without checking for a negative
        # index first (most of the scan's time is this walk over every byte).
        u = np.uint64(ls)
        high = np.uint8(0)
        while b[u] != 10:
            high |= b[u]
            u += np.uint64(1)
        le = np.int64(u)
        ascii_ = high < 128
        F[n, LS], F[n, LE] = ls, le
        if ls < le and b[ls] == 2:
            F[n, TIER] = 1  # a bad line, marked by source.py: its reason is in the text
        elif not _header_possible(b, ls, le):
            _no_header(b, ls, le, prev_hex, F, n)
        elif has_abi or not ascii_:
            F[n, TIER] = 1
        elif _header(b, ls, le, has_tid, ts_s, ts_f, has_cpu, tags, tag_kind, F, n):
            F[n, CAND] = 1
        else:
            F[n, TIER] = 1
        prev_hex = F[n, HEXROW] == 1
        ls = le + 1
        n += 1
    return F[:n]


@njit(cache=True, nogil=True)
def resolve(F):
    """Each line's class (0 event, 1 continuation, 2 parse error), the index of the line
    a continuation belongs to (the last line before it that is no continuation, if that
    is a GIO or STRU event of its shape: kdump_sql's owner window), and each event's
    ordinal in the chunk."""
    n = F.shape[0]
    cls = np.empty(n, dtype=np.int8)
    owner = np.full(n, -1, dtype=np.int64)
    ordinal = np.full(n, -1, dtype=np.int64)
    own, own_kind, k = -1, 0, 0
    for i in range(n):
        shape = F[i, SHAPE]
        if shape == 0:
            own, own_kind = i, F[i, OWNS] if F[i, CAND] == 1 else 0
        if F[i, CAND] == 1:
            cls[i], ordinal[i] = 0, k
            k += 1
        elif shape != 0 and shape == own_kind:
            cls[i], owner[i] = 1, own
        else:
            cls[i] = 2
    return cls, owner, ordinal


@njit(cache=True, nogil=True)
def gather(b, starts, ends):
    """The byte ranges b[starts[i]:ends[i]], each followed by a NUL: one buffer that
    decodes at once (a NUL ends any UTF-8 sequence, so each string decodes as alone)."""
    size = 0
    for i in range(len(starts)):
        size += ends[i] - starts[i] + 1
    out = np.empty(size, dtype=np.uint8)
    o = 0
    for i in range(len(starts)):
        for j in range(starts[i], ends[i]):
            out[o] = b[j]
            o += 1
        out[o] = 0
        o += 1
    return out


@njit(cache=True, nogil=True)
def intern(b, starts, ends):
    """Number the distinct byte strings b[starts[i]:ends[i]] in order of first sight:
    (the number of each, the index of each number's first string)."""
    n = len(starts)
    size = 64
    while size < 2 * n:
        size *= 2
    table = np.full(size, -1, dtype=np.int64)  # slot -> number
    ids = np.empty(n, dtype=np.int32)
    first = np.empty(n, dtype=np.int64)
    count = 0
    for i in range(n):
        s, e = starts[i], ends[i]
        h = np.uint64(14695981039346656037)
        for j in range(s, e):
            h = (h ^ np.uint64(b[j])) * np.uint64(1099511628211)
        slot = np.int64(h & np.uint64(size - 1))
        while True:
            t = table[slot]
            if t < 0:
                table[slot], ids[i], first[count] = count, count, i
                count += 1
                break
            f = first[t]
            fs, fe = starts[f], ends[f]
            same = fe - fs == e - s
            j = 0
            while same and j < e - s:
                same = b[fs + j] == b[s + j]
                j += 1
            if same:
                ids[i] = t
                break
            slot = (slot + 1) & (size - 1)
    return ids, first[:count]


@njit(cache=True, nogil=True)
def join_conts(b, F, cls, owner):
    """The continuation lines of each record that has any, joined by newlines as
    kdump printed them: (owner line indexes, line counts, the texts NUL-separated)."""
    n = len(cls)
    size, groups, last = 0, 0, -1
    for i in range(n):
        if cls[i] == 1:
            size += F[i, LE] - F[i, LS] + 1
            if owner[i] != last:
                groups, last = groups + 1, owner[i]
    owners = np.empty(groups, dtype=np.int64)
    counts = np.zeros(groups, dtype=np.int64)
    out = np.empty(size, dtype=np.uint8)
    g, o, last = -1, 0, -1
    for i in range(n):
        if cls[i] != 1:
            continue
        if owner[i] != last:
            if g >= 0:
                out[o] = 0
                o += 1
            g += 1
            owners[g], last = owner[i], owner[i]
        elif counts[g] > 0:
            out[o] = 10
            o += 1
        counts[g] += 1
        for j in range(F[i, LS], F[i, LE]):
            out[o] = b[j]
            o += 1
    if g >= 0:
        out[o] = 0
        o += 1
    return owners[: g + 1], counts[: g + 1], out[:o]


@njit(cache=True, nogil=True)
def take(F, rows, out):
    """The fields of these lines as contiguous columns: out[field, k] = F[rows[k], field]
    (out allocated by numpy, which asks for huge pages: fewer page faults)."""
    for k in range(len(rows)):
        r = rows[k]
        for f in range(F.shape[1]):
            out[f, k] = F[r, f]
