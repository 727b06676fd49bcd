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
