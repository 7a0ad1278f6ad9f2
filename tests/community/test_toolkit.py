"""The toolkit: the starter set loaded once, members' items, ratings, uses and behaviour-change designs."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from careloop.community import CycleInput, CycleMeasureInput, add_cycle
from careloop.community.toolkit import (
    COM_B,
    STAGES,
    add_tool,
    cycle_design,
    cycle_design_in,
    list_toolkit,
    load_starter,
    load_starter_toolkit,
    rate_tool,
    record_design,
    starter_items,
    use_tool,
)
from careloop.core.errors import NotFound, PermissionDenied, ValidationFailed
from careloop.store.models import ToolkitItem
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal

STARTER = {
    "behaviour-change-wheel",
    "driver-diagram-guide",
    "focus-group-guide",
    "improvecarenow-story",
    "mq-health-story",
    "nasss-guide",
    "pdsa-template",
    "run-chart-rules",
}


def test_the_starter_set_is_eight_tagged_items_in_our_own_words():
    items = {i.key: i for i in starter_items()}
    assert set(items) == STARTER
    for i in items.values():
        assert i.kind in ("tool", "case_study") and i.title and i.summary and len(i.body) > 400
        assert i.stages and set(i.stages) <= set(STAGES)
    assert items["mq-health-story"].kind == items["improvecarenow-story"].kind == "case_study"
    assert items["run-chart-rules"].stages == ("study",)


def test_a_new_community_gets_the_starter_set_once_and_loading_again_changes_nothing(installation):
    inst = installation
    cid = make_community(inst).community.id
    tools = list_toolkit(inst.registry, principal(inst, "patient@A"), cid)
    assert {t.key for t in tools} == STARTER and {t.source for t in tools} == {"starter"}
    with inst.registry.transaction() as session:
        edited = session.scalar(
            select(ToolkitItem).where(
                ToolkitItem.community_id == cid, ToolkitItem.key == "pdsa-template"
            )
        )
        edited.summary = "Our own version"
        session.delete(
            session.scalar(
                select(ToolkitItem).where(
                    ToolkitItem.community_id == cid, ToolkitItem.key == "nasss-guide"
                )
            )
        )
    assert load_starter_toolkit(inst.registry, principal(inst, "clinician@A"), cid) == [
        "nasss-guide"
    ]
    assert load_starter_toolkit(inst.registry, principal(inst, "clinician@A"), cid) == []
    with inst.registry.transaction() as session:
        assert load_starter(session, cid) == []
        count = session.scalar(
            select(func.count()).select_from(ToolkitItem).where(ToolkitItem.community_id == cid)
        )
    assert count == len(STARTER)
    tools = {t.key: t for t in list_toolkit(inst.registry, principal(inst, "carer@B"), cid)}
    assert tools["pdsa-template"].summary == "Our own version"  # an edited item is kept
    with pytest.raises(PermissionDenied):  # a member who is not a steward
        load_starter_toolkit(inst.registry, principal(inst, "carer@B"), cid)
    assert audit_rows(inst, "community.toolkit_starter")[-1][1] == "denied"


def test_members_add_rate_and_use_tools_and_cycles_show_up_beside_them(installation):
    inst = installation
    cid = make_community(inst).community.id
    carer, lead = principal(inst, "carer@B"), principal(inst, "clinician@A")
    added = add_tool(
        inst.registry, carer, cid, key="huddle-card", kind="tool", title="Huddle card",
        stages=["do", "act", "do"], summary="Five questions for the morning huddle.",
    )  # fmt: skip
    assert (added.source, added.stages, added.ratings) == ("community", ["do", "act"], 0)
    rate_tool(inst.registry, carer, cid, "huddle-card", stars=2)
    rate_tool(inst.registry, carer, cid, "huddle-card", stars=4)  # replaces the 2
    got = rate_tool(inst.registry, lead, cid, "huddle-card", stars=5, comment="useful")
    assert (got.ratings, got.mean_rating) == (2, 4.5)
    cycle = add_cycle(
        inst.registry, lead, cid,
        CycleInput(title="Huddles", kind="process", do_start=date(2024, 3, 1),
                   measures=(CycleMeasureInput("remission-prevalence"),)),
        known_measures=KNOWN_MEASURES,
    )  # fmt: skip
    assert use_tool(inst.registry, carer, cycle.id, "huddle-card") == ["huddle-card"]
    assert use_tool(inst.registry, carer, cycle.id, "pdsa-template") == [
        "huddle-card",
        "pdsa-template",
    ]
    use_tool(inst.registry, carer, cycle.id, "pdsa-template")  # twice is once
    act_tools = list_toolkit(inst.registry, carer, cid, stage="act")
    by = {t.key: t for t in act_tools}
    assert "run-chart-rules" not in by and by["huddle-card"].used_by == [cycle.id]
    assert by["pdsa-template"].used_by == [cycle.id]


def test_bad_toolkit_input_changes_nothing_and_non_members_are_refused(installation):
    inst = installation
    cid = make_community(inst).community.id
    carer, outsider = principal(inst, "carer@B"), principal(inst, "site_lead@B")
    with pytest.raises(ValidationFailed) as caught:
        add_tool(
            inst.registry, carer, cid, key="pdsa-template", kind="poster", title=" ",
            stages=["someday"], summary="",
        )  # fmt: skip
    assert {d.location for d in caught.value.details} == {
        "key", "kind", "title", "summary", "stages[0]",
    }  # fmt: skip
    assert audit_rows(inst, "community.toolkit_add")[-1][1] == "failure"
    with pytest.raises(ValidationFailed):
        rate_tool(inst.registry, carer, cid, "pdsa-template", stars=6)
    with pytest.raises(NotFound):
        rate_tool(inst.registry, carer, cid, "no-such-tool", stars=3)
    with pytest.raises(ValidationFailed):
        list_toolkit(inst.registry, carer, cid, stage="someday")
    tools = list_toolkit(inst.registry, carer, cid)
    assert len(tools) == len(STARTER) and all(t.ratings == 0 for t in tools)
    for call in (
        lambda: list_toolkit(inst.registry, outsider, cid),
        lambda: rate_tool(inst.registry, outsider, cid, "pdsa-template", stars=3),
        lambda: add_tool(
            inst.registry,
            outsider,
            cid,
            key="x-tool",
            kind="tool",
            title="X",
            stages=["do"],
            summary="x",
        ),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert audit_rows(inst, "community.toolkit_rate")[-1][:2] == (
        inst.emails["site_lead@B"],
        "denied",
    )


def test_a_cycle_records_its_behaviour_change_design(installation):
    inst = installation
    cid = make_community(inst).community.id
    lead = principal(inst, "clinician@A")
    cycle = add_cycle(
        inst.registry, lead, cid,
        CycleInput(title="Reminders", kind="process", do_start=date(2024, 3, 1),
                   measures=(CycleMeasureInput("remission-prevalence"),)),
        known_measures=KNOWN_MEASURES,
    )  # fmt: skip
    with pytest.raises(ValidationFailed) as caught:
        record_design(inst.registry, lead, cycle.id, behaviour="", com_b=["willpower"])
    assert {d.location for d in caught.value.details} == {"behaviour", "com_b[0]"}
    with pytest.raises(PermissionDenied):
        record_design(
            inst.registry, principal(inst, "site_lead@B"), cycle.id, behaviour="b", com_b=COM_B[:1]
        )
    design = record_design(
        inst.registry, principal(inst, "analyst"), cycle.id,
        behaviour="Clinicians check steroid use at every visit",
        com_b=["capability_psychological", "opportunity_physical"],
        functions=["education", "environmental_restructuring"], policies=["guidelines"],
    )  # fmt: skip
    assert design.com_b == ["capability_psychological", "opportunity_physical"]
    with inst.registry.transaction() as session:
        stored = cycle_design_in(session, cycle.id)
    assert stored is not None and stored.functions == ["education", "environmental_restructuring"]
    assert stored.recorded_by == inst.emails["analyst"]


def test_whoever_sees_a_cycle_reads_its_design_and_an_outsider_is_refused_and_audited(
    installation,
):
    inst = installation
    cid = make_community(inst).community.id
    lead = principal(inst, "clinician@A")
    cycle = add_cycle(
        inst.registry, lead, cid,
        CycleInput(title="Huddles", kind="process", do_start=date(2024, 3, 1),
                   measures=(CycleMeasureInput("remission-prevalence"),)),
        known_measures=KNOWN_MEASURES,
    )  # fmt: skip
    assert cycle_design(inst.registry, lead, cycle.id, community_id=cid) is None
    record_design(
        inst.registry, lead, cycle.id, behaviour="Nurses call families before each visit",
        com_b=["opportunity_social"], functions=["enablement"],
    )  # fmt: skip
    carer = principal(inst, "carer@B")
    found = cycle_design(inst.registry, carer, cycle.id, community_id=cid)
    assert found is not None
    assert (found.behaviour, found.com_b, found.functions) == (
        "Nurses call families before each visit",
        ["opportunity_social"],
        ["enablement"],
    )
    assert audit_rows(inst, "cycle.design_read")[-1][:2] == (inst.emails["carer@B"], "success")
    with pytest.raises(PermissionDenied):
        cycle_design(inst.registry, principal(inst, "site_lead@B"), cycle.id)
    assert audit_rows(inst, "cycle.design_read")[-1][:2] == (inst.emails["site_lead@B"], "denied")
    # Under another community's id the cycle is not found.
    with pytest.raises(NotFound):
        cycle_design(inst.registry, lead, cycle.id, community_id=cid + 1000)
