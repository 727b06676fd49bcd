"""How a binary ktrace.out is laid out (spec/kdump-format.md §2.2-2.4): record types,
header flags, the limits a real record stays within, and the sizes of the C structs for
the two ABIs kreplay reads (amd64 and i386, little-endian both). The offsets of the fields
are where ktrace_cut.py reads them, each with its C name."""

from dataclasses import dataclass

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


AMD64, I386 = Abi("amd64", 8), Abi("i386", 4)
