"""Proposals and votes: the community decides by its charter's own rule.

One engine serves four kinds of proposal:

- ``charter_change``: passing adopts a new charter version (history kept);
- ``priority``: a problem or idea members rank by their votes;
- ``knowledge_approval``: passing approves a version of a knowledge object
  the community owns (careloop.knowledge.library records the transition,
  naming the proposal);
- ``knowledge_spread``: passing deploys an approved version beyond its
  pilot sites, which needs a NASSS assessment on record first.

The rule that decides is the charter in force when the proposal was
opened (careloop.community.rules). Members vote yes, no or abstain with a
comment, and may change their vote while it is open; a facilitator may
record the votes of a meeting for the members present. Closing (by a
facilitator, a community admin or the proposer) computes the outcome,
applies it, and writes it to the decision log. Every step is audited,
refusals too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.community.charters import (
    CharterTerms,
    add_charter_version,
    check_terms,
)
from careloop.community.ownership import has_nasss, knowledge_version, owned_by
from careloop.community.rules import (
    CHOICES,
    Ballot,
    Outcome,
    RuleSpec,
    decide,
    is_lived_experience,
    may_vote,
)
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    Conflict,
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.knowledge import library
from careloop.knowledge.package import package_from_dict
from careloop.knowledge.trial_cover import trial_cover
from careloop.store.database import Registry
from careloop.store.models import (
    CharterVersion,
    Community,
    DecisionEntry,
    Proposal,
    User,
    Vote,
)
from careloop.trust.principal import Principal
from careloop.trust.work import Work

KINDS: tuple[str, ...] = ("charter_change", "priority", "knowledge_approval", "knowledge_spread")


@dataclass(frozen=True)
class VoteView:
    """One member's vote."""

    email: str
    display_name: str
    choice: str
    comment: str
    roles: list[str]
    group: str
    """``patients_and_carers`` or ``others``: how the tally groups it."""
    recorded_by: str
    cast_at: datetime


@dataclass(frozen=True)
class ProposalView:
    """A proposal with its votes and the outcome its rule gives (so far, or final)."""

    id: int
    community_id: int
    kind: str
    title: str
    body: str
    subject: str | None
    payload: dict[str, Any]
    status: str
    """open, passed, rejected or withdrawn."""
    rule: str
    """The decision rule of the charter in force when it was opened."""
    charter_number: int
    opened_by: str
    opened_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    outcome: dict[str, Any]
    """Final outcome once closed; the outcome if closed now while open."""
    votes: list[VoteView]


def _spec(charter: CharterVersion) -> RuleSpec:
    return RuleSpec(
        rule=charter.decision_rule,  # type: ignore[arg-type]
        quorum=charter.quorum,
        approvers=tuple(loads(charter.approvers, [])),
        requires_patient_reviewer=charter.requires_patient_reviewer,
    )


def outcome_of(session: Session, proposal: Proposal) -> Outcome:
    """The outcome of a proposal's votes under the charter it was opened under."""
    charter = session.get(CharterVersion, proposal.charter_version_id)
    assert charter is not None
    votes = session.scalars(select(Vote).where(Vote.proposal_id == proposal.id))
    ballots = [Ballot(v.user_id, v.choice, tuple(loads(v.roles, []))) for v in votes]  # type: ignore[arg-type]
    members = [m.user_id for m in access.active_members(session, proposal.community_id)]
    return decide(_spec(charter), ballots, members)


def _view(session: Session, proposal: Proposal) -> ProposalView:
    charter = session.get(CharterVersion, proposal.charter_version_id)
    assert charter is not None
    rows = session.execute(
        select(Vote, User)
        .join(User, User.id == Vote.user_id)
        .where(Vote.proposal_id == proposal.id)
        .order_by(Vote.id)
    ).all()
    outcome = (
        outcome_of(session, proposal).as_dict()
        if proposal.status == "open"
        else loads(proposal.outcome, {})
    )
    return ProposalView(
        id=proposal.id,
        community_id=proposal.community_id,
        kind=proposal.kind,
        title=proposal.title,
        body=proposal.body,
        subject=proposal.subject,
        payload=loads(proposal.payload, {}),
        status=proposal.status,
        rule=charter.decision_rule,
        charter_number=charter.number,
        opened_by=proposal.opened_by,
        opened_at=as_utc(proposal.opened_at),
        closed_by=proposal.closed_by,
        closed_at=as_utc(proposal.closed_at) if proposal.closed_at else None,
        outcome={**outcome, "rule": charter.decision_rule},
        votes=[
            VoteView(
                email=u.email,
                display_name=u.display_name,
                choice=v.choice,
                comment=v.comment,
                roles=loads(v.roles, []),
                group="patients_and_carers"
                if is_lived_experience(loads(v.roles, []))
                else "others",
                recorded_by=v.recorded_by,
                cast_at=as_utc(v.cast_at),
            )
            for v, u in rows
        ],
    )


def _proposal_row(session: Session, proposal_id: int, community_id: int | None) -> Proposal:
    row = session.get(Proposal, proposal_id)
    if row is None or (community_id is not None and row.community_id != community_id):
        raise NotFound(
            f"There is no proposal {proposal_id}"
            + (f" in community {community_id}." if community_id is not None else ".")
        )
    return row


def _open_proposal_to_end(
    work: Work, proposal_id: int, community_id: int | None, *, action: str, ended: str
) -> tuple[Proposal, Community]:
    """The open proposal that ``action`` (closing or withdrawing) ends, and its community.

    Its proposer, a facilitator or a community admin ends it; a refusal is
    audited as ``action``, and a proposal no longer open is a conflict.
    """
    access.audit_refusals(work, action, None, proposal=proposal_id)
    proposal = _proposal_row(work.session, proposal_id, community_id)
    community = access.community_row(work.session, proposal.community_id)
    member = access.require_member(work, community)
    principal = work.principal
    if not (
        principal.is_operator or access.is_steward(member) or proposal.opened_by == principal.email
    ):
        raise PermissionDenied(
            f"A proposal is {ended} by the person who opened it, a facilitator or a "
            "community admin."
        )
    if proposal.status != "open":
        raise Conflict(f"Proposal {proposal.id} is {proposal.status} already.")
    return proposal, community


def _check_payload(
    session: Session, community: Community, kind: str, payload: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """The proposal's payload, validated for its kind, and its subject."""
    if kind == "charter_change":
        terms = CharterTerms.from_dict(payload.get("charter", {}))
        check_terms(session, terms, prefix="payload.charter")
        return {"charter": terms.as_dict()}, "charter"
    if kind == "priority":
        return {}, None
    ref = str(payload.get("knowledge", ""))
    row = knowledge_version(session, ref, "payload.knowledge")
    owned = owned_by(session, community, row.identifier)
    if kind == "knowledge_approval":
        if row.status != "in_review":
            raise Conflict(
                f"{ref} is {row.status}; the community approves a version under review "
                "(submit it first: `careloop knowledge submit`)."
            )
        return {"knowledge": ref}, ref
    # knowledge_spread
    pilots = set(loads(owned.pilot_sites, []))
    sites = sorted({str(s) for s in payload.get("sites", [])})
    mode = str(payload.get("mode", "live"))
    if mode not in ("silent", "live"):
        raise ValidationFailed(
            "The mode is silent or live.", [ErrorDetail("payload.mode", "silent or live", mode)]
        )
    beyond = [s for s in sites if s not in pilots] if sites else ["every site"]
    if not beyond:
        raise InputError(
            f"{', '.join(sites)} are pilot sites of {row.identifier}: a site lead deploys there "
            "(`careloop knowledge activate`); a spread proposal takes it beyond them."
        )
    if not has_nasss(session, community.id, row.identifier):
        raise Conflict(
            f"Spreading {row.identifier} beyond its pilot sites ({', '.join(sorted(pilots))}) "
            "needs this community's NASSS assessment of it on record first: record one with "
            f"subject {row.identifier!r} (`careloop community nasss {community.id} "
            f"{row.identifier}`), then propose the spread again."
        )
    cycle = payload.get("cycle")
    if cycle is not None and not isinstance(cycle, int):
        raise ValidationFailed(
            "The cycle is a learning cycle's id.",
            [ErrorDetail("payload.cycle", "not an id", cycle)],
        )
    # A randomised test is refused now, not when the vote passes (nothing is recorded).
    trial_cover(session, package_from_dict(json.loads(row.package), origin=ref), cycle)
    return {"knowledge": ref, "sites": sites, "mode": mode, "cycle": cycle}, ref


def propose(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    kind: str,
    title: str,
    body: str = "",
    payload: dict[str, Any] | None = None,
) -> ProposalView:
    """Open a proposal (any member)."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.propose", community_id, kind=kind)
        community = access.community_row(session, community_id)
        access.require_member(work, community)
        if kind not in KINDS:
            raise ValidationFailed(
                "Unknown kind of proposal; nothing was changed.",
                [ErrorDetail("kind", f"Use one of {', '.join(KINDS)}.", kind)],
            )
        if not title.strip():
            raise ValidationFailed("Give the proposal a title.", [ErrorDetail("title", "empty")])
        checked, subject = _check_payload(session, community, kind, payload or {})
        row = open_proposal(work, community, kind, title, body, checked, subject)
        return _view(session, row)


def open_proposal(
    work: Work,
    community: Community,
    kind: str,
    title: str,
    body: str,
    payload: dict[str, Any],
    subject: str | None,
) -> Proposal:
    """Open a proposal in the community, inside the caller's unit of work."""
    session = work.session
    if subject is not None and kind != "priority":
        already = session.scalar(
            select(Proposal).where(
                Proposal.community_id == community.id,
                Proposal.kind == kind,
                Proposal.subject == subject,
                Proposal.status == "open",
            )
        )
        if already is not None:
            raise Conflict(f"Proposal {already.id} on {subject} is open already; vote on it.")
    charter = access.charter_in_force(session, community.id)
    row = Proposal(
        community_id=community.id,
        kind=kind,
        title=title.strip()[:300],
        body=body.strip(),
        payload=json.dumps(payload),
        subject=subject,
        charter_version_id=charter.id,
        opened_by=work.principal.email,
    )
    session.add(row)
    session.flush()
    work.audit(
        "community.propose",
        CATEGORY,
        details={"community": community.id, "proposal": row.id, "kind": kind, "subject": subject},
    )
    return row


def vote(
    registry: Registry,
    principal: Principal,
    proposal_id: int,
    *,
    choice: str,
    comment: str = "",
    on_behalf_of: str | None = None,
    community_id: int | None = None,
) -> ProposalView:
    """Cast (or change) a vote on an open proposal.

    ``on_behalf_of`` (an e-mail) records a member's vote given at a meeting:
    a facilitator, a community admin or the operator may do that; the entry
    keeps who recorded it.

    Long because every check of the charter's rule (the proposal open, a member voting,
    on whose behalf, a valid choice) must run in the one unit of work that records the
    vote.
    """
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.vote", None, proposal=proposal_id, choice=choice)
        proposal = _proposal_row(session, proposal_id, community_id)
        community = access.community_row(session, proposal.community_id)
        if on_behalf_of is not None:
            access.require_steward(work, community)
            voter = access.user_by_email(session, on_behalf_of, location="on_behalf_of")
        else:
            access.require_member(work, community)
            if principal.user_id is None:
                raise InputError(
                    "The operator is no member: record a member's vote with --as EMAIL."
                )
            found = session.get(User, principal.user_id)
            assert found is not None
            voter = found
        member = access.member_row(session, community.id, voter.id)
        if member is None:
            raise PermissionDenied(
                f"{voter.email} is not a member of {community.name!r}, so has no vote."
            )
        if choice not in CHOICES:
            raise ValidationFailed(
                "A vote is yes, no or abstain; nothing was changed.",
                [ErrorDetail("choice", "yes, no or abstain", choice)],
            )
        if proposal.status != "open":
            raise Conflict(f"Proposal {proposal.id} is {proposal.status}; votes are closed.")
        charter = session.get(CharterVersion, proposal.charter_version_id)
        assert charter is not None
        roles = loads(member.roles, [])
        if not may_vote(_spec(charter), voter.id, roles):
            raise PermissionDenied(
                f"The charter of {community.name!r} decides by named approvers: "
                f"{voter.email} is not one of them"
                + (
                    " and is no patient or carer reviewer."
                    if charter.requires_patient_reviewer
                    else "."
                )
                + " Comments go in the discussion or the decision log."
            )
        existing = session.scalar(
            select(Vote).where(Vote.proposal_id == proposal.id, Vote.user_id == voter.id)
        )
        if existing is None:
            existing = Vote(proposal_id=proposal.id, user_id=voter.id)
            session.add(existing)
        existing.choice = choice
        existing.comment = comment.strip()
        existing.roles = json.dumps(roles)
        existing.recorded_by = principal.email
        existing.cast_at = utcnow()
        session.flush()
        work.audit(
            "community.vote",
            CATEGORY,
            details={
                "community": community.id,
                "proposal": proposal.id,
                "voter": voter.email,
                "choice": choice,
            },
        )
        return _view(session, proposal)


def close(
    registry: Registry,
    principal: Principal,
    proposal_id: int,
    *,
    reason: str = "",
    community_id: int | None = None,
) -> ProposalView:
    """Close a proposal: its rule gives the outcome, which is applied and logged.

    A facilitator, a community admin or the proposer closes it. A knowledge
    approval whose tests fail, or a charter change no longer valid, leaves
    everything as it was (the proposal stays open).
    """
    deployed: library.Deployment | None = None
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        proposal, community = _open_proposal_to_end(
            work, proposal_id, community_id, action="community.close", ended="closed"
        )
        outcome = outcome_of(session, proposal)
        charter = session.get(CharterVersion, proposal.charter_version_id)
        assert charter is not None
        proposal.status = "passed" if outcome.passed else "rejected"
        proposal.outcome = json.dumps({**outcome.as_dict(), "rule": charter.decision_rule})
        proposal.closed_by = principal.email
        proposal.closed_at = utcnow()
        session.flush()
        if outcome.passed:
            deployed = _apply(work, community, proposal, reason)
        _log(work, community, proposal, outcome, reason)
        work.audit(
            "community.close",
            CATEGORY,
            details={
                "community": community.id,
                "proposal": proposal.id,
                "kind": proposal.kind,
                "status": proposal.status,
                "tally": outcome.tally,
                "patients_and_carers": outcome.patients_and_carers,
            },
        )
        view = _view(session, proposal)
    if deployed is not None:
        library.record_deployment_provenance(
            registry, principal, deployed, reason=f"community proposal {view.id}: {view.title}"
        )
        library.services_changed()
    return view


def _apply(
    work: Work, community: Community, proposal: Proposal, reason: str
) -> library.Deployment | None:
    session = work.session
    payload = loads(proposal.payload, {})
    why = f"{community.name}, proposal {proposal.id}: {proposal.title}" + (
        f" ({reason.strip()})" if reason.strip() else ""
    )
    if proposal.kind == "charter_change":
        terms = CharterTerms.from_dict(payload["charter"])
        approvers = check_terms(session, terms, prefix="payload.charter")
        add_charter_version(
            session,
            community.id,
            terms,
            approvers,
            adopted_by=work.principal.email,
            proposal_id=proposal.id,
        )
        work.audit(
            "community.charter_adopted",
            CATEGORY,
            details={"community": community.id, "proposal": proposal.id},
        )
    elif proposal.kind == "knowledge_approval":
        library.approve_by_decision(
            work,
            payload["knowledge"],
            reason=f"Approved by the learning community {why}",
            community_id=community.id,
            proposal_id=proposal.id,
        )
    elif proposal.kind == "knowledge_spread":
        identifier = str(payload["knowledge"]).partition("@")[0]
        if not has_nasss(session, community.id, identifier):
            raise Conflict(f"Spreading {identifier} needs a NASSS assessment on record first.")
        return library.activate_within(
            work,
            payload["knowledge"],
            reason=f"Spread by the learning community {why}",
            mode=payload.get("mode", "live"),
            sites=payload.get("sites", []),
            details={"community": community.id, "proposal": proposal.id},
            cycle_id=payload.get("cycle"),
        )
    return None


def _log(
    work: Work, community: Community, proposal: Proposal, outcome: Outcome, reason: str
) -> None:
    payload = loads(proposal.payload, {})
    links: dict[str, list[Any]] = {}
    if "knowledge" in payload:
        links["knowledge"] = [payload["knowledge"]]
    verb = "Passed" if outcome.passed else "Not passed"
    work.session.add(
        DecisionEntry(
            community_id=community.id,
            kind="decision",
            title=f"{verb}: {proposal.title}"[:300],
            decision=outcome.reason + (f" {reason.strip()}" if reason.strip() else ""),
            proposal_id=proposal.id,
            links=json.dumps(links),
            recorded_by=work.principal.email,
        )
    )


def withdraw(
    registry: Registry, principal: Principal, proposal_id: int, *, community_id: int | None = None
) -> ProposalView:
    """Withdraw an open proposal (its proposer, a facilitator or a community admin)."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        proposal, community = _open_proposal_to_end(
            work, proposal_id, community_id, action="community.withdraw", ended="withdrawn"
        )
        proposal.status = "withdrawn"
        proposal.closed_by = principal.email
        proposal.closed_at = utcnow()
        proposal.outcome = json.dumps({"reason": "Withdrawn."})
        work.audit(
            "community.withdraw",
            CATEGORY,
            details={"community": community.id, "proposal": proposal.id},
        )
        return _view(session, proposal)


def list_proposals(
    registry: Registry, principal: Principal, community_id: int, *, status: str | None = None
) -> list[ProposalView]:
    """A community's proposals, newest last (members and the installation admin)."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "community.proposals", community_id)
        community = access.community_row(work.session, community_id)
        access.require_seeing(work, community)
        query = select(Proposal).where(Proposal.community_id == community.id)
        if status:
            query = query.where(Proposal.status == status)
        rows = list(work.session.scalars(query.order_by(Proposal.id)))
        work.audit("community.proposals", CATEGORY, details={"community": community.id})
        return [_view(work.session, r) for r in rows]


def show_proposal(
    registry: Registry, principal: Principal, proposal_id: int, *, community_id: int | None = None
) -> ProposalView:
    """One proposal with its votes and outcome."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "community.proposal", None, proposal=proposal_id)
        proposal = _proposal_row(work.session, proposal_id, community_id)
        community = access.community_row(work.session, proposal.community_id)
        access.require_seeing(work, community)
        work.audit(
            "community.proposal",
            CATEGORY,
            details={"community": community.id, "proposal": proposal.id},
        )
        return _view(work.session, proposal)


# ---------------------------------------------------------------- priorities
