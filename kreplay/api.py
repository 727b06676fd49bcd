"""The public API for a kernel developer's own revision (docs/plugins.md).

A plugin is a Python module that defines policy objects (subclasses of the decision points
below) and names them in `POLICIES`, and may compose revisions from them in `REVISIONS`:

    from kreplay.api import KstackPindex, Revision, KstackPolicy

    class HalfGuardPindex(KstackPindex):
        def pindex(self, ks, slot, guard): ...

    POLICIES = {"pindex": {"half-guard": HalfGuardPindex}}
    REVISIONS = [
        Revision("D38852-halfguard", "...", "my patch", KstackPolicy(pindex=HalfGuardPindex()))
    ]

kreplay loads it from the entry point group `kreplay.policies` or from a revisions TOML
file's `plugins = ["file.py"]`. Nothing else in kreplay is API: these names stay.
"""

from kreplay.model import KernelHang, KernelPanic
from kreplay.model.policy import (
    KVA_QUANTUM,
    SWAPIN_FALLBACK,
    SWAPIN_ORIGIN,
    Backing,
    DisposeTarget,
    Exhaustion,
    Guard1Pindex,
    IterPolicy,
    KernelArenaKva,
    KstackArenaKva,
    KstackPindex,
    KstackPolicy,
    KvaSource,
    LaundrySwap,
    LinearPindex,
    NoCache,
    NoSwap,
    NoWait,
    PageDomain,
    PagesPolicy,
    PindexScheme,
    Policy,
    StackCache,
    Swap,
    UmaCache,
    WaitFail,
    WithKva,
)
from kreplay.model.reserv import NPAGES
from kreplay.revisions.revision import Revision

__all__ = [
    "KVA_QUANTUM",
    "NPAGES",
    "SWAPIN_FALLBACK",
    "SWAPIN_ORIGIN",
    "Backing",
    "NoCache",
    "UmaCache",
    "DisposeTarget",
    "Exhaustion",
    "LaundrySwap",
    "Guard1Pindex",
    "IterPolicy",
    "KernelArenaKva",
    "KernelHang",
    "KernelPanic",
    "KstackArenaKva",
    "KstackPindex",
    "KstackPolicy",
    "KvaSource",
    "LinearPindex",
    "NoSwap",
    "NoWait",
    "PageDomain",
    "PagesPolicy",
    "PindexScheme",
    "Policy",
    "Revision",
    "StackCache",
    "Swap",
    "WaitFail",
    "WithKva",
]
