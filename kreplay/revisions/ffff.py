"""The review's FFFF proposal, written on the public API alone (kreplay.api), as a kernel
developer's plugin would be: the proof that the API suffices for a new KVA geometry.

The reviewers of D38852 asked for chunks whose pindices start on a reservation boundary,
so that every reservation of a chunk fills ("FFFF" instead of D38852's "EFFFB", spec
§6.1): 512 slots per import, aligned to 512 * (K + G) pages, no bump needed.
"""

from kreplay.api import NPAGES, KstackArenaKva


class FfffKva(KstackArenaKva):
    """512 slots per kstack arena import, aligned to 512 * (K + G) pages."""

    def geometry(self, slot: int) -> tuple[int, int, int]:
        return NPAGES * slot, NPAGES * slot, NPAGES * slot


POLICIES = {"kva": {"ffff": FfffKva}}
