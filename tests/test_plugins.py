"""A kernel developer's own revision (docs/plugins.md): the worked example replays and
diffs, `kreplay revision new` writes files the registry reads, check finds user revisions,
and every mistake in a revisions file or plugin is one line naming file and field."""

import json
import shutil

import pytest
from conftest import REPO, assert_one_line_error, run_main

from kreplay.model.policy import KstackPindex, KstackPolicy, UmaCache
from kreplay.revisions import registry
from kreplay.revisions.ffff import FfffKva

EXAMPLE = REPO / "docs" / "examples"


@pytest.fixture
def example(tmp_path):
    """The example plugin and its revisions file copied beside a store holding build-j16."""
    for name in ("pow2pindex.py", "revisions.toml"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    shutil.copy(REPO / "traces" / "build-j16.kdump.gz", tmp_path)
    return tmp_path


def test_the_worked_example_replays_and_diffs(example, capsys):
    db, revs = example / "s.duckdb", example / "revisions.toml"
    assert run_main(["ingest", "--db", db, example / "build-j16.kdump.gz"], capsys)[0] == 0
    common = ["--db", db, "--revisions", revs, "--machine", "amd64-kasan"]
    code, out, _ = run_main(
        ["replay", "build-j16", "--rev", "D38852-pow2", "--json", *common], capsys
    )
    assert code == 0 and json.loads(out)["metrics"]["kstack.pindex_holes"] > 0
    code, out, _ = run_main(
        ["diff", "D38852", "D38852-pow2", "build-j16", "--json", *common], capsys
    )
    assert code == 1  # worse: the example's idea costs reservations
    rows = {r["name"]: r for r in json.loads(out)["traces"][0]["rows"]}
    assert rows["kstack.pindex_holes"]["a"] == 0 < rows["kstack.pindex_holes"]["b"]
    assert rows["kstack.reserv_full"]["b"] == 0


def test_the_example_policy_is_a_plugin_class_beside_the_compiled_ones(example):
    revs = registry([str(example / "revisions.toml")])
    rev = revs["D38852-pow2"]
    assert rev.origin.endswith("revisions.toml")
    assert (
        isinstance(rev.policy.pindex, KstackPindex)
        and type(rev.policy.pindex).__name__ == "Pow2Pindex"
    )
    assert rev.policy.kva == revs["D38852"].policy.kva  # only the pindex changed
    assert revs.catalog.name_of("pindex", rev.policy.pindex) == "pow2"


def test_ffff_is_written_on_the_public_api_alone():
    source = (REPO / "kreplay" / "revisions" / "ffff.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("from ", "import "))]
    assert imports == ["from kreplay.api import NPAGES, KstackArenaKva"]
    assert registry()["ffff"].policy == KstackPolicy(kva=FfffKva(), cache=UmaCache())


def test_revision_new_writes_a_revision_and_a_skeleton_check_picks_up(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_main(
        ["revision", "new", "D38852-mine", "--set", "reservations=false", "--plugin", "pindex"],
        capsys,
    )
    assert code == 0 and "revisions/D38852-mine.toml" in out
    revs = registry()  # ./revisions/*.toml, read by every command
    mine = revs["D38852-mine"]
    assert (
        mine.policy.reservations is False and type(mine.policy.pindex).__name__ == "MyKstackPindex"
    )
    (tmp_path / "traces").mkdir()
    shutil.copy(REPO / "traces" / "uul-freebsd12.kdump", tmp_path / "traces")
    code, out, _ = run_main(["check", "--jobs", "1", "--db", tmp_path / "s.duckdb"], capsys)
    assert code == 1 and "D38852-mine" in out  # replayed without --rev; no golden yet
    code, _, err = run_main(["revision", "new", "D38852-mine"], capsys)
    assert code == 2
    assert_one_line_error(err, "exists already")


@pytest.mark.parametrize(
    "toml, plugin, why",
    [
        ('[[revision]]\nname = "x"\npindex = "nope"\n', None, "unknown policy 'nope'"),
        ('[[revision]]\nname = "x"\npindx = "linear"\n', None, "did you mean 'pindex'?"),
        ('[[revision]]\nname = "x"\nkva = { policy = "kstack-arena", oops = 1 }\n', None, "oops"),
        (
            '[[revision]]\nname = "x"\nswap = { policy = "laundry", swapin = "maybe" }\n',
            None,
            "swapin must be",
        ),
        ('plugins = ["p.py"]\n', "raise RuntimeError('boom')\n", "RuntimeError: boom"),
        (
            'plugins = ["p.py"]\n',
            "POLICIES = {'pindex': {'x': int}}\n",
            "not a subclass of PindexScheme",
        ),
        ('plugins = ["p.py"]\n', "POLICIES = {'pindx': {}}\n", "unknown decision point 'pindx'"),
        ('plugins = ["p.py"]\n', "REVISIONS = [1]\n", "is not a kreplay Revision"),
        ('plugins = ["gone.py"]\n', None, "not found"),
        ('plugins = ["p.py"]\n', "x = 1\n", "defines neither POLICIES nor REVISIONS"),
    ],
)
def test_a_bad_user_revision_is_one_line_naming_file_and_field(tmp_path, capsys, toml, plugin, why):
    path = tmp_path / "r.toml"
    path.write_text(toml)
    if plugin is not None:
        (tmp_path / "p.py").write_text(plugin)
    code, _, err = run_main(["revisions", "--revisions", path], capsys)
    assert code == 2
    assert_one_line_error(err, why)
    assert "r.toml" in err or "p.py" in err
