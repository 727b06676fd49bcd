"""The Result of one replay and its byte-stable JSON (DESIGN.md §6).

JSON is written with sorted keys, two-space indent and a trailing newline, so that golden
files diff well. `format_version` changes when the layout does; reading another version is
a clear error, never a traceback.
"""

from typing import Literal

import msgspec

from kreplay.errors import KreplayError

FORMAT_VERSION = 1
MODEL_VERSION = "0.11"

# A metric's polarity: lower is better, higher is better, or informational (a property of
# the workload or of the design, never a verdict). docs/regression.md justifies each.
LOWER, HIGHER, INFO = "lower", "higher", "informational"

# name -> (unit, polarity, meaning)
METRICS = {
    "kstack.created": ("stacks", INFO, "kstacks created by vm_thread_stack_create"),
    "kstack.cache_hits": ("allocs", HIGHER, "vm_thread_new served from kstack_cache"),
    "kstack.cache_misses": ("allocs", LOWER, "vm_thread_new that had to import stacks"),
    "kstack.live_peak": ("stacks", INFO, "most kstacks held by threads at once"),
    "kstack.enomem": ("allocs", LOWER, "kstack allocations that failed (ENOMEM)"),
    "kstack.kva_imported_bytes": (
        "bytes",
        INFO,
        "KVA imported for kstacks over the whole replay (spans released are not subtracted)",
    ),
    "kstack.pindex_holes": ("pages", LOWER, "unpopulated pindices between stacks"),
    "kstack.reserv_overhead": (
        "ratio",
        LOWER,
        "reserved / used pages of kstack reservations (1 when none is reserved)",
    ),
    "kstack.reserv_full": ("reservations", HIGHER, "fully populated kstack reservations"),
    "kstack.reserv_partial": ("reservations", LOWER, "partially populated kstack reservations"),
    "kstack.guard_both_ends": ("fraction", HIGHER, "live stacks with an unmapped page above"),
    "kstack.swapouts": ("stacks", INFO, "kernel stacks swapped out (vm_thread_swapout)"),
    "kstack.swapins": ("stacks", INFO, "kernel stacks swapped back in (vm_thread_swapin)"),
    "reserv.fullpop": ("reservations", HIGHER, "vm.reserv.fullpop"),
    "reserv.partpopq_unused_kb": ("KiB", LOWER, "unused memory in partpop reservations"),
    "reserv.broken": ("reservations", LOWER, "vm.reserv.broken"),
    "reserv.freed": ("reservations", INFO, "vm.reserv.freed"),
    "reserv.reclaimed": ("reservations", LOWER, "vm.reserv.reclaimed"),
    "phys.free_pages": ("pages", INFO, "free physical pages at the end"),
    "phys.fmfi": ("ratio", LOWER, "free pages not in 2 MiB+ blocks / free pages"),
    "numa.remote_pages": ("pages", LOWER, "user pages from another domain than the CPU's"),
    "numa.kstack_domain_mismatch": (
        "stacks",
        LOWER,
        "kstacks created or swapped in with the first page outside the KVA's domain",
    ),
    "user.pages_peak": ("pages", INFO, "most user pages resident at once"),
}


# How a replay ended: it ran to the end, or the model's kernel panicked (a KASSERT, a
# panic()) or would wait forever (a hang). A result file with any other status is refused.
Status = Literal["ok", "panic", "hang"]


class Outcome(msgspec.Struct, forbid_unknown_fields=True):
    status: Status
    message: str = ""
    op_index: int | None = None
    op: str | None = None
    pid: int | None = None
    tid: int | None = None
    line: int | None = None


class KstackChunk(msgspec.Struct, forbid_unknown_fields=True):
    kva: int  # first page of the span, pages from VM_MIN_KERNEL_ADDRESS
    slots: int
    pattern: str
    populated: list[int]


class Result(msgspec.Struct, forbid_unknown_fields=True):
    format_version: int
    trace: str
    sha256: str
    revision: str
    machine: str
    settings: dict[str, str]
    model_version: str
    ops: int
    outcome: Outcome
    metrics: dict[str, float | int]
    kstack_chunks: list[KstackChunk]
    partpopq: str
    checkpoints: list[tuple[int, str]] = []  # (op index, state digest) every 2**k ops

    def __post_init__(self) -> None:
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown:
            raise KreplayError(f"metrics not in the registry: {', '.join(unknown)}")


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(Result)


def to_json(result: Result) -> bytes:
    return msgspec.json.format(_encoder.encode(result), indent=2) + b"\n"


def from_json(data: bytes, path: str) -> Result:
    """A Result from its JSON; anything else (not JSON, nested past any real file, another
    format version, an unknown metric) is a KreplayError naming `path`."""
    try:
        head = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        raise KreplayError("not a kreplay result file", path=path) from None
    version = head.get("format_version") if isinstance(head, dict) else None
    if version != FORMAT_VERSION:
        raise KreplayError(
            f"result format version {version}, this kreplay reads "
            f"{FORMAT_VERSION}: regenerate it (kreplay golden update)",
            path=path,
        )
    try:
        return _decoder.decode(data)
    except (msgspec.ValidationError, RecursionError) as e:
        raise KreplayError(f"invalid result file: {e}", path=path) from None
    except KreplayError as e:  # Result.__post_init__: a metric not in the registry
        raise KreplayError(e.message, path=path) from None
