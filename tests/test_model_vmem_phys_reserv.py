"""The lower model layers on their own: vmem arenas, the buddy allocator, reservations."""

import pytest

from kreplay.model import KernelHang, KernelPanic
from kreplay.model.phys import MAX_ORDER, Domain, PhysMemory
from kreplay.model.reserv import NPAGES, Reservations, VMObject
from kreplay.model.vmem import FREE, SPAN, Arena, order2size, size2order


def test_size_classes_are_exact_up_to_32_then_powers_of_two():
    assert [size2order(n) for n in (1, 5, 32)] == [0, 4, 31]
    assert size2order(33) == size2order(63) == 31
    assert size2order(64) == 32 and order2size(32) == 64


def test_bestfit_takes_the_lowest_address_of_a_segment():
    arena = Arena("a")
    arena.add(100, 50)
    assert [arena.xalloc(5) for _ in range(3)] == [100, 105, 110]


def test_a_freed_hole_of_the_request_size_is_reused_first_most_recent_first():
    arena = Arena("a")
    arena.add(0, 100)
    addrs = [arena.xalloc(5) for _ in range(6)]
    arena.xfree(addrs[1], 5)
    arena.xfree(addrs[3], 5)
    assert arena.xalloc(5) == addrs[3]
    assert arena.xalloc(5) == addrs[1]


def test_free_coalesces_with_both_neighbours():
    arena = Arena("a")
    arena.add(0, 30)
    a, b, c = (arena.xalloc(10) for _ in range(3))
    arena.xfree(a, 10)
    arena.xfree(c, 10)
    arena.xfree(b, 10)
    assert [seg for seg in arena.segments() if seg[0] == FREE] == [(FREE, 0, 30)]
    assert arena.inuse == 0


def test_import_rounds_to_the_import_quantum_and_a_free_span_is_released():
    released = []
    arena = Arena(
        "child",
        import_fn=lambda size, align: 1000,
        import_quantum=64,
        release_fn=lambda addr, size: released.append((addr, size)),
    )
    addr = arena.xalloc(5)
    assert addr == 1000 and arena.spans() == [(1000, 64)]
    arena.xfree(addr, 5)
    assert released == [(1000, 64)] and arena.spans() == [] and arena.size == 0


def test_aligned_import_asks_for_twice_the_alignment_more():
    asked = []

    def import_fn(size, align):
        asked.append(size)
        return 0

    arena = Arena("a", import_fn=import_fn, import_quantum=512)
    arena.xalloc(2560, 512)
    assert asked == [3584]  # roundup(2 * 512 + 2560, 512): the 14 MiB of spec §5.1


def test_contiguous_imports_coalesce_without_a_release_function():
    nxt = iter([0, 512])
    arena = Arena("a", import_fn=lambda size, align: next(nxt), import_quantum=512)
    arena.xalloc(500)
    # 100 pages do not fit in the 12 left: a second, adjacent import extends the free
    # tail instead of adding a span tag, so the allocation straddles the two imports
    assert arena.xalloc(100) == 500
    assert arena.size == 1024 and [s for s in arena.segments() if s[0] == SPAN] == [(SPAN, 0, 512)]


def test_freeing_an_address_the_arena_does_not_hold_panics_like_the_kernel():
    arena = Arena("a")
    arena.add(0, 10)
    with pytest.raises(KernelPanic, match="Assertion bt != NULL failed"):
        arena.xfree(3, 1)


def test_exhausted_arena_returns_none_with_nowait_and_hangs_with_waitok():
    arena = Arena("a")
    arena.add(0, 4)
    assert arena.xalloc(5) is None
    with pytest.raises(KernelHang):
        arena.xalloc(5, wait=True)


def test_buddy_allocator_splits_and_merges_back():
    domain = Domain(0, 0, 1 << MAX_ORDER)
    frames = [domain.alloc(0) for _ in range(3)]
    assert frames == [0, 1, 2]
    block = domain.alloc(9)
    assert block % 512 == 0
    for frame in frames:
        domain.free(frame, 0)
    domain.free(block, 9)
    assert domain.free_blocks() == {MAX_ORDER: 1}


def test_domains_own_their_frame_ranges():
    phys = PhysMemory(2, 4096)
    assert phys.domains[1].alloc(0) == 4096 and phys.domain_of(4096) == 1


def _reservs(pages=1 << 14):
    return Reservations(PhysMemory(1, pages))


def test_pages_of_one_window_share_a_reservation_until_it_is_full():
    rs = _reservs()
    obj = VMObject("o", 1 << 20)
    frames = [rs.alloc_page(obj, p, 0) for p in range(NPAGES)]
    assert frames == list(range(frames[0], frames[0] + NPAGES)) and frames[0] % NPAGES == 0
    assert rs.fullpop == 1 and not rs.partpop[0]


def test_freeing_every_page_returns_the_block_and_counts_freed():
    rs = _reservs()
    obj = VMObject("o", 1 << 20)
    for p in (3, 4):
        rs.alloc_page(obj, p, 0)
    for p in (3, 4):
        rs.free_page(obj, p)
    assert rs.freed == 1 and rs.phys.free_pages == 1 << 14 and not rs.by_block


def test_a_resident_page_outside_any_reservation_blocks_a_new_one_in_its_window():
    rs = _reservs()
    obj = VMObject("o", 1 << 20, reserv=False)
    rs.alloc_page(obj, 10, 0)  # order-0 page, no reservation
    obj.reserv = True
    rs.alloc_page(obj, 11, 0)
    assert not rs.by_block  # leftcap = 11 > first = 0: no reservation (spec §4.3 step 3)


def test_order0_shortage_reclaims_the_least_recently_changed_partial_reservation():
    rs = _reservs(pages=2 * NPAGES)
    a, b = VMObject("a", 1 << 20), VMObject("b", 1 << 20)
    rs.ticks = 1
    rs.alloc_page(a, 0, 0)
    rs.ticks = 2
    rs.alloc_page(b, 0, 0)
    plain = VMObject("plain", 1 << 20, reserv=False)
    assert rs.alloc_page(plain, 0, 0) is not None
    assert (rs.broken, rs.reclaimed) == (1, 1)
    assert a.pages and rs.reserv_of(a.pages[0]) is None  # a's page stays, reservation gone


def test_partpopq_text_is_the_sysctl_string():
    rs = _reservs()
    obj = VMObject("o", 1 << 20)
    for p in range(4):
        rs.alloc_page(obj, p, 0)
    assert rs.partpopq_text() == (
        "\nDOMAIN    LEVEL     SIZE  NUMBER\n\n     0,      -1,   2032K,      1\n"
    )
