"""The registry's foundation tables: sites, people, patients, audit, provenance; Base.

Rows that belong to a site carry ``site_id`` (:class:`SiteOwned`) and rows
that belong to a patient carry ``patient_id`` (:class:`PatientOwned`); the
session scope in :mod:`careloop.store.scoping` filters every query on them,
so site partitions hold whatever code path asks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    declared_attr,
    mapped_column,
    relationship,
    validates,
)
from sqlalchemy.types import TypeDecorator

from careloop.core.clock import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = (
    "admin",
    "site_lead",
    "clinician",
    "data_entry",
    "analyst",
    "auditor",
    "patient",
    "carer",
)
SEXES = ("female", "male", "other", "unknown")  # FHIR AdministrativeGender
CONSENT_PURPOSES = ("direct_care", "quality_improvement", "research", "recontact")
"""What a patient may agree to, each a separate choice (``patient.consent_<purpose>``)."""
CONSENT_PRESETS: dict[str, dict[str, bool]] = {
    # Recontact is a choice of its own: agreeing to improvement and research leaves it as it was.
    "improvement_and_research": {
        "direct_care": True,
        "quality_improvement": True,
        "research": True,
    },
    "improvement_only": {"direct_care": True, "quality_improvement": True, "research": False},
    "direct_care_only": {
        "direct_care": True,
        "quality_improvement": False,
        "research": False,
        "recontact": False,
    },
    "withdrawn": {
        "direct_care": False,
        "quality_improvement": False,
        "research": False,
        "recontact": False,
    },
}
"""Consent states that set several purposes at once (what imports and registration give)."""
CONSENT_STATES = ("direct_care_only", "improvement_only", "improvement_and_research", "withdrawn")
"""The presets, accepted wherever a consent state is given."""
CONSENT_SUMMARIES = (*CONSENT_STATES, "custom")
"""Every value ``patient.consent_state`` can hold: a preset, or ``custom`` for any other mix."""


def consent_summary(choices: dict[str, bool]) -> str:
    """The one word that sums up a patient's purposes (recontact aside).

    Args:
        choices: Purpose → given, for at least direct care, improvement and research.
    """
    key = (choices["direct_care"], choices["quality_improvement"], choices["research"])
    return {
        (True, True, True): "improvement_and_research",
        (True, True, False): "improvement_only",
        (True, False, False): "direct_care_only",
        (False, False, False): "withdrawn",
    }.get(key, "custom")


def _purpose_default(purpose: str) -> Any:
    """A column default for rows inserted with only a consent state (bulk inserts)."""

    def default(context: Any) -> bool:
        state = context.get_current_parameters().get("consent_state")
        return bool(CONSENT_PRESETS.get(state, {}).get(purpose, False))

    return default


class UtcDateTime(TypeDecorator[datetime]):
    """A moment stored with its time zone and always read back as aware UTC.

    SQLite keeps no offset and returns naive values; the API then sent times
    without one (``2026-12-07T05:25:25``), which is no RFC 3339 date-time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}  # noqa: RUF012 - SQLAlchemy API


class SiteOwned:
    """A row that belongs to one site; scoped sessions filter on ``site_id``."""

    @declared_attr
    def site_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("site.id"), index=True)


class PatientOwned:
    """A row about one patient; patient and carer sessions filter on ``patient_id``."""

    @declared_attr
    def patient_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)


class Site(Base):
    """A care centre taking part in the learning community."""

    __tablename__ = "site"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    time_zone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person who logs in: staff, analyst, auditor, patient or carer."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Unused since revision 0007: lock-outs are kept per e-mail address in LoginLockout,
    # so that addresses without an account are locked the same way.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patient.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )


class Membership(Base):
    """A user's role at a site (``site_id`` empty: the whole installation)."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("user_id", "site_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")


class Patient(SiteOwned, Base):
    """A patient of one site.

    ``pseudo_id`` is random and is the only identifier that leaves direct care
    (warehouse, analysts, network); ``local_id`` (e.g. the MRN), names and the
    exact date of birth are direct identifiers.
    """

    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("site_id", "local_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    local_id: Mapped[str] = mapped_column(String(64))
    pseudo_id: Mapped[str] = mapped_column(String(32), unique=True)
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(16), default="unknown")
    consent_state: Mapped[str] = mapped_column(String(32))
    """A summary of the purposes below: a preset word (:data:`CONSENT_STATES`) or ``custom``."""
    consent_direct_care: Mapped[bool] = mapped_column(
        Boolean, default=_purpose_default("direct_care")
    )
    consent_quality_improvement: Mapped[bool] = mapped_column(
        Boolean, default=_purpose_default("quality_improvement")
    )
    consent_research: Mapped[bool] = mapped_column(Boolean, default=_purpose_default("research"))
    consent_recontact: Mapped[bool] = mapped_column(Boolean, default=_purpose_default("recontact"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy API

    @validates("consent_state")
    def _apply_preset(self, _key: str, state: str) -> str:
        # Every path that sets a preset (registration, imports, the API's state) sets the
        # purposes with it; ``custom`` leaves the purposes as they are.
        for purpose, given in CONSENT_PRESETS.get(state, {}).items():
            setattr(self, f"consent_{purpose}", given)
        return state

    def consent_choices(self) -> dict[str, bool]:
        """Purpose → whether the patient agrees to it."""
        return {p: bool(getattr(self, f"consent_{p}")) for p in CONSENT_PURPOSES}


class ConsentRecord(SiteOwned, PatientOwned, Base):
    """One change of a patient's consent: who recorded it, when and how.

    A change of one purpose has ``purpose`` and ``given`` (and ``state``, the
    summary after it); a preset (registration, imports) has neither and sets
    every purpose :data:`CONSENT_PRESETS` names.
    """

    __tablename__ = "consent_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str | None] = mapped_column(String(32))
    given: Mapped[bool | None] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(String(32))
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


CARER_SCOPES_ALL = "fill_forms,see_results,manage_consent"


class CarerLink(SiteOwned, PatientOwned, Base):
    """A carer (a user) acting as proxy for a patient, with what they may do.

    ``scopes`` is comma-separated (careloop.trust.policy.CARER_SCOPES);
    ``scopes_set_at`` is when they were last granted or changed, which decides
    whether they lapsed at the patient's hand-over age (careloop.trust.handover).
    """

    __tablename__ = "carer_link"
    __table_args__ = (UniqueConstraint("carer_user_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    carer_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    relationship_to_patient: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    scopes: Mapped[str] = mapped_column(String(64), default=CARER_SCOPES_ALL)
    scopes_set_at: Mapped[datetime] = mapped_column(default=utcnow)
    scopes_set_by: Mapped[str] = mapped_column(String(254), default="")


class CarerScopeChange(SiteOwned, PatientOwned, Base):
    """One change of what a carer may do for a patient: the history the portal shows."""

    __tablename__ = "carer_scope_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    carer_link_id: Mapped[int] = mapped_column(
        ForeignKey("carer_link.id", ondelete="CASCADE"), index=True
    )
    change: Mapped[str] = mapped_column(String(16))
    """``changed`` (scopes granted or taken back), ``ended`` (link removed) or ``handover``."""
    old_scopes: Mapped[str] = mapped_column(String(64))
    new_scopes: Mapped[str] = mapped_column(String(64))
    changed_by: Mapped[str] = mapped_column(String(254))
    """Who: an e-mail, ``cli:<login>``, or ``handover`` for the age job."""
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountInvitation(SiteOwned, PatientOwned, Base):
    """An e-mailed, single-use link that opens a patient's or a carer's account.

    Only the SHA-256 of the link's secret is stored.
    """

    __tablename__ = "account_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    relationship_to_patient: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for scripts; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class WebSession(Base):
    """A server-side browser session; the cookie holds a secret whose hash is here."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    authenticated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    client_addr: Mapped[str | None] = mapped_column(String(64))


class LoginLockout(Base):
    """Failed password attempts in a row for one e-mail address, and its lock-out.

    Keyed by a hash of the address, whether or not an account has it: an
    unknown address is counted and locked like a known one, so the answers to
    a login say nothing about which addresses exist.
    """

    __tablename__ = "login_lockout"

    email_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_failed_at: Mapped[datetime]


class AuditEntry(Base):
    """One entry of the append-only, SHA-256 hash-chained audit log.

    ``seq`` is assigned by the chain (1, 2, 3 … without gaps) and
    ``occurred_at`` is stored as fixed-width ISO 8601 text so that the hashed
    content reads back byte for byte on every database.
    """

    __tablename__ = "audit_entry"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    user_email: Mapped[str | None] = mapped_column(String(254), index=True)
    role: Mapped[str | None] = mapped_column(String(64))
    site_code: Mapped[str | None] = mapped_column(String(32))
    patient_id: Mapped[int | None] = mapped_column(Integer, index=True)
    patient_pseudo_id: Mapped[str | None] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's head (last seq and hash), updated with every append.

    It lets the verifier notice entries cut from the end of the log. ``seal``
    is an HMAC of the head under a key derived from the installation's
    secret key, which the database does not hold: someone who can write to
    the database but not read the key cannot move the head to a chain they
    rebuilt, cut or emptied.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))
    seal: Mapped[str | None] = mapped_column(String(64))


class Installation(Base):
    """The installation record: written once, with the genesis entry of the audit trail.

    An installation whose trail has fewer entries than ``genesis_seq`` (an
    emptied trail) therefore never verifies; triggers refuse any change to
    this row (careloop.store.audit_guards).
    """

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[str] = mapped_column(String(36))
    """A random UUID naming this installation (also in the genesis entry)."""
    created_at: Mapped[str] = mapped_column(String(32))
    """When the trail's genesis entry was written (fixed-width ISO 8601 UTC)."""
    genesis_seq: Mapped[int] = mapped_column(BigInteger)
    """The sequence number of the genesis entry (1, or the next entry on an upgrade)."""
    genesis_hash: Mapped[str] = mapped_column(String(64))


class ProvenanceRecord(Base):
    """What produced a derived artefact: inputs with hashes, parameters, code, who, when.

    Warehouse refreshes, loads, imports, measure runs, analyses and knowledge
    versions each write one; ``parent_ids`` chain them so a result can be
    walked back to the rows it came from.
    """

    __tablename__ = "provenance_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    agent: Mapped[str] = mapped_column(String(254))
    code_version: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[str] = mapped_column(Text)
    inputs: Mapped[str] = mapped_column(Text)
    outputs: Mapped[str] = mapped_column(Text)
    rows_in: Mapped[int | None] = mapped_column(BigInteger)
    rows_out: Mapped[int | None] = mapped_column(BigInteger)
    rows_rejected: Mapped[int | None] = mapped_column(BigInteger)
    parent_ids: Mapped[str] = mapped_column(Text, default="[]")
