"""The decision points of the kstack path (sys/vm/vm_glue.c), as policy objects.

A revision of the kernel is a KstackPolicy: one object per decision point, chosen once when
the revision is built. kstack.py calls them and knows nothing of which revision runs, so a
kernel developer's next patch is a new policy object (docs/plugins.md), not an edit here.

    kva           KvaSource      where a stack's KVA comes from (kva_alloc, a kstack arena)
    pindex        PindexScheme   the stack address -> kstack_object pindex function
    backing       Backing        which domains a new stack's KVA and pages come from
    exhaustion    Exhaustion     a page shortage while backing: ENOMEM, or a sleep forever
    dispose       DisposeTarget  the arena a freed stack's KVA goes back to
    cache         StackCache     the kstack_cache UMA zone (uma.py), or none
    swap          Swap           kernel-stack swap-out and swap-in (vm_swapout.c), or none
    reservations  bool           vm_object_reserv(kstack_object): OBJT_SWAP is OBJ_COLORED

Every built-in policy cites the source it follows. A policy is immutable; `spec()` names
it with its parameters (the runs cache keys on it, so a changed parameter is a new run).
The base classes allow interpreted subclasses: a plugin's policy runs beside the compiled
built-ins.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from mypy_extensions import mypyc_attr

from kreplay.model import KernelHang, KernelPanic
from kreplay.model.domainset import minskip, pref
from kreplay.model.reserv import NPAGES, REQ_NORMAL, REQ_SYSTEM
from kreplay.model.uma import Zone

if TYPE_CHECKING:
    from kreplay.model.kstack import KstackAllocator, Stack
    from kreplay.model.vmem import Arena

KVA_QUANTUM: Final = NPAGES  # 2 MiB: 1 << (VM_LEVEL_0_ORDER + PAGE_SHIFT)


@mypyc_attr(allow_interpreted_subclasses=True)
class Policy:
    """One decision of the kstack path. Subclasses set `params` to what distinguishes
    them (names and values, in order)."""

    def params(self) -> list[tuple[str, object]]:
        return []

    def spec(self) -> str:
        """The policy with its parameters, e.g. `KstackArenaKva(release_unbump=False)`."""
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params())
        return f"{type(self).__name__}({inner})"

    def __repr__(self) -> str:
        return self.spec()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(self.spec())


# ---------------------------------------------------------------------------- KVA


@mypyc_attr(allow_interpreted_subclasses=True)
class KvaSource(Policy):
    """Where a stack's KVA comes from. `arenas(alloc)` builds one arena per domain that
    hands out single slots (kstack_pages + guard pages); kstack.py allocates from the
    domain's arena and frees to the one `dispose` names."""

    def __init__(self, wait: bool = False, vm_page_bytes: int = 104):
        self.wait = wait  # M_WAITOK: a shortage sleeps in vmem_xalloc (a hang) instead of ENOMEM
        # sizeof(struct vm_page) of the kernel: the vm_page array before the first KVA
        # import on amd64 (kstack.kva_start); 104 bytes until its listq went, 88 since
        self.vm_page_bytes = vm_page_bytes

    def params(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = [("wait", self.wait)] if self.wait else []
        return out + ([] if self.vm_page_bytes == 104 else [("vm_page_bytes", self.vm_page_bytes)])

    def arenas(self, alloc: "KstackAllocator") -> "list[Arena]":
        raise NotImplementedError

    def per_domain(self) -> bool:
        """Stacks of different domains come from different arenas (the KVA has a domain)."""
        return True

    def check_alignment(self, addr: int, slot: int) -> None:
        """A KASSERT on the address handed out, if the source has one."""

    def __reduce__(self) -> tuple:
        return (type(self), (self.wait, self.vm_page_bytes))


@mypyc_attr(allow_interpreted_subclasses=True)
class KernelArenaKva(KvaSource):
    """Before D38852: kva_alloc(ptoa(pages + KSTACK_GUARD_PAGES)), from kernel_arena
    (spec §1.4; sys/vm/vm_glue.c before 7a79d066, vm_thread_stack_create)."""

    def arenas(self, alloc: "KstackAllocator") -> "list[Arena]":
        return [alloc.kernel_arena] * alloc.cfg.domains

    def per_domain(self) -> bool:
        return False


@mypyc_attr(allow_interpreted_subclasses=True)
class KstackArenaKva(KvaSource):
    """D38852 (7a79d066, vm_thread_kstack_arena_import/_release, spec §2.2, §2.4): per
    domain a kstack arena importing KVA_KSTACK_QUANTUM * (K + G) pages aligned to 2 MiB,
    bumped up to a slot boundary, so that a chunk is import_quantum - (K + G) pages (511
    slots); its release undoes the bump. `release_unbump=False` is the review's
    "released unaligned" revision."""

    def __init__(self, wait: bool = False, release_unbump: bool = True, vm_page_bytes: int = 104):
        super().__init__(wait, vm_page_bytes)
        self.release_unbump = release_unbump

    def params(self) -> list[tuple[str, object]]:
        out = super().params()
        return out + ([] if self.release_unbump else [("release_unbump", False)])

    def __reduce__(self) -> tuple:
        return (type(self), (self.wait, self.release_unbump, self.vm_page_bytes))

    def geometry(self, slot: int) -> tuple[int, int, int]:
        """(import quantum, its alignment, the span a chunk keeps), in pages."""
        return KVA_QUANTUM * slot, KVA_QUANTUM, KVA_QUANTUM * slot - slot

    def arenas(self, alloc: "KstackAllocator") -> "list[Arena]":
        return [alloc.kstack_arena(d, self) for d in range(alloc.cfg.domains)]

    def check_alignment(self, addr: int, slot: int) -> None:
        if addr % slot:  # vm_thread_alloc_kstack_kva's KASSERT
            raise KernelPanic(
                f"vm_thread_alloc_kstack_kva: kstack address {addr:#x} is not aligned "
                "to a kstack slot"
            )


# ---------------------------------------------------------------------------- pindex


@mypyc_attr(allow_interpreted_subclasses=True)
class PindexScheme(Policy):
    """vm_kstack_pindex(): the kstack_object pindex of a stack's first page `ks` (pages
    from VM_MIN_KERNEL_ADDRESS), for slots of `slot` pages whose first `guard` are guards."""

    def pindex(self, ks: int, slot: int, guard: int) -> int:
        raise NotImplementedError

    def __reduce__(self) -> tuple:
        return (type(self), ())


@mypyc_attr(allow_interpreted_subclasses=True)
class LinearPindex(PindexScheme):
    """Before D38852: atop(ks - VM_MIN_KERNEL_ADDRESS) (spec §1.5): a guard page's pindex
    is a hole."""

    def pindex(self, ks: int, slot: int, guard: int) -> int:
        return ks


@mypyc_attr(allow_interpreted_subclasses=True)
class KstackPindex(PindexScheme):
    """D38852 (7a79d066, vm_kstack_pindex, spec §2.3): the guard pages of every slot
    before ks are skipped, with the KASSERT that ks is not a guard page."""

    def pindex(self, ks: int, slot: int, guard: int) -> int:
        if guard == 0:
            return ks
        if ks % slot < guard:
            raise KernelPanic("vm_kstack_pindex: Attempting to calculate kstack guard page pindex")
        return ks - (ks // slot + 1) * guard


@mypyc_attr(allow_interpreted_subclasses=True)
class Guard1Pindex(KstackPindex):
    """The review's early draft (bnovkov/freebsd-src@03ef46ba, spec §0 N5):
    pindex - (pindex / (K + G) + 1), one page per slot whatever G is."""

    def pindex(self, ks: int, slot: int, guard: int) -> int:
        if guard == 0:
            return ks
        if ks % slot < guard:
            raise KernelPanic("vm_kstack_pindex: Attempting to calculate kstack guard page pindex")
        return ks - (ks // slot + 1)


# ---------------------------------------------------------------------------- backing


BelowMin = Callable[[int], bool]  # a domain -> below its free minimum (reserv.below_min)


@mypyc_attr(allow_interpreted_subclasses=True)
class Backing(Policy):
    """vm_thread_stack_create(ds, pages): the domains tried for a new stack. `steps`
    gives, in order, (KVA domain, page domains) pairs: the KVA comes from the first, each
    page from the first of the page domains that has one; the next step is tried when a
    step fails. `page_class` is the pages' request class (reserv.REQ_*)."""

    def steps(self, domain: int, ndomains: int, below_min: BelowMin) -> list[tuple[int, list[int]]]:
        raise NotImplementedError

    def page_class(self) -> int:
        return REQ_NORMAL

    def __reduce__(self) -> tuple:
        return (type(self), ())


@mypyc_attr(allow_interpreted_subclasses=True)
class WithKva(Backing):
    """D38852 (7a79d066, vm_thread_stack_create, spec §2.6): kstack_object's policy set
    to ds and iterated (vm_domainset_iter_page, its first pass skipping domains below
    their free minimum); each domain in turn gives the KVA and all the pages, as
    VM_ALLOC_NORMAL requests; a failure returns the KVA and moves on."""

    def steps(self, domain: int, ndomains: int, below_min: BelowMin) -> list[tuple[int, list[int]]]:
        return [(d, [d]) for d in minskip(pref(domain, ndomains), below_min)]


@mypyc_attr(allow_interpreted_subclasses=True)
class IterPolicy(WithKva):
    """The newest vm_thread_stack_create (CHERI-Alliance/freebsd-src 50b6cd94): ds is
    iterated directly (vm_domainset_iter_policy_init/_policy, the same two passes, no
    shared kstack_object policy), and the pages are malloc2vm_flags(M_NOWAIT) requests:
    VM_ALLOC_SYSTEM | VM_ALLOC_NOWAIT, which may use a domain's free pages down to
    vmd_interrupt_free_min (2) instead of stopping at vmd_free_reserved."""

    def page_class(self) -> int:
        return REQ_SYSTEM


@mypyc_attr(allow_interpreted_subclasses=True)
class PagesPolicy(Backing):
    """Before D38852 (spec §1.5, §1.7: vm_page_grab_pages under kstack_object's
    domain.dr_policy), and the review's NUMA revision: KVA once, from the preferred
    domain's arena; every page from the first domain of the policy (two passes) that has
    one."""

    def steps(self, domain: int, ndomains: int, below_min: BelowMin) -> list[tuple[int, list[int]]]:
        return [(domain, minskip(pref(domain, ndomains), below_min))]


@mypyc_attr(allow_interpreted_subclasses=True)
class Exhaustion(Policy):
    """What backing does when no domain of a step has a page."""

    def shortage(self, domains: list[int]) -> None:
        """Return to fail the step (ENOMEM), or raise KernelHang."""

    def __reduce__(self) -> tuple:
        return (type(self), ())


@mypyc_attr(allow_interpreted_subclasses=True)
class NoWait(Exhaustion):
    """D38852 (spec §2.7): vm_page_alloc_domain without WAITFAIL: ENOMEM to the caller,
    which frees what it got and tries the next step."""


@mypyc_attr(allow_interpreted_subclasses=True)
class WaitFail(Exhaustion):
    """Before D38852 (spec §1.5): vm_page_grab_pages(... VM_ALLOC_WAITFAIL) in a loop:
    the thread sleeps for free pages, which a replay cannot give it: a hang."""

    def shortage(self, domains: list[int]) -> None:
        raise KernelHang(
            "vm_thread_stack_back: sleeping for free pages (domains "
            f"{', '.join(map(str, domains))} are out of memory)"
        )


@mypyc_attr(allow_interpreted_subclasses=True)
class DisposeTarget(Policy):
    """The domain whose arena a disposed stack's KVA is freed to."""

    def kva_domain(self, stack: "Stack", first_page_domain: int) -> int:
        raise NotImplementedError

    def __reduce__(self) -> tuple:
        return (type(self), ())


@mypyc_attr(allow_interpreted_subclasses=True)
class PageDomain(DisposeTarget):
    """D38852 (7a79d066, vm_thread_stack_dispose, spec §2.8): vm_phys_domain(vtophys(ks)),
    the domain of the stack's first page; the code assumes it is the KVA's."""

    def kva_domain(self, stack: "Stack", first_page_domain: int) -> int:
        return first_page_domain


# ---------------------------------------------------------------------------- swapping


SWAPIN_ORIGIN: Final = "origin"  # td_kstack_domain only, retried while it has no page
SWAPIN_FALLBACK: Final = "fallback"  # td_kstack_domain first, then the other domains


@mypyc_attr(allow_interpreted_subclasses=True)
class Swap(Policy):
    """Kernel-stack swapping (sys/vm/vm_swapout.c)."""

    def enabled(self) -> bool:
        """False: the kernel has no kernel-stack swapping."""
        return False

    def swapin_domains(self, domain: int, ndomains: int) -> list[int]:
        """The domains a swapped-out stack's laundered pages come back from."""
        return [domain]

    def follows_pages(self) -> bool:
        """After a swap-in, td_kstack_domain is the domain the pages came from."""
        return False

    def __reduce__(self) -> tuple:
        return (type(self), ())


@mypyc_attr(allow_interpreted_subclasses=True)
class NoSwap(Swap):
    """No kernel-stack swapping: removed from FreeBSD in July 2024 (the series "Remove
    kernel stack swapping support", Mark Johnston; part 4 e24a6552, D46115)."""


@mypyc_attr(allow_interpreted_subclasses=True)
class LaundrySwap(Swap):
    """vm_thread_swapout() (7a79d066 sys/vm/vm_swapout.c) dirties each stack page and
    unwires it to PQ_LAUNDRY: the pages stay in kstack_object, the KVA and td_kstack_domain
    with the thread, and only laundering to swap frees them. vm_thread_swapin() finds the
    pages still resident (vm_page_grab(VM_ALLOC_NOCREAT)) and allocates the laundered ones
    again from `swapin`'s domains: "origin" is D38852's
    `while (vm_thread_stack_back(..., td->td_kstack_domain) == ENOMEM);`, "fallback" the
    preferred domain and then the others (the old scheme's td_domain.dr_policy, and the
    review's fix). `follow` makes td_kstack_domain the domain of the new pages."""

    def __init__(self, swapin: str = SWAPIN_FALLBACK, follow: bool = False):
        if swapin not in (SWAPIN_ORIGIN, SWAPIN_FALLBACK):
            raise ValueError(f"swapin must be {SWAPIN_ORIGIN!r} or {SWAPIN_FALLBACK!r}")
        self.swapin = swapin
        self.follow = follow

    def enabled(self) -> bool:
        return True

    def params(self) -> list[tuple[str, object]]:
        return [("swapin", self.swapin)] + ([("follow", True)] if self.follow else [])

    def swapin_domains(self, domain: int, ndomains: int) -> list[int]:
        return pref(domain, ndomains) if self.swapin == SWAPIN_FALLBACK else [domain]

    def follows_pages(self) -> bool:
        return self.follow

    def __reduce__(self) -> tuple:
        return (type(self), (self.swapin, self.follow))


# ---------------------------------------------------------------------------- cache


@mypyc_attr(allow_interpreted_subclasses=True)
class StackCache(Policy):
    """kstack_cache: the UMA zone in front of stack creation (uma.py), or none."""

    def zone(self, alloc: "KstackAllocator") -> "Zone | None":
        raise NotImplementedError

    def __reduce__(self) -> tuple:
        return (type(self), ())


@mypyc_attr(allow_interpreted_subclasses=True)
class UmaCache(StackCache):
    """uma_zcache_create("kstack_cache", ..., kstack_import, kstack_release,
    UMA_ZONE_FIRSTTOUCH) sized by uma_zone_set_maxcache(kstack_cache_size)
    (sys/vm/vm_glue.c kstack_cache_init, 7a79d066 and later; uma.py)."""

    def zone(self, alloc: "KstackAllocator") -> "Zone | None":
        return Zone(
            alloc.cfg.cache_size,
            alloc.cfg.domain_map(),
            alloc.cfg.domains,
            alloc.kstack_import,
            alloc.kstack_release,
            alloc.page_domain,
        )


@mypyc_attr(allow_interpreted_subclasses=True)
class NoCache(StackCache):
    """No kstack_cache: every thread creation makes a stack, every exit disposes one."""

    def zone(self, alloc: "KstackAllocator") -> "Zone | None":
        return None


# ---------------------------------------------------------------------------- revision


class KstackPolicy:
    """A revision's kstack path: one policy object per decision point."""

    def __init__(
        self,
        kva: KvaSource | None = None,
        pindex: PindexScheme | None = None,
        backing: Backing | None = None,
        exhaustion: Exhaustion | None = None,
        dispose: DisposeTarget | None = None,
        cache: StackCache | None = None,
        swap: Swap | None = None,
        reservations: bool = True,
    ):
        self.kva: KvaSource = kva if kva is not None else KstackArenaKva()
        self.pindex: PindexScheme = pindex if pindex is not None else KstackPindex()
        self.backing: Backing = backing if backing is not None else WithKva()
        self.exhaustion: Exhaustion = exhaustion if exhaustion is not None else NoWait()
        self.dispose: DisposeTarget = dispose if dispose is not None else PageDomain()
        self.cache: StackCache = cache if cache is not None else UmaCache()
        self.swap: Swap = swap if swap is not None else LaundrySwap(SWAPIN_ORIGIN)
        self.reservations = reservations

    def parts(self) -> dict[str, object]:
        """Decision point -> its policy (reservations: the bool), in a fixed order."""
        return {
            "kva": self.kva,
            "pindex": self.pindex,
            "backing": self.backing,
            "exhaustion": self.exhaustion,
            "dispose": self.dispose,
            "cache": self.cache,
            "swap": self.swap,
            "reservations": self.reservations,
        }

    def describe(self) -> dict[str, str]:
        """Decision point -> the policy's spec(): what the runs cache and --json show."""
        return {k: v.spec() if isinstance(v, Policy) else str(v) for k, v in self.parts().items()}

    def replace(self, **changes: object) -> "KstackPolicy":
        parts = self.parts()
        unknown = sorted(set(changes) - set(parts))
        if unknown:
            raise ValueError(f"no decision point named {', '.join(unknown)}")
        parts.update(changes)
        return KstackPolicy(**parts)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KstackPolicy) and self.describe() == other.describe()

    def __hash__(self) -> int:
        return hash(tuple(self.describe().items()))

    def __repr__(self) -> str:
        return "KstackPolicy(" + ", ".join(f"{k}={v}" for k, v in self.describe().items()) + ")"

    def __reduce__(self) -> tuple:
        return (KstackPolicy, tuple(self.parts().values()))
