"""The bulk parse of kdump text, written as one DuckDB query over the file's lines.

A per-line Python parser reads about 0.4 M lines/s; DuckDB reads the file in parallel
and runs RE2's DFA over it several times faster. So the format knowledge of kdump.py is
compiled here into SQL: the header is matched by a fixed-width DFA pattern and cut
into fields by position (the fast path), wider or stranger headers fall back to a
capturing pattern, bodies are decoded by kind, and every line is classified as an
event, a continuation of the record before it, or a parse error with a reason.

This module only builds SQL text; store.py runs it (the one module that runs SQL).
"""

from kreplay.ingest.kdump import (
    BODY_SHAPES,
    GENERAL_GROUPS,
    GIO_HEX_LINE,
    GIO_TEXT_LINE,
    STRU_ELEMENT_LINE,
    KdumpOptions,
    dropped_pattern,
    fast_prefix_pattern,
    general_pattern,
)
from kreplay.ingest.source import BAD_MARK

# Code of a record that may own continuation lines, packed into the owner number.
_OWNS_GIO, _OWNS_STRU, _OWNER_BITS = 1, 2, 4


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def read_lines_sql(path: str) -> str:
    """The file as (line number, text), in file order, one row per line."""
    return (
        f"(SELECT row_number() OVER () AS line, coalesce(column0, '') AS text "
        f"FROM read_csv({q(path)}, columns={{'column0': 'VARCHAR'}}, delim='\\x01', "
        f"quote='', escape='', header=false, auto_detect=false, new_line='\\n', "
        f"max_line_size=16777216, buffer_size=33554432))"
    )


def _ts_ns(token: str) -> str:
    """`sec.usec` or `sec.nsec` (possibly negative) as integer nanoseconds."""
    return (
        f"(CASE WHEN {token} IS NULL OR {token} = '' THEN NULL ELSE "
        f"(CASE WHEN starts_with({token}, '-') THEN -1 ELSE 1 END) * ("
        f"CAST(split_part(ltrim({token}, '-'), '.', 1) AS BIGINT) * 1000000000 + "
        f"CAST(rpad(split_part({token}, '.', 2), 9, '0') AS BIGINT)) END)"
    )


def _fast_fields(opts: KdumpOptions) -> dict[str, str]:
    """Header fields cut by position from the fast prefix `p` (see kdump.py)."""
    comm_start = 15 if opts.tid else 8
    tag_end = "length(p) - 2"  # the tag is followed by two spaces
    if opts.abi:  # `TAG  ABI  `: the ABI is the last word of the prefix
        abi = "string_split(rtrim(p), ' ')[-1]"
        tag_end = f"length(p) - length({abi}) - 4"
    else:
        abi = "NULL"
    tag_start = f"({tag_end} - 3)"
    mid_end = f"({tag_start} - 2)" if not opts.cpu else f"({tag_start} - 6)"
    fields = {
        "pid": "CAST(substr(p, 1, 6) AS INTEGER)",
        "tid": "CAST(substr(p, 8, 6) AS BIGINT)" if opts.tid else "NULL",
        "cpu": f"CAST(substr(p, {tag_start} - 4, 3) AS INTEGER)" if opts.cpu else "NULL",
        "kind": f"rtrim(substr(p, {tag_start}, 4))",
        "abi": abi,
        "mid": f"substr(p, {comm_start}, {mid_end} - {comm_start} + 1)",
        "body": "rtrim(substr(text, length(p) + 1))",
    }
    return fields


def _general_fields(opts: KdumpOptions) -> dict[str, str]:
    """The same fields from the capturing fallback pattern `g`."""
    return {
        "pid": "TRY_CAST(g.pid AS INTEGER)",
        "tid": "TRY_CAST(g.tid AS BIGINT)" if opts.tid else "NULL",
        "cpu": "TRY_CAST(g.cpu AS INTEGER)" if opts.cpu else "NULL",
        "kind": "CASE WHEN starts_with(g.tag, 'UNKNOWN') THEN 'UNKNOWN' ELSE rtrim(g.tag) END",
        "abi": "nullif(g.abi, '')" if opts.abi else "NULL",
        "mid": "g.comm || CASE WHEN g.ts = '' THEN '' ELSE ' ' || rtrim(g.ts) END",
        "body": "rtrim(CASE WHEN starts_with(g.tag, 'UNKNOWN') THEN g.tag || ' ' || g.body "
        "ELSE g.body END)",
    }


def _header_select(opts: KdumpOptions) -> str:
    """Lines -> header fields (NULL where the line is not a header)."""
    fast, general = _fast_fields(opts), _general_fields(opts)
    groups = "[" + ", ".join(q(name) for name in GENERAL_GROUPS) + "]"
    drop_groups = "['pid', 'tid', 'comm']"
    cols = ",\n      ".join(
        f"CASE WHEN p <> '' THEN {fast[name]} WHEN g.pid <> '' THEN {general[name]} END "
        f"AS {name}"
        for name in ("pid", "tid", "cpu", "kind", "abi", "mid", "body")
    )
    return f"""
  SELECT line, text, p <> '' OR coalesce(g.pid, '') <> '' AS is_header,
      coalesce(d.pid, '') <> '' AS is_drop,
      {cols},
      d.pid AS drop_pid, d.tid AS drop_tid, d.comm AS drop_comm
  FROM (
    SELECT line, text, p,
      CASE WHEN p = '' THEN regexp_extract(text, {q(general_pattern(opts))}, {groups}) END AS g,
      CASE WHEN p = '' AND ends_with(text, 'Events dropped.') THEN
        regexp_extract(text, {q(dropped_pattern(opts))}, {drop_groups}) END AS d
    FROM (
      SELECT line, text, regexp_extract(text, {q(fast_prefix_pattern(opts))}, 0) AS p
      FROM lines
    )
  )"""


def _comm_and_ts(opts: KdumpOptions) -> tuple[str, str]:
    """`mid` is the command field plus the timestamp columns: timestamps never contain
    spaces, the command name may, so split the timestamps off from the right."""
    n = len(opts.timestamps)
    if n == 0:
        return "rtrim(mid)", "NULL"
    words = "string_split(mid, ' ')"
    ts_total = " + ".join(f"length({words}[-{i}]) + 1" for i in range(1, n + 1))
    comm = f"rtrim(left(mid, length(mid) - ({ts_total})))"
    return comm, _ts_ns(f"{words}[-{n}]")


def _body_valid() -> str:
    cases = " ".join(
        f"WHEN {q(kind)} THEN regexp_matches(body, {q(shape)})"
        for kind, shape in BODY_SHAPES.items()
    )
    return f"CASE kind {cases} ELSE true END"


def _decoded() -> str:
    """Body fields by kind (spec §1.3). Only lines of the right kind pay for each."""
    name = "split_part(split_part(body, '(', 1), ' ', 1)"
    ret_rest = f"substr(body, length({name}) + 2)"
    hexval = "TRY_CAST(split_part(body, ' ', 1) AS UBIGINT)"
    return f"""
      CASE WHEN kind IN ('CALL', 'RET') THEN
        CASE WHEN starts_with({name}, '[') THEN {name} ELSE split_part({name}, '[', 1) END
      END AS syscall,
      CASE WHEN kind IN ('CALL', 'RET') AND ends_with({name}, ']') THEN
        TRY_CAST(rtrim(split_part({name}, '[', -1), ']') AS INTEGER) END AS sysnum,
      CASE WHEN kind = 'CALL' AND contains(body, '(') THEN
        substr(body, strpos(body, '(') + 1, length(body) - strpos(body, '(') - 1) END AS args,
      CASE WHEN kind = 'RET' THEN {_ret_fields(ret_rest)} END AS ret,
      CASE WHEN kind = 'PFLT' THEN {hexval} END AS addr,
      CASE WHEN kind = 'PFLT' THEN TRY_CAST(split_part(split_part(body, ' ', 2), '<', 1)
        AS INTEGER) END AS prot,
      CASE WHEN kind = 'PRET' THEN body END AS fault_result,
      CASE WHEN kind IN ('NAMI', 'SCTL', 'ERR') AND length(body) >= 2 THEN
        substr(body, 2, length(body) - 2) END AS path,
      CASE WHEN kind = 'PSIG' THEN regexp_extract(body,
          '^(SIG[A-Z0-9]+|SIG [0-9]+) (SIG_DFL|SIG_IGN|caught handler=0x[0-9a-f]+ mask=0x[0-9a-f]+)'
        '(?: code=(.*))?$',
        ['signal', 'action', 'code']) END AS sig,
      CASE WHEN kind = 'CSW' THEN regexp_extract(body,
        '^(stop|resume) (user|kernel)(?: "(.*)")?$', ['dir', 'mode', 'wmesg']) END AS csw,
      CASE WHEN kind = 'GIO' THEN regexp_extract(body,
        '^fd (-?[0-9]+) (read|wrote) ([0-9]+) ', ['fd', 'dir', 'bytes']) END AS gio"""


def _ret_fields(rest: str) -> str:
    """`N`, `N/0xHEX`, `0xHEX` (-n), `-1 errno N [text]`, RESTART, JUSTRETURN."""
    first = f"split_part({rest}, ' ', 1)"
    value = (
        f"CASE WHEN starts_with({first}, '0x') THEN "
        f"CAST(CAST(TRY_CAST({first} AS UBIGINT) AS HUGEINT) - CASE WHEN "
        f"TRY_CAST({first} AS UBIGINT) > 9223372036854775807 THEN "
        f"CAST(18446744073709551616 AS HUGEINT) ELSE 0 END AS BIGINT) "
        f"ELSE TRY_CAST(split_part({first}, '/', 1) AS BIGINT) END"
    )
    return (
        f"CASE WHEN {rest} = 'RESTART' THEN {{'kind': 'restart', 'value': NULL::BIGINT, "
        f"'errno': NULL::INTEGER}} "
        f"WHEN {rest} = 'JUSTRETURN' THEN {{'kind': 'justreturn', 'value': NULL, 'errno': NULL}} "
        f"WHEN starts_with({rest}, '-1 errno ') THEN {{'kind': 'error', 'value': -1, "
        f"'errno': TRY_CAST(split_part({rest}, ' ', 3) AS INTEGER)}} "
        f"ELSE {{'kind': 'value', 'value': {value}, 'errno': NULL}} END"
    )


def _classify() -> str:
    """event / cont / error, with the reason for errors and the owner of continuations."""
    return f"""
      CASE WHEN is_header OR is_drop THEN NULL
           WHEN regexp_matches(text, {q(GIO_TEXT_LINE)})
             OR regexp_matches(text, {q(GIO_HEX_LINE)}) THEN {_OWNS_GIO}
           WHEN regexp_matches(text, {q(STRU_ELEMENT_LINE)}) THEN {_OWNS_STRU}
      END AS cont_shape"""


def staged_parse_sql(source: str, opts: KdumpOptions) -> str:
    """SELECT producing one row per input line: class, reason, owner and event fields."""
    comm, ts = _comm_and_ts(opts)
    bits = _OWNER_BITS
    return f"""
WITH lines AS {source},
hdr AS ({_header_select(opts)}),
dec AS (
  SELECT *, {comm} AS comm, {ts} AS ts,
      CASE WHEN is_header THEN {_body_valid()} END AS body_ok,
      {_decoded()},
      {_classify()}
  FROM hdr
),
win AS (
  SELECT *,
    max(CASE WHEN cont_shape IS NULL THEN line * {bits} + CASE
          WHEN is_header AND body_ok AND kind = 'GIO' THEN {_OWNS_GIO}
          WHEN is_header AND body_ok AND kind = 'STRU' THEN {_OWNS_STRU}
          ELSE 0 END END)
      OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS owner_packed
  FROM dec
),
cls AS (
  SELECT *,
    CASE WHEN is_header AND body_ok THEN 'event'
         WHEN is_drop THEN 'event'
         WHEN cont_shape IS NOT NULL AND owner_code = cont_shape THEN 'cont'
         ELSE 'error' END AS class,
    CASE WHEN is_header AND body_ok THEN NULL
         WHEN is_drop THEN NULL
         WHEN starts_with(text, {q(BAD_MARK)}) THEN split_part(text, {q(BAD_MARK)}, 2)
         WHEN is_header THEN 'malformed ' || kind || ' record body'
         WHEN cont_shape = {_OWNS_GIO} THEN 'GIO data line without its GIO record before it'
         WHEN cont_shape = {_OWNS_STRU} THEN
           'struct array element without its STRU record before it'
         WHEN text = '' THEN 'blank line'
         ELSE 'not a kdump record line for options ' || {q(str(opts))} END AS reason
  FROM (SELECT *, owner_packed // {bits} AS owner, owner_packed % {bits} AS owner_code
        FROM win)
)
SELECT
  sum(CASE WHEN class = 'event' THEN 1 ELSE 0 END)
    OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - 1 AS seq,
  line, class, reason,
  CASE WHEN starts_with(text, {q(BAD_MARK)}) THEN split_part(text, {q(BAD_MARK)}, 3)
       WHEN class <> 'event' THEN text END AS text,
  CASE WHEN class = 'cont' THEN owner END AS owner,
  coalesce(pid, TRY_CAST(drop_pid AS INTEGER)) AS pid,
  coalesce(tid, TRY_CAST(drop_tid AS BIGINT)) AS tid,
  coalesce(comm, rtrim(drop_comm)) AS comm,
  cpu, ts,
  CASE WHEN is_drop THEN 'DROP' ELSE kind END AS kind,
  abi, syscall, sysnum, args,
  ret.value AS retval, ret.errno AS errno, ret.kind AS ret_kind,
  addr, prot, fault_result, path,
  sig.signal AS signal, split_part(sig.action, ' ', 1) AS sig_action, nullif(sig.code, '') AS sig_code,
  csw.dir AS csw, csw.mode AS csw_mode, nullif(csw.wmesg, '') AS wmesg,
  TRY_CAST(gio.fd AS INTEGER) AS gio_fd, gio.dir AS gio_dir,
  TRY_CAST(gio.bytes AS BIGINT) AS gio_bytes,
  body
FROM cls
"""
