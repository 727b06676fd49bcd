"""The thread and memory workloads of `kreplay synth` (docs/synth.md), on sim.py.

Each is recorded as `ktrace -i -d -t cfw` + `kdump -H -T -c` would record it: syscalls,
page faults and context switches, no NAMI or GIO. `scale` multiplies the work; every
shape starts from one process that existed before tracing and ends with every process
it created exited and reaped.
"""

from collections.abc import Generator
from dataclasses import dataclass, field
from functools import partial

from kreplay.synth.render import errno_ret
from kreplay.synth.sim import PAGE, SUPERPAGE, Event, Sim, Tally, Thread, simulate

AMD64_CPUS = tuple(range(8))  # the amd64 preset
DOMAIN0, DOMAIN1 = tuple(range(8)), tuple(range(8, 16))  # amd64-numa2: cpu -> domain
NUMA2_CPU_DOMAINS = tuple(f"{d[0]}-{d[-1]}" for d in (DOMAIN0, DOMAIN1))  # as a sidecar says


# ---------------------------------------------------------------------- thread-storm

STORM_INSTANCES = 4  # stress-ng --pthread 4
STORM_THREADS = 256  # threads each instance ramps up to, per unit of scale
STORM_ROUNDS = 3


def thread_storm(seed: int, scale: int, tally: Tally | None = None) -> list[str]:
    """stress-ng --pthread: each instance creates threads that block on a condition
    variable until it holds STORM_THREADS * scale of them, broadcasts, joins them all
    and starts over: thousands of live threads, far more than the kstack cache holds."""
    body = partial(_storm_root, target=STORM_THREADS * scale)
    return simulate(seed, "stress-ng", 0, AMD64_CPUS, body, tally)


def _storm_root(sim: Sim, t: Thread, target: int) -> Generator:
    instances = []
    for _ in range(STORM_INSTANCES):
        instances.append((yield from sim.fork(t, partial(_storm_instance, target=target))))
    for child in instances:
        yield from sim.wait4(t, child)
    sim.exit(t)


def _storm_instance(sim: Sim, t: Thread, target: int) -> Generator:
    sim.call_ret(t, f"sigaction(SIGALRM,{t.stack - 0x210:#x},0)")
    for _ in range(STORM_ROUNDS):
        cond, obj = Event(), t.proc.next_addr + 0x40
        threads = []
        for _ in range(target):
            threads.append((yield from sim.thr_new(t, partial(_storm_thread, cond=cond))))
        sim.umtx_wake(t, cond, obj)  # pthread_cond_broadcast()
        yield from sim.join(t, threads)
    sim.exit(t)


def _storm_thread(sim: Sim, t: Thread, cond: Event) -> Generator:
    sim.touch_stack(t, 2)
    yield
    yield from sim.umtx_wait(t, cond, t.proc.next_addr + 0x40)
    sim.thr_exit(t)


# ---------------------------------------------------------------------- threadpool-server

CORE_WORKERS = 32
GC_THREADS = 4
BURSTS = 6  # per unit of scale
HEAP = 0x4000_0000  # 1 GiB of Java heap, touched as requests need it
EXEC_NAME = "http-nio-8080-exec-{}"  # longer than MAXCOMLEN: kdump cuts it at 19


@dataclass(eq=False)
class Pool:
    heap: int
    work: Event = field(default_factory=Event)
    stop: bool = False
    served: int = 0


def threadpool_server(seed: int, scale: int) -> list[str]:
    """A Java application server on a FreeBSD 14 kernel (a new thread's first record is
    `RET thr_new 0`): a core pool and GC threads that live as long as the server, and
    idle periods of seconds between request bursts, each of which adds 64-192 short-lived
    workers that exit when their keep-alive wait times out."""
    body = partial(_server, bursts=BURSTS * scale)
    return simulate(seed, "java", 1, AMD64_CPUS, body, first_pid=2817, first_tid=100_412)


def _server(sim: Sim, t: Thread, bursts: int) -> Generator:
    pool = Pool(sim.mmap_anon(t, HEAP, align=True))
    long_lived = []
    for i in range(GC_THREADS + CORE_WORKERS):
        gc = i < GC_THREADS
        name = f"GC Thread#{i}" if gc else EXEC_NAME.format(i - GC_THREADS + 1)
        w = yield from sim.thr_new(t, partial(_core_worker, pool=pool, gc=gc), first_ret="thr_new")
        sim.thr_set_name(t, w, name)
        long_lived.append(w)
    named, short_lived = CORE_WORKERS, []
    for _ in range(bursts):
        sim.rec.idle(sim.rng.randint(2, 20) * 1_000_000_000)
        work, pool.work = pool.work, Event()
        sim.umtx_wake(t, work, pool.heap)
        for _ in range(sim.rng.randint(64, 192)):
            sim.call_ret(t, f"accept4(0x5,{t.stack - 0x90:#x},{t.stack - 0x94:#x},0)", "7")
            w = yield from sim.thr_new(t, partial(_burst_worker, pool=pool), first_ret="thr_new")
            named += 1
            sim.thr_set_name(t, w, EXEC_NAME.format(named))
            short_lived.append(w)
            yield
    pool.stop = True
    sim.umtx_wake(t, pool.work, pool.heap)
    yield from sim.join(t, long_lived + short_lived)
    sim.exit(t)


def _serve(sim: Sim, t: Thread, pool: Pool) -> Generator:
    """One request: read it, touch some heap, answer it."""
    sim.call_ret(t, f"read(0x7,{t.stack - 0x2000:#x},0x2000)", "517/0x205")
    for _ in range(sim.rng.randint(0, 3)):
        sim.fault(t, pool.heap + PAGE * int(sim.rand() * (HEAP // PAGE // 64)))
    yield
    sim.call_ret(t, f"write(0x7,{t.stack - 0x4000:#x},0x1f4c)", "8012/0x1f4c")
    pool.served += 1


def _core_worker(sim: Sim, t: Thread, pool: Pool, gc: bool) -> Generator:
    sim.touch_stack(t, 3)
    while True:
        yield from sim.umtx_wait(t, pool.work, pool.heap)
        if pool.stop:
            break
        for _ in range(sim.rng.randint(2, 8)):
            if gc:  # a collection sweeps new heap pages
                sim.fault(t, pool.heap + PAGE * int(sim.rand() * (HEAP // PAGE // 16)))
                yield
            else:
                yield from _serve(sim, t, pool)
    sim.thr_exit(t)


def _burst_worker(sim: Sim, t: Thread, pool: Pool) -> Generator:
    sim.touch_stack(t, 2)
    for _ in range(sim.rng.randint(1, 4)):
        yield from _serve(sim, t, pool)
    timeout = t.stack - 0x70  # a struct _umtx_time: the keep-alive
    sim.call(t, f"_umtx_op({t.stack - 0x80:#x},0xf<UMTX_OP_WAIT_UINT_PRIVATE>,0,0x18,{timeout:#x})")
    sim.csw(t, "stop", "uwait")
    yield
    sim.csw(t, "resume", "uwait")
    sim.ret(t, "_umtx_op", errno_ret(60))  # keep-alive expired (ETIMEDOUT)
    sim.thr_exit(t)


# ---------------------------------------------------------------------- numa-migrate

NUMA_MEM_MB = 64  # mem_per_domain_mb of the replay machine (the sidecar's --set)
NUMA_SLACK_PAGES = 2048  # domain 0 pages the database leaves for kernel stacks
WAVE_THREADS = 1024  # threads alive at once in each wave: 4096 stack pages


def numa_migrate(seed: int, scale: int) -> list[str]:
    """On amd64-numa2 with 64 MiB per domain: a database pinned to domain 0 fills all but
    8 MiB of it with its shared buffers; then, `scale` times, an application server on
    domain 0 creates 1024 threads (they outgrow those 8 MiB: their stack pages come from
    domain 1 while their KVA comes from domain 0's kstack arena), the scheduler moves them
    to domain 1, where they touch their stacks and exit, and a thread created on domain 1
    reaps them. Finally both processes exit and are reaped from a domain-1 cpu."""
    body = partial(_numa_root, waves=scale)
    return simulate(seed, "sh", 0, DOMAIN0, body, first_pid=3310, first_tid=100_950)


def _numa_root(sim: Sim, t: Thread, waves: int) -> Generator:
    filled, stop = Event(), Event()
    db = yield from sim.fork(t, partial(_database, filled=filled, stop=stop), DOMAIN0)
    yield filled  # sh sits in read() on its script meanwhile: nothing traced
    app = yield from sim.fork(t, partial(_app_server, waves=waves), DOMAIN0)
    _pin(t, DOMAIN1)
    yield from sim.wait4(t, app)
    sim.set(stop)
    yield from sim.wait4(t, db)
    sim.exit(t)


def _pin(t: Thread, cpus: tuple[int, ...]) -> None:
    """The scheduler moves a thread to other cpus (a cpuset change or load balancing)."""
    t.cpus = cpus
    t.move(cpus[t.tid % len(cpus)])


def _database(sim: Sim, t: Thread, filled: Event, stop: Event) -> Generator:
    sim.execve(t, "/usr/local/bin/postgres")
    sim.call_ret(t, f"cpuset_setaffinity(CPU_LEVEL_WHICH,CPU_WHICH_PID,-1,0x20,{t.stack:#x})")
    yield from _fill(sim, t, NUMA_MEM_MB * 256 - NUMA_SLACK_PAGES)  # nothing to reclaim
    sim.set(filled)
    sim.call(t, f"select(0x6,{t.stack - 0x300:#x},0,0,0)")
    yield from sim.block(t, stop, "select")
    sim.ret(t, "select", "1")
    sim.exit(t)


def _fill(sim: Sim, t: Thread, pages: int) -> Generator:
    """Map `pages` and touch every one in order: each 2 MiB window whole, so every
    reservation fills."""
    region = sim.mmap_anon(t, pages * PAGE, align=True)
    for i in range(pages):
        sim.fault(t, region + i * PAGE)
        if i % 64 == 63:
            yield


def _app_server(sim: Sim, t: Thread, waves: int) -> Generator:
    sim.execve(t, "/usr/local/bin/app-server")
    for _ in range(waves):
        _pin(t, DOMAIN0)
        barrier, obj = Event(), t.proc.next_addr + 0x80
        threads = []
        for _ in range(WAVE_THREADS):
            threads.append((yield from sim.thr_new(t, partial(_migrant, barrier=barrier))))
        sim.umtx_wake(t, barrier, obj)
        yield from sim.join(t, threads)
        _pin(t, DOMAIN1)  # a thread created on domain 1 reaps domain 1's zombies
        helper = yield from sim.thr_new(t, _short_lived, stack_mmap=False)
        yield from sim.join(t, [helper])
    sim.exit(t)


def _migrant(sim: Sim, t: Thread, barrier: Event) -> Generator:
    yield from sim.umtx_wait(t, barrier, t.proc.next_addr + 0x80)
    _pin(t, DOMAIN1)
    sim.touch_stack(t, 2)
    yield
    sim.call_ret(t, f"_umtx_op({t.stack - 0x80:#x},0x10<UMTX_OP_WAKE_PRIVATE>,0x1,0,0)")
    sim.thr_exit(t)


def _short_lived(sim: Sim, t: Thread) -> Generator:
    sim.call_ret(t, f"clock_gettime(CLOCK_MONOTONIC,{t.stack - 0x60:#x})")
    yield
    sim.thr_exit(t)


# ---------------------------------------------------------------------- memory-pressure

PRESSURE_MEM_MB = 64  # mem_per_domain_mb of the replay machine: 32 reservations
PRESSURE_WORKERS = 4  # stress-ng --vm 4
PRESSURE_GENERATIONS = 3  # workers each slot runs in turn, per unit of scale
PRESSURE_PAGES = 2000  # pages each worker touches: 4 x 2000 = half the machine
VM_REGION = 0x1000_0000  # 256 MiB mapped by each worker, touched sparsely
PRESSURE_HELPERS = (16, 48)  # threads each worker starts: more than the kstack cache holds


def memory_pressure(seed: int, scale: int) -> list[str]:
    """stress-ng --vm on a 64 MiB machine: workers map 256 MiB each and touch 2000 pages
    in short runs scattered over it, so every run starts a 2 MiB reservation that stays
    mostly empty; free memory is soon all inside such reservations, and when order-0 pages
    run out vm_reserv_reclaim_inactive() breaks them. Workers also start threads (kernel
    stacks wanted under pressure), unmap part of their memory, exit and are replaced."""
    body = partial(_pressure_root, generations=PRESSURE_GENERATIONS * scale)
    return simulate(seed, "stress-ng", 2, AMD64_CPUS, body, first_pid=4470, first_tid=101_330)


def _pressure_root(sim: Sim, t: Thread, generations: int) -> Generator:
    slots = []
    for _ in range(PRESSURE_WORKERS):
        slots.append((yield from sim.fork(t, _vm_worker)))
    for _ in range(generations - 1):
        for i, child in enumerate(slots):
            yield from sim.wait4(t, child)
            slots[i] = yield from sim.fork(t, _vm_worker)
    for child in slots:
        yield from sim.wait4(t, child)
    sim.exit(t)


def _vm_worker(sim: Sim, t: Thread) -> Generator:
    """Touch the lower half, start helper threads (kernel stacks wanted while memory is
    short) that touch the upper half, unmap the lower half, touch the upper half."""
    region, half = sim.mmap_anon(t, VM_REGION, align=True), VM_REGION // 2
    touched = 0
    while touched < PRESSURE_PAGES // 2:
        touched += yield from _touch_run(sim, t, region, half, PRESSURE_PAGES // 2 - touched)
    helpers, start = [], Event()
    for _ in range(sim.rng.randint(*PRESSURE_HELPERS)):
        body = partial(_vm_helper, start=start, base=region + half, size=half)
        helpers.append((yield from sim.thr_new(t, body)))
    sim.umtx_wake(t, start, region)  # all of them alive before any exits
    sim.munmap(t, region, half)
    while touched < PRESSURE_PAGES:
        touched += yield from _touch_run(sim, t, region + half, half, PRESSURE_PAGES - touched)
    yield from sim.join(t, helpers)
    sim.exit(t)


def _touch_run(sim: Sim, t: Thread, base: int, size: int, left: int) -> Generator:
    """8-40 pages (at most `left`) scattered over one 2 MiB window of [base, base + size)."""
    window = base + SUPERPAGE * int(sim.rand() * (size // SUPERPAGE))
    count = min(left, sim.rng.randint(8, 40))
    for _ in range(count):
        sim.fault(t, window + PAGE * int(sim.rand() * 512), write=sim.rand() < 0.9)
    yield
    return count


def _vm_helper(sim: Sim, t: Thread, start: Event, base: int, size: int) -> Generator:
    sim.touch_stack(t, 2)
    yield from sim.umtx_wait(t, start, base - VM_REGION // 2)
    yield from _touch_run(sim, t, base, size, 16)
    sim.thr_exit(t)


# ---------------------------------------------------------------------- idle-swap

SWAP_MEM_MB = 64  # mem_per_domain_mb of the replay machine: 16,384 pages per domain
SWAP_DAEMONS = ("sshd", "cron", "syslogd", "devd", "ntpd", "moused")
SWAP_WORKERS = (4, 12)  # threads each daemon starts; all of them then sleep
SWAP_IDLE_NS = 3_000_000_000  # longer than vm.swap_idle_threshold1 (2 s)
SWAP_SPILL = 2048  # pages the hog takes from domain 1 once domain 0 has none left


class _Countdown:
    """An event set when `n` threads have arrived."""

    def __init__(self, n: int) -> None:
        self.n, self.done = n, Event()

    def arrive(self, sim: Sim) -> None:
        self.n -= 1
        if self.n == 0:
            sim.set(self.done)


def idle_swap(seed: int, scale: int) -> list[str]:
    """On amd64-numa2 with 64 MiB per domain, `scale` rounds of: daemons on domain 0 start
    their worker threads and all fall asleep; three seconds later a memory hog pinned to
    domain 0 touches more pages than the domain holds, so reservations are reclaimed, the
    swapper takes the sleeping daemons' kernel stacks (vm_swapout) and the hog's last pages
    come from domain 1; then, with domain 0 still full, a timer wakes the daemons one by
    one and each needs its stacks back (vm_thread_swapin) before it runs."""
    body = partial(_swap_root, rounds=scale)
    return simulate(seed, "sh", 0, DOMAIN0, body, first_pid=5120, first_tid=101_870)


def _swap_root(sim: Sim, t: Thread, rounds: int) -> Generator:
    for _ in range(rounds):
        asleep, wakeups = _Countdown(len(SWAP_DAEMONS)), [Event() for _ in SWAP_DAEMONS]
        daemons = []
        for name, wakeup in zip(SWAP_DAEMONS, wakeups, strict=True):
            body = partial(_daemon, name=name, asleep=asleep, wakeup=wakeup)
            daemons.append((yield from sim.fork(t, body, DOMAIN0)))
        yield asleep.done  # sh sits in read() on its script meanwhile: nothing traced
        sim.rec.idle(SWAP_IDLE_NS)
        filled, stop = Event(), Event()
        hog = yield from sim.fork(t, partial(_hog, filled=filled, stop=stop), DOMAIN0)
        yield filled
        for wakeup in wakeups:  # each daemon's timer fires, domain 0 still full
            sim.rec.idle(sim.rng.randint(10, 200) * 1_000_000)
            sim.set(wakeup)
        for daemon in daemons:
            yield from sim.wait4(t, daemon)
        sim.set(stop)
        yield from sim.wait4(t, hog)
    sim.exit(t)


def _daemon(sim: Sim, t: Thread, name: str, asleep: _Countdown, wakeup: Event) -> Generator:
    """Start worker threads that sleep on a condition variable, sleep in select() until
    the timer, then wake the workers, join them and exit."""
    sim.execve(t, f"/usr/sbin/{name}")
    ready, work = _Countdown(sim.rng.randint(*SWAP_WORKERS)), Event()
    obj = t.proc.next_addr + 0x40
    workers = []
    for _ in range(ready.n):
        body = partial(_idle_worker, ready=ready, work=work, obj=obj)
        workers.append((yield from sim.thr_new(t, body)))
    yield ready.done
    asleep.arrive(sim)
    sim.call(t, f"select(0x4,{t.stack - 0x300:#x},0,0,{t.stack - 0x310:#x})")
    yield from sim.block(t, wakeup, "select")
    sim.ret(t, "select", "0")
    sim.umtx_wake(t, work, obj)
    yield from sim.join(t, workers)
    sim.exit(t)


def _idle_worker(sim: Sim, t: Thread, ready: _Countdown, work: Event, obj: int) -> Generator:
    sim.touch_stack(t, 2)
    sim.call(t, f"_umtx_op({obj:#x},0xf<UMTX_OP_WAIT_UINT_PRIVATE>,0,0,0)")
    ready.arrive(sim)
    yield from sim.block(t, work, "uwait")
    sim.ret(t, "_umtx_op", "0")
    yield
    sim.thr_exit(t)


def _hog(sim: Sim, t: Thread, filled: Event, stop: Event) -> Generator:
    """Touch a domain's worth of pages and some more, then hold them until told."""
    sim.execve(t, "/usr/local/bin/memhog")
    yield from _fill(sim, t, SWAP_MEM_MB * 256 + SWAP_SPILL)
    sim.set(filled)
    sim.call(t, f"select(0x0,0,0,0,{t.stack - 0x310:#x})")
    yield from sim.block(t, stop, "select")
    sim.ret(t, "select", "0")
    sim.exit(t)
