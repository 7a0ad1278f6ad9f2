"""Learning cycles: stored with Plan, Do and Act; bad input refused with its place, nothing kept."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from careloop.community import (
    CycleInput,
    CycleMeasureInput,
    add_cycle,
    cycle_changes,
    list_cycles,
    record_act,
    show_cycle,
    update_cycle,
)
from careloop.core.errors import PermissionDenied, ValidationFailed
from careloop.store.models import Cycle
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal

OUTCOME = (CycleMeasureInput("remission-prevalence", "outcome"),)


def package(**changes) -> CycleInput:
    base = CycleInput(
        title="Network change package",
        kind="change_package",
        aim="More children in remission by next year",
        predictions="Remission rises within six months",
        questions="Does remission rise? Do steroid courses fall?",
        plan_who="Every site's QI team",
        plan_when=date(2024, 1, 10),
        plan_sites=("A", "B"),
        do_start=date(2024, 2, 1),
        do_what="Pre-visit planning and population management",
        determination_kind="qi_determination",
        determination_ref="QI-2024-07",
        measures=(*OUTCOME, CycleMeasureInput("steroid-exposure", "balancing")),
    )
    return CycleInput(**{**base.__dict__, **changes})


def count_cycles(inst) -> int:
    with inst.registry.transaction() as session:
        return session.scalar(select(func.count()).select_from(Cycle))


def test_a_cycle_is_stored_with_plan_do_act_and_its_chart_phases(installation):
    inst = installation
    cid = make_community(inst).community.id
    member = principal(inst, "patient@A")
    added = add_cycle(inst.registry, member, cid, package(), known_measures=KNOWN_MEASURES)
    child = add_cycle(
        inst.registry,
        member,
        cid,
        package(
            title="Site B: nurse-led steroid review",
            kind="process",
            parent_id=added.id,
            do_start=date(2024, 6, 1),
            do_sites=("B",),
            measures=OUTCOME,
        ),
        known_measures=KNOWN_MEASURES,
    )
    acted = record_act(
        inst.registry,
        principal(inst, "clinician@B"),
        child.id,
        decision="adapt",
        rationale="Worked at B; try it with the day unit next",
    )
    assert acted.act["decision"] == "adapt"
    shown = show_cycle(inst.registry, principal(inst, "carer@B"), added.id)
    assert shown.children == [child.id]
    assert shown.do["start"] == date(2024, 2, 1)
    assert [(p.measure_id, p.role, p.starts) for p in shown.phases] == [
        ("remission-prevalence", "outcome", date(2024, 2, 1)),
        ("steroid-exposure", "balancing", date(2024, 2, 1)),
    ]
    listed = list_cycles(inst.registry, principal(inst, "carer@B"), community_id=cid)
    assert [c.id for c in listed] == [added.id, child.id]
    changes = [
        c
        for c in cycle_changes(inst.registry, "remission-prevalence")
        if c.cycle_id in (added.id, child.id)
    ]
    assert [(c.starts, c.sites, c.act) for c in changes] == [
        (date(2024, 2, 1), (), None),
        (date(2024, 6, 1), ("B",), "adapt"),
    ]


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        ({"measures": (CycleMeasureInput("no-such-measure"),)}, "measures[0]"),
        ({"do_start": date(2024, 3, 1), "do_end": date(2024, 2, 1)}, "do_end"),
        ({"plan_when": date(2024, 5, 1)}, "plan_when"),
        (
            {"randomised": True, "determination_kind": None, "determination_ref": None},
            "determination",
        ),
        ({"purpose": "research"}, "determination"),
        ({"do_sites": ("Z",)}, "do_sites[0]"),
        ({"kind": "vibes"}, "kind"),
        ({"measures": (CycleMeasureInput("remission-prevalence", "main"),)}, "measures[0].role"),
        ({"kind": "knowledge_deployment", "knowledge_ref": "nothing@1.0.0"}, "knowledge_ref"),
    ],
)
def test_a_bad_cycle_is_refused_with_the_place_of_the_problem_and_nothing_stored(
    installation, changes, location
):
    inst = installation
    cid = make_community(inst).community.id
    before = count_cycles(inst)
    with pytest.raises(ValidationFailed) as caught:
        add_cycle(
            inst.registry,
            principal(inst, "clinician@A"),
            cid,
            package(**changes),
            known_measures=KNOWN_MEASURES,
        )
    assert location in [d.location for d in caught.value.details]
    assert count_cycles(inst) == before
    assert audit_rows(inst, "cycle.add")[-1][1] == "failure"


def test_overlapping_sibling_cycles_on_a_shared_site_and_measure_are_refused(installation):
    inst = installation
    cid = make_community(inst).community.id
    member = principal(inst, "clinician@A")
    first = add_cycle(
        inst.registry,
        member,
        cid,
        package(do_sites=("A",), do_end=date(2024, 4, 30)),
        known_measures=KNOWN_MEASURES,
    )
    with pytest.raises(ValidationFailed) as caught:
        add_cycle(
            inst.registry,
            member,
            cid,
            package(title="Another", do_sites=("A",), do_start=date(2024, 4, 1)),
            known_measures=KNOWN_MEASURES,
        )
    assert f"overlaps cycle {first.id}" in str(caught.value)
    # After the first ended, or at another site, it is a new test.
    add_cycle(
        inst.registry,
        member,
        cid,
        package(title="Next", plan_when=None, do_sites=("A",), do_start=date(2024, 5, 1)),
        known_measures=KNOWN_MEASURES,
    )
    add_cycle(
        inst.registry,
        member,
        cid,
        package(title="At B", do_sites=("B",), do_start=date(2024, 4, 1)),
        known_measures=KNOWN_MEASURES,
    )
    # A nested cycle cannot begin before its parent.
    with pytest.raises(ValidationFailed, match="cannot begin earlier"):
        add_cycle(
            inst.registry,
            member,
            cid,
            package(title="Early", parent_id=first.id, plan_when=None, do_start=date(2024, 1, 1)),
            known_measures=KNOWN_MEASURES,
        )


def test_edits_by_non_members_are_refused_and_audited(installation):
    inst = installation
    cid = make_community(inst).community.id
    added = add_cycle(
        inst.registry, principal(inst, "clinician@A"), cid, package(), known_measures=KNOWN_MEASURES
    )
    outsider = principal(inst, "site_lead@B")
    with pytest.raises(PermissionDenied):
        update_cycle(
            inst.registry, outsider, added.id, {"title": "Mine now"}, known_measures=KNOWN_MEASURES
        )
    with pytest.raises(PermissionDenied):
        record_act(inst.registry, outsider, added.id, decision="abandon", rationale="no")
    with pytest.raises(PermissionDenied):
        show_cycle(inst.registry, outsider, added.id)
    with pytest.raises(PermissionDenied):
        add_cycle(inst.registry, outsider, cid, package(title="x"), known_measures=KNOWN_MEASURES)
    assert audit_rows(inst, "cycle.update")[-1][1] == "denied"
    assert show_cycle(inst.registry, principal(inst, "clinician@A"), added.id).title == (
        "Network change package"
    )
    assert added.id not in [c.id for c in list_cycles(inst.registry, outsider)]


def test_a_member_edits_a_cycle_and_the_whole_cycle_is_checked_again(installation):
    inst = installation
    cid = make_community(inst).community.id
    member = principal(inst, "carer@B")
    added = add_cycle(inst.registry, member, cid, package(), known_measures=KNOWN_MEASURES)
    changed = update_cycle(
        inst.registry,
        member,
        added.id,
        {"do_end": date(2024, 9, 30), "measures": OUTCOME},
        known_measures=KNOWN_MEASURES,
    )
    assert changed.do["end"] == date(2024, 9, 30)
    assert changed.measures == [{"measure_id": "remission-prevalence", "role": "outcome"}]
    with pytest.raises(ValidationFailed):
        update_cycle(
            inst.registry,
            member,
            added.id,
            {"do_end": date(2023, 1, 1)},
            known_measures=KNOWN_MEASURES,
        )
    with pytest.raises(ValidationFailed, match="cannot be changed"):
        update_cycle(inst.registry, member, added.id, {"id": 5}, known_measures=KNOWN_MEASURES)
    assert show_cycle(inst.registry, member, added.id).do["end"] == date(2024, 9, 30)
    with pytest.raises(ValidationFailed):
        record_act(inst.registry, member, added.id, decision="keep", rationale="")


def test_siblings_sharing_only_a_balancing_measure_may_overlap(installation):
    inst = installation
    cid = make_community(inst).community.id
    member = principal(inst, "clinician@A")
    add_cycle(inst.registry, member, cid, package(), known_measures=KNOWN_MEASURES)
    steroids = add_cycle(
        inst.registry,
        member,
        cid,
        package(
            title="Steroid review prompts",
            kind="policy",
            do_start=date(2024, 3, 1),
            measures=(
                CycleMeasureInput("steroid-exposure", "outcome"),
                CycleMeasureInput("remission-prevalence", "balancing"),
            ),
        ),
        known_measures=KNOWN_MEASURES,
    )
    assert steroids.do["start"] == date(2024, 3, 1)


def test_the_cycles_tested_for_an_aim_count_a_do_on_its_outcome_not_a_plan_or_another_aim(
    installation,
):
    inst = installation
    cid = make_community(inst).community.id
    member = principal(inst, "clinician@A")

    def add(**changes) -> int:
        return add_cycle(
            inst.registry, member, cid, package(**changes), known_measures=KNOWN_MEASURES
        ).id

    tested = add(title="Pre-visit planning at A", do_sites=("A",))
    planned = add(title="Pre-visit planning at B", do_sites=("B",), do_start=None)
    add(  # a change tested for another aim: steroid exposure is its outcome
        title="Steroid action plans",
        do_sites=("A",),
        measures=(CycleMeasureInput("steroid-exposure", "outcome"),),
    )
    add(  # remission is only its balancing measure: another aim too
        title="Shorter clinic letters",
        do_sites=("B",),
        measures=(CycleMeasureInput("prom-completion", "outcome"),
                  CycleMeasureInput("remission-prevalence", "balancing")),
    )  # fmt: skip
    view = show_cycle(inst.registry, member, tested)
    assert (view.cycles_recorded, view.cycles_tested) == (4, 1)
    assert show_cycle(inst.registry, member, planned).cycles_tested == 1  # the one at A
    # The planned cycle's Do is recorded: now two changes were tested for the aim.
    update_cycle(
        inst.registry, member, planned, {"do_start": date(2024, 3, 1)},
        known_measures=KNOWN_MEASURES,
    )  # fmt: skip
    assert show_cycle(inst.registry, member, tested).cycles_tested == 2
