"""What entry gives back (responses, timelines) and the checks every path shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from careloop.capture.forms import Form
from careloop.capture.validation import validate_response
from careloop.core.clock import as_utc
from careloop.core.errors import (
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.store.models import Patient, Site
from careloop.store.models.capture import RESPONSE_STATUSES, FormDefinition, Response
from careloop.trust.work import Work

ResponseStatus = Literal["draft", "complete"]


@dataclass(frozen=True)
class ResponseView:
    """A stored response as the care team (or the patient) sees it."""

    id: int
    """The response's id."""
    form: str
    """The form's name."""
    form_version: str
    """Content hash of the form version it was entered against."""
    site: str
    """The patient's site code."""
    patient_id: int
    """The patient's internal id."""
    event_date: date
    """The visit (event) date."""
    status: str
    """``draft`` or ``complete``."""
    values: dict[str, Any]
    """Stored values: field → text, or a list of codes for a checkbox; calc fields computed."""
    patient_entered: bool
    """Entered by the patient or their carer (portal login or PROM link)."""
    entered_by_user_id: int | None
    """The user who entered it (None for the operator or a PROM link)."""
    version: int
    """Concurrency version: send it back (If-Match) when you change the response."""
    created_at: datetime
    """When it was first saved."""
    updated_at: datetime
    """When it was last changed."""
    event_name: str = ""
    """REDCap's unique event name, for responses imported from a longitudinal project."""
    repeat_instance: int = 1
    """Instance number of a repeating instrument or event (1 otherwise)."""


@dataclass(frozen=True)
class TimelineEvent:
    """One response on a patient's timeline."""

    event_date: date
    """The visit (event) date."""
    form: str
    """The form's name."""
    form_title: str
    """The form's title."""
    response_id: int
    """The response's id."""
    status: str
    """``draft`` or ``complete``."""
    patient_entered: bool
    """Entered by the patient or their carer."""
    updated_at: datetime
    """When it was last changed."""
    key_values: tuple[tuple[str, str], ...] = ()
    """The answers that say most about it, as (question, answer in words)
    (:func:`careloop.capture.answers.key_values`)."""


@dataclass(frozen=True)
class Timeline:
    """A patient's events across forms, newest first."""

    patient_id: int
    """The patient's internal id."""
    site: str
    """The patient's site code."""
    events: tuple[TimelineEvent, ...]
    """The responses, newest event date first (same date: by form name)."""


def _site_code(work: Work, site_id: int) -> str:
    site = work.session.get(Site, site_id)
    return site.code if site else "?"


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def check_values(
    form: Form,
    values: Mapping[str, object],
    *,
    status: ResponseStatus = "complete",
    context: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Validate ``values`` for ``form``; the stored values, or ValidationFailed with every error.

    A draft is allowed to leave required fields empty; every other rule holds.
    Each error detail is located at the field's name. ``context`` holds the
    answers of other forms that this form's logic reads
    (:func:`~careloop.capture.forms_store.other_form_values`).
    """
    if status not in RESPONSE_STATUSES:
        raise InputError(f"Unknown status {status!r}; use draft or complete.")
    result = validate_response(form, values, context=context)
    errors = [e for e in result.errors if not (status == "draft" and e.rule == "required")]
    if errors:
        n = len(errors)
        raise ValidationFailed(
            f"{n} {'value' if n == 1 else 'values'} in form {form.name!r} failed validation; "
            "nothing was saved.",
            details=[e.as_detail() for e in errors],
        )
    return _plain(result.values)


def _as_date(value: date | str, field: str = "event_date") -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise ValidationFailed(
            "The event date is not a date.",
            details=[ErrorDetail(field, "use a date as YYYY-MM-DD", value)],
        ) from None


def _view(work: Work, row: Response, form_name: str, version: str) -> ResponseView:
    return ResponseView(
        row.id,
        form_name,
        version,
        _site_code(work, row.site_id),
        row.patient_id,
        row.event_date,
        row.status,
        dict(row.values),
        row.patient_entered,
        row.entered_by_user_id,
        row.version,
        as_utc(row.created_at),
        as_utc(row.updated_at),
        row.event_name,
        row.repeat_instance,
    )


def _patient(work: Work, patient_id: int) -> Patient:
    patient = work.session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"There is no patient {patient_id} that you can see.")
    return patient


def _check_contributor(work: Work, definition: FormDefinition) -> bool:
    """Whether the caller acts as the patient (or their carer); refuse staff-only forms then."""
    acting_as_patient = work.scope.patient_ids is not None
    if acting_as_patient and not definition.patient_reported:
        raise PermissionDenied(
            f"Form {definition.name!r} is filled by the care team; patients and carers fill "
            "patient-reported forms only."
        )
    return acting_as_patient


def _response(work: Work, response_id: int, form: str | None) -> tuple[Response, FormDefinition]:
    row = work.session.get(Response, response_id)
    definition = work.session.get(FormDefinition, row.form_id) if row is not None else None
    if row is None or definition is None or (form is not None and definition.name != form):
        raise NotFound(f"There is no response {response_id} that you can see.")
    return row, definition
