"""Kernel stacks, after sys/vm/vm_glue.c (spec/freebsd-kstack.md §1, §2, §5.1, §6).

The KVA hierarchy is kernel_map -> kernel_arena -> per-domain kernel arenas -> per-domain
kstack arenas. What a revision decides (where a stack's KVA comes from, how an address
maps to a kstack_object pindex, which domains back it, what a shortage does, where a freed
stack's KVA goes, caching, swapping, reservations) is a policy object of its KstackPolicy
(policy.py); this module runs the path and asks them. Pages are backed one at a time in
increasing pindex order (vm_thread_stack_back).

All sizes and addresses are in pages; KVA is relative to VM_MIN_KERNEL_ADDRESS.
"""

from dataclasses import dataclass, field, fields
from typing import Final

from kreplay.model import KernelHang, KernelPanic
from kreplay.model.domainset import minskip
from kreplay.model.policy import (
    KVA_QUANTUM,
    KernelArenaKva,
    KstackArenaKva,
    KstackPolicy,
    LinearPindex,
    PagesPolicy,
)
from kreplay.model.reserv import NPAGES, Reservations, VMObject
from kreplay.model.vmem import Arena

KVA_NUMA_IMPORT_QUANTUM: Final = NPAGES * 128
KSTACK_OBJECT_SIZE: Final = (1 << 29) - 1  # atop(VM_MAX_KERNEL_ADDRESS - VM_MIN_KERNEL_ADDRESS)


@dataclass(frozen=True)
class KstackConfig:
    """The machine's side: kstack_pages, KSTACK_GUARD_PAGES, domains, cache sizes."""

    kstack_pages: int = 4
    guard_pages: int = 1
    domains: int = 1
    ncpu: int = 8
    kstack_cache_size: int = 0  # 0: imax(128, mp_ncpus * 4)
    cpu_domains: tuple[int, ...] = ()  # the domain of each cpu; empty: cpus split evenly
    kva_start: int = 0  # first free page of kernel_map; 0: after the vm_page array
    phys_pages: int = 0  # the machine's physical pages (the vm_page array's entries)
    page_array: bool = (
        False  # PMAP_HAS_PAGE_ARRAY: amd64 maps vm_page_array at VM_MIN_KERNEL_ADDRESS
    )
    kva_limit: int = KSTACK_OBJECT_SIZE  # pages of kernel_map imports may use past kva_start
    ilp32: bool = False

    def __reduce__(self) -> tuple:  # compiled, a frozen dataclass unpickles by __setattr__
        return (KstackConfig, tuple(getattr(self, f.name) for f in fields(self)))

    @property
    def slot(self) -> int:
        return self.kstack_pages + self.guard_pages

    @property
    def cache_size(self) -> int:
        return self.kstack_cache_size or max(128, self.ncpu * 4)

    def domain_map(self) -> list[int]:
        """The domain of each cpu (PCPU_GET(domain))."""
        if self.cpu_domains:
            return list(self.cpu_domains)
        return [cpu * self.domains // self.ncpu for cpu in range(self.ncpu)]


def kva_start(cfg: KstackConfig, vm_page_bytes: int) -> int:
    """The first page of kernel_map that kmem_init() leaves free (sys/vm/vm_kern.c): on
    amd64 the vm_page array is mapped at VM_MIN_KERNEL_ADDRESS (pmap_page_array_startup)
    and kmem_init() marks round_2mpage(npages * sizeof(struct vm_page)) of it allocated,
    so the kstack chunks' place (their EFFFB phase) depends on the machine's memory.
    Elsewhere the first 2 MiB (other kernel_map users before the first kstack import are
    not modelled)."""
    if not cfg.page_array:
        return NPAGES
    superpage = NPAGES * 4096
    array = -(-cfg.phys_pages * vm_page_bytes // superpage) * superpage
    return array // 4096


@dataclass
class Stack:
    ks: int  # first stack page (td_kstack), above the guard pages
    pindex: int  # pindex of the first stack page in kstack_object
    domain: int  # td_kstack_domain: domain of the first page's frame
    kva_domain: int = 0  # the kstack arena the KVA came from (kernel_arena: 0)
    swapped: bool = False  # vm_thread_swapout: pages unwired to the laundry, KVA kept
    laundered: bool = False  # ... and written to swap: the pages are free


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
            policy = policy.replace(
                kva=KernelArenaKva(policy.kva.wait, policy.kva.vm_page_bytes),
                pindex=LinearPindex(),
                backing=PagesPolicy(),
            )
        self.cfg, self.policy, self.reservs = cfg, policy, reservs
        self.object = VMObject("kstack", KSTACK_OBJECT_SIZE, reserv=policy.reservations)
        self.stats = KstackStats()
        self.chunks: list[Chunk] = []
        self.live: dict[int, Stack] = {}
        self.laundry: list[Stack] = []  # swapped-out stacks not laundered yet, oldest first
        self._map_next = cfg.kva_start or kva_start(cfg, policy.kva.vm_page_bytes)
        # kva_limit (--set kva_limit_mb): the KVA imports may use past kmem_init's
        # reservations; the whole map by default
        unlimited = cfg.kva_limit >= KSTACK_OBJECT_SIZE
        self._map_end = KSTACK_OBJECT_SIZE if unlimited else self._map_next + cfg.kva_limit
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
        # The arena each domain's stacks come from (kernel_arena for every domain when
        # the KVA has no domain): the revision's KVA source builds them.
        self.kstack_arenas = policy.kva.arenas(self)
        self._kva_per_domain = policy.kva.per_domain()
        self.zone = policy.cache.zone(self)  # kstack_cache, or None

    # ------------------------------------------------------------------ KVA hierarchy

    def _kva_import(self, size: int, align: int) -> int | None:
        """kva_import(): vm_map_find(kernel_map, VMFS_SUPER_SPACE): first fit, 2 MiB
        aligned. Nothing is ever given back to kernel_map, so first fit is a bump."""
        addr = -(-self._map_next // KVA_QUANTUM) * KVA_QUANTUM
        if addr + size > self._map_end:
            return None
        self._map_next = addr + size
        if not self._kva_per_domain:  # only stacks use the modelled kernel_arena
            self.stats.kva_imported += size
        return addr

    def _kva_import_domain(self, size: int, align: int) -> int | None:
        """kva_import_domain(): vmem_xalloc(kernel_arena, size, KVA_QUANTUM)."""
        return self.kernel_arena.xalloc(size, KVA_QUANTUM)

    def kstack_arena(self, domain: int, source: KstackArenaKva) -> Arena:
        """vm_thread_kstack_arena_import()/_release() of a domain's kstack arena, with the
        import geometry of the revision's KVA source."""
        slot = self.cfg.slot
        quantum, align, span = source.geometry(slot)
        parent = self.domain_arenas[domain]

        def import_fn(size: int, _align: int) -> int | None:
            """A quantum-aligned parent range, bumped up to a slot boundary relative to
            VM_MIN_KERNEL_ADDRESS."""
            addr = parent.xalloc(quantum, align, wait=source.wait)
            if addr is None:
                return None
            addr += (slot - addr % slot) % slot
            self.chunks.append(Chunk(addr, span // slot, domain))
            self.stats.kva_imported += quantum
            return addr

        def release_fn(addr: int, size: int) -> None:
            """Undo the bump, free the whole quantum (a revision that forgets to undo it
            frees an address the parent never gave)."""
            for chunk in self.chunks:
                if chunk.kva == addr and not chunk.released:
                    chunk.released = True
            parent.xfree(addr - addr % align if source.release_unbump else addr, quantum)

        return Arena(
            f"kstack arena {domain}",
            import_fn=import_fn,
            release_fn=release_fn,
            import_quantum=span,
        )

    # ------------------------------------------------------------------ pindex

    def pindex(self, ks: int) -> int:
        """vm_kstack_pindex() of the revision (spec §2.3)."""
        return self.policy.pindex.pindex(ks, self.cfg.slot, self.cfg.guard_pages)

    # ------------------------------------------------------------------ create / dispose

    @property
    def cache(self) -> list[Stack]:
        """Every cached stack (read-only view)."""
        return self.zone.items() if self.zone is not None else []

    def thread_new(self, cpu: int, domain: int) -> Stack | None:
        """vm_thread_new() on `cpu` of `domain`: uma_zalloc(kstack_cache), else
        vm_thread_stack_create(DOMAINSET_PREF(domain)) directly; ENOMEM when both fail."""
        stack, made = self.zone.alloc(cpu) if self.zone is not None else (None, True)
        if stack is None:
            stack = self.stack_create(domain)
        if stack is None:
            self.stats.enomem += 1
            return None
        if made:
            self.stats.cache_misses += 1
        else:
            self.stats.cache_hits += 1
        self.live[stack.ks] = stack
        self.stats.live_peak = max(self.stats.live_peak, len(self.live))
        return stack

    def thread_dispose(self, cpu: int, stack: Stack) -> None:
        """vm_thread_dispose() on `cpu`: uma_zfree(kstack_cache), which may release
        stacks; without the cache, vm_thread_stack_dispose()."""
        del self.live[stack.ks]
        if self.zone is not None:
            self.zone.free(cpu, stack)
        else:
            self.stack_dispose(stack)

    def drain_cache(self) -> None:
        """uma_reclaim(UMA_RECLAIM_DRAIN_CPU) of kstack_cache: every cached stack released."""
        if self.zone is not None:
            self.zone.drain()

    def kstack_import(self, count: int, domain: int) -> list[Stack]:
        """kstack_import(): up to `count` stacks under DOMAINSET_PREF(domain), stopping at
        the first that fails."""
        made = []
        for _ in range(count):
            stack = self.stack_create(domain)
            if stack is None:
                break
            made.append(stack)
        return made

    def kstack_release(self, stacks: list[Stack]) -> None:
        """kstack_release(): vm_thread_stack_dispose() of each, in store order."""
        for stack in stacks:
            self.stack_dispose(stack)

    def page_domain(self, stack: Stack) -> int:
        """vm_phys_domain(vtophys(ks)): the domain of the stack's first page."""
        return self.reservs.phys.domain_of(self.object.pages[stack.pindex])

    def stack_create(self, domain: int) -> Stack | None:
        """vm_thread_stack_create(DOMAINSET_PREF(domain)): KVA, skip the guard pages,
        back the stack pages, for each step of the revision's Backing until one works."""
        steps = self.policy.backing.steps(domain, self.cfg.domains, self.reservs.below_min)
        for kva_domain, page_domains in steps:
            stack = self._create_in(kva_domain, page_domains)
            if stack is not None:
                return stack
        return None

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
        if self._kva_per_domain and stack.domain != kva_domain:
            self.stats.domain_mismatch += 1
        return stack

    def _alloc_kva(self, domain: int) -> int | None:
        kva = self.policy.kva
        addr = self.kstack_arenas[domain].xalloc(self.cfg.slot, wait=kva.wait)
        if addr is not None:
            kva.check_alignment(addr, self.cfg.slot)
        return addr

    def _free_kva(self, addr: int, domain: int) -> None:
        self.kstack_arenas[domain].xfree(addr, self.cfg.slot)

    def _back(self, pindex: int, domains: list[int]) -> list[int] | None:
        """vm_thread_stack_back(): one page at a time, in increasing pindex order, each
        from the first of the domains that has one."""
        frames = []
        alloc_page, obj = self.reservs.alloc_page, self.object
        req = self.policy.backing.page_class()
        for i in range(self.cfg.kstack_pages):
            for d in domains:
                frame = alloc_page(obj, pindex + i, d, req)
                if frame is not None:
                    break
            if frame is None:
                self.policy.exhaustion.shortage(domains)  # a hang, or ENOMEM below
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
        domain = self.policy.dispose.kva_domain(
            stack, self.reservs.phys.domain_of(pages[stack.pindex])
        )
        for i in range(self.cfg.kstack_pages):
            self.reservs.free_page(self.object, stack.pindex + i)
        self.stats.disposed += 1
        self._free_kva(stack.ks - self.cfg.guard_pages, domain)

    # ------------------------------------------------------------------ swapping

    def swapout(self, stack: Stack) -> None:
        """vm_thread_swapout(): the stack's pages are unwired to PQ_LAUNDRY; they stay in
        kstack_object (resident, not free) until launder() writes them to swap. The KVA and
        td_kstack_domain stay with the thread."""
        stack.swapped = True
        self.laundry.append(stack)
        self.stats.swapouts += 1

    def launder(self, room: int) -> int:
        """The laundry thread and the page daemon: the oldest unwired stacks written to
        swap, as far as `room` pages of swap go, and their pages freed. Pages freed."""
        freed, pages = 0, self.cfg.kstack_pages
        while self.laundry and room - freed >= pages:
            stack = self.laundry.pop(0)
            for i in range(pages):
                self.reservs.free_page(self.object, stack.pindex + i)
            stack.laundered = True
            freed += pages
        return freed

    def swapin(self, stack: Stack) -> int:
        """vm_thread_swapin(): vm_thread_stack_back() finds the pages still resident
        (VM_ALLOC_NOCREAT) and allocates laundered ones again from the revision's swap-in
        domains (D38852 retries td_kstack_domain alone, forever). Swap pages freed."""
        stack.swapped = False
        self.stats.swapins += 1
        if not stack.laundered:
            self.laundry.remove(stack)
            return 0
        swap = self.policy.swap
        domains = swap.swapin_domains(stack.domain, self.cfg.domains)
        if len(domains) > 1:  # through the iterator (DOMAINSET_PREF): its two passes
            domains = minskip(domains, self.reservs.below_min)
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
        stack.laundered = False
        first = self.reservs.phys.domain_of(self.object.pages[stack.pindex])
        if self._kva_per_domain and first != stack.kva_domain:
            self.stats.domain_mismatch += 1  # dispose would free the KVA to `first`
        if swap.follows_pages():
            stack.domain = first
        return self.cfg.kstack_pages


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
