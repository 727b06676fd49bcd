"""The kstack_cache UMA zone, after sys/vm/uma_core.c (CHERI-Alliance/freebsd-src
2c440bb0; the kstack_cache zone of sys/vm/vm_glue.c: uma_zcache_create(...,
kstack_import, kstack_release, UMA_ZONE_FIRSTTOUCH) and uma_zone_set_maxcache()).

Sizing, uma_zone_set_maxcache(zone, nitems): every CPU has at least two buckets, one more
(and one per domain) for cross-domain frees on a NUMA machine;
nb = bpcpu * ncpus + bpdom * ndomains, the bucket size is nitems / nb / 2 (at least 1,
at most BUCKET_MAX) and what is left, nitems - nb * bsize, is each domain's full-bucket
limit uz_bucket_max. amd64 (8 cpus, 1 domain, 128 items): buckets of 4, at most 60 stacks
in the zone; amd64-numa2 (16 cpus, 2 domains): buckets of 1, at most 77 per domain.

uma_zalloc: the CPU's alloc bucket (LIFO), else its free bucket swapped in, else a full
bucket of the CPU's domain's cache (the most recently put), else a bucket imported fresh
(kstack_import of a bucket's worth), else one item imported. uma_zfree: an item of another
domain goes to the CPU's cross bucket; else into the alloc bucket (swapped with the free
bucket when full); a full bucket goes to its domain's cache, or, over uz_bucket_max, is
released (kstack_release: every stack of it disposed). DRAIN_CPU (the UMA reclaim worker
under severe memory pressure) releases every cached item and shrinks the bucket size
(cache_shrink, bucket_cache_reclaim).

Simplifications: no lock contention, so the bucket size never grows back (the kernel
grows it on contention); no 20-second trim of long-idle buckets (uma_timeout); no
bucketdisable under vm_page_count_min() beyond what a failed import gives; on more than
two domains a cross bucket's items go to their domains' caches directly.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from kreplay.model.kstack import Stack

BUCKET_HEADER: Final = 16  # sizeof(struct uma_bucket) on amd64: link, cnt, entries, seq
BUCKET_SIZES: Final = (2, 4, 8, 16) + tuple(
    (8 * n - BUCKET_HEADER) // 8 for n in (32, 64, 128, 256)
)
BUCKET_MAX: Final = BUCKET_SIZES[-1]  # BUCKET_SIZE(256)


class Bucket:
    """struct uma_bucket: up to `entries` items, popped from the end."""

    def __init__(self, entries: int):
        self.entries = entries
        self.items: list[Stack] = []

    def full(self) -> bool:
        return len(self.items) >= self.entries


def _empty() -> Bucket:
    return Bucket(0)  # no bucket: full, so a free goes to cache_free()


class PerCpu:
    """struct uma_cache: a CPU's alloc, free and cross-domain buckets."""

    def __init__(self) -> None:
        self.alloc, self.free, self.cross = _empty(), _empty(), _empty()


def maxcache(nitems: int, ncpus: int, ndomains: int) -> tuple[int, int]:
    """uma_zone_set_maxcache(): (bucket size, per-domain full-bucket limit)."""
    bpcpu, bpdom = (3, 1) if ndomains > 1 else (2, 0)
    nb = bpcpu * ncpus + bpdom * ndomains
    bsize = nitems // nb // 2
    if bsize > BUCKET_MAX:
        bsize = BUCKET_MAX
    elif bsize == 0 and nitems // nb > 0:
        bsize = 1
    return bsize, nitems - nb * bsize


class Zone:
    """A UMA cache zone of kernel stacks: per-CPU buckets and per-domain bucket caches in
    front of `import_fn` (count, domain) -> stacks made and `release_fn` (stacks)."""

    def __init__(
        self,
        nitems: int,
        cpu_domains: list[int],
        ndomains: int,
        import_fn: Callable[[int, int], list["Stack"]],
        release_fn: Callable[[list["Stack"]], None],
        item_domain: Callable[["Stack"], int],
    ):
        self.cpu_domains, self.ndomains = cpu_domains, ndomains
        self.import_fn, self.release_fn, self.item_domain = import_fn, release_fn, item_domain
        self.bucket_size, self.bucket_max = maxcache(nitems, len(cpu_domains), ndomains)
        self.bucket_size_max = self.bucket_size
        self.bucket_size_min = min(1, self.bucket_size)  # bucket_select(16 KiB) = 1
        self.cpus = [PerCpu() for _ in cpu_domains]
        self.domains: list[list[Bucket]] = [[] for _ in range(ndomains)]  # head: the end
        self.nitems = [0] * ndomains  # uzd_nitems
        self.numa = ndomains > 1

    # ------------------------------------------------------------------ alloc

    def alloc(self, cpu: int) -> "tuple[Stack | None, bool]":
        """uma_zalloc(): (the item, True if it was made for this allocation)."""
        cache = self.cpus[cpu]
        while True:
            if cache.alloc.items:
                return cache.alloc.items.pop(), False
            if cache.free.items:  # cache_alloc(): the free bucket has items: swap
                cache.alloc, cache.free = cache.free, cache.alloc
                continue
            domain = self.cpu_domains[cpu]
            bucket = self._fetch(domain)
            if bucket is not None:
                cache.alloc = bucket
                return cache.alloc.items.pop(), False
            if self.bucket_size == 0:
                break
            made = self.import_fn(self._entries(), domain)  # zone_alloc_bucket()
            if not made:
                break
            bucket = Bucket(self._entries())
            bucket.items = made
            cache.alloc = bucket
            return cache.alloc.items.pop(), True  # ub_bucket[--cnt]: the last made
        made = self.import_fn(1, self.cpu_domains[cpu])  # zone_alloc_item()
        return (made[0], True) if made else (None, True)

    def _entries(self) -> int:
        """bucket_alloc(): ub_entries = min(the bucket zone's size, uz_bucket_size_max)."""
        ubz = next(n for n in BUCKET_SIZES if n >= self.bucket_size)
        return min(ubz, self.bucket_size_max)

    def _fetch(self, domain: int) -> Bucket | None:
        """zone_fetch_bucket(): the most recently put full bucket of the domain."""
        if not self.domains[domain]:
            return None
        bucket = self.domains[domain].pop()
        self.nitems[domain] -= len(bucket.items)
        return bucket

    # ------------------------------------------------------------------ free

    def free(self, cpu: int, item: "Stack") -> None:
        """uma_zfree(): into the alloc bucket (LIFO), spilling into the free bucket; an
        item of another domain into the cross bucket (FIRSTTOUCH)."""
        cache = self.cpus[cpu]
        itemdomain = self.item_domain(item) if self.numa else 0
        cross = self.numa and itemdomain != self.cpu_domains[cpu]
        while True:
            if cross:
                bucket = cache.cross
            else:
                if cache.alloc.full() and not cache.free.full():
                    cache.alloc, cache.free = cache.free, cache.alloc
                bucket = cache.alloc
            if not bucket.full():
                bucket.items.append(item)
                return
            if not self._cache_free(cache, cpu, itemdomain, cross):
                self.release_fn([item])  # zone_free_item()
                return

    def _cache_free(self, cache: PerCpu, cpu: int, itemdomain: int, cross: bool) -> bool:
        """cache_free(): the full free (or cross) bucket to its zone domain, an empty one
        in its place. False when the zone has no buckets."""
        if self.bucket_size == 0:
            return False
        bucket = cache.cross if cross else cache.free
        if bucket.items:
            self._free_bucket(bucket, itemdomain if cross else self.cpu_domains[cpu])
        fresh = Bucket(self._entries())
        if cross:
            cache.cross = fresh
        else:
            cache.free = fresh
        return True

    def _free_bucket(self, bucket: Bucket, domain: int) -> None:
        """zone_free_bucket(): to the domain's cache; with more than two domains a cross
        bucket's items go to their own domains (zone_free_cross)."""
        if self.ndomains > 2:
            by_domain: dict[int, list[Stack]] = {}
            for item in bucket.items:
                by_domain.setdefault(self.item_domain(item), []).append(item)
            for d in sorted(by_domain):
                part = Bucket(bucket.entries)
                part.items = by_domain[d]
                self._put_bucket(part, d)
            return
        self._put_bucket(bucket, domain)

    def _put_bucket(self, bucket: Bucket, domain: int) -> None:
        """zone_put_bucket(): kept while the domain holds fewer than uz_bucket_max items,
        else released (bucket_free -> bucket_drain -> kstack_release)."""
        if self.nitems[domain] + len(bucket.items) < self.bucket_max:
            self.nitems[domain] += len(bucket.items)
            self.domains[domain].append(bucket)
            return
        self.release_fn(bucket.items)

    # ------------------------------------------------------------------ reclaim

    def drain(self) -> None:
        """uma_reclaim(UMA_RECLAIM_DRAIN_CPU): the zone's buckets released, the CPUs'
        buckets moved to the zone (cache_shrink halves the bucket size towards its minimum)
        and released too; each zone reclaim takes one off the bucket size."""
        self._drain_domains()
        self.bucket_size = (self.bucket_size_min + self.bucket_size) // 2
        for cpu, cache in enumerate(self.cpus):
            for bucket, cross in ((cache.alloc, False), (cache.free, False), (cache.cross, True)):
                if bucket.items:
                    domain = self.item_domain(bucket.items[0]) if cross else self.cpu_domains[cpu]
                    self._free_bucket(bucket, domain)
            cache.alloc, cache.free, cache.cross = _empty(), _empty(), _empty()
        self._drain_domains()

    def _drain_domains(self) -> None:
        """bucket_cache_reclaim(drain): every domain's buckets released, the most recently
        put first."""
        if self.bucket_size > self.bucket_size_min:
            self.bucket_size -= 1
        for d in range(self.ndomains):
            while self.domains[d]:
                bucket = self.domains[d].pop()
                self.nitems[d] -= len(bucket.items)
                self.release_fn(bucket.items)

    def items(self) -> list["Stack"]:
        """Every cached item: the zone's domains, then each CPU's buckets (a fixed order)."""
        out = [s for domain in self.domains for b in domain for s in b.items]
        for cache in self.cpus:
            out += cache.alloc.items + cache.free.items + cache.cross.items
        return out
