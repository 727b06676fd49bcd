"""NUMA, memory pressure and the review's buggy revisions (issue 5).

Each reconstructed revision gets a small workload that triggers its bug, replayed on the
revision and on D38852 and later, which must come through. Workloads are op sequences
(lifecycle.py's vocabulary) so that each one says exactly what the kernel is asked to do.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kreplay import ops as kops
from kreplay import replay as replaying
from kreplay.model.machine import Machine, machine_config
from kreplay.model.phys import PhysMemory
from kreplay.model.reserv import NPAGES, Reservations, VMObject
from kreplay.replay import run
from kreplay.revisions import registry

REVS = registry()


class Workload:
    """Ops in trace order; ticks are milliseconds."""

    def __init__(self):
        self.ops = kops.Ops()
        self.tick = 0

    def op(self, kind, pid, tid=0, cpu=0, arg=0, arg2=0, dt=1):
        self.tick += dt
        self.ops.add(kind, pid, tid, cpu, self.tick, len(self.ops) + 1, arg, arg2)
        return self

    def derived(self):
        return kops.Derived(self.ops, kops.Preflight(), [])


def replay(workload, revision, preset="amd64", **settings):
    text = {k: str(v) for k, v in settings.items()}
    cfg = machine_config(preset, text)
    return replaying.replay(workload.derived(), "w", "0" * 64, REVS[revision], cfg, text)[0]


def numa2_after(workload, **settings):
    """An amd64-numa2 machine (no boot threads) on D38852 after the workload's ops."""
    cfg = machine_config(
        "amd64-numa2", {"boot_threads": "0", **{k: str(v) for k, v in settings.items()}}
    )
    m = Machine(cfg, REVS["D38852"].policy)
    assert run(m, workload.derived()).status == "ok"
    return m


def threads(w, pid, n, cpu=0, first_tid=100000):
    """A process on `cpu` that creates n threads."""
    w.op(kops.PROC_NEW, pid, first_tid, cpu)
    for i in range(1, n + 1):
        w.op(kops.THREAD_NEW, pid, first_tid + i, cpu)
    return [first_tid + i for i in range(1, n + 1)]


def fill(w, pid, pages, cpu=0, first_page=0x10000):
    for page in range(first_page, first_page + pages):
        w.op(kops.FAULT, pid, 0, cpu, arg=page, dt=0)


# --------------------------------------------------------------------------- NUMA basics


def test_numa2_preset_splits_cpus_and_memory_evenly():
    cfg = machine_config("amd64-numa2", {})
    assert cfg.domains == 2 and cfg.ncpu == 16
    assert [cfg.domain_of_cpu(c) for c in (0, 7, 8, 15)] == [0, 0, 1, 1]
    m = Machine(cfg, REVS["D38852"].policy)
    assert [d.npages for d in m.phys.domains] == [cfg.mem_per_domain_mb * 256] * 2


def test_cpu_domains_map_and_its_errors():
    cfg = machine_config("amd64-numa2", {"cpu_domains": ",".join("01" * 8)})
    assert [cfg.domain_of_cpu(c) for c in range(4)] == [0, 1, 0, 1]
    from kreplay.errors import UsageError

    with pytest.raises(UsageError, match="cpu_domains"):
        machine_config("amd64-numa2", {"cpu_domains": "0,1"})
    with pytest.raises(UsageError, match="cpu_domains"):
        machine_config("amd64-numa2", {"cpu_domains": ",".join("2" * 16)})
    with pytest.raises(UsageError, match="user_policy"):
        machine_config("amd64-numa2", {"user_policy": "interleave"})


def test_stacks_come_from_the_cpus_domain_and_record_the_page_domain():
    w = Workload()
    tids0 = threads(w, 10, 5, cpu=0)
    tids1 = threads(w, 11, 5, cpu=15, first_tid=200000)
    m = numa2_after(w)
    for pid, tids, domain in ((10, tids0, 0), (11, tids1, 1)):
        for tid in tids:
            stack = m.procs[pid].threads[tid]
            frame = m.kstack.object.pages[stack.pindex]
            assert stack.domain == m.phys.domain_of(frame) == stack.kva_domain == domain


def test_user_memory_falls_back_to_the_other_domain_and_counts_remote_pages():
    w = Workload()
    w.op(kops.PROC_NEW, 10, 100001, 0)
    fill(w, 10, 4096 + 2000)  # more than the 16 MiB of domain 0
    result = replay(w, "D38852", "amd64-numa2", mem_per_domain_mb=16, boot_threads=0)
    assert result.outcome.status == "ok"
    # vm_pageout_init_domain() for 4096 pages: free_min = 4 + (4096 - 1024) / 200 = 19,
    # free_reserved = 32 + (2 * 16 + 2) + 4096 / 768 = 71, so vmd_free_min = 90; the
    # iterator's first pass skips a domain below it, so faults go remote once domain 0 has
    # 89 free pages. Domain 0 also holds the first bucket of kstack_cache: on amd64-numa2
    # one stack (uma_zone_set_maxcache: 128 / 50 / 2), 4 pages. Local: 4096 - 4 - 89.
    assert result.metrics["numa.remote_pages"] == 4096 + 2000 - (4096 - 4 - 89)


def test_round_robin_user_policy_spreads_pages():
    w = Workload()
    w.op(kops.PROC_NEW, 10, 100001, 0)
    for page in range(0, 64 * NPAGES, NPAGES):  # one page per 2 MiB window
        w.op(kops.FAULT, 10, 0, 0, arg=page, dt=0)
    ft = replay(w, "D38852", "amd64-numa2", boot_threads=0)
    rr = replay(w, "D38852", "amd64-numa2", boot_threads=0, user_policy="round-robin")
    assert ft.metrics["numa.remote_pages"] == 0
    assert rr.metrics["numa.remote_pages"] == 32


def test_an_existing_reservation_wins_over_the_requested_domain():
    reservs = Reservations(PhysMemory(2, 1 << 14))
    obj = VMObject("kstack", 1 << 29)
    first = reservs.alloc_page(obj, 100, 0)
    second = reservs.alloc_page(obj, 101, 1)
    assert reservs.phys.domain_of(first) == reservs.phys.domain_of(second) == 0
    assert second == first + 1


def test_zombies_go_to_the_list_of_the_domain_that_created_the_thread():
    w = Workload()
    tids = threads(w, 10, 3, cpu=0)
    for tid in tids:
        w.op(kops.THREAD_EXIT, 10, tid, 15)  # exits on a cpu of domain 1
    m = numa2_after(w)
    assert [len(z) for z in m.zombies] == [3, 0]
    m.apply(kops.THREAD_NEW, 10, 999999, 15, w.tick + 1, 0, 0)  # a domain-1 alloc: no reap
    assert [len(z) for z in m.zombies] == [3, 0]
    m.apply(kops.THREAD_NEW, 10, 999998, 0, w.tick + 2, 0, 0)  # a domain-0 alloc reaps
    assert [len(z) for z in m.zombies] == [0, 0]


# --------------------------------------------------------------------------- pressure


def test_pressure_reclaims_partially_populated_reservations():
    """Two processes touch every other page of their windows, so every reservation is
    half full; when the domain runs out, order-0 allocation breaks the LRU ones."""
    w = Workload()
    w.op(kops.PROC_NEW, 10, 100001, 0).op(kops.PROC_NEW, 11, 110001, 0)
    for page in range(0, 8 * 4096, 2):
        w.op(kops.FAULT, 10 + (page // NPAGES) % 2, 0, 0, arg=page, dt=0)
    result = replay(w, "D38852", mem_per_domain_mb=32, boot_threads=0)
    assert result.outcome.status == "hang"  # 16384 pages asked of 8192
    ok = Workload()
    ok.op(kops.PROC_NEW, 10, 100001, 0).op(kops.PROC_NEW, 11, 110001, 0)
    for page in range(0, 2 * 4096 + 2048, 2):
        ok.op(kops.FAULT, 10 + (page // NPAGES) % 2, 0, 0, arg=page, dt=0)
    fine = replay(ok, "D38852", mem_per_domain_mb=32, boot_threads=0)
    assert fine.outcome.status == "ok"
    assert fine.metrics["reserv.reclaimed"] > 0
    assert fine.metrics["reserv.broken"] == fine.metrics["reserv.reclaimed"]


# vm_pageout_init_domain() for a 16 MiB domain (4096 pages): vmd_free_min 90,
# vmd_free_reserved 71 (test_user_memory_falls_back... above has the arithmetic).
FREE_MIN_16M, FREE_RESERVED_16M = 90, 71


def test_first_touch_keeps_a_domain_at_its_minimum_while_another_has_memory():
    """vm_domainset_iter_page_init(): `if (vm_page_count_min_domain(*domain))` the
    iterator moves on: a domain below vmd_free_min is skipped in the first pass."""
    w = Workload()
    w.op(kops.PROC_NEW, 10, 100001, 0)
    fill(w, 10, 4096 + 1000)
    m = numa2_after(w, mem_per_domain_mb=16)
    assert m.reservs.free_count(0) == FREE_MIN_16M - 1
    assert m.reservs.free_count(1) > 2000


def test_with_every_domain_below_its_minimum_the_second_pass_takes_them_to_their_reserve():
    """The iterator's second pass (`if (di->di_minskip) { di->di_minskip = false; ...`)
    takes domains below their minimum, each as far as _vm_domain_allocate() lets a
    VM_ALLOC_NORMAL request go: vmd_free_reserved pages stay free."""
    local = 4096 - 4 - (FREE_MIN_16M - 1)  # domain 0 until its minimum (after one kstack)
    remote = 4096 - (FREE_MIN_16M - 1)  # domain 1 likewise
    w = Workload()
    w.op(kops.PROC_NEW, 10, 100001, 0)
    fill(w, 10, local + remote + 10)
    m = numa2_after(w, mem_per_domain_mb=16, boot_threads=0)
    assert m.reservs.free_count(0) == FREE_MIN_16M - 1 - 10  # the second pass: domain 0 first
    assert m.reservs.free_count(1) == FREE_MIN_16M - 1
    w = Workload()
    w.op(kops.PROC_NEW, 10, 100001, 0)
    fill(w, 10, local + remote + 2 * (FREE_MIN_16M - 1 - FREE_RESERVED_16M) + 1)
    hung = replay(w, "D38852", "amd64-numa2", mem_per_domain_mb=16, boot_threads=0)
    assert hung.outcome.status == "hang" and "vm_waitpfault" in hung.outcome.message


# --------------------------------------------------------------------------- the review's bugs


def test_r_guard1_leaves_pindex_holes_with_two_guard_pages():
    w = Workload()
    threads(w, 10, 50)
    for rev, holes in (("D38852-r-guard1", True), ("D38852", False), ("later", False)):
        result = replay(w, rev, guard_pages=2)
        assert result.outcome.status == "ok"
        assert (result.metrics["kstack.pindex_holes"] > 0) == holes, rev
    same = replay(w, "D38852-r-guard1")  # with one guard page the formulas agree
    assert same.metrics == replay(w, "D38852").metrics


def test_r_waitok_hangs_when_kstack_kva_runs_out_where_d38852_fails_with_enomem():
    w = Workload()
    threads(w, 10, 700)
    hung = replay(w, "D38852-r-waitok", kva_limit_mb=20)
    assert hung.outcome.status == "hang"
    assert "vmem_xalloc" in hung.outcome.message and hung.outcome.op == "THREAD_NEW"
    for rev in ("D38852", "later"):
        result = replay(w, rev, kva_limit_mb=20)
        assert result.outcome.status == "ok"
        assert result.metrics["kstack.enomem"] > 0
    assert replay(w, "D38852-r-waitok").outcome.status == "ok"  # the 2 TiB map: no sleep


def test_r_waitok_hangs_on_i386s_small_kernel_map():
    w = Workload()
    threads(w, 10, 3000)
    assert replay(w, "D38852-r-waitok", "i386", kva_limit_mb=32).outcome.status == "hang"
    result = replay(w, "D38852", "i386", kva_limit_mb=32)
    assert result.outcome.status == "ok" and result.metrics["kstack.enomem"] > 0


def numa_migrate():
    """Domain 0's memory filled by a process on cpu 0, then 200 threads created on cpu 0
    (stacks must come from domain 1), exiting, and reaped on domain 0 so that the stacks
    overflow domain 1's cache and are freed."""
    w = Workload()
    w.op(kops.PROC_NEW, 10, 100001, 0)
    fill(w, 10, 4096 + 512)
    tids = threads(w, 20, 200, cpu=0, first_tid=200000)
    for tid in tids:
        w.op(kops.THREAD_EXIT, 20, tid, 12)
    w.op(kops.THREAD_NEW, 20, 300000, 0)  # reaps domain 0's zombies
    return w


def test_r_wrongarena_panics_in_vmem_xfree_where_d38852_does_not():
    w = numa_migrate()
    bad = replay(w, "D38852-r-wrongarena", "amd64-numa2", mem_per_domain_mb=16)
    assert bad.outcome.status == "panic"
    assert bad.outcome.message.startswith("Assertion bt != NULL failed")
    assert bad.outcome.op == "THREAD_NEW"
    for rev in ("D38852", "later"):
        good = replay(w, rev, "amd64-numa2", mem_per_domain_mb=16)
        assert good.outcome.status == "ok", rev
        assert good.metrics["numa.kstack_domain_mismatch"] == 0
        assert good.metrics["kstack.created"] > 200


def test_r_wrongarena_is_harmless_on_one_domain():
    w = numa_migrate()
    assert replay(w, "D38852-r-wrongarena").metrics == replay(w, "D38852").metrics


def test_r_unaligned_panics_when_a_whole_chunk_is_released():
    w = Workload()
    tids = threads(w, 10, 1200)
    w.op(kops.PROC_EXIT, 10, tids[-1]).op(kops.REAP, 10, 0, arg=1)
    bad = replay(w, "D38852-r-unaligned")
    assert bad.outcome.status == "panic"
    assert "bt != NULL" in bad.outcome.message and "kernel arena domain 0" in bad.outcome.message
    assert bad.outcome.op == "REAP"
    for rev in ("D38852", "later", "ffff"):
        assert replay(w, rev).outcome.status == "ok", rev


def swapin_on_a_depleted_domain():
    """Process 10 on cpu 0 falls silent; process 11 fills domain 0 (the swapper takes
    10's stacks out), then domain 1; process 10 wakes up."""
    w = Workload()
    threads(w, 10, 8, cpu=0)
    w.op(kops.SLEEP, 10)
    w.op(kops.PROC_NEW, 11, 110001, 1, dt=5000)
    fill(w, 11, 4096 + 1024, cpu=1)
    w.op(kops.WAKE, 10, 0, 0, dt=1000)
    w.op(kops.THREAD_NEW, 10, 100100, 0)
    return w


def test_d38852_swapin_hangs_on_a_depleted_domain_where_d45163_falls_back():
    """7a79d066 sys/vm/vm_swapout.c vm_thread_swapin():
    `while (vm_thread_stack_back(kaddr, ma, pages, oom_alloc, td->td_kstack_domain) == ENOMEM);`
    spins on the stack's own domain; the review's D45163 falls back (DOMAINSET_PREF)."""
    w = swapin_on_a_depleted_domain()
    hung = replay(w, "D38852", "amd64-numa2", mem_per_domain_mb=16)
    assert hung.outcome.status == "hang"
    assert "vm_thread_swapin" in hung.outcome.message and hung.outcome.op == "WAKE"
    result = replay(w, "D45163", "amd64-numa2", mem_per_domain_mb=16)
    assert result.outcome.status == "ok"
    assert result.metrics["kstack.swapouts"] >= 9
    assert result.metrics["kstack.swapins"] == result.metrics["kstack.swapouts"]
    assert result.metrics["numa.kstack_domain_mismatch"] > 0  # swapped in remote


def test_without_a_swap_device_swapping_out_frees_nothing():
    """vm_thread_swapout() unwires the pages to PQ_LAUNDRY; only laundering to swap frees
    them, so on a machine without swap the stacks stay resident and the swapper relieves
    no pressure: the fault that needed the memory still has none."""
    w = swapin_on_a_depleted_domain()
    with_swap = replay(w, "D45163", "amd64-numa2", mem_per_domain_mb=16)
    without = replay(w, "D45163", "amd64-numa2", mem_per_domain_mb=16, swap_mb=0)
    assert with_swap.metrics["numa.kstack_domain_mismatch"] > 0  # laundered, back remote
    assert without.metrics["kstack.swapins"] == without.metrics["kstack.swapouts"] > 0
    assert without.metrics["numa.kstack_domain_mismatch"] == 0  # never left their pages
    # the pages the laundering freed in domain 0 served process 11's faults locally
    assert without.metrics["numa.remote_pages"] > with_swap.metrics["numa.remote_pages"]


def test_no_swapping_without_pressure_or_with_swap_idle_s_0():
    w = swapin_on_a_depleted_domain()
    roomy = replay(w, "D38852", "amd64-numa2")
    assert roomy.outcome.status == "ok" and roomy.metrics["kstack.swapouts"] == 0
    off = replay(w, "D38852", "amd64-numa2", mem_per_domain_mb=16, swap_idle_s=0)
    assert off.outcome.status == "ok" and off.metrics["kstack.swapouts"] == 0


# --------------------------------------------------------------------------- properties


def conservation(m: Machine) -> list[tuple[int, int, int]]:
    """Per domain: (free + reserved blocks + pages outside reservations, its pages)."""
    out = []
    objects = [m.kstack.object, *m.user.values()]
    for d, dom in enumerate(m.phys.domains):
        reserved = sum(NPAGES for rv in m.reservs.by_block.values() if rv.domain == d)
        loose = sum(
            1
            for obj in objects
            for frame in obj.pages.values()
            if m.phys.domain_of(frame) == d and m.reservs.reserv_of(frame) is None
        )
        out.append((d, dom.free_pages + reserved + loose, dom.npages))
    return out


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                kops.PROC_NEW,
                kops.THREAD_NEW,
                kops.THREAD_NEW,
                kops.THREAD_EXIT,
                kops.PROC_EXIT,
                kops.REAP,
                kops.FAULT,
                kops.FAULT,
                kops.FAULT,
                kops.UNMAP,
                kops.SLEEP,
                kops.WAKE,
            ]
        ),  # fmt: skip
        st.integers(1, 6),  # pid
        st.integers(0, 5),  # tid
        st.integers(0, 15),  # cpu
        st.integers(0, 3000),  # ms since the previous op
        st.integers(0, 4 * NPAGES),  # page
    ),
    max_size=150,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, rev=st.sampled_from(["D38852", "later"]))
def test_d38852_and_later_never_panic_or_hang_and_conserve_pages_per_domain(ops, rev):
    cfg = machine_config("amd64-numa2", {"mem_per_domain_mb": "64", "boot_threads": "20"})
    m = Machine(cfg, REVS[rev].policy)
    m.boot([])
    tick = 0
    for kind, pid, tid, cpu, dt, page in ops:
        tick += dt
        arg, arg2 = (
            (page, 0) if kind == kops.FAULT else (page, 64) if kind == kops.UNMAP else (0, 0)
        )
        m.apply(kind, pid, 1000 + pid * 10 + tid, cpu, tick, arg, arg2)
        for d, accounted, total in conservation(m):
            assert accounted == total, f"domain {d}"
    m.kstack.drain_cache()
    for d, accounted, total in conservation(m):
        assert accounted == total, f"domain {d} after draining the kstack cache"


# --------------------------------------------------------------------------- the later history


def test_d46115_never_swaps_a_kernel_stack_out():
    """e24a6552 (D46115) and the series before it removed the swapper's kstack path: under
    the pressure that swaps D45163's sleeping threads out, D46115's stay resident."""
    w = swapin_on_a_depleted_domain()
    swapping = replay(w, "D45163", "amd64-numa2", mem_per_domain_mb=16)
    resident = replay(w, "D46115", "amd64-numa2", mem_per_domain_mb=16)
    assert swapping.metrics["kstack.swapouts"] > 0
    assert resident.metrics["kstack.swapouts"] == resident.metrics["kstack.swapins"] == 0
    assert resident.outcome.status == "ok"


def test_later_takes_no_kstack_page_from_a_reservation():
    """CHERI-Alliance/freebsd-src 50b6cd94 kstack_cache_init():
    `kstack_object = vm_object_allocate(OBJT_PHYS, ...)`, and vm_object_allocate() gives
    OBJT_PHYS `flags = OBJ_UNMANAGED`: vm_object_reserv() is false."""
    w = Workload()
    threads(w, 10, 600)
    d38852, later = replay(w, "D38852"), replay(w, "later")
    assert d38852.metrics["kstack.reserv_full"] > 0
    assert later.metrics["kstack.reserv_full"] == later.metrics["kstack.reserv_partial"] == 0


def test_later_digs_below_the_reserve_where_d38852_stops():
    """Its pages are malloc2vm_flags(M_NOWAIT) = VM_ALLOC_SYSTEM | VM_ALLOC_NOWAIT:
    _vm_domain_allocate() lets them go down to vmd_interrupt_free_min (2), where
    D38852's VM_ALLOC_NORMAL ones stop at vmd_free_reserved (71 pages on 16 MiB)."""
    w = Workload()
    w.op(kops.PROC_NEW, 10, 100001, 0)
    fill(w, 10, 4096 - 4 - 71 - 10)  # leaves 81 free: room for 2 NORMAL stacks, 19 SYSTEM
    threads(w, 20, 30, first_tid=200000)
    d38852 = replay(w, "D38852", mem_per_domain_mb=16, boot_threads=0)
    later = replay(w, "later", mem_per_domain_mb=16, boot_threads=0)
    assert d38852.metrics["kstack.enomem"] > later.metrics["kstack.enomem"] > 0
    assert later.metrics["kstack.created"] - d38852.metrics["kstack.created"] >= 15
