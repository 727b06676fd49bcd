"""Model invariants after every op of random op sequences (issue 14).

A Machine (kreplay.model.machine) is booted and driven through its public apply(), as
replay.run() drives it, with random sequences of lifecycle ops: valid ones (a shadow of the
process table keeps them what lifecycle.py can emit: pids reused after their reap, zombies
reaped, sleepers woken, forks seen only through the parent) and arbitrary ones (exits of
unknown threads, reaps of live processes, ops on unknown pids, huge unmaps). Machines are
amd64 and amd64-numa2 with little memory (16 or 32 MiB a domain, often mostly taken by boot
threads' stacks) and swapping on, so that reservations are broken, stacks fail with ENOMEM
and idle processes are swapped out. Some revisions panic or hang by design: KernelPanic or
KernelHang ends a sequence (a panic of the final kstack cache drain too); any other
exception fails the test.

After every op, the helpers below recompute from the model's state (not from its counters)
that:
- the buddy free lists are sane (aligned blocks inside their domain, maximally merged,
  reachable through the heaps, free_pages their sum);
- no physical frame is handed out twice: free blocks, reservation blocks and the resident
  pages outside reservations (kstack_object's and every process's) are disjoint, and every
  resident page inside a reservation block is that reservation's page at its own index;
  per domain they add up to the domain's pages;
- the reservations, their partpop queues and vmd_free_count's reservation part agree
  (popcnt, popmap, queue membership, in_reservations);
- every vmem arena's boundary tags tile its spans, its free lists and busy hash hold
  exactly its free and busy segments, and its counters are their sums;
- no KVA page is handed out twice: stack slots are disjoint, each kstack arena's busy
  segments are exactly the slots of the stacks whose KVA it gave, its spans are the
  unreleased chunks and sit in busy segments of its domain's kernel arena;
- stacks: created - disposed == live + cached, no stack both live and cached (or cached
  twice, or cached while swapped out), every stack at its revision's pindex with its
  pages resident unless written to swap, kstack_object's pages exactly those;
- swapping: the laundry holds exactly the swapped-out stacks not yet written to swap, a
  written (laundered) stack has no page resident, and free swap + written pages == swap_mb;
- user_pages equals the user pages resident in the process objects;
- (valid sequences) every live stack is held by a boot thread, a thread, an exited process,
  a zombie or a parked proc item, and swapped stacks are those of swapped-out processes;
- (valid sequences, at the end) once every process has exited and been reaped, every
  domain reaped and the kstack cache drained, only the boot threads' stacks and the parked
  proc items' stacks remain, in kstack_object's pages and reservations only.

Examples per test: KREPLAY_FUZZ_EXAMPLES (default 6 per machine x revision case, about 30 s
of CPU for the file; `make fuzz` can set thousands). The examples are derandomized
(the same ones on every run), so a failure reproduces with the same command, and hypothesis
prints the @reproduce_failure blob of the case. `pytest --hypothesis-show-statistics` shows
what the sequences reached (reservations broken, swap-outs, ENOMEM, panics, hangs).

The bugs these tests found have minimal cases at the end of the file, each a regression
test for its fix. The any-sequence test checks the allocator invariants after every op
and, once everything exits and is reaped, that nothing is left behind (an invalid
sequence, like a valid one, ends with only the boot threads' and parked proc items'
stacks).
"""

import os
from bisect import bisect_left

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kreplay import ops as kops
from kreplay.model import KernelHang, KernelPanic
from kreplay.model.machine import Machine, machine_config
from kreplay.model.phys import MAX_ORDER, PhysMemory
from kreplay.model.reserv import NPAGES, ORDER, Reservations, VMObject
from kreplay.model.vmem import BUSY, FREE, SPAN, SPAN_STATIC, size2order
from kreplay.revisions import lookup, registry

EXAMPLES = int(os.environ.get("KREPLAY_FUZZ_EXAMPLES") or 6)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

REVS = registry()
# Every case runs these; a revision renamed or removed fails its cases (lookup) loudly.
REVISIONS = ["base", "D38852", "ffff", "D38852-r-wrongarena", "D38852-r-unaligned"]
# ... and these where the registry has them (the series' later revisions come and go):
# D45163 swaps in from any domain, later-phys has no kstack reservations, D46115 no swap.
REVISIONS += [rev for rev in ("D45163", "later-phys", "D46115", "later") if rev in REVS]
PRESETS = ["amd64", "amd64-numa2"]
CASES = [(preset, rev) for preset in PRESETS for rev in REVISIONS]
NCPU = 16  # cpus drawn from 0..NCPU-1 (amd64 has 8: the model takes cpu % ncpu)
PIDS = (1, 2, 3, 4, 5)  # a small pool, so pids come back after their reap

# ---------------------------------------------------------------------------- machines


def machine_settings():
    """Small memory for pressure, swapping on (2 s idle at hz = 1000). boot_threads "N%":
    enough boot threads for their stacks to take N% of the machine's memory, so that a
    few ops run it out."""
    return st.fixed_dictionaries(
        {
            "mem_per_domain_mb": st.sampled_from(["16", "16", "16", "32"]),
            "boot_threads": st.sampled_from(["0", "3", "200", "50%", "90%", "90%", "97%"]),
            "kstack_cache_size": st.sampled_from(["0", "1", "4"]),
            "kstack_pages": st.sampled_from(["4", "16", "32"]),
            "user_policy": st.sampled_from(["first-touch", "round-robin"]),
            "swap_idle_s": st.just("2"),
            "swap_mb": st.sampled_from(["2048", "2048", "1", "0"]),  # 1 MiB: 8 stacks of 32
            "hz": st.just("1000"),
        }
    )


def new_machine(preset: str, rev: str, sets: dict[str, str]) -> Machine:
    sets = dict(sets)
    if sets.get("boot_threads", "").endswith("%"):
        cfg = machine_config(preset, {**sets, "boot_threads": "0"})
        pages = cfg.domains * cfg.mem_per_domain_mb * 256 * int(sets["boot_threads"][:-1])
        sets["boot_threads"] = str(pages // 100 // cfg.kstack_pages)
    return Machine(machine_config(preset, sets), lookup(REVS, rev).policy)


def cpu_of_domain(m: Machine, domain: int) -> int:
    return next(cpu for cpu in range(m.cfg.ncpu) if m.cfg.domain_of_cpu(cpu) == domain)


# ---------------------------------------------------------------------------- invariants
# Each helper returns a list of problems (empty: the invariant holds), computed from the
# model's state itself.


def free_blocks(m: Machine) -> list[list[tuple[int, int]]]:
    """Per domain, the free buddy blocks as (first frame, pages)."""
    return [
        [(frame, 1 << order) for order, frames in enumerate(dom._free) for frame in frames]
        for dom in m.phys.domains
    ]


def phys_problems(m: Machine) -> list[str]:
    out = []
    for d, dom in enumerate(m.phys.domains):
        end = dom.first + dom.npages
        total = 0
        for order, frames in enumerate(dom._free):
            size = 1 << order
            heap = set(dom._heaps[order])
            for frame in frames:
                total += size
                if frame % size or not dom.first <= frame or frame + size > end:
                    out.append(f"domain {d}: bad free block {frame:#x} order {order}")
                if frame not in heap:
                    out.append(f"domain {d}: free block {frame:#x} order {order} not in heap")
                buddy = frame ^ size
                if order < MAX_ORDER and dom.first <= buddy < end and buddy in frames:
                    out.append(f"domain {d}: free buddies {frame:#x}/{buddy:#x} not merged")
        if total != dom.free_pages:
            out.append(f"domain {d}: free_pages {dom.free_pages} != free blocks {total}")
    return out


def objects(m: Machine) -> list:
    return [m.kstack.object, *m.user.values()]


def frame_problems(m: Machine) -> list[str]:
    """No frame twice: free blocks, reservation blocks and the resident pages outside
    reservations are disjoint, every resident page inside a reservation block is that
    reservation's page at its index; per domain they add up to the domain's pages."""
    out = []
    phys, by_block = m.phys, m.reservs.by_block
    per_domain = phys.pages_per_domain
    ndomains = len(phys.domains)
    intervals = []  # (first frame, pages, what): free blocks and reservations
    for d, blocks in enumerate(free_blocks(m)):
        intervals += [(frame, size, f"free block of domain {d}") for frame, size in blocks]
    intervals += [(rv.frame, NPAGES, f"reservation {rv.frame:#x}") for rv in by_block.values()]
    loose: list[int] = []  # frames of resident pages outside reservations
    in_reserv: dict[int, int] = dict.fromkeys(by_block, 0)  # block -> its resident pages
    for obj in objects(m):
        if obj.resident != sorted(obj.pages):
            out.append(f"{obj.name}: resident list out of step with its pages")
        pages = obj.pages
        loose += [f for f in pages.values() if f >> ORDER not in by_block]
        inside = [(p, f) for p, f in pages.items() if f >> ORDER in by_block]
        for pindex, frame in inside:
            rv = by_block[frame >> ORDER]
            index = frame - rv.frame
            in_reserv[frame >> ORDER] += 1
            if rv.object is not obj or pindex - rv.pindex != index or not rv.popmap[index]:
                out.append(
                    f"{obj.name}[{pindex:#x}] = frame {frame:#x} inside reservation "
                    f"{rv.frame:#x} of {rv.object.name if rv.object else None} at "
                    f"pindex {rv.pindex:#x} (index {index}, popmap {rv.popmap[index]})"
                )
    for block, rv in by_block.items():
        if in_reserv[block] != rv.popcnt:
            out.append(f"reservation {rv.frame:#x}: popcnt {rv.popcnt}, {in_reserv[block]} pages")
    loose.sort()
    for a, b in zip(loose, loose[1:], strict=False):
        if a == b:
            out.append(f"frame {a:#x} resident twice")
    if loose and (loose[0] < 0 or loose[-1] >= per_domain * ndomains):
        out.append(f"resident frames {loose[0]:#x}..{loose[-1]:#x} outside physical memory")
    intervals.sort()
    counted = [
        bisect_left(loose, (d + 1) * per_domain) - bisect_left(loose, d * per_domain)
        for d in range(ndomains)
    ]
    prev_end, prev_what = 0, "start"
    for first, size, what in intervals:
        if first < prev_end:
            out.append(f"frame {first:#x}: {what} overlaps {prev_what}")
        held = bisect_left(loose, first + size) - bisect_left(loose, first)
        if held:
            out.append(f"frame {first:#x}: {what} holds {held} resident pages")
        if first < 0 or first + size > per_domain * ndomains:
            out.append(f"frame {first:#x}: {what} outside physical memory")
        elif first // per_domain != (first + size - 1) // per_domain:
            out.append(f"frame {first:#x}: {what} straddles two domains")
        else:
            counted[first // per_domain] += size
        if first + size > prev_end:
            prev_end, prev_what = first + size, what
    for d, n in enumerate(counted):
        if n != per_domain:
            out.append(f"domain {d}: free + reserved + loose pages = {n}, not {per_domain}")
    return out


def reserv_problems(m: Machine) -> list[str]:
    out = []
    rs = m.reservs
    for key, rv in rs.by_block.items():
        where = f"reservation {rv.frame:#x}"
        if key != rv.frame >> ORDER or rv.frame % NPAGES:
            out.append(f"{where}: under block {key:#x}, frame not 2 MiB aligned")
        if rv.object is None:
            out.append(f"{where}: active without an object")
            continue
        if rv.domain != m.phys.domain_of(rv.frame):
            out.append(f"{where}: domain {rv.domain}, frame in {m.phys.domain_of(rv.frame)}")
        if (rv.pindex + rv.object.pg_color) % NPAGES:
            out.append(f"{where}: pindex {rv.pindex:#x} not at a window start")
        if rv.popcnt != sum(rv.popmap) or not 0 < rv.popcnt <= NPAGES:
            out.append(f"{where}: popcnt {rv.popcnt}, popmap holds {sum(rv.popmap)}")
        if rv.inpartpopq != (rv in rs.partpop[rv.domain]):
            out.append(f"{where}: inpartpopq {rv.inpartpopq} but queued {not rv.inpartpopq}")
    for d in range(len(m.phys.domains)):  # vmd_free_count's reservation part
        unused = sum(NPAGES - rv.popcnt for rv in rs.by_block.values() if rv.domain == d)
        if rs.in_reservations(d) != unused:
            out.append(
                f"domain {d}: in_reservations {rs.in_reservations(d)}, "
                f"reservations leave {unused} unused"
            )
    for d, queue in enumerate(rs.partpop):
        for rv in queue:
            if rs.by_block.get(rv.frame >> ORDER) is not rv or rv.domain != d:
                out.append(f"partpopq {d}: reservation {rv.frame:#x} not active in domain {d}")
            elif not rv.inpartpopq or not 0 < rv.popcnt < NPAGES:
                out.append(f"partpopq {d}: reservation {rv.frame:#x} popcnt {rv.popcnt}")
    return out


def arena_problems(arena) -> list[str]:
    """Boundary tags tile each span; free lists and busy hash match the segments."""
    out = []
    segs = arena.segments()
    name = arena.name
    if segs and segs[0][0] not in (SPAN, SPAN_STATIC):
        out.append(f"{name}: first tag {segs[0]} is not a span")
    expected = None
    prev_type = None
    for type_, start, size in segs:
        if size <= 0:
            out.append(f"{name}: empty tag {(type_, start, size)}")
        if type_ in (SPAN, SPAN_STATIC):
            expected = start
        else:
            if start != expected:
                out.append(f"{name}: {type_} segment at {start:#x}, expected {expected}")
            expected = start + size
            if type_ == FREE and prev_type == FREE:
                out.append(f"{name}: free segments not coalesced at {start:#x}")
        prev_type = type_
    busy = {(s, n) for t, s, n in segs if t == BUSY}
    free = {(s, n) for t, s, n in segs if t == FREE}
    parts = sorted(busy | free)
    for (a, n), (b, _) in zip(parts, parts[1:], strict=False):
        if a + n > b:
            out.append(f"{name}: segments at {a:#x} and {b:#x} overlap")
    if sum(n for _, n in busy) != arena.inuse:
        out.append(f"{name}: inuse {arena.inuse}, busy segments {sum(n for _, n in busy)}")
    if sum(n for _, n in busy | free) != arena.size:
        out.append(f"{name}: size {arena.size}, segments {sum(n for _, n in busy | free)}")
    listed = set()
    for order, freelist in enumerate(arena._freelists):
        for bt in freelist:
            listed.add((bt.start, bt.size))
            if bt.type != FREE or size2order(bt.size) != order:
                out.append(f"{name}: {bt.type} tag {bt.start:#x} on free list {order}")
    if listed != free:
        out.append(f"{name}: free lists {sorted(listed ^ free)[:4]} out of step")
    hashed = {(bt.start, bt.size) for bt in arena._busy.values()}
    if hashed != busy or any(k != bt.start for k, bt in arena._busy.items()):
        out.append(f"{name}: busy hash {sorted(hashed ^ busy)[:4]} out of step")
    return out


def all_stacks(m: Machine) -> list:
    return list(m.kstack.live.values()) + m.kstack.cache


def kva_problems(m: Machine) -> list[str]:
    k = m.kstack
    out = []
    arenas = [k.kernel_arena, *k.domain_arenas, *k.kstack_arenas]
    for arena in arenas:
        out += arena_problems(arena)
    guard, slot = k.cfg.guard_pages, k.cfg.slot
    stacks = sorted(all_stacks(m), key=lambda s: s.ks)
    for a, b in zip(stacks, stacks[1:], strict=False):
        if a.ks + k.cfg.kstack_pages > b.ks - guard:
            out.append(f"kva: stacks at {a.ks:#x} and {b.ks:#x} overlap")
    busy = [{(s, n) for t, s, n in arena.segments() if t == BUSY} for arena in arenas]
    if not k.policy.kva.per_domain():  # kva_alloc: every stack from kernel_arena
        want = {(s.ks - guard, slot) for s in stacks}
        if busy[0] != want:
            out.append(f"kernel arena: busy {sorted(busy[0] ^ want)[:4]} not the stack slots")
        return out
    nd = len(k.kstack_arenas)
    spans_all = []
    for d, arena in enumerate(k.kstack_arenas):
        want = {(s.ks - guard, slot) for s in stacks if s.kva_domain == d}
        have = busy[1 + nd + d]
        if have != want:
            out.append(f"{arena.name}: busy {sorted(have ^ want)[:4]} not its stacks' slots")
        spans = {(s, n) for t, s, n in arena.segments() if t == SPAN}
        chunks = {(c.kva, c.slots * slot) for c in k.chunks if c.domain == d and not c.released}
        if spans != chunks:
            out.append(f"{arena.name}: spans {sorted(spans ^ chunks)[:4]} not its live chunks")
        parent = busy[1 + d]
        for s, n in spans:
            if not any(p <= s and s + n <= p + pn for p, pn in parent):
                out.append(f"{arena.name}: span {s:#x} outside its kernel arena's busy KVA")
        if len(parent) != len(spans):
            out.append(f"{k.domain_arenas[d].name}: {len(parent)} busy, {len(spans)} chunks")
        spans_all += sorted(spans)
    spans_all.sort()
    for (a, n), (b, _) in zip(spans_all, spans_all[1:], strict=False):
        if a + n > b:
            out.append(f"kstack arenas: spans at {a:#x} and {b:#x} overlap")
    imported = sum(arena.size for arena in k.domain_arenas)
    if imported != k.kernel_arena.inuse:
        out.append(f"domain arenas hold {imported} pages, kernel arena gave {k.kernel_arena.inuse}")
    return out


def stack_problems(m: Machine) -> list[str]:
    k = m.kstack
    out = []
    pages = k.cfg.kstack_pages
    cached = k.cache
    if k.stats.created - k.stats.disposed != len(k.live) + len(cached):
        out.append(
            f"kstack: created {k.stats.created} - disposed {k.stats.disposed} != "
            f"{len(k.live)} live + {len(cached)} cached"
        )
    for ks, s in k.live.items():
        if ks != s.ks:
            out.append(f"kstack: live[{ks:#x}] is the stack at {s.ks:#x}")
    for s in cached:
        if s.swapped or s.laundered or s.ks in k.live:
            out.append(f"kstack cache: stack {s.ks:#x} swapped out or also live")
    if len({id(s) for s in cached}) != len(cached):
        out.append("kstack cache: a stack cached twice")
    resident, expected = k.object.pages, 0
    ranges = []
    for s in all_stacks(m):
        if s.pindex != k.pindex(s.ks):
            out.append(f"kstack {s.ks:#x}: pindex {s.pindex:#x}, not {k.pindex(s.ks):#x}")
        ranges.append((s.pindex, s.ks))
        held = sum(1 for i in range(pages) if s.pindex + i in resident)
        if held != (0 if s.laundered else pages) or (s.laundered and not s.swapped):
            out.append(
                f"kstack {s.ks:#x}: {held} of {pages} pages resident, swapped {s.swapped}, "
                f"laundered {s.laundered}"
            )
        expected += 0 if s.laundered else pages
    ranges.sort()
    for (a, ka), (b, kb) in zip(ranges, ranges[1:], strict=False):
        if a + pages > b:
            out.append(f"kstack {ka:#x} and {kb:#x}: pindex ranges overlap")
    if len(resident) != expected:
        out.append(f"kstack_object: {len(resident)} pages, resident stacks hold {expected}")
    return out


def swap_problems(m: Machine) -> list[str]:
    """The laundry holds exactly the swapped-out stacks not written to swap yet; swap
    space is conserved: free swap + laundered stacks' pages == the swap device."""
    k = m.kstack
    out = []
    laundry = k.laundry
    want = [s for s in k.live.values() if s.swapped and not s.laundered]
    if len({id(s) for s in laundry}) != len(laundry) or {id(s) for s in laundry} != {
        id(s) for s in want
    }:
        out.append(f"laundry holds {len(laundry)} stacks, {len(want)} are swapped out unwritten")
    written = sum(k.cfg.kstack_pages for s in k.live.values() if s.laundered)
    if m._swap_room < 0 or m._swap_room + written != m.cfg.swap_mb * 256:
        out.append(f"swap: {m._swap_room} pages free + {written} written != {m.cfg.swap_mb} MiB")
    return out


def user_problems(m: Machine) -> list[str]:
    resident = sum(len(obj.pages) for obj in m.user.values())
    out = []
    if m.user_pages != resident:
        out.append(f"user_pages {m.user_pages}, resident user pages {resident}")
    if m.user_pages_peak < m.user_pages:
        out.append(f"user_pages_peak {m.user_pages_peak} < user_pages {m.user_pages}")
    return out


def held_stacks(m: Machine) -> list:
    """Stacks the machine holds outside the boot threads: threads, exited processes'
    last stacks, zombies, parked proc items."""
    held = [s for p in m.procs.values() for s in [*p.threads.values(), p.kept] if s]
    held += [s for z in m.zombies for s in z if s]
    held += [s for s in m.proc_zone if s]
    return held


def held_problems(m: Machine, boot: dict[int, object]) -> list[str]:
    """Every live stack has an owner, and swapping is a property of whole processes."""
    out = []
    live = m.kstack.live
    held = held_stacks(m)
    boot_ids = {id(s) for s in boot.values()}
    if len({id(s) for s in held} | boot_ids) != len(held) + len(boot_ids):
        out.append("a stack held twice (boot thread, thread, zombie or parked proc)")
    for s in held:
        if live.get(s.ks) is not s:
            out.append(f"held stack {s.ks:#x} is not live")
    for ks, s in boot.items():
        if live.get(ks) is not s:
            out.append(f"boot stack {ks:#x} no longer live")
    owned = {id(s) for s in held} | boot_ids
    leaked = [s.ks for s in live.values() if id(s) not in owned]
    if leaked:
        out.append(f"live stacks nobody holds: {[hex(ks) for ks in leaked[:4]]}")
    swapped_stacks = {id(s) for pid in m.swapped if pid in m.procs for s in threads_of(m, pid)}
    for s in live.values():
        if s.swapped and id(s) not in swapped_stacks:
            out.append(f"stack {s.ks:#x} swapped out, its process is not")
    for pid in m.swapped:
        if pid not in m.procs:
            out.append(f"pid {pid} swapped out but not a process")
        elif not all(s.swapped for s in threads_of(m, pid)):
            out.append(f"pid {pid} swapped out, some of its stacks are not")
    for pid in m.asleep:
        if pid not in m.procs or m.procs[pid].exited:
            out.append(f"pid {pid} asleep but not a running process")
    return out


def threads_of(m: Machine, pid: int) -> list:
    return [s for s in m.procs[pid].threads.values() if s is not None]


def allocator_problems(m: Machine) -> list[str]:
    """What must hold whatever the ops were."""
    return (
        phys_problems(m)
        + frame_problems(m)
        + reserv_problems(m)
        + kva_problems(m)
        + stack_problems(m)
        + swap_problems(m)
        + user_problems(m)
    )


def final_problems(m: Machine, boot: dict[int, object]) -> list[str]:
    """After every process exited and was reaped, every domain reaped and the kstack cache
    drained: only the boot threads' and the parked proc items' stacks remain."""
    out = []
    k = m.kstack
    if m.procs or any(m.zombies) or m.swapped or m.asleep:
        out.append(
            f"left: procs {sorted(m.procs)}, zombies {[len(z) for z in m.zombies]}, "
            f"swapped {sorted(m.swapped)}, asleep {sorted(m.asleep)}"
        )
    if m.user or m.user_pages:
        out.append(f"user objects left: {sorted(m.user)} ({m.user_pages} pages)")
    if k.cache:
        out.append(f"{len(k.cache)} stacks still cached after the drain")
    keep = {id(s) for s in boot.values()} | {id(s) for s in m.proc_zone if s}
    extra = [s.ks for s in k.live.values() if id(s) not in keep]
    if extra or len(k.live) != len(keep):
        out.append(f"live stacks beyond boot and parked ones: {[hex(ks) for ks in extra[:4]]}")
    for rv in m.reservs.by_block.values():
        if rv.object is not k.object:
            out.append(f"reservation {rv.frame:#x} of {rv.object and rv.object.name} left")
    in_use = sum(d.npages - d.free_pages for d in m.phys.domains)
    reserved_unused = sum(NPAGES - rv.popcnt for rv in m.reservs.by_block.values())
    if in_use - reserved_unused != len(k.object.pages):
        out.append(f"{in_use - reserved_unused} frames used, kstack pages {len(k.object.pages)}")
    return out


# ---------------------------------------------------------------------------- driving


class Ended(Exception):
    """The modelled kernel panicked or hung: an allowed end of a sequence."""


def note_coverage(m: Machine, outcome: str) -> None:
    """What the sequence reached (pytest --hypothesis-show-statistics)."""
    k, rs = m.kstack, m.reservs
    event(f"outcome: {outcome}")
    for name, value in (
        ("a reservation broken", rs.broken),
        ("a stack swapped out", k.stats.swapouts),
        ("a stack swapped in", k.stats.swapins),
        ("a stack on swap at the end", sum(s.laundered for s in k.live.values())),
        ("a stack failed with ENOMEM", k.stats.enomem),
        ("a stack freed", k.stats.disposed),
        ("a chunk released", sum(c.released for c in k.chunks)),
        ("a remote user page", m.remote_pages),
        ("a kstack domain mismatch", k.stats.domain_mismatch),
    ):
        if value:
            event(name)


def boot(m: Machine, initial: list[tuple[int, int]], timed: bool) -> dict[int, object]:
    """Boot; the boot threads' stacks are the live stacks no process holds."""
    try:
        m.boot(initial, timed)
    except (KernelPanic, KernelHang) as e:
        raise Ended(str(e)) from e
    held = {id(s) for s in held_stacks(m)}
    return {ks: s for ks, s in m.kstack.live.items() if id(s) not in held}


def step(m: Machine, op: tuple, index: int, check) -> None:
    """Apply one op, then every invariant; a panic or hang ends the sequence."""
    try:
        m.apply(*op)
    except (KernelPanic, KernelHang) as e:
        raise Ended(str(e)) from e
    problems = check(m)
    assert not problems, f"after op {index} {describe(op)}: " + "; ".join(problems[:8])


def describe(op: tuple) -> str:
    kind, pid, tid, cpu, tick, arg, arg2 = op
    return f"{kops.OP_NAMES[kind]}(pid={pid}, tid={tid}, cpu={cpu}, tick={tick}, {arg}, {arg2})"


TICKS = st.sampled_from([0, 0, 0, 1, 2, 40, 700, 2100, 5100])  # ms between two ops (hz 1000)
PAGES = st.one_of(
    st.builds(lambda w, o: w * NPAGES + o, st.integers(0, 24), st.integers(0, NPAGES - 1)),
    st.sampled_from([0, NPAGES - 1, 1 << 35, (1 << 36) - 1, 1 << 36, (1 << 52) - 1]),
)
# Pages one FAULT draw touches, from its first page: one, a few, one in each of 12
# windows (12 reservations: more than a 16 MiB domain has), a run.
FAULT_RUNS = st.sampled_from(
    [(0,), (0,), (0,), tuple(range(8)), tuple(w * NPAGES for w in range(12)), tuple(range(64))]
)
THREAD_RUNS = st.sampled_from([1, 1, 1, 2, 12, 40])  # threads one THREAD_NEW draw creates
NPAGES_UNMAPPED = st.one_of(
    st.integers(0, 2 * NPAGES),
    st.sampled_from([1 << 36, 1 << 52, (1 << 63) - 1]),
)


# ---------------------------------------------------------------------------- valid ops


class Shadow:
    """The process table as lifecycle.py sees it, to draw only ops it could emit."""

    def __init__(self, initial: list[tuple[int, int]]):
        self.alive: dict[int, list[int]] = {}
        for pid, tid in initial:
            self.alive.setdefault(pid, []).append(tid)
        self.asleep: set[int] = set()
        self.zombies: set[int] = set()
        self.next_tid = 100_000

    def tid(self) -> int:
        self.next_tid += 1
        return self.next_tid

    def named(self, pid: int, tid: int) -> int:
        """A fork seen only through the parent holds its thread as 0 until the child's
        own records name it."""
        if tid == 0:
            tids = self.alive[pid]
            tid = tids[tids.index(0)] = self.tid()
        return tid


def draw_valid_op(data, sh: Shadow, tick: int) -> list[tuple]:
    """One draw: an op lifecycle.py could emit next (a run of them for THREAD_NEW and
    FAULT), with the shadow updated."""
    running = [p for p in sh.alive if p not in sh.asleep]
    free = [p for p in PIDS if p not in sh.alive and p not in sh.zombies]
    kinds = []
    if free:
        kinds += [kops.PROC_NEW] * 3
    if running:
        kinds += (
            [kops.THREAD_NEW] * 3
            + [kops.PROC_EXIT] * 2
            + [kops.EXEC, kops.UNMAP]
            + [kops.SLEEP] * 3
        )
        kinds += [kops.FAULT] * 6
        if any(len(sh.alive[p]) > 1 for p in running):
            kinds += [kops.THREAD_EXIT] * 3
    if sh.zombies:
        kinds += [kops.REAP] * 2
    if sh.asleep:
        kinds += [kops.WAKE]
    kind = data.draw(st.sampled_from(kinds))
    cpu = data.draw(st.integers(0, NCPU - 1))
    arg = arg2 = 0
    if kind == kops.THREAD_NEW:
        pid = data.draw(st.sampled_from(running))
        tids = [sh.tid() for _ in range(data.draw(THREAD_RUNS))]
        sh.alive[pid] += tids
        return [(kind, pid, tid, cpu, tick, 0, 0) for tid in tids]
    if kind == kops.FAULT:
        pid = data.draw(st.sampled_from(running))
        first, run = data.draw(PAGES), data.draw(FAULT_RUNS)
        return [(kind, pid, sh.alive[pid][0], cpu, tick, first + i, 0) for i in run]
    if kind == kops.PROC_NEW:
        pid = data.draw(st.sampled_from(free))
        tid = data.draw(st.sampled_from([0, sh.tid()]))
        arg = data.draw(st.sampled_from([0, *sh.alive]))  # the parent
        sh.alive[pid] = [tid]
    elif kind == kops.REAP:
        pid = data.draw(st.sampled_from(sorted(sh.zombies)))
        tid = 0
        sh.zombies.discard(pid)
    elif kind == kops.WAKE:
        pid = data.draw(st.sampled_from(sorted(sh.asleep)))
        tid = sh.alive[pid][0]
        sh.asleep.discard(pid)
    elif kind == kops.THREAD_EXIT:
        pid = data.draw(st.sampled_from([p for p in running if len(sh.alive[p]) > 1]))
        tid = sh.named(pid, data.draw(st.sampled_from(sh.alive[pid])))
        sh.alive[pid].remove(tid)
    else:
        pid = data.draw(st.sampled_from(running))
        tid = data.draw(st.sampled_from(sh.alive[pid]))
        if kind == kops.PROC_EXIT:
            tid = sh.named(pid, tid)
            del sh.alive[pid]
            sh.zombies.add(pid)
        elif kind == kops.EXEC:
            sh.alive[pid] = [sh.named(pid, tid)]
            tid = sh.alive[pid][0]
        elif kind == kops.SLEEP:
            sh.asleep.add(pid)
        elif kind == kops.UNMAP:
            arg, arg2 = data.draw(PAGES), data.draw(NPAGES_UNMAPPED)
    return [(kind, pid, tid, cpu, tick, arg, arg2)]


def cleanup_ops(m: Machine, sh: Shadow, tick: int) -> list[tuple]:
    """Every process exits (waking first) and is reaped; then every domain is reaped (a
    REAP of a pid that does not exist reaps the domain of its cpu)."""
    ops = []
    for pid in sorted(sh.alive):
        if pid in sh.asleep:
            ops.append((kops.WAKE, pid, sh.alive[pid][0], 0, tick, 0, 0))
        ops.append((kops.PROC_EXIT, pid, sh.named(pid, sh.alive[pid][0]), 0, tick, 0, 0))
        sh.zombies.add(pid)
    for pid in sorted(sh.zombies):
        ops.append((kops.REAP, pid, 0, 0, tick, 0, 0))
    for d in range(m.cfg.domains):
        ops.append((kops.REAP, 999_999, 0, cpu_of_domain(m, d), tick, 0, 0))
    return ops


def full_check(boot_stacks):
    return lambda m: allocator_problems(m) + held_problems(m, boot_stacks)


@pytest.mark.parametrize(("preset", "rev"), CASES)
@SETTINGS
@given(
    sets=machine_settings(),
    initial=st.lists(st.tuples(st.sampled_from(PIDS), st.integers(1, 9)), max_size=4, unique=True),
    timed=st.booleans(),
    n=st.integers(1, 40),
    data=st.data(),
)
def test_valid_sequences_keep_every_invariant_after_every_op(
    preset, rev, sets, initial, timed, n, data
):
    m = new_machine(preset, rev, sets)
    sh = Shadow(initial)
    tick, index = 0, 0
    try:
        boot_stacks = boot(m, initial, timed)
        check = full_check(boot_stacks)
        problems = check(m)
        assert not problems, "after boot: " + "; ".join(problems[:8])
        for _ in range(n):
            tick += data.draw(TICKS)
            for op in draw_valid_op(data, sh, tick):
                step(m, op, index, check)
                index += 1
        for op in cleanup_ops(m, sh, tick + 1):
            step(m, op, index, check)
            index += 1
    except Ended as e:
        note_coverage(m, str(e).split(":")[0])
        return
    try:
        m.kstack.drain_cache()  # releases chunks: r-unaligned's panic
    except (KernelPanic, KernelHang) as e:
        note_coverage(m, f"drain: {str(e).split(':')[0]}")
        return
    note_coverage(m, "ok")
    problems = check(m) + final_problems(m, boot_stacks)
    assert not problems, "after the cleanup and the drain: " + "; ".join(problems[:8])


# ---------------------------------------------------------------------------- any ops


def any_op():
    """An op with no regard for the process table: unknown pids and tids, exits of
    threads that never existed, reaps of live processes, huge unmaps."""
    pid = st.sampled_from([*PIDS, 0, 99_999])
    tid = st.sampled_from([0, 1, 2, 3, 100_001, 100_002])
    cpu = st.sampled_from([*range(NCPU), 1023])
    kind = st.sampled_from(
        [
            kops.PROC_NEW,
            kops.THREAD_NEW,
            kops.THREAD_NEW,
            kops.THREAD_EXIT,
            kops.PROC_EXIT,
            kops.REAP,
        ]
        + [kops.EXEC, kops.FAULT, kops.FAULT, kops.FAULT, kops.UNMAP, kops.SLEEP, kops.WAKE]
    )
    return st.tuples(kind, pid, tid, cpu, TICKS, PAGES, NPAGES_UNMAPPED, FAULT_RUNS, THREAD_RUNS)


@pytest.mark.parametrize(("preset", "rev"), CASES)
@SETTINGS
@given(
    sets=machine_settings(),
    initial=st.lists(st.tuples(st.sampled_from(PIDS), st.integers(0, 3)), max_size=4),
    timed=st.booleans(),
    ops=st.lists(any_op(), max_size=50),
)
def test_any_sequence_keeps_the_allocators_consistent_after_every_op(
    preset, rev, sets, initial, timed, ops
):
    m = new_machine(preset, rev, sets)
    tick, index = 0, 0
    try:
        boot_stacks = boot(m, initial, timed)
        for kind, pid, tid, cpu, dt, page, npages, faults, threads in ops:
            tick += dt
            if kind == kops.FAULT:
                batch = [(kind, pid, tid, cpu, tick, page + i, 0) for i in faults]
            elif kind == kops.THREAD_NEW:
                batch = [(kind, pid, tid + i, cpu, tick, 0, 0) for i in range(threads)]
            else:
                arg = page if kind == kops.UNMAP else pid // 2
                batch = [(kind, pid, tid, cpu, tick, arg, npages if kind == kops.UNMAP else 0)]
            for op in batch:
                step(m, op, index, allocator_problems)
                index += 1
        for op in everything_ends(m, tick + 1):
            step(m, op, index, allocator_problems)
            index += 1
    except Ended as e:
        note_coverage(m, str(e).split(":")[0])
        return
    try:
        m.kstack.drain_cache()  # releases chunks: r-unaligned's panic
    except (KernelPanic, KernelHang) as e:
        note_coverage(m, f"drain: {str(e).split(':')[0]}")
        return
    note_coverage(m, "ok")
    problems = (
        allocator_problems(m) + held_problems(m, boot_stacks) + final_problems(m, boot_stacks)
    )
    assert not problems, "after the cleanup and the drain: " + "; ".join(problems[:8])


def everything_ends(m: Machine, tick: int) -> list[tuple]:
    """After any sequence: every process the machine holds, or knows only by its pages (a
    process older than the trace), exits and is reaped; then every domain is reaped."""
    ops = []
    for pid in sorted(set(m.procs) | set(m.user)):
        tid = next(iter(m.procs[pid].threads), 0) if pid in m.procs else 0
        ops.append((kops.PROC_EXIT, pid, tid, 0, tick, 0, 0))
        ops.append((kops.REAP, pid, 0, 0, tick, 0, 0))
    for d in range(m.cfg.domains):
        ops.append((kops.REAP, 999_999, 0, cpu_of_domain(m, d), tick, 0, 0))
    return ops


# ---------------------------------------------------------------------------- bugs found


def test_a_page_daemon_that_frees_pages_of_the_object_keeps_resident_sorted():
    """Found by these tests (model 0.6): Reservations.alloc_page took its insert position
    in obj.resident before the page daemon ran, which may free pages of the same object
    (stacks laundered or drained from kstack_cache: kstack_object's), and put the page
    too far right; VMObject.remove then bisected the unsorted list and deleted other
    pindices, and replays crashed with IndexError and KeyError in reserv.py. Fixed in
    model 0.8 (alloc_page recomputes it); this is the case on the reservation layer
    alone: memory full of one object's pages, and a page daemon freeing its lowest."""
    rs = Reservations(PhysMemory(1, 4096))
    obj = VMObject("kstack-like", 1 << 20, reserv=False)
    for pindex in [*range(1000), *range(1001, 5000)]:
        if rs.alloc_page(obj, pindex, 0) is None:
            break
    calls = []

    def page_daemon(domain: int) -> bool:
        calls.append(domain)
        rs.free_page(obj, obj.resident[0])
        return True

    rs.shortage = page_daemon
    assert rs.alloc_page(obj, 1000, 0) is not None
    assert calls, "the allocation did not need the page daemon: the case needs updating"
    assert 1000 in obj.pages and obj.resident == sorted(obj.pages)


def test_a_swap_in_that_runs_the_page_daemon_keeps_swap_space():
    """Found by these tests (model 0.10): Machine._swapin did `self._swap_room +=
    self.kstack.swapin(stack)`, which reads _swap_room before the call; the swap-in's page
    allocations ran the page daemon, which wrote another idle stack to swap and lowered
    _swap_room, and the store after the call undid that (free swap said the whole 2 GiB
    while pid 3's 32 pages were on swap)."""
    # pid 1 falls silent; pid 2 fills memory with stacks until one fails with ENOMEM (the
    # page daemon swaps pid 1 out and writes its stack to swap); pid 3 falls silent; two
    # seconds later pid 1 wakes: its stack's pages come back, memory is short, and the
    # page daemon swaps pid 3 out and writes its stack to swap.
    small = {"mem_per_domain_mb": "16", "boot_threads": "0", "kstack_pages": "32"}
    m = new_machine("amd64", "D38852", {**small, "kstack_cache_size": "1"})
    boot_stacks = boot(m, [(1, 1), (2, 2), (3, 3)], False)
    check = full_check(boot_stacks)
    step(m, (kops.SLEEP, 1, 1, 0, 0, 0, 0), 0, check)
    tid = 100
    while not m.kstack.stats.enomem:
        tid += 1
        step(m, (kops.THREAD_NEW, 2, tid, 0, 2100, 0, 0), tid - 100, check)
    step(m, (kops.SLEEP, 3, 3, 0, 2100, 0, 0), tid - 99, check)
    m.apply(kops.WAKE, 1, 1, 0, 4200, 0, 0)
    if not m.procs[3].threads[3].laundered:
        pytest.fail("the case needs updating: pid 3's stack is not written to swap")
    problems = swap_problems(m)
    assert not problems, "; ".join(problems)


# Ops lifecycle.py does not emit today (it tracks exits and reaps itself). Until model
# 0.11 each left a kernel stack or a user object that nothing held any more, live until
# the end of the replay (and a reused pid inherited the user object); the comments say
# where. Now the model closes what an invalid op would strand (machine.py: a reap or fork
# of a live pid exits it first; an exited process neither exits again, nor creates
# threads, nor faults). After the case, everything exits and is reaped, every domain is
# reaped and the kstack cache drained, as in test_valid_sequences_...: only boot's stacks
# remain.
LEAKS = {
    # Machine._reap (machine.py) pops the proc and parks proc.kept (None: it never exited):
    # the thread's stack and the user object stay
    "reap-of-a-live-process": [(kops.PROC_NEW, 1, 10, 0, 0, 0, 0), (kops.FAULT, 1, 10, 0, 0, 5, 0),
                               (kops.REAP, 1, 0, 0, 0, 0, 0)],
    # Machine._fork replaces procs[pid] whatever was there
    "fork-of-a-live-pid": [(kops.PROC_NEW, 1, 10, 0, 0, 0, 0), (kops.PROC_NEW, 1, 11, 0, 0, 0, 0)],
    # Machine._exit: the second exit finds no thread and sets proc.kept = None
    "exit-twice": [(kops.PROC_NEW, 1, 10, 0, 0, 0, 0), (kops.PROC_EXIT, 1, 10, 0, 0, 0, 0),
                   (kops.PROC_EXIT, 1, 10, 0, 0, 0, 0)],
    # THREAD_NEW adds a thread to the zombie process; the reap parks only proc.kept
    "thread-new-in-a-zombie": [(kops.PROC_NEW, 1, 10, 0, 0, 0, 0),
                               (kops.PROC_EXIT, 1, 10, 0, 0, 0, 0),
                               (kops.THREAD_NEW, 1, 11, 0, 0, 0, 0)],
    # Machine._fault makes a user object for a pid that has exited; _reap never frees it
    "fault-after-exit": [(kops.PROC_NEW, 1, 10, 0, 0, 0, 0), (kops.PROC_EXIT, 1, 10, 0, 0, 0, 0),
                         (kops.FAULT, 1, 10, 0, 0, 5, 0)],
}  # fmt: skip


@pytest.mark.parametrize("ops", LEAKS.values(), ids=LEAKS.keys())
def test_invalid_sequences_leave_nothing_behind(ops):
    m = new_machine("amd64", "D38852", {"mem_per_domain_mb": "16", "boot_threads": "3"})
    boot_stacks = boot(m, [], False)
    for index, op in enumerate(ops):
        step(m, op, index, allocator_problems)
    for pid in sorted(m.procs):
        if not m.procs[pid].exited:
            m.apply(kops.PROC_EXIT, pid, next(iter(m.procs[pid].threads), 0), 0, 1, 0, 0)
        m.apply(kops.REAP, pid, 0, 0, 1, 0, 0)
    m.apply(kops.REAP, 999_999, 0, 0, 1, 0, 0)  # every domain (one on amd64)
    m.kstack.drain_cache()
    assert not allocator_problems(m)
    problems = held_problems(m, boot_stacks) + final_problems(m, boot_stacks)
    assert not problems, "; ".join(problems)
