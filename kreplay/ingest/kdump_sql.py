"""The per-line parse of the kdump lines the compiled scan leaves (kdump_scan.py), as one
DuckDB query over (line, text) rows: schema 1's bulk parse, without the windows over the
neighbouring lines (kdump_scan.resolve does that for every line).

The format knowledge of kdump.py is compiled here into SQL, in three tiers:

1. the fast prefix pattern (a DFA match, no captures) finds headers of the file's usual
   layout, whose fields sit at fixed offsets from either end of the prefix;
2. other headers (wide pids or tids, other timestamp widths, UNKNOWN(n) tags, multi-byte
   command names) are cut by a capturing pattern, several times slower per line;
3. lines that are no header are continuation lines of the record before them (GIO dumps,
   STRU arrays), "Events dropped." markers, or parse errors with a reason.

Bodies are decoded by kind; only lines of that kind pay for it. This module only builds
SQL text; kdump_parse.py runs it on a private in-memory DuckDB (store.py runs the store's).
"""

from kreplay.ingest.kdump import (
    BODY_SHAPES,
    GENERAL_GROUPS,
    GIO_HEX_LINE,
    GIO_TEXT_LINE,
    STRU_ELEMENT_LINE,
    Layout,
    dropped_pattern,
    fast_prefix_pattern,
    general_pattern,
)
from kreplay.ingest.limits import MAX_ID, MAX_TS_SECONDS
from kreplay.ingest.source import BAD_MARK

# Codes of the continuation lines a record may own (kdump_scan.resolve).
_OWNS_GIO, _OWNS_STRU = 1, 2

# Kinds whose body is fully decoded into columns; others keep their raw body.
_DECODED_KINDS = ("CALL", "RET", "NAMI", "SCTL", "GIO", "CSW", "PFLT", "PRET")


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------------------- header


def _fast_fields(layout: Layout) -> dict[str, str]:
    """Header fields cut from the fast prefix `p` at fixed offsets (see module doc)."""
    opts = layout.opts
    end = "length(p)"
    if opts.abi:  # `TAG  ABI  `: the ABI is F64, L32, ... or with CheriBSD's C suffix
        abi_len = "(CASE WHEN substr(p, length(p) - 2, 1) = 'C' THEN 4 ELSE 3 END)"
        abi = f"substr(p, length(p) - 1 - {abi_len}, {abi_len})"
        end = f"(length(p) - 2 - {abi_len})"
    tag = f"({end} - 5)"  # the tag, then two spaces
    after_ts = f"({tag} - 1)" if not opts.cpu else f"({tag} - 5)"
    fields = {
        "pid": "CAST(substr(p, 1, 6) AS INTEGER)",
        "tid": "CAST(substr(p, 8, 6) AS BIGINT)" if opts.tid else "NULL",
        "cpu": f"CAST(substr(p, {tag} - 4, 3) AS INTEGER)" if opts.cpu else "NULL",
        "kind": f"rtrim(substr(p, {tag}, 4))",
        "abi": abi if opts.abi else "NULL",
        "body": _rtrimmed("substr(text, length(p) + 1)", "text"),
    }
    ts_width = sum(s + f + 2 for s, f in layout.ts_widths)  # `sec.frac `
    comm_start = 15 if opts.tid else 8
    fields["comm"] = f"rtrim(substr(p, {comm_start}, {after_ts} - {ts_width} - {comm_start}))"
    if layout.ts_widths:
        seconds, fraction = layout.ts_widths[0]
        start = f"({after_ts} - {ts_width} + 1)"
        sec = f"TRY_CAST(substr(p, {start}, {seconds}) AS BIGINT)"
        frac = f"CAST(substr(p, {start} + {seconds + 1}, {fraction}) AS BIGINT)"
        frac += "" if fraction == 9 else f" * {10 ** (9 - fraction)}"
        fields["ts"] = (
            f"CASE WHEN {sec} < {MAX_TS_SECONDS} THEN {sec} * 1000000000 + {frac} END"
            if seconds >= len(str(MAX_TS_SECONDS))  # fewer digits cannot overflow
            else f"{sec} * 1000000000 + {frac}"
        )
    else:
        fields["ts"] = "NULL"
    return fields


def _rtrimmed(expr: str, line: str) -> str:
    """rtrim(expr), expr being the end of line: rtrim walks the whole string, and most
    lines end in a character it keeps (among ASCII characters it trims only the space)."""
    return (
        f"CASE WHEN ends_with({line}, ' ') OR strlen({line}) <> length({line}) "
        f"THEN rtrim({expr}) ELSE {expr} END"
    )


def _ts_ns(token: str) -> str:
    """`sec.usec` or `sec.nsec`, possibly negative (-R), as integer nanoseconds; NULL for
    seconds beyond MAX_TS_SECONDS (the line is then a parse error, _field_error)."""
    sec = f"TRY_CAST(split_part(ltrim({token}, '-'), '.', 1) AS BIGINT)"
    return (
        f"(CASE WHEN {token} = '' THEN NULL WHEN {sec} < {MAX_TS_SECONDS} THEN "
        f"(CASE WHEN starts_with({token}, '-') THEN -1 ELSE 1 END) * ("
        f"{sec} * 1000000000 + "
        f"CAST(rpad(split_part({token}, '.', 2), 9, '0') AS BIGINT)) END)"
    )


def _general_fields(layout: Layout) -> dict[str, str]:
    """The same fields from the capturing pattern's groups `g`."""
    opts = layout.opts
    unknown = "starts_with(g.tag, 'UNKNOWN')"
    return {
        "pid": "TRY_CAST(g.pid AS INTEGER)",
        "tid": "TRY_CAST(g.tid AS BIGINT)" if opts.tid else "NULL",
        "cpu": "TRY_CAST(g.cpu AS INTEGER)" if opts.cpu else "NULL",
        "kind": f"CASE WHEN {unknown} THEN 'UNKNOWN' ELSE rtrim(g.tag) END",
        "abi": "nullif(g.abi, '')" if opts.abi else "NULL",
        "body": f"rtrim(CASE WHEN {unknown} THEN g.tag || ' ' || g.body ELSE g.body END)",
        "comm": "rtrim(g.comm)",
        "ts": _ts_ns("split_part(g.ts, ' ', 1)") if opts.timestamps else "NULL",
    }


def _header_select(layout: Layout) -> str:
    """Lines -> header fields (NULL where the line is not a header)."""
    fast, general = _fast_fields(layout), _general_fields(layout)
    groups = "[" + ", ".join(q(name) for name in GENERAL_GROUPS) + "]"
    cols = ",\n      ".join(
        f"CASE WHEN p <> '' THEN {fast[name]} WHEN g.pid <> '' THEN {general[name]} END AS {name}"
        for name in ("pid", "tid", "comm", "cpu", "ts", "kind", "abi", "body")
    )
    return f"""
  SELECT line, text, p <> '' OR coalesce(g.pid, '') <> '' AS is_header,
      coalesce(d.pid, '') <> '' AS is_drop, d.pid AS drop_pid, d.tid AS drop_tid,
      d.comm AS drop_comm,
      {cols}
  FROM (
    SELECT line, text, p,
      CASE WHEN p = '' THEN
        regexp_extract(text, {q(general_pattern(layout.opts))}, {groups}) END AS g,
      CASE WHEN p = '' AND ends_with(text, 'Events dropped.') THEN
        regexp_extract(text, {q(dropped_pattern(layout.opts))}, ['pid', 'tid', 'comm'])
      END AS d
    FROM (
      SELECT line, text, regexp_extract(text, {q(fast_prefix_pattern(layout))}, 0) AS p
      FROM lines
    )
  )"""


# ---------------------------------------------------------------------------- bodies


def _body_valid() -> str:
    cases = " ".join(
        f"WHEN {q(kind)} THEN regexp_matches(body, {q(shape)})"
        for kind, shape in BODY_SHAPES.items()
    )
    return f"CASE kind {cases} ELSE true END"


def _decoded() -> str:
    """Body fields by kind (spec §1.3), from columns computed once per line before them:
    `paren` (CALL: where the arguments start) and `ret_rest` (RET: the text after the name)."""
    call_name = "CASE WHEN paren > 0 THEN left(body, paren - 1) ELSE body END"
    name = f"CASE kind WHEN 'CALL' THEN {call_name} WHEN 'RET' THEN split_part(body, ' ', 1) END"
    return f"""
      {name} AS name,
      CASE WHEN paren > 0 THEN substr(body, paren + 1, length(body) - paren - 1) END AS args,
      CASE WHEN kind = 'PFLT' THEN TRY_CAST(split_part(body, ' ', 1) AS UBIGINT) END AS addr,
      CASE WHEN kind = 'PFLT' THEN split_part(split_part(body, ' ', 2), '<', 1) END
        AS prot_text,
      CASE WHEN kind = 'PRET' THEN body END AS fault_result,
      CASE WHEN kind IN ('NAMI', 'SCTL', 'ERR') AND length(body) >= 2 THEN
        substr(body, 2, length(body) - 2) END AS path,
      CASE WHEN kind = 'PSIG' THEN regexp_extract(body,
        '^(SIG[A-Z0-9]+|SIG [0-9]+) (SIG_DFL|SIG_IGN|caught handler=0x[0-9a-f]+ mask=0x[0-9a-f]+)'
        '(?: code=(.*))?$', ['signal', 'action', 'code']) END AS sig,
      CASE WHEN kind = 'CSW' THEN regexp_extract(body,
        '^(stop|resume) (user|kernel)(?: "(.*)")?$', ['dir', 'mode', 'wmesg']) END AS csw,
      CASE WHEN kind = 'GIO' THEN regexp_extract(body,
        '^fd (-?[0-9]+) (read|wrote) ([0-9]+) ', ['fd', 'dir', 'bytes']) END AS gio"""


_RET_KIND = (
    "CASE WHEN ret_rest = 'RESTART' THEN 'restart' "
    "WHEN ret_rest = 'JUSTRETURN' THEN 'justreturn' "
    "WHEN starts_with(ret_rest, '-1 errno ') THEN 'error' "
    "WHEN ret_rest IS NOT NULL THEN 'value' END"
)


def _ret_columns() -> str:
    """retval and errno from `ret_kind`, `ret_rest` and its first word `ret_first`: `N`,
    `N/0xHEX`, `0xHEX` (-n), `-1 errno N [text]`, RESTART, JUSTRETURN."""
    unsigned = "TRY_CAST(ret_first AS UBIGINT)"
    hex_value = (  # -n prints the register in hex: reinterpret it as signed
        f"CAST(CAST({unsigned} AS HUGEINT) - CASE WHEN {unsigned} > 9223372036854775807 "
        f"THEN CAST(18446744073709551616 AS HUGEINT) ELSE 0 END AS BIGINT)"
    )
    return f"""
  CASE ret_kind WHEN 'error' THEN -1
       WHEN 'value' THEN CASE WHEN starts_with(ret_first, '0x') THEN {hex_value}
                         ELSE TRY_CAST(split_part(ret_first, '/', 1) AS BIGINT) END
  END AS retval,
  CASE WHEN ret_kind = 'error' THEN TRY_CAST(split_part(ret_rest, ' ', 3) AS INTEGER)
  END AS errno"""


# ---------------------------------------------------------------------------- lines


def _continuation_shape() -> str:
    """The kind of record a non-header line would continue (spec §1.4). (An empty line
    continues a hex dump whose last row is short: kdump_scan reads empty lines.)"""
    return f"""
      CASE WHEN is_header OR is_drop THEN NULL
           WHEN text = '' THEN NULL
           WHEN hex_row OR regexp_matches(text, {q(GIO_TEXT_LINE)}) THEN {_OWNS_GIO}
           WHEN regexp_matches(text, {q(STRU_ELEMENT_LINE)}) THEN {_OWNS_STRU}
      END AS cont_shape"""


def _field_error(layout: Layout) -> str:
    """Why a record line of the right shape still cannot be stored as it reads: a number
    beyond the range of its column (a TRY_CAST gave NULL where the text has a number). The
    line is then a parse error: no value is silently changed or dropped."""
    opts = layout.opts
    checks = [
        f"WHEN ev_pid IS NULL OR ev_pid > {MAX_ID} THEN 'pid beyond 32 bits (a pid_t)'",
        f"WHEN ev_tid > {MAX_ID} OR (ev_tid IS NULL AND {'true' if opts.tid else 'false'}) "
        "THEN 'thread id beyond 32 bits (an lwpid_t)'",
        "WHEN is_drop THEN NULL",
        "WHEN cpu IS NULL AND "
        + ("true" if opts.cpu else "false")
        + " THEN 'cpu number beyond 32 bits'",
        "WHEN ts IS NULL AND "
        + ("true" if opts.timestamps else "false")
        + " THEN 'timestamp beyond what 64-bit nanoseconds hold (292 years from 1970)'",
        "WHEN kind = 'RET' AND ret_kind = 'error' AND errno IS NULL THEN 'errno beyond 32 bits'",
        "WHEN kind = 'RET' AND ret_kind = 'value' AND retval IS NULL "
        "THEN 'return value beyond 64 bits'",
        "WHEN ends_with(name, ']') AND sysnum IS NULL THEN 'syscall number beyond 32 bits'",
        "WHEN kind = 'PFLT' AND addr IS NULL THEN 'fault address beyond 64 bits'",
        "WHEN kind = 'PFLT' AND prot IS NULL AND regexp_matches(prot_text, '^(0x)?[0-9a-f]+$') "
        "THEN 'fault type beyond 32 bits'",
        "WHEN kind = 'GIO' AND (gio_fd IS NULL OR gio_bytes IS NULL) "
        "THEN 'GIO descriptor or byte count out of range'",
    ]
    return "CASE " + " ".join(checks) + " END"


def _reason(layout: Layout) -> str:
    return f"""
    CASE WHEN starts_with(text, {q(BAD_MARK)}) THEN split_part(text, {q(BAD_MARK)}, 2)
         WHEN field_error IS NOT NULL THEN field_error
         WHEN is_header THEN 'malformed ' || kind || ' record body'
         WHEN text = '' THEN 'blank line'
         WHEN cont_shape = {_OWNS_GIO} THEN 'GIO data line without its GIO record before it'
         WHEN cont_shape = {_OWNS_STRU} THEN
           'struct array element without its STRU record before it'
         ELSE 'not a kdump record line (options {layout.opts})' END"""


# ---------------------------------------------------------------------------- one line


def _event_columns() -> str:
    """The event columns of a parsed line (the staged rows' columns)."""
    decoded = ", ".join(q(k) for k in _DECODED_KINDS)
    return f"""CAST(ev_pid AS INTEGER) AS pid, ev_tid AS tid,
  coalesce(comm, rtrim(drop_comm)) AS comm,
  cpu, ts,
  CASE WHEN is_drop THEN 'DROP' ELSE kind END AS kind,
  abi,
  CASE WHEN starts_with(name, '[') OR NOT contains(name, '[') THEN name
       ELSE split_part(name, '[', 1) END AS syscall,
  sysnum, args, retval, errno, ret_kind,
  addr, prot, fault_result, path,
  sig.signal AS signal, split_part(sig.action, ' ', 1) AS sig_action,
  nullif(sig.code, '') AS sig_code,
  csw.dir AS csw, csw.mode AS csw_mode, nullif(csw.wmesg, '') AS wmesg,
  gio_fd, gio.dir AS gio_dir, gio_bytes,
  CASE WHEN kind NOT IN ({decoded}) THEN body END AS body"""


LINE_COLUMNS = ("line", "cand", "shape", "owns", "reason", "text")


def line_parse_sql(layout: Layout, source: str) -> str:
    """The lines of `source` (line, text) that kdump_scan leaves to SQL, each read alone:
    LINE_COLUMNS (is it an event, its continuation shape, what continuation lines it can
    own, the reason if it ends up an error, its text as stored) and the event columns.
    What needs the lines around it (which record a continuation belongs to, seq) the
    compiled scan works out for all lines (kdump_scan.resolve); a line read here is never
    empty (the scan reads those, with the hex row before them)."""
    return f"""
WITH lines AS (SELECT line, text FROM {source}),
hdr AS ({_header_select(layout)}),
hex AS (
  SELECT *, NOT is_header AND regexp_matches(text, {q(GIO_HEX_LINE)}) AS hex_row
  FROM hdr
),
valid AS (
  SELECT *, CASE WHEN is_header THEN {_body_valid()} END AS body_ok,
    CASE WHEN kind = 'CALL' THEN strpos(body, '(') END AS paren,
    CASE WHEN kind = 'RET' THEN substr(body, strpos(body, ' ') + 1) END AS ret_rest
  FROM hex
),
dec AS (
  SELECT *, {_decoded()}, split_part(ret_rest, ' ', 1) AS ret_first,
      {_RET_KIND} AS ret_kind,
      {_continuation_shape()}
  FROM valid
),
num AS (
  SELECT *, {_ret_columns()},
    CASE WHEN ends_with(name, ']') THEN
      TRY_CAST(rtrim(split_part(name, '[', -1), ']') AS INTEGER) END AS sysnum,
    TRY_CAST(prot_text AS INTEGER) AS prot,
    TRY_CAST(gio.fd AS INTEGER) AS gio_fd, TRY_CAST(gio.bytes AS BIGINT) AS gio_bytes,
    coalesce(pid, TRY_CAST(drop_pid AS BIGINT)) AS ev_pid,
    coalesce(tid, TRY_CAST(drop_tid AS BIGINT)) AS ev_tid
  FROM dec
),
fld AS (
  SELECT *, CASE WHEN body_ok OR is_drop THEN {_field_error(layout)} END AS field_error
  FROM num
)
SELECT line,
  coalesce((body_ok OR is_drop) AND field_error IS NULL, false) AS cand,
  coalesce(cont_shape, 0) AS shape,
  CASE WHEN body_ok AND field_error IS NULL AND kind = 'GIO' THEN {_OWNS_GIO}
       WHEN body_ok AND field_error IS NULL AND kind = 'STRU' THEN {_OWNS_STRU}
       ELSE 0 END AS owns,
  {_reason(layout)} AS reason,
  CASE WHEN starts_with(text, {q(BAD_MARK)}) THEN split_part(text, {q(BAD_MARK)}, 3)
       ELSE text END AS text,
  {_event_columns()}
FROM fld"""
