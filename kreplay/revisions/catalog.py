"""Named policies: what a revisions file (and `kreplay revision new --set`) can name at
each decision point of the kstack path, built in or added by plugins.

In a revisions TOML a decision point takes a name, or a table with the name and the
policy's parameters:

    pindex = "linear"
    kva = { policy = "kstack-arena", release_unbump = false }
"""

import difflib

from kreplay.errors import KreplayError
from kreplay.model.policy import (
    Backing,
    DisposeTarget,
    Exhaustion,
    Guard1Pindex,
    IterPolicy,
    KernelArenaKva,
    KstackArenaKva,
    KstackPindex,
    KvaSource,
    LaundrySwap,
    LinearPindex,
    NoCache,
    NoSwap,
    NoWait,
    PageDomain,
    PagesPolicy,
    PindexScheme,
    Policy,
    StackCache,
    Swap,
    UmaCache,
    WaitFail,
    WithKva,
)
from kreplay.revisions import ffff

# Each decision point with the class every policy at it derives from.
POINTS: dict[str, type] = {
    "kva": KvaSource,
    "pindex": PindexScheme,
    "backing": Backing,
    "exhaustion": Exhaustion,
    "dispose": DisposeTarget,
    "cache": StackCache,
    "swap": Swap,
}
FLAGS = ("reservations",)  # decision points that are a plain boolean

BUILTIN: dict[str, dict[str, type]] = {
    "kva": {"kernel-arena": KernelArenaKva, "kstack-arena": KstackArenaKva} | ffff.POLICIES["kva"],
    "pindex": {"linear": LinearPindex, "kstack": KstackPindex, "guard1": Guard1Pindex},
    "backing": {"with-kva": WithKva, "iter-policy": IterPolicy, "pages-policy": PagesPolicy},
    "exhaustion": {"nowait": NoWait, "waitfail": WaitFail},
    "dispose": {"page-domain": PageDomain},
    "cache": {"uma": UmaCache, "none": NoCache},
    "swap": {"none": NoSwap, "laundry": LaundrySwap},
}


class Catalog:
    """The named policies of one registry: the built-in ones, then those plugins add."""

    def __init__(self) -> None:
        self.names: dict[str, dict[str, type]] = {p: dict(n) for p, n in BUILTIN.items()}
        self.origins: dict[tuple[str, str], str] = {}

    def add(self, policies: object, origin: str) -> None:
        """A plugin's POLICIES: {decision point: {name: policy class}}."""
        if not isinstance(policies, dict):
            raise KreplayError(f"{origin}: POLICIES must be a dict of decision points")
        for point, named in policies.items():
            if point not in POINTS:
                raise KreplayError(
                    f"{origin}: POLICIES: {_unknown('decision point', point, POINTS)}"
                )
            if not isinstance(named, dict):
                raise KreplayError(f"{origin}: POLICIES[{point!r}] must be a dict of names")
            for name, cls in named.items():
                if not (isinstance(cls, type) and issubclass(cls, POINTS[point])):
                    raise KreplayError(
                        f"{origin}: POLICIES[{point!r}][{name!r}] is {cls!r}, not a subclass "
                        f"of {POINTS[point].__name__}"
                    )
                if name in self.names[point]:
                    taken = self.origins.get((point, name), "built-in")
                    raise KreplayError(
                        f"{origin}: {point} policy {name!r} is defined by {taken} already"
                    )
                self.names[point][name] = cls
                self.origins[point, name] = origin

    def make(self, point: str, value: object, where: str) -> object:
        """The policy a revisions file names at a decision point (a name, or a table with
        `policy` and parameters); reservations take a boolean."""
        if point in FLAGS:
            if not isinstance(value, bool):
                raise KreplayError(
                    f"{where}: {point} must be a boolean (true or false), not {value!r}"
                )
            return value
        params: dict[str, object] = {}
        if isinstance(value, dict):
            params = {k: v for k, v in value.items() if k != "policy"}
            value = value.get("policy")
        if not isinstance(value, str):
            raise KreplayError(
                f"{where}: {point} must be a policy's name or a table with `policy = NAME`, "
                f"not {value!r}"
            )
        cls = self.names[point].get(value)
        if cls is None:
            raise KreplayError(f"{where}: {point}: {_unknown('policy', value, self.names[point])}")
        try:
            policy = cls(**params)
        except (TypeError, ValueError) as e:
            raise KreplayError(f"{where}: {point} = {value!r}: {e}") from None
        if not isinstance(policy, Policy):
            raise KreplayError(f"{where}: {point} = {value!r} did not make a policy")
        return policy

    def name_of(self, point: str, policy: object) -> str:
        """The catalog name of a policy's class (its class name when it has none)."""
        for name, cls in self.names.get(point, {}).items():
            if type(policy) is cls:
                return name
        return type(policy).__name__


def _unknown(what: str, name: object, known: dict) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {name!r}{hint}; known: {', '.join(known)}"
