"""Patch revisions: named compositions of kstack policies (DESIGN.md §5).

Built in: the history of the D38852 series. Users add revisions without touching kreplay:
a TOML file (`--revisions FILE`, or every *.toml in a revisions/ folder next to the store)
composing existing policies, or a Python plugin registered under the entry point group
`kreplay.policies` whose object is a Revision or a list of them.

    [[revision]]
    name = "D38852-noreserv"
    based_on = "D38852"
    description = "D38852 with kstack_object not using reservations"
    reservations = false
"""

import difflib
import tomllib
from dataclasses import dataclass, fields, replace
from importlib.metadata import entry_points
from pathlib import Path

from kreplay.errors import KreplayError, UnknownRevision, UsageError
from kreplay.model.kstack import (
    KVA_KERNEL_ARENA,
    KVA_KSTACK_ARENA,
    KVA_KSTACK_FFFF,
    NUMA_PAGES_POLICY,
    NUMA_WITH_KVA,
    PINDEX_GUARD1,
    PINDEX_KSTACK,
    PINDEX_LINEAR,
    SWAPIN_FALLBACK,
    SWAPIN_ORIGIN,
    KstackPolicy,
)
from kreplay.names import check_name

REVIEW = "https://reviews.freebsd.org/D38852"
# The review's intermediate revisions are not in any public copy: each is D38852 with the
# one change the review thread reports as its bug (issue 5 lists them), reconstructed on
# the committed code path. docs/model.md says, per revision, what is and is not known.
RECONSTRUCTED = "[reconstructed: D38852 with the reported bug put back]"


@dataclass(frozen=True)
class Revision:
    name: str
    description: str
    source: str
    policy: KstackPolicy
    origin: str = "built-in"


BUILTIN = (
    Revision(
        "base",
        "Before D38852: kstack KVA from kernel_arena (kva_alloc), linear pindex "
        "atop(ks - VM_MIN_KERNEL_ADDRESS), guard pages leave pindex holes; page allocation "
        "waits (VM_ALLOC_WAITFAIL loop) rather than failing.",
        "sys/vm/vm_glue.c before 7a79d066 (spec/freebsd-kstack.md §1)",
        KstackPolicy(kva=KVA_KERNEL_ARENA, pindex=PINDEX_LINEAR, wait_for_pages=True),
    ),
    Revision(
        "D38852",
        "As committed (7a79d066): per-domain kstack arenas importing 10 MiB chunks aligned "
        "to 2 MiB and bumped to a slot boundary (511 stacks per chunk), vm_kstack_pindex() "
        "skipping guard pages; allocation fails with ENOMEM instead of waiting.",
        f"{REVIEW} (spec/freebsd-kstack.md §2)",
        KstackPolicy(kva=KVA_KSTACK_ARENA, pindex=PINDEX_KSTACK),
    ),
    Revision(
        "later",
        "Later upstream (CHERI-carried 2025 tree): D38852's geometry; the domain policy is "
        "iterated directly instead of through the shared kstack_object policy, which gives "
        "the same domain order in a replay (the difference is a race), so it replays as "
        "D38852: KVA and pages from one domain per step, swap-in falling back.",
        "spec/freebsd-kstack.md §3 (D45163 itself not found)",
        KstackPolicy(kva=KVA_KSTACK_ARENA, pindex=PINDEX_KSTACK),
    ),
    Revision(
        "later-phys",
        "As 'later', with kstack_object OBJT_PHYS and no OBJ_COLORED: kstack pages no "
        "longer come from reservations (the open point of spec §3 item 5).",
        "spec/freebsd-kstack.md §3 item 5 [inference, needs upstream check]",
        KstackPolicy(kva=KVA_KSTACK_ARENA, pindex=PINDEX_KSTACK, reservations=False),
    ),
    Revision(
        "ffff",
        "The review's proposal: 512 stacks per chunk and chunks aligned to "
        "512 * (K + G) pages, so that every reservation of a chunk fills (FFFF).",
        f"{REVIEW} (reviewers' 'FFFF' comment; spec/freebsd-kstack.md §6.1)",
        KstackPolicy(kva=KVA_KSTACK_FFFF, pindex=PINDEX_KSTACK),
    ),
    Revision(
        "D38852-r-guard1",
        "The review's early pindex formula pindex - (pindex / (K + G) + 1): one page "
        "subtracted per slot whatever G is, so with more than one guard page "
        "(--set guard_pages=2) the pindex holes come back.",
        f"{REVIEW}: early draft, bnovkov/freebsd-src@03ef46ba vm_glue.c "
        "(spec/freebsd-kstack.md §0 N5) {RECONSTRUCTED}",
        KstackPolicy(pindex=PINDEX_GUARD1),
    ),
    Revision(
        "D38852-r-waitok",
        "kstack KVA allocated with M_WAITOK: when the kstack arena cannot grow (i386's "
        "small kernel map, or --set kva_limit_mb=N) thread creation sleeps in "
        "vmem_xalloc until a stack is freed, and a replay that cannot free one hangs; "
        "the committed code passes M_NOWAIT and fails with ENOMEM.",
        f"{REVIEW}: the hang when KVA ran out {RECONSTRUCTED}",
        KstackPolicy(kva_wait=True),
    ),
    Revision(
        "D38852-r-wrongarena",
        "KVA taken from the preferred domain's kstack arena, pages left to the domain "
        "policy (which falls back to other domains), and the KVA freed to the arena of "
        "the domain of the stack's first page: when the two differ, vmem_xfree finds no "
        "busy tag and panics. The committed code takes KVA and pages from the same domain "
        "at each step of the policy.",
        f"{REVIEW}: the panic on a NUMA machine {RECONSTRUCTED}",
        KstackPolicy(numa=NUMA_PAGES_POLICY),
    ),
    Revision(
        "D38852-r-unaligned",
        "A wholly free chunk released to the parent arena at its bumped (slot-aligned) "
        "address instead of the address the parent gave: vmem_xfree of the parent "
        "panics on the first release.",
        f"{REVIEW}: chunks released unaligned {RECONSTRUCTED}",
        KstackPolicy(release_unbump=False),
    ),
    Revision(
        "D38852-r-swapin",
        "Swap-in of a kernel stack retries its original domain (td_kstack_domain) "
        "until it gets pages: when that domain is depleted the thread never runs again "
        "(hang). D38852 and later fall back to the other domains.",
        f"{REVIEW}: the swap-in loop on a depleted domain {RECONSTRUCTED}",
        KstackPolicy(swapin=SWAPIN_ORIGIN),
    ),
)

_POLICY_VALUES = {
    "kva": (KVA_KERNEL_ARENA, KVA_KSTACK_ARENA, KVA_KSTACK_FFFF),
    "pindex": (PINDEX_LINEAR, PINDEX_KSTACK, PINDEX_GUARD1),
    "numa": (NUMA_WITH_KVA, NUMA_PAGES_POLICY),
    "swapin": (SWAPIN_FALLBACK, SWAPIN_ORIGIN),
}


def registry(extra_files: list[str] = (), store_dir: str | None = None) -> dict[str, Revision]:
    """Built-in revisions, then plugins, then TOML files (later ones may not shadow)."""
    revs = {r.name: r for r in BUILTIN}
    for rev in _plugins():
        _add(revs, rev)
    paths = [Path(p) for p in extra_files]
    if store_dir is not None and (Path(store_dir) / "revisions").is_dir():
        paths += sorted((Path(store_dir) / "revisions").glob("*.toml"))
    for path in paths:
        for rev in load_toml(path, revs):
            _add(revs, rev)
    return revs


def lookup(revs: dict[str, Revision], name: str) -> Revision:
    if name not in revs:
        raise UnknownRevision(f"unknown revision {name!r} (known: {', '.join(revs)})")
    return revs[name]


def _add(revs: dict[str, Revision], rev: Revision) -> None:
    if rev.name in revs:
        raise KreplayError(
            f"revision {rev.name!r} from {rev.origin} is defined twice "
            f"(also {revs[rev.name].origin})"
        )
    revs[rev.name] = rev


def _plugins() -> list[Revision]:
    out = []
    for ep in sorted(entry_points(group="kreplay.policies"), key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception as e:  # a plugin's own bug: one line naming it
            raise KreplayError(f"plugin {ep.value}: cannot load: {type(e).__name__}: {e}") from None
        for rev in obj if isinstance(obj, list | tuple) else [obj]:
            if not isinstance(rev, Revision):
                raise KreplayError(f"plugin {ep.value}: {rev!r} is not a kreplay Revision")
            try:
                check_name("revision", rev.name)
            except UsageError as e:
                raise KreplayError(f"plugin {ep.value}: {e.message}") from None
            out.append(replace(rev, origin=f"plugin {ep.value}"))
    return out


def load_toml(path: Path, known: dict[str, Revision]) -> list[Revision]:
    """[[revision]] tables: name, based_on, description, source, and policy fields."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise KreplayError(f"cannot read revisions: {e}", path=str(path)) from None
    policy_fields = {f.name: f.type for f in fields(KstackPolicy)}
    tables = data.get("revision", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise KreplayError("'revision' must be [[revision]] tables", path=str(path))
    out = []
    for i, table in enumerate(tables):
        where = f"{path} [[revision]] #{i + 1}"
        known_keys = sorted(set(policy_fields) | {"name", "based_on", "description", "source"})
        for key in sorted(set(table) - set(known_keys)):
            close = difflib.get_close_matches(key, known_keys, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KreplayError(
                f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(known_keys)}"
            )
        if "name" not in table:
            raise KreplayError(f"{where}: needs a name")
        for key in ("name", "based_on", "description", "source"):
            if key in table and not isinstance(table[key], str):
                raise KreplayError(f"{where}: {key} must be a string, not {table[key]!r}")
        try:
            check_name("revision", table["name"])
        except UsageError as e:
            raise KreplayError(f"{where}: {e.message}") from None
        base = {r.name: r for r in out} | known
        parent = base.get(table.get("based_on", "D38852"))
        if parent is None:
            raise KreplayError(f"{where}: based_on {table['based_on']!r} is not a revision")
        changes = {k: v for k, v in table.items() if k in policy_fields}
        for key, value in changes.items():
            wanted = bool if policy_fields[key] in (bool, "bool") else str
            if type(value) is not wanted:  # TOML's true/false, or a quoted name
                kind = "boolean (true or false)" if wanted is bool else "string"
                raise KreplayError(f"{where}: {key} must be a {kind}, not {value!r}")
            if key in _POLICY_VALUES and value not in _POLICY_VALUES[key]:
                raise KreplayError(
                    f"{where}: {key} = {value!r} (one of {', '.join(_POLICY_VALUES[key])})"
                )
        out.append(
            Revision(
                table["name"],
                table.get("description", f"{parent.name} with {changes}"),
                table.get("source", str(path)),
                replace(parent.policy, **changes),
                origin=str(path),
            )
        )
    return out
