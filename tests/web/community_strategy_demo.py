"""The demo community's strategy as the community page tests find it."""

from __future__ import annotations

from careloop import community
from careloop.core.settings import Settings
from careloop.demo.learning_community import NAME
from careloop.demo.strategy import AIM
from careloop.store.database import Registry
from careloop.trust.principal import Principal


def add_strategy(registry: Registry, settings: Settings) -> dict[str, int]:
    """The ids of the demo community, its change package, a site's cycle and its aim.

    The demo records the aim, its driver diagram, the tools the package used and its
    design (careloop.demo.strategy); the page tests read them from there.
    """
    op = Principal.operator("tests")
    cid = next(c.id for c in community.list_communities(registry, op) if c.name == NAME)
    cycles = community.list_cycles(registry, op, community_id=cid)
    package = next(c.id for c in cycles if c.kind == "change_package")
    site = min(c.id for c in cycles if c.parent_id == package)
    aim = community.list_aims(registry, op, cid, improvements=None)[0]
    assert aim.what == AIM["what"]
    return {"community": cid, "package": package, "site": site, "aim": aim.id}
