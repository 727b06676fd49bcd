"""Lifecycle ops from real kdump lines, and replays of them through the model."""

import json

import pytest
from click.testing import CliRunner
from conftest import header, ingest_text
from hypothesis import given, settings
from hypothesis import strategies as st

from kreplay import lifecycle as lc
from kreplay import ops as kops
from kreplay import work
from kreplay.cli import cli
from kreplay.model import KernelPanic
from kreplay.model.machine import Machine, machine_config
from kreplay.replay import replay, run
from kreplay.revisions import BUILTIN, lookup, registry
from kreplay.store import Store


class Trace:
    """kdump -H -T -c lines, one timestamp apart (1 ms) on cpu 0."""

    def __init__(self):
        self.lines, self.ms = [], 0

    def rec(self, pid, tid, comm, tag, body):
        self.ms += 1
        sec, ms = divmod(self.ms, 1000)
        ts = f"{1700000000 + sec}.{ms * 1_000_000:09d}"
        self.lines.append(header(pid, comm, tag, tid=tid, ts=(ts,), cpu=0) + body)
        return self

    def text(self):
        return "\n".join(self.lines) + "\n"


def workload() -> Trace:
    t = Trace()
    t.rec(100, 100100, "sh", "CALL", "fork")
    t.rec(200, 100200, "sh", "RET", "fork 0")  # child starts
    t.rec(100, 100100, "sh", "RET", "fork 200/0xc8")
    t.rec(200, 100200, "sh", "PFLT", "0x801000123 0x2<VM_PROT_WRITE>")
    t.rec(200, 100200, "sh", "PRET", "KERN_SUCCESS")
    t.rec(200, 100200, "sh", "PFLT", "0x801000456 0x1<VM_PROT_READ>")  # same page again
    t.rec(200, 100200, "sh", "PRET", "KERN_SUCCESS")
    t.rec(200, 100200, "sh", "CALL", "thr_new(0x7fffdfbfaf48,0x68)")
    t.rec(200, 100201, "sh", "RET", "fork 0")  # the new thread
    t.rec(200, 100200, "sh", "RET", "thr_new 0")
    t.rec(200, 100201, "sh", "CALL", "thr_exit(0)")
    t.rec(200, 100200, "sh", "CALL", "execve(0x1,0x2,0x3)")
    t.rec(200, 100200, "cc", "RET", "execve JUSTRETURN")
    t.rec(200, 100200, "cc", "CALL", "exit(0)")
    t.rec(100, 100100, "sh", "RET", "wait4 200/0xc8")
    return t


@pytest.fixture
def store(tmp_path):
    ingest_text(tmp_path, workload().text(), name="w")
    with Store(str(tmp_path / "store.duckdb"), read_only=True) as s:
        yield s


def derive(store):
    info = store.trace("w")
    rows = store.lifecycle_events(info.trace_id, lc.CALLS, lc.RETS)
    return lc.derive(rows, has_tids=True)


def test_ops_follow_the_lifecycle_and_count_each_creation_once(store):
    d = derive(store)
    names = [kops.OP_NAMES[k] for k in d.ops.kind]
    assert names == ["PROC_NEW", "FAULT", "THREAD_NEW", "THREAD_EXIT", "EXEC", "PROC_EXIT", "REAP"]
    # the child's first record came before the parent's RET: created there, parent unknown
    assert d.ops.pid[0] == 200 and d.ops.arg[0] == 0 and d.ops.line[0] == 2
    assert d.ops.arg[1] == 0x801000  # the page, once
    assert d.ops.tid[2] == 100201 and d.ops.line[2] == 9
    assert d.initial == [(100, 100100)]  # sh existed before tracing
    assert d.preflight.preexisting_procs == 1 and d.preflight.unmatched_faults == 0


def test_without_tids_threads_come_from_the_parents_ret(tmp_path):
    text = "".join(
        line + "\n"
        for line in (
            "  2121 qt       CALL  thr_new(0x7fffff9f80,0x1a0)",
            "  2121 qt       RET   thr_new 0",
            "  2121 qt       RET   fork 0",  # the new thread's first record (13.x)
            "  2121 qt       CALL  thr_exit(0)",
        )
    )
    ingest_text(tmp_path, text, name="w")
    with Store(str(tmp_path / "store.duckdb"), read_only=True) as s:
        info = s.trace("w")
        d = lc.derive(s.lifecycle_events(info.trace_id, lc.CALLS, lc.RETS), has_tids=False)
    assert [kops.OP_NAMES[k] for k in d.ops.kind] == ["THREAD_NEW", "THREAD_EXIT"]
    assert not d.preflight.has_tids


def test_the_zombie_kstack_is_disposed_at_the_next_thread_allocation_not_at_exit(store):
    d = derive(store)
    machine = Machine(
        machine_config("amd64", {"boot_threads": "0"}), lookup(registry(), "D38852").policy
    )
    machine.boot(d.initial)
    ops = d.ops
    for i in range(4):  # up to THREAD_EXIT
        machine.apply(
            ops.kind[i], ops.pid[i], ops.tid[i], ops.cpu[i], ops.tick[i], ops.arg[i], ops.arg2[i]
        )
    assert machine.kstack.stats.disposed == 0 and len(machine.zombies[0]) == 1
    live_before = len(machine.kstack.live)
    for i in range(4, len(ops)):
        machine.apply(
            ops.kind[i], ops.pid[i], ops.tid[i], ops.cpu[i], ops.tick[i], ops.arg[i], ops.arg2[i]
        )
    # the reap in wait4 disposed the zombie to the cache; the exited child's kstack parked
    assert machine.zombies[0] == [] and len(machine.proc_zone) == 1
    assert len(machine.kstack.live) == live_before - 1


@pytest.mark.parametrize("rev", [r.name for r in BUILTIN])
def test_replay_is_deterministic_and_ok_for_every_builtin(store, rev):
    cfg = machine_config("amd64", {})
    rev, info = lookup(registry(), rev), store.trace("w")
    unit = work.resolve(info, rev, "amd64")
    a = work.result(store, unit)  # replayed, and stored
    b = replay(work.ops(store, unit), info.name, info.sha256, rev, cfg, {})[0]
    assert work.result(store, unit) == a  # from the runs table
    assert a == b and a.outcome.status == "ok" and a.ops == 7
    assert a.metrics["user.pages_peak"] == 1


def test_a_kernel_panic_is_an_outcome_with_its_place_in_the_trace(store):
    d = derive(store)
    policy = lookup(registry(), "D38852").policy
    machine = Machine(machine_config("amd64", {"boot_threads": "0"}), policy)

    class PanicsAtExec:  # the machine, but an exec panics (a compiled Machine takes no patch)
        boot, digest = machine.boot, machine.digest

        @staticmethod
        def apply(kind, *args):
            if kind == kops.EXEC:
                raise KernelPanic("vm_thread_stack_dispose: kstack already missing?")
            machine.apply(kind, *args)

    outcome = run(PanicsAtExec(), d)
    assert (outcome.status, outcome.op, outcome.op_index) == ("panic", "EXEC", 4)
    assert (outcome.pid, outcome.tid, outcome.line) == (200, 100200, 13)
    assert "kstack already missing" in outcome.message


def test_cli_replay_json_and_set(tmp_path):
    ingest_text(tmp_path, workload().text(), name="w")
    db = str(tmp_path / "store.duckdb")
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli,
        [
            "replay",
            "w",
            "--rev",
            "D38852",
            "--db",
            db,
            "--set",
            "kstack_pages=6",
            "--json",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["settings"] == {"kstack_pages": "6"} and data["outcome"]["status"] == "ok"
    assert out.read_text() == result.output
    assert set(data["metrics"]) >= {"kstack.created", "reserv.fullpop", "phys.fmfi"}


def test_unknown_revision_and_parameter_are_one_line_errors(tmp_path, capsys):
    from conftest import assert_one_line_error, run_main

    ingest_text(tmp_path, workload().text(), name="w")
    db = str(tmp_path / "store.duckdb")
    code, _, err = run_main(["replay", "w", "--rev", "nope", "--db", db], capsys)
    assert code == 2
    assert_one_line_error(err, "unknown revision 'nope'")
    code, _, err = run_main(["replay", "w", "--rev", "base", "--db", db, "--set", "x=1"], capsys)
    assert code == 2
    assert_one_line_error(err, "unknown machine parameter 'x'")


def test_user_revisions_from_toml(tmp_path):
    f = tmp_path / "revs.toml"
    f.write_text(
        '[[revision]]\nname = "D38852-noreserv"\nbased_on = "D38852"\nreservations = false\n'
    )
    revs = registry([str(f)])
    assert revs["D38852-noreserv"].policy.reservations is False
    assert revs["D38852-noreserv"].policy.kva == revs["D38852"].policy.kva


def test_result_json_is_byte_identical_across_runs_and_reads_back(tmp_path):
    from kreplay.result import from_json, to_json

    ingest_text(tmp_path, workload().text(), name="w")
    db = str(tmp_path / "store.duckdb")
    runs = [
        CliRunner().invoke(cli, ["replay", "w", "--rev", "ffff", "--db", db, "--json"])
        for _ in range(2)
    ]
    assert runs[0].exit_code == 0 and runs[0].stdout_bytes == runs[1].stdout_bytes
    assert runs[0].stdout.endswith("}\n")
    result = from_json(runs[0].stdout_bytes, "r.json")
    assert to_json(result) == runs[0].stdout_bytes


def test_a_result_of_another_format_version_is_a_clear_error():
    from kreplay.errors import KreplayError
    from kreplay.result import from_json

    with pytest.raises(KreplayError, match="format version 0"):
        from_json(b'{"format_version": 0}', "old.json")


def test_ops_are_cached_in_the_store_and_read_back_unchanged(tmp_path):
    ingest_text(tmp_path, workload().text(), name="w")
    with Store(str(tmp_path / "store.duckdb")) as s:
        info = s.trace("w")
        fresh = lc.derive_trace(s, info.trace_id, info.options)
        first = lc.cached_trace_ops(s, info.trace_id, info.options)
        again = lc.cached_trace_ops(s, info.trace_id, info.options)
        (n,) = s.con.execute("SELECT count(*) FROM op_sets").fetchone()
    assert n == 1
    assert vars(again.ops) == vars(fresh.ops) == vars(first.ops)
    assert again.preflight == fresh.preflight and again.initial == fresh.initial


def test_plugin_revisions_come_from_the_entry_point_group(monkeypatch):
    import kreplay.revisions as revisions
    from kreplay.model.policy import KstackPolicy

    class EntryPoint:
        name, value = "mine", "my_pkg:REVS"

        def load(self):
            return [
                revisions.Revision(
                    "mine", "a plugin revision", "my_pkg", KstackPolicy(reservations=False)
                )
            ]

    monkeypatch.setattr(revisions, "entry_points", lambda group: [EntryPoint()])
    revs = revisions.registry()
    assert revs["mine"].origin == "plugin my_pkg:REVS"
    assert revs["mine"].policy.reservations is False


ops_strategy = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 7), st.integers(0, 300)), max_size=300
)


@pytest.mark.parametrize("rev", ["base", "D38852", "ffff", "later"])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(script=ops_strategy)
def test_machine_gives_all_memory_back_when_everything_ends(rev, script):
    """Random lifecycles with page faults: no frame is ever held twice, and once every
    process has exited and been reaped and the caches are drained, memory is whole."""
    cfg = machine_config(
        "amd64",
        {
            "boot_threads": "0",
            "mem_per_domain_mb": "256",
            "kstack_cache_size": "64",  # buckets of 2 on 8 cpus, 32 in the zone
        },
    )
    m = Machine(cfg, lookup(registry(), rev).policy)
    total = m.phys.free_pages
    live: dict[int, list[int]] = {}
    next_id = 1000
    for tick, (action, cpu, n) in enumerate(script):
        next_id += 1
        pids = sorted(live)
        if action == 0 or not pids:
            live[next_id] = [next_id]
            m.apply(kops.PROC_NEW, next_id, next_id, cpu, tick, 0, 0)
            continue
        pid = pids[n % len(pids)]
        if action == 1:
            live[pid].append(next_id)
            m.apply(kops.THREAD_NEW, pid, next_id, cpu, tick, 0, 0)
        elif action == 2 and len(live[pid]) > 1:
            m.apply(kops.THREAD_EXIT, pid, live[pid].pop(), cpu, tick, 0, 0)
        elif action == 3:
            m.apply(kops.FAULT, pid, live[pid][0], cpu, tick, 0x800000 + n, 0)
        elif action == 4:
            m.apply(kops.UNMAP, pid, live[pid][0], cpu, tick, 0x800000 + n, 8)
        else:
            m.apply(kops.PROC_EXIT, pid, live[pid][0], cpu, tick, 0, 0)
            m.apply(kops.REAP, pid, 0, cpu, tick, 0, 0)
            del live[pid]
        frames = [f for obj in m.user.values() for f in obj.pages.values()]
        frames += list(m.kstack.object.pages.values())
        assert len(frames) == len(set(frames))
    for pid in sorted(live):
        m.apply(kops.PROC_EXIT, pid, live[pid][0], 0, len(script), 0, 0)
        m.apply(kops.REAP, pid, 0, 0, len(script), 0, 0)
    for domain in range(cfg.domains):
        m._reap_domain(0, domain)
    for stack in m.proc_zone:
        if stack is not None:
            m.kstack.thread_dispose(0, stack)
    m.kstack.drain_cache()
    assert m.user_pages == 0 and not m.reservs.by_block
    assert m.phys.free_pages == total


def _machine_after(text_lines, tmp_path, has_tids=True):
    ingest_text(tmp_path, "".join(line + "\n" for line in text_lines), name="w")
    with Store(str(tmp_path / "store.duckdb"), read_only=True) as s:
        info = s.trace("w")
        d = lc.derive_trace(s, info.trace_id, info.options)
    m = Machine(machine_config("amd64", {"boot_threads": "0"}), lookup(registry(), "D38852").policy)
    assert run(m, d).status == "ok"
    return d, m


def test_a_recycled_fork_reuses_the_parked_kstack_even_when_the_parents_ret_comes_first(
    tmp_path,
):
    t = Trace()
    for child, tid in ((200, 100200), (201, 100201)):
        t.rec(100, 100100, "sh", "CALL", "fork")
        t.rec(100, 100100, "sh", "RET", f"fork {child}/{child:#x}")  # before the child
        t.rec(child, tid, "sh", "RET", "fork 0")
        t.rec(child, tid, "sh", "CALL", "execve(0x1,0x2,0x3)")
        t.rec(child, tid, "cc", "RET", "execve JUSTRETURN")
        t.rec(child, tid, "cc", "CALL", "exit(0)")
        t.rec(100, 100100, "sh", "RET", f"wait4 {child}/{child:#x}")
    d, m = _machine_after(t.lines, tmp_path)
    assert [kops.OP_NAMES[k] for k in d.ops.kind].count("PROC_NEW") == 2
    # sh (pre-existing) and the first child took stacks; the second fork reused the
    # first child's parked stack; after its reap that stack is parked again
    assert m.kstack.stats.cache_misses + m.kstack.stats.cache_hits == 2
    assert len(m.proc_zone) == 1 and m.proc_zone[0] is not None
    assert not any(m.zombies)


def test_a_vfork_child_that_exits_before_the_parents_ret_is_created_once(tmp_path):
    t = Trace()
    t.rec(100, 100100, "sh", "CALL", "vfork")
    t.rec(200, 100200, "sh", "RET", "vfork 0")
    t.rec(200, 100200, "sh", "CALL", "exit(1)")
    t.rec(100, 100100, "sh", "RET", "vfork 200/0xc8")
    t.rec(100, 100100, "sh", "RET", "wait4 200/0xc8")
    d, m = _machine_after(t.lines, tmp_path)
    assert [kops.OP_NAMES[k] for k in d.ops.kind] == ["PROC_NEW", "PROC_EXIT", "REAP"]
    assert len(m.kstack.live) == 2 and len(m.proc_zone) == 1


def test_a_pid_reused_after_an_unseen_reap_is_a_new_process(tmp_path):
    t = Trace()
    t.rec(200, 100200, "a", "RET", "fork 0")
    t.rec(200, 100200, "a", "CALL", "exit(0)")  # reaped by init, unseen
    t.rec(200, 100300, "b", "RET", "fork 0")  # pid 200 again, a new process
    t.rec(200, 100300, "b", "CALL", "thr_exit(0)")
    d, m = _machine_after(t.lines, tmp_path)
    assert [kops.OP_NAMES[k] for k in d.ops.kind] == ["PROC_NEW", "PROC_EXIT", "REAP", "PROC_NEW"]
    assert d.preflight.reaps_of_unknown == 1
    assert m.procs[200].threads and len(m.proc_zone) == 0  # the parked stack was reused


def test_wait6_with_wnowait_reports_a_child_without_reaping_it(tmp_path):
    t = Trace()
    t.rec(200, 100200, "a", "RET", "fork 0")
    t.rec(200, 100200, "a", "CALL", "exit(0)")
    t.rec(100, 100100, "sh", "CALL", "wait6(P_PID,200,0x7fff0,0x1000004<WEXITED|WNOWAIT>,0,0)")
    t.rec(100, 100100, "sh", "RET", "wait6 200/0xc8")
    t.rec(100, 100100, "sh", "CALL", "wait4(200,0x7fff0,0,0)")
    t.rec(100, 100100, "sh", "RET", "wait4 200/0xc8")
    d, _ = _machine_after(t.lines, tmp_path)
    assert [kops.OP_NAMES[k] for k in d.ops.kind] == ["PROC_NEW", "PROC_EXIT", "REAP"]
    assert d.ops.line[-1] == 6


def test_silences_of_a_second_or_more_become_sleep_and_wake_ops(tmp_path):
    t = Trace()
    t.rec(300, 100300, "srv", "CALL", "read(0x3,0x1000,0x10)")
    t.rec(400, 100400, "cc", "CALL", "getpid")
    t.ms += 1500  # 300 is silent for 1.5 s; 400 for 1.5 s as well, then speaks
    t.rec(400, 100400, "cc", "RET", "getpid 400/0x190")
    t.ms += 400
    t.rec(300, 100300, "srv", "RET", "read 16/0x10")
    t.rec(400, 100400, "cc", "CALL", "getpid")  # 400: only 0.4 s since its last record
    ingest_text(tmp_path, t.text(), name="s")
    with Store(str(tmp_path / "store.duckdb"), read_only=True) as s:
        info = s.trace("s")
        d = lc.derive_trace(s, info.trace_id, info.options)
    marks = [
        (kops.OP_NAMES[k], p, line)
        for k, p, line in zip(d.ops.kind, d.ops.pid, d.ops.line, strict=True)
    ]
    assert marks == [
        ("SLEEP", 300, 1),
        ("SLEEP", 400, 2),
        ("WAKE", 400, 3),
        ("WAKE", 300, 4),
    ]
    assert d.ops.tick[d.ops.kind.index(kops.WAKE)] - d.ops.tick[1] == 1501


def test_relative_timestamps_give_no_sleep_marks(tmp_path):
    lines = [
        header(300, "srv", "CALL", tid=100300, ts=("0.000001000",), cpu=0) + "read(0x3,0x1,0x1)",
        header(300, "srv", "RET", tid=100300, ts=("5.000000000",), cpu=0) + "read 1",
    ]
    ingest_text(tmp_path, "\n".join(lines) + "\n", name="r", kdump_options="HRc")
    with Store(str(tmp_path / "store.duckdb"), read_only=True) as s:
        info = s.trace("r")
        assert "R" in info.options
        d = lc.derive_trace(s, info.trace_id, info.options)
    assert kops.SLEEP not in d.ops.kind


def _zombie_machine(timed: bool, domains: int = 1) -> Machine:
    """A process with two threads on cpu 0; the second exits at tick 1000 (1 s, hz 1000)."""
    preset = "amd64-numa2" if domains == 2 else "amd64"
    m = Machine(machine_config(preset, {"boot_threads": "0"}), lookup(registry(), "D38852").policy)
    m.boot([], timed)
    m.apply(kops.PROC_NEW, 10, 100, 0, 0, 0, 0)
    m.apply(kops.THREAD_NEW, 10, 101, 0, 500, 0, 0)
    m.apply(kops.THREAD_EXIT, 10, 101, 0, 1000, 0, 0)
    return m


def test_the_reap_callout_disposes_a_zombie_left_alone_for_more_than_5_s():
    m = _zombie_machine(timed=True)
    m.apply(kops.FAULT, 10, 100, 0, 4999, 0x800, 0)  # before the first 5-second mark
    assert len(m.zombies[0]) == 1
    cached = len(m.kstack.cache)
    m.apply(kops.FAULT, 10, 100, 0, 5000, 0x801, 0)  # the mark at 5 s: 5000 - 0 > 5000? no
    assert len(m.zombies[0]) == 1
    m.apply(kops.FAULT, 10, 100, 0, 10000, 0x802, 0)  # the mark at 10 s: 10000 - 0 > 5000
    assert m.zombies[0] == [] and m.reapticks == [10000]
    assert len(m.kstack.cache) == cached + 1  # its kstack went back to the kstack cache


def test_no_reap_callout_on_a_trace_without_time():
    m = _zombie_machine(timed=False)
    m.apply(kops.FAULT, 10, 100, 0, 60000, 0x800, 0)  # ticks of an untimed trace are seq numbers
    assert len(m.zombies[0]) == 1


def test_the_callout_waits_5_s_after_the_domains_last_reap():
    m = _zombie_machine(timed=True)
    m.apply(kops.THREAD_NEW, 10, 102, 0, 7000, 0, 0)  # thread_alloc reaps domain 0 at 7 s
    assert m.reapticks == [7000] and m.zombies[0] == []
    m.apply(kops.THREAD_EXIT, 10, 102, 0, 7100, 0, 0)
    m.apply(kops.FAULT, 10, 100, 0, 10000, 0x800, 0)  # mark at 10 s: only 3 s since the reap
    assert len(m.zombies[0]) == 1
    m.apply(kops.FAULT, 10, 100, 0, 15000, 0x801, 0)  # mark at 15 s: 8 s since the reap
    assert m.zombies[0] == [] and m.reapticks == [15000]


def test_the_callouts_reap_reaps_every_domain():
    m = _zombie_machine(timed=True, domains=2)  # cpu 0: domain 0
    m.apply(kops.THREAD_NEW, 10, 103, 8, 1500, 0, 0)  # cpu 8 of amd64-numa2: domain 1
    m.apply(kops.THREAD_EXIT, 10, 103, 8, 1600, 0, 0)
    assert [len(z) for z in m.zombies] == [1, 1]
    m.apply(kops.FAULT, 10, 100, 0, 10000, 0x800, 0)
    assert [len(z) for z in m.zombies] == [0, 0] and m.reapticks == [10000, 10000]


def test_derive_is_a_function_of_typed_events_alone():
    """Issue 17: no store, no DuckDB: events written by hand give the lifecycle's ops."""
    from kreplay import ops as kops
    from kreplay.events import IdleGap, LifecycleEvent

    ms = 1_000_000
    events = [
        LifecycleEvent(0, 1, 10, 100, 0, 0, "CALL", "fork", ""),
        LifecycleEvent(1, 2, 10, 100, 0, 1 * ms, "RET", "fork", retval=11, ret_kind="value"),
        LifecycleEvent(2, 3, 11, 200, 1, 2 * ms, "RET", "fork", retval=0, ret_kind="value"),
        LifecycleEvent(3, 4, 11, 200, 1, 3 * ms, "CALL", "thr_new", "0x7ffe,0x68"),
        LifecycleEvent(4, 5, 11, 201, 2, 4 * ms, "RET", "thr_new", retval=0, ret_kind="value"),
        LifecycleEvent(5, 6, 11, 200, 1, 5 * ms, "RET", "thr_new", retval=0, ret_kind="value"),
        LifecycleEvent(6, 7, 11, 201, 2, 6 * ms, "CALL", "thr_exit", "0x0"),
        LifecycleEvent(7, 8, 11, 200, 1, 7 * ms, "CALL", "exit", "0"),
        LifecycleEvent(8, 9, 10, 100, 0, 9 * ms, "RET", "wait4", retval=11, ret_kind="value"),
    ]
    d = lc.derive(events, has_tids=True)
    assert [kops.OP_NAMES[k] for k in d.ops.kind] == [
        "PROC_NEW", "THREAD_NEW", "THREAD_EXIT", "PROC_EXIT", "REAP"
    ]  # fmt: skip
    assert (d.ops.pid, d.ops.tid, d.ops.tick) == (
        [11, 11, 11, 11, 11], [0, 201, 201, 200, 0], [1, 4, 6, 7, 9]
    )  # fmt: skip
    assert d.ops.arg[0] == d.ops.arg[4] == 10  # the parent forks, and reaps
    assert d.initial == [(10, 100)] and d.preflight.preexisting_procs == 1
    # pid 10 silent from its fork's RET until the wait4's: a SLEEP and a WAKE mark
    gap = IdleGap(1, 1 * ms, 0, 2, 8, 9 * ms, 0, 9, 10, 100, 100)
    marked = lc.derive(events, has_tids=True, gaps=[gap])
    names = [kops.OP_NAMES[k] for k in marked.ops.kind]
    assert names == ["PROC_NEW", "SLEEP", "THREAD_NEW", "THREAD_EXIT", "PROC_EXIT", "WAKE", "REAP"]
