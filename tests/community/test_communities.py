"""Communities, members and votes: authorised by membership on the server, audited, refusals too."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from careloop.community import (
    CharterTerms,
    add_priority,
    answer_invitation,
    close,
    create_community,
    decisions,
    invite,
    leave,
    list_communities,
    list_priorities,
    propose,
    record_decision,
    set_member_roles,
    show_community,
    vote,
)
from careloop.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from careloop.store.models import Community, Vote
from careloop.trust import patients
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal


def test_a_community_shows_its_members_with_their_roles_and_its_charter(installation):
    inst = installation
    created = make_community(inst, rule="consensus")
    shown = show_community(inst.registry, principal(inst, "patient@A"), created.community.id)
    roles = {m.email: m.roles for m in shown.members}
    assert roles[inst.emails["clinician@A"]] == ["facilitator"]
    assert roles[inst.emails["patient@A"]] == ["patient"]
    assert roles[inst.emails["carer@B"]] == ["carer"]
    assert shown.community.patients_and_carers == 2
    assert shown.charter.decision_rule == "consensus" and shown.charter.number == 1
    # Only stewards see pending invitations.
    assert shown.invitations == []


def test_non_members_neither_list_nor_see_a_community_and_the_refusal_is_audited(installation):
    inst = installation
    created = make_community(inst)
    outsider = principal(inst, "site_lead@B")
    assert created.community.id not in [c.id for c in list_communities(inst.registry, outsider)]
    with pytest.raises(PermissionDenied):
        show_community(inst.registry, outsider, created.community.id)
    refused = [
        r
        for r in audit_rows(inst, "community.show")
        if r[0] == inst.emails["site_lead@B"] and r[2].get("community") == created.community.id
    ]
    assert [r[1] for r in refused] == ["denied"]
    # The installation admin sees every community.
    admin = principal(inst, "admin")
    assert created.community.id in [c.id for c in list_communities(inst.registry, admin)]


def test_a_person_belongs_to_several_communities(installation):
    inst = installation
    first, second = make_community(inst), make_community(inst)
    mine = {c.id for c in list_communities(inst.registry, principal(inst, "carer@B"))}
    assert {first.community.id, second.community.id} <= mine


def test_community_membership_gives_patients_and_carers_no_patient_data(installation):
    inst = installation
    make_community(inst)
    patient = principal(inst, "patient@A")
    carer = principal(inst, "carer@B")
    other_patient = inst.patient_ids["B"][0]
    for who in (patient, carer):
        with pytest.raises((PermissionDenied, NotFound)):
            patients.get_patient(inst.registry, who, other_patient)
    # Their own (or proxied) record stays theirs, as the policy says.
    assert patients.get_patient(inst.registry, patient, inst.patient_user_of["patient@A"])
    # A staff member of another site is no closer to site A's patients for sharing a community.
    with pytest.raises((PermissionDenied, NotFound)):
        patients.get_patient(
            inst.registry, principal(inst, "clinician@B"), inst.patient_ids["A"][0]
        )


def test_only_facilitators_and_community_admins_invite_and_set_roles(installation):
    inst = installation
    created = make_community(inst)
    cid = created.community.id
    member = principal(inst, "clinician@B")
    with pytest.raises(PermissionDenied):
        invite(inst.registry, member, cid, email=inst.emails["site_lead@A"], roles=["manager"])
    with pytest.raises(PermissionDenied):
        set_member_roles(
            inst.registry, member, cid, email=inst.emails["carer@B"], roles=["facilitator"]
        )
    assert [r[1] for r in audit_rows(inst, "community.invite") if r[2].get("community") == cid][
        -1
    ] == "denied"
    facilitator = principal(inst, "clinician@A")
    changed = set_member_roles(
        inst.registry, facilitator, cid, email=inst.emails["carer@B"], roles=["carer", "manager"]
    )
    assert changed.roles == ["carer", "manager"]


def test_an_invitation_is_answered_by_the_invited_person_only(installation):
    inst = installation
    cid = make_community(inst).community.id
    facilitator = principal(inst, "clinician@A")
    invitation = invite(
        inst.registry, facilitator, cid, email=inst.emails["site_lead@A"], roles=["manager"]
    )
    with pytest.raises(PermissionDenied):
        answer_invitation(inst.registry, principal(inst, "clinician@B"), invitation.id, accept=True)
    answer_invitation(inst.registry, principal(inst, "site_lead@A"), invitation.id, accept=True)
    with pytest.raises(Conflict):
        answer_invitation(inst.registry, principal(inst, "site_lead@A"), invitation.id, accept=True)
    shown = show_community(inst.registry, principal(inst, "site_lead@A"), cid)
    assert inst.emails["site_lead@A"] in {m.email for m in shown.members}


def test_bad_community_input_names_each_field_and_creates_nothing(installation):
    inst = installation
    with inst.registry.transaction() as session:
        before = session.scalar(select(func.count()).select_from(Community))
    with pytest.raises(ValidationFailed) as caught:
        create_community(
            inst.registry,
            principal(inst, "clinician@A"),
            name="Broken",
            purpose="x",
            problem="y",
            scale="network",
            measures=["no-such-measure"],
            known_measures=KNOWN_MEASURES,
            charter=CharterTerms(purpose="x", decision_rule="majority"),
        )
    assert [d.location for d in caught.value.details] == ["measures[0]"]
    with pytest.raises(ValidationFailed) as caught:
        create_community(
            inst.registry,
            principal(inst, "clinician@A"),
            name="Broken",
            purpose="x",
            problem="y",
            scale="network",
            known_measures=KNOWN_MEASURES,
            charter=CharterTerms(purpose="x", decision_rule="loudest", quorum=2),
        )
    assert {d.location for d in caught.value.details} == {"charter.decision_rule", "charter.quorum"}
    with inst.registry.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Community)) == before
    # Patients and carers take part in communities but do not start them.
    with pytest.raises(PermissionDenied):
        create_community(
            inst.registry,
            principal(inst, "patient@A"),
            name="Mine",
            purpose="x",
            problem="y",
            scale="practice",
            known_measures=KNOWN_MEASURES,
            charter=CharterTerms(purpose="x", decision_rule="majority"),
        )


def test_a_charter_change_is_adopted_by_the_charters_own_rule_and_history_is_kept(installation):
    inst = installation
    cid = make_community(inst, rule="majority").community.id
    new = CharterTerms(
        purpose="Fewer children on steroids, with families",
        decision_rule="consensus",
        requires_patient_reviewer=True,
        meeting_cadence="every two weeks",
    )
    opened = propose(
        inst.registry,
        principal(inst, "carer@B"),
        cid,
        kind="charter_change",
        title="Families review every decision",
        payload={"charter": new.as_dict()},
    )
    for key, choice in (("clinician@A", "yes"), ("carer@B", "yes"), ("patient@A", "yes")):
        vote(inst.registry, principal(inst, key), opened.id, choice=choice, comment="agreed")
    closed = close(inst.registry, principal(inst, "clinician@A"), opened.id)
    assert closed.status == "passed"
    assert closed.outcome["patients_and_carers"] == {"yes": 2, "no": 0, "abstain": 0}
    shown = show_community(inst.registry, principal(inst, "analyst"), cid)
    assert [c.number for c in shown.charter_history] == [1, 2]
    assert shown.charter.decision_rule == "consensus" and shown.charter.requires_patient_reviewer
    assert shown.charter.adopted_by_proposal == opened.id
    assert any(
        d.proposal_id == opened.id
        for d in decisions(inst.registry, principal(inst, "analyst"), cid)
    )


def test_a_proposal_that_misses_its_quorum_is_rejected_and_changes_no_charter(installation):
    inst = installation
    cid = make_community(inst, rule="majority", quorum=0.8).community.id
    opened = propose(
        inst.registry,
        principal(inst, "clinician@B"),
        cid,
        kind="charter_change",
        title="Meet weekly",
        payload={"charter": CharterTerms(purpose="p", decision_rule="majority").as_dict()},
    )
    vote(inst.registry, principal(inst, "clinician@B"), opened.id, choice="yes")
    closed = close(inst.registry, principal(inst, "clinician@B"), opened.id)
    assert closed.status == "rejected" and "quorum" in closed.outcome["reason"]
    shown = show_community(inst.registry, principal(inst, "clinician@B"), cid)
    assert shown.charter.number == 1


def test_votes_outside_the_rule_are_refused_audited_and_change_nothing(installation):
    inst = installation
    cid = make_community(
        inst, rule="named_approvers", approvers=("clinician@A",), patient_reviewer=True
    ).community.id
    opened = propose(
        inst.registry, principal(inst, "clinician@A"), cid, kind="priority", title="Steroid plans"
    )

    def votes() -> int:
        with inst.registry.transaction() as session:
            return session.scalar(
                select(func.count()).select_from(Vote).where(Vote.proposal_id == opened.id)
            )

    # Not an approver, not a patient or carer: no vote under this charter.
    with pytest.raises(PermissionDenied, match="named approvers"):
        vote(inst.registry, principal(inst, "clinician@B"), opened.id, choice="yes")
    # Not a member at all.
    with pytest.raises(PermissionDenied):
        vote(inst.registry, principal(inst, "site_lead@B"), opened.id, choice="yes")
    # No such choice.
    with pytest.raises(ValidationFailed):
        vote(inst.registry, principal(inst, "clinician@A"), opened.id, choice="maybe")
    assert votes() == 0
    denied = [r for r in audit_rows(inst, "community.vote") if r[2].get("proposal") == opened.id]
    assert [r[1] for r in denied] == ["denied", "denied", "failure"]
    # The patient reviewer votes; the approver too; then it passes.
    vote(inst.registry, principal(inst, "patient@A"), opened.id, choice="yes", comment="yes please")
    vote(inst.registry, principal(inst, "clinician@A"), opened.id, choice="yes")
    assert close(inst.registry, principal(inst, "clinician@A"), opened.id).status == "passed"
    # A closed proposal takes no more votes.
    with pytest.raises(Conflict):
        vote(inst.registry, principal(inst, "clinician@A"), opened.id, choice="no")
    assert votes() == 2


def test_a_facilitator_records_a_meetings_votes_for_the_members_present(installation):
    inst = installation
    cid = make_community(inst).community.id
    opened = propose(inst.registry, principal(inst, "patient@A"), cid, kind="priority", title="x")
    view = vote(
        inst.registry,
        principal(inst, "clinician@A"),
        opened.id,
        choice="yes",
        on_behalf_of=inst.emails["carer@B"],
    )
    assert view.votes[0].email == inst.emails["carer@B"]
    assert view.votes[0].recorded_by == inst.emails["clinician@A"]
    assert view.votes[0].group == "patients_and_carers"
    with pytest.raises(PermissionDenied):
        vote(
            inst.registry,
            principal(inst, "patient@A"),
            opened.id,
            choice="no",
            on_behalf_of=inst.emails["carer@B"],
        )


def test_priorities_are_ranked_by_votes_with_patients_and_carers_shown_as_a_group(installation):
    inst = installation
    cid = make_community(inst).community.id
    first = add_priority(
        inst.registry, principal(inst, "patient@A"), cid, kind="problem", title="Waiting times"
    )
    second = add_priority(
        inst.registry, principal(inst, "clinician@B"), cid, kind="idea", title="Steroid plans"
    )
    for key in ("clinician@A", "patient@A", "carer@B"):
        vote(inst.registry, principal(inst, key), second.proposal_id, choice="yes")
    vote(inst.registry, principal(inst, "analyst"), first.proposal_id, choice="no")
    ranked = list_priorities(inst.registry, principal(inst, "carer@B"), cid)
    assert [p.id for p in ranked] == [second.id, first.id]
    assert ranked[0].score == 3 and ranked[0].patients_and_carers["yes"] == 2
    assert ranked[1].score == -1


def test_the_decision_log_keeps_what_did_not_work_and_is_searchable(installation):
    inst = installation
    cid = make_community(inst).community.id
    record_decision(
        inst.registry,
        principal(inst, "carer@B"),
        cid,
        kind="reflection",
        title="Text reminders",
        did_not_work="Reminders by text were ignored",
        why="Families had changed numbers",
    )
    found = decisions(inst.registry, principal(inst, "clinician@A"), cid, search="ignored TEXT")
    assert [d.title for d in found] == ["Text reminders"]
    assert decisions(inst.registry, principal(inst, "clinician@A"), cid, search="letters") == []
    with pytest.raises(PermissionDenied):
        record_decision(inst.registry, principal(inst, "site_lead@B"), cid, title="x", decision="y")


def test_the_last_community_admin_cannot_leave(installation):
    inst = installation
    cid = make_community(inst).community.id
    with pytest.raises(Conflict, match="last community admin"):
        leave(inst.registry, principal(inst, "clinician@A"), cid)
    leave(inst.registry, principal(inst, "analyst"), cid)
    with pytest.raises(PermissionDenied):
        show_community(inst.registry, principal(inst, "analyst"), cid)


def test_a_community_action_runs_in_a_session_that_sees_no_patient(installation):
    from careloop.community._access import community_work
    from careloop.store.models import Patient

    inst = installation
    make_community(inst)
    # The policy grants community actions everywhere; the session is narrowed to no rows.
    for key in ("clinician@A", "patient@A", "admin"):
        with community_work(inst.registry, principal(inst, key), "community.read") as work:
            assert work.session.scalars(select(Patient)).all() == []
