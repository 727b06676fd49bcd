"""Payloads of a binary ktrace.out decoded one record at a time, in kdump's words.

The record types that carry strings or that kdump prints as text (signals, context
switches, utrace, structs, capability failures, exec arguments, extended errors) are rare
next to CALL/RET/NAMI/PFLT/PRET, so each is decoded here in Python: payload bytes -> the
TEXT_COLUMNS of one event. Where kdump prints the record, the body is the text kdump prints
(spec/kdump-format.md §1.3); docs/formats.md lists where it is not.
"""

from collections.abc import Callable

from kreplay.ingest.ktrace_layout import (
    ARGS,
    CAPFAIL,
    ENVS,
    EXTERR,
    PROCCTOR,
    PROCDTOR,
    PSIG,
    STRUCT,
    STRUCT_ARRAY,
    USER,
    Abi,
)
from kreplay.ingest.sysdecode import c_hex, signal_code, signal_name, syscall_name

TEXT_COLUMNS = ("body", "signal", "sig_action", "sig_code")


def c_string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def _row(body=None, signal=None, sig_action=None, sig_code=None) -> tuple:
    return (body, signal, sig_action, sig_code)


def _word(raw: bytes, offset: int, w: int, signed: bool = False) -> int:
    return int.from_bytes(raw[offset : offset + w], "little", signed=signed)


def _psig(raw: bytes, abi: Abi) -> tuple:
    at = abi.at
    signo = _word(raw, at("ktr_psig.signo"), 4, signed=True)
    action = _word(raw, at("ktr_psig.action"), abi.word)
    code = _word(raw, at("ktr_psig.code"), 4, signed=True)
    mask = _word(raw, at("ktr_psig.mask"), 4)  # the first 32 signals of the sigset_t
    name, code_name = signal_name(signo), signal_code(signo, code)
    if action == 0:  # SIG_DFL
        return _row(body=f"{name} SIG_DFL code={code_name}", signal=name, sig_action="SIG_DFL",
                    sig_code=code_name)  # fmt: skip
    caught = f"caught handler={action:#x} mask={mask:#x}"
    return _row(body=f"{name} {caught} code={code_name}", signal=name, sig_action="caught",
                sig_code=code_name)  # fmt: skip


def _user(raw: bytes, abi: Abi) -> tuple:
    """utrace(2): jemalloc's malloc records as libsysdecode prints them, else the bytes."""
    w = abi.word
    if len(raw) == abi.at("utrace_malloc"):
        fields = ("utrace_malloc.p", "utrace_malloc.s", "utrace_malloc.r")
        p, s, r = (_word(raw, abi.at(f), w) for f in fields)
        if p == (1 << 8 * w) - 1:
            return _row(body="malloc_init()")
        if s == 0:
            return _row(body=f"free({p:#x})")
        if p == 0:
            return _row(body=f"{r:#x} = malloc({s})")
        return _row(body=f"{r:#x} = realloc({p:#x}, {s})")
    return _row(body=f"{len(raw)}  {raw.hex(' ')}" if raw else "0 ")  # each byte as " %02x"


def _struct(raw: bytes, abi: Abi) -> tuple:
    name, nul, data = raw.partition(b"\0")
    if not nul:
        return _row(body="invalid record")
    return _row(body=f"struct {c_string(name)} {data.hex()}")


def _struct_array(raw: bytes, abi: Abi) -> tuple:
    size = _word(raw, 0, abi.word)  # size_t struct_size
    name, nul, data = raw[abi.at("ktr_struct_array") :].partition(b"\0")
    if not nul:
        return _row(body="invalid record")
    return _row(body=f"struct {c_string(name)}[] size={size} {data.hex()}")


def _procctor(raw: bytes, abi: Abi) -> tuple:
    return _row(body=f"sv_flags={c_hex(_word(raw, 0, 4))}")


def _rights(raw: bytes, offset: int) -> str:
    return ",".join(c_hex(_word(raw, offset + 8 * i, 8)) for i in range(2))


def _capfail(raw: bytes, abi: Abi) -> tuple:
    cap_type = _word(raw, 0, 4, signed=True)
    if len(raw) == abi.at("ktr_cap_fail_old"):  # before 2024: type, needed, held
        needed = _rights(raw, abi.at("ktr_cap_fail_old.cap_needed"))
        held = _rights(raw, abi.at("ktr_cap_fail_old.cap_held"))
        texts = {
            0: f"operation requires {needed}, descriptor holds {held}",
            1: f"attempt to increase capabilities from {held} to {needed}",
            2: "disallowed system call",
            3: "restricted VFS lookup",
        }
        return _row(body=texts.get(cap_type, f"unknown capability failure: {needed} {held}"))
    name = syscall_name(_word(raw, abi.at("ktr_cap_fail.cap_code"), 2, signed=True))
    data = abi.at("ktr_cap_fail.cap_data")  # union ktr_cap_data: two cap_rights_t, ...
    texts = {
        0: f"{name}: operation requires {_rights(raw, data)}, "
        f"descriptor holds {_rights(raw, data + 16)}",
        1: f"{name}: attempt to increase capabilities from {_rights(raw, data + 16)} "
        f"to {_rights(raw, data)}",
        2: f"system call not allowed: {name}",
        3: f"{name}: signal delivery not allowed: {signal_name(_word(raw, data, 4, True))}",
        4: f"{name}: protocol not allowed: {_word(raw, data, 4, True)}",
        5: f"{name}: restricted address lookup: sockaddr {raw[data : data + raw[data]].hex()}",
        6: f"{name}: restricted VFS lookup: {c_string(raw[data:])}",
        7: f"{name}: restricted cpuset operation",
    }
    return _row(body=texts.get(cap_type, f"{name}: unknown capability failure"))


def _strings_body(raw: bytes, abi: Abi) -> tuple:
    """ARGS, ENVS: NUL-terminated strings, each quoted, joined by `, `."""
    strings = raw[:-1].split(b"\0") if raw.endswith(b"\0") else raw.split(b"\0")
    return _row(body=", ".join(f'"{c_string(s)}"' for s in strings) if raw else "")


def _exterr(raw: bytes, abi: Abi) -> tuple:
    """struct uexterror: the same layout in both ABIs (fixed-width fields only)."""
    error, category, line = (
        _word(raw, abi.at(f"uexterror.{f}"), 4, signed=f == "error")
        for f in ("error", "cat", "src_line")
    )
    p1, p2 = (_word(raw, abi.at(f"uexterror.{f}"), 8) for f in ("p1", "p2"))
    message = c_string(raw[abi.at("uexterror.msg") : abi.at("uexterror")])
    return _row(
        body=f"{{ errno {error} category {category} (src line {line}) "
        f"p1 {c_hex(p1)} p2 {c_hex(p2)} {message} }}"
    )


def _nothing(raw: bytes, abi: Abi) -> tuple:
    return _row()


DECODERS: dict[int, Callable[[bytes, Abi], tuple]] = {
    PSIG: _psig,
    USER: _user,
    STRUCT: _struct,
    PROCCTOR: _procctor,
    PROCDTOR: _nothing,
    CAPFAIL: _capfail,
    STRUCT_ARRAY: _struct_array,
    ARGS: _strings_body,
    ENVS: _strings_body,
    EXTERR: _exterr,
}
