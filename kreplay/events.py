"""The typed records lifecycle derivation reads (kreplay/lifecycle.py): what the store
hands it (Store.lifecycle_events, Store.idle_gaps), and what a test writes by hand to
derive ops without a store."""

from typing import NamedTuple


class LifecycleEvent(NamedTuple):
    """One record of the trace, with the fields of the `events` view lifecycle needs
    (docs/schema.md). Besides the stored kinds, derivation adds SLEEP and WAKE marks
    around a process's silences (IdleGap)."""

    seq: int
    line: int
    pid: int
    tid: int | None
    cpu: int | None
    ts: int | None
    kind: str
    syscall: str | None = None
    args: str | None = None
    retval: int | None = None
    ret_kind: str | None = None
    addr: int | None = None
    fault_result: str | None = None
    signal: str | None = None
    sig_action: str | None = None


class IdleGap(NamedTuple):
    """A record after which its process is silent for at least IDLE_GAP_NS (ops.py), and
    the record that ends the silence (next_*: None when it lasts to the trace's end)."""

    seq: int
    ts: int
    cpu: int | None
    line: int
    next_seq: int | None
    next_ts: int | None
    next_cpu: int | None
    next_line: int | None
    pid: int
    tid: int | None
    next_tid: int | None
