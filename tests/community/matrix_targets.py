"""A site B learning community for the community routes in tests/web/test_access_matrix.py.

Made once per installation: clinician@B facilitates it, carer@B is a member,
site_lead@B has a pending invitation, and it has a proposal and a cycle. No
site A user belongs to it, so each of them is refused its parts.
"""

from __future__ import annotations

from datetime import date

from careloop.community import (
    CharterTerms,
    CycleInput,
    CycleMeasureInput,
    add_cycle,
    add_priority,
    answer_invitation,
    create_community,
    invite,
)
from careloop.trust.identity import resolve_token
from careloop.trust.principal import RequestContext
from tests.foundation import Installation

_MADE: dict[int, dict[str, int]] = {}


def b_community(inst: Installation) -> dict[str, int]:
    """Ids of the site B community and of its invitation, proposal and cycle."""
    if id(inst) not in _MADE:
        lead = resolve_token(inst.registry, inst.tokens["clinician@B"], RequestContext())
        made = create_community(
            inst.registry,
            lead,
            name="Site B community (access matrix)",
            purpose="Site B's own improvement work",
            problem="p",
            scale="hospital",
            sites=["B"],
            known_measures=(),
            charter=CharterTerms(purpose="Site B's own improvement work", decision_rule="majority"),
        )
        cid = made.community.id
        carer = invite(inst.registry, lead, cid, email=inst.emails["carer@B"], roles=["carer"])
        answer_invitation(inst.registry, inst.operator, carer.id, accept=True,
                          on_behalf_of=inst.emails["carer@B"])  # fmt: skip
        pending = invite(
            inst.registry, lead, cid, email=inst.emails["site_lead@B"], roles=["manager"]
        )
        priority = add_priority(inst.registry, lead, cid, kind="idea", title="B's idea")
        cycle = add_cycle(
            inst.registry,
            lead,
            cid,
            CycleInput(
                title="B's change",
                kind="process",
                do_start=date(2024, 1, 1),
                measures=(CycleMeasureInput("remission-prevalence"),),
            ),
            known_measures={"remission-prevalence"},
        )
        _MADE[id(inst)] = {
            "community": cid,
            "invitation": pending.id,
            "proposal": priority.proposal_id or 0,
            "cycle": cycle.id,
        }
    return _MADE[id(inst)]


def url(inst: Installation, tail: str = "") -> str:
    return f"/api/communities/{b_community(inst)['community']}{tail}"


def _ids(inst: Installation, key: str) -> int:
    return b_community(inst)[key]


_CHARTER = {"purpose": "p", "decision_rule": "majority"}
_CYCLE = {"title": "A's change", "kind": "process", "measures": []}
_AIM = {"what": "A's aim", "how_much": "much", "by_when": "2025-01-01"}
_TOOL = {"key": "a-tool", "kind": "tool", "title": "A's", "stages": ["do"], "summary": "s"}

MATRIX = {
    ("GET", "/api/communities"): ("filter", lambda i: ("GET", "/api/communities", None)),
    ("POST", "/api/communities"): (
        "filter",
        lambda i: (
            "POST",
            "/api/communities",
            {"name": "A's", "purpose": "p", "charter": _CHARTER},
        ),
    ),
    **{
        ("GET", f"/api/communities/{{community_id}}{tail}"): (
            "deny",
            lambda i, tail=tail: ("GET", url(i, tail), None),
        )
        for tail in (
            "",
            "/members",
            "/charter",
            "/proposals",
            "/priorities",
            "/decisions",
            "/cycles",
            "/aims",
            "/nasss",
            "/maturity",
            "/toolkit",
            "/engagement",
        )
    },
    ("POST", "/api/communities/{community_id}/invitations"): (
        "deny",
        lambda i: (
            "POST",
            url(i, "/invitations"),
            {"email": i.emails["clinician@A"], "roles": ["clinician"]},
        ),
    ),
    ("POST", "/api/communities/{community_id}/invitations/{invitation_id}"): (
        "deny",
        lambda i: ("POST", url(i, f"/invitations/{_ids(i, 'invitation')}"), {"accept": True}),
    ),
    ("POST", "/api/communities/{community_id}/roles"): (
        "deny",
        lambda i: (
            "POST",
            url(i, "/roles"),
            {"email": i.emails["carer@B"], "roles": ["facilitator"]},
        ),
    ),
    ("DELETE", "/api/communities/{community_id}/membership"): (
        "deny",
        lambda i: ("DELETE", url(i, "/membership"), None),
    ),
    ("POST", "/api/communities/{community_id}/proposals"): (
        "deny",
        lambda i: ("POST", url(i, "/proposals"), {"kind": "priority", "title": "A's"}),
    ),
    ("GET", "/api/communities/{community_id}/proposals/{proposal_id}"): (
        "deny",
        lambda i: ("GET", url(i, f"/proposals/{_ids(i, 'proposal')}"), None),
    ),
    ("POST", "/api/communities/{community_id}/proposals/{proposal_id}/votes"): (
        "deny",
        lambda i: ("POST", url(i, f"/proposals/{_ids(i, 'proposal')}/votes"), {"choice": "no"}),
    ),
    ("POST", "/api/communities/{community_id}/proposals/{proposal_id}/close"): (
        "deny",
        lambda i: ("POST", url(i, f"/proposals/{_ids(i, 'proposal')}/close"), {}),
    ),
    ("POST", "/api/communities/{community_id}/priorities"): (
        "deny",
        lambda i: ("POST", url(i, "/priorities"), {"kind": "idea", "title": "A's"}),
    ),
    ("POST", "/api/communities/{community_id}/decisions"): (
        "deny",
        lambda i: ("POST", url(i, "/decisions"), {"title": "A's", "decision": "x"}),
    ),
    ("POST", "/api/communities/{community_id}/nasss"): (
        "deny",
        lambda i: ("POST", url(i, "/nasss"), {"subject": "x", "ratings": {}}),
    ),
    ("POST", "/api/communities/{community_id}/cycles"): (
        "deny",
        lambda i: ("POST", url(i, "/cycles"), _CYCLE),
    ),
    ("GET", "/api/communities/{community_id}/cycles/{cycle_id}"): (
        "deny",
        lambda i: ("GET", url(i, f"/cycles/{_ids(i, 'cycle')}"), None),
    ),
    ("GET", "/api/communities/{community_id}/cycles/{cycle_id}/study"): (
        "deny",
        lambda i: ("GET", url(i, f"/cycles/{_ids(i, 'cycle')}/study"), None),
    ),
    ("GET", "/api/communities/{community_id}/cycles/{cycle_id}/findings"): (
        "deny",
        lambda i: ("GET", url(i, f"/cycles/{_ids(i, 'cycle')}/findings"), None),
    ),
    ("PATCH", "/api/communities/{community_id}/cycles/{cycle_id}"): (
        "deny",
        lambda i: ("PATCH", url(i, f"/cycles/{_ids(i, 'cycle')}"), {"title": "A's now"}),
    ),
    ("POST", "/api/communities/{community_id}/aims"): (
        "deny",
        lambda i: ("POST", url(i, "/aims"), _AIM),
    ),
    ("PUT", "/api/communities/{community_id}/aims/{aim_id}"): (
        "deny",
        lambda i: ("PUT", url(i, "/aims/1"), _AIM),
    ),
    ("POST", "/api/communities/{community_id}/maturity"): (
        "deny",
        lambda i: ("POST", url(i, "/maturity"), {"round": "r", "ratings": {}}),
    ),
    ("POST", "/api/communities/{community_id}/toolkit"): (
        "deny",
        lambda i: ("POST", url(i, "/toolkit"), _TOOL),
    ),
    ("POST", "/api/communities/{community_id}/toolkit/starter"): (
        "deny",
        lambda i: ("POST", url(i, "/toolkit/starter"), None),
    ),
    ("POST", "/api/communities/{community_id}/toolkit/{key}/ratings"): (
        "deny",
        lambda i: ("POST", url(i, "/toolkit/pdsa-template/ratings"), {"stars": 1}),
    ),
    ("POST", "/api/communities/{community_id}/cycles/{cycle_id}/tools"): (
        "deny",
        lambda i: ("POST", url(i, f"/cycles/{_ids(i, 'cycle')}/tools"), {"tool": "pdsa-template"}),
    ),
    ("PUT", "/api/communities/{community_id}/cycles/{cycle_id}/design"): (
        "deny",
        lambda i: (
            "PUT",
            url(i, f"/cycles/{_ids(i, 'cycle')}/design"),
            {"behaviour": "b", "com_b": ["opportunity_social"]},
        ),
    ),
    ("POST", "/api/communities/{community_id}/cycles/{cycle_id}/act"): (
        "deny",
        lambda i: (
            "POST",
            url(i, f"/cycles/{_ids(i, 'cycle')}/act"),
            {"decision": "abandon", "rationale": "x"},
        ),
    ),
}
"""Each community route aimed at the site B community (see tests/web/test_access_matrix.py)."""
