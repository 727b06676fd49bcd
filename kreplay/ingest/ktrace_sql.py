"""The staged rows of a binary ktrace.out, as one DuckDB query over ktrace.py's columns.

The store inserts a trace from a query that yields the same staged rows for every format
(see kdump_sql.staged_parse_sql). Here every row is an event: a binary file has no
continuation lines, and a record that cannot be read is an error for the whole file,
raised before anything is staged. ktrace.py hands over one table per group of kinds, each
with its rows' header columns, so the query is a UNION of scans without joins; numbers
become kdump's names here, in bulk: syscall names, RET forms, vm_fault results, and CALL
arguments as `kdump -n` prints them. This module only builds SQL text; store.py runs it.
"""

from kreplay.ingest.kdump_sql import q
from kreplay.ingest.ktrace_layout import KINDS, MAX_NARG, RET_KINDS
from kreplay.ingest.sysdecode import FAULT_RESULTS, SYSCALL_NAMES


def _list(values) -> str:
    return "[" + ", ".join("NULL" if v is None else q(v) for v in values) + "]"


def _indexed(names, index: str) -> str:
    """names[index] for 0 <= index < len(names), else NULL (DuckDB lists are 1-based and
    count negative indexes from the end)."""
    return f"CASE WHEN {index} BETWEEN 0 AND {len(names) - 1} THEN {_list(names)}[{index} + 1] END"


def _syscall() -> str:
    """The syscall name as kdump prints it: from the table, else `[N]`."""
    names = [SYSCALL_NAMES.get(n) for n in range(max(SYSCALL_NAMES) + 1)]
    return f"coalesce({_indexed(names, 'sysnum')}, '[' || sysnum || ']')"


def _args() -> str:
    """`%#jx` of each register, joined by commas (kdump -n; zero prints as `0`); none
    (no parentheses) for a syscall without arguments. (concat_ws of hex() is several
    times faster in DuckDB than list_transform with printf.)"""
    each = ", ".join(
        f"CASE WHEN narg > {i} THEN CASE WHEN a{i} = 0 THEN '0' "
        f"ELSE '0x' || lower(hex(a{i})) END END"
        for i in range(MAX_NARG)
    )
    return f"CASE WHEN narg > 0 THEN concat_ws(',', {each}) END"


_HEADER = (
    "seq, line, byte_offset, pid, tid, CAST(comm AS VARCHAR) AS comm, "
    "CASE WHEN has_cpu THEN cpu END AS cpu, ts"
)
_FAULT_RESULT = (
    f"coalesce({_indexed(FAULT_RESULTS, 'fault_code')}, '<invalid=' || fault_code || '>')"
)


def _branches() -> list[str]:
    """One SELECT per table of ktrace.Decoded.tables."""
    return [
        f"SELECT {_HEADER}, 'CALL' AS kind, {_syscall()} AS syscall, sysnum, {_args()} AS args "
        "FROM kt_calls",
        f"SELECT {_HEADER}, 'RET' AS kind, {_syscall()} AS syscall, sysnum, "
        "CASE WHEN ret_kind IN (1, 2) THEN retval END AS retval, "
        "CASE WHEN ret_kind = 2 THEN errno END AS errno, "
        f"{_list(RET_KINDS)}[ret_kind + 1] AS ret_kind FROM kt_rets",
        f"SELECT {_HEADER}, 'PFLT' AS kind, addr, prot FROM kt_faults",
        f"SELECT {_HEADER}, 'PRET' AS kind, {_FAULT_RESULT} AS fault_result FROM kt_fault_ends",
        f"SELECT {_HEADER}, 'GIO' AS kind, gio_fd, "
        "CASE WHEN gio_read THEN 'read' ELSE 'wrote' END AS gio_dir, gio_bytes FROM kt_gios",
        f"SELECT {_HEADER}, 'CSW' AS kind, CASE WHEN stop THEN 'stop' ELSE 'resume' END AS csw, "
        "CASE WHEN user THEN 'user' ELSE 'kernel' END AS csw_mode, "
        "nullif(CAST(wmesg AS VARCHAR), '') AS wmesg FROM kt_csws",
        f"SELECT {_HEADER}, {_list(KINDS)}[rtype + 1] AS kind, CAST(path AS VARCHAR) AS path "
        "FROM kt_paths",
        f"SELECT {_HEADER}, {_list(KINDS)}[rtype + 1] AS kind, "
        "rtrim(CAST(body AS VARCHAR)) AS body, CAST(signal AS VARCHAR) AS signal, "
        "CAST(sig_action AS VARCHAR) AS sig_action, CAST(sig_code AS VARCHAR) AS sig_code "
        "FROM kt_texts",
        "SELECT seq, line, byte_offset, pid, tid, CAST(comm AS VARCHAR) AS comm, "
        "'DROP' AS kind FROM kt_drops",
    ]


def staged_ktrace_sql() -> str:
    """SELECT producing the staged rows from the tables of ktrace.Decoded.tables, which
    the caller registers with DuckDB."""
    union = "\nUNION ALL BY NAME\n".join(f"({branch})" for branch in _branches())
    return (
        "SELECT 0 AS chunk, 'event' AS class, NULL::VARCHAR AS reason, NULL::VARCHAR AS text, "
        f"NULL::BIGINT AS owner, *\nFROM (\n{union}\n)"
    )
