"""What the HTML report draws: the views of a machine's final state, as data. The views
are read off the machine by kreplay/model/views.py, in the worker that ran the replay; the
report reads only these types (it imports no model module).

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

WINDOW_PAGES = 512  # pages in a window: a 2 MiB reservation (VM_LEVEL_0_NPAGES), a row
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


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(Pictures)


def to_json(pics: Pictures) -> bytes:
    return _encoder.encode(pics)


def from_json(data: bytes) -> Pictures:
    return _decoder.decode(data)
