"""kreplay validate (issue 18): the model's counters against a recording's snapshots.

The recordings here are synthetic (kreplay/synth/recording.py): their snapshots come from
what the simulation counted while it made the trace, not from the model, and one wrong
snapshot per counter family shows that validation finds a disagreement."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_main, write_recording

from kreplay.synth import synthesize

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def storm(tmp_path_factory):
    """A synthetic recording of thread-storm, ingested: (folder, --db args)."""
    folder = tmp_path_factory.mktemp("storm")
    write_recording("thread-storm", 1, str(folder))
    return folder


def _validate(folder: Path, capsys, *extra):
    db = folder / "s.duckdb"
    if not db.exists():
        code, _, err = run_main(["ingest", "--db", db, folder / "thread-storm.kdump"], capsys)
        assert code == 0, err
    return run_main(["validate", "thread-storm", "--db", db, *extra], capsys)


def test_the_synthetic_recording_is_the_synth_s_own_trace(storm):
    lines = (storm / "thread-storm.kdump").read_text().splitlines()
    assert lines == synthesize("thread-storm", 1, 1)


def test_the_model_agrees_with_the_simulation_s_counts(storm, capsys):
    code, out, err = _validate(storm, capsys, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["revision"] == "base" and report["revision_from"].endswith("14.1-RELEASE")
    assert report["outcome"]["status"] == "ok" and report["agrees"]
    by = {c["counter"]: c for c in report["counters"]}
    # 4 stress-ng instances forked, each 3 rounds of 256 thr_new: 3,076 stacks and threads
    for counter in ("zone.kstack_cache.requests", "zone.THREAD.requests"):
        assert (by[counter]["observed"], by[counter]["predicted"]) == (3076, 3076)
    assert (by["zone.PROC.requests"]["observed"], by["zone.PROC.requests"]["predicted"]) == (4, 4)
    assert by["zone.kstack_cache.xdomain"]["verdict"] == "not predicted"


def test_the_table_names_each_counter_and_the_verdict(storm, capsys):
    code, out, _ = _validate(storm, capsys)
    assert code == 0
    assert out.splitlines()[0].startswith("thread-storm on base (from [machine] osrelease")
    assert any(line.split()[:1] == ["zone.THREAD.requests"] for line in out.splitlines())
    assert out.rstrip().endswith("the model agrees with the machine")


@pytest.mark.parametrize(
    "counter, error",
    [
        ("zone.kstack_cache.requests", 400),  # stacks the trace did not make
        ("zone.THREAD.requests", -400),
        ("zone.PROC.used", 60),  # processes left behind
        ("vm.reserv.broken", 5000),
        ("vm.stats.vm.v_free_count", -900_000),
    ],
)
def test_a_wrong_snapshot_of_each_family_is_found(tmp_path, capsys, counter, error):
    write_recording("thread-storm", 1, str(tmp_path), wrong={counter: error})
    code, out, err = _validate(tmp_path, capsys, "--json")
    assert code == 1, err
    report = json.loads(out)
    differs = [c["counter"] for c in report["counters"] if c["verdict"] == "differs"]
    assert differs == [counter] and not report["agrees"]


def test_a_trace_without_snapshots_is_trouble(tmp_path, capsys):
    for name in ("uul-freebsd12.kdump", "uul-freebsd12.toml"):
        shutil.copy(REPO / "traces" / name, tmp_path / name)
    db = tmp_path / "s.duckdb"
    assert run_main(["ingest", "--db", db, tmp_path / "uul-freebsd12.kdump"], capsys)[0] == 0
    code, _, err = run_main(["validate", "uul-freebsd12", "--db", db], capsys)
    assert code == 2
    assert_one_line_error(err, "uul-freebsd12.toml", "no [recording] table")


def test_a_current_kernel_needs_the_revision_named(tmp_path, capsys):
    sidecar = Path(write_recording("thread-storm", 1, str(tmp_path)))
    sidecar.write_text(sidecar.read_text().replace("14.1-RELEASE", "15.0-CURRENT", 1))
    code, _, err = _validate(tmp_path, capsys)
    assert code == 2
    assert_one_line_error(err, "15.0-CURRENT", "pass --rev")
    code, out, err = run_main(
        ["validate", "thread-storm", "--db", tmp_path / "s.duckdb", "--rev", "D46115", "--json"],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["revision_from"] == "--rev"


def test_check_reports_each_recording_s_validation_without_failing_on_it(
    tmp_path, capsys, monkeypatch
):
    """A traces/ folder with a synthetic recording whose snapshot is wrong: check lists
    the validation (disagrees) and still judges only the goldens."""
    monkeypatch.delenv("CI", raising=False)  # golden update refuses to run in CI
    traces = tmp_path / "traces"
    traces.mkdir()
    write_recording("thread-storm", 1, str(traces), wrong={"zone.PROC.used": 60})
    db = ["--db", tmp_path / "s.duckdb"]
    golden = ["--golden", tmp_path / "golden", "--traces", traces]
    assert run_main(["golden", "update", *golden, "--rev", "base", *db], capsys)[0] == 0
    code, out, err = run_main(["check", *golden, "--rev", "base", *db, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["validations"] == [
        {
            "trace": "thread-storm",
            "revision": "base",
            "status": "disagrees",
            "detail": "10 counters within tolerance, 1 outside",
        }
    ]
    code, out, _ = run_main(["check", *golden, *db, "--rev", "D38852"], capsys)
    assert "validation: thread-storm: error (no revision 'base'" in out
