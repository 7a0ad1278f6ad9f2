"""Entering responses: validated, site-scoped, versioned and audited.

A response is one patient's answers to one form for one event (visit) date;
there is at most one per patient × form × date × REDCap event × repeat
instance (the last two only set by imports of REDCap exports: ``''`` and
``1`` otherwise, so for entry on careloop's pages it is one per patient ×
form × date). It records the form version
it was entered against, and it is always validated, shown and edited against
that version, so importing a changed dictionary never makes old data
unreadable.

Each function runs in one unit of work (careloop.trust.work): the policy
decides the action (``record.read`` or ``record.write``), the scoped session
decides which rows exist for the caller (another site's response is simply
not found), and exactly one audit entry records the request — with the
field names that changed, never their values. Rules:

- Validation is careloop.capture's (:func:`validate_response`): every field
  error at once, as :class:`ValidationFailed` with one detail per field
  (``location`` = the field name). A *draft* may leave required fields
  empty; a *complete* response may not.
- Editing a complete response needs a reason for change (audited).
- Optimistic concurrency: pass the version you read (the API's ETag); a
  stale one is a :class:`Conflict` and nothing is overwritten.
- Patients and carers (their own or proxied record) may enter only
  patient-reported forms; what they enter is marked ``patient_entered``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from careloop.capture.event_dates import event_date_problem, latest_event_date
from careloop.capture.forms import Form
from careloop.capture.forms_store import (
    form_of_version,
    load_form,
    load_form_version,
    other_form_values,
)
from careloop.capture.response_rows import (
    BATCH,
    ResponseChange,
    insert_responses,
    new_response_row,
    update_responses,
)
from careloop.capture.validation import validate_response
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    Conflict,
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    StoredFormUnreadable,
    ValidationFailed,
)
from careloop.store.capture_models import RESPONSE_STATUSES, FormDefinition, FormVersion, Response
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.trust.audit import AuditEvent, append_many
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

__all__ = [
    "ResponseMatches",
    "ResponseStatus",
    "ResponseToSave",
    "ResponseView",
    "ResponseWithSubject",
    "SavedResponse",
    "Timeline",
    "TimelineEvent",
    "check_values",
    "create_response",
    "find_responses",
    "get_response",
    "get_response_form",
    "get_response_with_subject",
    "list_responses",
    "patient_timeline",
    "save_response",
    "save_responses",
    "update_response",
]

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


def _insert_response(
    work: Work,
    *,
    definition: FormDefinition,
    version: FormVersion,
    patient: Patient,
    event_date: date,
    status: ResponseStatus,
    values: dict[str, Any],
    patient_entered: bool,
) -> Response:
    session = work.session
    site = session.get(Site, patient.site_id)
    wrong_date = event_date_problem(
        event_date, latest=latest_event_date(site.time_zone if site else None)
    )
    if wrong_date is not None:
        raise ValidationFailed(
            "The event date is out of range; nothing was saved.",
            details=[ErrorDetail("event_date", wrong_date, event_date.isoformat())],
        )
    clash = session.scalar(
        select(Response.id).where(
            Response.patient_id == patient.id,
            Response.form_id == definition.id,
            Response.event_date == event_date,
            Response.event_name == "",
            Response.repeat_instance == 1,
        )
    )
    if clash is not None:
        raise Conflict(
            f"Patient {patient.id} already has a {definition.name!r} response for "
            f"{event_date.isoformat()} (response {clash}); edit that one instead."
        )
    row = Response(
        site_id=patient.site_id,
        patient_id=patient.id,
        form_id=definition.id,
        form_version_id=version.id,
        event_date=event_date,
        status=status,
        values=values,
        entered_by_user_id=work.principal.user_id,
        patient_entered=patient_entered,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"Patient {patient.id} already has a {definition.name!r} response for "
            f"{event_date.isoformat()}; reload and edit it instead."
        ) from None
    return row


def create_response(
    registry: Registry,
    principal: Principal,
    form: str,
    *,
    patient_id: int,
    event_date: date | str,
    values: Mapping[str, object],
    status: ResponseStatus = "draft",
) -> ResponseView:
    """Enter a new response against the form's current version.

    Raises:
        ValidationFailed: Values break the form's rules (all errors listed, by field).
        Conflict: The patient already has a response to this form on this date.
        NotFound: No such form, or no such patient that the principal can see.
        PermissionDenied: The role may not write records, or a patient or
            carer tried a form that is not patient-reported.
    """
    day = _as_date(event_date)
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("create", "clinical", details={"patient_id": patient_id, "form": form})
        patient = _patient(work, patient_id)
        definition, version, form_obj = load_form(work.session, form)
        patient_entered = _check_contributor(work, definition)
        context = other_form_values(work.session, form_obj, patient_id=patient.id, event_date=day)
        clean = check_values(form_obj, values, status=status, context=context)
        row = _insert_response(
            work,
            definition=definition,
            version=version,
            patient=patient,
            event_date=day,
            status=status,
            values=clean,
            patient_entered=patient_entered,
        )
        work.audit(
            "create",
            "clinical",
            patient=patient,
            site_code=_site_code(work, patient.site_id),
            details={
                "form": definition.name,
                "form_version": version.version[:12],
                "response_id": row.id,
                "status": status,
                "fields": sorted(clean),
                "patient_entered": patient_entered,
            },
        )
        return _view(work, row, definition.name, version.version)


@dataclass(frozen=True)
class SavedResponse:
    """What :func:`save_response` did."""

    response_id: int
    """The response's id."""
    outcome: Literal["created", "updated", "unchanged"]
    """Created; an existing one replaced (values or status differed); or left as it was."""


@dataclass(frozen=True)
class ResponseToSave:
    """One response for :func:`save_responses`."""

    form: str
    """The form's name."""
    patient: Patient
    """Whose response it is (a patient the unit of work may write)."""
    event_date: date
    """The event (visit) date: with patient and form, the response's key."""
    values: Mapping[str, object]
    """The values, validated against the form version."""
    status: ResponseStatus
    """``draft`` or ``complete``."""
    version: str | None = None
    """The form version's content hash; default the current version."""
    patient_entered: bool = False
    """The patient (or their carer) entered it."""
    event_name: str = ""
    """REDCap's unique event name (part of the key); ``''`` when not longitudinal."""
    repeat_instance: int = 1
    """Repeat instance (part of the key); 1 when the form does not repeat."""
    location: str | None = None
    """Where it comes from (e.g. ``file:line``), to locate its problems; default its index."""


_Key = tuple[int, int, date, str, int]
"""patient id, form id, event date, event name, repeat instance: a response's key."""


def _key(item: ResponseToSave, form_id: int) -> _Key:
    return (item.patient.id, form_id, item.event_date, item.event_name, item.repeat_instance)


def _event_text(item: ResponseToSave) -> str:
    parts = [f"event {item.event_name}"] if item.event_name else []
    if item.repeat_instance != 1:
        parts.append(f"instance {item.repeat_instance}")
    return f" ({', '.join(parts)})" if parts else ""


def save_response(
    work: Work,
    form: str,
    *,
    patient: Patient,
    event_date: date,
    values: Mapping[str, object],
    status: ResponseStatus,
    version: str | None = None,
    patient_entered: bool = False,
    reason: str,
    via: str,
) -> SavedResponse:
    """Create or replace a patient's response to ``form`` on ``event_date``, in ``work``.

    One response of :func:`save_responses`, which says what happens.
    """
    item = ResponseToSave(form, patient, event_date, values, status, version, patient_entered)
    return save_responses(work, [item], reason=reason, via=via)[0]


def save_responses(
    work: Work, items: Sequence[ResponseToSave], *, reason: str, via: str
) -> list[SavedResponse]:
    """Create or replace many responses in ``work`` (importers: ``careloop fhir import``).

    For importers that run their own unit of work: the key is patient + form +
    event date + event name + repeat instance, as for the bulk CSV import, so
    importing the same data again changes nothing. The values are validated
    against the form version named (default the current one); a replaced
    response takes that version and the
    change is audited with ``reason``. One audit entry per response created or
    changed, written together; the responses are inserted and updated in bulk.

    Raises:
        ValidationFailed: Values break the form's rules (all errors of all
            responses listed, located ``item[i].field``); nothing is written.
        NotFound: No such form or version.
        Conflict: Two items share a key, or a response changed meanwhile.
    """
    session = work.session
    for item in items:
        # Written with bulk statements below, which the scoped session's flush check
        # does not see: check each patient against the unit of work's scope here.
        if not (
            work.scope.allows_site(item.patient.site_id)
            and work.scope.allows_patient(item.patient.id)
        ):
            raise NotFound(f"There is no patient {item.patient.id} whose records you may write.")
    # Pending changes (e.g. patients registered by the same import) go in first.
    session.flush()
    forms: dict[tuple[str, str | None], tuple[FormDefinition, FormVersion, Form]] = {}
    clean_values: list[dict[str, Any]] = []
    problems: list[ErrorDetail] = []
    keys: set[_Key] = set()
    latest = {
        site_id: latest_event_date(zone)
        for site_id, zone in session.execute(
            select(Site.id, Site.time_zone).where(Site.id.in_({i.patient.site_id for i in items}))
        )
    }
    for i, item in enumerate(items):
        where = item.location or (f"item[{i}]" if len(items) > 1 else "")
        wrong_date = event_date_problem(item.event_date, latest=latest[item.patient.site_id])
        if wrong_date is not None:
            problems.append(
                ErrorDetail(
                    f"{where}.event_date" if where else "event_date",
                    wrong_date,
                    item.event_date.isoformat(),
                )
            )
        wanted = (item.form, item.version)
        if wanted not in forms:
            forms[wanted] = load_form(session, item.form, item.version)
        definition, _row, form_obj = forms[wanted]
        key = _key(item, definition.id)
        if key in keys:
            raise Conflict(
                f"Two responses of patient {item.patient.id} to {definition.name!r} on "
                f"{item.event_date.isoformat()}{_event_text(item)}; there is one per "
                "patient, form and date (and REDCap event and repeat instance)."
            )
        keys.add(key)
        try:
            context = other_form_values(
                session, form_obj, patient_id=item.patient.id, event_date=item.event_date
            )
            clean_values.append(
                check_values(form_obj, item.values, status=item.status, context=context)
            )
        except ValidationFailed as exc:
            problems.extend(
                ErrorDetail(f"{where}.{d.location}" if where else d.location, d.message, d.value)
                for d in exc.details
            )
            clean_values.append({})
    if problems:
        raise ValidationFailed(
            f"{len(problems)} value(s) break their form's rules; nothing was saved.",
            details=problems,
        )
    existing = _existing_responses(session, keys)
    sites = {
        site_id: code
        for site_id, code in session.execute(
            select(Site.id, Site.code).where(Site.id.in_({i.patient.site_id for i in items}))
        )
    }
    now = utcnow()
    saved: list[SavedResponse | None] = []
    inserts: list[tuple[int, dict[str, Any]]] = []
    updates: list[ResponseChange] = []
    events: list[tuple[int, AuditEvent]] = []
    for i, (item, clean) in enumerate(zip(items, clean_values, strict=True)):
        definition, version_row, _form = forms[(item.form, item.version)]
        site_code = sites.get(item.patient.site_id)
        found = existing.get(_key(item, definition.id))
        if found is None:
            inserts.append(
                (
                    i,
                    new_response_row(
                        site_id=item.patient.site_id,
                        patient_id=item.patient.id,
                        form_id=definition.id,
                        form_version_id=version_row.id,
                        event_date=item.event_date,
                        status=item.status,
                        values=clean,
                        entered_by_user_id=work.principal.user_id,
                        patient_entered=item.patient_entered,
                        now=now,
                        event_name=item.event_name,
                        repeat_instance=item.repeat_instance,
                    ),
                )
            )
            saved.append(None)
            continue
        rid, old, old_status, row_version = found
        changed = sorted(k for k in set(old) | set(clean) if old.get(k) != clean.get(k))
        if not changed and old_status == item.status:
            saved.append(SavedResponse(rid, "unchanged"))
            continue
        updates.append(
            ResponseChange(
                rid, row_version, clean, item.status, version_row.id, item.patient_entered
            )
        )
        details: dict[str, Any] = {"form": definition.name, "response_id": rid, "fields": changed}
        if old_status != item.status:
            details["status"] = f"{old_status}->{item.status}"
        event = work.event(
            "update",
            "clinical",
            patient=item.patient,
            site_code=site_code,
            reason=reason,
            details={**details, "via": via},
        )
        events.append((i, event))
        saved.append(SavedResponse(rid, "updated"))
    new_ids = insert_responses(session, [row for _i, row in inserts])
    for (i, row), rid in zip(inserts, new_ids, strict=True):
        item = items[i]
        definition, version_row, _form = forms[(item.form, item.version)]
        saved[i] = SavedResponse(rid, "created")
        event = work.event(
            "create",
            "clinical",
            patient=item.patient,
            site_code=sites.get(item.patient.site_id),
            details={
                "form": definition.name,
                "form_version": version_row.version[:12],
                "response_id": rid,
                "status": item.status,
                "fields": sorted(row["values"]),
                "patient_entered": item.patient_entered,
                "via": via,
            },
        )
        events.append((i, event))
    update_responses(session, updates, now)
    append_many(session, [event for _i, event in sorted(events, key=lambda e: e[0])])
    # Rows changed with bulk statements: loaded copies of them must be read again.
    changed_ids = {u.response_id for u in updates}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Response) and obj.id in changed_ids:
            session.expire(obj)
    return [s for s in saved if s is not None]


def _existing_responses(
    session: Any, keys: set[_Key]
) -> dict[_Key, tuple[int, dict[str, Any], str, int]]:
    """Key → (id, values, status, version) of the responses that exist."""
    found: dict[_Key, tuple[int, dict[str, Any], str, int]] = {}
    patients = sorted({k[0] for k in keys})
    form_ids = sorted({k[1] for k in keys})
    for start in range(0, len(patients), BATCH):
        chunk = patients[start : start + BATCH]
        query = select(
            Response.id,
            Response.patient_id,
            Response.form_id,
            Response.event_date,
            Response.event_name,
            Response.repeat_instance,
            Response.values,
            Response.status,
            Response.version,
        ).where(Response.patient_id.in_(chunk), Response.form_id.in_(form_ids))
        for rid, pid, fid, day, event, instance, values, status, version in session.execute(query):
            key = (pid, fid, day, event, instance)
            if key in keys:
                found[key] = (rid, dict(values), status, version)
    return found


def get_response(
    registry: Registry, principal: Principal, response_id: int, *, form: str | None = None
) -> ResponseView:
    """One response (audited read). Another site's response is not found."""
    with unit_of_work(registry, principal, "record.read") as work:
        work.expect("read", "clinical", details={"response_id": response_id})
        row, definition = _response(work, response_id, form)
        version, _ = load_form_version(work.session, row.form_version_id)
        patient = _patient(work, row.patient_id)
        view = _view(work, row, definition.name, version.version)
        work.audit(
            "read",
            "clinical",
            patient=patient,
            site_code=view.site,
            details={"form": definition.name, "response_id": row.id},
        )
        return view


def get_response_form(
    registry: Registry, principal: Principal, response_id: int
) -> tuple[ResponseView, Form]:
    """A response together with the form version it was entered on (for the entry page)."""
    with unit_of_work(registry, principal, "record.read") as work:
        work.expect("read", "clinical", details={"response_id": response_id})
        row, definition = _response(work, response_id, None)
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


def update_response(
    registry: Registry,
    principal: Principal,
    response_id: int,
    *,
    values: Mapping[str, object],
    status: ResponseStatus | None = None,
    expected_version: int | None = None,
    reason: str | None = None,
    form: str | None = None,
) -> ResponseView:
    """Replace a response's values (and optionally its status).

    The values are validated against the form version the response was
    entered on. Editing a complete response needs ``reason`` (the reason for
    change, audited with the names of the fields that changed).

    Raises:
        Conflict: ``expected_version`` is not the stored version (someone
            else changed it since you read it); nothing is written.
        InputError: A complete response is edited without a reason.
        ValidationFailed: Values break the form's rules (all errors listed).
    """
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("update", "clinical", details={"response_id": response_id})
        row, definition = _response(work, response_id, form)
        patient = _patient(work, row.patient_id)
        _check_contributor(work, definition)
        if expected_version is not None and row.version != expected_version:
            raise Conflict(
                f"Response {response_id} was changed by someone else (version {row.version}, "
                f"you had {expected_version}). Reload it and apply your change again."
            )
        new_status: ResponseStatus = status or ("complete" if row.status == "complete" else "draft")
        why = reason.strip() if reason else ""
        if row.status == "complete" and not why:
            raise InputError(
                f"Response {response_id} is complete: say why it changes (reason for change); "
                "it goes in the audit trail."
            )
        version, form_obj = load_form_version(work.session, row.form_version_id)
        context = other_form_values(
            work.session, form_obj, patient_id=row.patient_id, event_date=row.event_date
        )
        clean = check_values(form_obj, values, status=new_status, context=context)
        old = dict(row.values)
        old_status = row.status
        changed = sorted(k for k in set(old) | set(clean) if old.get(k) != clean.get(k))
        if changed or new_status != old_status:
            row.values = clean
            row.status = new_status
            try:
                work.session.flush()
            except StaleDataError:
                raise Conflict(
                    f"Response {response_id} was changed by someone else while you saved. "
                    "Reload it and apply your change again."
                ) from None
        details: dict[str, Any] = {
            "form": definition.name,
            "response_id": row.id,
            "fields": changed,
        }
        if new_status != old_status:
            details["status"] = f"{old_status}->{new_status}"
        work.audit(
            "update",
            "clinical",
            patient=patient,
            site_code=_site_code(work, patient.site_id),
            reason=why or None,
            details=details,
        )
        return _view(work, row, definition.name, version.version)


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
        events = tuple(
            TimelineEvent(
                r.event_date, name, title, r.id, r.status, r.patient_entered, as_utc(r.updated_at)
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
