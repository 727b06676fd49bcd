"""The reference allocator model: pure Python, no I/O, deterministic.

Layers mirror the kernel's files (spec/freebsd-kstack.md):

    vmem.py    sys/kern/subr_vmem.c   KVA arenas (BESTFIT, import/release, coalescing)
    phys.py    sys/vm/vm_phys.c       per-domain buddy allocator of physical pages
    reserv.py  sys/vm/vm_reserv.c     2 MiB reservations, partpop queue, counters
    kstack.py  sys/vm/vm_glue.c       kstack KVA, pindex, backing, dispose, kstack_cache

Addresses are in pages: KVA relative to VM_MIN_KERNEL_ADDRESS, physical addresses as page
frame numbers. A kernel assertion or panic on a modelled path raises KernelPanic; a path
that would sleep forever raises KernelHang. The replay turns both into outcomes.
"""


class KernelPanic(Exception):
    """The modelled kernel would panic; the message is the kernel's."""


class KernelHang(Exception):
    """The modelled kernel would sleep forever (no wakeup can come from the trace)."""
