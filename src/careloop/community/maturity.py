"""How mature a learning community is: members' ratings, evidence from careloop, next steps.

The domains follow the network maturity grid of Lannon CM, Peterson LE,
"Pediatric collaborative improvement networks: background and overview",
Pediatrics 2013;131 Suppl 4:S189-95: leadership; governance and
management; quality improvement; community building and engagement; data
and analytics; research. Beside them careloop asks about the enablers of a
learning health system (patient and carer partnership, a learning culture,
data infrastructure, skills, sustained resources). The questions and the
five levels are careloop's own words, not the grid's.

Members rate each domain from 1 to 5 in a **round** (a label such as
``2024-06``; repeated rounds show change). For four domains careloop also
scores what it can see for itself (the **evidence**), as of the round's last
rating:

- data and analytics: months of the last twelve in which the data-quality
  checks ran (provenance ``warehouse.check`` records of the installation);
- quality improvement: cycles recorded, with a change date and measures,
  with Act, and at least three with Act;
- governance and management: decisions taken by the charter's rule, the
  decision log, knowledge approved by the community, failures discussed;
- community building and engagement: five or more members, patients or
  carers among them, patients or carers voting, half the members voting.

A domain's score is the mean of the members' ratings and, where there is
evidence, the mean of that and the evidence level, so that neither a
hopeful workshop nor a thin record decides alone.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import ErrorDetail, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import (
    Community,
    Cycle,
    CycleMeasure,
    DecisionEntry,
    MaturityRating,
    Proposal,
    ProvenanceRecord,
    Vote,
)
from careloop.trust.principal import Principal

LEVELS: dict[int, str] = {
    1: "Not yet started: nobody owns this yet.",
    2: "Starting: a few people try it, without a plan or routine.",
    3: "Developing: there is a plan and some routine, not yet everywhere.",
    4: "Established: it is routine across the community and checked.",
    5: "Leading: it is sustained, improved from its own results, and shared with others.",
}
"""The five levels every domain is rated on (careloop's own words)."""


@dataclass(frozen=True)
class MaturityDomain:
    """A domain of the grid or an enabler: the question members answer and the way up."""

    key: str
    label: str
    kind: str
    """``domain`` (Lannon's grid) or ``enabler``."""
    question: str
    next_step: str
    """What to do next when this domain scores lowest."""


DOMAINS: tuple[MaturityDomain, ...] = (
    MaturityDomain(
        "leadership",
        "Leadership",
        "domain",
        "Do named people lead the community's work, give it time, and speak for it?",
        "Name a lead and a deputy, agree the time they give, and report to the community.",
    ),
    MaturityDomain(
        "governance_and_management",
        "Governance and management",
        "domain",
        "Does the community decide by its own written rule, and keep a record of why?",
        "Decide the next change by the charter's rule and log what did not work as well "
        "as what did.",
    ),
    MaturityDomain(
        "quality_improvement",
        "Quality improvement",
        "domain",
        "Are changes tested in recorded cycles, studied on the data, and acted on?",
        "Record the next change as a cycle with its measures, and record Act when it is studied.",
    ),
    MaturityDomain(
        "community_building_and_engagement",
        "Community building and engagement",
        "domain",
        "Do clinicians, patients and carers take part in setting priorities and deciding?",
        "Invite patients and carers, and ask every member to vote on the priorities.",
    ),
    MaturityDomain(
        "data_and_analytics",
        "Data and analytics",
        "domain",
        "Are the data checked every month, and do members see their measures as charts?",
        "Run the data-quality checks every month and review them at the meeting.",
    ),
    MaturityDomain(
        "research",
        "Research",
        "domain",
        "Does the community turn its questions into studies with the right approvals?",
        "Pick one question the cycles cannot answer and plan a study with an ethics approval.",
    ),
    MaturityDomain(
        "patient_and_carer_partnership",
        "Patient and carer partnership",
        "enabler",
        "Do patients and carers shape what is changed, not only hear about it?",
        "Ask the patient and carer members to review each cycle's plan.",
    ),
    MaturityDomain(
        "learning_culture",
        "A learning culture",
        "enabler",
        "Can members say what did not work without blame, and change course?",
        "Give each meeting a slot for what did not work, and log it.",
    ),
    MaturityDomain(
        "data_infrastructure",
        "Data infrastructure",
        "enabler",
        "Do the data flow from care into the warehouse without extra work for clinicians?",
        "Automate one manual data transfer and check it monthly.",
    ),
    MaturityDomain(
        "skills_and_capacity",
        "Skills and capacity",
        "enabler",
        "Do members have the improvement and data skills, and the time, the work needs?",
        "Share the toolkit's PDSA template and run-chart rules card with new members.",
    ),
    MaturityDomain(
        "sustained_resources",
        "Sustained resources",
        "enabler",
        "Is the work funded and staffed beyond a single project?",
        "Write down who pays for the community's time next year, and ask them early.",
    ),
)
DOMAIN_KEYS: tuple[str, ...] = tuple(d.key for d in DOMAINS)
REQUIRED: tuple[str, ...] = tuple(d.key for d in DOMAINS if d.kind == "domain")
"""Lannon's six domains: a rating covers all of them; the enablers are optional."""
_BY_KEY = {d.key: d for d in DOMAINS}


@dataclass(frozen=True)
class Evidence:
    """What careloop itself sees of one domain, as a level with its reasons."""

    level: int
    reasons: list[str]


@dataclass(frozen=True)
class DomainScore:
    """One domain in one round: the members' levels, careloop's evidence and the score."""

    domain: str
    label: str
    kind: str
    """``domain`` (Lannon's grid) or ``enabler``."""
    raters: int
    ratings: list[int]
    """The members' levels, lowest first (their spread is the disagreement)."""
    mean: float | None
    low: int | None
    high: int | None
    evidence: Evidence | None
    """What careloop scores from its own records (None for domains it cannot see)."""
    score: float | None
    """Mean of the members' mean and the evidence level (either alone when the other is missing)."""


@dataclass(frozen=True)
class MaturityRound:
    """One rating round: who rated, and each domain's score."""

    round: str
    raters: list[str]
    as_of: datetime
    """The round's last rating: the evidence is counted up to this moment."""
    domains: list[DomainScore]


@dataclass(frozen=True)
class MaturityProfile:
    """A community's maturity, round by round, with its change and the next steps."""

    community_id: int
    levels: dict[int, str]
    """What each level 1-5 means."""
    rounds: list[MaturityRound]
    """In the order they were begun (a member re-rating an old round does not move it)."""
    change: dict[str, float | None]
    """Each domain's score in the latest round minus the first (None with one round)."""
    next_steps: list[dict[str, str]]
    """For the (up to three) lowest-scoring domains of the latest round."""


@dataclass(frozen=True)
class DomainRating:
    """One member's level (1-5) for one domain, with their note."""

    level: int
    note: str = ""


@dataclass(frozen=True)
class MaturityRatingView:
    """One member's ratings in one round."""

    id: int
    community_id: int
    round: str
    ratings: dict[str, DomainRating]
    rated_by: str
    rated_at: datetime


def _flags(checks: Sequence[tuple[bool, str, str]]) -> Evidence:
    """Level 1 plus one for each check met; the reasons say which were met and which not."""
    return Evidence(
        level=1 + sum(1 for ok, _, _ in checks if ok),
        reasons=[yes if ok else no for ok, yes, no in checks],
    )


def _months_checked(session: Session, as_of: datetime) -> int:
    since = as_of - timedelta(days=365)
    stamps = session.scalars(
        select(ProvenanceRecord.ended_at).where(
            ProvenanceRecord.activity == "warehouse.check",
            ProvenanceRecord.ended_at <= as_of,
            ProvenanceRecord.ended_at > since,
        )
    )
    return len({as_utc(s).strftime("%Y-%m") for s in stamps})


def evidence(session: Session, community: Community, as_of: datetime) -> dict[str, Evidence]:
    """The evidence levels careloop computes for a community as of a moment.

    Long because each domain's evidence is one short count with its own wording, and
    they read best side by side.
    """
    months = _months_checked(session, as_of)
    data_level = (
        1 if months == 0 else 2 if months <= 3 else 3 if months <= 6 else 4 if months <= 9 else 5
    )
    out = {
        "data_and_analytics": Evidence(
            data_level,
            [f"The data-quality checks ran in {months} of the last 12 months."],
        )
    }
    cycles = [
        c
        for c in session.scalars(select(Cycle).where(Cycle.community_id == community.id))
        if as_utc(c.created_at) <= as_of
    ]
    measured = {
        m.cycle_id
        for m in session.scalars(
            select(CycleMeasure).where(CycleMeasure.cycle_id.in_([c.id for c in cycles]))
        )
    }
    acted = [c for c in cycles if c.act_decision and c.act_at and as_utc(c.act_at) <= as_of]
    out["quality_improvement"] = _flags(
        [
            (bool(cycles), f"{len(cycles)} cycles recorded.", "No cycle recorded yet."),
            (
                any(c.do_start and c.id in measured for c in cycles),
                "A cycle has a change date and measures, so it has a Study.",
                "No cycle has both a change date and measures yet.",
            ),
            (bool(acted), "A cycle has its Act recorded.", "No cycle has its Act recorded yet."),
            (
                len(acted) >= 3,
                f"{len(acted)} cycles have their Act recorded.",
                "Fewer than three cycles have their Act recorded.",
            ),
        ]
    )
    proposals = [
        p
        for p in session.scalars(select(Proposal).where(Proposal.community_id == community.id))
        if p.closed_at is not None and as_utc(p.closed_at) <= as_of
    ]
    entries = [
        e
        for e in session.scalars(
            select(DecisionEntry).where(DecisionEntry.community_id == community.id)
        )
        if as_utc(e.recorded_at) <= as_of
    ]
    out["governance_and_management"] = _flags(
        [
            (
                bool(proposals),
                f"{len(proposals)} proposals decided by the charter's rule.",
                "No proposal has been decided by the charter's rule yet.",
            ),
            (bool(entries), "The decision log is kept.", "The decision log is empty."),
            (
                any(p.kind == "knowledge_approval" and p.status == "passed" for p in proposals),
                "The community approved knowledge by its own rule.",
                "The community has not approved any knowledge by its rule yet.",
            ),
            (
                any(e.did_not_work.strip() for e in entries),
                "What did not work is discussed and logged.",
                "No entry says what did not work.",
            ),
        ]
    )
    members = access.active_members(session, community.id)
    partners = {m.user_id for m in members if {"patient", "carer"} & set(loads(m.roles, []))}
    voters = set(
        session.scalars(
            select(Vote.user_id)
            .join(Proposal, Proposal.id == Vote.proposal_id)
            .where(Proposal.community_id == community.id, Vote.cast_at <= as_of)
        )
    )
    active = {m.user_id for m in members}
    out["community_building_and_engagement"] = _flags(
        [
            (len(members) >= 5, f"{len(members)} members.", f"Only {len(members)} members."),
            (
                bool(partners),
                "Patients or carers are members.",
                "No patient or carer is a member.",
            ),
            (
                bool(partners & voters),
                "Patients or carers have voted.",
                "No patient or carer has voted yet.",
            ),
            (
                bool(active) and 2 * len(active & voters) >= len(active),
                f"{len(active & voters)} of {len(active)} members have voted.",
                f"Only {len(active & voters)} of {len(active)} members have voted.",
            ),
        ]
    )
    return out


def _score(mean: float | None, ev: Evidence | None) -> float | None:
    if mean is None:
        return float(ev.level) if ev else None
    return round((mean + ev.level) / 2, 3) if ev else round(mean, 3)


def profile(
    rounds: Mapping[str, Sequence[MaturityRatingView]],
    evidence_at: Mapping[str, Mapping[str, Evidence]],
    community_id: int,
) -> MaturityProfile:
    """The maturity profile from the ratings of each round and the evidence of each round
    (a pure function: its numbers are checked by hand in the tests)."""
    built = []
    for name, views in rounds.items():
        ev = evidence_at.get(name, {})
        scores = []
        for d in DOMAINS:
            values = [v.ratings[d.key].level for v in views if d.key in v.ratings]
            mean = round(statistics.fmean(values), 3) if values else None
            scores.append(
                DomainScore(
                    domain=d.key,
                    label=d.label,
                    kind=d.kind,
                    raters=len(values),
                    ratings=sorted(values),
                    mean=mean,
                    low=min(values) if values else None,
                    high=max(values) if values else None,
                    evidence=ev.get(d.key),
                    score=_score(mean, ev.get(d.key)),
                )
            )
        built.append(
            MaturityRound(
                round=name,
                raters=sorted({v.rated_by for v in views}),
                as_of=max(v.rated_at for v in views),
                domains=scores,
            )
        )
    change: dict[str, float | None] = {}
    for d in DOMAINS:
        first = built[0].domains[DOMAIN_KEYS.index(d.key)].score if built else None
        last = built[-1].domains[DOMAIN_KEYS.index(d.key)].score if built else None
        change[d.key] = (
            round(last - first, 3)
            if len(built) > 1 and first is not None and last is not None
            else None
        )
    steps: list[dict[str, str]] = []
    if built:
        scored = [s for s in built[-1].domains if s.score is not None]
        for s in sorted(scored, key=lambda s: (s.score, DOMAIN_KEYS.index(s.domain)))[:3]:
            steps.append(
                {"domain": s.domain, "label": s.label, "next_step": _BY_KEY[s.domain].next_step}
            )
    return MaturityProfile(community_id, dict(LEVELS), built, change, steps)


def _view(row: MaturityRating) -> MaturityRatingView:
    return MaturityRatingView(
        row.id,
        row.community_id,
        row.round,
        {
            k: DomainRating(int(v["level"]), str(v.get("note", "")))
            for k, v in loads(row.ratings, {}).items()
        },
        row.rated_by,
        as_utc(row.rated_at),
    )


def record_maturity(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    round_name: str,
    ratings: Mapping[str, tuple[int, str]],
    on_behalf_of: str | None = None,
) -> MaturityRatingView:
    """Record a member's maturity ratings (domain → (level 1–5, note)) in a round.

    All six of Lannon's domains are rated; the enablers are optional. A
    member who rates again in the same round replaces their earlier ratings.
    ``on_behalf_of`` (a facilitator or the operator) records a member's
    ratings from a workshop.
    """
    action = "community.maturity"
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, action, community_id, round=round_name)
        community = access.community_row(session, community_id)
        user_id, by = access.rater(work, community, on_behalf_of)
        problems = [
            ErrorDetail(f"ratings.{d}", "Rate this domain from 1 to 5.")
            for d in REQUIRED
            if d not in ratings
        ]
        problems += [
            ErrorDetail(f"ratings.{d}", f"Not a maturity domain: use {', '.join(DOMAIN_KEYS)}.", d)
            for d in ratings
            if d not in DOMAIN_KEYS
        ]
        problems += [
            ErrorDetail(f"ratings.{d}", "A level is a whole number from 1 to 5.", level)
            for d, (level, _note) in ratings.items()
            if d in DOMAIN_KEYS and (isinstance(level, bool) or level not in LEVELS)
        ]
        if not round_name.strip() or len(round_name) > 40:
            problems.append(
                ErrorDetail("round", "Name the round (up to 40 characters, e.g. 2024-06).")
            )
        if problems:
            raise ValidationFailed(
                "The maturity rating is not complete; nothing was changed.", problems
            )
        stored = {d: {"level": int(lv), "note": note.strip()} for d, (lv, note) in ratings.items()}
        row = session.scalar(
            select(MaturityRating).where(
                MaturityRating.community_id == community.id,
                MaturityRating.round == round_name.strip(),
                MaturityRating.rated_by == by,
            )
        )
        if row is None:
            row = MaturityRating(
                community_id=community.id, round=round_name.strip(), user_id=user_id, rated_by=by
            )
            session.add(row)
        row.ratings = json.dumps(stored)
        row.rated_at = utcnow()
        session.flush()
        work.audit(
            action,
            CATEGORY,
            details={"community": community.id, "round": row.round, "rating": row.id},
        )
        return _view(row)


def maturity_profile(
    registry: Registry, principal: Principal, community_id: int
) -> MaturityProfile:
    """The community's maturity profile, round by round (members and the installation admin)."""
    action = "community.maturity_read"
    with access.community_work(registry, principal, "community.read") as work:
        session = work.session
        access.audit_refusals(work, action, community_id)
        community = access.community_row(session, community_id)
        access.require_seeing(work, community)
        rows = list(
            session.scalars(
                select(MaturityRating)
                .where(MaturityRating.community_id == community.id)
                .order_by(MaturityRating.id)  # rounds in the order they were begun
            )
        )
        rounds: dict[str, list[MaturityRatingView]] = {}
        for r in rows:
            rounds.setdefault(r.round, []).append(_view(r))
        ev = {
            name: evidence(session, community, max(v.rated_at for v in views))
            for name, views in rounds.items()
        }
        work.audit(action, CATEGORY, details={"community": community.id, "rounds": len(rounds)})
        return profile(rounds, ev, community.id)
