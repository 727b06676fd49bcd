"""An example plugin (docs/plugins.md): a pindex idea written on kreplay's public API.

The idea to check: give every kernel stack a power-of-two window of kstack_object
pindices, so that with KASAN's 6-page stacks (amd64-kasan) no stack's pages straddle an
8-page group. The cost to measure is the space between stacks: D38852 packs them.
"""

from kreplay.api import KstackPindex


class Pow2Pindex(KstackPindex):
    """Stack n of the KVA (one slot of K + G pages each) gets pindices from n * 2**k on,
    2**k the smallest power of two not below K. The guard-page KASSERT of D38852 stays."""

    def pindex(self, ks: int, slot: int, guard: int) -> int:
        if guard and ks % slot < guard:
            return super().pindex(ks, slot, guard)  # the kernel's assertion, unchanged
        window = 1 << (slot - guard - 1).bit_length()  # K pages, rounded up to 2**k
        return (ks // slot) * window + ks % slot - guard


POLICIES = {"pindex": {"pow2": Pow2Pindex}}
