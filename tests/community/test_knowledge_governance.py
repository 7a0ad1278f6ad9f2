"""A knowledge object a community owns is approved and spread by the community's rule."""

from __future__ import annotations

import pytest

from careloop.community import (
    CycleInput,
    add_cycle,
    close,
    list_proposals,
    own_knowledge,
    propose,
    record_nasss,
    vote,
)
from careloop.core.errors import Conflict, PermissionDenied, ValidationFailed
from careloop.knowledge import activate, add_version, approve, show, submit
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal
from tests.knowledge.test_library import package

NASSS = {
    d: ("complicated", f"notes on {d}")
    for d in (
        "condition",
        "technology",
        "value_proposition",
        "adopter_system",
        "organisation",
        "wider_system",
        "embedding_and_adaptation",
    )
}


def test_the_communitys_decision_approves_and_spreads_the_knowledge_object_it_owns(installation):
    inst = installation
    cid = make_community(inst, rule="majority", patient_reviewer=True).community.id
    lead_a, lead_b = principal(inst, "site_lead@A"), principal(inst, "site_lead@B")
    add_version(inst.registry, lead_a, package("community-ko"), reason="draft")
    submit(inst.registry, lead_a, "community-ko@1.0.0", reason="ready")
    # Handing it over is for those who approve knowledge today, as a community steward.
    with pytest.raises(PermissionDenied):
        own_knowledge(
            inst.registry,
            principal(inst, "clinician@A"),
            cid,
            identifier="community-ko",
            pilot_sites=["A"],
        )
    own_knowledge(inst.registry, inst.operator, cid, identifier="community-ko", pilot_sites=["A"])
    # The site-lead path no longer approves it.
    with pytest.raises(PermissionDenied, match="community"):
        approve(inst.registry, lead_b, "community-ko@1.0.0", reason="looks fine")
    opened = propose(
        inst.registry,
        principal(inst, "clinician@A"),
        cid,
        kind="knowledge_approval",
        title="Approve the steroid review rule",
        payload={"knowledge": "community-ko@1.0.0"},
    )
    for key in ("clinician@A", "clinician@B", "analyst"):
        vote(inst.registry, principal(inst, key), opened.id, choice="yes")
    # Staff alone do not pass it: the charter needs a patient or carer reviewer.
    assert close(inst.registry, principal(inst, "clinician@A"), opened.id).status == "rejected"
    assert show(inst.registry, lead_a, "community-ko@1.0.0").version.status == "in_review"

    again = propose(
        inst.registry,
        principal(inst, "clinician@A"),
        cid,
        kind="knowledge_approval",
        title="Approve the steroid review rule (with families)",
        payload={"knowledge": "community-ko@1.0.0"},
    )
    for key in ("clinician@A", "clinician@B", "carer@B"):
        vote(inst.registry, principal(inst, key), again.id, choice="yes")
    assert close(inst.registry, principal(inst, "clinician@A"), again.id).status == "passed"
    detail = show(inst.registry, lead_a, "community-ko@1.0.0")
    assert detail.version.status == "approved"
    assert detail.owner is not None and detail.community_approval is not None
    assert detail.community_approval.proposal_id == again.id
    assert detail.community_approval.rule == "majority"
    assert detail.community_approval.outcome["patients_and_carers"]["yes"] == 1
    assert "proposal" in detail.transitions[-1].reason

    # Its card's wording is randomised: deployed under a cycle with a QI determination.
    cycle = add_cycle(
        inst.registry,
        principal(inst, "clinician@A"),
        cid,
        CycleInput(
            title="Card wording test",
            kind="process",
            randomised=True,
            determination_kind="qi_determination",
            determination_ref="QI-5",
        ),
        known_measures=KNOWN_MEASURES,
    ).id
    # A site lead deploys at the pilot site; not beyond it.
    activate(
        inst.registry, lead_a, "community-ko@1.0.0", reason="pilot", sites=["A"], cycle_id=cycle
    )
    with pytest.raises(PermissionDenied, match="pilot sites"):
        activate(inst.registry, lead_a, "community-ko@1.0.0", reason="spread", sites=["A", "B"])
    # Spreading needs a NASSS assessment on record.
    with pytest.raises(Conflict, match="NASSS"):
        propose(
            inst.registry,
            principal(inst, "clinician@A"),
            cid,
            kind="knowledge_spread",
            title="Spread to B",
            payload={"knowledge": "community-ko@1.0.0", "sites": ["A", "B"]},
        )
    record_nasss(
        inst.registry, principal(inst, "carer@B"), cid, subject="community-ko", ratings=NASSS
    )
    # Spreading a randomised test names its cycle, refused at once otherwise.
    with pytest.raises(ValidationFailed, match="randomises card variants"):
        propose(
            inst.registry,
            principal(inst, "clinician@A"),
            cid,
            kind="knowledge_spread",
            title="Spread to B",
            payload={"knowledge": "community-ko@1.0.0", "sites": ["A", "B"]},
        )
    spread = propose(
        inst.registry,
        principal(inst, "clinician@A"),
        cid,
        kind="knowledge_spread",
        title="Spread to B",
        payload={"knowledge": "community-ko@1.0.0", "sites": ["A", "B"], "cycle": cycle},
    )
    for key in ("clinician@A", "patient@A", "carer@B"):
        vote(inst.registry, principal(inst, key), spread.id, choice="yes")
    assert close(inst.registry, principal(inst, "clinician@A"), spread.id).status == "passed"
    deployed = show(inst.registry, lead_a, "community-ko@1.0.0").deployments
    assert [d.sites for d in deployed] == [("A",), ("A", "B")]
    assert deployed[0].ended_at is not None and deployed[1].ended_at is None
    assert [(d.cycle_id, d.consent_purpose) for d in deployed] == [
        (cycle, "quality_improvement")
    ] * 2


def test_a_knowledge_object_no_community_owns_keeps_the_site_lead_path(installation):
    inst = installation
    lead_a, lead_b = principal(inst, "site_lead@A"), principal(inst, "site_lead@B")
    add_version(inst.registry, lead_a, package("unowned-ko"), reason="draft")
    submit(inst.registry, lead_a, "unowned-ko@1.0.0", reason="ready")
    approve(inst.registry, lead_b, "unowned-ko@1.0.0", reason="checked")
    detail = show(inst.registry, lead_a, "unowned-ko@1.0.0")
    assert detail.version.status == "approved"
    assert detail.owner is None and detail.community_approval is None


def test_a_community_cannot_decide_on_knowledge_it_does_not_own(installation):
    inst = installation
    cid = make_community(inst).community.id
    lead_a = principal(inst, "site_lead@A")
    add_version(inst.registry, lead_a, package("elsewhere-ko"), reason="draft")
    submit(inst.registry, lead_a, "elsewhere-ko@1.0.0", reason="ready")
    with pytest.raises(PermissionDenied, match="not owned"):
        propose(
            inst.registry,
            principal(inst, "clinician@A"),
            cid,
            kind="knowledge_approval",
            title="Approve it",
            payload={"knowledge": "elsewhere-ko@1.0.0"},
        )


def _approved_and_owned(inst, cid: int, identifier: str) -> None:
    """A version of ``identifier`` the community owns (pilot site A) and approved by its vote."""
    lead_a = principal(inst, "site_lead@A")
    add_version(inst.registry, lead_a, package(identifier), reason="draft")
    submit(inst.registry, lead_a, f"{identifier}@1.0.0", reason="ready")
    own_knowledge(inst.registry, inst.operator, cid, identifier=identifier, pilot_sites=["A"])
    opened = propose(
        inst.registry, principal(inst, "clinician@A"), cid, kind="knowledge_approval",
        title="Approve it", payload={"knowledge": f"{identifier}@1.0.0"},
    )  # fmt: skip
    for key in ("clinician@A", "clinician@B", "carer@B"):
        vote(inst.registry, principal(inst, key), opened.id, choice="yes")
    assert close(inst.registry, principal(inst, "clinician@A"), opened.id).status == "passed"


def test_spread_needs_this_communitys_nasss_of_this_knowledge_object(installation):
    inst = installation
    cid = make_community(inst).community.id
    other = make_community(inst).community.id
    _approved_and_owned(inst, cid, "spread-ko")
    lead = principal(inst, "clinician@A")
    # Its card's wording is randomised, so the spread names the cycle that covers the test.
    cycle = add_cycle(
        inst.registry,
        lead,
        cid,
        CycleInput(
            title="Card wording test",
            kind="process",
            randomised=True,
            determination_kind="qi_determination",
            determination_ref="QI-6",
        ),
        known_measures=KNOWN_MEASURES,
    ).id
    spread = {"knowledge": "spread-ko@1.0.0", "sites": ["A", "B"], "cycle": cycle}
    # An assessment of another knowledge object, or by another community, does not count.
    record_nasss(inst.registry, principal(inst, "carer@B"), cid, subject="other-ko", ratings=NASSS)
    record_nasss(
        inst.registry, principal(inst, "carer@B"), other, subject="spread-ko", ratings=NASSS
    )
    before = len(list_proposals(inst.registry, lead, cid))
    with pytest.raises(Conflict) as caught:
        propose(inst.registry, lead, cid, kind="knowledge_spread", title="Spread", payload=spread)
    message = str(caught.value)
    assert "NASSS" in message and "(A)" in message and f"community nasss {cid} spread-ko" in message
    assert len(list_proposals(inst.registry, lead, cid)) == before  # nothing opened
    assert audit_rows(inst, "community.propose")[-1][1] == "failure"
    # Deploying beyond the pilot site directly stays refused as well.
    with pytest.raises(PermissionDenied, match="NASSS"):
        activate(
            inst.registry, principal(inst, "site_lead@B"), "spread-ko@1.0.0", reason="go",
            sites=["B"],
        )  # fmt: skip
    # An assessment of one of its versions counts.
    record_nasss(
        inst.registry, principal(inst, "patient@A"), cid, subject="spread-ko@1.0.0", ratings=NASSS
    )
    opened = propose(
        inst.registry, lead, cid, kind="knowledge_spread", title="Spread", payload=spread
    )
    assert opened.status == "open"
