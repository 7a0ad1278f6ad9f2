"""Aims, driver diagrams and families of measures: validated, members only, audited."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from careloop.community import CycleInput, CycleMeasureInput, add_cycle
from careloop.community.strategy import (
    AimInput,
    AimMeasure,
    ChangeIdea,
    PrimaryDriver,
    SecondaryDriver,
    list_aims,
    set_aim,
)
from careloop.core.errors import InputError, NotFound, PermissionDenied, ValidationFailed
from careloop.store.models import Aim
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal

IMPROVES = {"remission-prevalence": "up", "steroid-exposure": "down", "prom-completion": "up"}


def aim(cycles: tuple[int, ...] = (), **changes) -> AimInput:
    base = {
        "what": "More children with IBD in remission",
        "how_much": "from 60% to 75% of clinic visits",
        "by_when": date(2027, 6, 30),
        "drivers": (
            PrimaryDriver(
                "Every child has a planned review",
                (
                    SecondaryDriver(
                        "The clinic list shows who is due",
                        (ChangeIdea("Pre-visit planning huddle", cycles),),
                    ),
                ),
            ),
        ),
        "measures": (
            AimMeasure("remission-prevalence", "outcome", 0.60, 0.75),
            AimMeasure("prom-completion", "process", 0.40, 0.80),
            AimMeasure("steroid-exposure", "balancing", 0.20, 0.25),
        ),
    }
    return AimInput(**{**base, **changes})


def count_aims(inst) -> int:
    with inst.registry.transaction() as session:
        return session.scalar(select(func.count()).select_from(Aim))


def a_cycle(inst, cid: int) -> int:
    return add_cycle(
        inst.registry,
        principal(inst, "clinician@A"),
        cid,
        CycleInput(
            title="Huddle",
            kind="process",
            do_start=date(2024, 2, 1),
            measures=(CycleMeasureInput("remission-prevalence"),),
        ),
        known_measures=KNOWN_MEASURES,
    ).id


def test_a_member_sets_an_aim_with_its_driver_diagram_linked_to_cycles(installation):
    inst = installation
    cid = make_community(inst).community.id
    cycle = a_cycle(inst, cid)
    member = principal(inst, "carer@B")
    made = set_aim(inst.registry, member, cid, aim((cycle,)), improvements=IMPROVES)
    assert made.cycles == [cycle]
    idea = made.drivers[0]["secondary"][0]["change_ideas"][0]
    assert idea == {"title": "Pre-visit planning huddle", "cycles": [cycle]}
    assert [(m["measure_id"], m["role"], m["improvement"]) for m in made.measures] == [
        ("remission-prevalence", "outcome", "up"),
        ("prom-completion", "process", "up"),
        ("steroid-exposure", "balancing", "down"),
    ]
    shown = list_aims(inst.registry, principal(inst, "analyst"), cid)
    assert [a.id for a in shown] == [made.id]
    assert shown[0].how_much == "from 60% to 75% of clinic visits"
    changed = set_aim(
        inst.registry, member, cid, aim(how_much="to 80%"), improvements=IMPROVES, aim_id=made.id
    )
    assert changed.id == made.id and changed.how_much == "to 80%" and changed.cycles == []
    assert audit_rows(inst, "community.aim")[-1][2]["aim"] == made.id


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        (
            {"measures": (AimMeasure("no-such-measure", "outcome", 0.1, 0.2),)},
            "measures[0].measure_id",
        ),
        (
            {"measures": (AimMeasure("remission-prevalence", "outcome", 0.6, 0.5),)},
            "measures[0].target",
        ),
        (
            {"measures": (AimMeasure("steroid-exposure", "outcome", 0.2, 0.3),)},
            "measures[0].target",
        ),
        (
            {
                "measures": (
                    AimMeasure("remission-prevalence", "outcome", 0.6, 0.7),
                    AimMeasure("steroid-exposure", "balancing", 0.2, 0.1),
                )
            },
            "measures[1].target",
        ),
        ({"measures": (AimMeasure("prom-completion", "process", 0.4, 0.8),)}, "measures"),
        (
            {"measures": (AimMeasure("remission-prevalence", "driver", 0.6, 0.7),)},
            "measures[0].role",
        ),
        ({"by_when": date(2099, 1, 1)}, "by_when"),
        ({"what": " "}, "what"),
        ({"how_much": ""}, "how_much"),
    ],
)
def test_a_bad_aim_is_refused_with_its_place_and_nothing_is_kept(installation, changes, location):
    inst = installation
    cid = make_community(inst).community.id
    before = count_aims(inst)
    with pytest.raises(ValidationFailed) as caught:
        set_aim(
            inst.registry,
            principal(inst, "clinician@A"),
            cid,
            aim(**changes),
            improvements=IMPROVES,
        )
    assert location in [d.location for d in caught.value.details]
    assert count_aims(inst) == before
    assert audit_rows(inst, "community.aim")[-1][1] != "success"


def test_a_change_idea_may_only_link_cycles_of_its_own_community(installation):
    inst = installation
    other = make_community(inst).community.id
    foreign = a_cycle(inst, other)
    cid = make_community(inst).community.id
    with pytest.raises(ValidationFailed) as caught:
        set_aim(
            inst.registry,
            principal(inst, "clinician@A"),
            cid,
            aim((foreign,)),
            improvements=IMPROVES,
        )
    assert caught.value.details[0].location == "drivers[0].secondary[0].change_ideas[0].cycles[0]"


def test_only_members_set_and_see_aims(installation):
    inst = installation
    cid = make_community(inst).community.id
    outsider = principal(inst, "site_lead@B")
    with pytest.raises(PermissionDenied):
        set_aim(inst.registry, outsider, cid, aim(), improvements=IMPROVES)
    with pytest.raises(PermissionDenied):
        list_aims(inst.registry, outsider, cid)
    assert audit_rows(inst, "community.aims")[-1][:2] == (inst.emails["site_lead@B"], "denied")


def test_an_aim_of_another_community_is_not_found(installation):
    inst = installation
    first = make_community(inst).community.id
    made = set_aim(
        inst.registry, principal(inst, "clinician@A"), first, aim(), improvements=IMPROVES
    )
    second = make_community(inst).community.id
    with pytest.raises(NotFound):
        set_aim(
            inst.registry,
            principal(inst, "clinician@A"),
            second,
            aim(),
            improvements=IMPROVES,
            aim_id=made.id,
        )


def test_an_aim_from_json_says_what_is_missing_or_misshapen():
    parsed = AimInput.from_dict(
        {
            "what": "w",
            "how_much": "h",
            "by_when": "2027-01-31",
            "drivers": [
                {
                    "title": "p",
                    "secondary": [{"title": "s", "change_ideas": [{"title": "c", "cycles": [3]}]}],
                }
            ],
            "measures": [{"measure_id": "m", "role": "outcome", "baseline": 1, "target": 2}],
        }
    )
    assert parsed.drivers[0].secondary[0].change_ideas[0].cycles == (3,)
    assert parsed.by_when == date(2027, 1, 31)
    with pytest.raises(InputError, match="by_when"):
        AimInput.from_dict({"what": "w", "how_much": "h"})
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        AimInput.from_dict({"what": "w", "how_much": "h", "by_when": "next June"})
