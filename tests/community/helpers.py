"""A small learning community on the shared test installation (tests/foundation.py).

clinician@A facilitates it; clinician@B, the patient of site A, the carer of
site B and the network analyst are members with community roles; the site
lead of B is not a member. Each test makes its own community (names are
unique), so tests can share one installation.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from sqlalchemy import select

from careloop.community import (
    CharterTerms,
    CommunityDetail,
    answer_invitation,
    create_community,
    invite,
)
from careloop.store.models import AuditEntry
from careloop.trust.identity import resolve_token
from careloop.trust.principal import Principal, RequestContext
from tests.foundation import Installation

KNOWN_MEASURES = frozenset({"remission-prevalence", "steroid-exposure", "prom-completion"})
MEMBERS = (
    ("clinician@B", ["clinician"]),
    ("patient@A", ["patient"]),
    ("carer@B", ["carer"]),
    ("analyst", ["analyst", "researcher"]),
)
_numbers = itertools.count(1)


def principal(inst: Installation, key: str) -> Principal:
    return resolve_token(inst.registry, inst.tokens[key], RequestContext())


def make_community(
    inst: Installation,
    *,
    rule: str = "majority",
    quorum: float = 0.5,
    approvers: tuple[str, ...] = (),
    patient_reviewer: bool = False,
    members: tuple[tuple[str, list[str]], ...] = MEMBERS,
) -> CommunityDetail:
    facilitator = principal(inst, "clinician@A")
    created = create_community(
        inst.registry,
        facilitator,
        name=f"Test community {next(_numbers)} ({rule})",
        purpose="Fewer children on steroids",
        problem="Too many children stay on steroids",
        scale="network",
        sites=["A", "B"],
        conditions=["paediatric IBD"],
        measures=["remission-prevalence"],
        known_measures=KNOWN_MEASURES,
        charter=CharterTerms(
            purpose="Fewer children on steroids",
            decision_rule=rule,
            quorum=quorum,
            approvers=tuple(inst.emails[a] for a in approvers),
            requires_patient_reviewer=patient_reviewer,
            meeting_cadence="monthly",
            data_access_agreement="Members see aggregates only.",
        ),
    )
    cid = created.community.id
    for key, roles in members:
        invitation = invite(inst.registry, facilitator, cid, email=inst.emails[key], roles=roles)
        answer_invitation(inst.registry, principal(inst, key), invitation.id, accept=True)
    return created


def audit_rows(inst: Installation, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(user e-mail, outcome, details) of the audit entries of one action, oldest first."""
    with inst.registry.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        )
        return [(r.user_email or "", r.outcome, json.loads(r.details or "{}")) for r in rows]
