"""Engagement: contributions per member by display name, totals, patients' and carers' share."""

from __future__ import annotations

from typing import Any

import pytest

from careloop.community import add_findings, engagement, own_knowledge, propose, vote
from careloop.core.errors import NotFound, PermissionDenied
from careloop.knowledge import add_version, submit
from tests.community.helpers import audit_rows, make_community, principal
from tests.community.qualitative_fixture import focus_group
from tests.community.test_findings import cycle_of
from tests.foundation import Installation
from tests.knowledge.test_library import package


def busy_community(inst: Installation, ko: str) -> int:
    """A community where each member did something: 7 contributions, 3 by patient and carer."""
    cid = make_community(inst).community.id
    patient, carer = principal(inst, "patient@A"), principal(inst, "carer@B")
    idea = propose(inst.registry, patient, cid, kind="priority", title="Shorter waits")
    vote(inst.registry, patient, idea.id, choice="yes")
    add_version(inst.registry, inst.operator, package(ko), reason="draft")
    submit(inst.registry, inst.operator, f"{ko}@1.0.0", reason="ready")
    own_knowledge(inst.registry, inst.operator, cid, identifier=ko, pilot_sites=["A"])
    review = propose(
        inst.registry,
        principal(inst, "clinician@A"),
        cid,
        kind="knowledge_approval",
        title="Approve it",
        payload={"knowledge": f"{ko}@1.0.0"},
    )
    vote(inst.registry, carer, review.id, choice="yes")
    cycle = cycle_of(inst, cid)  # led by clinician@B
    add_findings(inst.registry, principal(inst, "analyst"), cycle.id, focus_group(), source="json")
    return cid


def test_each_members_contributions_are_counted_with_the_patients_and_carers_share(installation):
    inst = installation
    cid = busy_community(inst, "engagement-ko")
    found = engagement(inst.registry, principal(inst, "carer@B"), cid)
    rows = {m.name: m for m in found.members}
    patient = rows["patient"]
    assert patient.email is None  # a patient is shown by display name only
    assert (patient.counts["proposals"], patient.counts["votes"], patient.total) == (1, 1, 2)
    assert (rows["carer"].counts["votes"], rows["carer"].counts["reviews"]) == (1, 1)
    assert rows["clinician@A"].counts["proposals"] == 1
    assert rows["clinician@A"].email == inst.emails["clinician@A"]
    assert rows["clinician@B"].counts["cycles_led"] == 1
    assert rows["analyst"].counts["findings_coded"] == 1
    assert found.totals == {
        "proposals": 2,
        "ideas": 0,
        "votes": 2,
        "reviews": 1,
        "cycles_led": 1,
        "findings_coded": 1,
        "decisions_logged": 0,
    }
    assert found.total == 7
    assert found.patients_and_carers == 2
    assert found.patient_and_carer_contributions == 4  # 2 by the patient, 2 by the carer
    assert found.patient_and_carer_share == pytest.approx(4 / 7)


def test_engagement_is_for_members_and_every_read_and_refusal_is_audited(installation):
    inst = installation
    cid = make_community(inst).community.id
    with pytest.raises(PermissionDenied):
        engagement(inst.registry, principal(inst, "site_lead@B"), cid)
    with pytest.raises(NotFound):
        engagement(inst.registry, principal(inst, "patient@A"), 987_654)
    empty = engagement(inst.registry, principal(inst, "patient@A"), cid)
    assert empty.total == 0 and empty.patient_and_carer_share is None
    mine = [(who, o) for who, o, d in audit_rows(inst, "community.engagement")][-3:]
    assert mine == [
        (inst.emails["site_lead@B"], "denied"),
        (inst.emails["patient@A"], "not_found"),
        (inst.emails["patient@A"], "success"),
    ]


def test_engagement_through_the_api_and_for_patients_without_their_email(
    api: Any, installation: Installation
):
    inst = installation
    cid = busy_community(inst, "engagement-api-ko")
    got = api.get(
        f"/api/communities/{cid}/engagement",
        headers={"Authorization": f"Bearer {inst.tokens['patient@A']}"},
    )
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["total"] == 7 and body["patient_and_carer_share"] == pytest.approx(4 / 7)
    assert inst.emails["patient@A"] not in got.text and inst.emails["carer@B"] not in got.text
    refused = api.get(
        f"/api/communities/{cid}/engagement",
        headers={"Authorization": f"Bearer {inst.tokens['site_lead@B']}"},
    )
    assert refused.status_code == 403
    assert api.get(f"/api/communities/{cid}/engagement").status_code == 401
