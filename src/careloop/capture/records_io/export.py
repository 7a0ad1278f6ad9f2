"""Exporting responses: REDCap-shaped CSV, JSON, or FHIR QuestionnaireResponses."""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from careloop.capture.fhir_responses import ResponseSubject, response_to_fhir
from careloop.capture.forms import FieldType, Form, checkbox_column
from careloop.capture.forms_store import form_of_version, load_form
from careloop.capture.records_io.checks import (
    ConsentState,
    ExportFormat,
    _import_site,
)
from careloop.capture.records_keys import (
    EVENT_DATE_COLUMN,
)
from careloop.core.csv_safety import safe_writer
from careloop.core.errors import (
    InputError,
)
from careloop.store.database import Registry
from careloop.store.models import CONSENT_SUMMARIES, Patient, Site
from careloop.store.models.capture import FormVersion, Response
from careloop.trust.consent import PURPOSES, consenting
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work

# ---------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class RecordsExport:
    """An export's text and what it holds."""

    text: str
    """The CSV, JSON or NDJSON text."""
    format: ExportFormat
    """``csv``, ``json`` or ``fhir`` (QuestionnaireResponse NDJSON)."""
    rows: int
    """How many responses it holds."""
    patients: int
    """How many patients they belong to."""


def _columns(forms: Iterable[Form]) -> list[tuple[str, str, str | None]]:
    """(column, field, checkbox code) for every stored field of the forms, first seen first."""
    out: list[tuple[str, str, str | None]] = []
    seen: set[str] = set()
    for form in forms:
        for f in form.fields:
            if f.type is FieldType.DESCRIPTIVE or f.name in seen:
                continue
            seen.add(f.name)
            if f.type is FieldType.CHECKBOX:
                out.extend((checkbox_column(f.name, c.code), f.name, c.code) for c in f.choices)
            else:
                out.append((f.name, f.name, None))
    return out


@dataclass(frozen=True)
class _Exported:
    response: Response
    version: str
    local_id: str
    pseudo_id: str
    site: str
    consent_state: str


def _csv(form_name: str, rows: list[_Exported], forms: list[Form]) -> str:
    """REDCap's export shape; event and repeat columns only when some response has them."""
    keys = ["record_id"]
    events = any(item.response.event_name for item in rows)
    repeats = any(item.response.repeat_instance != 1 for item in rows)
    if events:
        keys.append("redcap_event_name")
    if repeats:
        keys.extend(("redcap_repeat_instrument", "redcap_repeat_instance"))
    keys.append(EVENT_DATE_COLUMN)
    # A field named like a key column (REDCap's record id field ``record_id``) is
    # written once, as the key: the import takes that column as the field's value too.
    columns = [c for c in _columns(forms) if c[0] not in keys]
    out = io.StringIO()
    # Spreadsheet-safe; careloop's records import removes the escape again.
    writer = safe_writer(out, lineterminator="\n")
    writer.writerow([*keys, *(c for c, _, _ in columns), f"{form_name}_complete"])
    for item in rows:
        response = item.response
        values = response.values
        cells: list[str] = [item.local_id]
        if events:
            cells.append(response.event_name)
        if repeats:
            # As REDCap writes a repeating instrument's rows: its name and the instance.
            cells.extend((form_name, str(response.repeat_instance)))
        cells.append(response.event_date.isoformat())
        for _column, field_name, code in columns:
            value = values.get(field_name)
            if code is not None:
                cells.append("1" if isinstance(value, list) and code in value else "0")
            else:
                cells.append("" if value is None else str(value))
        cells.append("2" if response.status == "complete" else "0")
        writer.writerow(cells)
    return out.getvalue()


def _json(rows: list[_Exported]) -> str:
    return json.dumps(
        [
            {
                "record_id": item.local_id,
                "site": item.site,
                "event_date": item.response.event_date.isoformat(),
                "event_name": item.response.event_name,
                "repeat_instance": item.response.repeat_instance,
                "status": item.response.status,
                "form_version": item.version,
                "patient_entered": item.response.patient_entered,
                "consent_state": item.consent_state,
                "values": item.response.values,
            }
            for item in rows
        ],
        indent=2,
        ensure_ascii=False,
    )


def _questionnaire_response(item: _Exported, form: Form) -> str:
    subject = ResponseSubject(pseudo_id=item.pseudo_id, site=item.site, local_id=item.local_id)
    resource = response_to_fhir(
        item.response, form=form, form_version=item.version, subject=subject
    )
    return resource.model_dump_json(exclude_none=True)


def export_records(
    registry: Registry,
    principal: Principal,
    form: str,
    *,
    fmt: ExportFormat = "csv",
    site: str | None = None,
    consent: Collection[ConsentState] | None = None,
    purposes: Collection[str] | None = None,
) -> RecordsExport:
    """Export the responses to ``form`` that the principal may export (``record.export``).

    ``consent`` keeps only patients whose current consent state is one of
    those given (e.g. ``["improvement_and_research"]`` for data leaving
    direct care); ``purposes`` keeps only patients who agree to every
    purpose given (e.g. ``["research"]`` for a research extract; see
    :mod:`careloop.trust.consent`). By default every patient in scope is
    exported. How many patients consent kept out is in the audit entry.

    ``csv`` is REDCap's export shape (``record_id``; ``redcap_event_name``,
    ``redcap_repeat_instrument`` and ``redcap_repeat_instance`` when some
    response has an event or a repeat instance; ``event_date``; one column per
    field, checkbox columns ``field___code``; ``<form>_complete``) and imports
    back unchanged; ``json`` adds site, status, form version, whether
    the patient entered it and the patient's consent state; ``fhir`` is one R4 QuestionnaireResponse
    per line, its ``questionnaire`` naming the exact form version.
    """
    if fmt not in ("csv", "json", "fhir"):
        raise InputError(f"Unknown export format {fmt!r}; use csv, json or fhir.")
    states, wanted = _consent_filters(consent, purposes)
    with unit_of_work(registry, principal, "record.export") as work:
        details: dict[str, Any] = {"form": form, "format": fmt}
        if states is not None:
            details["consent"] = states
        if wanted is not None:
            details["purposes"] = wanted
        work.expect("export", "clinical", site_code=site, details=details)
        session = work.session
        definition, current, current_form = load_form(session, form)
        query = _responses_query(definition.id)
        if site is not None:
            query = query.where(Response.site_id == _import_site(work, site).id)
        query = _keep_consenting(session, query, states, wanted, details)
        rows: list[_Exported] = []
        forms: dict[str, Form] = {current.version: current_form}
        patients: dict[int, tuple[str, str]] = {}
        for response, version_row, local_id, pseudo, code, state in session.execute(query):
            if version_row.version not in forms:
                forms[version_row.version] = form_of_version(version_row)
            rows.append(_Exported(response, version_row.version, local_id, pseudo, code, state))
            patients[response.patient_id] = (pseudo, code)
        if fmt == "csv":
            text = _csv(definition.name, rows, list(forms.values()))
        elif fmt == "json":
            text = _json(rows) + "\n"
        else:
            text = "".join(_questionnaire_response(r, forms[r.version]) + "\n" for r in rows)
        events = [
            work.event(
                "export",
                "clinical",
                site_code=site,
                details={**details, "rows": len(rows), "patients": len(patients)},
            )
        ]
        for pid, (pseudo, code) in sorted(patients.items()):
            event = work.event(
                "export",
                "clinical",
                site_code=code,
                details={"form": form, "format": fmt, "via": "export"},
            )
            events.append(replace(event, patient_id=pid, patient_pseudo_id=pseudo))
        work.audit_events(events)
        return RecordsExport(text, fmt, len(rows), len(patients))


_Query = Select[Response, FormVersion, str, str, str, str]


def _consent_filters(
    consent: Collection[str] | None, purposes: Collection[str] | None
) -> tuple[list[str] | None, list[str] | None]:
    """The consent states and purposes an export keeps, checked (InputError names the bad)."""
    states = sorted(set(consent)) if consent is not None else None
    unknown = [c for c in states or () if c not in CONSENT_SUMMARIES]
    if unknown:
        raise InputError(
            f"Unknown consent state(s) {', '.join(unknown)}; use {', '.join(CONSENT_SUMMARIES)}."
        )
    wanted = sorted(set(purposes)) if purposes is not None else None
    strange = [p for p in wanted or () if p not in PURPOSES]
    if strange:
        raise InputError(
            f"Unknown consent purpose(s) {', '.join(strange)}; use {', '.join(PURPOSES)}."
        )
    return states, wanted


def _keep_consenting(
    session: Session,
    query: _Query,
    states: list[str] | None,
    purposes: list[str] | None,
    details: dict[str, Any],
) -> _Query:
    """``query`` kept to the consent states and purposes given; how many patients that
    kept out goes in the export's audit ``details`` (the consent effect is audited)."""
    if states is None and purposes is None:
        return query
    kept = query
    if states is not None:
        kept = kept.where(Patient.consent_state.in_(states))
    for purpose in purposes or ():
        kept = kept.where(consenting(purpose))
    details["kept_out_by_consent"] = _patients_in(session, query) - _patients_in(session, kept)
    return kept


def _patients_in(session: Session, query: _Query) -> int:
    """Distinct patients among the responses ``query`` selects."""
    ids = query.with_only_columns(Response.patient_id).distinct().order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(ids)) or 0)


def _responses_query(form_id: int) -> Select[Response, FormVersion, str, str, str, str]:
    """The form's responses with their version, patient, site and consent, in export order."""
    return (
        select(
            Response,
            FormVersion,
            Patient.local_id,
            Patient.pseudo_id,
            Site.code,
            Patient.consent_state,
        )
        .join(FormVersion, FormVersion.id == Response.form_version_id)
        .join(Patient, Patient.id == Response.patient_id)
        .join(Site, Site.id == Response.site_id)
        .where(Response.form_id == form_id)
        .order_by(
            Site.code,
            Patient.local_id,
            Response.event_date,
            Response.event_name,
            Response.repeat_instance,
        )
    )
