"""Plain-text and JSON renderings of store contents."""

import datetime
import decimal
import uuid
from collections.abc import Sequence

import msgspec
from tabulate import tabulate

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
                    "policy": dict(vars(r.policy)),
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
    from kreplay.result import METRICS

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


def diff_view(comparisons: list, as_json: bool, only_changed: bool = False) -> str:
    """Per trace: metric, unit, both values, change, mark; a verdict line; an overall one."""
    overall = _overall(comparisons)
    if as_json:
        return to_json(
            {
                "verdict": overall,
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
                                "a": r.a,
                                "b": r.b,
                                "change": r.change,
                                "mark": r.mark,
                            }
                            for r in c.rows
                            if r.change or r.mark or not only_changed
                        ],
                    }
                    for c in comparisons
                ],
            }
        )
    out = []
    for c in comparisons:
        rows = [
            (r.mark, r.name, r.unit, _value(r.a), _value(r.b), r.change)
            for r in c.rows
            if r.change or r.mark or not only_changed
        ]
        out.append(f"{c.trace}: {c.a} -> {c.b}\n")
        out.append(
            table(("", "metric", "unit", c.a, c.b, "change"), rows)
            if rows
            else "(no metric changed)\n"
        )
        where = _divergence(c.divergence)
        tail = ""
        if where:  # between the last equal checkpoint and the first different one
            tail = f"; state first differs in ops {where['after_op'] + 1}..{where['by_op']}"
        out.append(f"verdict {c.trace}: {c.verdict()}{tail}\n\n")
    n = len(comparisons)
    out.append(f"overall: {overall} ({n} trace{'' if n == 1 else 's'})\n")
    return "".join(out)


def _overall(comparisons: list) -> str:
    verdicts = {c.verdict() for c in comparisons}
    for v in ("worse", "better", "changed"):
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
    failed = sum(1 for c in report.cells if not c.matches)
    out.append(
        f"\n{len(report.cells)} cells, {failed} not matching golden, "
        f"{len(report.orphans)} orphaned goldens\n"
    )
    return "".join(out)


def golden_view(done: list) -> str:
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
