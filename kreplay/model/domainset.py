"""Domain selection policies, after sys/vm/vm_domainset.c (spec/freebsd-kstack.md §1.7,
§2.6, §3 item 1).

An allocation under a domainset policy tries domains in an order: DOMAINSET_PREF(d) asks
domain d first and then the others; DOMAINSET_RR() starts at a rotating cursor. Every
caller here walks the whole order and stops at the first domain that can serve it, which
is what vm_domainset_iter_page()/vm_domainset_iter_policy() do once their first pass (which
skips domains below their free minimum, a threshold kreplay does not model) is over.

Simplification: after the preferred domain the kernel continues round-robin from a
per-thread or per-object cursor; kreplay continues with d + 1, d + 2, ... (mod n), a
deterministic order that is the kernel's whenever there are two domains.
"""


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
