"""SQLAlchemy models of captured data: form definitions, their versions, responses, PROM links.

A form's versions are content-addressed: :attr:`FormVersion.version` is the
form's SHA-256 content hash (``careloop.capture.Form.content_hash``), so the
same definition imported twice is one version, and a response points at the
exact definition it was entered against for as long as it exists.

:class:`Response` rows belong to a site and a patient, so scoped sessions
filter them like every other clinical row (careloop.store.scoping).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from careloop.core.clock import utcnow
from careloop.store.models.foundation import Base, PatientOwned, SiteOwned

RESPONSE_STATUSES = ("draft", "complete")


class FormDefinition(Base):
    """A form (REDCap instrument) known to the registry, whatever its versions."""

    __tablename__ = "form_definition"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    patient_reported: Mapped[bool] = mapped_column(Boolean, default=False)
    # The version new responses are entered against. No foreign key: form_version
    # refers to this table, and a cycle would complicate SQLite's batch migrations.
    current_version_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FormVersion(Base):
    """One definition of a form, identified by its content hash."""

    __tablename__ = "form_version"
    __table_args__ = (UniqueConstraint("form_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("form_definition.id"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The form as careloop's native dict (``Form.to_dict()``)."""
    source_format: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(254))


class Response(SiteOwned, PatientOwned, Base):
    """A patient's answers to one form for one event (visit) date.

    The key is patient + form + event date + event name + repeat instance.
    The last two come from REDCap: a longitudinal project's unique event name
    (``redcap_event_name``, e.g. ``visit_1_arm_1``) and the instance number of
    a repeating instrument or event (``redcap_repeat_instance``). Responses
    that are neither, such as those entered on careloop's own pages, keep the
    defaults ``''`` and ``1``.
    """

    __tablename__ = "form_response"
    __table_args__ = (
        UniqueConstraint("patient_id", "form_id", "event_date", "event_name", "repeat_instance"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("form_definition.id"), index=True)
    form_version_id: Mapped[int] = mapped_column(ForeignKey("form_version.id"))
    event_date: Mapped[date] = mapped_column(Date)
    event_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    """REDCap's unique event name (longitudinal projects); ``''`` otherwise."""
    repeat_instance: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """Instance of a repeating instrument or event (1, 2, …); 1 otherwise."""
    status: Mapped[str] = mapped_column(String(16))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Stored values: field → text, or a list of codes for a checkbox."""
    entered_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    patient_entered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy API


class ResponseRevision(SiteOwned, PatientOwned, Base):
    """What a response held after one save: the data history of a form.

    Written by every save on the entry pages, the API and PROM links (one row
    per version); bulk imports keep no revisions (their audit entries name
    the fields they changed). A ``baseline`` row keeps what a response held
    before its first revision, so the first change on a page still shows the
    value it replaced.
    """

    __tablename__ = "form_response_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("form_response.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    """The response's version after this save."""
    event_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)
    saved_by: Mapped[str] = mapped_column(String(254))
    """Who: an e-mail, ``cli:<login>``, or ``PROM link``."""
    reason: Mapped[str | None] = mapped_column(Text)
    """The reason for change given, if any."""
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    """A copy of what was stored before history was kept, not a save of its own."""


class PromLink(SiteOwned, PatientOwned, Base):
    """A personal, expiring, single-use link for a patient to fill a PROM.

    Only the SHA-256 of the link's secret is stored.
    """

    __tablename__ = "prom_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("form_definition.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    response_id: Mapped[int | None] = mapped_column(
        ForeignKey("form_response.id", ondelete="SET NULL")
    )
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


SCHEDULE_KINDS = ("before_visit", "every_weeks", "after_event")
SCHEDULE_PURPOSES = ("direct_care", "quality_improvement", "research")


class PlannedVisit(SiteOwned, PatientOwned, Base):
    """A visit booked for a patient: the occasion a ``before_visit`` PROM schedule aims at.

    Moving a visit changes :attr:`visit_date`; cancelling sets :attr:`cancelled_at`.
    """

    __tablename__ = "planned_visit"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(100), default="clinic", server_default="clinic")
    cancelled_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PromSchedule(SiteOwned, Base):
    """When a site invites its patients to fill one patient-reported form.

    ``kind`` is ``before_visit`` (:attr:`days` before each planned visit),
    ``every_weeks`` (every :attr:`weeks` weeks from the patient's registration)
    or ``after_event`` (:attr:`days` after each recorded event of :attr:`event_kind`).
    """

    __tablename__ = "prom_schedule"

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("form_definition.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    days: Mapped[int | None] = mapped_column(Integer)
    weeks: Mapped[int | None] = mapped_column(Integer)
    event_kind: Mapped[str | None] = mapped_column(String(100))
    remind_after_days: Mapped[int] = mapped_column(Integer, default=3)
    max_reminders: Mapped[int] = mapped_column(Integer, default=2)
    expires_after_days: Mapped[int] = mapped_column(Integer, default=14)
    purpose: Mapped[str] = mapped_column(
        String(32), default="direct_care", server_default="direct_care"
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PromInvitation(SiteOwned, PatientOwned, Base):
    """One invitation of a schedule: the invitation log (REDCap's survey invitation log).

    ``occasion`` names what the invitation is for (``visit:<id>:<date>``,
    ``every:<n>``, ``event:<response id>``); it is unique per schedule and
    patient, so running the job twice invites nobody twice.
    """

    __tablename__ = "prom_invitation"
    __table_args__ = (UniqueConstraint("schedule_id", "patient_id", "occasion"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("prom_schedule.id", ondelete="CASCADE"), index=True
    )
    occasion: Mapped[str] = mapped_column(String(100))
    due_date: Mapped[date] = mapped_column(Date)
    occasion_date: Mapped[date | None] = mapped_column(Date)
    """The visit's or the event's date (none for ``every_weeks``)."""
    expires_at: Mapped[datetime]
    link_id: Mapped[int | None] = mapped_column(ForeignKey("prom_link.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(16))
    """smtp, outbox, no_address (nobody to e-mail) or failed (the last send failed)."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None]
    response_id: Mapped[int | None] = mapped_column(
        ForeignKey("form_response.id", ondelete="SET NULL")
    )
    closed_at: Mapped[datetime | None]
    closed_reason: Mapped[str | None] = mapped_column(String(32))
    """expired, visit_cancelled, visit_moved, form_retired, consent (None while open/completed)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
