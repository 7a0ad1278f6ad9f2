"""What a member of a care team was working on: their drafts and their recent patients.

The home page of a clinician (or anyone who enters records) lists the drafts
they left unfinished and the patients whose records they entered or changed
last. Both come from one indexed read of the registry's responses, limited to
the sites the principal may read records at; nothing is recomputed. Patients'
names are identifiable, so the read is audited (``read``, ``clinical``) with
the patients it named, as every identifiable read is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from careloop.core.clock import as_utc
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.store.models.capture import FormDefinition, Response
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work

DEFAULT_LIMIT = 10
"""How many drafts and patients the home page lists (the patient list has the rest)."""


@dataclass(frozen=True)
class MyDraft:
    """A draft the principal entered and has not completed."""

    response_id: int
    """The response (its page is ``/responses/{id}``)."""
    patient_id: int
    """The patient's id."""
    patient: str
    """The patient's name and local id, as the care team reads it."""
    site: str
    """The site's code."""
    form_title: str
    """The form's title."""
    event_date: date
    """The visit the draft is for."""
    updated_at: datetime
    """When it was last saved (UTC)."""


@dataclass(frozen=True)
class MyPatient:
    """A patient whose records the principal entered or changed lately."""

    patient_id: int
    """The patient's id (their page is ``/patients/{id}``)."""
    patient: str
    """The patient's name and local id."""
    site: str
    """The site's code."""
    last_worked_on: datetime
    """When the principal last saved one of their records (UTC)."""


@dataclass(frozen=True)
class MyWork:
    """The principal's unfinished drafts and recent patients, newest first."""

    drafts: tuple[MyDraft, ...]
    """Drafts they entered, at most the limit."""
    patients: tuple[MyPatient, ...]
    """Patients whose records they saved, at most the limit."""


def _label(patient: Patient) -> str:
    name = " ".join(p for p in (patient.given_name, patient.family_name) if p)
    return f"{name} ({patient.local_id})" if name else patient.local_id


def my_work(registry: Registry, principal: Principal, *, limit: int = DEFAULT_LIMIT) -> MyWork:
    """The principal's drafts and recent patients at the sites they may read records at."""
    with unit_of_work(registry, principal, "record.read") as work:
        session = work.session
        mine = Response.entered_by_user_id == principal.user_id
        drafts = session.execute(
            select(Response, Patient, Site.code, FormDefinition.title)
            .join(Patient, Patient.id == Response.patient_id)
            .join(Site, Site.id == Response.site_id)
            .join(FormDefinition, FormDefinition.id == Response.form_id)
            .where(mine, Response.status == "draft")
            .order_by(Response.updated_at.desc(), Response.id.desc())
            .limit(limit)
        ).all()
        last = func.max(Response.updated_at).label("last")
        recent = session.execute(
            select(Patient, Site.code, last)
            .join(Response, Response.patient_id == Patient.id)
            .join(Site, Site.id == Patient.site_id)
            .where(mine)
            .group_by(Patient.id, Site.code)
            .order_by(last.desc(), Patient.id)
            .limit(limit)
        ).all()
        result = MyWork(
            tuple(
                MyDraft(r.id, p.id, _label(p), code, title, r.event_date, as_utc(r.updated_at))
                for r, p, code, title in drafts
            ),
            tuple(MyPatient(p.id, _label(p), code, as_utc(when)) for p, code, when in recent),
        )
        named = sorted(
            {d.patient_id for d in result.drafts} | {p.patient_id for p in result.patients}
        )
        if named:
            work.audit("read", "clinical", details={"home": True, "patient_ids": named})
        return result
