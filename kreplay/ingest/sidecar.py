"""A trace's sidecar, `<name>.toml` beside it: where the recording came from, and in its
`[replay]` table the machine it is replayed on (docs/recording.md).

    [replay]
    machine = "amd64-numa2"            # a preset (amd64 without one)
    set = { mem_per_domain_mb = 64 }   # machine parameters, as --set gives them
    cpu_domains = ["0-7", "8-15"]      # the cpus of each domain: the cpu_domains setting

ingest keeps the table in `traces.machine` (JSON) so that replay and diff use it; check
reads the file itself, so that the nightly follows the sidecar in traces/ as it is now.
"""

import json
import os
import tomllib

from kreplay.errors import KreplayError
from kreplay.ingest.source import default_trace_name


def sidecar_path(path: str) -> str:
    """`traces/storm.kdump.gz` -> `traces/storm.toml`: the trace's provenance sidecar."""
    return os.path.join(os.path.dirname(path), default_trace_name(path) + ".toml")


def recorded_machine(path: str) -> dict | None:
    """{"preset": ..., "set": {name: value as text}} from the sidecar of the trace at
    `path`, or None without a sidecar. A sidecar that does not read is an error naming it."""
    sidecar = sidecar_path(path)
    if path == "-" or not os.path.exists(sidecar):
        return None
    try:
        with open(sidecar, "rb") as f:
            data = tomllib.load(f)
        replay = data.get("replay", {})
        if not isinstance(replay, dict):
            raise ValueError(f"[replay] must be a table, not {replay!r}")
        machine = replay.get("machine", "amd64")
        if not isinstance(machine, str):
            raise ValueError(f"[replay] machine must be a preset's name, not {machine!r}")
        table = replay.get("set", {})
        if not isinstance(table, dict) or not all(isinstance(v, int | str) for v in table.values()):
            raise ValueError("[replay] set must be a table of integers, booleans and strings")
        settings = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in table.items()}
        if "cpu_domains" in replay:
            settings["cpu_domains"] = _cpu_map(replay["cpu_domains"])
        return {"preset": machine, "set": settings}
    except OSError as e:
        raise KreplayError(f"cannot read the sidecar: {e.strerror}", path=sidecar) from None
    except (tomllib.TOMLDecodeError, ValueError, UnicodeDecodeError) as e:
        raise KreplayError(f"bad sidecar: {e}", path=sidecar) from None


def to_json(machine: dict | None) -> str | None:
    return None if machine is None else json.dumps(machine, sort_keys=True)


MAX_CPUS = 1024  # MAXCPU on amd64 (model/machine.py LIMITS)


def _cpu_map(spans: object) -> str:
    """["0-7", "8-15"] (cpu ranges, one per domain) -> "0,0,0,0,0,0,0,0,1,1,...,1"."""
    try:
        domain_of = {}
        for domain, span in enumerate(spans):
            first, _, last = span.partition("-")
            if not 0 <= int(first) <= int(last or first) < MAX_CPUS:
                raise ValueError(span)
            for cpu in range(int(first), int(last or first) + 1):
                domain_of[cpu] = domain
        return ",".join(str(domain_of[cpu]) for cpu in range(len(domain_of)))
    except (TypeError, ValueError, KeyError, AttributeError):
        raise ValueError(
            f'[replay] cpu_domains must list cpu ranges per domain, e.g. ["0-7", "8-15"], '
            f"cpus below {MAX_CPUS}, not {str(spans)[:80]}"
        ) from None
