"""What the community page tests add to the demo's community: an aim with its driver
diagram and family of measures, the tools its change package used, and its design."""

from __future__ import annotations

from careloop import community
from careloop.core.settings import Settings
from careloop.demo.learning_community import NAME
from careloop.store.database import Registry
from careloop.trust.principal import Principal

AIM = {
    "what": "More children with IBD in remission at their clinic visits",
    "how_much": "from 60% to 75% of visits",
    "by_when": "2027-06-30",
}


def add_strategy(registry: Registry, settings: Settings) -> dict[str, int]:
    """The ids of the demo community, its change package, a site's cycle and the new aim."""
    op = Principal.operator("tests")
    cid = next(c.id for c in community.list_communities(registry, op) if c.name == NAME)
    cycles = community.list_cycles(registry, op, community_id=cid)
    package = next(c.id for c in cycles if c.kind == "change_package")
    site = next(c.id for c in cycles if c.parent_id == package)
    idea = {"title": "A nurse call the week before", "cycles": [package]}
    tests = {"title": "Blood tests before the visit", "cycles": [site]}
    aim = community.set_aim(
        registry,
        op,
        cid,
        community.AimInput.from_dict(
            {
                **AIM,
                "drivers": [
                    {
                        "title": "Visits planned ahead",
                        "secondary": [
                            {"title": "Families prepared for the visit", "change_ideas": [idea, tests]}
                        ],
                    },
                    {"title": "Steroid-sparing care", "secondary": []},
                ],
                "measures": [
                    {"measure_id": "steroid-at-visit", "role": "balancing", "baseline": 0.3, "target": 0.35},
                    {"measure_id": "remission-at-visit", "role": "outcome", "baseline": 0.6, "target": 0.75},
                ],
            }
        ),
        improvements=community.measure_improvements(settings.measures_dir),
    )  # fmt: skip
    community.use_tool(registry, op, package, "pdsa-template", community_id=cid)
    community.use_tool(registry, op, package, "run-chart-rules", community_id=cid)
    community.record_design(
        registry,
        op,
        package,
        behaviour="Clinic nurses call each family the week before the visit",
        com_b=["opportunity_social", "capability_psychological"],
        functions=["enablement", "environmental_restructuring"],
        policies=["service_provision"],
        community_id=cid,
    )
    return {"community": cid, "package": package, "site": site, "aim": aim.id}
