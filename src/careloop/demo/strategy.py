"""The demo community's strategy: an aim with its driver diagram and family of measures,
the toolkit items its change package used, and the change's behaviour-change design.

Recorded after the cycles, because the driver diagram's change ideas link to them.
"""

from __future__ import annotations

from pathlib import Path

from careloop import community
from careloop.demo.learning_community import BALANCING, OUTCOME, DemoCommunity
from careloop.store.database import Registry
from careloop.trust.principal import Principal

AIM = {
    "what": "More children with IBD in remission at their clinic visits",
    "how_much": "from 60% to 75% of visits",
    "by_when": "2027-06-30",
}


def record_strategy(
    registry: Registry, operator: Principal, demo: DemoCommunity, measures_dir: Path
) -> int:
    """Record the aim, the tools the change package used and its design; the aim's id."""
    package = demo.change_package_cycle
    site = next(iter(sorted(demo.site_cycles.values())))
    aim = community.set_aim(
        registry,
        operator,
        demo.community_id,
        community.AimInput.from_dict(
            {
                **AIM,
                "drivers": [
                    {
                        "title": "Visits planned ahead",
                        "secondary": [
                            {
                                "title": "Families prepared for the visit",
                                "change_ideas": [
                                    {"title": "A nurse call the week before", "cycles": [package]},
                                    {"title": "Blood tests before the visit", "cycles": [site]},
                                ],
                            }
                        ],
                    },
                    {"title": "Steroid-sparing care", "secondary": []},
                ],
                "measures": [
                    {"measure_id": BALANCING, "role": "balancing", "baseline": 0.3, "target": 0.35},
                    {"measure_id": OUTCOME, "role": "outcome", "baseline": 0.6, "target": 0.75},
                ],
            }
        ),
        improvements=community.measure_improvements(measures_dir),
    )
    for tool in ("pdsa-template", "run-chart-rules"):
        community.use_tool(registry, operator, package, tool, community_id=demo.community_id)
    community.record_design(
        registry,
        operator,
        package,
        behaviour="Clinic nurses call each family the week before the visit",
        com_b=["opportunity_social", "capability_psychological"],
        functions=["enablement", "environmental_restructuring"],
        policies=["service_provision"],
        community_id=demo.community_id,
    )
    return aim.id
