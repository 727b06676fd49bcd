"""The kstack_cache UMA zone (model/uma.py) against sys/vm/uma_core.c (CHERI-Alliance
freebsd-src 2c440bb0): uma_zone_set_maxcache()'s sizing, the alloc and free paths, and
DRAIN_CPU."""

import pytest

from kreplay.model.kstack import Stack
from kreplay.model.uma import BUCKET_MAX, Zone, maxcache


@pytest.mark.parametrize(
    ("nitems", "ncpus", "ndomains", "sizing"),
    [
        # bpcpu = 2, nb = 16, bsize = 128 / 16 / 2 = 4, uz_bucket_max = 128 - 16 * 4
        (128, 8, 1, (4, 64)),
        # NUMA: bpcpu = 3, bpdom = 1, nb = 50, bsize = 128 / 50 / 2 = 1, 128 - 50
        (128, 16, 2, (1, 78)),
        # bsize 0 but nitems / nb > 0: 1
        (128, 64, 1, (1, 0)),
        (256, 256, 1, (0, 256)),  # nitems / nb == 0: no buckets at all
        (100_000, 8, 1, (BUCKET_MAX, 100_000 - 16 * BUCKET_MAX)),
    ],
)
def test_uma_zone_set_maxcache(nitems, ncpus, ndomains, sizing):
    assert maxcache(nitems, ncpus, ndomains) == sizing


class Stacks:
    """Stacks numbered in the order they are made (ks), each in domain `domain_of(ks)`."""

    def __init__(self, domain_of=lambda ks: 0):
        self.next, self.released = 0, []
        self.domain_of = lambda stack: domain_of(stack.ks)

    def make(self, count, domain):
        made = [Stack(ks, ks, domain) for ks in range(self.next, self.next + count)]
        self.next += count
        return made

    def release(self, items):
        self.released.append([s.ks for s in items])


def zone(stacks, nitems=128, cpus=(0,) * 8, ndomains=1):
    return Zone(nitems, list(cpus), ndomains, stacks.make, stacks.release, stacks.domain_of)


def test_a_full_bucket_over_the_domain_limit_is_released_whole():
    """zone_put_bucket(): kept while uzd_nitems + ub_cnt < uz_bucket_max (64), so at
    most 15 buckets of 4 = 60 items; the 16th goes to bucket_free -> kstack_release."""
    stacks = Stacks()
    z = zone(stacks)
    items = [z.alloc(0)[0] for _ in range(80)]
    for item in items:
        z.free(0, item)
    assert z.nitems == [60]
    kept = 8 + 60  # alloc and free bucket of cpu 0, and the zone
    assert sum(len(r) for r in stacks.released) == 80 - kept
    assert all(len(r) == 4 for r in stacks.released)


def test_an_item_of_another_domain_goes_to_the_cross_bucket_and_to_its_domain():
    stacks = Stacks(domain_of=lambda ks: ks % 2)
    z = zone(stacks, cpus=(0,) * 8 + (1,) * 8, ndomains=2)
    assert (z.bucket_size, z.bucket_max) == (1, 78)
    for ks in (1, 3, 5):  # domain 1's stacks freed on cpu 0 (domain 0)
        z.free(0, Stack(ks, ks, 1))
    assert [s.ks for s in z.cpus[0].cross.items] == [5] and z.nitems == [0, 2]
    # FIRSTTOUCH: cpu 0 fetches only from domain 0's cache, so it imports
    got, made = z.alloc(0)
    assert made and got is not None and got.ks == 0


def test_drain_cpu_releases_everything_and_shrinks_the_bucket_size():
    stacks = Stacks()
    z = zone(stacks)
    items = [z.alloc(cpu)[0] for cpu in range(8) for _ in range(3)]
    for i, item in enumerate(items):
        z.free(i % 8, item)
    z.drain()
    assert z.items() == [] and sorted(i for r in stacks.released for i in r) == list(range(32))
    # cache_shrink: (1 + 4) / 2 = 2, then two bucket_cache_reclaim()s: 2 -> 1
    assert z.bucket_size == 1
