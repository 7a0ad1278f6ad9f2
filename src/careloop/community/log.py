"""The decision and reflection log, and NASSS assessments.

The log keeps what a community decided and, just as much, what did not
work and why ("discuss failure"), linked to the cycles, knowledge objects
and measures it is about, searchable by words. Closing a proposal writes
its decision here too.

A NASSS assessment (Greenhalgh et al. 2017, "Beyond adoption", J Med
Internet Res 19(11):e367) is a member's rating of a change's complexity in
seven domains, each simple, complicated or complex, with notes. Spreading a
knowledge object beyond its pilot sites needs at least one on record. This
is the minimal record; the aggregated profile and its pages are later work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.core.clock import as_utc
from careloop.core.errors import ErrorDetail, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import Cycle, DecisionEntry, NassAssessment
from careloop.trust.principal import Principal

NASSS_DOMAINS: tuple[str, ...] = (
    "condition",
    "technology",
    "value_proposition",
    "adopter_system",
    "organisation",
    "wider_system",
    "embedding_and_adaptation",
)
"""The seven NASSS domains, in the framework's order."""
NASSS_RATINGS: tuple[str, ...] = ("simple", "complicated", "complex")
ENTRY_KINDS: tuple[str, ...] = ("decision", "reflection")


@dataclass(frozen=True)
class DecisionView:
    """One entry of the decision and reflection log."""

    id: int
    community_id: int
    kind: str
    """decision or reflection."""
    title: str
    decision: str
    did_not_work: str
    why: str
    proposal_id: int | None
    links: dict[str, list[Any]]
    """cycles (ids), knowledge (refs), measures (ids)."""
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class NassView:
    """One member's NASSS assessment."""

    id: int
    community_id: int
    subject: str
    ratings: dict[str, dict[str, str]]
    assessed_by: str
    assessed_at: datetime


@dataclass(frozen=True)
class Links:
    """What a log entry is about."""

    cycles: tuple[int, ...] = ()
    knowledge: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def _view(row: DecisionEntry) -> DecisionView:
    return DecisionView(
        id=row.id,
        community_id=row.community_id,
        kind=row.kind,
        title=row.title,
        decision=row.decision,
        did_not_work=row.did_not_work,
        why=row.why,
        proposal_id=row.proposal_id,
        links=loads(row.links, {}),
        recorded_by=row.recorded_by,
        recorded_at=as_utc(row.recorded_at),
    )


def record_decision(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    title: str,
    kind: str = "decision",
    decision: str = "",
    did_not_work: str = "",
    why: str = "",
    links: Links | None = None,
) -> DecisionView:
    """Add an entry to the log (any member)."""
    links = links or Links()
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.decision", community_id, title=title)
        community = access.community_row(session, community_id)
        access.require_member(work, community)
        problems = []
        if kind not in ENTRY_KINDS:
            problems.append(ErrorDetail("kind", "decision or reflection", kind))
        if not title.strip():
            problems.append(ErrorDetail("title", "Give the entry a title."))
        if not (decision.strip() or did_not_work.strip()):
            problems.append(
                ErrorDetail("decision", "Say what was decided, or what did not work and why.")
            )
        known_cycles = set(
            session.scalars(select(Cycle.id).where(Cycle.community_id == community.id))
        )
        problems += [
            ErrorDetail(f"links.cycles[{i}]", "No cycle of this community has this id.", c)
            for i, c in enumerate(links.cycles)
            if c not in known_cycles
        ]
        if problems:
            raise ValidationFailed("The log entry is not valid; nothing was changed.", problems)
        row = DecisionEntry(
            community_id=community.id,
            kind=kind,
            title=title.strip()[:300],
            decision=decision.strip(),
            did_not_work=did_not_work.strip(),
            why=why.strip(),
            links=json.dumps(
                {
                    "cycles": list(links.cycles),
                    "knowledge": list(links.knowledge),
                    "measures": list(links.measures),
                }
            ),
            recorded_by=principal.email,
        )
        session.add(row)
        session.flush()
        work.audit(
            "community.decision",
            CATEGORY,
            details={"community": community.id, "entry": row.id, "kind": kind},
        )
        return _view(row)


def decisions(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    search: str | None = None,
    cycle_id: int | None = None,
) -> list[DecisionView]:
    """The log, oldest first; ``search`` keeps entries containing every word given."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "community.decisions", community_id)
        community = access.community_row(work.session, community_id)
        access.require_seeing(work, community)
        rows = [
            _view(r)
            for r in work.session.scalars(
                select(DecisionEntry)
                .where(DecisionEntry.community_id == community.id)
                .order_by(DecisionEntry.id)
            )
        ]
        if search:
            words = search.lower().split()
            rows = [
                r
                for r in rows
                if all(
                    w in " ".join((r.title, r.decision, r.did_not_work, r.why)).lower()
                    for w in words
                )
            ]
        if cycle_id is not None:
            rows = [r for r in rows if cycle_id in r.links.get("cycles", [])]
        work.audit(
            "community.decisions",
            CATEGORY,
            details={"community": community.id, "search": search, "found": len(rows)},
        )
        return rows


def record_nasss(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    subject: str,
    ratings: Mapping[str, tuple[str, str]],
    on_behalf_of: str | None = None,
) -> NassView:
    """Record one member's NASSS ratings (domain → (rating, note)) of ``subject``.

    Every one of the seven domains is rated simple, complicated or complex.
    ``on_behalf_of`` (a facilitator or the operator) records a member's
    ratings from a workshop.
    """
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.nasss", community_id, subject=subject)
        community = access.community_row(session, community_id)
        user_id, by = access.rater(work, community, on_behalf_of)
        problems = [
            ErrorDetail(f"ratings.{d}", f"Rate it {', '.join(NASSS_RATINGS)}.")
            for d in NASSS_DOMAINS
            if d not in ratings
        ]
        problems += [
            ErrorDetail(f"ratings.{d}", f"Not a NASSS domain: use {', '.join(NASSS_DOMAINS)}.", d)
            for d in ratings
            if d not in NASSS_DOMAINS
        ]
        problems += [
            ErrorDetail(f"ratings.{d}", f"Rate it {', '.join(NASSS_RATINGS)}.", r)
            for d, (r, _n) in ratings.items()
            if d in NASSS_DOMAINS and r not in NASSS_RATINGS
        ]
        if not subject.strip():
            problems.append(ErrorDetail("subject", "Say what is assessed."))
        if problems:
            raise ValidationFailed(
                "The NASSS assessment is not complete; nothing was changed.", problems
            )
        stored = {d: {"rating": ratings[d][0], "note": ratings[d][1]} for d in NASSS_DOMAINS}
        row = NassAssessment(
            community_id=community.id,
            subject=subject.strip(),
            ratings=json.dumps(stored),
            user_id=user_id,
            assessed_by=by,
        )
        session.add(row)
        session.flush()
        work.audit(
            "community.nasss",
            CATEGORY,
            details={"community": community.id, "subject": row.subject, "assessment": row.id},
        )
        return NassView(
            row.id, community.id, row.subject, stored, row.assessed_by, as_utc(row.assessed_at)
        )


def nasss_assessments(
    registry: Registry, principal: Principal, community_id: int, *, subject: str | None = None
) -> list[NassView]:
    """The community's NASSS assessments, oldest first."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "community.nasss_read", community_id)
        community = access.community_row(work.session, community_id)
        access.require_seeing(work, community)
        query = select(NassAssessment).where(NassAssessment.community_id == community.id)
        if subject:
            query = query.where(NassAssessment.subject == subject)
        rows = list(work.session.scalars(query.order_by(NassAssessment.id)))
        work.audit("community.nasss_read", CATEGORY, details={"community": community.id})
        return [
            NassView(
                r.id,
                r.community_id,
                r.subject,
                loads(r.ratings, {}),
                r.assessed_by,
                as_utc(r.assessed_at),
            )
            for r in rows
        ]
