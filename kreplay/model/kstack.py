"""Kernel stacks, after sys/vm/vm_glue.c (spec/freebsd-kstack.md §1, §2, §5.1, §6).

The KVA hierarchy is kernel_map -> kernel_arena -> per-domain kernel arenas -> per-domain
kstack arenas. A revision chooses where a stack's KVA comes from (kva_alloc from
kernel_arena before D38852, the kstack arena after), how a stack address maps to a
kstack_object pindex, and whether kstack_object uses reservations. Pages are backed one at
a time in increasing pindex order (vm_thread_stack_back); stacks are cached LIFO in the
kstack_cache UMA zone, which is refilled in bursts by kstack_import.

All sizes and addresses are in pages; KVA is relative to VM_MIN_KERNEL_ADDRESS.
"""

from dataclasses import dataclass, field, fields, replace
from typing import Final

from kreplay.model import KernelHang, KernelPanic
from kreplay.model.domainset import pref
from kreplay.model.reserv import NPAGES, Reservations, VMObject
from kreplay.model.vmem import Arena

KVA_QUANTUM: Final = NPAGES  # 2 MiB: 1 << (VM_LEVEL_0_ORDER + PAGE_SHIFT)
KVA_NUMA_IMPORT_QUANTUM: Final = NPAGES * 128
KSTACK_OBJECT_SIZE: Final = (1 << 29) - 1  # atop(VM_MAX_KERNEL_ADDRESS - VM_MIN_KERNEL_ADDRESS)

# Where stack KVA comes from.
KVA_KERNEL_ARENA: Final = "kernel_arena"  # pre-D38852: kva_alloc()
KVA_KSTACK_ARENA: Final = "kstack_arena"  # D38852: per-domain kstack arena, 511 slots per import
KVA_KSTACK_FFFF: Final = "kstack_arena_ffff"  # the review's proposal: 512 slots, 10 MiB aligned

# How a stack address maps to a pindex of kstack_object.
PINDEX_LINEAR: Final = "linear"  # atop(ks - VM_MIN_KERNEL_ADDRESS)
PINDEX_KSTACK: Final = "kstack"  # vm_kstack_pindex() as committed
PINDEX_GUARD1: Final = "guard1"  # the review's early formula: one page per slot

# On NUMA machines, which domains a new stack's pages may come from.
NUMA_WITH_KVA: Final = "with-kva"  # D38852: per domain of the policy, KVA and pages together
NUMA_PAGES_POLICY: Final = "pages-policy"  # KVA from the preferred domain, pages wherever the
#                                     policy finds them (the old scheme; r-wrongarena)

# Where a swapped-out stack's pages come back from (vm_thread_swapin).
SWAPIN_FALLBACK: Final = "fallback"  # td_kstack_domain first, then the other domains
SWAPIN_ORIGIN: Final = "origin"  # td_kstack_domain only, retried until it succeeds


@dataclass(frozen=True)
class KstackPolicy:
    """A revision's kstack choices."""

    kva: str = KVA_KSTACK_ARENA
    pindex: str = PINDEX_KSTACK
    reservations: bool = True  # vm_object_reserv(kstack_object)
    wait_for_pages: bool = False  # old scheme: VM_ALLOC_WAITFAIL loops, never fails
    numa: str = NUMA_WITH_KVA
    kva_wait: bool = False  # kstack KVA with M_WAITOK: sleep instead of ENOMEM
    release_unbump: bool = True  # arena release undoes the slot-alignment bump
    swapin: str = SWAPIN_FALLBACK

    def __reduce__(self) -> tuple:  # compiled, a frozen dataclass unpickles by __setattr__
        return (KstackPolicy, tuple(getattr(self, f.name) for f in fields(self)))


@dataclass(frozen=True)
class KstackConfig:
    """The machine's side: kstack_pages, KSTACK_GUARD_PAGES, domains, cache sizes."""

    kstack_pages: int = 4
    guard_pages: int = 1
    domains: int = 1
    ncpu: int = 8
    kstack_cache_size: int = 0  # 0: imax(128, mp_ncpus * 4)
    uma_burst: int = 16  # stacks per kstack_import refill
    kva_start: int = NPAGES  # first free page of kernel_map
    kva_limit: int = KSTACK_OBJECT_SIZE  # pages of kernel_map
    ilp32: bool = False

    def __reduce__(self) -> tuple:  # compiled, a frozen dataclass unpickles by __setattr__
        return (KstackConfig, tuple(getattr(self, f.name) for f in fields(self)))

    @property
    def slot(self) -> int:
        return self.kstack_pages + self.guard_pages

    @property
    def cache_size(self) -> int:
        return self.kstack_cache_size or max(128, self.ncpu * 4)


@dataclass
class Stack:
    ks: int  # first stack page (td_kstack), above the guard pages
    pindex: int  # pindex of the first stack page in kstack_object
    domain: int  # td_kstack_domain: domain of the first page's frame
    kva_domain: int = 0  # the kstack arena the KVA came from (kernel_arena: 0)
    swapped: bool = False  # pages freed by vm_thread_swapout, KVA kept


@dataclass
class Chunk:
    """One import of a kstack arena (a span of whole slots)."""

    kva: int  # first page of the span
    slots: int
    domain: int
    released: bool = False


@dataclass
class KstackStats:
    created: int = 0
    disposed: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    enomem: int = 0
    live_peak: int = 0
    kva_imported: int = 0  # pages imported by kstack arenas (or kernel_arena)
    swapouts: int = 0
    swapins: int = 0
    domain_mismatch: int = 0  # stacks created with pages outside their KVA's domain


class KstackAllocator:
    def __init__(self, cfg: KstackConfig, policy: KstackPolicy, reservs: Reservations):
        if cfg.ilp32:  # "The behaviour on 32-bit platforms remains unchanged" (W1)
            policy = replace(policy, kva=KVA_KERNEL_ARENA, pindex=PINDEX_LINEAR)
        self.cfg, self.policy, self.reservs = cfg, policy, reservs
        self.object = VMObject("kstack", KSTACK_OBJECT_SIZE, reserv=policy.reservations)
        self.stats = KstackStats()
        self.chunks: list[Chunk] = []
        # kstack_cache is a UMA_ZONE_FIRSTTOUCH zone: a freed stack goes to the cache of
        # its page's domain, an allocation takes from the cache of the CPU's domain, and
        # each domain caches at most uz_bucket_max = cache_size / vm_ndomains stacks.
        self.caches: list[list[Stack]] = [[] for _ in range(cfg.domains)]
        self.cache_limit = max(1, cfg.cache_size // cfg.domains)
        self.live: dict[int, Stack] = {}
        self._map_next = cfg.kva_start
        quantum = KVA_QUANTUM if cfg.domains == 1 else KVA_NUMA_IMPORT_QUANTUM
        self.kernel_arena = Arena(
            "kernel arena", import_fn=self._kva_import, import_quantum=quantum
        )
        self.domain_arenas = [
            Arena(
                f"kernel arena domain {d}",
                import_fn=self._kva_import_domain,
                import_quantum=quantum,
            )
            for d in range(cfg.domains)
        ]
        self.kstack_arenas = [self._kstack_arena(d) for d in range(cfg.domains)]

    # ------------------------------------------------------------------ KVA hierarchy

    def _kva_import(self, size: int, align: int) -> int | None:
        """kva_import(): vm_map_find(kernel_map, VMFS_SUPER_SPACE): first fit, 2 MiB
        aligned. Nothing is ever given back to kernel_map, so first fit is a bump."""
        addr = -(-self._map_next // KVA_QUANTUM) * KVA_QUANTUM
        if addr + size > self.cfg.kva_limit:
            return None
        self._map_next = addr + size
        if self.policy.kva == KVA_KERNEL_ARENA:  # only stacks use the modelled kernel_arena
            self.stats.kva_imported += size
        return addr

    def _kva_import_domain(self, size: int, align: int) -> int | None:
        """kva_import_domain(): vmem_xalloc(kernel_arena, size, KVA_QUANTUM)."""
        return self.kernel_arena.xalloc(size, KVA_QUANTUM)

    def _kstack_arena(self, domain: int) -> Arena:
        slot = self.cfg.slot
        if self.policy.kva == KVA_KSTACK_FFFF:
            quantum, align, span = NPAGES * slot, NPAGES * slot, NPAGES * slot
        else:  # vm_thread_kstack_import_quantum(), minus one slot for the bump (§2.2)
            quantum, align, span = KVA_QUANTUM * slot, KVA_QUANTUM, KVA_QUANTUM * slot - slot
        parent = self.domain_arenas[domain]

        def import_fn(size: int, _align: int) -> int | None:
            """vm_thread_kstack_arena_import(): a quantum-aligned parent range, bumped up
            to a slot boundary relative to VM_MIN_KERNEL_ADDRESS."""
            addr = parent.xalloc(quantum, align, wait=self.policy.kva_wait)
            if addr is None:
                return None
            addr += (slot - addr % slot) % slot
            self.chunks.append(Chunk(addr, span // slot, domain))
            self.stats.kva_imported += quantum
            return addr

        def release_fn(addr: int, size: int) -> None:
            """vm_thread_kstack_arena_release(): undo the bump, free the whole quantum
            (a revision that forgets to undo it frees an address the parent never gave)."""
            for chunk in self.chunks:
                if chunk.kva == addr and not chunk.released:
                    chunk.released = True
            parent.xfree(addr - addr % align if self.policy.release_unbump else addr, quantum)

        return Arena(
            f"kstack arena {domain}",
            import_fn=import_fn,
            release_fn=release_fn,
            import_quantum=span,
        )

    # ------------------------------------------------------------------ pindex

    def pindex(self, ks: int) -> int:
        """vm_kstack_pindex() of the revision (spec §2.3)."""
        slot, guard = self.cfg.slot, self.cfg.guard_pages
        if self.policy.pindex == PINDEX_LINEAR or guard == 0:
            return ks
        if ks % slot < guard:
            raise KernelPanic("vm_kstack_pindex: Attempting to calculate kstack guard page pindex")
        if self.policy.pindex == PINDEX_GUARD1:
            return ks - (ks // slot + 1)
        return ks - (ks // slot + 1) * guard

    # ------------------------------------------------------------------ create / dispose

    @property
    def cache(self) -> list[Stack]:
        """Every cached stack, domain by domain (read-only view)."""
        return [stack for cache in self.caches for stack in cache]

    def thread_new(self, domain: int) -> Stack | None:
        """vm_thread_new(): a stack cached in the CPU's domain, else a burst of new ones
        (kstack_import under DOMAINSET_PREF(domain))."""
        cache = self.caches[domain]
        stack: Stack | None
        if cache:
            self.stats.cache_hits += 1
            stack = cache.pop()
        else:
            self.stats.cache_misses += 1
            stack = self._import_burst(domain)
            if stack is None:
                self.stats.enomem += 1
                return None
        self.live[stack.ks] = stack
        self.stats.live_peak = max(self.stats.live_peak, len(self.live))
        return stack

    def _import_burst(self, domain: int) -> Stack | None:
        """UMA zone_import -> kstack_import(): fill a bucket, hand out its first item."""
        made = []
        for _ in range(min(self.cfg.uma_burst, self.cache_limit + 1)):
            stack = self.stack_create(domain)
            if stack is None:
                break
            made.append(stack)
        if not made:
            return None
        # cache_bucket_pop() takes ub_bucket[--cnt]: the last stack made is handed out
        # first, the others stay in the CPU's bucket in creation order.
        self.caches[domain].extend(made[:-1])
        return made[-1]

    def thread_dispose(self, stack: Stack) -> None:
        """vm_thread_dispose(): back to kstack_cache (its page's domain); past the
        domain's limit, freed."""
        del self.live[stack.ks]
        cache = self.caches[stack.domain]
        cache.append(stack)
        while len(cache) > self.cache_limit:
            # zone_put_bucket() over uz_bucket_max frees the incoming bucket: the newest
            self.stack_dispose(cache.pop())

    def drain_cache(self) -> None:
        """uma_zone_reclaim(kstack_cache): release every cached stack."""
        for cache in self.caches:
            while cache:
                self.stack_dispose(cache.pop())

    def stack_create(self, domain: int) -> Stack | None:
        """vm_thread_stack_create(DOMAINSET_PREF(domain)): KVA, skip the guard pages,
        back the stack pages.

        D38852 walks the policy's domains and takes KVA and pages from the same domain at
        each step (spec §2.6). The old scheme (KVA from kernel_arena) and the review's
        NUMA revision take KVA once, from the preferred domain, and let every page follow
        the policy on its own (spec §1.5)."""
        order = pref(domain, self.cfg.domains)
        if self.policy.kva != KVA_KERNEL_ARENA and self.policy.numa == NUMA_WITH_KVA:
            for d in order:
                stack = self._create_in(d, [d])
                if stack is not None:
                    return stack
            return None
        return self._create_in(domain, order)

    def _create_in(self, kva_domain: int, page_domains: list[int]) -> Stack | None:
        cfg = self.cfg
        addr = self._alloc_kva(kva_domain)
        if addr is None:
            return None
        ks = addr + cfg.guard_pages
        pindex = self.pindex(ks)
        frames = self._back(pindex, page_domains)
        if frames is None:
            self._free_kva(addr, kva_domain)
            return None
        self.stats.created += 1
        stack = Stack(ks, pindex, self.reservs.phys.domain_of(frames[0]), kva_domain)
        if self.policy.kva != KVA_KERNEL_ARENA and stack.domain != kva_domain:
            self.stats.domain_mismatch += 1
        return stack

    def _alloc_kva(self, domain: int) -> int | None:
        if self.policy.kva == KVA_KERNEL_ARENA:
            return self.kernel_arena.xalloc(self.cfg.slot, wait=self.policy.kva_wait)
        addr = self.kstack_arenas[domain].xalloc(self.cfg.slot, wait=self.policy.kva_wait)
        if addr is not None and addr % self.cfg.slot:
            raise KernelPanic(
                f"vm_thread_alloc_kstack_kva: kstack address {addr:#x} is not "
                "aligned to a kstack slot"
            )
        return addr

    def _free_kva(self, addr: int, domain: int) -> None:
        if self.policy.kva == KVA_KERNEL_ARENA:
            self.kernel_arena.xfree(addr, self.cfg.slot)
        else:
            self.kstack_arenas[domain].xfree(addr, self.cfg.slot)

    def _back(self, pindex: int, domains: list[int]) -> list[int] | None:
        """vm_thread_stack_back(): one page at a time, in increasing pindex order, each
        from the first of the domains that has one."""
        frames = []
        alloc_page, obj = self.reservs.alloc_page, self.object
        for i in range(self.cfg.kstack_pages):
            for d in domains:
                frame = alloc_page(obj, pindex + i, d)
                if frame is not None:
                    break
            if frame is None:
                if self.policy.wait_for_pages:
                    raise KernelHang(
                        "vm_thread_stack_back: sleeping for free pages (domains "
                        f"{', '.join(map(str, domains))} are out of memory)"
                    )
                for j in range(i):  # later code frees what it got (spec §3 item 3)
                    self.reservs.free_page(obj, pindex + j)
                return None
            frames.append(frame)
        return frames

    def stack_dispose(self, stack: Stack) -> None:
        """vm_thread_stack_dispose(): free the pages in pindex order, then the KVA to
        the arena of the domain of the first page (vm_phys_domain(vtophys(ks)))."""
        pages = self.object.pages
        if any(stack.pindex + i not in pages for i in range(self.cfg.kstack_pages)):
            raise KernelPanic("vm_thread_stack_dispose: kstack already missing?")
        domain = self.reservs.phys.domain_of(pages[stack.pindex])
        for i in range(self.cfg.kstack_pages):
            self.reservs.free_page(self.object, stack.pindex + i)
        self.stats.disposed += 1
        self._free_kva(stack.ks - self.cfg.guard_pages, domain)

    # ------------------------------------------------------------------ swapping

    def swapout(self, stack: Stack) -> None:
        """vm_thread_swapout(): the stack's pages are unwired and paged out (freed); the
        KVA and td_kstack_domain stay with the thread."""
        for i in range(self.cfg.kstack_pages):
            self.reservs.free_page(self.object, stack.pindex + i)
        stack.swapped = True
        self.stats.swapouts += 1

    def swapin(self, stack: Stack) -> None:
        """vm_thread_swapin(): back the same pindices again, from td_kstack_domain, and
        from the other domains too unless the revision insists on the original one."""
        domains = [stack.domain]
        if self.policy.swapin == SWAPIN_FALLBACK:
            domains = pref(stack.domain, self.cfg.domains)
        for i in range(self.cfg.kstack_pages):
            for d in domains:
                if self.reservs.alloc_page(self.object, stack.pindex + i, d) is not None:
                    break
            else:
                where = f"domain {stack.domain}" if len(domains) == 1 else "any domain"
                raise KernelHang(
                    f"vm_thread_swapin: no free page in {where} for the kstack at "
                    f"{stack.ks:#x}: vm_thread_stack_back() returns ENOMEM forever "
                    "(the swap-in loop)"
                )
        stack.swapped = False
        self.stats.swapins += 1
        first = self.reservs.phys.domain_of(self.object.pages[stack.pindex])
        if self.policy.kva != KVA_KERNEL_ARENA and first != stack.kva_domain:
            self.stats.domain_mismatch += 1  # dispose would free the KVA to `first`


@dataclass
class ChunkLayout:
    """A kstack arena import as the Result reports it (DESIGN.md §6, issue 3)."""

    kva: int
    slots: int
    pattern: str
    populated: list[int] = field(default_factory=list)


def chunk_layouts(alloc: KstackAllocator) -> list[ChunkLayout]:
    """Per live chunk, in KVA order: the reservation windows its stacks' pages touch,
    with one letter each (F full, E middle to end, B beginning to middle, M middle only)
    and the number of this chunk's own pages in each window."""
    cfg, out = alloc.cfg, []
    stacks = {s.ks: s for s in alloc.cache} | alloc.live
    for chunk in sorted((c for c in alloc.chunks if not c.released), key=lambda c: c.kva):
        windows: dict[int, list[int]] = {}
        for slot in range(chunk.slots):
            ks = chunk.kva + slot * cfg.slot + cfg.guard_pages
            stack = stacks.get(ks)
            if stack is None:
                continue
            for i in range(cfg.kstack_pages):
                pindex = stack.pindex + i
                windows.setdefault(pindex // NPAGES, []).append(pindex % NPAGES)
        letters, populated = [], []
        for window in sorted(windows):
            indices = windows[window]
            populated.append(len(indices))
            letters.append(_window_letter(min(indices), max(indices), len(indices)))
        out.append(ChunkLayout(chunk.kva, chunk.slots, "".join(letters), populated))
    return out


def _window_letter(first: int, last: int, count: int) -> str:
    if count == NPAGES:
        return "F"
    if last == NPAGES - 1 and first > 0:
        return "E"
    if first == 0 and last < NPAGES - 1:
        return "B"
    return "M"


def pindex_holes(alloc: KstackAllocator) -> int:
    """Unpopulated pindices between the pages of consecutive resident stacks: gaps no
    wider than a slot are guard-page (or skipped-slot) holes; wider ones are unrelated."""
    resident, slot = alloc.object.resident, alloc.cfg.slot
    return sum(b - a - 1 for a, b in zip(resident, resident[1:], strict=False) if 1 < b - a <= slot)


def kstack_metrics(alloc: KstackAllocator) -> dict[str, float]:
    """The kstack.* metrics of DESIGN.md §6 for the allocator's current state."""
    stats = alloc.stats
    kstack_rvs = [rv for rv in alloc.reservs.by_block.values() if rv.object is alloc.object]
    used = sum(rv.popcnt for rv in kstack_rvs)
    return {
        "kstack.created": stats.created,
        "kstack.cache_hits": stats.cache_hits,
        "kstack.cache_misses": stats.cache_misses,
        "kstack.live_peak": stats.live_peak,
        "kstack.enomem": stats.enomem,
        "kstack.kva_imported_bytes": stats.kva_imported * 4096,
        "kstack.pindex_holes": pindex_holes(alloc),
        # 1: no reserved page unused, as when no kstack page is in a reservation at all
        # (0 there would read as better than any reservation could be)
        "kstack.reserv_overhead": round(len(kstack_rvs) * NPAGES / used, 6) if used else 1.0,
        "kstack.reserv_full": sum(1 for rv in kstack_rvs if rv.popcnt == NPAGES),
        "kstack.reserv_partial": sum(1 for rv in kstack_rvs if rv.popcnt < NPAGES),
        "kstack.swapouts": stats.swapouts,
        "kstack.swapins": stats.swapins,
        "numa.kstack_domain_mismatch": stats.domain_mismatch,
    }
