"""Engagement and recognition: who contributed what to a learning community.

Per member — by display name, never an internal id, and without the e-mail
of a patient or carer — the proposals they opened, the problems and ideas
they put forward, the votes they cast, their reviews of knowledge objects
(votes on knowledge approvals), the cycles they led, the qualitative
findings they coded and attached, and the decisions and reflections they
logged; then the community's totals and the share of contributions made
by patients and carers, so that their part is visible.

Members see their community's figures (and the installation admin and the
operator); every read is audited.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.store.database import Registry
from careloop.store.models import (
    CommunityMember,
    Cycle,
    CycleFindings,
    DecisionEntry,
    Priority,
    Proposal,
    User,
    Vote,
)
from careloop.trust.principal import Principal

__all__ = ["CONTRIBUTIONS", "Engagement", "MemberEngagement", "engagement"]

CONTRIBUTIONS: tuple[str, ...] = (
    "proposals",
    "ideas",
    "votes",
    "reviews",
    "cycles_led",
    "findings_coded",
    "decisions_logged",
)
"""What is counted, in the order shown."""
_LIVED = {"patient", "carer"}


@dataclass(frozen=True)
class MemberEngagement:
    """One member's contributions."""

    name: str
    """Display name (a patient's or carer's e-mail is never shown)."""
    email: str | None
    """Shown for clinicians, researchers and staff; None for patients and carers."""
    roles: list[str]
    active: bool
    """False once the member has left (their contributions still count)."""
    counts: dict[str, int]
    """Each of :data:`CONTRIBUTIONS`."""
    total: int


@dataclass(frozen=True)
class Engagement:
    """A community's engagement figures."""

    community_id: int
    community: str
    members: list[MemberEngagement]
    totals: dict[str, int]
    """Each of :data:`CONTRIBUTIONS`, over every member."""
    total: int
    patients_and_carers: int
    """Members (active or not) who are patients or carers."""
    patient_and_carer_contributions: int
    patient_and_carer_share: float | None
    """Share of all contributions made by patients and carers (None before any)."""
    by_others: dict[str, int] = field(default_factory=dict)
    """Contributions by people who are no members (the operator at the server's
    command line), counted in the totals but in no member's row."""


def _tally(session: Session, community_id: int) -> Counter[tuple[str, str]]:
    """Contributions keyed by (e-mail, what)."""
    counts: Counter[tuple[str, str]] = Counter()
    for email in session.scalars(
        select(Proposal.opened_by).where(Proposal.community_id == community_id)
    ):
        counts[(email, "proposals")] += 1
    for email in session.scalars(
        select(Priority.proposed_by).where(Priority.community_id == community_id)
    ):
        counts[(email, "ideas")] += 1
    for email in session.scalars(
        select(Cycle.created_by).where(Cycle.community_id == community_id)
    ):
        counts[(email, "cycles_led")] += 1
    for email in session.scalars(
        select(DecisionEntry.recorded_by).where(DecisionEntry.community_id == community_id)
    ):
        counts[(email, "decisions_logged")] += 1
    emails: dict[int, str] = {
        uid: email for uid, email in session.execute(select(User.id, User.email))
    }
    for user_id, kind in session.execute(
        select(Vote.user_id, Proposal.kind)
        .join(Proposal, Proposal.id == Vote.proposal_id)
        .where(Proposal.community_id == community_id)
    ):
        email = emails.get(user_id, "")
        counts[(email, "votes")] += 1
        if kind == "knowledge_approval":
            counts[(email, "reviews")] += 1
    for added_by in session.scalars(
        select(CycleFindings.added_by)
        .join(Cycle, Cycle.id == CycleFindings.cycle_id)
        .where(Cycle.community_id == community_id)
    ):
        counts[(added_by, "findings_coded")] += 1
    return counts


def engagement(registry: Registry, principal: Principal, community_id: int) -> Engagement:
    """A community's contributions per member, its totals and the patients' and carers' share."""
    with access.community_work(registry, principal, "community.read") as work:
        session = work.session
        access.audit_refusals(work, "community.engagement", community_id)
        community = access.community_row(session, community_id)
        access.require_seeing(work, community)
        counts = _tally(session, community.id)
        rows = session.execute(
            select(CommunityMember, User)
            .join(User, User.id == CommunityMember.user_id)
            .where(CommunityMember.community_id == community.id)
            .order_by(CommunityMember.id)
        )
        members: list[MemberEngagement] = []
        known: set[str] = set()
        lived_total = 0
        lived_members = 0
        for member, user in rows:
            roles = loads(member.roles, [])
            lived = bool(_LIVED & set(roles))
            known.add(user.email)
            mine = {what: counts[(user.email, what)] for what in CONTRIBUTIONS}
            total = sum(mine.values())
            if lived:
                lived_members += 1
                lived_total += total
            members.append(
                MemberEngagement(
                    name=user.display_name,
                    email=None if lived else user.email,
                    roles=roles,
                    active=member.active,
                    counts=mine,
                    total=total,
                )
            )
        totals = {
            what: sum(n for (_, w), n in counts.items() if w == what) for what in CONTRIBUTIONS
        }
        grand = sum(totals.values())
        others = Counter[str]()
        for (email, what), n in counts.items():
            if email not in known:
                others[what] += n
        work.audit("community.engagement", CATEGORY, details={"community": community.id})
        return Engagement(
            community_id=community.id,
            community=community.name,
            members=members,
            totals=totals,
            total=grand,
            patients_and_carers=lived_members,
            patient_and_carer_contributions=lived_total,
            patient_and_carer_share=lived_total / grand if grand else None,
            by_others=dict(sorted(others.items())),
        )
