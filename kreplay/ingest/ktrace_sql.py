"""The staged rows of a binary ktrace.out, as one DuckDB query over ktrace.py's columns.

The store inserts a trace from a query that yields the same staged rows for every format
(see kdump_sql.staged_parse_sql): here every row is an event (a binary file has no
continuation lines, and a record that cannot be read is an error for the whole file, before
anything is staged). The numeric columns become kdump's names here, in bulk: kinds,
syscall names, RET forms, vm_fault results, and CALL arguments as `kdump -n` prints them.
This module only builds SQL text; store.py runs it.
"""

from kreplay.ingest.kdump_sql import q
from kreplay.ingest.ktrace_layout import KINDS, MAX_NARG, RET_KINDS
from kreplay.ingest.sysdecode import FAULT_RESULTS, SYSCALL_NAMES

# Kinds whose body is in columns, not in `body` (as for kdump text; see kdump_sql.py).
_NO_BODY = ("CALL", "RET", "NAMI", "SCTL", "GIO", "CSW", "PFLT", "PRET", "PDTR", "DROP")


def _list(values) -> str:
    return "[" + ", ".join("NULL" if v is None else q(v) for v in values) + "]"


def syscall_table() -> str:
    """The syscall names as a SQL VALUES list (num, name)."""
    rows = ", ".join(f"({n}, {q(name)})" for n, name in sorted(SYSCALL_NAMES.items()))
    return f"(VALUES {rows}) AS s(num, name)"


def _args() -> str:
    """`%#jx` of each register, joined by commas (kdump -n; zero prints as `0`)."""
    regs = ", ".join(f"a.a{i}" for i in range(MAX_NARG))
    return (
        f"CASE WHEN a.narg > 0 THEN array_to_string(list_transform("
        f"list_slice([{regs}], 1, a.narg), lambda x: printf('%#x', x)), ',') END"
    )


def staged_ktrace_sql() -> str:
    """SELECT producing the staged rows from the tables of ktrace.Decoded.tables, which
    the caller registers with DuckDB: kt_events (one row per event: header fields and
    the numeric payload fields), kt_comms (thread names by id), and one row per record of
    its kind in kt_args (CALL), kt_paths (NAMI, SCTL), kt_csw (CSW), kt_text (the kinds
    ktrace_bodies.py decodes)."""
    kern = len(FAULT_RESULTS)
    return f"""
SELECT 0 AS chunk, e.seq, e.line, 'event' AS class, NULL::VARCHAR AS reason,
  NULL::VARCHAR AS text, NULL::BIGINT AS owner, e.byte_offset,
  e.pid, e.tid, c.comm,
  CASE WHEN e.has_cpu THEN e.cpu END AS cpu,
  CASE WHEN e.has_ts THEN e.ts END AS ts,
  {_list(KINDS)}[e.kind + 1] AS kind,
  NULL::VARCHAR AS abi,
  CASE WHEN e.kind IN (1, 2) THEN coalesce(s.name, '[' || e.sysnum || ']') END AS syscall,
  CASE WHEN e.kind IN (1, 2) THEN e.sysnum END AS sysnum,
  CASE WHEN e.kind = 1 THEN {_args()} END AS args,
  CASE WHEN e.kind = 2 AND e.ret_kind IN (1, 2) THEN e.retval END AS retval,
  CASE WHEN e.kind = 2 AND e.ret_kind = 2 THEN e.errno END AS errno,
  CASE WHEN e.kind = 2 THEN {_list(RET_KINDS)}[e.ret_kind + 1] END AS ret_kind,
  CASE WHEN e.kind = 13 THEN e.addr END AS addr,
  CASE WHEN e.kind = 13 THEN e.prot END AS prot,
  CASE WHEN e.kind = 14 THEN CASE WHEN e.fault_code BETWEEN 0 AND {kern - 1}
    THEN {_list(FAULT_RESULTS)}[e.fault_code + 1]
    ELSE '<invalid=' || e.fault_code || '>' END END AS fault_result,
  p.path, t.signal, t.sig_action, t.sig_code,
  CASE WHEN w.stop THEN 'stop' WHEN NOT w.stop THEN 'resume' END AS csw,
  CASE WHEN w.user THEN 'user' WHEN NOT w.user THEN 'kernel' END AS csw_mode,
  nullif(w.wmesg, '') AS wmesg,
  CASE WHEN e.kind = 4 THEN e.gio_fd END AS gio_fd,
  CASE WHEN e.kind = 4 THEN CASE WHEN e.gio_read THEN 'read' ELSE 'wrote' END END AS gio_dir,
  CASE WHEN e.kind = 4 THEN e.gio_bytes END AS gio_bytes,
  CASE WHEN {_list(KINDS)}[e.kind + 1] NOT IN ({", ".join(map(q, _NO_BODY))})
    THEN rtrim(t.body) END AS body
FROM kt_events e
JOIN kt_comms c ON c.id = e.comm
LEFT JOIN {syscall_table()} ON s.num = e.sysnum AND e.kind IN (1, 2)
LEFT JOIN kt_args a ON a.seq = e.seq
LEFT JOIN kt_text t ON t.seq = e.seq
LEFT JOIN kt_paths p ON p.seq = e.seq
LEFT JOIN kt_csw w ON w.seq = e.seq
"""
