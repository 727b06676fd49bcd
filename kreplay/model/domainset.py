"""Domain selection policies, after sys/vm/vm_domainset.c (spec/freebsd-kstack.md §1.7,
§2.6, §3 item 1).

An allocation under a domainset policy tries domains in an order: DOMAINSET_PREF(d) asks
domain d first and then the others; DOMAINSET_RR() starts at a rotating cursor. The
iterators (vm_domainset_iter_page(), vm_domainset_iter_policy()) make two passes: the
first skips the domains below their free minimum (vm_page_count_min_domain()), the second
takes every domain; minskip() gives that order.

Simplification: after the preferred domain the kernel continues round-robin from a
per-thread or per-object cursor; kreplay continues with d + 1, d + 2, ... (mod n), a
deterministic order that is the kernel's whenever there are two domains.
"""

from collections.abc import Callable


def minskip(order: list[int], below_min: Callable[[int], bool]) -> list[int]:
    """The iterators' two passes over `order`: the domains not below their free minimum,
    then those that are (the first pass's domains, tried again in the kernel's second
    pass, would fail again and are left out)."""
    if len(order) == 1:
        return order
    first = [d for d in order if not below_min(d)]
    return first + [d for d in order if d not in first]


def pref(domain: int, ndomains: int) -> list[int]:
    """DOMAINSET_PREF(domain): the preferred domain, then the others."""
    return [(domain + i) % ndomains for i in range(ndomains)]


class RoundRobin:
    """DOMAINSET_RR(): each walk starts one domain further than the last."""

    def __init__(self, ndomains: int):
        self.ndomains, self.cursor = ndomains, 0

    def order(self) -> list[int]:
        first, self.cursor = self.cursor, (self.cursor + 1) % self.ndomains
        return pref(first, self.ndomains)
