"""The binary layouts against a C compiler: every size and offset kreplay's reader uses
(kreplay/ingest/ktrace_layout.LAYOUT) and every one the test writer packs with
(tests/ktrace_writer.LAYOUT) is what the machine's C compiler computes for the structs of
sys/sys/ktrace.h: natively for amd64, with -m32 for i386.

The declarations below follow sys/sys/ktrace.h (FreeBSD 15: ktr_cap_fail with its union
ktr_cap_data; ktr_cap_fail_old is the struct before 2024, ktr_csw_old the record before
wmesg), sys/sys/_uexterror.h, and libsysdecode's struct utrace_malloc, with FreeBSD's
types spelled as the two ABIs define them: register_t, vm_offset_t, long and time_t are
one machine word (time_t is 32 bits on i386 alone of FreeBSD's platforms), sigset_t is
four 32-bit words, cap_rights_t two 64-bit words (CAP_RIGHTS_VERSION 0). No header is
included, so a compiler without the 32-bit C library can still lay them out (-S, no link).
"""

import re
import shutil
import struct
import subprocess

import ktrace_writer as kw
import pytest
from conftest import events, ingest_text

from kreplay.ingest import ktrace_layout
from kreplay.ingest.ktrace_layout import AMD64, I386, LAYOUT

DECLARATIONS = r"""
typedef long register_t;
typedef unsigned long vm_offset_t;
typedef unsigned long size_t;
typedef int pid_t;
typedef unsigned int u_int;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef struct __sigset { uint32_t __bits[4]; } sigset_t;
typedef void __sighandler_t(int);
typedef __sighandler_t *sig_t;
typedef struct cap_rights { uint64_t cr_rights[2]; } cap_rights_t;
enum uio_rw { UIO_READ, UIO_WRITE };
struct timeval { long tv_sec; long tv_usec; };
struct timespec { long tv_sec; long tv_nsec; };
struct sockaddr { unsigned char sa_len; unsigned char sa_family; char sa_data[14]; };
#define MAXCOMLEN 19
#define MAXPATHLEN 1024

struct ktr_header_v0 {
    int ktr_len; short ktr_type; pid_t ktr_pid; char ktr_comm[MAXCOMLEN + 1];
    struct timeval ktr_time; long ktr_tid;
};
struct ktr_header {
    int ktr_len; short ktr_type; short ktr_version; pid_t ktr_pid;
    char ktr_comm[MAXCOMLEN + 1]; struct timespec ktr_time; long ktr_tid; int ktr_cpu;
};
struct ktr_syscall { short ktr_code; short ktr_narg; register_t ktr_args[1]; };
struct ktr_sysret { short ktr_code; short ktr_eosys; int ktr_error; register_t ktr_retval; };
struct ktr_genio { int ktr_fd; enum uio_rw ktr_rw; };
struct ktr_psig { int signo; sig_t action; int code; sigset_t mask; };
struct ktr_csw_old { int out; int user; };
struct ktr_csw { int out; int user; char wmesg[8]; };
struct ktr_proc_ctor { u_int sv_flags; };
enum ktr_cap_fail_type { CAPFAIL_NOTCAPABLE, CAPFAIL_INCREASE, CAPFAIL_SYSCALL };
struct ktr_cap_fail_old {
    enum ktr_cap_fail_type cap_type; cap_rights_t cap_needed; cap_rights_t cap_held;
};
union ktr_cap_data {
    cap_rights_t cap_rights[2]; int cap_int; struct sockaddr cap_sockaddr;
    char cap_path[MAXPATHLEN];
};
struct ktr_cap_fail {
    enum ktr_cap_fail_type cap_type; short cap_code; u_int cap_svflags;
    union ktr_cap_data cap_data;
};
struct ktr_fault { vm_offset_t vaddr; int type; };
struct ktr_faultend { int result; };
struct ktr_struct_array { size_t struct_size; };
struct uexterror {
    uint32_t ver; uint32_t error; uint32_t cat; uint32_t src_line; uint32_t flags;
    uint32_t rsrv0; uint64_t p1; uint64_t p2; uint64_t rsrv1[4]; char msg[128];
};
struct utrace_malloc { void *p; size_t s; void *r; };
"""

ABIS = {"amd64": ([], AMD64), "i386": (["-m32"], I386)}


def _expression(name: str) -> str:
    struct_name, _, field = name.partition(".")
    if field:
        return f"__builtin_offsetof(struct {struct_name}, {field})"
    return f"sizeof(struct {struct_name})"


def compiler_layout(names: list[str], flags: list[str]) -> dict[str, int]:
    """What the C compiler says each name is: the numbers of an int array compiled to
    assembly (-S: nothing is linked or run, so -m32 needs no 32-bit C library)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler on this machine (cc, gcc, clang): layouts not checked")
    values = ",\n".join(_expression(n) for n in names)
    source = DECLARATIONS + f"const int kreplay_layout[] = {{\n{values}\n}};\n"
    run = subprocess.run(
        [cc, *flags, "-O0", "-S", "-x", "c", "-o", "-", "-"],
        input=source,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        if flags:
            pytest.skip(f"{cc} {' '.join(flags)} cannot compile here: {run.stderr.strip()[:200]}")
        pytest.fail(f"{cc} refused the declarations: {run.stderr}")
    body = run.stdout.split("kreplay_layout:", 1)[1]
    numbers = [int(v) for v in re.findall(r"^\s*\.(?:long|int|4byte)\s+(\d+)", body, re.M)]
    assert len(numbers) >= len(names), run.stdout
    return dict(zip(names, numbers, strict=False))


@pytest.mark.parametrize("abi", ABIS)
def test_the_readers_layout_is_the_compilers(abi):
    flags, reader = ABIS[abi]
    names = sorted(LAYOUT)
    truth = compiler_layout(names, flags)
    assert truth["ktr_header.ktr_comm"] == 12  # the program means what it says
    wrong = {n: (reader.at(n), truth[n]) for n in names if reader.at(n) != truth[n]}
    assert not wrong, f"{abi}: name: (kreplay, the compiler): {wrong}"


@pytest.mark.parametrize("abi", ABIS)
def test_the_test_writers_layout_is_the_compilers(abi):
    flags, _ = ABIS[abi]
    names = sorted(kw.LAYOUT)
    truth = compiler_layout(names, flags)
    wrong = {n: (kw.at(abi, n), truth[n]) for n in names if kw.at(abi, n) != truth[n]}
    assert not wrong, f"{abi}: name: (writer, the compiler): {wrong}"


@pytest.mark.parametrize("abi", ABIS)
def test_the_compiled_readers_numbers_come_from_the_table(abi):
    """What ktrace_chain/ktrace_cut take (Abi.compiled) is LAYOUT's numbers, and the fixed
    record lengths are sizeofs of LAYOUT (kern_ktrace.c's data_lengths[])."""
    _, reader = ABIS[abi]
    expected = [reader.word] + [LAYOUT[n][reader.column] for n in ktrace_layout.COMPILED[1:]]
    assert reader.compiled() == expected
    assert reader.fixed_lengths()[ktrace_layout.PSIG] == LAYOUT["ktr_psig"][reader.column]


def _psig_record(signo: int, action: int, code: int) -> bytes:
    """An amd64 v1 PSIG record made by hand with the numbers the compiler gives (ktr_header
    64 bytes; ktr_psig 40: signo @0, action @8, code @16, mask @20, 4 bytes of tail pad)."""
    header = struct.pack("<iHHi20s", 40, 5 | 0x4000, 1, 1234, b"sh")
    header += struct.pack("<qqqi4x", 1_700_000_000, 5, 100123, 3)
    payload = struct.pack("<i4xQi16s4x", signo, action, code, b"")
    assert len(header) == 64 and len(payload) == 40
    return header + payload


def test_a_real_amd64_psig_record_of_40_bytes_ingests(tmp_path):
    data = _psig_record(11, 0, 1) + _psig_record(20, 0x401000, 0x10001)
    info = ingest_text(tmp_path, data, "psig", filename="ktrace.out")
    assert (info.format, info.events) == ("ktrace", 2)
    rows = events(tmp_path / "store.duckdb", "psig")
    assert [(r["kind"], r["signal"], r["sig_action"]) for r in rows] == [
        ("PSIG", "SIGSEGV", "SIG_DFL"),
        ("PSIG", "SIGCHLD", "caught"),
    ]
    assert rows[1]["body"] == "SIGCHLD caught handler=0x401000 mask=0x0 code=SI_USER"
