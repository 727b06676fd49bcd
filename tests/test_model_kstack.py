"""kstack allocation per revision policy, against the spec's worked example
(spec/freebsd-kstack.md §6) and against invariants on random sequences."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreplay.model import KernelPanic
from kreplay.model.kstack import KstackAllocator, KstackConfig, chunk_layouts, kstack_metrics
from kreplay.model.phys import PhysMemory
from kreplay.model.policy import (
    Guard1Pindex,
    KernelArenaKva,
    KstackPolicy,
    LinearPindex,
    NoCache,
    PagesPolicy,
    WaitFail,
)
from kreplay.model.reserv import NPAGES, Reservations
from kreplay.revisions.ffff import FfffKva

BASE = KstackPolicy(
    kva=KernelArenaKva(), pindex=LinearPindex(), backing=PagesPolicy(), exhaustion=WaitFail()
)
D38852 = KstackPolicy()
FFFF = KstackPolicy(kva=FfffKva())
# The chunk geometry without kstack_cache: each thread_new makes exactly one stack.
D38852_NOCACHE = KstackPolicy(cache=NoCache())
FFFF_NOCACHE = KstackPolicy(kva=FfffKva(), cache=NoCache())


def allocator(policy, *, pages=1 << 20, domains=1, **cfg):
    reservs = Reservations(PhysMemory(domains, pages))
    return KstackAllocator(KstackConfig(domains=domains, **cfg), policy, reservs)


def create(alloc, n):
    stacks = []
    for i in range(n):
        alloc.reservs.ticks = i
        stack = alloc.thread_new(0, 0)
        assert stack is not None
        stacks.append(stack)
    return stacks


# The 2 MiB-aligned parent address of the first chunk is 512 * k pages; which k a chunk
# gets is set here through where kernel_map's free space starts.
@pytest.mark.parametrize(
    ("kva_start", "k", "pattern", "populated"),
    [
        (512 * 1, 1, "EFFFB", [100, 512, 512, 512, 408]),
        (512 * 2, 2, "EFFFB", [204, 512, 512, 512, 304]),
        (512 * 3, 3, "EFFFB", [304, 512, 512, 512, 204]),
        (512 * 4, 4, "EFFFB", [408, 512, 512, 512, 100]),
        (512 * 5, 5, "FFFB", [512, 512, 512, 508]),
    ],
)
def test_d38852_chunks_hold_511_stacks_in_efffb_or_fffb(kva_start, k, pattern, populated):
    alloc = allocator(D38852_NOCACHE, kva_start=kva_start)
    create(alloc, 3 * 511)
    chunks = chunk_layouts(alloc)
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk.slots == 511
        assert (chunk.kva // NPAGES) % 5 == k % 5
        assert chunk.pattern == pattern and chunk.populated == populated
        assert chunk.populated[0] + chunk.populated[-1] == 508 or pattern == "FFFB"


def test_ffff_chunks_fill_every_reservation():
    alloc = allocator(FFFF_NOCACHE)
    create(alloc, 3 * 512)
    chunks = chunk_layouts(alloc)
    assert [(c.slots, c.pattern) for c in chunks] == [(512, "FFFF")] * 3


def test_base_never_fills_a_kstack_reservation_and_reserves_a_quarter_more():
    alloc = allocator(BASE)
    create(alloc, 20_000)
    metrics = kstack_metrics(alloc)
    assert metrics["kstack.reserv_full"] == 0
    assert metrics["kstack.reserv_overhead"] == pytest.approx(1.25, abs=0.01)


def test_d38852_reserves_almost_nothing_more_than_it_uses():
    alloc = allocator(D38852_NOCACHE, kva_start=512 * 5)
    create(alloc, 4 * 511)
    assert kstack_metrics(alloc)["kstack.reserv_overhead"] < 1.01


@pytest.mark.parametrize(("pages", "guard"), [(4, 2), (6, 1)])
def test_d38852_leaves_no_pindex_holes_where_base_leaves_one_per_stack(pages, guard):
    n = 300
    new = allocator(D38852, kstack_pages=pages, guard_pages=guard)
    old = allocator(BASE, kstack_pages=pages, guard_pages=guard)
    create(new, n)
    create(old, n)
    assert kstack_metrics(new)["kstack.pindex_holes"] == 0
    created = old.stats.created
    assert kstack_metrics(old)["kstack.pindex_holes"] == (created - 1) * guard


def test_the_early_review_formula_leaves_holes_when_there_are_two_guard_pages():
    alloc = allocator(KstackPolicy(pindex=Guard1Pindex()), guard_pages=2)
    create(alloc, 300)
    assert kstack_metrics(alloc)["kstack.pindex_holes"] > 0


def test_pindex_of_a_guard_page_is_the_kernel_assertion():
    alloc = allocator(D38852)
    with pytest.raises(KernelPanic, match="guard page pindex"):
        alloc.pindex(5 * 7)


def test_cache_serves_lifo_and_imports_a_bucket_at_a_time():
    """amd64 (8 cpus, 1 domain, 128 items): uma_zone_set_maxcache gives buckets of 4; a
    miss imports a bucket's worth (zone_alloc_bucket -> kstack_import), and cache_bucket_pop
    takes ub_bucket[--cnt]: the last stack made comes first."""
    alloc = allocator(D38852)
    first = alloc.thread_new(0, 0)
    assert alloc.stats.created == 4 and len(alloc.cache) == 3
    second = alloc.thread_new(0, 0)
    assert second.ks == first.ks - 5
    alloc.thread_dispose(0, second)
    assert alloc.thread_new(0, 0).ks == second.ks
    assert (alloc.stats.cache_hits, alloc.stats.cache_misses) == (2, 1)


def test_ilp32_forces_the_old_scheme():
    alloc = allocator(D38852, ilp32=True)
    create(alloc, 10)
    assert not alloc.chunks and alloc.policy.pindex == LinearPindex()


ops = st.lists(st.tuples(st.booleans(), st.integers(0, 10_000)), min_size=1, max_size=400)


@pytest.mark.parametrize("policy", [BASE, D38852, FFFF], ids=["base", "D38852", "ffff"])
@settings(max_examples=30, deadline=None, derandomize=True)
@given(ops=ops)
def test_no_page_is_handed_out_twice_and_everything_comes_back(policy, ops):
    alloc = allocator(policy, pages=1 << 16, kstack_cache_size=8)
    total = alloc.reservs.phys.free_pages
    live = []
    for tick, (create_one, pick) in enumerate(ops):
        alloc.reservs.ticks = tick
        if create_one or not live:
            stack = alloc.thread_new(0, 0)
            if stack is not None:
                live.append(stack)
        else:
            alloc.thread_dispose(0, live.pop(pick % len(live)))
        kva = [
            s.ks + i
            for s in list(alloc.live.values()) + alloc.cache
            for i in range(-alloc.cfg.guard_pages, alloc.cfg.kstack_pages)
        ]
        assert len(kva) == len(set(kva))
        frames = list(alloc.object.pages.values())
        assert len(frames) == len(set(frames))
    for stack in live:
        alloc.thread_dispose(0, stack)
    alloc.drain_cache()
    assert not alloc.object.pages and not alloc.reservs.by_block
    assert alloc.reservs.phys.free_pages == total
    # every kstack arena span went back to its domain arena; the domain arenas keep
    # what they imported from kernel_arena (they have no release function)
    if alloc.policy.kva.per_domain():  # else the "kstack arenas" are kernel_arena itself
        assert all(arena.size == 0 for arena in alloc.kstack_arenas)
    assert all(arena.inuse == 0 for arena in alloc.domain_arenas)
    if policy is BASE:
        assert alloc.kernel_arena.inuse == 0


@pytest.mark.parametrize(
    ("mem_mb", "vm_page_bytes", "superpage", "first_window"),
    [
        # 8 GiB: 2,097,152 pages * 104 bytes = 208 MiB of vm_page array: 104 superpages;
        # the chunk at superpage 104 (104 mod 5 = 4) starts with 408 pages of its window
        (8192, 104, 104, 408),
        (16384, 104, 208, 304),  # 208 mod 5 = 3
        (8192, 88, 88, 304),  # the newest struct vm_page: 176 MiB, 88 mod 5 = 3
    ],
)
def test_kstack_kva_starts_after_the_vm_page_array(mem_mb, vm_page_bytes, superpage, first_window):
    """kmem_init() (sys/vm/vm_kern.c) marks [vm_page_array, + round_2mpage(npages *
    sizeof(struct vm_page))) allocated at VM_MIN_KERNEL_ADDRESS on amd64
    (pmap_page_array_startup), so the first kstack chunk's phase depends on the memory."""
    from kreplay.model.policy import KstackArenaKva, NoCache

    cfg = KstackConfig(phys_pages=mem_mb * 256, page_array=True)
    reservs = Reservations(PhysMemory(1, 1 << 16))
    policy = KstackPolicy(kva=KstackArenaKva(vm_page_bytes=vm_page_bytes), cache=NoCache())
    alloc = KstackAllocator(cfg, policy, reservs)
    create(alloc, 511)
    (chunk,) = chunk_layouts(alloc)
    assert chunk.kva // NPAGES == superpage
    assert chunk.populated[0] == first_window
