"""Physical memory: a buddy allocator per NUMA domain, after sys/vm/vm_phys.c.

Each domain owns a contiguous range of page frames, split at boot into naturally aligned
blocks of the largest order (VM_NFREEORDER - 1 = 12, 16 MiB). vm_phys_alloc_pages() takes
a block of the smallest sufficient order and splits it, returning the upper halves to the
free lists; vm_phys_free_pages() merges a block with its free buddy as far as it can.

Simplification: vm_phys takes the head of a free list, whose order depends on the history
of frees; kreplay always takes the lowest-addressed free block of the order, a
deterministic choice that matches a freshly booted machine's lists.
"""

import heapq
from typing import Final

MAX_ORDER: Final = 12


class Domain:
    """Free lists of one domain: order -> heap of block start frames (lazy deletion)."""

    def __init__(self, index: int, first: int, npages: int):
        self.index, self.first, self.npages = index, first, npages
        self.free_pages = 0
        self._heaps: list[list[int]] = [[] for _ in range(MAX_ORDER + 1)]
        self._free: list[set[int]] = [set() for _ in range(MAX_ORDER + 1)]
        frame, end = first, first + npages
        while frame < end:
            order = MAX_ORDER
            while order and (frame % (1 << order) or frame + (1 << order) > end):
                order -= 1
            self._add(frame, order)
            frame += 1 << order

    def _add(self, frame: int, order: int) -> None:
        self._free[order].add(frame)
        heapq.heappush(self._heaps[order], frame)
        self.free_pages += 1 << order

    def _take(self, order: int) -> int | None:
        heap, free = self._heaps[order], self._free[order]
        while heap:
            frame = heapq.heappop(heap)
            if frame in free:
                free.remove(frame)
                self.free_pages -= 1 << order
                return frame
        return None

    def _remove(self, frame: int, order: int) -> None:
        self._free[order].remove(frame)  # its heap entry goes stale
        self.free_pages -= 1 << order

    def alloc(self, order: int) -> int | None:
        """vm_phys_alloc_pages(): a free block of 2**order pages, or None."""
        for have in range(order, MAX_ORDER + 1):
            frame = self._take(have)
            if frame is not None:
                while have > order:  # vm_phys_split_pages(): free the upper halves
                    have -= 1
                    self._add(frame + (1 << have), have)
                return frame
        return None

    def free(self, frame: int, order: int) -> None:
        """vm_phys_free_pages(): free a block, merging it with its buddies."""
        while order < MAX_ORDER:
            buddy = frame ^ (1 << order)
            if buddy not in self._free[order] or not self.first <= buddy < self.first + self.npages:
                break
            self._remove(buddy, order)
            frame, order = min(frame, buddy), order + 1
        self._add(frame, order)

    def free_blocks(self) -> dict[int, int]:
        """order -> number of free blocks (for fragmentation metrics)."""
        return {order: len(blocks) for order, blocks in enumerate(self._free) if blocks}


class PhysMemory:
    """All domains; domain d owns frames [d * pages_per_domain, (d + 1) * pages_per_domain)."""

    def __init__(self, domains: int, pages_per_domain: int):
        self.pages_per_domain = pages_per_domain
        self.domains = [Domain(d, d * pages_per_domain, pages_per_domain) for d in range(domains)]

    def domain_of(self, frame: int) -> int:
        """vm_phys_domain()."""
        return frame // self.pages_per_domain

    @property
    def free_pages(self) -> int:
        return sum(d.free_pages for d in self.domains)
