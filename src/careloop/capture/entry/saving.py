"""Saving responses: one or many, new or changed, validated against the form version, audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeAlias

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from careloop.capture.entry.history import keep_baseline, keep_revision
from careloop.capture.entry.views import (
    ResponseStatus,
    ResponseView,
    _as_date,
    _check_contributor,
    _patient,
    _response,
    _site_code,
    _view,
    check_values,
)
from careloop.capture.event_dates import event_date_problem, latest_event_date
from careloop.capture.forms import Form
from careloop.capture.forms_store import (
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
from careloop.core.clock import utcnow
from careloop.core.errors import (
    Conflict,
    ErrorDetail,
    InputError,
    NotFound,
    ValidationFailed,
)
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.store.models.capture import FormDefinition, FormVersion, Response
from careloop.trust.audit import AuditEvent, append_many
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work


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
    keep_revision(work, row)
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
    _check_scope(work, items)
    # Pending changes (e.g. patients registered by the same import) go in first.
    session.flush()
    forms, keys, clean_values = _validated(session, items)
    existing = _existing_responses(session, keys)
    sites = {
        site_id: code
        for site_id, code in session.execute(
            select(Site.id, Site.code).where(Site.id.in_({i.patient.site_id for i in items}))
        )
    }
    now = utcnow()
    saved, inserts, updates, events = _changes(
        work, items, clean_values, forms, existing, sites, now=now, reason=reason, via=via
    )
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


# (form name, version asked for) → the form's definition row, version row and form.
_Forms: TypeAlias = dict[tuple[str, str | None], tuple[FormDefinition, FormVersion, Form]]


def _check_scope(work: Work, items: Sequence[ResponseToSave]) -> None:
    """Refuse a patient outside the unit of work's scope (as not found)."""
    for item in items:
        # Written with bulk statements below, which the scoped session's flush check
        # does not see: check each patient against the unit of work's scope here.
        if not (
            work.scope.allows_site(item.patient.site_id)
            and work.scope.allows_patient(item.patient.id)
        ):
            raise NotFound(f"There is no patient {item.patient.id} whose records you may write.")


def _validated(
    session: Any, items: Sequence[ResponseToSave]
) -> tuple[_Forms, set[_Key], list[dict[str, Any]]]:
    """Load the forms, check keys are unique and validate every item's values.

    Returns the forms loaded, the items' keys and each item's clean values.

    Raises:
        ValidationFailed: All problems of all items; nothing is written.
        Conflict: Two items share a key.
    """
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
    return forms, keys, clean_values


def _changes(
    work: Work,
    items: Sequence[ResponseToSave],
    clean_values: list[dict[str, Any]],
    forms: _Forms,
    existing: dict[_Key, tuple[int, dict[str, Any], str, int]],
    sites: dict[int, str],
    *,
    now: datetime,
    reason: str,
    via: str,
) -> tuple[
    list[SavedResponse | None],
    list[tuple[int, dict[str, Any]]],
    list[ResponseChange],
    list[tuple[int, AuditEvent]],
]:
    """Sort the items into rows to insert, changes to apply and unchanged responses.

    Returns one entry per item (None where a row is still to be inserted), the
    rows to insert, the changes and the audit events of the changes.
    """
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
    return saved, inserts, updates, events


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
    event_date: date | str | None = None,
) -> ResponseView:
    """Replace a response's values (and optionally its status and event date).

    The values are validated against the form version the response was
    entered on. Editing a complete response needs ``reason`` (the reason for
    change, audited with the names of the fields that changed). A new
    ``event_date`` moves the response to that date (the entry page's visit
    date field changed), in the accepted range and where the patient has no
    other response to the form.

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
        keep_baseline(work, row)
        moved = _move_event_date(work, row, definition, event_date)
        version, form_obj = load_form_version(work.session, row.form_version_id)
        context = other_form_values(
            work.session, form_obj, patient_id=row.patient_id, event_date=row.event_date
        )
        clean = check_values(form_obj, values, status=new_status, context=context)
        old = dict(row.values)
        old_status = row.status
        changed = sorted(k for k in set(old) | set(clean) if old.get(k) != clean.get(k))
        if changed or new_status != old_status or moved:
            row.values = clean
            row.status = new_status
            try:
                work.session.flush()
            except StaleDataError:
                raise Conflict(
                    f"Response {response_id} was changed by someone else while you saved. "
                    "Reload it and apply your change again."
                ) from None
            keep_revision(work, row, reason=why or None)
        details = _update_details(definition.name, row.id, changed, old_status, new_status, moved)
        work.audit(
            "update",
            "clinical",
            patient=patient,
            site_code=_site_code(work, patient.site_id),
            reason=why or None,
            details=details,
        )
        return _view(work, row, definition.name, version.version)


def _move_event_date(
    work: Work, row: Response, definition: FormDefinition, event_date: date | str | None
) -> str | None:
    """Give ``row`` the new event date, checked; ``"old->new"`` when it moved, else None.

    Raises:
        ValidationFailed: The date is not a date or out of range.
        Conflict: The patient already has a response to the form on that date.
    """
    if event_date is None:
        return None
    day = _as_date(event_date)
    if day == row.event_date:
        return None
    site = work.session.get(Site, row.site_id)
    wrong = event_date_problem(day, latest=latest_event_date(site.time_zone if site else None))
    if wrong is not None:
        raise ValidationFailed(
            "The event date is out of range; nothing was saved.",
            details=[ErrorDetail("event_date", wrong, day.isoformat())],
        )
    clash = work.session.scalar(
        select(Response.id).where(
            Response.patient_id == row.patient_id,
            Response.form_id == definition.id,
            Response.event_date == day,
            Response.event_name == row.event_name,
            Response.repeat_instance == row.repeat_instance,
            Response.id != row.id,
        )
    )
    if clash is not None:
        raise Conflict(
            f"Patient {row.patient_id} already has a {definition.name!r} response for "
            f"{day.isoformat()} (response {clash}); edit that one instead."
        )
    moved = f"{row.event_date.isoformat()}->{day.isoformat()}"
    row.event_date = day
    return moved


def _update_details(
    form: str,
    response_id: int,
    changed: list[str],
    old_status: str,
    new_status: str,
    moved: str | None,
) -> dict[str, Any]:
    """The audit details of a change: the fields changed (never their values)."""
    details: dict[str, Any] = {"form": form, "response_id": response_id, "fields": changed}
    if new_status != old_status:
        details["status"] = f"{old_status}->{new_status}"
    if moved:
        details["event_date"] = moved
    return details
