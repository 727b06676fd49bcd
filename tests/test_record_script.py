"""kreplay/record/record.sh, the FreeBSD recording script: shellcheck, and runs on this
machine against stub FreeBSD commands (tests/record_stub/) that print the real published
captures, whose sidecar must ingest and whose snapshots must parse."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, run_main

from kreplay.record import script_text
from kreplay.snapshot.recording import read_recording
from kreplay.snapshot.render import SNAPSHOT_FILES, synthetic_snapshot
from kreplay.snapshot.tolerance import SCRIPT_FORKS

SCRIPT = REPO / "kreplay" / "record" / "record.sh"
STUB = REPO / "tests" / "record_stub"
SAMPLES = REPO / "tests" / "samples" / "sysctl"
VMSTAT_Z_13 = SAMPLES / "09-drm-kmod-68-fbsd13-14-coretxt-vmstat-z-head-xdomain.txt"
STATS_VM_13 = SAMPLES / "15-dotnet-64935-fbsd13-sysctl-vm-stats-page-counts.txt"
KDUMP = REPO / "traces" / "uul-freebsd12.kdump"
SHELLCHECK_STATUS = REPO / ".venv" / "shellcheck-status.txt"  # written by `make shellcheck`

STUBS = ("sysctl", "vmstat", "kdump", "ktrace", "sha256")
# The base-system tools the script may run besides the stubs (its header lists them): a
# wrapper logs each call and runs Linux's own; any other command is not found.
BASE_TOOLS = ("date", "uname", "mkdir", "rm", "awk", "sed", "tr")
MACHINE_CALL = (
    "sysctl -i hw.machine hw.machine_arch hw.ncpu hw.physmem hw.pagesize vm.ndomains "
    "kern.kstack_pages vm.kstack_cache_size kern.osrelease kern.osreldate kern.version "
    "kern.features.invariants kern.features.invariant_support kern.features.kasan "
    "kern.features.kmsan kern.features.ktrace"
)


# ---------------------------------------------------------------------------- shellcheck


def test_the_script_passes_shellcheck():
    path = shutil.which("shellcheck")
    if path is None:
        why = (
            SHELLCHECK_STATUS.read_text().strip() if SHELLCHECK_STATUS.exists() else "not installed"
        )
        pytest.skip(f"no shellcheck ({why}); `make shellcheck` installs Debian's package")
    result = subprocess.run(
        [path, "--shell=sh", "--severity=style", str(SCRIPT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kreplay_record_script_prints_the_installed_script(capsys):
    code, out, _ = run_main(["record", "--script"], capsys)
    assert code == 0 and out == SCRIPT.read_text() == script_text()
    code, out, _ = run_main(["record", "--script", "--json"], capsys)
    assert json.loads(out) == {"script": SCRIPT.read_text()}
    code, out, _ = run_main(["record", "--json"], capsys)
    info = json.loads(out)
    assert info["sha256"] == hashlib.sha256(SCRIPT.read_bytes()).hexdigest()
    assert Path(info["script"]).read_text() == SCRIPT.read_text()


# ---------------------------------------------------------------------------- the stub machine


class Machine:
    """A stub FreeBSD machine in `folder`: bin/ with the stubs and the logging wrappers,
    and the answers of each command (machine.json)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True)
        self.answers: dict[str, dict] = {"before": {}, "after": {}, "any": {}}
        for name in STUBS:
            _executable(self.bin / name, f"#!{sys.executable}\n" + (STUB / "stub.py").read_text())
        for tool in BASE_TOOLS:
            real = shutil.which(tool)
            _executable(
                self.bin / tool,
                f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >> "$KREPLAY_STUB/calls.log"\n'
                f'exec {real} "$@"\n',
            )

    def answer(self, call: str, phase: str = "any", **answer) -> None:
        self.answers[phase][call] = {k: str(v) if k == "file" else v for k, v in answer.items()}

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        (self.folder / "machine.json").write_text(json.dumps(self.answers))
        for stale in ("calls.log", "after-phase"):
            (self.folder / stale).unlink(missing_ok=True)
        env = {"PATH": str(self.bin), "KREPLAY_STUB": str(self.folder), "LC_ALL": "C"}
        return subprocess.run(
            ["/bin/sh", str(SCRIPT), *args],
            cwd=cwd or self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )

    def calls(self) -> list[str]:
        return (self.folder / "calls.log").read_text().splitlines()


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def real_machine(folder: Path) -> Machine:
    """The FreeBSD 13 machine of the published captures (tests/record_stub/README.md says
    which of its answers are real and which synthetic)."""
    m = Machine(folder)
    m.answer(MACHINE_CALL, file=STUB / "machine-amd64-13.txt")
    m.answer("vmstat -z", file=VMSTAT_Z_13)
    m.answer("vmstat --libxo json -z", rc=1, err="stub: no libxo capture was published\n")
    m.answer("sysctl vm.stats.vm", file=STATS_VM_13)
    m.answer("sysctl vm.reserv", file=STUB / "vm.reserv-13.txt")
    m.answer("sysctl vm.domain", file=STUB / "vm.domain-13.txt")
    m.answer("sysctl -i vm.kstacks vm.kstack_cache_size", text="vm.kstack_cache_size: 128\n")
    m.answer("kdump -H -T -c -f out/rec.ktr", file=KDUMP)
    return m


def _sidecar(folder: Path, name: str = "rec") -> dict:
    with open(folder / "out" / f"{name}.toml", "rb") as f:
        return tomllib.load(f)


# ---------------------------------------------------------------------------- the real captures


@pytest.fixture
def recorded(tmp_path):
    """The script's run on the real captures' machine: the machine, and its result."""
    machine = real_machine(tmp_path)
    result = machine.run("-o", "out", "-n", "rec", "/bin/sh", "-c", "exit 0")
    assert result.returncode == 0, result.stderr
    return machine, result


def test_a_recording_writes_trace_binary_sidecar_and_snapshots(recorded):
    machine, result = recorded
    out = machine.folder / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "rec.kdump",
        "rec.ktr",
        "rec.snapshots",
        "rec.toml",
    ]
    assert (out / "rec.kdump").read_bytes() == KDUMP.read_bytes()
    snapshots = out / "rec.snapshots"
    assert (snapshots / "before" / "vmstat-z.txt").read_bytes() == VMSTAT_Z_13.read_bytes()
    assert (snapshots / "after" / "vm.stats.vm.txt").read_bytes() == STATS_VM_13.read_bytes()
    assert sorted(p.name for p in (snapshots / "before").iterdir()) == sorted(SNAPSHOT_FILES)
    assert sorted(p.name for p in (snapshots / "machine").iterdir()) == ["machine.txt"]
    assert "workload status 0" in result.stdout


def test_the_sidecar_holds_the_machine_and_every_capture(recorded):
    machine, _ = recorded
    sidecar = _sidecar(machine.folder)
    assert sidecar["provenance"]["os"] == "FreeBSD 13.2-RELEASE amd64"
    assert sidecar["provenance"]["command"] == (
        "ktrace -i -d -t cfw -f rec.ktr /bin/sh -c exit 0; kdump -H -T -c -f rec.ktr"
    )
    assert sidecar["replay"] == {
        "machine": "amd64",
        "set": {"ncpu": 8, "domains": 1, "mem_per_domain_mb": 16255, "kstack_pages": 4,
                "kstack_cache_size": 128},
    }  # fmt: skip
    assert sidecar["machine"] == {
        "osrelease": "13.2-RELEASE",
        "osreldate": 1302001,
        "version": "FreeBSD 13.2-RELEASE releng/13.2-n254617-525ecfdad597 GENERIC",
        "machine": "amd64",
        "machine_arch": "amd64",
        "ncpu": 8,
        "ndomains": 1,
        "physmem": 17045032960,
        "pagesize": 4096,
        "kstack_pages": 4,
        "kstack_cache_size": 128,
        "invariants": False,
        "invariant_support": True,
        "kasan": False,
        "kmsan": False,
    }
    captures = sidecar["capture"]
    assert [c["snapshot"] for c in captures] == ["machine"] + ["before"] * 6 + ["after"] * 6
    assert {c["command"] for c in captures[1:]} == {cmd for _, cmd in SNAPSHOT_FILES.values()}
    for c in captures:
        data = (machine.folder / "out" / c["file"]).read_bytes()
        assert c["sha256"] == hashlib.sha256(data).hexdigest()
    failed = [c for c in captures if c["status"] != 0]
    assert [c["command"] for c in failed] == ["vmstat --libxo json -z"] * 2
    assert failed[0]["error"] == "stub: no libxo capture was published"
    rec = sidecar["recording"]
    assert (rec["workload"], rec["workload_status"], rec["kdump_options"]) == (
        "/bin/sh -c exit 0", 0, "-H -T -c"
    )  # fmt: skip
    assert (
        rec["ktrace_sha256"]
        == hashlib.sha256((machine.folder / "out" / "rec.ktr").read_bytes()).hexdigest()
    )


def test_the_recording_ingests_and_replays_on_its_machine(recorded, capsys):
    machine, _ = recorded
    db = machine.folder / "s.duckdb"
    code, out, err = run_main(["ingest", "--db", db, machine.folder / "out" / "rec.kdump"], capsys)
    assert code == 0, err
    assert "ingested as rec" in out
    code, out, err = run_main(["show", "rec", "--db", db, "--json"], capsys)
    assert json.loads(out)["trace"]["machine"] == json.dumps(
        {"preset": "amd64", "set": {"domains": "1", "kstack_cache_size": "128",
                                    "kstack_pages": "4", "mem_per_domain_mb": "16255",
                                    "ncpu": "8"}}, sort_keys=True)  # fmt: skip
    code, out, err = run_main(["replay", "rec", "--rev", "base", "--db", db], capsys)
    assert code == 0, err  # the model takes the machine the sidecar names


def test_the_recording_validates_against_its_snapshots(recorded, capsys):
    """Issue 18's acceptance: the stub run's sidecar ingests and validate prints the
    table. The stub's snapshots are the same published captures before and after, so
    every observed change is 0, as the model's are for a 14-line trace."""
    machine, _ = recorded
    db = machine.folder / "v.duckdb"
    code, _, err = run_main(["ingest", "--db", db, machine.folder / "out" / "rec.kdump"], capsys)
    assert code == 0, err
    code, out, err = run_main(["validate", "rec", "--db", db], capsys)
    assert code == 0, err
    assert out.startswith("rec on base (from [machine] osrelease 13.2-RELEASE), machine amd64")
    assert "vm.reserv.fullpop" in out and "the model agrees with the machine" in out


def test_the_snapshots_of_the_recording_parse(recorded, capsys):
    machine, _ = recorded
    recording = read_recording(str(machine.folder / "out" / "rec.toml"))
    held = {(c.entry.snapshot, c.entry.command): c for c in recording.captures}
    assert len(held["before", "vmstat -z"].parsed.zones) == 16
    assert len(held["after", "sysctl vm.stats.vm"].parsed.entries) == 12
    assert held["before", "sysctl vm.reserv"].parsed.partpopq[0].number == 38
    assert held["after", "vmstat --libxo json -z"].parsed is None
    observed = recording.observed()
    assert observed["zone.128 Bucket.fail"].before == 10295
    assert observed["vm.stats.vm.v_wire_count"].change == 0  # the same captures twice
    assert observed["vm.reserv.partpopq.0.-1.size_kb"].after == 54264
    code, out, err = run_main(["snapshot", machine.folder / "out" / "rec.toml", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert [c["holds"] for c in data["captures"]][:7] == [
        "13 entries", "6 entries", "1 entry", "12 entries", "5 entries",
        "failed with status 1: stub: no libxo capture was published", "16 zones",
    ]  # fmt: skip


def test_only_base_tools_run_and_few_between_two_readings(recorded):
    """Every command the script runs is a stub or a listed base tool (PATH holds nothing
    else), and between the two captures of one counter it runs at most SCRIPT_FORKS
    commands of its own (the tolerance table counts on it)."""
    machine, _ = recorded
    calls = machine.calls()
    assert {c.split()[0] for c in calls} <= {*STUBS, *BASE_TOOLS, "ktrace:"}
    start, end = (
        calls.index(next(c for c in calls if c.startswith("ktrace "))),
        calls.index("ktrace: the workload ended"),
    )
    script_calls = calls[:start] + ["ktrace"] + calls[end + 1 :]  # the workload's are traced
    worst = 0
    for _, command in SNAPSHOT_FILES.values():
        first = script_calls.index(command)
        second = script_calls.index(command, first + 1)
        worst = max(worst, second - first - 1)
    assert worst == SCRIPT_FORKS
    between_zone_readings = script_calls[script_calls.index("vmstat -z") + 1 :]
    assert between_zone_readings[: between_zone_readings.index("vmstat -z")] == ["ktrace"]


# ---------------------------------------------------------------------------- synthetic counters


def test_a_synthetic_machine_round_trips_its_counters(tmp_path, capsys):
    """Captures rendered from counters (kreplay.snapshot.render), a NUMA machine whose
    kdump has no -c, a workload that fails: the sidecar says so and the observed changes
    are the counters' changes."""
    before = {"zone.kstack_cache.used": 40, "zone.kstack_cache.free": 12,
              "zone.kstack_cache.requests": 900, "zone.kstack_cache.size": 16384,
              "vm.reserv.broken": 3, "vm.reserv.partpopq.1.-1.number": 5,
              "vm.stats.vm.v_wire_count": 100000, "vm.kstack_cache_size": 128}  # fmt: skip
    after = {**before, "zone.kstack_cache.requests": 1250, "zone.kstack_cache.free": 30,
             "vm.reserv.broken": 4, "vm.stats.vm.v_wire_count": 100512}  # fmt: skip
    m = Machine(tmp_path)
    machine_txt = (STUB / "machine-amd64-13.txt").read_text()
    machine_txt = machine_txt.replace("vm.ndomains: 1", "vm.ndomains: 2").replace(
        "hw.ncpu: 8", "hw.ncpu: 4"
    )
    m.answer(MACHINE_CALL, text=machine_txt)
    cpus = " ".join(f"dev.cpu.{i}.%domain" for i in range(4))
    m.answer(
        f"sysctl -i {cpus}", text="".join(f"dev.cpu.{i}.%domain: {i // 2}\n" for i in range(4))
    )
    for phase, counters in (("before", before), ("after", after)):
        files = synthetic_snapshot(counters, style="v5", ndomains=2)
        for file, (_, command) in SNAPSHOT_FILES.items():
            m.answer(command, phase, text=files.get(file, ""))
    ktr = "out/syn.ktr"
    m.answer(f"kdump -H -T -c -f {ktr}", rc=1, err="usage: kdump [-dEnlHRrSsTA] ...\n")
    m.answer(f"kdump -H -T -f {ktr}", file=KDUMP)
    result = m.run("-o", "out", "-n", "syn", "/bin/sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr
    sidecar = _sidecar(tmp_path, "syn")
    assert sidecar["replay"]["cpu_domains"] == ["0-1", "2-3"]
    assert sidecar["replay"]["set"]["mem_per_domain_mb"] == 16255 // 2
    assert sidecar["recording"]["kdump_options"] == "-H -T"
    assert sidecar["recording"]["workload_status"] == 3
    assert sidecar["provenance"]["command"].endswith("; kdump -H -T -f syn.ktr")
    observed = read_recording(str(tmp_path / "out" / "syn.toml")).observed()
    for name in before:
        assert (observed[name].before, observed[name].after) == (before[name], after[name]), name
    code, _, err = run_main(
        ["ingest", "--db", tmp_path / "s.duckdb", tmp_path / "out/syn.kdump"], capsys
    )
    assert code == 0, err


def test_ctrl_c_stops_the_workload_not_the_recording(tmp_path):
    """SIGINT to the whole group (as a terminal's Ctrl-C): the workload dies of it, the
    script takes the after snapshot, prints the trace and says it was interrupted."""
    m = real_machine(tmp_path)
    result = m.run("-o", "out", "-n", "rec", "/bin/sh", "-c", "kill -INT 0; sleep 5")
    assert result.returncode == 130, result.stderr
    sidecar = _sidecar(tmp_path)
    assert (sidecar["recording"]["interrupted"], sidecar["recording"]["workload_status"]) == (
        True,
        130,
    )
    assert [c["snapshot"] for c in sidecar["capture"]].count("after") == 6
    assert (tmp_path / "out" / "rec.kdump").read_bytes() == KDUMP.read_bytes()


# ---------------------------------------------------------------------------- refusals


def test_a_kernel_without_ktrace_is_refused_and_leaves_nothing(tmp_path):
    m = real_machine(tmp_path)
    without = (STUB / "machine-amd64-13.txt").read_text().replace("kern.features.ktrace: 1\n", "")
    m.answer(MACHINE_CALL, text=without)
    result = m.run("-o", "out", "-n", "rec", "/bin/true")
    assert result.returncode == 2
    assert (
        result.stderr
        == "record.sh: this kernel has no ktrace (kern.features.ktrace: options KTRACE)\n"
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_an_earlier_recording_is_kept_unless_forced(recorded):
    machine, _ = recorded
    result = machine.run("-o", "out", "-n", "rec", "/bin/true")
    assert result.returncode == 2 and "rec.ktr exists" in result.stderr
    assert "rec.snapshots" in os.listdir(machine.folder / "out")
    assert machine.run("-f", "-o", "out", "-n", "rec", "/bin/true").returncode == 0


@pytest.mark.parametrize(
    "args, why",
    [
        (["-n", "../x", "/bin/true"], "a name is letters"),
        (["-n", "a.b", "/bin/true"], "a name is letters"),
        (["-t", "cfX", "/bin/true"], "ktrace trace points"),
        ([], "usage: sh record.sh"),
        (["-q", "/bin/true"], "usage: sh record.sh"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, args, why):
    result = Machine(tmp_path).run(*args)
    assert result.returncode == 2 and why in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "machine.json"]


# ---------------------------------------------------------------------------- the sidecar read back


def test_a_capture_changed_since_the_recording_is_refused(recorded, capsys):
    machine, _ = recorded
    capture = machine.folder / "out" / "rec.snapshots" / "after" / "vmstat-z.txt"
    capture.write_bytes(capture.read_bytes().replace(b"    138,", b"    139,"))
    code, out, err = run_main(["snapshot", machine.folder / "out" / "rec.toml"], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{capture}: changed since it was recorded")


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (("status = 0\nsha256", "bogus = 1\nstatus = 0\nsha256"),
         "unknown field `bogus` - at `$.capture[0]`"),
        (('file = "rec.snapshots/machine', 'file = "../rec.snapshots/machine'),
         "below the sidecar's folder"),
        (("[recording]", "[recordings]"), "no [recording] table"),
        (("workload_status = 0", 'workload_status = "zero"'),
         "Expected `int`, got `str` - at `$.recording.workload_status`"),
    ],
    ids=["unknown field", "a path outside", "no recording", "a wrong type"],
)  # fmt: skip
def test_a_sidecar_edited_wrong_is_one_error_naming_it(recorded, capsys, edit, fragment):
    machine, _ = recorded
    sidecar = machine.folder / "out" / "rec.toml"
    sidecar.write_text(sidecar.read_text().replace(*edit, 1))
    code, _, err = run_main(["snapshot", sidecar], capsys)
    assert code == 2
    assert_one_line_error(err, str(sidecar), fragment)


def test_a_sidecar_of_a_published_trace_has_no_snapshots(capsys):
    code, _, err = run_main(["snapshot", REPO / "traces" / "uul-freebsd12.toml"], capsys)
    assert code == 2
    assert_one_line_error(err, "uul-freebsd12.toml: no [recording] table")
