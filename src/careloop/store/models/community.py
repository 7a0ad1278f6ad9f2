"""Registry tables of learning communities and their learning cycles (``careloop.community``).

A community (a practice, a hospital, a network) has members with community
roles, invitations, a versioned charter whose decision rule adopts
proposals, priorities, a decision and reflection log, NASSS assessments,
the knowledge objects it owns, and its learning (PDSA) cycles with their
measures. None of these rows is site- or patient-owned in the scoping
sense: a community names sites as data, and membership of a community
never widens what a person may see of patients (careloop.trust.policy).
Lists (sites, conditions, measure ids, roles, links) are JSON text, as
elsewhere in the registry.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from careloop.core.clock import utcnow
from careloop.store.models.foundation import Base


class Community(Base):
    """A group that defines and tackles one health system problem."""

    __tablename__ = "community"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    purpose: Mapped[str] = mapped_column(Text)
    problem: Mapped[str] = mapped_column(Text)
    scale: Mapped[str] = mapped_column(String(20))
    """``practice``, ``hospital`` or ``network``."""
    sites: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the site codes in scope."""
    conditions: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the conditions it works on, in words."""
    measures: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the measure ids it owns."""
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommunityMember(Base):
    """A careloop user's membership of a community, with community roles."""

    __tablename__ = "community_member"
    __table_args__ = (UniqueConstraint("community_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    roles: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of community roles (clinician, patient, carer, facilitator…)."""
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    """Community admin: manages members and roles (with the facilitators)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    """False once the member has left (the row stays: their votes and records keep a name)."""
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None]


class CommunityInvitation(Base):
    """An invitation of a careloop user (by e-mail) to join a community."""

    __tablename__ = "community_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    roles: Mapped[str] = mapped_column(Text, default="[]")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    """``pending``, ``accepted``, ``declined`` or ``withdrawn``."""
    invited_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]


class CharterVersion(Base):
    """One version of a community's charter (terms of reference); the newest is in force."""

    __tablename__ = "charter_version"
    __table_args__ = (UniqueConstraint("community_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(Text)
    goals: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of goals."""
    decision_rule: Mapped[str] = mapped_column(String(20))
    """``consensus``, ``majority`` or ``named_approvers``."""
    quorum: Mapped[float] = mapped_column(Float, default=0.5)
    """Share of active members who must vote for a majority decision to count."""
    approvers: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the user ids whose yes a ``named_approvers`` decision needs."""
    requires_patient_reviewer: Mapped[bool] = mapped_column(Boolean, default=False)
    meeting_cadence: Mapped[str] = mapped_column(String(200), default="")
    data_access_agreement: Mapped[str] = mapped_column(Text, default="")
    adopted_by_proposal_id: Mapped[int | None] = mapped_column(Integer)
    """The charter_change proposal that adopted it (None: the founding charter)."""
    adopted_by: Mapped[str] = mapped_column(String(254))
    adopted_at: Mapped[datetime] = mapped_column(default=utcnow)


class Proposal(Base):
    """Something the community decides by its charter's rule."""

    __tablename__ = "community_proposal"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    """``charter_change``, ``priority``, ``knowledge_approval`` or ``knowledge_spread``."""
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: what passing it does (the new charter, the knowledge version, the sites)."""
    subject: Mapped[str | None] = mapped_column(String(200), index=True)
    """What it is about, for look-ups: ``identifier@version`` or ``priority:ID``."""
    charter_version_id: Mapped[int] = mapped_column(ForeignKey("charter_version.id"))
    """The charter in force when it was opened: its rule decides."""
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    """``open``, ``passed``, ``rejected`` or ``withdrawn``."""
    outcome: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: the tally and the reason of the outcome, once closed."""
    opened_by: Mapped[str] = mapped_column(String(254))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(254))
    closed_at: Mapped[datetime | None]


class Vote(Base):
    """A member's vote on a proposal (changeable while it is open)."""

    __tablename__ = "community_vote"
    __table_args__ = (UniqueConstraint("proposal_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("community_proposal.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    choice: Mapped[str] = mapped_column(String(10))
    """``yes``, ``no`` or ``abstain``."""
    comment: Mapped[str] = mapped_column(Text, default="")
    roles: Mapped[str] = mapped_column(Text, default="[]")
    """The voter's community roles when voting (patients' and carers' votes are grouped)."""
    recorded_by: Mapped[str] = mapped_column(String(254))
    """Who entered it: the member, or the operator recording a meeting's votes."""
    cast_at: Mapped[datetime] = mapped_column(default=utcnow)


class Priority(Base):
    """A problem or idea a member proposes for the community to work on."""

    __tablename__ = "community_priority"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    """``problem`` or ``idea``."""
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("community_proposal.id"))
    """The priority vote that ranks it."""
    proposed_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DecisionEntry(Base):
    """One entry of the decision and reflection log (what was decided; what failed and why)."""

    __tablename__ = "community_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    """``decision`` or ``reflection``."""
    title: Mapped[str] = mapped_column(String(300))
    decision: Mapped[str] = mapped_column(Text, default="")
    did_not_work: Mapped[str] = mapped_column(Text, default="")
    why: Mapped[str] = mapped_column(Text, default="")
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("community_proposal.id"))
    links: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: ``cycles`` (ids), ``knowledge`` (refs), ``measures`` (ids)."""
    recorded_by: Mapped[str] = mapped_column(String(254))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class NassAssessment(Base):
    """One member's NASSS rating of a change before it spreads: seven domains, each
    simple, complicated or complex, with notes."""

    __tablename__ = "nasss_assessment"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    """What is assessed: a knowledge object identifier, or ``cycle:ID``."""
    ratings: Mapped[str] = mapped_column(Text)
    """JSON: domain → {"rating": …, "note": …} for the seven domains."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    assessed_by: Mapped[str] = mapped_column(String(254))
    assessed_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeOwnership(Base):
    """A knowledge object a community owns: its decision rule approves and spreads it."""

    __tablename__ = "community_knowledge"

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    pilot_sites: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the pilot site codes: deploying beyond them needs a NASSS assessment."""
    assigned_by: Mapped[str] = mapped_column(String(254))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cycle(Base):
    """A learning (PDSA) cycle: a change tested, with Plan, Do and Act (Study is computed)."""

    __tablename__ = "learning_cycle"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("learning_cycle.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    """``process``, ``change_package``, ``policy``, ``training`` or ``knowledge_deployment``."""
    title: Mapped[str] = mapped_column(String(300))
    aim: Mapped[str] = mapped_column(Text, default="")
    predictions: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[str] = mapped_column(Text, default="")
    knowledge_ref: Mapped[str | None] = mapped_column(String(150))
    """The knowledge object deployed, for a ``knowledge_deployment`` cycle."""
    plan_who: Mapped[str] = mapped_column(Text, default="")
    plan_where: Mapped[str] = mapped_column(Text, default="")
    plan_when: Mapped[date | None] = mapped_column(Date)
    plan_sites: Mapped[str] = mapped_column(Text, default="[]")
    do_start: Mapped[date | None] = mapped_column(Date)
    """The change date: the day charts of its measures start a new phase."""
    do_end: Mapped[date | None] = mapped_column(Date)
    do_sites: Mapped[str] = mapped_column(Text, default="[]")
    do_what: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(String(10), default="qi")
    """``qi`` or ``research``."""
    randomised: Mapped[bool] = mapped_column(Boolean, default=False)
    determination_kind: Mapped[str | None] = mapped_column(String(30))
    """``qi_determination`` or ``ethics_approval``."""
    determination_ref: Mapped[str | None] = mapped_column(String(200))
    act_decision: Mapped[str | None] = mapped_column(String(10))
    """``adopt``, ``adapt`` or ``abandon``."""
    act_rationale: Mapped[str] = mapped_column(Text, default="")
    act_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CycleMeasure(Base):
    """A measure a cycle watches, as its outcome, process or balancing measure."""

    __tablename__ = "learning_cycle_measure"
    __table_args__ = (UniqueConstraint("cycle_id", "measure_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("learning_cycle.id"), index=True)
    measure_id: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(12))
    """``outcome``, ``process`` or ``balancing``."""


class Aim(Base):
    """A community's aim (what, how much, by when), its driver diagram and family of measures."""

    __tablename__ = "community_aim"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    what: Mapped[str] = mapped_column(Text)
    how_much: Mapped[str] = mapped_column(Text)
    by_when: Mapped[date] = mapped_column(Date)
    drivers: Mapped[str] = mapped_column(Text, default="[]")
    """JSON driver diagram: primary drivers → secondary drivers → change ideas (with cycle ids)."""
    measures: Mapped[str] = mapped_column(Text, default="[]")
    """JSON family of measures: measure id, role, baseline, target."""
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MaturityRating(Base):
    """One member's rating of a community's maturity in one round (domain → level and note)."""

    __tablename__ = "maturity_rating"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    round: Mapped[str] = mapped_column(String(40), index=True)
    """The rating round, e.g. ``2024-06``: rounds repeated over time show change."""
    ratings: Mapped[str] = mapped_column(Text)
    """JSON: domain → {"level": 1–5, "note": …}."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    rated_by: Mapped[str] = mapped_column(String(254))
    rated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ToolkitItem(Base):
    """A tool or case study a community added to its toolkit (the starter set is package data)."""

    __tablename__ = "toolkit_item"
    __table_args__ = (UniqueConstraint("community_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))
    """``tool`` or ``case_study``."""
    title: Mapped[str] = mapped_column(String(300))
    stages: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the cycle stages it supports (plan, do, study, act, capture…)."""
    summary: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ToolkitRating(Base):
    """A member's rating (1–5) of a toolkit item for their community."""

    __tablename__ = "toolkit_rating"
    __table_args__ = (UniqueConstraint("community_id", "tool", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    tool: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_by: Mapped[str] = mapped_column(String(254))
    rated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ToolkitUse(Base):
    """A toolkit item a cycle used."""

    __tablename__ = "toolkit_use"
    __table_args__ = (UniqueConstraint("cycle_id", "tool"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("learning_cycle.id"), index=True)
    tool: Mapped[str] = mapped_column(String(80))
    recorded_by: Mapped[str] = mapped_column(String(254))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CycleDesign(Base):
    """A cycle's behaviour-change design: the COM-B targets and behaviour change wheel choices."""

    __tablename__ = "cycle_behaviour_design"

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("learning_cycle.id"), unique=True)
    behaviour: Mapped[str] = mapped_column(Text, default="")
    """Who should do what differently."""
    com_b: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of COM-B components targeted."""
    functions: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of intervention functions."""
    policies: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of policy categories."""
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(254))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CycleFindings(Base):
    """A coded qualitative project (focus groups, interviews) attached to a cycle.

    ``summary`` (themes, counts, agreement, documents' metadata) is what the
    cycle's Study shows its community; ``content`` holds the whole project,
    transcripts included, which only the cycle's owner and members with a
    research, analyst or facilitator role read (each read audited).
    """

    __tablename__ = "cycle_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("learning_cycle.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(10))
    """``qdpx`` (REFI-QDA) or ``json`` (careloop's form): what was attached."""
    summary: Mapped[str] = mapped_column(Text)
    """JSON: the Study's qualitative findings, no transcript text."""
    content: Mapped[str] = mapped_column(Text)
    """JSON: the whole project, transcripts included (restricted)."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    """The member who attached it (None for the operator)."""
    added_by: Mapped[str] = mapped_column(String(254))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
