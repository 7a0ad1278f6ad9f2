"""Reading responses: one, a patient's timeline, lists and searches, each scoped and audited."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from careloop.capture.answers import key_values
from careloop.capture.entry.views import (
    ResponseView,
    Timeline,
    TimelineEvent,
    _patient,
    _response,
    _site_code,
    _view,
)
from careloop.capture.forms import Form
from careloop.capture.forms_store import (
    form_of_version,
    load_form,
    load_form_version,
)
from careloop.core.clock import as_utc
from careloop.core.errors import (
    StoredFormUnreadable,
)
from careloop.store.database import Registry
from careloop.store.models import Patient
from careloop.store.models.capture import FormDefinition, FormVersion, Response
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work


def get_response(
    registry: Registry, principal: Principal, response_id: int, *, form: str | None = None
) -> ResponseView:
    """One response (audited read). Another site's response is not found."""
    return _read_response(registry, principal, response_id, form)[0]


def get_response_form(
    registry: Registry, principal: Principal, response_id: int
) -> tuple[ResponseView, Form]:
    """A response together with the form version it was entered on (for the entry page)."""
    return _read_response(registry, principal, response_id, None)


def _read_response(
    registry: Registry, principal: Principal, response_id: int, form: str | None
) -> tuple[ResponseView, Form]:
    """One response and its form version, the read audited (of ``form`` only, when given)."""
    with unit_of_work(registry, principal, "record.read") as work:
        work.expect("read", "clinical", details={"response_id": response_id})
        row, definition = _response(work, response_id, form)
        version, form_obj = load_form_version(work.session, row.form_version_id)
        patient = _patient(work, row.patient_id)
        view = _view(work, row, definition.name, version.version)
        work.audit(
            "read",
            "clinical",
            patient=patient,
            site_code=view.site,
            details={"form": definition.name, "response_id": row.id},
        )
        return view, form_obj


@dataclass(frozen=True)
class ResponseWithSubject:
    """A response, the form version it was entered on, and who it is about."""

    view: ResponseView
    form: Form
    pseudo_id: str
    """The patient's pseudonym."""
    local_id: str
    """The patient's id at their site (MRN)."""


@dataclass(frozen=True)
class ResponseMatches:
    """What :func:`find_responses` found."""

    total: int
    """How many responses matched in all."""
    found: tuple[ResponseWithSubject, ...]
    """The first ``limit`` of them."""


def _with_subject(work: Work, row: Response, form_name: str) -> ResponseWithSubject:
    version, form_obj = load_form_version(work.session, row.form_version_id)
    patient = _patient(work, row.patient_id)
    return ResponseWithSubject(
        _view(work, row, form_name, version.version), form_obj, patient.pseudo_id, patient.local_id
    )


def get_response_with_subject(
    registry: Registry,
    principal: Principal,
    response_id: int,
    *,
    details: Mapping[str, Any] | None = None,
) -> ResponseWithSubject:
    """One response with its form version and patient (audited read of that patient only).

    ``details`` go into the audit entry (e.g. which FHIR read asked).
    """
    extra = dict(details or {})
    with unit_of_work(registry, principal, "record.read") as work:
        work.expect("read", "clinical", details={"response_id": response_id, **extra})
        row, definition = _response(work, response_id, None)
        found = _with_subject(work, row, definition.name)
        work.audit(
            "read",
            "clinical",
            patient=_patient(work, row.patient_id),
            site_code=found.view.site,
            details={"form": definition.name, "response_id": row.id, **extra},
        )
        return found


def find_responses(
    registry: Registry,
    principal: Principal,
    *,
    forms: Collection[str] | None = None,
    patients: Collection[str] | None = None,
    response_ids: Collection[int] | None = None,
    limit: int = 100,
    details: Mapping[str, Any] | None = None,
) -> ResponseMatches:
    """Responses the principal may read, by form name, then newest event first.

    Each filter given must hold: ``forms`` (form names), ``patients``
    (pseudonyms), ``response_ids``. Only the first ``limit`` responses are
    loaded, and the one audit entry names the patients of those returned.
    Forms whose current version cannot be read are left out (as the forms
    list says why).
    """
    limit = max(0, limit)
    with unit_of_work(registry, principal, "record.read") as work:
        session = work.session
        definitions = {
            d.id: d
            for d in session.scalars(select(FormDefinition).order_by(FormDefinition.name))
            if (forms is None or d.name in forms) and _readable(session, d)
        }
        query = (
            select(Response)
            .join(FormDefinition, FormDefinition.id == Response.form_id)
            .where(Response.form_id.in_(sorted(definitions)))
        )
        if patients is not None:
            query = query.join(Patient, Patient.id == Response.patient_id).where(
                Patient.pseudo_id.in_(sorted(patients))
            )
        if response_ids is not None:
            query = query.where(Response.id.in_(sorted(response_ids)))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(
                FormDefinition.name, Response.event_date.desc(), Response.id.desc()
            ).limit(limit)
        ).all()
        found = tuple(_with_subject(work, r, definitions[r.form_id].name) for r in rows)
        work.audit(
            "read",
            "clinical",
            details={
                **dict(details or {}),
                "results": total,
                "patient_ids": sorted({f.view.patient_id for f in found}),
            },
        )
        return ResponseMatches(total, found)


def _readable(session: Any, definition: FormDefinition) -> bool:
    if definition.current_version_id is None:
        return False
    current = session.get(FormVersion, definition.current_version_id)
    try:
        form_of_version(current)
    except StoredFormUnreadable:
        return False
    return True


def list_responses(
    registry: Registry,
    principal: Principal,
    form: str,
    *,
    patient_id: int | None = None,
    limit: int = 500,
) -> list[ResponseView]:
    """Responses to ``form`` the principal may see (of one patient, or all), newest first.

    One audit entry per call, naming the patient when one was asked for.
    """
    limit = max(1, min(limit, 10_000))
    with unit_of_work(registry, principal, "record.read") as work:
        session = work.session
        patient = None
        if patient_id is not None:
            work.expect("read", "clinical", details={"patient_id": patient_id, "form": form})
            patient = _patient(work, patient_id)
        definition, _, _ = load_form(session, form)
        query = (
            select(Response, FormVersion.version)
            .join(FormVersion, FormVersion.id == Response.form_version_id)
            .where(Response.form_id == definition.id)
            .order_by(Response.event_date.desc(), Response.id.desc())
            .limit(limit)
        )
        if patient is not None:
            query = query.where(Response.patient_id == patient.id)
        rows = session.execute(query).all()
        views = [_view(work, r, definition.name, v) for r, v in rows]
        work.audit(
            "read",
            "clinical",
            patient=patient,
            site_code=_site_code(work, patient.site_id) if patient is not None else None,
            details={
                "form": definition.name,
                "results": len(views),
                "patient_ids": sorted({v.patient_id for v in views}),
            },
        )
        return views


def patient_timeline(registry: Registry, principal: Principal, patient_id: int) -> Timeline:
    """A patient's responses across all forms by event date, newest first (audited read)."""
    with unit_of_work(registry, principal, "record.read") as work:
        work.expect("read", "clinical", details={"patient_id": patient_id, "timeline": True})
        patient = _patient(work, patient_id)
        rows = work.session.execute(
            select(Response, FormDefinition.name, FormDefinition.title)
            .join(FormDefinition, FormDefinition.id == Response.form_id)
            .where(Response.patient_id == patient.id)
            .order_by(Response.event_date.desc(), FormDefinition.name)
        ).all()
        forms: dict[int, Form | None] = {}
        for r, _name, _title in rows:
            if r.form_version_id not in forms:
                forms[r.form_version_id] = _form_or_none(work, r.form_version_id)
        events = tuple(
            TimelineEvent(
                r.event_date,
                name,
                title,
                r.id,
                r.status,
                r.patient_entered,
                as_utc(r.updated_at),
                _key_values(forms[r.form_version_id], r.values),
            )
            for r, name, title in rows
        )
        site = _site_code(work, patient.site_id)
        work.audit(
            "read",
            "clinical",
            patient=patient,
            site_code=site,
            details={"timeline": True, "results": len(events)},
        )
        return Timeline(patient.id, site, events)


def _form_or_none(work: Work, version_id: int) -> Form | None:
    """The form version, or None when it cannot be read (its answers then show no words)."""
    try:
        return load_form_version(work.session, version_id)[1]
    except StoredFormUnreadable:
        return None


def _key_values(form: Form | None, values: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return key_values(form, values) if form is not None else ()
