"""Priorities: problems and ideas members propose and rank by their votes.

A priority is a proposal of kind ``priority`` (careloop.community.proposals)
decided by the charter's rule; its standing is yes minus no, with the votes
of patients and carers shown as a group so their voice is visible. The
ranked list feeds the community's learning cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.community.proposals import open_proposal, outcome_of
from careloop.core.clock import as_utc
from careloop.core.errors import ErrorDetail, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import Priority, Proposal
from careloop.trust.principal import Principal


@dataclass(frozen=True)
class PriorityView:
    """A problem or idea, with its standing in the community's vote."""

    id: int
    kind: str
    title: str
    description: str
    proposal_id: int | None
    status: str
    score: int
    """yes minus no: the ranking."""
    tally: dict[str, int]
    patients_and_carers: dict[str, int]
    proposed_by: str
    created_at: datetime


PRIORITY_KINDS = ("problem", "idea")


def add_priority(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    kind: str,
    title: str,
    description: str = "",
) -> PriorityView:
    """Propose a problem or idea; it opens a priority vote members rank it by."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.priority", community_id, title=title)
        community = access.community_row(session, community_id)
        access.require_member(work, community)
        problems = []
        if kind not in PRIORITY_KINDS:
            problems.append(ErrorDetail("kind", "A priority is a problem or an idea.", kind))
        if not title.strip():
            problems.append(ErrorDetail("title", "Say what the problem or idea is."))
        if problems:
            raise ValidationFailed("The priority is not valid; nothing was changed.", problems)
        proposal = open_proposal(
            work, community, "priority", title, description, {"priority_kind": kind}, None
        )
        row = Priority(
            community_id=community.id,
            kind=kind,
            title=title.strip()[:300],
            description=description.strip(),
            proposal_id=proposal.id,
            proposed_by=principal.email,
        )
        session.add(row)
        session.flush()
        proposal.subject = f"priority:{row.id}"
        work.audit(
            "community.priority",
            CATEGORY,
            details={"community": community.id, "priority": row.id, "proposal": proposal.id},
        )
        return _priority_view(session, row)


def _priority_view(session: Session, row: Priority) -> PriorityView:
    proposal = session.get(Proposal, row.proposal_id) if row.proposal_id else None
    if proposal is None:
        tally = {"yes": 0, "no": 0, "abstain": 0}
        lived = dict(tally)
        status = "open"
    else:
        outcome = (
            outcome_of(session, proposal).as_dict()
            if proposal.status == "open"
            else loads(proposal.outcome, {})
        )
        tally = outcome.get("tally", {"yes": 0, "no": 0, "abstain": 0})
        lived = outcome.get("patients_and_carers", {"yes": 0, "no": 0, "abstain": 0})
        status = proposal.status
    return PriorityView(
        id=row.id,
        kind=row.kind,
        title=row.title,
        description=row.description,
        proposal_id=row.proposal_id,
        status=status,
        score=int(tally.get("yes", 0)) - int(tally.get("no", 0)),
        tally=tally,
        patients_and_carers=lived,
        proposed_by=row.proposed_by,
        created_at=as_utc(row.created_at),
    )


def list_priorities(
    registry: Registry, principal: Principal, community_id: int
) -> list[PriorityView]:
    """Priorities ranked by their votes (yes minus no), withdrawn ones left out."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "community.priorities", community_id)
        community = access.community_row(work.session, community_id)
        access.require_seeing(work, community)
        rows = work.session.scalars(
            select(Priority).where(Priority.community_id == community.id).order_by(Priority.id)
        )
        views = [_priority_view(work.session, r) for r in rows]
        work.audit("community.priorities", CATEGORY, details={"community": community.id})
        ranked = [v for v in views if v.status != "withdrawn"]
        return sorted(ranked, key=lambda v: (-v.score, -v.tally.get("yes", 0), v.id))


# ---------------------------------------------------------------- knowledge
