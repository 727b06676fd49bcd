"""Patch revisions: named compositions of kstack policies (DESIGN.md §5, docs/plugins.md).

Built in: the history of the D38852 series (builtin.py). A kernel developer adds revisions
without touching kreplay:
- a revisions TOML file composing named policies (catalog.py), passed with `--revisions
  FILE`, or any *.toml in a revisions/ folder in the current directory or next to the
  store;
- a Python plugin that defines new policies (a subclass of a decision point of
  kreplay.api) in `POLICIES` and may compose revisions in `REVISIONS`: a file a revisions
  TOML names in `plugins = ["file.py"]`, or a module under the entry point group
  `kreplay.policies`.

    plugins = ["halfguard.py"]

    [[revision]]
    name = "D38852-halfguard"
    based_on = "D38852"
    description = "D38852 with my pindex formula"
    pindex = "half-guard"
    kva = { policy = "kstack-arena", release_unbump = false }
"""

import importlib.util
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from kreplay.errors import KreplayError, UnknownRevision, UsageError
from kreplay.model.policy import KstackPolicy
from kreplay.names import check_name
from kreplay.revisions.builtin import BUILTIN
from kreplay.revisions.catalog import FLAGS, POINTS, Catalog, _unknown
from kreplay.revisions.revision import Revision

__all__ = ["BUILTIN", "Revision", "Registry", "registry", "lookup", "revision_files"]

TABLE_KEYS = ("name", "based_on", "description", "source")


class Registry(dict[str, Revision]):
    """name -> Revision, and the catalog of named policies they were composed from."""

    def __init__(self) -> None:
        super().__init__()
        self.catalog = Catalog()

    def add(self, rev: object, origin: str) -> None:
        if not isinstance(rev, Revision):
            raise KreplayError(f"{origin}: {rev!r} is not a kreplay Revision")
        if not isinstance(rev.policy, KstackPolicy):
            raise KreplayError(f"{origin}: revision {rev.name!r}: policy is not a KstackPolicy")
        try:
            check_name("revision", rev.name)
        except UsageError as e:
            raise KreplayError(f"{origin}: {e.message}") from None
        if rev.name in self:
            raise KreplayError(
                f"revision {rev.name!r} from {origin} is defined twice "
                f"(also {self[rev.name].origin})"
            )
        self[rev.name] = Revision(rev.name, rev.description, rev.source, rev.policy, origin)


def revision_files(extra_files: list[str] = (), store_dir: str | None = None) -> list[Path]:
    """The revisions TOML files: the ones given, then revisions/*.toml in the current
    directory and next to the store (each once)."""
    paths = [Path(p) for p in extra_files]
    for folder in (Path("revisions"), Path(store_dir or ".") / "revisions"):
        if folder.is_dir():
            paths += sorted(folder.glob("*.toml"))
    seen, out = set(), []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def registry(extra_files: list[str] = (), store_dir: str | None = None) -> Registry:
    """Built-in revisions, then entry-point plugins, then revisions files (and the plugin
    files they name); a later one may not redefine an earlier one's name."""
    revs = Registry()
    for rev in BUILTIN:
        revs.add(rev, "built-in")
    for ep in sorted(entry_points(group="kreplay.policies"), key=lambda e: e.name):
        origin = f"plugin {ep.value}"
        try:
            obj = ep.load()
        except Exception as e:  # a plugin's own bug: one line naming it
            raise KreplayError(f"{origin}: cannot load: {type(e).__name__}: {e}") from None
        _add_plugin(revs, obj, origin)
    for path in revision_files(extra_files, store_dir):
        load_toml(path, revs)
    return revs


def lookup(revs: dict[str, Revision], name: str) -> Revision:
    if name not in revs:
        raise UnknownRevision(f"{_unknown('revision', name, revs)}")
    return revs[name]


def _add_plugin(revs: Registry, obj: object, origin: str) -> None:
    """A plugin: a module (or object) with POLICIES and/or REVISIONS, or a Revision or a
    list of them."""
    if isinstance(obj, Revision):
        obj = [obj]
    if isinstance(obj, list | tuple):
        for rev in obj:
            revs.add(rev, origin)
        return
    policies, revisions = getattr(obj, "POLICIES", None), getattr(obj, "REVISIONS", None)
    if policies is None and revisions is None:
        raise KreplayError(f"{origin}: defines neither POLICIES nor REVISIONS")
    if policies is not None:
        revs.catalog.add(policies, origin)
    if revisions is not None:
        if not isinstance(revisions, list | tuple):
            raise KreplayError(f"{origin}: REVISIONS must be a list of Revision")
        for rev in revisions:
            revs.add(rev, origin)


def _load_plugin_file(path: Path, where: str) -> object:
    if not path.is_file():
        raise KreplayError(f"{where}: plugin file {str(path)!r} not found")
    name = f"kreplay_plugin_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise KreplayError(f"{where}: cannot load plugin {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the plugin's own error, named with its file
        del sys.modules[name]
        raise KreplayError(f"plugin {path}: {type(e).__name__}: {e}") from None
    return module


def load_toml(path: Path, revs: Registry) -> list[Revision]:
    """A revisions file: its plugins, then its [[revision]] tables, into `revs`."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise KreplayError(f"cannot read revisions: {e}", path=str(path)) from None
    unknown = sorted(set(data) - {"plugins", "revision"})
    if unknown:
        raise KreplayError(
            f"unknown top-level key {unknown[0]!r} (plugins, [[revision]])", path=str(path)
        )
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise KreplayError("plugins must be a list of file names", path=str(path))
    for name in plugins:
        plugin = path.parent / name
        _add_plugin(revs, _load_plugin_file(plugin, str(path)), f"plugin {plugin}")
    tables = data.get("revision", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise KreplayError("'revision' must be [[revision]] tables", path=str(path))
    added = []
    for i, table in enumerate(tables):
        rev = _revision(table, f"{path} [[revision]] #{i + 1}", revs, str(path))
        revs.add(rev, str(path))
        added.append(revs[rev.name])
    return added


def _revision(table: dict, where: str, revs: Registry, origin: str) -> Revision:
    keys = list(TABLE_KEYS) + list(POINTS) + list(FLAGS)
    for key in table:
        if key not in keys:
            raise KreplayError(f"{where}: {_unknown('key', key, dict.fromkeys(keys))}")
    for key in TABLE_KEYS:
        if key in table and not isinstance(table[key], str):
            raise KreplayError(f"{where}: {key} must be a string, not {table[key]!r}")
    if "name" not in table:
        raise KreplayError(f"{where}: needs a name")
    try:
        check_name("revision", table["name"])
    except UsageError as e:
        raise KreplayError(f"{where}: {e.message}") from None
    parent = revs.get(table.get("based_on", "D38852"))
    if parent is None:
        raise KreplayError(f"{where}: based_on: {_unknown('revision', table['based_on'], revs)}")
    changes = {
        k: revs.catalog.make(k, v, where) for k, v in table.items() if k in POINTS or k in FLAGS
    }
    policy = parent.policy.replace(**changes)
    described = ", ".join(f"{k} {revs.catalog.name_of(k, v)}" for k, v in changes.items())
    return Revision(
        table["name"],
        table.get("description", f"{parent.name} with {described or 'nothing changed'}"),
        table.get("source", origin),
        policy,
        origin,
    )
