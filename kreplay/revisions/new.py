"""`kreplay revision new`: a revisions file (and a plugin skeleton) for a kernel
developer's next patch, written into the project's revisions/ folder, which every command
reads (revision_files). docs/plugins.md walks through editing them."""

from pathlib import Path

from kreplay.errors import UsageError
from kreplay.names import check_name
from kreplay.revisions import Registry, lookup
from kreplay.revisions.catalog import FLAGS, POINTS

# The class a skeleton subclasses at each decision point, and the method to write.
SKELETONS = {
    "kva": ("KstackArenaKva", "geometry", "slot: int", "tuple[int, int, int]"),
    "pindex": ("KstackPindex", "pindex", "ks: int, slot: int, guard: int", "int"),
    "backing": ("WithKva", "steps", "domain: int, ndomains: int, below_min", "list"),
    "exhaustion": ("NoWait", "shortage", "domains: list[int]", "None"),
    "dispose": ("PageDomain", "kva_domain", "stack, first_page_domain: int", "int"),
    "cache": ("UmaCache", "zone", "alloc", "object"),
    "swap": ("LaundrySwap", "swapin_domains", "domain: int, ndomains: int", "list[int]"),
}


def new_revision(
    revs: Registry,
    name: str,
    based_on: str,
    sets: dict[str, str],
    plugin: str | None,
    folder: Path,
) -> list[Path]:
    """Write folder/NAME.toml (and, with `plugin` naming a decision point, NAME.py with a
    policy to edit there); the files written. Refuses a name taken or a file present."""
    check_name("revision", name)
    if name in revs:
        raise UsageError(f"a revision named {name!r} exists already ({revs[name].origin})")
    lookup(revs, based_on)
    where = "--set"
    for point, value in sets.items():
        if point not in POINTS and point not in FLAGS:
            raise UsageError(f"--set {point}={value}: no decision point {point!r} "
                             f"(one of {', '.join([*POINTS, *FLAGS])})")  # fmt: skip
        revs.catalog.make(point, value == "true" if point in FLAGS else value, where)
    if plugin is not None and plugin not in SKELETONS:
        raise UsageError(f"--plugin {plugin!r}: no decision point (one of {', '.join(SKELETONS)})")
    toml, py = folder / f"{name}.toml", folder / f"{name}.py"
    for path in (toml, py) if plugin else (toml,):
        if path.exists():
            raise UsageError(f"{path} exists already: edit it, or choose another name")
    folder.mkdir(parents=True, exist_ok=True)
    policy_name = f"{name}-{plugin}" if plugin else None
    toml.write_text(_toml(name, based_on, sets, plugin, policy_name))
    if plugin is None:
        return [toml]
    py.write_text(_skeleton(name, based_on, plugin, policy_name or ""))
    return [toml, py]


def _toml(name: str, based_on: str, sets: dict, plugin: str | None, policy: str | None) -> str:
    out = [
        f"# {name}: a revision of my own (kreplay revision new). Edit it, then",
        f"#     kreplay replay TRACE --rev {name}",
        f"#     kreplay diff {based_on} {name}",
        "# Decision points and the named policies of each: docs/plugins.md.",
    ]
    if plugin:
        out.append(f'plugins = ["{name}.py"]')
    out += [
        "",
        "[[revision]]",
        f'name = "{name}"',
        f'based_on = "{based_on}"',
        f'description = "{based_on} with my change (say what it does)"',
        'source = "my patch (say where it is: a review, a branch, a commit)"',
    ]
    for point, value in sets.items():
        out.append(f"{point} = {value}" if point in FLAGS else f'{point} = "{value}"')
    if plugin:
        out.append(f'{plugin} = "{policy}"')
    return "\n".join(out) + "\n"


def _skeleton(name: str, based_on: str, point: str, policy: str) -> str:
    base, method, args, returns = SKELETONS[point]
    return f'''"""{name}: a {point} policy of my own (kreplay revision new). Change the method,
then replay: `kreplay replay TRACE --rev {name}`, `kreplay diff {based_on} {name}`.
What the method gets and must return: docs/plugins.md."""

from kreplay.api import {base}


class My{base}({base}):
    """Say what this does differently, and the source it follows."""

    def {method}(self, {args}) -> {returns}:
        return super().{method}({", ".join(a.split(":")[0].strip() for a in args.split(","))})


POLICIES = {{"{point}": {{"{policy}": My{base}}}}}
'''
