"""How a binary ktrace.out is laid out (spec/kdump-format.md §2.2-2.4): record types,
header flags, the limits a real record stays within, and the C structs as numpy dtypes for
the two ABIs kreplay reads (amd64 and i386, little-endian both)."""

from dataclasses import dataclass

import numpy as np

KTR_DROP, KTR_VERSIONED, KTR_TYPE = 0x8000, 0x4000, 0x3FFF
(SYSCALL, SYSRET, NAMEI, GENIO, PSIG, CSW, USER, STRUCT, SYSCTL, PROCCTOR, PROCDTOR,
 CAPFAIL, FAULT, FAULTEND, STRUCT_ARRAY, ARGS, ENVS, EXTERR) = range(1, 19)  # fmt: skip
MAX_TYPE = EXTERR
# The kind stored for each record type; index 0 is the "Events dropped." marker.
KINDS = ("DROP", "CALL", "RET", "NAMI", "GIO", "PSIG", "CSW", "USER", "STRU", "SCTL", "PCTR",
         "PDTR", "CAP", "PFLT", "PRET", "STRU", "ARGS", "ENVS", "EERR")  # fmt: skip
RET_KINDS = (None, "value", "error", "restart", "justreturn")
ERESTART, EJUSTRETURN = -1, -2

MAX_LEN = 1 << 20  # no kernel record comes near (GENIO is cut at genio_size, a page)
MAX_NARG = 8  # SYS_MAXSYSARGS
KTR_USER_MAXLEN = 2048
PID_MAX = 99999
PAD = 128  # zero bytes after the data (source.read_bytes): fixed-width cuts never run off
SEGMENT = 1 << 12  # bytes per walk of the record chain (ktrace_chain.find_records)
PROBE = 128  # bytes at the start of a segment where its walks start
BATCH = 1 << 18  # strings cut out per step (ktrace._c_strings)


@dataclass(frozen=True)
class Abi:
    """Sizes of one machine's ktrace structs. `word` is sizeof(long), of register_t, of
    pointers and of time_t: 8 on amd64, 4 on i386 (the FreeBSD ABI with a 32-bit time_t)."""

    name: str
    word: int

    @property
    def header_v0(self) -> int:  # len, type, pad, pid, comm[20], timeval, tid
        return 32 + 3 * self.word

    @property
    def header_v1(self) -> int:  # ... timespec, tid, cpu; padded to a long
        return -(-(32 + 3 * self.word + 4) // self.word) * self.word

    @property
    def args_at(self) -> int:  # offsetof(struct ktr_syscall, ktr_args)
        return max(4, self.word)

    @property
    def capfail_lengths(self) -> tuple[int, int]:  # before 2024; 2024+ (union ktr_cap_data)
        return self.word + 32, 8 + self.word + 1024

    def fixed_lengths(self) -> dict[int, int]:
        w = self.word
        return {
            SYSRET: 8 + w,
            PSIG: 2 * w + 20,
            PROCCTOR: 4,
            PROCDTOR: 0,
            FAULT: 2 * w,
            FAULTEND: 4,
            EXTERR: 200,
        }

    def header_dtype(self) -> np.dtype:
        w, long = self.word, f"<i{self.word}"
        fields = {
            "len": ("<i4", 0),
            "type": ("<u2", 4),
            "version": ("<u2", 6),
            "pid": ("<i4", 8),
            "comm0": ("<u8", 12),  # comm[20] as three integers, to find distinct names
            "comm1": ("<u8", 20),
            "comm2": ("<u4", 28),
            "sec": (long, 32),
            "frac": (long, 32 + w),
            "tid": (long, 32 + 2 * w),
            "cpu": ("<i4", 32 + 3 * w),  # v1 only
        }
        return struct_dtype(fields, self.header_v1)


AMD64, I386 = Abi("amd64", 8), Abi("i386", 4)


def struct_dtype(fields: dict[str, tuple[str, int]], itemsize: int) -> np.dtype:
    return np.dtype(
        {
            "names": list(fields),
            "formats": [f for f, _ in fields.values()],
            "offsets": [o for _, o in fields.values()],
            "itemsize": itemsize,
        }
    )


def field_dtype(fmt: str, offset: int) -> np.dtype:
    return struct_dtype({"v": (fmt, offset)}, offset + np.dtype(fmt).itemsize)


def ret_dtype(w: int) -> np.dtype:
    return struct_dtype({"code": ("<i2", 0), "error": ("<i4", 4), "retval": (f"<i{w}", 8)}, 8 + w)


RET_DTYPE = {w: ret_dtype(w) for w in (4, 8)}
FAULT_DTYPE = {w: struct_dtype({"vaddr": (f"<u{w}", 0), "type": ("<i4", w)}, 2 * w) for w in (4, 8)}
CSW_DTYPE = struct_dtype({"out": ("<i4", 0), "user": ("<i4", 4)}, 8)
LEN_TYPE = struct_dtype({"len": ("<i4", 0), "type": ("<u2", 4)}, 8)
GIO_DTYPE = struct_dtype({"fd": ("<i4", 0), "rw": ("<i4", 4)}, 8)
NARG = np.dtype({"names": ["narg"], "formats": ["<i2"], "offsets": [2], "itemsize": 4})
