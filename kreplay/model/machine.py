"""One machine: the layers composed, and the lifecycle ops applied to them.

Processes and threads follow spec/freebsd-thread-lifecycle.md §1 and §9.1: thr_new reaps
the current domain's zombie threads and then takes a kstack (thread_alloc); a fork reuses
the kstack parked with a struct proc in proc_zone, and only a never-used proc item costs a
new kstack; an exiting non-last thread becomes a zombie whose kstack is disposed at the next
reap of its domain; the last thread of an exiting process keeps its kstack through the
zombie state and wait4, and parks with the proc. User pages come from each process's
anonymous object through the same reservations as kstacks.
"""

from bisect import bisect_left
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from kreplay import ops as kops
from kreplay.errors import UsageError
from kreplay.model import KernelHang
from kreplay.model.domainset import RoundRobin, minskip, pref
from kreplay.model.kstack import (
    KSTACK_OBJECT_SIZE,
    KstackAllocator,
    KstackConfig,
    Stack,
    chunk_layouts,
    kstack_metrics,
)
from kreplay.model.phys import PhysMemory
from kreplay.model.policy import KstackPolicy
from kreplay.model.reserv import NPAGES, ORDER, Reservations, VMObject

USER_OBJECT_SIZE: Final = 1 << 36  # pages of a process's address space (anon: no size cap)
REAP_CALLOUT_S: Final = 5  # thread_reap_callout: callout_reset(..., 5 * hz, ...) (kern_thread.c)


@dataclass(frozen=True)
class MachineConfig:
    """A machine preset; every field can be changed with `--set name=value`."""

    preset: str = "amd64"
    kstack_pages: int = 4
    guard_pages: int = 1
    domains: int = 1
    ncpu: int = 8
    mem_per_domain_mb: int = 8192
    kstack_cache_size: int = 0  # 0: imax(128, 4 * ncpu)
    kva_limit_mb: int = 0  # KVA for imports past kmem_init's reservations; 0: the whole map
    ilp32: bool = False
    boot_threads: int = 200  # kernel threads alive after boot (spec lifecycle §7)
    hz: int = 1000
    cpu_domains: str = ""  # "0,0,1,1,...": domain of each cpu; empty: split evenly
    user_policy: str = "first-touch"  # user memory: first-touch or round-robin
    swap_idle_s: int = 2  # vm.swap_idle_threshold1; 0: never swap kernel stacks out
    swap_mb: int = 2048  # the swap device; 0: none, and unwired stack pages stay resident

    def __reduce__(self) -> tuple:  # compiled, a frozen dataclass unpickles by __setattr__
        return (MachineConfig, tuple(getattr(self, f.name) for f in fields(self)))

    def kstack(self) -> KstackConfig:
        kva_limit = self.kva_limit_mb * 256 if self.kva_limit_mb else KSTACK_OBJECT_SIZE
        return KstackConfig(
            kstack_pages=self.kstack_pages,
            guard_pages=self.guard_pages,
            domains=self.domains,
            ncpu=self.ncpu,
            kstack_cache_size=self.kstack_cache_size,
            cpu_domains=tuple(self.domain_of_cpu(cpu) for cpu in range(self.ncpu)),
            phys_pages=self.mem_per_domain_mb * 256 * self.domains,
            page_array=self.preset.startswith("amd64") and not self.ilp32,
            kva_limit=kva_limit,
            ilp32=self.ilp32,
        )

    def domain_of_cpu(self, cpu: int) -> int:
        """The cpu_domains map when given, else cpus split evenly and in order."""
        cpu %= self.ncpu
        if self.cpu_domains:
            return int(self.cpu_domains.split(",")[cpu])
        return cpu * self.domains // self.ncpu


PRESETS = {
    "amd64": MachineConfig(),
    "amd64-kasan": MachineConfig(preset="amd64-kasan", kstack_pages=6),
    "amd64-numa2": MachineConfig(preset="amd64-numa2", domains=2, ncpu=16),
    "i386": MachineConfig(
        preset="i386",
        ilp32=True,
        ncpu=4,
        mem_per_domain_mb=3072,
        kva_limit_mb=1024,
        boot_threads=120,
    ),
    "arm64": MachineConfig(preset="arm64"),
}


def machine_config(preset: str, settings: dict[str, str]) -> MachineConfig:
    """A preset with `--set` overrides, each checked and converted to its field's type."""
    if preset not in PRESETS:
        raise UsageError(f"unknown machine {preset!r} (presets: {', '.join(sorted(PRESETS))})")
    types = {f.name: f.type for f in fields(MachineConfig) if f.name != "preset"}
    values: dict[str, Any] = {}
    for name, text in settings.items():
        if name not in types:
            raise UsageError(
                f"unknown machine parameter {name!r} (parameters: {', '.join(sorted(types))})"
            )
        values[name] = _convert(name, text, types[name])
    cfg = replace(PRESETS[preset], **values)
    for name, (low, high, why) in LIMITS.items():
        value = getattr(cfg, name)
        if not low <= value <= high:
            raise UsageError(f"{name} = {value}: must be in [{low}, {high}] ({why})")
    if cfg.ncpu < cfg.domains:
        raise UsageError(f"ncpu = {cfg.ncpu}: needs at least one cpu per domain ({cfg.domains})")
    if cfg.user_policy not in USER_POLICIES:
        raise UsageError(f"user_policy must be one of {', '.join(USER_POLICIES)}")
    if cfg.swap_idle_s and cfg.swap_idle_s * 1_000_000_000 < kops.IDLE_GAP_NS:
        raise UsageError(f"swap_idle_s must be 0 or at least {kops.IDLE_GAP_NS // 10**9}")
    if cfg.cpu_domains:
        try:
            cpu_map = [int(d) for d in cfg.cpu_domains.split(",")]
        except ValueError:
            cpu_map = []
        if len(cpu_map) != cfg.ncpu or not all(0 <= d < cfg.domains for d in cpu_map):
            raise UsageError(
                f"cpu_domains must list a domain in [0, {cfg.domains}) for each of the "
                f"{cfg.ncpu} cpus, comma-separated (e.g. {','.join(['0'] * min(cfg.ncpu, 4))},...)"
            )
    return cfg


# The valid range of every integer machine parameter, checked before a replay (a sidecar's
# settings and --set alike), with the reason (docs/model.md, "Presets").
LIMITS: dict[str, tuple[int, int, str]] = {
    "kstack_pages": (1, 32, "vm_thread_new caps a stack at KSTACK_MAX_PAGES, 32"),
    "guard_pages": (0, 16, "KSTACK_GUARD_PAGES: 1 on every platform; 16 is plenty to explore"),
    "domains": (1, 8, "MAXMEMDOM is 8"),
    "ncpu": (1, 1024, "MAXCPU is 1024 on amd64"),
    "mem_per_domain_mb": (16, 65536, "one 16 MiB buddy block at least; 64 GiB a domain at most"),
    "kstack_cache_size": (0, 65536, "vm.kstack_cache_size; 0: imax(128, 4 * ncpu)"),
    "kva_limit_mb": (0, 2 * 1024 * 1024, "the amd64 kernel map is 2 TiB; 0: all of it"),
    "boot_threads": (0, 100_000, "kernel threads alive after boot"),
    "hz": (10, 10_000, "kern.hz: 100 and 1000 are usual"),
    "swap_idle_s": (0, 86_400, "vm.swap_idle_threshold1 in seconds; 0: never swap"),
    "swap_mb": (0, 1 << 20, "swap space in MiB; 0: no swap device"),
}


USER_POLICIES = ("first-touch", "round-robin")


def _convert(name: str, text: str, type_: object) -> object:
    try:
        if type_ in (bool, "bool"):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if type_ in (str, "str"):
            return text
        return int(text, 0)
    except ValueError:
        raise UsageError(f"--set {name}={text}: not a valid value") from None


@dataclass
class Proc:
    threads: dict[int, Stack | None] = field(default_factory=dict)
    domains: dict[int, int] = field(default_factory=dict)  # tid -> td_allocdomain
    kept: Stack | None = None  # the exited process's last kstack, until reaped
    exited: bool = False  # a zombie (PRS_ZOMBIE): the swapper never takes it


class Machine:
    def __init__(self, cfg: MachineConfig, policy: KstackPolicy):
        self.cfg = cfg
        pages = cfg.mem_per_domain_mb * 256
        self.phys = PhysMemory(cfg.domains, pages)
        self.reservs = Reservations(self.phys)
        self._swaps = bool(cfg.swap_idle_s) and policy.swap.enabled()
        self.reservs.shortage = self._pagedaemon
        self.kstack = KstackAllocator(cfg.kstack(), policy, self.reservs)
        self.procs: dict[int, Proc] = {}
        self.zombies: list[list[Stack | None]] = [[] for _ in range(cfg.domains)]
        self.proc_zone: list[Stack | None] = []
        self.user: dict[int, VMObject] = {}
        self.user_pages = self.user_pages_peak = 0
        self.remote_pages = 0
        self.asleep: dict[int, int] = {}  # pid -> tick it fell silent, in that order
        self.swapped: set[int] = set()  # pids whose kernel stacks are swapped out
        self._ncpu = cfg.ncpu
        self._cpu_domain = [cfg.domain_of_cpu(cpu) for cpu in range(cfg.ncpu)]
        self._user_rr = RoundRobin(cfg.domains) if cfg.user_policy == "round-robin" else None
        self._swap_ticks = cfg.swap_idle_s * cfg.hz
        self._swap_room = cfg.swap_mb * 256  # free swap, in pages
        self._swapper_ran = -(1 << 62)  # tick of the vm_daemon's last run
        self._reclaimed = -(1 << 62)  # tick of the UMA reclaim worker's last run
        self._first_cpu = [  # a cpu of each domain (a domain may have none: cpu 0)
            next((c for c, dom in enumerate(self._cpu_domain) if dom == d), 0)
            for d in range(cfg.domains)
        ]
        # thread_reap_callout: every 5 s from boot, on traces whose ticks are time (boot()).
        self.reapticks = [0] * cfg.domains  # tdd_reapticks: each domain's last reap
        self._callout_period = REAP_CALLOUT_S * cfg.hz
        self._next_callout = 1 << 62  # never
        self._numa = cfg.domains > 1

    # ------------------------------------------------------------------ boot

    def boot(self, initial: list[tuple[int, int]], timed: bool = False) -> None:
        """Kernel threads of the preset, then the threads alive when tracing started.
        `timed`: the ops' ticks are time (a -T/-E trace), so the 5-second reap callout runs;
        on other traces nothing says how much time passes between two ops."""
        if timed:
            self._next_callout = self._callout_period
        for i in range(self.cfg.boot_threads):
            domain = i * self.cfg.domains // max(1, self.cfg.boot_threads)
            self.kstack.thread_new(self._first_cpu[domain], domain)
        for pid, tid in initial:
            proc = self.procs.setdefault(pid, Proc())
            proc.threads[tid], proc.domains[tid] = self.kstack.thread_new(0, 0), 0

    # ------------------------------------------------------------------ ops

    def apply(
        self, kind: int, pid: int, tid: int, cpu: int, tick: int, arg: int, arg2: int
    ) -> None:
        if tick >= self._next_callout:
            self._reap_callouts(tick)
        self.reservs.ticks = tick
        cpu %= self._ncpu
        domain = self._cpu_domain[cpu]
        if self.swapped and pid in self.swapped and kind != kops.REAP:
            self._swapin(pid)  # faultin(): a swapped-out process runs again
        if kind == kops.FAULT:
            self._fault(pid, arg, domain)
        elif kind == kops.THREAD_NEW:
            proc = self.procs.setdefault(pid, Proc())
            if tid not in proc.threads and not proc.exited:  # a tid is created once
                proc.threads[tid], proc.domains[tid] = self._thread_alloc(cpu, domain), domain
        elif kind == kops.PROC_NEW:
            self._fork(pid, tid, cpu, domain)
        elif kind == kops.THREAD_EXIT:
            exiting = self.procs.get(pid)
            if exiting is not None:
                self._zombie(exiting, self._thread_key(exiting, tid), domain)
        elif kind == kops.PROC_EXIT:
            self._exit(pid, tid, domain)
        elif kind == kops.REAP:
            self._reap(pid, cpu, domain)
        elif kind == kops.EXEC:
            self._exec(pid, tid, domain)
        elif kind == kops.UNMAP:
            self._unmap(pid, arg, arg2)
        elif kind == kops.SLEEP:
            if pid in self.procs and not self.procs[pid].exited:
                self.asleep[pid] = tick
        elif kind == kops.WAKE:
            self.asleep.pop(pid, None)

    def _thread_alloc(self, cpu: int, domain: int) -> Stack | None:
        """thread_alloc(): thread_count_inc() reaps this domain's zombies first."""
        self._reap_domain(cpu, domain)
        return self.kstack.thread_new(cpu, domain)

    def _reap_domain(self, cpu: int, domain: int) -> None:
        """thread_reap_domain(): dispose zombies newest first; a reap that finds some
        stamps the domain's tdd_reapticks."""
        zombies, self.zombies[domain] = self.zombies[domain], []
        if zombies:
            self.reapticks[domain] = self.reservs.ticks
        for stack in reversed(zombies):
            if stack is not None:
                self.kstack.thread_dispose(cpu, stack)

    def _reap_callouts(self, tick: int) -> None:
        """thread_reap_callout_cb() at every 5-second mark up to `tick`: when some
        domain's zombies have waited more than 5 s since that domain's last reap
        (tdd_reapticks), the reap task runs thread_reap_all(): every domain, from domain 0
        (the task's cpu is unknown). Marks with no zombie anywhere are skipped at once."""
        period = self._callout_period
        while self._next_callout <= tick:
            now = self._next_callout
            if not any(self.zombies):
                self._next_callout = (tick // period + 1) * period
                return
            self._next_callout += period
            if any(z and now - self.reapticks[d] > period for d, z in enumerate(self.zombies)):
                self.reservs.ticks = now
                for domain in range(len(self.zombies)):
                    self._reap_domain(0, domain)  # the reap task's cpu is unknown: cpu 0

    def _zombie(self, proc: Proc, tid: int, domain: int) -> None:
        """thread_zombie(): onto the zombie list of td_allocdomain, the domain the
        struct thread came from (the creating CPU's; the exiting CPU's if unknown)."""
        if tid in proc.threads:
            self.zombies[proc.domains.pop(tid, domain)].append(proc.threads.pop(tid))

    def _fork(self, pid: int, tid: int, cpu: int, domain: int) -> None:
        """fork1(): a parked proc item brings its kstack (thread_recycle: no reap); an item
        parked without one gets a new stack; only a never-used item goes through
        thread_alloc, which reaps first. A pid still in use had exited and been reaped
        unseen: so it is first (nothing it held stays behind)."""
        if pid in self.procs:
            self._exit(pid, 0, domain)
            self._reap(pid, cpu, domain)
        if self.proc_zone:
            stack = self.proc_zone.pop()
            if stack is None:
                stack = self.kstack.thread_new(cpu, domain)
        else:
            stack = self._thread_alloc(cpu, domain)
        self.procs[pid] = Proc({tid: stack}, {tid: domain})

    @staticmethod
    def _thread_key(proc: Proc, tid: int) -> int:
        """The child of a fork seen only through its parent's `RET fork N` holds its first
        thread under 0 until the child's own records name its tid."""
        if tid not in proc.threads and 0 in proc.threads:
            proc.threads[tid] = proc.threads.pop(0)
            proc.domains[tid] = proc.domains.pop(0, 0)
        return tid

    def _exit(self, pid: int, tid: int, domain: int) -> None:
        """exit1(): other threads become zombies; the last one stays with the proc."""
        proc = self.procs.get(pid)
        self.asleep.pop(pid, None)
        if proc is None or proc.exited:
            if proc is None:  # a process older than the trace: only its pages are known
                self._free_user(pid)
            return
        self._thread_key(proc, tid)
        keep = tid if tid in proc.threads else next(iter(proc.threads), None)
        for other in [t for t in proc.threads if t != keep]:
            self._zombie(proc, other, domain)
        proc.kept = proc.threads.pop(keep, None) if keep is not None else None
        proc.exited = True
        self._free_user(pid)

    def _reap(self, pid: int, cpu: int, domain: int) -> None:
        """proc_reap(): thread_wait() reaps, then the proc parks in proc_zone. A process
        reaped before its exit was seen exits first."""
        live = self.procs.get(pid)
        if live is not None and not live.exited:
            self._exit(pid, 0, domain)
        proc = self.procs.pop(pid, None)
        self.asleep.pop(pid, None)  # a reaped process can no longer be swapped out
        self.swapped.discard(pid)  # nor be swapped in: its pid may come back as another
        self._reap_domain(cpu, domain)
        if proc is not None:
            self.proc_zone.append(proc.kept)

    def _exec(self, pid: int, tid: int, domain: int) -> None:
        proc = self.procs.get(pid)
        if proc is not None:
            self._thread_key(proc, tid)
            for other in [t for t in proc.threads if t != tid]:
                self._zombie(proc, other, domain)
        self._free_user(pid)

    # ------------------------------------------------------------------ swapping

    def _pagedaemon(self, domain: int) -> bool:
        """The page daemon of a domain short of free pages, done at once. The model has no
        inactive pages to scan, so a domain below its free target (vmd_free_target) is a
        shortage the scan cannot meet: where the revision swaps, the vm_daemon swaps idle
        processes out (vm_swapout_run -> swapout_procs, at most once a second:
        vm_req_vmdaemon's `lastrun + hz`) and the laundry thread writes unwired pages to
        swap, so that they are freed; below the severe threshold the UMA reclaim worker
        drains every zone's caches, kstack_cache with them (vm_pageout_lowmem ->
        uma_reclaim_wakeup, at most once a second: pause("umarclslp", hz)). True if free
        pages came of it."""
        th, tick = self.reservs.thresholds[domain], self.reservs.ticks
        before = self.reservs.free_count(domain)
        if self._swaps and before < th.free_target:
            if tick - self._swapper_ran >= self.cfg.hz:
                self._swapper_ran = tick
                self._swapout_procs()
            if self.kstack.laundry and self._swap_room:
                self._swap_room -= self.kstack.launder(self._swap_room)
        if (
            self.reservs.free_count(domain) < th.free_severe
            and tick - self._reclaimed >= self.cfg.hz
        ):
            self._reclaimed = tick
            self.kstack.drain_cache()
        return self.reservs.free_count(domain) > before

    def _swapout_procs(self) -> None:
        """swapout_procs(): every process whose threads have all slept for at least
        swap_idle_s (vm.swap_idle_threshold1) has their kernel stacks swapped out."""
        tick = self.reservs.ticks
        idle = [
            pid
            for pid, since in self.asleep.items()
            if tick - since >= self._swap_ticks and pid not in self.swapped
        ]
        for pid in idle:
            for stack in self.procs[pid].threads.values():
                if stack is not None and not stack.swapped:
                    self.kstack.swapout(stack)
            self.swapped.add(pid)

    def _swapin(self, pid: int) -> None:
        """faultin() -> swapin_proc(): every thread's stack comes back (its swap pages are
        freed)."""
        self.swapped.discard(pid)
        self.asleep.pop(pid, None)
        proc = self.procs.get(pid)
        for stack in proc.threads.values() if proc is not None else ():
            if stack is not None and stack.swapped:
                # the swap-in may run the page daemon, which writes other stacks to swap
                # (lowering _swap_room): add what it freed after it returns
                freed = self.kstack.swapin(stack)
                self._swap_room += freed

    # ------------------------------------------------------------------ user pages

    def _fault(self, pid: int, page: int, domain: int) -> None:
        """vm_fault(): the page from the process's policy, first-touch (the faulting CPU's
        domain first) or round-robin, falling back to the other domains; the fault
        sleeps for memory, so with every domain out of it the process hangs."""
        obj = self.user.get(pid)
        if obj is None:
            proc = self.procs.get(pid)
            if proc is not None and proc.exited:
                return  # a zombie has no address space (exit1 freed it) to fault in
            obj = self.user[pid] = VMObject(f"anon {pid}", USER_OBJECT_SIZE, anon=True, oid=pid + 1)
        elif page in obj.pages:
            return
        if not self._numa:
            frame = self.reservs.alloc_page(obj, page, 0)
            if frame is None:
                frame = self._fault_fallback(obj, page, [0], pid)
        else:  # vm_domainset_iter_page(): first-touch or round-robin, two passes
            first = (
                pref(domain, self.cfg.domains) if self._user_rr is None else self._user_rr.order()
            )
            order = minskip(first, self.reservs.below_min)
            frame = self.reservs.alloc_page(obj, page, order[0])
            if frame is None:
                frame = self._fault_fallback(obj, page, order, pid)
        if self._numa and self.phys.domain_of(frame) != domain:  # vm_phys_domain()
            self.remote_pages += 1
        self.user_pages += 1
        if self.user_pages > self.user_pages_peak:
            self.user_pages_peak = self.user_pages

    def _fault_fallback(self, obj: VMObject, page: int, order: list[int], pid: int) -> int:
        """The rest of the iterator's domains, after the first one had no page; with
        none, vm_waitpfault() sleeps for memory nothing will free."""
        for d in order[1:]:
            frame = self.reservs.alloc_page(obj, page, d)
            if frame is not None:
                return frame
        raise KernelHang(
            "vm_fault: no free page in any domain and nothing left to reclaim "
            f"(pid {pid} sleeps in vm_waitpfault forever)"
        )

    def _unmap(self, pid: int, first: int, npages: int) -> None:
        obj = self.user.get(pid)
        if obj is None:
            return
        lo = bisect_left(obj.resident, first)
        hi = bisect_left(obj.resident, first + npages, lo)
        self.reservs.free_range(obj, lo, hi)
        self.user_pages -= hi - lo

    def _free_user(self, pid: int) -> None:
        obj = self.user.pop(pid, None)
        if obj is None:
            return
        self.user_pages -= len(obj.pages)
        self.reservs.free_range(obj, 0, len(obj.resident))

    # ------------------------------------------------------------------ results

    def digest(self) -> str:
        """A fingerprint of the allocator state: the page map, the stacks held by
        threads, in the cache and parked, zombies, and the reservation counters."""
        k = self.kstack
        parts = (
            self.reservs.state_hash,
            hash(tuple(sorted(k.live))) & 0xFFFFFFFF,
            hash(tuple(s.ks for s in k.cache)) & 0xFFFFFFFF,
            len(self.swapped),
            len(self.proc_zone),
            sum(len(z) for z in self.zombies),
            self.reservs.broken,
            self.reservs.freed,
            self.user_pages,
        )
        return "-".join(f"{p:x}" for p in parts)

    def metrics(self) -> dict[str, float]:
        out = kstack_metrics(self.kstack)
        queued = [rv for q in self.reservs.partpop for rv in q]
        free_pages = self.phys.free_pages
        big = sum(
            count << order
            for d in self.phys.domains
            for order, count in d.free_blocks().items()
            if order >= ORDER
        )
        out.update(
            {
                "kstack.guard_both_ends": self._guard_both_ends(),
                "reserv.fullpop": self.reservs.fullpop,
                "reserv.partpopq_unused_kb": sum(NPAGES - rv.popcnt for rv in queued) * 4,
                "reserv.broken": self.reservs.broken,
                "reserv.freed": self.reservs.freed,
                "reserv.reclaimed": self.reservs.reclaimed,
                "phys.free_pages": free_pages,
                "phys.fmfi": round(1 - big / free_pages, 6) if free_pages else 0.0,
                "numa.remote_pages": self.remote_pages,
                "user.pages_peak": self.user_pages_peak,
            }
        )
        return out

    def _guard_both_ends(self) -> float:
        """Fraction of live stacks whose page above the top is unmapped: the next slot's
        guard page, or KVA nobody holds."""
        live = self.kstack.live
        if not live:
            return 0.0
        pages = self.kstack.cfg.kstack_pages
        mapped = {s.ks + i for s in list(live.values()) + self.kstack.cache for i in range(pages)}
        guarded = sum(1 for ks in live if ks + pages not in mapped)
        return round(guarded / len(live), 6)

    def chunks(self):
        return chunk_layouts(self.kstack)
