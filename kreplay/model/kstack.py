"""Kernel stacks, after sys/vm/vm_glue.c (spec/freebsd-kstack.md §1, §2, §5.1, §6).

The KVA hierarchy is kernel_map -> kernel_arena -> per-domain kernel arenas -> per-domain
kstack arenas. A revision chooses where a stack's KVA comes from (kva_alloc from
kernel_arena before D38852, the kstack arena after), how a stack address maps to a
kstack_object pindex, and whether kstack_object uses reservations. Pages are backed one at
a time in increasing pindex order (vm_thread_stack_back); stacks are cached LIFO in the
kstack_cache UMA zone, which is refilled in bursts by kstack_import.

All sizes and addresses are in pages; KVA is relative to VM_MIN_KERNEL_ADDRESS.
"""

from dataclasses import dataclass, field

from kreplay.model import KernelHang, KernelPanic
from kreplay.model.reserv import NPAGES, Reservations, VMObject
from kreplay.model.vmem import Arena

KVA_QUANTUM = NPAGES  # 2 MiB: 1 << (VM_LEVEL_0_ORDER + PAGE_SHIFT)
KVA_NUMA_IMPORT_QUANTUM = NPAGES * 128
KSTACK_OBJECT_SIZE = (1 << 29) - 1  # atop(VM_MAX_KERNEL_ADDRESS - VM_MIN_KERNEL_ADDRESS)

# Where stack KVA comes from.
KVA_KERNEL_ARENA = "kernel_arena"  # pre-D38852: kva_alloc()
KVA_KSTACK_ARENA = "kstack_arena"  # D38852: per-domain kstack arena, 511 slots per import
KVA_KSTACK_FFFF = "kstack_arena_ffff"  # the review's proposal: 512 slots, 10 MiB aligned

# How a stack address maps to a pindex of kstack_object.
PINDEX_LINEAR = "linear"  # atop(ks - VM_MIN_KERNEL_ADDRESS)
PINDEX_KSTACK = "kstack"  # vm_kstack_pindex() as committed
PINDEX_GUARD1 = "guard1"  # the review's early formula: one page per slot


@dataclass(frozen=True)
class KstackPolicy:
    """A revision's kstack choices."""

    kva: str = KVA_KSTACK_ARENA
    pindex: str = PINDEX_KSTACK
    reservations: bool = True  # vm_object_reserv(kstack_object)
    wait_for_pages: bool = False  # old scheme: VM_ALLOC_WAITFAIL loops, never fails


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


class KstackAllocator:
    def __init__(self, cfg: KstackConfig, policy: KstackPolicy, reservs: Reservations):
        if cfg.ilp32:  # "The behaviour on 32-bit platforms remains unchanged" (W1)
            policy = KstackPolicy(
                KVA_KERNEL_ARENA, PINDEX_LINEAR, policy.reservations, policy.wait_for_pages
            )
        self.cfg, self.policy, self.reservs = cfg, policy, reservs
        self.object = VMObject("kstack", KSTACK_OBJECT_SIZE, reserv=policy.reservations)
        self.stats = KstackStats()
        self.chunks: list[Chunk] = []
        self.cache: list[Stack] = []
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
            addr = parent.xalloc(quantum, align)
            if addr is None:
                return None
            addr += (slot - addr % slot) % slot
            self.chunks.append(Chunk(addr, span // slot, domain))
            self.stats.kva_imported += quantum
            return addr

        def release_fn(addr: int, size: int) -> None:
            """vm_thread_kstack_arena_release(): undo the bump, free the whole quantum."""
            for chunk in self.chunks:
                if chunk.kva == addr and not chunk.released:
                    chunk.released = True
            parent.xfree(addr - addr % align, quantum)

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

    def thread_new(self, domain: int) -> Stack | None:
        """vm_thread_new(): a cached stack, else a burst of new ones (kstack_import)."""
        if self.cache:
            self.stats.cache_hits += 1
            stack = self.cache.pop()
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
        for _ in range(min(self.cfg.uma_burst, self.cfg.cache_size + 1)):
            stack = self.stack_create(domain)
            if stack is None:
                break
            made.append(stack)
        if not made:
            return None
        # cache_bucket_pop() takes ub_bucket[--cnt]: the last stack made is handed out
        # first, the others stay in the bucket in creation order.
        self.cache.extend(made[:-1])
        return made[-1]

    def thread_dispose(self, stack: Stack) -> None:
        """vm_thread_dispose(): back to kstack_cache; past its limit, freed."""
        del self.live[stack.ks]
        self.cache.append(stack)
        while len(self.cache) > self.cfg.cache_size:
            # zone_put_bucket() over uz_bucket_max frees the incoming bucket: the newest
            self.stack_dispose(self.cache.pop())

    def drain_cache(self) -> None:
        """uma_zone_reclaim(kstack_cache): release every cached stack."""
        while self.cache:
            self.stack_dispose(self.cache.pop())

    def stack_create(self, domain: int) -> Stack | None:
        """vm_thread_stack_create(): KVA, skip the guard pages, back the stack pages."""
        cfg = self.cfg
        addr = self._alloc_kva(domain)
        if addr is None:
            return None
        ks = addr + cfg.guard_pages
        pindex = self.pindex(ks)
        frames = self._back(pindex, domain)
        if frames is None:
            self._free_kva(addr, domain)
            return None
        self.stats.created += 1
        return Stack(ks, pindex, self.reservs.phys.domain_of(frames[0]))

    def _alloc_kva(self, domain: int) -> int | None:
        if self.policy.kva == KVA_KERNEL_ARENA:
            return self.kernel_arena.xalloc(self.cfg.slot)
        addr = self.kstack_arenas[domain].xalloc(self.cfg.slot)
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

    def _back(self, pindex: int, domain: int) -> list[int] | None:
        """vm_thread_stack_back(): one page at a time, in increasing pindex order."""
        frames = []
        for i in range(self.cfg.kstack_pages):
            frame = self.reservs.alloc_page(self.object, pindex + i, domain)
            if frame is None:
                if self.policy.wait_for_pages:
                    raise KernelHang(
                        "vm_thread_stack_back: sleeping for free pages "
                        f"(domain {domain} is out of memory)"
                    )
                for j in range(i):  # later code frees what it got (spec §3 item 3)
                    self.reservs.free_page(self.object, pindex + j)
                return None
            frames.append(frame)
        return frames

    def stack_dispose(self, stack: Stack) -> None:
        """vm_thread_stack_dispose(): free the pages in pindex order, then the KVA to
        the arena of the domain of the first page (td_kstack_domain)."""
        for i in range(self.cfg.kstack_pages):
            if stack.pindex + i not in self.object.pages:
                raise KernelPanic("vm_thread_stack_dispose: kstack already missing?")
            self.reservs.free_page(self.object, stack.pindex + i)
        self.stats.disposed += 1
        self._free_kva(stack.ks - self.cfg.guard_pages, stack.domain)


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
    resident = alloc.object.resident
    return sum(
        gap - 1
        for gap in (b - a for a, b in zip(resident, resident[1:], strict=False))
        if 1 < gap <= alloc.cfg.slot
    )


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
        "kstack.reserv_overhead": round(len(kstack_rvs) * NPAGES / used, 6) if used else 0.0,
        "kstack.reserv_full": sum(1 for rv in kstack_rvs if rv.popcnt == NPAGES),
        "kstack.reserv_partial": sum(1 for rv in kstack_rvs if rv.popcnt < NPAGES),
    }
