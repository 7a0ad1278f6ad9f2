"""Writing imported rows: patients found or registered, stored responses compared, batches."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import insert, select

from careloop.capture.records_io.checks import (
    _BATCH,
    _Forms,
    _Row,
    _Stored,
    _StoredKey,
    _table,
)
from careloop.capture.records_keys import (
    RowKey,
    parse_event_date,
)
from careloop.capture.response_rows import (
    ResponseChange,
    insert_responses,
    new_response_row,
    update_responses,
)
from careloop.core.clock import utcnow
from careloop.core.errors import (
    InputError,
    PermissionDenied,
)
from careloop.core.ids import pseudonym
from careloop.store.models import ConsentRecord, Patient, Site
from careloop.store.models.capture import Response
from careloop.trust.work import Work


def _fallback_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    day = parse_event_date(value, "ymd")
    if day is None:
        raise InputError(f"--event-date must be a date, YYYY-MM-DD; got {value!r}.")
    return day


def _known_patients(work: Work, site: Site) -> dict[str, tuple[int, str]]:
    """local id → (patient id, pseudonym) of the site's patients."""
    return {
        local_id: (pid, pseudo)
        for pid, local_id, pseudo in work.session.execute(
            select(Patient.id, Patient.local_id, Patient.pseudo_id).where(
                Patient.site_id == site.id
            )
        )
    }


def _existing(work: Work, site: Site, form_id: int) -> dict[_StoredKey, _Stored]:
    """The site's stored responses to the form, by key."""
    return {
        (pid, day, event, instance): (rid, values, status, version, entered)
        for rid, pid, day, event, instance, values, status, version, entered in (
            work.session.execute(
                select(
                    Response.id,
                    Response.patient_id,
                    Response.event_date,
                    Response.event_name,
                    Response.repeat_instance,
                    Response.values,
                    Response.status,
                    Response.version,
                    Response.patient_entered,
                ).where(Response.form_id == form_id, Response.site_id == site.id)
            )
        )
    }


def _patients(
    work: Work, site: Site, known: dict[str, tuple[int, str]], local_ids: set[str]
) -> tuple[dict[str, tuple[int, str]], set[int]]:
    """local id → (patient id, pseudonym) for the file's patients, registering new ones."""
    session = work.session
    known = dict(known)
    missing = sorted(local_ids - set(known))
    if not missing:
        return known, set()
    if not work.principal.scope_for("patient.create").allows_site(site.id):
        raise PermissionDenied(
            f"{len(missing)} record id(s) are not patients of site {site.code} (e.g. "
            f"{missing[0]!r}) and your role may not register patients; register them first."
        )
    now = utcnow()
    new_rows = [
        {
            "site_id": site.id,
            "local_id": local_id,
            "pseudo_id": pseudonym(),
            "sex": "unknown",
            "consent_state": "direct_care_only",
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for local_id in missing
    ]
    for start in range(0, len(new_rows), _BATCH):
        session.execute(insert(_table(Patient)), new_rows[start : start + _BATCH])
    created: set[int] = set()
    for pid, local_id, pseudo in session.execute(
        select(Patient.id, Patient.local_id, Patient.pseudo_id).where(
            Patient.site_id == site.id, Patient.local_id.in_(missing)
        )
    ):
        known[local_id] = (pid, pseudo)
        created.add(pid)
    consent_rows = [
        {
            "site_id": site.id,
            "patient_id": pid,
            "state": "direct_care_only",
            "method": "default",
            "recorded_by_user_id": work.principal.user_id,
            "recorded_at": now,
            "note": "registered by bulk import",
        }
        for pid in sorted(created)
    ]
    for start in range(0, len(consent_rows), _BATCH):
        session.execute(insert(_table(ConsentRecord)), consent_rows[start : start + _BATCH])
    return known, created


def _write(
    work: Work,
    site: Site,
    forms: _Forms,
    rows: list[_Row],
    patient_of: dict[str, tuple[int, str]],
    existing: dict[_StoredKey, _Stored],
) -> tuple[int, int, int, dict[int, list[int]], list[str]]:
    """Insert new responses and update changed ones.

    Returns the counts, per patient [created, updated], and notes on new
    responses whose REDCap event and instance are stored at another date
    (a date changed in REDCap: the stored response stays, the report says so).
    """
    session = work.session
    slots: dict[tuple[int, str, int], list[date]] = {}
    for pid, day, event, instance in existing:
        if event or instance != 1:
            slots.setdefault((pid, event, instance), []).append(day)
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[ResponseChange] = []
    unchanged = 0
    touched: dict[int, list[int]] = {}
    moved: list[str] = []
    for row in rows:
        key = row.key
        pid = patient_of[key.local_id][0]
        found = existing.get((pid, key.event_date, key.event_name, key.repeat_instance))
        if found is None:
            inserts.append(
                new_response_row(
                    site_id=site.id,
                    patient_id=pid,
                    form_id=forms.form_id,
                    form_version_id=forms.version_id,
                    event_date=key.event_date,
                    status=row.status,
                    values=row.values,
                    entered_by_user_id=work.principal.user_id,
                    patient_entered=False,
                    now=now,
                    event_name=key.event_name,
                    repeat_instance=key.repeat_instance,
                )
            )
            touched.setdefault(pid, [0, 0])[0] += 1
            others = slots.get((pid, key.event_name, key.repeat_instance))
            if others:
                moved.append(
                    f"Row {row.number}: record {key.local_id} already has a response for "
                    f"{_slot_text(key)} dated {', '.join(d.isoformat() for d in sorted(others))}"
                    f"; a new one dated {key.event_date.isoformat()} was added (if the date "
                    "was corrected in REDCap, correct or remove the old response)."
                )
            continue
        rid, values, status, version, entered = found
        if values == row.values and status == row.status:
            unchanged += 1
            continue
        updates.append(
            ResponseChange(rid, version, row.values, row.status, forms.version_id, entered)
        )
        touched.setdefault(pid, [0, 0])[1] += 1
    insert_responses(session, inserts, ids=False)
    update_responses(session, updates, now)
    return len(inserts), len(updates), unchanged, touched, moved


def _slot_text(key: RowKey) -> str:
    parts = [f"event {key.event_name}"] if key.event_name else []
    if key.repeat_instance != 1:
        parts.append(f"instance {key.repeat_instance}")
    return ", ".join(parts)
