"""2 MiB reservations, after sys/vm/vm_reserv.c (spec/freebsd-kstack.md §4.2-§4.6).

A reservation ties a naturally aligned 512-page physical block to the 512-pindex window of
an object that contains the faulting pindex; later pages of that window come from the same
block. vm_page_alloc_domain_after() tries a reservation first and falls back to an order-0
page (alloc_page below), reclaiming the least recently changed partially populated
reservation of the domain when even that fails.
"""

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from kreplay.model import KernelPanic
from kreplay.model.phys import Domain, PhysMemory

NPAGES: Final = 512  # VM_LEVEL_0_NPAGES
ORDER: Final = 9  # VM_LEVEL_0_ORDER
PARTPOPSLOP: Final = 1
LOW62: Final = (1 << 62) - 1

# Page request classes (vm_page.h VM_ALLOC_NORMAL, _SYSTEM, _INTERRUPT): how far into a
# domain's free pages a request may dig (_vm_domain_allocate()).
REQ_NORMAL: Final = 0
REQ_SYSTEM: Final = 1
REQ_INTERRUPT: Final = 2
VM_PAGEOUT_PAGE_COUNT: Final = 32  # vm_pageout.c
MAXBSIZE_PAGES: Final = 16  # MAXBSIZE 64 KiB / PAGE_SIZE


class Thresholds:
    """vm_pageout_init_domain(): a domain's free-page thresholds, in pages."""

    def __init__(self, page_count: int):
        self.interrupt_free_min = 2
        free_min = 4 + (page_count - 1024) // 200 if page_count > 1024 else 4
        pageout_free_min = 2 * MAXBSIZE_PAGES + self.interrupt_free_min
        self.free_reserved = VM_PAGEOUT_PAGE_COUNT + pageout_free_min + page_count // 768
        self.free_severe = free_min // 2 + self.free_reserved
        self.free_target = 4 * free_min + self.free_reserved
        self.free_min = free_min + self.free_reserved
        self.wakeup = self.free_target // 10 * 9  # vmd_pageout_wakeup_thresh


class DomainFree:
    """One domain's vmd_free_count: its buddy lists' free pages and the unused pages of its
    reservations (`in_reservations`), with the thresholds allocations compare it to. A
    page allocated takes one from the count, a page freed gives one back; creating or
    breaking a reservation moves pages between the two parts. (One object a domain, its
    fields read as attributes: the compiled hot path does no list lookups for them.)"""

    def __init__(self, lists: Domain):
        self.lists = lists
        self.in_reservations = 0
        self.thresholds = th = Thresholds(lists.npages)
        # _vm_domain_allocate(): the free pages a request of each class must leave
        self.floor_normal = th.free_reserved
        self.floor_system = th.interrupt_free_min
        self.wakeup = th.wakeup

    def count(self) -> int:
        return self.lists.free_pages + self.in_reservations

    def keeps_floor(self, req: int) -> bool:
        """vm_domain_allocate(vmd, req, 1): one more page of class `req` leaves the floor."""
        if req == REQ_NORMAL:
            return self.lists.free_pages + self.in_reservations > self.floor_normal
        if req == REQ_SYSTEM:
            return self.lists.free_pages + self.in_reservations > self.floor_system
        return self.lists.free_pages + self.in_reservations > 0


class VMObject:
    """The parts of struct vm_object that page allocation reads."""

    def __init__(
        self,
        name: str,
        size: int,
        *,
        reserv: bool = True,
        anon: bool = False,
        pg_color: int = 0,
        oid: int = 0,
    ):
        self.name, self.size, self.oid = name, size, oid  # oid: a number for state digests
        # Its part of Reservations.state_hash, oid << 52 cut at bit 62 (a compiled int
        # stays unboxed below 2**62): bits 52-61 and bits 62-63.
        self.hash_lo, self.hash_hi = (oid << 52) & LOW62, (oid >> 10) & 3
        self.reserv = reserv  # vm_object_reserv(): OBJ_COLORED and not fictitious
        self.anon, self.pg_color = anon, pg_color
        self.pages: dict[int, int] = {}  # pindex -> frame (the memq / radix tree)
        self.resident: list[int] = []  # resident pindices in order (mpred/msucc lookups)

    def remove(self, pindex: int) -> int:
        frame = self.pages.pop(pindex)
        del self.resident[bisect_left(self.resident, pindex)]
        return frame


class Reservation:
    __slots__ = (
        "frame",
        "domain",
        "dfree",
        "object",
        "pindex",
        "popcnt",
        "popmap",
        "inpartpopq",
        "lasttick",
    )

    def __init__(self, frame: int, dfree: DomainFree, obj: VMObject, pindex: int):
        self.frame, self.domain, self.pindex = frame, dfree.lists.index, pindex
        self.dfree = dfree  # its domain's free count
        self.object: VMObject | None = obj
        self.popcnt = 0
        self.popmap = bytearray(NPAGES)
        self.inpartpopq = False
        self.lasttick = -1


class Reservations:
    """All reservations, the per-domain partpop queues and the vm.reserv counters."""

    def __init__(self, phys: PhysMemory):
        self.phys = phys
        self.ticks = 0
        self.by_block: dict[int, Reservation] = {}  # frame >> ORDER -> rv
        # partpop queues, head = least recently changed
        self.partpop: list[OrderedDict[Reservation, None]] = [OrderedDict() for _ in phys.domains]
        self.broken = self.freed = self.reclaimed = 0
        # vmd_free_count, per domain: it counts the unused pages of reservations as free
        self.dfree = [DomainFree(d) for d in phys.domains]
        self.thresholds = [d.thresholds for d in self.dfree]
        self._taken_from = self.dfree[0]  # the domain alloc_page's last page came from
        # The page daemon: a callable (domain) -> bool (freed something) the machine sets,
        # run when an allocation leaves a domain below its wakeup threshold
        # (vm_domain_allocate -> pagedaemon_wakeup) and when an allocation fails.
        self.shortage: Callable[[int], bool] | None = None
        self.hash_lo = self.hash_hi = 0  # state_hash's two parts

    @property
    def state_hash(self) -> int:
        """The low 64 bits of the XOR of (frame << 24) ^ pindex ^ (object id << 52) over
        every resident page: a fingerprint of the page map, the same on any machine, a few
        shifts per allocation (a tuple hash per page cost the replay 10% of its speed)."""
        return (self.hash_hi << 62) | self.hash_lo

    def reserv_of(self, frame: int) -> Reservation | None:
        """The active reservation whose 2 MiB block holds the frame (vm_reserv_from_page()
        with rv->object != NULL). Every frame of an active block is one of its pages: an
        order-0 page is never carved from a block while a reservation owns it."""
        return self.by_block.get(frame >> ORDER)

    # ------------------------------------------------------------------ allocation

    def free_count(self, domain: int) -> int:
        """vmd_free_count: the buddy lists' free pages and the reservations' unused ones."""
        return self.dfree[domain].count()

    def in_reservations(self, domain: int) -> int:
        """The unused pages of the domain's reservations (counted free)."""
        return self.dfree[domain].in_reservations

    def below_min(self, domain: int) -> bool:
        """vm_page_count_min_domain(): fewer free pages than vmd_free_min."""
        dfree = self.dfree[domain]
        return dfree.count() < dfree.thresholds.free_min

    def alloc_page(
        self, obj: VMObject, pindex: int, domain: int, req: int = REQ_NORMAL
    ) -> int | None:
        """vm_page_alloc_domain_after(): a reservation page, else an order-0 page, else
        reclaim a partially populated reservation and retry, each only while the domain
        keeps its floor for the request class (vm_domain_allocate(vmd, req, 1)). When the
        domain cannot give the page, the page daemon's work (`shortage`) runs and the
        allocation is tried again if it freed anything. None when the domain is out."""
        while True:
            at = bisect_left(obj.resident, pindex)  # one lookup: mpred, msucc, insert
            frame = self._reserv_alloc_page(obj, pindex, domain, at, req) if obj.reserv else None
            if frame is None:
                dfree = self.dfree[domain]
                if dfree.keeps_floor(req):
                    self._taken_from = dfree
                    frame = dfree.lists.alloc(0)
                    while frame is None and self.reclaim_inactive(domain):
                        frame = dfree.lists.alloc(0)
            if frame is not None:
                break
            if self.shortage is None or not self.shortage(domain):
                return None
        obj.pages[pindex] = frame
        obj.resident.insert(at, pindex)
        self.hash_lo ^= (frame << 24) ^ pindex ^ obj.hash_lo  # see state_hash
        self.hash_hi ^= obj.hash_hi
        dfree = self._taken_from
        if dfree.count() < dfree.wakeup and self.shortage is not None:
            self.shortage(dfree.lists.index)
        return frame

    def _reserv_alloc_page(
        self, obj: VMObject, pindex: int, domain: int, at: int, req: int
    ) -> int | None:
        """vm_reserv_alloc_page() (spec §4.3); the pindex would go at obj.resident[at], so
        mpred is the resident pindex before that and msucc the one there. An existing
        reservation's domain must keep its floor, a new one's the requested domain's."""
        index = (obj.pg_color + pindex) & (NPAGES - 1)  # VM_RESERV_INDEX()
        if pindex < index or pindex >= obj.size:
            return None
        # vm_reserv_from_object(): the reservation of mpred, else that of msucc, if it
        # belongs to this object and its window holds the pindex.
        resident, by_block, pages = obj.resident, self.by_block, obj.pages
        mpred = resident[at - 1] if at else None
        rv = rv_pred = by_block.get(pages[mpred] >> ORDER) if mpred is not None else None
        if rv is None or rv.object is not obj or not 0 <= pindex - rv.pindex < NPAGES:
            msucc = resident[at] if at < len(resident) else None
            rv = rv_succ = by_block.get(pages[msucc] >> ORDER) if msucc is not None else None
            if rv is not None and (rv.object is not obj or not 0 <= pindex - rv.pindex < NPAGES):
                rv = None
        if rv is not None:
            if rv.popmap[index] or not rv.dfree.keeps_floor(req):
                return None
            self._taken_from = rv.dfree
            self._populate(rv, index)
            return rv.frame + index
        first = pindex - index
        if mpred is not None:  # leftcap: the end of mpred's reservation, else mpred + 1
            mine = rv_pred if rv_pred is not None and rv_pred.object is obj else None
            if (mine.pindex + NPAGES if mine else mpred + 1) > first:
                return None
        if msucc is not None:  # rightcap: the start of msucc's reservation, else msucc
            mine = rv_succ if rv_succ is not None and rv_succ.object is obj else None
            if first + NPAGES > (mine.pindex if mine else msucc):
                return None
        if not obj.anon and first + NPAGES > obj.size:
            return None
        dfree = self.dfree[domain]
        if not dfree.keeps_floor(req):
            return None
        block = dfree.lists.alloc(ORDER)
        if block is None:
            return None
        rv = Reservation(block, dfree, obj, first)
        self.by_block[block >> ORDER] = rv
        dfree.in_reservations += NPAGES
        self._taken_from = dfree
        self._populate(rv, index)
        return block + index

    def _populate(self, rv: Reservation, index: int) -> None:
        """vm_reserv_populate()."""
        rv.popmap[index] = 1
        rv.popcnt += 1
        rv.dfree.in_reservations -= 1
        if self.ticks - rv.lasttick < PARTPOPSLOP and rv.inpartpopq and rv.popcnt != NPAGES:
            return
        rv.lasttick = self.ticks
        if rv.popcnt < NPAGES:  # to the tail of the LRU queue
            if rv.inpartpopq:
                self.partpop[rv.domain].move_to_end(rv)
            else:
                self._enqueue(rv)
        else:  # fully populated: off the queue
            self._dequeue(rv)

    # ------------------------------------------------------------------ free

    def free_page(self, obj: VMObject, pindex: int) -> None:
        """vm_page_free(): back to its reservation, or to the buddy allocator."""
        self._free_frame(obj, pindex, obj.remove(pindex))

    def free_range(self, obj: VMObject, lo: int, hi: int) -> None:
        """vm_object_page_remove(): the resident pages obj.resident[lo:hi], in pindex
        order, each as free_page() would, the sorted list cut once."""
        pages = obj.pages
        for pindex in obj.resident[lo:hi]:
            self._free_frame(obj, pindex, pages.pop(pindex))
        del obj.resident[lo:hi]

    def _free_frame(self, obj: VMObject, pindex: int, frame: int) -> None:
        self.hash_lo ^= (frame << 24) ^ pindex ^ obj.hash_lo
        self.hash_hi ^= obj.hash_hi
        rv = self.by_block.get(frame >> ORDER)  # reserv_of()
        if rv is None:
            self.phys.domains[self.phys.domain_of(frame)].free(frame, 0)
            return
        self._depopulate(rv, frame - rv.frame)

    def _depopulate(self, rv: Reservation, index: int) -> None:
        """vm_reserv_depopulate()."""
        rv.popmap[index] = 0
        rv.popcnt -= 1
        rv.dfree.in_reservations += 1
        if self.ticks - rv.lasttick >= PARTPOPSLOP or rv.popcnt == 0:
            self._dequeue(rv)
            if rv.popcnt != 0:
                self._enqueue(rv)
            rv.lasttick = self.ticks
        if rv.popcnt == 0:
            del self.by_block[rv.frame >> ORDER]
            rv.object = None
            rv.dfree.in_reservations -= NPAGES
            rv.dfree.lists.free(rv.frame, ORDER)
            self.freed += 1

    # ------------------------------------------------------------------ reclaim

    def reclaim_inactive(self, domain: int) -> bool:
        """vm_reserv_reclaim_inactive(): break the LRU partially populated reservation."""
        queue = self.partpop[domain]
        if not queue:
            return False
        rv = next(iter(queue))
        self._dequeue(rv)
        self._break(rv)
        self.reclaimed += 1
        return True

    def _break(self, rv: Reservation) -> None:
        """vm_reserv_break(): unused pages back to the buddy allocator by runs; used
        pages stay with the object, in no reservation."""
        if rv.inpartpopq:
            raise KernelPanic("vm_reserv_break: reserv is still queued")
        domain = self.phys.domains[rv.domain]
        index = 0
        while index < NPAGES:
            if rv.popmap[index]:
                index += 1
                continue
            run = index
            while run < NPAGES and not rv.popmap[run]:
                run += 1
            _free_run(domain, rv.frame + index, run - index)
            index = run
        del self.by_block[rv.frame >> ORDER]
        rv.dfree.in_reservations -= NPAGES - rv.popcnt
        rv.object, rv.popcnt = None, 0
        self.broken += 1

    def _enqueue(self, rv: Reservation) -> None:
        self.partpop[rv.domain][rv] = None
        rv.inpartpopq = True

    def _dequeue(self, rv: Reservation) -> None:
        if rv.inpartpopq:
            del self.partpop[rv.domain][rv]
            rv.inpartpopq = False

    # ------------------------------------------------------------------ sysctls

    @property
    def fullpop(self) -> int:
        """vm.reserv.fullpop."""
        return sum(1 for rv in self.by_block.values() if rv.popcnt == NPAGES)

    def partpopq_text(self) -> str:
        """vm.reserv.partpopq, exactly as sysctl(8) prints the string."""
        lines = ["", "DOMAIN    LEVEL     SIZE  NUMBER", ""]
        for domain, queue in enumerate(self.partpop):
            unused = sum(NPAGES - rv.popcnt for rv in queue)
            lines.append(f"{domain:6d}, {-1:7d}, {unused * 4:6d}K, {len(queue):6d}")
        return "\n".join(lines) + "\n"


def _free_run(domain, frame: int, npages: int) -> None:
    """vm_phys_free_contig(): free a run as naturally aligned blocks."""
    end = frame + npages
    while frame < end:
        order = 0
        while order < ORDER and frame % (2 << order) == 0 and frame + (2 << order) <= end:
            order += 1
        domain.free(frame, order)
        frame += 1 << order
