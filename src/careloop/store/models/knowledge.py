"""Registry tables of knowledge objects and the CDS Hooks service.

Knowledge object versions with their lifecycle transitions and deployments
(``careloop.knowledge``), and what the CDS Hooks service saw and did
(``careloop.practice``): trusted clients, replay-protection nonces,
invocations, cards, variant allocations and feedback. None of these rows is
site-owned in the scoping sense: a deployment names its sites as data, and
an invocation records the site of the client that made it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from careloop.core.clock import utcnow
from careloop.store.models.foundation import Base


class KnowledgeObjectVersion(Base):
    """One version of a knowledge object: its whole package, its lifecycle status."""

    __tablename__ = "ko_version"
    __table_args__ = (UniqueConstraint("identifier", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    service_id: Mapped[str] = mapped_column(String(100), index=True)
    hook: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)
    mode: Mapped[str | None] = mapped_column(String(10))
    """``silent`` or ``live`` while active; empty otherwise."""
    package: Mapped[str] = mapped_column(Text)
    """The package as canonical JSON (metadata, service, rules, tests, model)."""
    package_sha256: Mapped[str] = mapped_column(String(64))
    tests_passed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class KnowledgeTransition(Base):
    """One lifecycle step of a version: from, to, who, why, when."""

    __tablename__ = "ko_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    ko_version_id: Mapped[int] = mapped_column(ForeignKey("ko_version.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    by: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeDeployment(Base):
    """A version put into practice: what, where (sites), when, silent or live."""

    __tablename__ = "ko_deployment"

    id: Mapped[int] = mapped_column(primary_key=True)
    ko_version_id: Mapped[int] = mapped_column(ForeignKey("ko_version.id"), index=True)
    identifier: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(10))
    sites: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of site codes; empty: every site."""
    measures: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the measure ids the version declares it should move."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    by: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(Text)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("learning_cycle.id"), index=True)
    """The learning cycle it was deployed under (a randomised test needs one)."""
    consent_purpose: Mapped[str | None] = mapped_column(String(30))
    """For a randomised test of card variants: ``quality_improvement`` or ``research``,
    from the cycle's purpose."""


class CdsClient(Base):
    """A CDS client (an EHR) whose signed JWTs the service trusts."""

    __tablename__ = "cds_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500), unique=True)
    jwks_url: Mapped[str | None] = mapped_column(String(1000))
    jwks: Mapped[str | None] = mapped_column(Text)
    """The JWK Set given out of band (JSON), when there is no URL."""
    site_code: Mapped[str | None] = mapped_column(String(32))
    origins: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of browser origins allowed by CORS."""
    jku_urls: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the ``jku`` URLs its JWTs may name (never fetched; keys come from
    ``jwks`` or ``jwks_url``)."""
    fhir_servers: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the FHIR base URLs careloop may fetch prefetch data from for it."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CdsJti(Base):
    """A JWT id already used, kept until the token expires (replay protection)."""

    __tablename__ = "cds_jti"
    __table_args__ = (UniqueConstraint("issuer", "jti"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    jti: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class CdsInvocation(Base):
    """One call of a CDS service: hook, KO version, client, patient, outcome, timing."""

    __tablename__ = "cds_invocation"

    id: Mapped[int] = mapped_column(primary_key=True)
    hook_instance: Mapped[str] = mapped_column(String(200), index=True)
    service_id: Mapped[str] = mapped_column(String(100), index=True)
    hook: Mapped[str] = mapped_column(String(100))
    ko_identifier: Mapped[str] = mapped_column(String(100), index=True)
    ko_version: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(10))
    issuer: Mapped[str] = mapped_column(String(500))
    tenant: Mapped[str | None] = mapped_column(String(200))
    site_code: Mapped[str | None] = mapped_column(String(32))
    user_ref: Mapped[str | None] = mapped_column(String(200))
    patient_ref: Mapped[str | None] = mapped_column(String(200))
    fetched_keys: Mapped[str] = mapped_column(Text, default="[]")
    """Prefetch keys the service fetched from the FHIR server itself."""
    cards_count: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CdsCard(Base):
    """A card produced by an invocation: shown, or only logged in silent mode."""

    __tablename__ = "cds_card"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(64), unique=True)
    invocation_id: Mapped[int] = mapped_column(ForeignKey("cds_invocation.id"), index=True)
    service_id: Mapped[str] = mapped_column(String(100))
    ko_identifier: Mapped[str] = mapped_column(String(100), index=True)
    ko_version: Mapped[str] = mapped_column(String(40))
    rule_id: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str | None] = mapped_column(String(100))
    shown: Mapped[bool] = mapped_column(Boolean)
    indicator: Mapped[str] = mapped_column(String(10))
    summary: Mapped[str] = mapped_column(String(200))
    suggestions: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the suggestions' uuids and labels."""


class CdsVariantAssignment(Base):
    """A unit (clinician or patient) allocated to a card variant arm of a KO's trial."""

    __tablename__ = "cds_variant_assignment"
    __table_args__ = (
        UniqueConstraint("trial", "unit_id", name="uq_cds_variant_assignment_unit"),
        UniqueConstraint("trial", "stratum", "position", name="uq_cds_variant_assignment_position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trial: Mapped[str] = mapped_column(String(200))
    ko_identifier: Mapped[str] = mapped_column(String(100))
    unit_id: Mapped[str] = mapped_column(String(200))
    stratum: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer)
    arm: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class CdsFeedback(Base):
    """What a clinician did with a card: accepted (which suggestions) or overridden (why)."""

    __tablename__ = "cds_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cds_card.id"), index=True)
    card_uuid: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[str] = mapped_column(String(100))
    ko_identifier: Mapped[str] = mapped_column(String(100), index=True)
    ko_version: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    accepted_suggestions: Mapped[str] = mapped_column(Text, default="[]")
    override_code: Mapped[str | None] = mapped_column(String(200))
    override_system: Mapped[str | None] = mapped_column(String(500))
    override_display: Mapped[str | None] = mapped_column(String(500))
    user_comment: Mapped[str | None] = mapped_column(Text)
    outcome_timestamp: Mapped[datetime]
    issuer: Mapped[str] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
