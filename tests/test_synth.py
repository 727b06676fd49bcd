"""kreplay synth: every shape is kdump text the parser reads back whole, deterministic for a
seed, and the workload its name promises (docs/synth.md); traces/ sidecars tell the truth."""

import gzip
import hashlib
import json
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from kreplay import lifecycle as lc
from kreplay import ops as kops
from kreplay.check import trace_files
from kreplay.cli import cli
from kreplay.errors import KreplayError
from kreplay.ingest import ingest
from kreplay.model.machine import machine_config
from kreplay.replay import replay
from kreplay.revisions import lookup, registry
from kreplay.store import Store
from kreplay.synth import SHAPES, shapes, sidecar, synth_file, synthesize, write
from kreplay.work import sidecar_machine

REPO = Path(__file__).resolve().parents[1]
TRACES = REPO / "traces"
SEED = 7


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Every shape at scale 1 (seed 7) written, ingested, and its ops derived."""
    folder = tmp_path_factory.mktemp("synth")
    out = {}
    with Store(str(folder / "s.duckdb")) as store:
        for name in SHAPES:
            path = folder / f"{name}.kdump.gz"
            lines = write(name, SEED, 1, str(path))
            info = ingest(store, str(path), name=name).trace
            derived = lc.derive_trace(store, info.trace_id, info.options)
            out[name] = (lines, info, derived)
    return out


def machine_of(shape: str, **extra):
    """The machine of the shape's sidecar, with `extra` settings on top."""
    s = SHAPES[shape]
    return machine_config(s.machine, {k: str(v) for k, v in (s.settings | extra).items()})


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_line_parses_back_as_kdump_h_t_c(stored, shape):
    lines, info, _ = stored[shape]
    assert info.parse_errors == 0 and info.dropped == 0
    assert info.lines == lines == info.events + info.continuations
    assert info.options == "HTc"
    assert info.first_ts < info.last_ts


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_preflight_finds_only_the_process_that_was_there_before_tracing(stored, shape):
    _, _, derived = stored[shape]
    findings = {k: v for k, v in derived.preflight.findings() if v}
    assert findings == {
        "processes that existed before tracing": 1,
        "threads that existed before tracing": 1,
    }
    kinds = Counter(kops.OP_NAMES[k] for k in derived.ops.kind)
    assert kinds["THREAD_NEW"] == kinds["THREAD_EXIT"]  # every thread ends
    assert kinds["PROC_NEW"] == kinds["REAP"] == kinds["PROC_EXIT"] - 1  # all but the first


@pytest.mark.parametrize("shape", list(SHAPES))
def test_same_seed_same_bytes_other_seed_other_bytes_more_scale_more_lines(tmp_path, shape):
    a, b, c = (tmp_path / f"{n}.kdump.gz" for n in "abc")
    write(shape, 3, 1, str(a))
    write(shape, 3, 1, str(b))
    write(shape, 4, 1, str(c))
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()) != gzip.decompress(c.read_bytes())
    one = len(gzip.decompress(a.read_bytes()).splitlines())
    two = len(synthesize(shape, 3, 2))
    assert two > 1.3 * one  # numa-migrate's database fill does not grow with scale


def test_thread_storm_holds_more_threads_than_the_kstack_cache(stored):
    _, info, derived = stored["thread-storm"]
    cfg = machine_of("thread-storm")
    cache = cfg.kstack().cache_size
    live = peak = 0
    for kind in derived.ops.kind:
        live += (kind == kops.THREAD_NEW) - (kind == kops.THREAD_EXIT)
        peak = max(peak, live)
    assert peak > 4 * cache  # scale 1: four instances of 256 threads
    rev = lookup(registry(), "D38852")
    metrics = replay(derived, "thread-storm", info.sha256, rev, cfg, {})[0].metrics
    assert metrics["kstack.live_peak"] > cache
    assert metrics["kstack.created"] > 2 * cache  # the cache overflowed: stacks freed, made again


def test_numa_migrate_creates_on_domain_0_cpus_and_exits_on_domain_1_cpus(stored):
    _, _, derived = stored["numa-migrate"]
    cfg, ops = machine_of("numa-migrate"), derived.ops
    assert cfg.domains == 2
    where = Counter(
        (kops.OP_NAMES[kind], cfg.domain_of_cpu(cpu))
        for kind, cpu in zip(ops.kind, ops.cpu, strict=True)
        if kind in (kops.THREAD_NEW, kops.THREAD_EXIT, kops.FAULT)
    )
    waves = shapes.WAVE_THREADS  # scale 1: one wave, plus one reaping thread on domain 1
    assert where[("THREAD_NEW", 0)] == waves and where[("THREAD_EXIT", 1)] == waves + 1
    assert where[("THREAD_NEW", 1)] == 1 and where[("THREAD_EXIT", 0)] == 0
    domain_pages = cfg.mem_per_domain_mb * 256
    assert where[("FAULT", 0)] >= domain_pages - shapes.NUMA_SLACK_PAGES  # domain 0 filled
    first_new = ops.kind.index(kops.THREAD_NEW)
    assert ops.kind[:first_new].count(kops.FAULT) >= domain_pages - shapes.NUMA_SLACK_PAGES


def test_numa_migrate_panics_only_where_the_kva_goes_back_to_the_wrong_arena(tmp_path):
    """The revision that frees a stack's KVA to its pages' domain panics; D38852 not. At
    scale 2: a stack of domain 0's KVA and domain 1's pages is disposed only once domain
    1's share of kstack_cache overflows (77 stacks on amd64-numa2), which scale 1 never
    reaches."""
    revs = registry()
    path = tmp_path / "numa-migrate.kdump.gz"
    write("numa-migrate", SEED, 2, str(path))
    with Store(str(tmp_path / "s.duckdb")) as store:
        info = ingest(store, str(path)).trace
        derived = lc.derive_trace(store, info.trace_id, info.options)
    cfg = machine_of("numa-migrate")
    outcome = {
        name: replay(derived, "numa-migrate", info.sha256, revs[name], cfg, {})[0].outcome
        for name in ("D38852", "D38852-r-wrongarena")
    }
    assert outcome["D38852"].status == "ok"
    assert outcome["D38852-r-wrongarena"].status == "panic"


def test_memory_pressure_reclaims_reservations_on_its_small_machine(stored):
    _, info, derived = stored["memory-pressure"]
    cfg = machine_of("memory-pressure")
    assert cfg.mem_per_domain_mb == shapes.PRESSURE_MEM_MB
    rev = lookup(registry(), "D38852")
    result = replay(derived, "memory-pressure", info.sha256, rev, cfg, {})[0]
    assert result.outcome.status == "ok"
    assert result.metrics["reserv.reclaimed"] > 0


def test_idle_swap_daemons_sleep_through_a_domains_worth_of_faults(stored):
    """Model-independent: every daemon falls silent (SLEEP) before the hog's faults and
    wakes (WAKE) only after more faults than domain 0 has pages."""
    _, _, derived = stored["idle-swap"]
    ops, domain_pages = derived.ops, machine_of("idle-swap").mem_per_domain_mb * 256
    faults = Counter(pid for kind, pid in zip(ops.kind, ops.pid, strict=True) if kind == kops.FAULT)
    hog = faults.most_common(1)[0][0]
    hog_faults = [i for i, kind in enumerate(ops.kind) if kind == kops.FAULT and ops.pid[i] == hog]
    assert len(hog_faults) > domain_pages
    sleeps = {ops.pid[i]: i for i, kind in enumerate(ops.kind) if kind == kops.SLEEP}
    wakes = {ops.pid[i]: i for i, kind in enumerate(ops.kind) if kind == kops.WAKE}
    slept_through = [p for p in sleeps if sleeps[p] < hog_faults[0] and wakes[p] > hog_faults[-1]]
    assert len(slept_through) == len(shapes.SWAP_DAEMONS)


def test_idle_swap_d38852_never_gets_its_stacks_back(stored):
    """The swapper takes the sleeping daemons' stacks; D38852 as committed waits for
    domain 0 forever at the first WAKE, D45163 swaps them back in from domain 1; without
    the swapper nothing differs."""
    revs = registry()
    _, info, derived = stored["idle-swap"]

    def on(rev: str, **extra):
        cfg = machine_of("idle-swap", **extra)
        return replay(derived, "idle-swap", info.sha256, revs[rev], cfg, {})[0]

    ok, hung = on("D45163"), on("D38852")
    assert ok.outcome.status == "ok"
    assert ok.metrics["kstack.swapouts"] > 0
    assert ok.metrics["kstack.swapins"] == ok.metrics["kstack.swapouts"]
    assert ok.metrics["numa.kstack_domain_mismatch"] > 0  # swapped in from domain 1
    assert (hung.outcome.status, hung.outcome.op) == ("hang", "WAKE")
    assert "vm_thread_swapin" in hung.outcome.message
    off = on("D38852", swap_idle_s=0)
    assert off.outcome.status == "ok" and off.metrics["kstack.swapouts"] == 0


def test_cli_writes_the_trace_and_its_sidecar(tmp_path):
    out = tmp_path / "storm.kdump.gz"
    result = CliRunner().invoke(cli, ["synth", "thread-storm", "--seed", "5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = len(gzip.decompress(out.read_bytes()).splitlines())
    side = tmp_path / "storm.toml"
    said = f"{out}: thread-storm, seed 5, scale 1: {lines:,} lines, sidecar {side}\n"
    assert result.output == said
    meta = tomllib.loads(side.read_text())
    assert meta["provenance"]["lines"] == lines
    assert (meta["provenance"]["shape"], meta["provenance"]["seed"]) == ("thread-storm", 5)
    result = CliRunner().invoke(
        cli, ["synth", "numa-migrate", "-o", str(tmp_path / "n.kdump"), "--no-sidecar", "--json"]
    )
    assert json.loads(result.output)["sidecar"] is None
    assert not (tmp_path / "n.toml").exists()


def test_cli_refuses_unknown_shapes_and_scales(tmp_path):
    for args in (["nope"], ["buildworld", "--scale", "0"], ["buildworld", "--seed", "-1"]):
        result = CliRunner().invoke(cli, ["synth", *args, "-o", str(tmp_path / "x.kdump")])
        assert result.exit_code == 2
    assert not list(tmp_path.iterdir())


def test_a_sidecar_sets_machine_parameters_and_a_bad_one_names_the_sidecar(tmp_path):
    trace = tmp_path / "t.kdump"
    trace.write_text("")
    (tmp_path / "t.toml").write_text(sidecar("memory-pressure", 1, 1, 0, str(trace)))
    cfg, settings = sidecar_machine(trace)
    assert (cfg.preset, cfg.mem_per_domain_mb) == ("amd64", 64)
    assert settings == {"mem_per_domain_mb": "64"}
    (tmp_path / "t.toml").write_text('[replay]\nmachine = "amd64"\nset = { mem_mb = 1 }\n')
    with pytest.raises(KreplayError, match="unknown machine parameter 'mem_mb'") as e:
        sidecar_machine(trace)
    assert e.value.path == str(tmp_path / "t.toml")


# ---------------------------------------------------------------------------- traces/


def sidecars() -> dict[str, dict]:
    return {
        name: tomllib.loads((TRACES / f"{name}.toml").read_text())
        for name in trace_files(str(TRACES))
    }


def test_every_trace_has_a_sidecar_with_its_provenance_and_machine():
    for name, meta in sidecars().items():
        prov, replay = meta["provenance"], meta["replay"]
        if prov["kind"] == "real":
            assert {"source", "os", "host", "date", "command"} <= set(prov), name
        else:
            assert prov["kind"] == "synthetic" and {"seed", "command"} <= set(prov), name
        cfg, _ = sidecar_machine(trace_files(str(TRACES))[name])
        assert cfg.preset == replay["machine"]


def test_the_cpu_domain_map_of_a_sidecar_is_the_machines():
    for name, meta in sidecars().items():
        listed = meta["replay"].get("cpu_domains")
        if listed is None:
            continue
        cfg, _ = sidecar_machine(trace_files(str(TRACES))[name])
        for domain, cpus in enumerate(listed):
            first, last = (int(c) for c in cpus.split("-"))
            assert {cfg.domain_of_cpu(c) for c in range(first, last + 1)} == {domain}, name


def test_the_synthetic_traces_are_what_their_sidecar_says(tmp_path, monkeypatch):
    """Regenerating from the sidecar's shape, seed and scale gives the committed bytes
    (and the same sidecar: the command in it names traces/)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "traces").mkdir()
    for name, meta in sidecars().items():
        prov = meta["provenance"]
        if "shape" not in prov:
            continue
        out = f"traces/{name}.kdump.gz"
        snapshots = "recording" in meta  # written with --snapshots (synth/recording.py)
        done = synth_file(
            prov["shape"], prov["seed"], prov["scale"], out, True, None, None, snapshots
        )
        assert (tmp_path / out).read_bytes() == (TRACES / f"{name}.kdump.gz").read_bytes(), name
        assert done.lines == prov["lines"]
        assert Path(done.sidecar).read_text() == (TRACES / f"{name}.toml").read_text()
        for made in (tmp_path / "traces").glob(f"{name}.snapshots/*/*"):
            relative = made.relative_to(tmp_path / "traces")
            assert made.read_bytes() == (TRACES / relative).read_bytes(), relative
        assert snapshots == (TRACES / f"{name}.snapshots").is_dir()


def test_the_real_traces_are_the_published_bytes():
    """Each real excerpt is the bytes its author published: the sidecar records their
    sha256 (taken from the copy of the publication when the trace was added)."""
    real = {n: m for n, m in sidecars().items() if m["provenance"]["kind"] == "real"}
    assert len(real) == 7
    for name, meta in real.items():
        digest = hashlib.sha256((TRACES / f"{name}.kdump").read_bytes()).hexdigest()
        assert digest == meta["provenance"]["sha256"], name
