"""How a binary ktrace.out is laid out (spec/kdump-format.md §2.2-2.4): record types,
header flags, the limits a real record stays within, and, per ABI, the size and the field
offsets of every C struct the reader reads (amd64 and i386, little-endian both).

The sizes and offsets are literal numbers, as a C compiler lays out the structs of
sys/sys/ktrace.h (`data_lengths[type] = sizeof(struct ktr_...)` in sys/kern/kern_ktrace.c
gives the fixed record lengths). tests/test_ktrace_layout.py compiles those structs with
the machine's C compiler, natively for amd64 and with -m32 for i386, and compares every
number here with `sizeof`/`offsetof`: nothing here is derived from another number by
hand (that is how PSIG's 4 bytes of tail padding on amd64 were once missed).
"""

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
MAXCOMLEN = 19
PID_MAX = 99999
PAD = 128  # zero bytes after the data (source.BinaryStream): fixed-width cuts never run off

# sizeof(struct S) as "S", offsetof(struct S, f) as "S.f": (amd64, i386). ktr_cap_fail_old
# is the struct before 2024 (type, needed, held), ktr_cap_fail the 2024+ one with its
# union ktr_cap_data; ktr_csw_old the 8-byte record of kernels without wmesg.
LAYOUT: dict[str, tuple[int, int]] = {
    "ktr_header_v0": (56, 44),
    "ktr_header_v0.ktr_len": (0, 0),
    "ktr_header_v0.ktr_type": (4, 4),
    "ktr_header_v0.ktr_pid": (8, 8),
    "ktr_header_v0.ktr_comm": (12, 12),
    "ktr_header_v0.ktr_time": (32, 32),
    "ktr_header_v0.ktr_tid": (48, 40),
    "ktr_header": (64, 48),
    "ktr_header.ktr_len": (0, 0),
    "ktr_header.ktr_type": (4, 4),
    "ktr_header.ktr_version": (6, 6),
    "ktr_header.ktr_pid": (8, 8),
    "ktr_header.ktr_comm": (12, 12),
    "ktr_header.ktr_time": (32, 32),
    "ktr_header.ktr_tid": (48, 40),
    "ktr_header.ktr_cpu": (56, 44),
    "timeval.tv_usec": (8, 4),
    "timespec.tv_nsec": (8, 4),
    "ktr_syscall.ktr_code": (0, 0),
    "ktr_syscall.ktr_narg": (2, 2),
    "ktr_syscall.ktr_args": (8, 4),
    "ktr_sysret": (16, 12),
    "ktr_sysret.ktr_code": (0, 0),
    "ktr_sysret.ktr_error": (4, 4),
    "ktr_sysret.ktr_retval": (8, 8),
    "ktr_genio": (8, 8),
    "ktr_genio.ktr_fd": (0, 0),
    "ktr_genio.ktr_rw": (4, 4),
    "ktr_psig": (40, 28),
    "ktr_psig.signo": (0, 0),
    "ktr_psig.action": (8, 4),
    "ktr_psig.code": (16, 8),
    "ktr_psig.mask": (20, 12),
    "ktr_csw_old": (8, 8),
    "ktr_csw": (16, 16),
    "ktr_csw.out": (0, 0),
    "ktr_csw.user": (4, 4),
    "ktr_csw.wmesg": (8, 8),
    "ktr_proc_ctor": (4, 4),
    "ktr_cap_fail_old": (40, 36),
    "ktr_cap_fail_old.cap_type": (0, 0),
    "ktr_cap_fail_old.cap_needed": (8, 4),
    "ktr_cap_fail_old.cap_held": (24, 20),
    "ktr_cap_fail": (1040, 1036),
    "ktr_cap_fail.cap_type": (0, 0),
    "ktr_cap_fail.cap_code": (4, 4),
    "ktr_cap_fail.cap_data": (16, 12),
    "ktr_fault": (16, 8),
    "ktr_fault.vaddr": (0, 0),
    "ktr_fault.type": (8, 4),
    "ktr_faultend": (4, 4),
    "ktr_faultend.result": (0, 0),
    "ktr_struct_array": (8, 4),
    "utrace_malloc": (24, 12),  # jemalloc's utrace(2) record (libsysdecode's utrace.c)
    "utrace_malloc.p": (0, 0),
    "utrace_malloc.s": (8, 4),
    "utrace_malloc.r": (16, 8),
    "uexterror": (200, 200),
    "uexterror.error": (4, 4),
    "uexterror.cat": (8, 8),
    "uexterror.src_line": (12, 12),
    "uexterror.p1": (24, 24),
    "uexterror.p2": (32, 32),
    "uexterror.msg": (72, 72),
}

# The numbers the compiled reader (ktrace_chain, ktrace_cut) takes, as one int64 array
# (Abi.compiled) indexed by these constants.
COMPILED = ("word", "ktr_header_v0", "ktr_header", "ktr_header.ktr_type",
            "ktr_header.ktr_version", "ktr_header.ktr_pid", "ktr_header.ktr_comm",
            "ktr_header.ktr_time", "timespec.tv_nsec", "ktr_header.ktr_tid",
            "ktr_header.ktr_cpu", "ktr_syscall.ktr_narg", "ktr_syscall.ktr_args",
            "ktr_sysret.ktr_error", "ktr_sysret.ktr_retval", "ktr_genio", "ktr_genio.ktr_rw",
            "ktr_csw_old", "ktr_csw", "ktr_csw.user", "ktr_csw.wmesg", "ktr_cap_fail_old",
            "ktr_cap_fail", "ktr_fault.type", "ktr_struct_array")  # fmt: skip
(L_WORD, L_HEADER_V0, L_HEADER_V1, L_TYPE, L_VERSION, L_PID, L_COMM, L_TIME, L_FRAC, L_TID,
 L_CPU, L_NARG, L_ARGS, L_RET_ERROR, L_RET_VALUE, L_GENIO, L_GENIO_RW, L_CSW_OLD, L_CSW,
 L_CSW_USER, L_CSW_WMESG, L_CAPFAIL_OLD, L_CAPFAIL, L_FAULT_TYPE,
 L_STRUCT_ARRAY) = range(len(COMPILED))  # fmt: skip


@dataclass(frozen=True)
class Abi:
    """One machine's ktrace structs. `word` is sizeof(long), of register_t, of pointers and
    of time_t: 8 on amd64, 4 on i386 (the FreeBSD ABI with a 32-bit time_t)."""

    name: str
    word: int
    column: int  # which number of LAYOUT's pairs

    def at(self, name: str) -> int:
        """sizeof (a struct's name) or offsetof ("struct.field") as LAYOUT gives it."""
        return self.word if name == "word" else LAYOUT[name][self.column]

    @property
    def header_v0(self) -> int:
        return self.at("ktr_header_v0")

    @property
    def header_v1(self) -> int:
        return self.at("ktr_header")

    @property
    def args_at(self) -> int:
        return self.at("ktr_syscall.ktr_args")

    @property
    def capfail_lengths(self) -> tuple[int, int]:  # before 2024; 2024+ (union ktr_cap_data)
        return self.at("ktr_cap_fail_old"), self.at("ktr_cap_fail")

    def fixed_lengths(self) -> dict[int, int]:
        """ktr_len of the record types whose length never varies (data_lengths[])."""
        return {
            SYSRET: self.at("ktr_sysret"),
            PSIG: self.at("ktr_psig"),
            PROCCTOR: self.at("ktr_proc_ctor"),
            PROCDTOR: 0,
            FAULT: self.at("ktr_fault"),
            FAULTEND: self.at("ktr_faultend"),
            EXTERR: self.at("uexterror"),
        }

    def compiled(self) -> list[int]:
        """The COMPILED numbers, in order (ktrace_chain makes them an array)."""
        return [self.at(name) for name in COMPILED]


AMD64, I386 = Abi("amd64", 8, 0), Abi("i386", 4, 1)
