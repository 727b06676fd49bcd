"""The model's two builds (kreplay/model/native.py): compiled by mypyc, or its source."""

import json
import os
import pickle
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import REPO

from kreplay.check import trace_files
from kreplay.cli import cli
from kreplay.model import native
from kreplay.model.kstack import KstackConfig
from kreplay.model.machine import machine_config
from kreplay.model.policy import Guard1Pindex, KstackPolicy
from kreplay.revisions import BUILTIN


def test_make_test_runs_the_compiled_model():
    """`make test` sets KREPLAY_EXPECT_COMPILED: the tests must then exercise the build."""
    if not os.environ.get("KREPLAY_EXPECT_COMPILED"):
        pytest.skip("not run by `make test`")
    assert native.why_source() is None
    assert native.BUILD == "compiled (mypyc)"
    from kreplay.model import reserv

    assert not reserv.__file__.endswith(".py")
    assert "model: compiled (mypyc)" in CliRunner().invoke(cli, ["--version"]).output


def test_the_source_matches_the_committed_goldens_too(tmp_path):
    """The nightly check of the bundled corpus with KREPLAY_PURE_PYTHON set: the source
    gives the results the compiled build gives (test_regression checks the build)."""
    if native.why_source() is not None:
        pytest.skip(f"this run's model is the source already ({native.why_source()})")
    shutil.copytree(REPO / "traces", tmp_path / "traces")
    shutil.copytree(REPO / "golden", tmp_path / "golden")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {native.PURE_ENV: "1"}
    check = ["check", "--jobs", "2", "--db", str(tmp_path / "s.duckdb"), "--json"]
    check += ["--traces", str(tmp_path / "traces"), "--golden", str(tmp_path / "golden")]
    code = "import sys; from kreplay.cli import main; sys.exit(main())"
    run = subprocess.run([sys.executable, "-c", code, *check], env=env, capture_output=True)
    assert run.returncode == 0, run.stderr.decode()
    report = json.loads(run.stdout)
    assert not report["failed"] and not report["orphans"]
    assert len(report["cells"]) == len(trace_files(str(REPO / "traces"))) * len(BUILTIN)
    assert {cell["status"] for cell in report["cells"]} <= {"ok", "panic", "hang"}


@pytest.fixture
def model_copy(tmp_path, monkeypatch):
    """native's view of a copy of the model folder, with a record of a build of it."""
    for module in native.COMPILED:
        shutil.copy(native.HERE / f"{module}.py", tmp_path)
        for name in (f"{native.GROUP}__mypyc", module):
            (tmp_path / f"{name}{native.EXTENSION_SUFFIXES[0]}").touch()
    monkeypatch.setattr(native, "HERE", tmp_path)
    monkeypatch.setattr(native, "RECORD", tmp_path / "compiled.json")
    monkeypatch.delenv(native.PURE_ENV, raising=False)
    native.RECORD.write_text(json.dumps(native.source_digests()))
    return tmp_path


def test_the_build_runs_while_its_record_matches_the_sources(model_copy):
    assert native.why_source() is None


def test_an_edited_source_runs_from_source_until_compiled_again(model_copy):
    with open(model_copy / "reserv.py", "a") as f:
        f.write("# edited\n")
    assert native.why_source() == "reserv.py changed since compiled (`make` compiles it again)"


def test_no_build_or_the_variable_means_the_source(model_copy, monkeypatch):
    monkeypatch.setenv(native.PURE_ENV, "1")
    assert native.why_source() == "KREPLAY_PURE_PYTHON is set"
    monkeypatch.delenv(native.PURE_ENV)
    (model_copy / f"vmem{native.EXTENSION_SUFFIXES[0]}").unlink()
    assert native.why_source() == "not compiled (`make` compiles it)"


def test_policies_and_machines_pickle_for_check_workers_and_dask():
    for value in (KstackPolicy(pindex=Guard1Pindex()), KstackConfig(guard_pages=2)):
        assert pickle.loads(pickle.dumps(value)) == value
    cfg = machine_config("amd64-numa2", {"ncpu": "16"})
    assert pickle.loads(pickle.dumps(cfg)) == cfg
