"""vmem arenas, after sys/kern/subr_vmem.c (spec/freebsd-kstack.md §2.5, §5.1).

An arena is a list of boundary tags in segment order: span tags (imported or static
ranges), and inside each span its free and busy segments by address. Free segments are
also on size-class free lists (exact lists for 1..32 quanta, power-of-two classes above),
LIFO like LIST_INSERT_HEAD. Quantum is one page; sizes and addresses are in pages.

Simplifications: no quantum caches (the kstack and kernel arenas have none), no
M_NEXTFIT, no nocross/phase (callers here never pass them), no boundary-tag reserve.
"""

from collections.abc import Callable
from typing import Final

from kreplay.model import KernelHang, KernelPanic

SPAN, SPAN_STATIC, FREE, BUSY = "span", "span-static", "free", "busy"

M_BESTFIT, M_FIRSTFIT = "bestfit", "firstfit"

_OPTORDER: Final = 5
_OPTVALUE: Final = 1 << _OPTORDER  # 32 exact lists
_MAXORDER: Final = _OPTVALUE - 1 + 64 - _OPTORDER


def size2order(size: int) -> int:
    """SIZE2ORDER(): the free list of a segment of `size` quanta."""
    if size <= _OPTVALUE:
        return size - 1
    return size.bit_length() + (_OPTVALUE - _OPTORDER - 2)


def order2size(order: int) -> int:
    """ORDER2SIZE(): the smallest size on list `order`."""
    if order < _OPTVALUE:
        return order + 1
    return 1 << (order - (_OPTVALUE - _OPTORDER - 1))


class BTag:
    """A boundary tag (struct vmem_btag): one segment or span of the arena."""

    __slots__ = ("type", "start", "size", "prev", "next")

    def __init__(self, type_: str, start: int, size: int):
        self.type, self.start, self.size = type_, start, size
        self.prev: BTag | None = None
        self.next: BTag | None = None

    @property
    def end(self) -> int:
        return self.start + self.size


ImportFn = Callable[[int, int], int | None]  # (size, align) -> address or None
ReleaseFn = Callable[[int, int], None]  # (address, size)


class Arena:
    """struct vmem: one KVA arena."""

    def __init__(
        self,
        name: str,
        *,
        import_fn: ImportFn | None = None,
        release_fn: ReleaseFn | None = None,
        import_quantum: int = 1,
    ):
        self.name = name
        self.import_fn, self.release_fn = import_fn, release_fn
        self.import_quantum = import_quantum
        self.size = 0  # quanta in spans (vm_size)
        self.inuse = 0  # quanta allocated (vm_inuse)
        self._head: BTag | None = None
        self._tail: BTag | None = None
        self._freelists: list[dict[BTag, None]] = [{} for _ in range(_MAXORDER)]
        self._busy: dict[int, BTag] = {}

    # ------------------------------------------------------------------ seglist

    def _insseg_after(self, bt: BTag, prev: BTag | None) -> None:
        if prev is None:  # insert at the head
            bt.prev, bt.next = None, self._head
            if self._head is not None:
                self._head.prev = bt
            self._head = bt
            if self._tail is None:
                self._tail = bt
            return
        bt.prev, bt.next = prev, prev.next
        if prev.next is not None:
            prev.next.prev = bt
        else:
            self._tail = bt
        prev.next = bt

    def _remseg(self, bt: BTag) -> None:
        if bt.prev is not None:
            bt.prev.next = bt.next
        else:
            self._head = bt.next
        if bt.next is not None:
            bt.next.prev = bt.prev
        else:
            self._tail = bt.prev

    def _insfree(self, bt: BTag) -> None:
        self._freelists[size2order(bt.size)][bt] = None  # newest = list head

    def _remfree(self, bt: BTag) -> None:
        del self._freelists[size2order(bt.size)][bt]

    # ------------------------------------------------------------------ spans

    def add(self, addr: int, size: int, type_: str = SPAN_STATIC) -> None:
        """vmem_add1(): a new span. Without a release function, a span contiguous with
        the last segment extends it instead (it will never be given back)."""
        last = self._tail
        if (
            self.release_fn is None
            and last is not None
            and last.end == addr
            and (last.type in (FREE, BUSY))
        ):
            if last.type == FREE:
                self._remfree(last)
                last.size += size
                self._insfree(last)
            else:
                free = BTag(FREE, addr, size)
                self._insseg_after(free, self._tail)
                self._insfree(free)
        else:
            self._insseg_after(BTag(type_, addr, size), self._tail)
            free = BTag(FREE, addr, size)
            self._insseg_after(free, self._tail)
            self._insfree(free)
        self.size += size

    def _import(self, size: int, align: int) -> bool:
        """vmem_import(): ask the parent for more space."""
        if self.import_fn is None:
            return False
        if align != 1:
            size = align * 2 + size
        size = -(-size // self.import_quantum) * self.import_quantum
        addr = self.import_fn(size, align)
        if addr is None:
            return False
        self.add(addr, size, SPAN)
        return True

    # ------------------------------------------------------------------ alloc / free

    def xalloc(
        self, size: int, align: int = 1, *, strat: str = M_BESTFIT, wait: bool = False
    ) -> int | None:
        """vmem_xalloc(): the lowest aligned address of the first segment that fits, on
        the lists from the request's size class up; import when none fits. None when
        the arena is exhausted (M_NOWAIT); KernelHang when it would sleep (M_WAITOK)."""
        while True:
            addr = self._scan(size, align, strat)
            if addr is not None:
                self.inuse += size
                return addr
            if strat == M_FIRSTFIT:
                strat = M_BESTFIT
                continue
            if self._import(size, align):
                continue
            if wait:
                raise KernelHang(
                    f"vmem_xalloc: {self.name}: no space for {size} pages and nothing will "
                    "free any (sleeping in vmem_xalloc)"
                )
            return None

    def _scan(self, size: int, align: int, strat: str) -> int | None:
        first = size2order(size)
        if strat == M_FIRSTFIT and order2size(first) != size:
            first += 1
        for freelist in self._freelists[first:]:
            for bt in reversed(freelist):
                if bt.size >= size:
                    start = _fit(bt, size, align)
                    if start is not None:
                        self._clip(bt, start, size)
                        return start
                if strat == M_FIRSTFIT:
                    break
        return None

    def _clip(self, bt: BTag, start: int, size: int) -> None:
        """vmem_clip(): carve [start, start + size) out of free segment bt."""
        self._remfree(bt)
        if bt.start < start:
            before = BTag(FREE, bt.start, start - bt.start)
            bt.start, bt.size = start, bt.size - before.size
            self._insfree(before)
            self._insseg_after(before, bt.prev)
        if bt.size != size:
            busy = BTag(BUSY, bt.start, size)
            bt.start, bt.size = bt.start + size, bt.size - size
            self._insfree(bt)
            self._insseg_after(busy, bt.prev)
            bt = busy
        else:
            bt.type = BUSY
        self._busy[bt.start] = bt

    def xfree(self, addr: int, size: int) -> None:
        """vmem_xfree(): free a busy segment, coalesce with free neighbours, and give a
        wholly free imported span back to the parent."""
        bt = self._busy.pop(addr, None)
        if bt is None:
            raise KernelPanic(
                "Assertion bt != NULL failed at ../../../kern/subr_vmem.c:vmem_xfree"
                f" (arena {self.name!r}, addr {addr:#x} pages)"
            )
        if bt.size != size:
            raise KernelPanic(
                f"vmem_xfree: {self.name}: freeing {size} pages of a {bt.size}-page segment"
            )
        self.inuse -= size
        bt.type = FREE
        for neighbour in (bt.next, bt.prev):
            if neighbour is not None and neighbour.type == FREE:
                self._remfree(neighbour)
                self._remseg(neighbour)
                bt.start = min(bt.start, neighbour.start)
                bt.size += neighbour.size
        if not self._try_release(bt):
            self._insfree(bt)

    def _try_release(self, bt: BTag) -> bool:
        """vmem_try_release(): the free segment is its whole span."""
        if self.release_fn is None:
            return False
        span = bt.prev
        if span is None or span.type != SPAN or span.size != bt.size:
            return False
        self._remseg(bt)
        self._remseg(span)
        self.size -= span.size
        self.release_fn(span.start, span.size)
        return True

    # ------------------------------------------------------------------ inspection

    def segments(self) -> list[tuple[str, int, int]]:
        """(type, start, size) of every boundary tag, in segment order."""
        out, bt = [], self._head
        while bt is not None:
            out.append((bt.type, bt.start, bt.size))
            bt = bt.next
        return out

    def spans(self) -> list[tuple[int, int]]:
        return [
            (start, size) for type_, start, size in self.segments() if type_ in (SPAN, SPAN_STATIC)
        ]


def _fit(bt: BTag, size: int, align: int) -> int | None:
    """vmem_fit() without phase, nocross or address limits."""
    start = -(-bt.start // align) * align
    return start if start + size <= bt.end else None
