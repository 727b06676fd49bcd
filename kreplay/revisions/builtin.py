"""The built-in revisions: the history of the D38852 series, each a composition of the
policy objects of model/policy.py, with the source it follows (docs/model.md says, per
revision, what is taken from source and what is reconstructed)."""

from kreplay.model.policy import (
    SWAPIN_FALLBACK,
    SWAPIN_ORIGIN,
    Guard1Pindex,
    IterPolicy,
    KernelArenaKva,
    KstackArenaKva,
    KstackPolicy,
    LaundrySwap,
    LinearPindex,
    NoSwap,
    PagesPolicy,
    WaitFail,
)
from kreplay.revisions.ffff import FfffKva
from kreplay.revisions.revision import Revision

REVIEW = "https://reviews.freebsd.org/D38852"
# The review's intermediate revisions are not in any public copy: each is D38852 with the
# one change the review thread reports as its bug, reconstructed on the committed code path.
RECONSTRUCTED = "[reconstructed: D38852 with the reported bug put back]"

BUILTIN = (
    Revision(
        "base",
        "Before D38852: kstack KVA from kernel_arena (kva_alloc), linear pindex "
        "atop(ks - VM_MIN_KERNEL_ADDRESS), guard pages leave pindex holes; page allocation "
        "waits (VM_ALLOC_WAITFAIL loop) rather than failing.",
        "sys/vm/vm_glue.c before 7a79d066 (spec/freebsd-kstack.md §1)",
        KstackPolicy(
            kva=KernelArenaKva(),
            pindex=LinearPindex(),
            backing=PagesPolicy(),
            exhaustion=WaitFail(),
            swap=LaundrySwap(SWAPIN_FALLBACK),  # through td_domain.dr_policy (spec §1.7)
        ),
    ),
    Revision(
        "D38852",
        "As committed (7a79d066): per-domain kstack arenas importing 10 MiB chunks aligned "
        "to 2 MiB and bumped to a slot boundary (511 stacks per chunk), vm_kstack_pindex() "
        "skipping guard pages; allocation fails with ENOMEM instead of waiting. Swap-in "
        "retries the stack's own domain (td_kstack_domain) until it has pages: on a "
        "depleted domain the thread never runs again.",
        "freebsd-src 7a79d066 sys/vm/vm_glue.c, sys/vm/vm_swapout.c vm_thread_swapin "
        f"(spec/freebsd-kstack.md §2); {REVIEW}",
        KstackPolicy(swap=LaundrySwap(SWAPIN_ORIGIN)),
    ),
    Revision(
        "D45163",
        'D38852 with the swap-in fix the review thread reports after the commit ("we end '
        "up looping here forever ... a depleted domain\"): a stack's laundered pages come "
        "back from td_kstack_domain first and then from the other domains "
        "(DOMAINSET_PREF), and td_kstack_domain follows the pages.",
        "https://reviews.freebsd.org/D45163 [reconstructed: the commit is in no public copy "
        "read; the behaviour is the review thread's; the rest is 7a79d066]",
        KstackPolicy(swap=LaundrySwap(SWAPIN_FALLBACK, follow=True)),
    ),
    Revision(
        "D46115",
        "D45163 without kernel-stack swapping: the July 2024 series removed "
        'vm_thread_swapout/_swapin and the swapper ("multiple bugs in that area, '
        'especially in relation to NUMA support"); stacks stay resident while their '
        "threads sleep.",
        'the series "Remove kernel stack swapping support" (Mark Johnston, reviewed by '
        "alc, imp, kib; 2024-07-29); part 4 is freebsd-src e24a65528388 (D46115), the "
        "part that removed vm_swapout.c's stack code is in no public copy read",
        KstackPolicy(swap=NoSwap()),
    ),
    Revision(
        "later",
        "The newest upstream tree read (2025): kstack_object and kstack_alt_object are "
        "OBJT_PHYS, which vm_object_allocate() makes OBJ_UNMANAGED only, so "
        "vm_object_reserv() is false and kstack pages never come from reservations; "
        "vm_thread_stack_create iterates ds directly and asks malloc2vm_flags(M_NOWAIT) "
        "pages (VM_ALLOC_SYSTEM | VM_ALLOC_NOWAIT, down to vmd_interrupt_free_min); "
        "no kernel-stack swapping; struct vm_page is 88 bytes.",
        "CHERI-Alliance/freebsd-src 50b6cd94 sys/vm/vm_glue.c (kstack_cache_init, "
        "vm_thread_stack_create, vm_thread_stack_back), sys/vm/vm_object.c b6a20c90 "
        "(vm_object_allocate); the commits between D46115 and this tree are in no public "
        "copy read, so their changes are one revision here",
        KstackPolicy(
            kva=KstackArenaKva(vm_page_bytes=88),
            backing=IterPolicy(),
            swap=NoSwap(),
            reservations=False,
        ),
    ),
    Revision(
        "ffff",
        "The review's proposal: 512 stacks per chunk and chunks aligned to "
        "512 * (K + G) pages, so that every reservation of a chunk fills (FFFF).",
        f"{REVIEW} (reviewers' 'FFFF' comment; spec/freebsd-kstack.md §6.1)",
        KstackPolicy(kva=FfffKva()),
    ),
    Revision(
        "D38852-r-guard1",
        "The review's early pindex formula pindex - (pindex / (K + G) + 1): one page "
        "subtracted per slot whatever G is, so with more than one guard page "
        "(--set guard_pages=2) the pindex holes come back.",
        f"{REVIEW}: early draft, bnovkov/freebsd-src@03ef46ba vm_glue.c "
        f"(spec/freebsd-kstack.md §0 N5) {RECONSTRUCTED}",
        KstackPolicy(pindex=Guard1Pindex()),
    ),
    Revision(
        "D38852-r-waitok",
        "kstack KVA allocated with M_WAITOK: when the kstack arena cannot grow (i386's "
        "small kernel map, or --set kva_limit_mb=N) thread creation sleeps in "
        "vmem_xalloc until a stack is freed, and a replay that cannot free one hangs; "
        "the committed code passes M_NOWAIT and fails with ENOMEM.",
        f"{REVIEW}: the hang when KVA ran out {RECONSTRUCTED}",
        KstackPolicy(kva=KstackArenaKva(wait=True)),
    ),
    Revision(
        "D38852-r-wrongarena",
        "KVA taken from the preferred domain's kstack arena, pages left to the domain "
        "policy (which falls back to other domains), and the KVA freed to the arena of "
        "the domain of the stack's first page: when the two differ, vmem_xfree finds no "
        "busy tag and panics. The committed code takes KVA and pages from the same domain "
        "at each step of the policy.",
        f"{REVIEW}: the panic on a NUMA machine {RECONSTRUCTED}",
        KstackPolicy(backing=PagesPolicy()),
    ),
    Revision(
        "D38852-r-unaligned",
        "A wholly free chunk released to the parent arena at its bumped (slot-aligned) "
        "address instead of the address the parent gave: vmem_xfree of the parent "
        "panics on the first release.",
        f"{REVIEW}: chunks released unaligned {RECONSTRUCTED}",
        KstackPolicy(kva=KstackArenaKva(release_unbump=False)),
    ),
)
