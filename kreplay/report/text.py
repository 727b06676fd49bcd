"""Plain-text and JSON renderings of store contents."""

import csv
import datetime
import decimal
import io
import uuid
from collections.abc import Iterable, Iterator, Sequence

import msgspec
from tabulate import tabulate

from kreplay.compare import MARKS, VERDICTS
from kreplay.result import METRICS
from kreplay.store import TraceInfo

_json = msgspec.json.Encoder(enc_hook=lambda obj: str(obj), order="deterministic")


def to_json(obj: object) -> str:
    """Indented, key-ordered JSON with a trailing newline."""
    return msgspec.json.format(_json.encode(_plain(obj)), indent=2).decode() + "\n"


def _plain(obj: object) -> object:
    if isinstance(obj, TraceInfo):
        return {k: getattr(obj, k) for k in TraceInfo.__dataclass_fields__}
    if isinstance(obj, list | tuple):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, decimal.Decimal | uuid.UUID | datetime.date | datetime.time):
        return str(obj)
    if isinstance(obj, int) and not -(2**63) <= obj < 2**64:
        return str(obj)
    return obj


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True) + "\n"


QUERY_FORMATS = ("table", "csv", "markdown", "json")


def query_view(columns: list[str], batches: Iterable[list[tuple]], fmt: str) -> Iterator[str]:
    """A query's rows in one of QUERY_FORMATS, as pieces to print in turn: csv and json
    stream batch by batch; a table (tabulate: simple, or markdown's pipe table) needs
    every row first to size its columns."""
    if fmt == "csv":
        yield from _csv(columns, batches)
    elif fmt == "json":
        yield from _json_rows(columns, batches)
    elif fmt == "markdown":
        rows = [row for batch in batches for row in batch]
        yield tabulate(rows, headers=columns, tablefmt="pipe", disable_numparse=True) + "\n"
    else:
        yield plain_table(columns, [row for batch in batches for row in batch])


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """table(columns, rows) as tabulate's simple style prints it (headers padded by at
    least two), at many times its speed for long results: a query can return millions of
    rows. A cell with line breaks spans as many lines, aligned at the top."""
    lines = [[str(c).split("\n") for c in columns]]
    lines += [[("" if v is None else str(v)).split("\n") for v in row] for row in rows]
    widths = [
        max([max(len(h) for h in head) + 2, *(len(p) for line in lines[1:] for p in line[i])])
        for i, head in enumerate(lines[0])
    ]
    out = []
    for k, line in enumerate(lines):
        for depth in range(max((len(cell) for cell in line), default=1)):
            parts = (cell[depth] if depth < len(cell) else "" for cell in line)
            out.append("  ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "".join(line.rstrip() + "\n" for line in out)


def _csv(columns: list[str], batches: Iterable[list[tuple]]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for batch in batches:
        writer.writerows([["" if v is None else v for v in row] for row in batch])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def _json_rows(columns: list[str], batches: Iterable[list[tuple]]) -> Iterator[str]:
    """The same text as to_json(list of row dicts), a batch at a time."""
    first = True
    for batch in batches:
        for row in batch:
            item = to_json(dict(zip(columns, row, strict=True))).rstrip("\n")
            yield ("[\n" if first else ",\n") + "  " + item.replace("\n", "\n  ")
            first = False
    yield "[]\n" if first else "\n]\n"


def facts(rows: Sequence[tuple[str, object]]) -> str:
    """`name  value` lines, aligned."""
    return tabulate(rows, tablefmt="plain", disable_numparse=True) + "\n"


def format_ts(ns: int | None) -> str:
    if ns is None:
        return "-"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    return f"{sign}{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def traces_table(traces: list[TraceInfo]) -> str:
    if not traces:
        return "no traces in the store (kreplay ingest FILE)\n"
    rows = [
        (
            t.name,
            t.sha256[:12],
            t.format,
            t.options or "-",
            t.lines,
            t.events,
            t.continuations,
            t.parse_errors,
            t.dropped,
        )
        for t in traces
    ]
    return table(
        (
            "name",
            "sha256",
            "format",
            "options",
            "lines",
            "events",
            "cont",
            "parse_errors",
            "dropped",
        ),
        rows,
    )


def _machine_text(recorded: dict | None) -> str:
    """The trace's recorded machine (TraceInfo.recorded_machine) as `replay` will use it."""
    if not recorded:
        return "amd64 (no sidecar at ingest)"
    words = [recorded["preset"], *(f"{k}={v}" for k, v in sorted(recorded["set"].items()))]
    return " ".join(words) + " (sidecar)"


def trace_summary(
    t: TraceInfo,
    kinds: list[tuple[str, int]],
    entities: tuple[int, int | None],
    errors: list[tuple[int, str, str]],
    preflight: list[tuple[str, object]] = (),
) -> str:
    span = "-"
    if t.first_ts is not None:
        span = f"{format_ts(t.first_ts)} .. {format_ts(t.last_ts)}"
    pids, threads = entities
    rows = [
        ("trace", t.name),
        ("sha256", t.sha256),
        ("source", t.source),
        ("format", t.format + (f" ({t.compression})" if t.compression else "")),
        ("kdump options", f"{t.options or '(none)'} ({t.options_source})"),
        ("header version", "-" if t.header_version is None else f"v{t.header_version}"),
        (
            "lines",
            f"{t.lines} = {t.events} events + {t.continuations} continuation lines"
            f" + {t.parse_errors} parse errors",
        ),
        ("processes", pids),
        ("threads", "unknown (no -H tid column)" if threads is None else threads),
        ("time span", span),
        ("dropped-event markers", t.dropped),
        ("replay machine", _machine_text(t.recorded_machine)),
    ]
    out = [facts(rows), "\n", table(("kind", "events"), kinds)]
    if preflight:
        out += ["\npreflight (what the replay has to assume):\n", facts(list(preflight))]
    if errors:
        shown = [(line, reason, _clip(text)) for line, reason, text in errors]
        out += [
            "\n",
            f"parse errors (first {len(errors)} of {t.parse_errors}):\n",
            table(("line", "reason", "text"), shown),
        ]
    return "".join(out)


def _clip(text: str | None, width: int = 60) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 3] + "..."


def revisions_view(revs: list, as_json: bool) -> str:
    if as_json:
        return to_json(
            [
                {
                    "name": r.name,
                    "description": r.description,
                    "source": r.source,
                    "origin": r.origin,
                    "policy": r.policy.describe(),
                }
                for r in revs
            ]
        )
    rows = [(r.name, r.origin, r.description) for r in revs]
    return (
        tabulate(
            rows,
            headers=("revision", "from", "description"),
            tablefmt="simple",
            maxcolwidths=[None, None, 80],
        )
        + "\n"
    )


def result_view(result) -> str:
    rows = [
        (name, METRICS[name][0], _number(value)) for name, value in sorted(result.metrics.items())
    ]
    outcome = result.outcome
    head = [
        ("trace", result.trace),
        ("revision", result.revision),
        ("machine", result.machine + "".join(f" {k}={v}" for k, v in result.settings.items())),
        ("ops", result.ops),
        ("outcome", outcome.status),
    ]
    if outcome.status != "ok":
        head += [
            ("message", outcome.message),
            (
                "at",
                f"op {outcome.op_index} ({outcome.op}) pid {outcome.pid} "
                f"tid {outcome.tid} line {outcome.line}",
            ),
        ]
    chunks = [
        (c.kva, c.slots, c.pattern, " ".join(map(str, c.populated)))
        for c in result.kstack_chunks[:10]
    ]
    out = [facts(head), "\n", table(("metric", "unit", "value"), rows)]
    if chunks:
        more = len(result.kstack_chunks) - len(chunks)
        out += ["\n", table(("chunk kva (pages)", "slots", "pattern", "populated"), chunks)]
        if more > 0:
            out.append(f"... and {more} more chunks (--json for all)\n")
    return "".join(out)


def _number(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def marks_legend() -> str:
    """What the mark column says, printed once above the tables that have one."""
    words = "  ".join(f"{mark} {meaning}" for mark, meaning in MARKS.items())
    return (
        f"marks: {words}\n"
        "(worse and better follow each metric's polarity, not the change's sign; "
        "informational metrics are never marked: docs/regression.md)\n"
    )


def _shown(rows: list, show_all: bool) -> list:
    return [r for r in rows if show_all or r.change or r.mark]


def diff_view(comparisons: list, as_json: bool, show_all: bool = False) -> str:
    """Per trace: the metrics that changed (every metric with show_all) with both values,
    the change and its mark, and a verdict; then a summary across traces."""
    summary = {v: sum(1 for c in comparisons if c.verdict() == v) for v in VERDICTS}
    overall = _overall(comparisons)
    if as_json:
        return to_json(
            {
                "verdict": overall,
                "summary": summary,
                "traces": [
                    {
                        "trace": c.trace,
                        "a": c.a,
                        "b": c.b,
                        "verdict": c.verdict(),
                        "divergence": _divergence(c.divergence),
                        "rows": [
                            {
                                "name": r.name,
                                "unit": r.unit,
                                "polarity": METRICS[r.name][1] if r.name in METRICS else "",
                                "a": r.a,
                                "b": r.b,
                                "change": r.change,
                                "mark": r.mark,
                            }
                            for r in _shown(c.rows, show_all)
                        ],
                    }
                    for c in comparisons
                ],
            }
        )
    out = [marks_legend(), "\n"]
    for c in comparisons:
        rows = [
            (r.mark, r.name, r.unit, _value(r.a), _value(r.b), r.change)
            for r in _shown(c.rows, show_all)
        ]
        out.append(f"{c.trace}: {c.a} -> {c.b}\n")
        out.append(
            table(("mark", "metric", "unit", c.a, c.b, "change"), rows)
            if rows
            else "(no metric changed)\n"
        )
        where = _divergence(c.divergence)
        tail = ""
        if where:  # between the last equal checkpoint and the first different one
            tail = f"; state first differs in ops {where['after_op'] + 1}..{where['by_op']}"
        out.append(f"verdict {c.trace}: {c.verdict()}{tail}\n\n")
    n = len(comparisons)
    counts = ", ".join(f"{summary[v]} {v}" for v in VERDICTS)
    out.append(f"summary: {n} trace{'' if n == 1 else 's'}: {counts}\n")
    out.append(f"overall: {overall}\n")
    return "".join(out)


def _overall(comparisons: list) -> str:
    verdicts = {c.verdict() for c in comparisons}
    for v in VERDICTS:
        if v in verdicts:
            return v
    return "same"


def _divergence(div) -> dict | None:
    if div is None:
        return None
    last_equal, first_diff = div
    return {"after_op": last_equal, "by_op": first_diff}


def _value(v) -> str:
    if v is None:
        return "-"
    return _number(v) if not isinstance(v, str) else v


def check_view(report, as_json: bool) -> str:
    """The trace x revision matrix, then the details of every difference."""
    if as_json:
        return to_json(
            {
                "failed": report.failed,
                "orphans": report.orphans,
                "notes": report.notes,
                "validations": [
                    {
                        "trace": v.trace,
                        "revision": v.revision,
                        "status": v.status,
                        "detail": v.detail,
                    }
                    for v in report.validations
                ],
                "cells": [
                    {
                        "trace": c.trace,
                        "revision": c.revision,
                        "status": c.status,
                        "detail": c.detail,
                        "first_op": c.first_op,
                        "metrics": c.result.metrics if c.result is not None else None,
                        "changes": [
                            {
                                "name": r.name,
                                "golden": r.a,
                                "obtained": r.b,
                                "change": r.change,
                                "mark": r.mark,
                            }
                            for r in (c.comparison.rows if c.comparison else [])
                            if r.change or r.mark
                        ],
                    }
                    for c in report.cells
                ],
            }
        )
    traces = list(dict.fromkeys(c.trace for c in report.cells))
    revisions = list(dict.fromkeys(c.revision for c in report.cells))
    status = {(c.trace, c.revision): c.status for c in report.cells}
    rows = [[t] + [status.get((t, r), "-") for r in revisions] for t in traces]
    out = [table(["trace"] + revisions, rows)]
    for c in report.cells:
        if c.matches:
            continue
        out.append(f"\n{c.trace} / {c.revision}: {c.status} {c.detail}\n")
        if c.comparison is not None:
            changed = [
                (r.mark, r.name, _value(r.a), _value(r.b), r.change)
                for r in c.comparison.rows
                if r.change or r.mark
            ]
            if changed:
                out.append(table(("", "metric", "golden", "obtained", "change"), changed))
        if c.first_op:
            f = c.first_op
            out.append(
                f"first divergent op: #{f['op_index']} {f['kind']} pid {f['pid']} "
                f"tid {f['tid']} (trace line {f['line']}); state differs by op "
                f"#{f['window_end']}\n"
            )
    for path in report.orphans:
        out.append(f"orphaned golden (trace or revision gone): {path}\n")
    for note in report.notes:
        out.append(f"note: {note}\n")
    for v in report.validations:
        on = f" on {v.revision}" if v.revision else ""
        out.append(f"validation: {v.trace}{on}: {v.status} ({v.detail})\n")
    failed = sum(1 for c in report.cells if not c.matches)
    out.append(
        f"\n{len(report.cells)} cells, {failed} not matching golden, "
        f"{len(report.orphans)} orphaned goldens\n"
    )
    return "".join(out)


def golden_view(done: list, as_json: bool = False) -> str:
    if as_json:
        return to_json(
            [
                {
                    "path": path,
                    "state": state,
                    "changes": [
                        {"name": r.name, "old": r.a, "new": r.b, "change": r.change, "mark": r.mark}
                        for r in (change.rows if change is not None else [])
                        if r.change or r.mark
                    ],
                }
                for path, state, change in done
            ]
        )
    out = []
    for path, state, change in done:
        out.append(f"{state}: {path}\n")
        if change is not None:
            rows = [
                (r.mark, r.name, _value(r.a), _value(r.b), r.change)
                for r in change.rows
                if r.change or r.mark
            ]
            if rows:
                out.append(table(("", "metric", "old", "new", "change"), rows))
    return "".join(out)


def checks_view(checks: list[tuple], as_json: bool) -> str:
    """The checks recorded in the store, oldest first."""
    keys = ("check", "label", "kreplay", "model", "cells", "failed")
    if as_json:
        return to_json([dict(zip(keys, row, strict=True)) for row in checks])
    if not checks:
        return "no checks recorded in this store yet (kreplay check records one)\n"
    return table(keys, checks)


def history_view(rows: list[tuple], metrics: list[str], as_json: bool) -> str:
    """Each recorded cell (Store.check_history rows): check, label, trace, revision,
    status, then the value of each metric asked for (blank where the cell has none)."""
    cells: dict[tuple, dict[str, float]] = {}
    for check_id, label, trace, revision, status, metric, value in rows:
        cell = cells.setdefault((check_id, label, trace, revision, status), {})
        if metric is not None:
            cell[metric] = value
    keys = ("check", "label", "trace", "revision", "status")
    if as_json:
        return to_json(
            [dict(zip(keys, cell, strict=True)) | {"metrics": m} for cell, m in cells.items()]
        )
    if not cells:
        return "no recorded check has such a cell\n"
    body = [[*cell, *(_value(m.get(name)) for name in metrics)] for cell, m in cells.items()]
    return table((*keys, *metrics), body)
