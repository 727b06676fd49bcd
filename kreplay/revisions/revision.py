"""A revision: a named KstackPolicy with its description and the source it follows."""

from dataclasses import dataclass

from kreplay.model.policy import KstackPolicy


@dataclass(frozen=True)
class Revision:
    name: str
    description: str
    source: str  # the commit, review or tree the revision follows, cited
    policy: KstackPolicy
    origin: str = "built-in"  # built-in, a plugin, or a revisions file
