"""What a member's learning communities wait for from them: open votes and invitations.

The home page lists the proposals still open in the communities one belongs
to that one has not voted on yet (the approvals a community's decision rule
needs), with the invitations to join a community not yet answered. It reads
the registry once and recomputes nothing. Like every community read it is
audited (``community.waiting``) and touches no patient data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from careloop.community import _access as access
from careloop.community._access import CATEGORY
from careloop.community.communities import InvitationView, my_invitations
from careloop.core.clock import as_utc
from careloop.store.database import Registry
from careloop.store.models.community import Community, CommunityMember, Proposal, Vote
from careloop.trust.principal import Principal


@dataclass(frozen=True)
class WaitingVote:
    """An open proposal of one's community that one has not voted on."""

    community_id: int
    """The community."""
    community: str
    """Its name."""
    proposal_id: int
    """The proposal (its page is ``/communities/{community_id}/proposals/{proposal_id}``)."""
    title: str
    """What it proposes."""
    kind: str
    """What kind of decision it is (e.g. ``approve_knowledge``, ``charter``)."""
    opened_at: datetime
    """When it was opened for votes (UTC)."""


@dataclass(frozen=True)
class Waiting:
    """What one's communities wait for."""

    votes: tuple[WaitingVote, ...]
    """Open proposals without one's vote, oldest first (they have waited longest)."""
    invitations: tuple[InvitationView, ...]
    """Invitations to join a community, not yet answered."""


def waiting_for_me(registry: Registry, principal: Principal) -> Waiting:
    """The open proposals in the principal's communities that lack their vote, and their
    unanswered invitations."""
    with access.community_work(registry, principal, "community.read") as work:
        voted = select(Vote.proposal_id).where(Vote.user_id == principal.user_id)
        rows = work.session.execute(
            select(Proposal, Community.name)
            .join(Community, Community.id == Proposal.community_id)
            .join(CommunityMember, CommunityMember.community_id == Community.id)
            .where(
                CommunityMember.user_id == principal.user_id,
                CommunityMember.active.is_(True),
                Proposal.status == "open",
                Proposal.id.not_in(voted),
            )
            .order_by(Proposal.opened_at, Proposal.id)
        ).all()
        votes = tuple(
            WaitingVote(p.community_id, name, p.id, p.title, p.kind, as_utc(p.opened_at))
            for p, name in rows
        )
        work.audit(
            "community.waiting", CATEGORY, details={"proposals": [v.proposal_id for v in votes]}
        )
    return Waiting(votes, tuple(my_invitations(registry, principal)))
