"""The views of a machine's final state that the HTML report draws (kreplay/pictures.py),
read off the machine at the end of a replay, in the worker that ran it."""

from kreplay.model.kstack import KstackAllocator
from kreplay.model.machine import Machine
from kreplay.model.reserv import NPAGES, ORDER
from kreplay.pictures import (
    CACHED,
    FREE,
    GUARD,
    HOLE,
    LAYOUT_WINDOWS,
    LIVE,
    SLOT_FREE,
    WINDOW_PAGES,
    Chunk,
    LayoutRow,
    Pictures,
    Population,
    Window,
)

assert NPAGES == WINDOW_PAGES  # a window of the pictures is a reservation


def pictures(machine: Machine) -> Pictures:
    alloc = machine.kstack
    return Pictures(
        kstack_pages=alloc.cfg.kstack_pages,
        guard_pages=alloc.cfg.guard_pages,
        kva_source=alloc.policy.kva.spec(),
        pindex_policy=alloc.policy.pindex.spec(),
        population=population(machine),
        chunks=[
            Chunk(c.kva, c.slots)
            for c in sorted(alloc.chunks, key=lambda c: c.kva)
            if not c.released
        ],
        kva=kva_rows(alloc),
        pindex=pindex_rows(alloc),
    )


def population(machine: Machine) -> list[Population]:
    counts: dict[int, list[int]] = {}  # window -> [kstack pages, user pages]
    objects = [(0, machine.kstack.object)] + [(1, obj) for obj in machine.user.values()]
    for side, obj in objects:
        for frame in obj.pages.values():
            counts.setdefault(frame >> ORDER, [0, 0])[side] += 1
    kstack_object = machine.kstack.object
    owners = {
        block: "kstack" if rv.object is kstack_object else "user"
        for block, rv in machine.reservs.by_block.items()
    }
    per_domain = machine.phys.pages_per_domain // NPAGES
    out = []
    for d in range(len(machine.phys.domains)):
        first = d * per_domain
        used = [
            Window(w - first, counts[w][0], counts[w][1], owners.get(w, ""))
            for w in sorted(counts)
            if first <= w < first + per_domain
        ]
        out.append(Population(d, per_domain, used))
    return out


def _stacks(alloc: KstackAllocator):
    """(stack, letter) for every stack that holds pages: held by a thread, or cached."""
    return [(s, LIVE) for s in alloc.live.values()] + [(s, CACHED) for s in alloc.cache]


def kva_rows(alloc: KstackAllocator) -> list[LayoutRow]:
    """The first LAYOUT_WINDOWS 2 MiB KVA windows that hold kstack slots."""
    k, g = alloc.cfg.kstack_pages, alloc.cfg.guard_pages
    pages: dict[int, str] = {}
    for chunk in alloc.chunks:
        if not chunk.released:
            span = chunk.slots * alloc.cfg.slot
            pages.update(dict.fromkeys(range(chunk.kva, chunk.kva + span), SLOT_FREE))
    for stack, letter in _stacks(alloc):
        pages.update(dict.fromkeys(range(stack.ks - g, stack.ks), GUARD))
        pages.update(dict.fromkeys(range(stack.ks, stack.ks + k), letter))
    return _rows(pages, lambda start: -1)


def pindex_rows(alloc: KstackAllocator) -> list[LayoutRow]:
    """The first LAYOUT_WINDOWS 512-pindex windows of kstack_object that hold pages."""
    k = alloc.cfg.kstack_pages
    pages: dict[int, str] = {}
    for stack, letter in _stacks(alloc):
        pages.update(dict.fromkeys(range(stack.pindex, stack.pindex + k), letter))
    resident = alloc.object.resident
    for a, b in zip(resident, resident[1:], strict=False):
        if 1 < b - a <= alloc.cfg.slot:  # the gaps kstack.pindex_holes counts
            pages.update(dict.fromkeys(range(a + 1, b), HOLE))
    popcnt = {
        rv.pindex: rv.popcnt for rv in alloc.reservs.by_block.values() if rv.object is alloc.object
    }
    return _rows(pages, lambda start: popcnt.get(start, -1))


def _rows(pages: dict[int, str], reserv) -> list[LayoutRow]:
    windows = sorted({page // NPAGES for page in pages})[:LAYOUT_WINDOWS]
    rows = []
    for w in windows:
        start = w * NPAGES
        text = "".join(pages.get(p, FREE) for p in range(start, start + NPAGES))
        rows.append(LayoutRow(start, text, reserv(start)))
    return rows


# ---------------------------------------------------------------------------- kernel counters


def kernel_counters(machine: Machine) -> dict[str, int]:
    """The counters a FreeBSD box would show in this state, named as kreplay/snapshot/
    counters.py names them (`vmstat -z` cells, sysctl OIDs): what `kreplay validate` sets
    beside a recording's snapshots. Only the change between two states means anything
    (the box ran more than the trace before and beside it).

    zone.kstack_cache: every vm_thread_new() is a uma_zalloc(kstack_cache) (a request; a
    stack the zone could not give is a fail, vm_glue.c), `used` the stacks out of the zone
    (running threads, zombies, stacks parked with a struct proc in proc_zone), `free` the
    cached ones. zone.THREAD: thread_alloc() takes a struct thread with each stack, so its
    requests and items in use follow the stacks'. zone.PROC: each struct proc alive, zombies
    included (fork counts come from the ops, not the machine)."""
    alloc = machine.kstack
    stats = alloc.stats
    stacks = stats.cache_hits + stats.cache_misses
    out = {
        "zone.THREAD.requests": stacks,
        "zone.THREAD.used": len(alloc.live),
        "zone.PROC.used": len(machine.procs),
        "vm.kstacks": len(alloc.live),
        "vm.stats.vm.v_free_count": machine.phys.free_pages,
        "vm.stats.vm.v_wire_count": len(alloc.object.pages),  # kstack pages are wired
        "vm.reserv.fullpop": machine.reservs.fullpop,
        "vm.reserv.broken": machine.reservs.broken,
        "vm.reserv.freed": machine.reservs.freed,
        "vm.reserv.reclaimed": machine.reservs.reclaimed,
    }
    if alloc.zone is not None:
        out["zone.kstack_cache.requests"] = stacks
        out["zone.kstack_cache.fail"] = stats.enomem
        out["zone.kstack_cache.used"] = len(alloc.live)
        out["zone.kstack_cache.free"] = len(alloc.cache)
        out["zone.kstack_cache.sleep"] = 0  # vm_thread_new asks with M_NOWAIT: never sleeps
    for domain, queue in enumerate(machine.reservs.partpop):  # level -1: vm_reserv.c
        out[f"vm.reserv.partpopq.{domain}.-1.number"] = len(queue)
        out[f"vm.reserv.partpopq.{domain}.-1.size_kb"] = sum(NPAGES - rv.popcnt for rv in queue) * 4
    return out
