"""Renderings of parsed captures and recordings (`kreplay snapshot`, `kreplay record`)."""

import msgspec

from kreplay.report.text import facts, table, to_json
from kreplay.snapshot import Capture
from kreplay.snapshot.counters import ZONE_COLUMNS
from kreplay.snapshot.libxo import VmstatZJson
from kreplay.snapshot.recording import ParsedCapture, Recording
from kreplay.snapshot.sysctl import PARTPOPQ, Sysctl
from kreplay.snapshot.tolerance import tolerance_for
from kreplay.snapshot.vmstat_z import VmstatZ


def capture_data(capture: Capture) -> dict:
    """What one capture holds, as plain data: for vmstat -z one entry per zone with its
    name and every column by its header name; for sysctl each entry and its value."""
    if isinstance(capture, VmstatZ):
        return {
            "path": capture.path,
            "format": "vmstat-z",
            "header": capture.header,
            "columns": list(capture.columns),
            "zones": capture.as_dicts(),
        }
    if isinstance(capture, VmstatZJson):
        zones = [msgspec.structs.asdict(z) for z in capture.zones]
        return {"path": capture.path, "format": "vmstat-z-json", "version": capture.version,
                "zones": zones}  # fmt: skip
    return _sysctl_data(capture)


def _sysctl_data(capture: Sysctl) -> dict:
    entries = []
    for e in capture.entries:
        number = e.integer()
        entries.append(
            {"name": e.name, "line": e.line, "value": e.value if number is None else number}
        )
    out: dict = {"path": capture.path, "format": "sysctl", "entries": entries}
    if capture.partpopq is not None:
        out["partpopq"] = [msgspec.structs.asdict(row) for row in capture.partpopq]
    return out


def capture_view(capture: Capture, as_json: bool) -> str:
    data = capture_data(capture)
    if as_json:
        return to_json(data)
    if data["format"] == "sysctl":
        return _sysctl_text(data)
    columns = data["columns"] if "columns" in data else _json_columns(data["zones"])
    rows = [[z["name"], *(z[c] for c in columns)] for z in data["zones"]]
    if data["format"] == "vmstat-z-json":
        what = "vmstat --libxo json -z"
    else:
        told = "" if data["header"] else "; no header, told by the commas"
        what = f"vmstat -z ({len(columns)} columns{told})"
    return f"{data['path']}: {what}, {len(rows)} zones\n" + table(["name", *columns], rows)


def _json_columns(zones: list[dict]) -> list[str]:
    return [k for k in ZONE_COLUMNS if any(z.get(k) is not None for z in zones)]


def _shown(entry: dict) -> object:
    if entry["name"] == PARTPOPQ:
        return "(the table below)"
    value = entry["value"]
    return value.rstrip("\n") if isinstance(value, str) else value


def _sysctl_text(data: dict) -> str:
    rows = [[e["line"], e["name"], _shown(e)] for e in data["entries"]]
    out = f"{data['path']}: sysctl, {len(rows)} entries\n" + table(["line", "name", "value"], rows)
    if "partpopq" in data:
        keys = ["domain", "level", "size_kb", "number"]
        out += "\nvm.reserv.partpopq:\n" + table(
            keys, [[r[k] for k in keys] for r in data["partpopq"]]
        )
    return out


def _clip(command: str, width: int = 48) -> str:
    return command if len(command) <= width else command[: width - 3] + "..."


def _holds(capture: ParsedCapture) -> str:
    parsed = capture.parsed
    if parsed is None:
        return capture.note
    if isinstance(parsed, Sysctl):
        n = len(parsed.entries)
        return f"{n} {'entry' if n == 1 else 'entries'}"
    n = len(parsed.zones)
    return f"{n} {'zone' if n == 1 else 'zones'}"


def recording_data(recording: Recording) -> dict:
    sidecar = recording.sidecar
    observed = recording.observed()
    return {
        "sidecar": recording.path,
        "recording": msgspec.structs.asdict(sidecar.recording),
        "machine": msgspec.structs.asdict(sidecar.machine),
        "captures": [
            {**msgspec.structs.asdict(c.entry), "holds": _holds(c)} for c in recording.captures
        ],
        "observed": {
            name: {"before": d.before, "after": d.after, "change": d.change}
            for name, d in sorted(observed.items())
        },
    }


def recording_view(recording: Recording, as_json: bool) -> str:
    """The captures of a recording and the observed change of each counter that has a
    stated tolerance (all of them with --json)."""
    data = recording_data(recording)
    if as_json:
        return to_json(data)
    rec, machine = data["recording"], data["machine"]
    out = facts(
        [
            ("sidecar", data["sidecar"]),
            ("workload", f"{rec['workload']} (status {rec['workload_status']})"),
            ("kernel", f"FreeBSD {machine['osrelease']} {machine['machine_arch']}"),
            ("cpus, domains", f"{machine['ncpu']}, {machine['ndomains']}"),
        ]
    )
    captures = [
        [c["snapshot"], _clip(c["command"]), c["status"], c["holds"]] for c in data["captures"]
    ]
    out += "\n" + table(["snapshot", "command", "status", "holds"], captures)
    judged = {k: v for k, v in data["observed"].items() if tolerance_for(k) is not None}
    rows = [[k, v["before"], v["after"], v["change"]] for k, v in judged.items()]
    out += "\n" + table(["counter", "before", "after", "change"], rows)
    rest = len(data["observed"]) - len(judged)
    if rest:
        out += f"({rest} more counters without a stated tolerance: --json lists them)\n"
    return out


def validation_data(v) -> dict:
    """A kreplay.validate.Validation as JSON data (the type is not imported: the report
    imports no model module, and validate does)."""
    return {
        "trace": v.trace,
        "sidecar": v.sidecar,
        "revision": v.revision,
        "revision_from": v.revision_from,
        "machine": v.machine,
        "ncpu": v.ncpu,
        "outcome": {"status": v.outcome.status, "message": v.outcome.message},
        "agrees": v.agrees,
        "counters": [
            {
                "counter": r.counter,
                "before": r.before,
                "after": r.after,
                "observed": r.observed,
                "predicted": r.predicted,
                "difference": r.difference,
                "allowance": r.allowance,
                "verdict": r.verdict,
                "reason": r.reason,
            }
            for r in v.rows
        ],
    }


def validation_view(v, as_json: bool) -> str:
    """The counters predicted beside the observed changes, a verdict each, and a total."""
    if as_json:
        return to_json(validation_data(v))
    head = [
        f"{v.trace} on {v.revision} (from {v.revision_from}), machine {v.machine}, "
        f"{v.ncpu} cpus; snapshots of {v.sidecar}\n",
        f"model outcome: {v.outcome.status}"
        + (f": {v.outcome.message}" if v.outcome.message else "")
        + "\n\n",
    ]
    rows = [
        (
            r.counter,
            r.before,
            r.after,
            f"{r.observed:+d}",
            "-" if r.predicted is None else f"{r.predicted:+d}",
            "-" if r.difference is None else f"{r.difference:+d}",
            "-" if r.allowance is None else f"±{r.allowance}",
            r.verdict,
        )
        for r in v.rows
    ]
    headers = ("counter", "before", "after", "observed", "predicted", "diff", "tolerance", "")
    counts = {k: sum(1 for r in v.rows if r.verdict == k) for k in ("agrees", "differs")}
    others = len(v.rows) - counts["agrees"] - counts["differs"]
    verdict = "the model agrees with the machine" if v.agrees else "the model DISAGREES"
    tail = (
        f"\n{counts['agrees']} within tolerance, {counts['differs']} outside, {others} shown "
        f"without a verdict: {verdict}\n"
    )
    return "".join(head) + table(headers, rows) + tail
