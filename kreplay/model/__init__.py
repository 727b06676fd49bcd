"""The reference allocator model: Python, no I/O, deterministic; `make` compiles it.

Layers mirror the kernel's files (spec/freebsd-kstack.md):

    vmem.py    sys/kern/subr_vmem.c   KVA arenas (BESTFIT, import/release, coalescing)
    phys.py    sys/vm/vm_phys.c       per-domain buddy allocator of physical pages
    reserv.py  sys/vm/vm_reserv.c     2 MiB reservations, partpop queue, counters
    kstack.py  sys/vm/vm_glue.c       kstack KVA, pindex, backing, dispose, kstack_cache

Addresses are in pages: KVA relative to VM_MIN_KERNEL_ADDRESS, physical addresses as page
frame numbers. A kernel assertion or panic on a modelled path raises KernelPanic; a path
that would sleep forever raises KernelHang. The replay turns both into outcomes.

The layers are compiled with mypyc when `make` installs the project; native.py picks the
compiled build or the source, which give the same results (docs/performance.md).
"""

from kreplay.model import native


class KernelPanic(Exception):
    """The modelled kernel would panic; the message is the kernel's."""


class KernelHang(Exception):
    """The modelled kernel would sleep forever (no wakeup can come from the trace)."""


native.use_build()
