"""What the HTML report draws, read off a machine at the end of a replay.

Kept out of the Result on purpose: a Result is compared byte for byte with golden/, and
these pictures are views of the final state, not facts to hold a revision to. `kreplay
check --report` computes them in the same worker as the Result (check.run_unit) and they
travel beside it as their own JSON; nothing here is written to golden/ or to report.json.

Three views, all in pages (KVA relative to VM_MIN_KERNEL_ADDRESS, physical memory as frame
numbers; a window is 512 pages, 2 MiB):
- population: per NUMA domain, every 2 MiB physical window that holds an allocated page,
  with its kstack and user pages and whether an active reservation owns it;
- kva: the first KVA windows holding kstack slots, one letter per page (KVA_* below);
- pindex: the first 512-pindex windows of kstack_object holding pages, one letter per pindex
  (PINDEX_* below), with the reservation behind the window if there is one.
"""

import msgspec

from kreplay.model.kstack import KstackAllocator
from kreplay.model.machine import Machine
from kreplay.model.reserv import NPAGES, ORDER

LAYOUT_WINDOWS = 10  # KVA and pindex windows shown: two D38852 chunks (5 windows each)

# One letter per page in the kva and pindex rows.
FREE = "."  # KVA: no kstack arena span there; pindex: not populated
SLOT_FREE = "f"  # KVA: a free slot of a kstack arena chunk
GUARD = "g"  # KVA: a stack's guard page (never mapped)
LIVE = "L"  # a stack page held by a thread (running, zombie or parked with its proc)
CACHED = "c"  # a stack page of a stack cached in kstack_cache
HOLE = "h"  # pindex: an unpopulated pindex between two stacks' pages (kstack.pindex_holes)


class Window(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    index: int  # frame >> 9, counted from the domain's first window
    kstack: int  # kstack_object pages in the window
    user: int  # user (anonymous object) pages in the window
    reserv: str  # "kstack" / "user": owner of the active reservation; "" when none


class Population(msgspec.Struct, forbid_unknown_fields=True):
    domain: int
    windows: int  # 2 MiB windows in the domain
    used: list[Window]  # windows holding at least one allocated page, in order


class LayoutRow(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    start: int  # first page of the row (KVA page or pindex), a multiple of 512
    pages: str  # 512 letters
    reserv: int = -1  # pindex rows: popcnt of the window's kstack reservation, -1 if none


class Chunk(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    kva: int
    slots: int


class Pictures(msgspec.Struct, forbid_unknown_fields=True):
    kstack_pages: int
    guard_pages: int
    kva_source: str  # the revision's KVA source (KstackPolicy.kva.spec())
    pindex_policy: str  # its pindex scheme
    population: list[Population]
    chunks: list[Chunk]  # kstack arena imports that are still held, in KVA order
    kva: list[LayoutRow]
    pindex: list[LayoutRow]


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
            Window(w - first, *counts[w], owners.get(w, ""))
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


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(Pictures)


def to_json(pics: Pictures) -> bytes:
    return _encoder.encode(pics)


def from_json(data: bytes) -> Pictures:
    return _decoder.decode(data)
