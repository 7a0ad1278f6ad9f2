"""Bulk import and export of responses: REDCap-shaped CSV in; CSV, JSON or FHIR out.

Import (:func:`import_records`) reads a CSV in REDCap's export shape for one
form — one row per response, one column per field, a checkbox as
``field___code`` columns — plus two key columns: ``record_id`` (the
patient's local id at the site, as REDCap's record id) and ``event_date``
(the visit date, ``YYYY-MM-DD``). An optional ``<form>_complete`` column
gives the status the REDCap way (``2`` complete; ``0``/``1`` draft); without
it rows are complete.

- Patients are matched by local id at the site; unknown ones are registered
  (consent ``direct_care_only``, recorded with method ``default``), if the
  importer may register patients there.
- The stable key is patient + form + event date: re-importing a file creates
  no duplicates. A row whose response exists is left alone when nothing
  differs and otherwise replaces it (validated against the current form
  version; the reason for change is "bulk import of <file>").
- ``all-or-nothing``: any problem and nothing is written; the report lists
  every problem. ``row-level``: good rows are written, bad ones reported
  with row number, field, value and reason.
- A wrong header or a file that is not UTF-8 is an error naming file, row
  and column, and nothing is written.

Writes use multi-row INSERT/UPDATE statements in one transaction, never one
ORM flush per row (see benchmarks/capture_import.py).

Audit: one entry for the batch (``import``, with counts, file, mode and
outcome) and one per patient whose responses were created or changed
(``create`` or ``update``, category ``clinical``, with the form and the
counts; reason "bulk import of <file>"). An import refused as a whole is one
entry with outcome ``failure``. An export is one ``export`` entry for the
batch plus one per patient exported.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import Table, insert, select

from careloop.capture.fhir_responses import ResponseSubject, response_to_fhir
from careloop.capture.forms import FieldType, Form, checkbox_column
from careloop.capture.forms_store import form_of_version, load_form
from careloop.capture.records_csv import RecordsFile, read_records_csv
from careloop.capture.response_rows import (
    ResponseChange,
    insert_responses,
    new_response_row,
    update_responses,
)
from careloop.core.clock import utcnow
from careloop.core.errors import (
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.core.ids import pseudonym
from careloop.store.capture_models import FormVersion, Response
from careloop.store.database import Registry
from careloop.store.models import CONSENT_STATES, ConsentRecord, Patient, Site
from careloop.trust.audit import append_many
from careloop.trust.identity import site_by_code
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

__all__ = [
    "ImportMode",
    "ImportReport",
    "RecordsExport",
    "RejectedValue",
    "export_records",
    "import_records",
]

ImportMode = Literal["all-or-nothing", "row-level"]
ExportFormat = Literal["csv", "json", "fhir"]
DateFormat = Literal["ymd", "mdy", "dmy"]
ConsentState = Literal["direct_care_only", "improvement_and_research", "withdrawn"]
KEY_COLUMNS = ("record_id", "event_date")
_STATUS_FROM_REDCAP = {"": "complete", "2": "complete", "1": "draft", "0": "draft"}
_BATCH = 5_000  # rows per multi-row statement


@dataclass(frozen=True)
class RejectedValue:
    """One problem of one row: where, what was given, and why it was refused."""

    row: int
    """Row number as a spreadsheet shows it (the header is row 1; 0: the whole file)."""
    field: str
    """The field or column (empty when the problem is the whole row)."""
    value: str | None
    """The offending value, when there is one."""
    reason: str
    """What was wrong and how to fix it."""


@dataclass(frozen=True)
class ImportReport:
    """What an import did (or, when refused, would have had to fix)."""

    source: str
    """The file's name."""
    form: str
    """The form imported into."""
    form_version: str
    """The form version rows were validated against."""
    site: str
    """The site whose patients the rows belong to."""
    mode: ImportMode
    """``all-or-nothing`` or ``row-level``."""
    rows: int
    """Data rows read."""
    created: int
    """Responses created."""
    updated: int
    """Existing responses whose values or status changed."""
    unchanged: int
    """Rows identical to the stored response (a re-import)."""
    rejected_rows: int
    """Rows not written because of a problem."""
    patients_created: int
    """Patients registered because their local id was new at the site."""
    written: bool
    """Whether anything was stored (False when all-or-nothing met a problem)."""
    problems: tuple[RejectedValue, ...] = field(default=())
    """Every problem, in file order."""

    @property
    def ok(self) -> bool:
        """No row was rejected."""
        return self.rejected_rows == 0 and not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``--report FILE.json`` writes)."""
        return {
            "source": self.source,
            "form": self.form,
            "form_version": self.form_version,
            "site": self.site,
            "mode": self.mode,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected_rows": self.rejected_rows,
            "patients_created": self.patients_created,
            "written": self.written,
            "problems": [
                {"row": p.row, "field": p.field, "value": p.value, "reason": p.reason}
                for p in self.problems
            ],
        }

    def problems_csv(self) -> str:
        """The problems as CSV (``row,field,value,reason``; what ``--report FILE.csv`` writes)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", "field", "value", "reason"])
        for p in self.problems:
            writer.writerow([p.row, p.field, p.value or "", p.reason])
        return out.getvalue()


def _problem(detail: ErrorDetail, source: str) -> RejectedValue:
    location = detail.location
    if location.startswith(source + ":"):
        location = location[len(source) + 1 :]
    row_text, _, field_name = location.partition(":")
    row = int(row_text) if row_text.isdigit() else 0
    value = None if detail.value is None else str(detail.value)
    return RejectedValue(row, field_name, value, detail.message)


def _event_date(text: str, date_format: DateFormat) -> date | None:
    value = text.strip()
    if date_format != "ymd" and "/" in value:
        parts = value.split("/")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            a, b, year = parts
            month, day = (a, b) if date_format == "mdy" else (b, a)
            value = f"{year}-{int(month):02d}-{int(day):02d}"
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@dataclass
class _Row:
    number: int
    local_id: str
    event_date: date
    status: str
    values: dict[str, Any]


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _check_rows(
    parsed: RecordsFile, form: Form, date_format: DateFormat
) -> tuple[list[_Row], list[RejectedValue], int]:
    """Good rows, every problem, and how many rows were rejected."""
    problems: list[RejectedValue] = []
    good: list[_Row] = []
    rejected = 0
    seen: dict[tuple[str, date], int] = {}
    complete_column = f"{form.name}_complete"
    for record in parsed.rows:
        row_problems: list[RejectedValue] = []
        status = _STATUS_FROM_REDCAP.get(record.extras.get(complete_column, "").strip())
        if status is None:
            row_problems.append(
                RejectedValue(
                    record.row,
                    complete_column,
                    record.extras.get(complete_column),
                    "use 2 (complete), 1 (unverified: kept as draft) or 0 (incomplete: draft)",
                )
            )
        for detail in record.errors:
            # A draft may leave required fields empty, as at entry.
            if status == "draft" and detail.message.endswith("[rule: required]"):
                continue
            row_problems.append(_problem(detail, parsed.source))
        local_id = record.extras.get("record_id", "").strip()
        if len(local_id) > 64:
            row_problems.append(
                RejectedValue(record.row, "record_id", local_id, "a local id is 1-64 characters")
            )
        day = _event_date(record.extras.get("event_date", ""), date_format)
        if day is None and record.extras.get("event_date"):
            row_problems.append(
                RejectedValue(
                    record.row,
                    "event_date",
                    record.extras.get("event_date"),
                    "the event date must be a date, YYYY-MM-DD",
                )
            )
        if day is not None and local_id:
            first = seen.get((local_id, day))
            if first is not None:
                row_problems.append(
                    RejectedValue(
                        record.row,
                        "event_date",
                        day.isoformat(),
                        f"row {first} has the same record_id and event_date; one response per "
                        "patient, form and date",
                    )
                )
            else:
                seen[(local_id, day)] = record.row
        if row_problems or day is None or not local_id or status is None:
            rejected += 1
            problems.extend(row_problems)
            continue
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in record.values.items()}
        good.append(_Row(record.row, local_id, day, status, values))
    return good, problems, rejected


def _read_form(registry: Registry, form: str) -> tuple[int, int, str, Form]:
    with registry.transaction() as session:
        definition, version, form_obj = load_form(session, form)
        return definition.id, version.id, version.version, form_obj


def _import_site(work: Work, code: str) -> Site:
    site = site_by_code(work.session, code)
    if work.scope.patient_ids is not None or not work.scope.allows_site(site.id):
        raise NotFound(
            f"There is no site with code {code!r} whose records you may import or export."
        )
    return site


def import_records(
    registry: Registry,
    principal: Principal,
    form: str,
    csv_path: Path | bytes,
    site: str,
    *,
    mode: ImportMode = "all-or-nothing",
    date_format: DateFormat = "ymd",
    name: str | None = None,
) -> ImportReport:
    """Import a REDCap-shaped CSV of ``form`` responses for patients of ``site``.

    Args:
        registry: The registry.
        principal: Who imports (needs ``record.write`` at the site, and
            ``patient.create`` there when the file has new patients).
        form: The form's name; rows are validated against its current version.
        csv_path: The file (a path, or its bytes).
        site: The site code the patients belong to.
        mode: ``all-or-nothing`` or ``row-level`` (see the module docs).
        date_format: How dates are written (``ymd``, or ``mdy``/``dmy`` as
            REDCap's import tool allows).
        name: How to call the file in messages (default: the path's name).

    Returns:
        The :class:`ImportReport`; ``written`` is False when nothing was stored.

    Raises:
        ValidationFailed: The file cannot be read as this form's records (not
            UTF-8, empty, wrong header); nothing is written.
    """
    if mode not in ("all-or-nothing", "row-level"):
        raise InputError(f"Unknown import mode {mode!r}; use all-or-nothing or row-level.")
    label = name or (csv_path.name if isinstance(csv_path, Path) else "records.csv")
    form_id, version_id, version, form_obj = _read_form(registry, form)
    attempt = {"form": form, "source": label, "mode": mode}
    try:
        parsed = read_records_csv(
            csv_path,
            form_obj,
            name=label,
            key_columns=KEY_COLUMNS,
            optional_columns=(f"{form_obj.name}_complete",),
            date_format=date_format,
        )
    except ValidationFailed:
        # Refused before any row was read: still an audited attempt (or a denial).
        with unit_of_work(registry, principal, "record.write") as work:
            work.expect("import", "clinical", site_code=site, details=attempt)
            raise
    good, problems, rejected = _check_rows(parsed, form_obj, date_format)

    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("import", "clinical", site_code=site, details=attempt)
        site_row = _import_site(work, site)

        def report(
            created: int, updated: int, unchanged: int, patients: int, written: bool
        ) -> ImportReport:
            return ImportReport(
                label,
                form,
                version,
                site_row.code,
                mode,
                len(parsed.rows),
                created,
                updated,
                unchanged,
                rejected,
                patients,
                written,
                tuple(problems),
            )

        if mode == "all-or-nothing" and (problems or rejected):
            work.audit(
                "import",
                "clinical",
                site_code=site_row.code,
                outcome="failure",
                details={**attempt, "rows": len(parsed.rows), "rejected_rows": rejected},
            )
            return report(0, 0, 0, 0, False)
        patient_of, created_patients = _patients(work, site_row, {r.local_id for r in good})
        result = _write(work, site_row, form_id, version_id, good, patient_of)
        created, updated, unchanged, touched = result
        reason = f"bulk import of {label}"
        events = [
            work.event(
                "import",
                "clinical",
                site_code=site_row.code,
                details={
                    **attempt,
                    "form_version": version[:12],
                    "rows": len(parsed.rows),
                    "created": created,
                    "updated": updated,
                    "unchanged": unchanged,
                    "rejected_rows": rejected,
                    "patients_created": len(created_patients),
                    "patients": len(touched),
                },
            )
        ]
        pseudonyms = dict(patient_of.values())
        for pid in sorted(touched):
            n_created, n_updated = touched[pid]
            event = work.event(
                "create" if n_created else "update",
                "clinical",
                site_code=site_row.code,
                reason=reason if n_updated else None,
                details={
                    "form": form,
                    "created": n_created,
                    "updated": n_updated,
                    "via": "import",
                    "patient_created": pid in created_patients,
                },
            )
            events.append(replace(event, patient_id=pid, patient_pseudo_id=pseudonyms[pid]))
        append_many(work.session, events)
        return report(created, updated, unchanged, len(created_patients), True)


def _patients(
    work: Work, site: Site, local_ids: set[str]
) -> tuple[dict[str, tuple[int, str]], set[int]]:
    """local id → (patient id, pseudonym) for the file's patients, registering new ones."""
    session = work.session
    known = {
        local_id: (pid, pseudo)
        for pid, local_id, pseudo in session.execute(
            select(Patient.id, Patient.local_id, Patient.pseudo_id).where(
                Patient.site_id == site.id
            )
        )
    }
    missing = sorted(local_ids - set(known))
    if not missing:
        return known, set()
    if not work.principal.scope_for("patient.create").allows_site(site.id):
        raise PermissionDenied(
            f"{len(missing)} record_id(s) are not patients of site {site.code} (e.g. "
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
    form_id: int,
    version_id: int,
    rows: list[_Row],
    patient_of: dict[str, tuple[int, str]],
) -> tuple[int, int, int, dict[int, list[int]]]:
    """Insert new responses and update changed ones; counts and per-patient [created, updated]."""
    session = work.session
    existing = {
        (pid, day): (rid, values, status, version, entered)
        for rid, pid, day, values, status, version, entered in session.execute(
            select(
                Response.id,
                Response.patient_id,
                Response.event_date,
                Response.values,
                Response.status,
                Response.version,
                Response.patient_entered,
            ).where(Response.form_id == form_id, Response.site_id == site.id)
        )
    }
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[ResponseChange] = []
    unchanged = 0
    touched: dict[int, list[int]] = {}
    for row in rows:
        pid = patient_of[row.local_id][0]
        found = existing.get((pid, row.event_date))
        if found is None:
            inserts.append(
                new_response_row(
                    site_id=site.id,
                    patient_id=pid,
                    form_id=form_id,
                    form_version_id=version_id,
                    event_date=row.event_date,
                    status=row.status,
                    values=row.values,
                    entered_by_user_id=work.principal.user_id,
                    patient_entered=False,
                    now=now,
                )
            )
            touched.setdefault(pid, [0, 0])[0] += 1
            continue
        rid, values, status, version, entered = found
        if values == row.values and status == row.status:
            unchanged += 1
            continue
        updates.append(ResponseChange(rid, version, row.values, row.status, version_id, entered))
        touched.setdefault(pid, [0, 0])[1] += 1
    insert_responses(session, inserts, ids=False)
    update_responses(session, updates, now)
    return len(inserts), len(updates), unchanged, touched


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
    columns = _columns(forms)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["record_id", "event_date", *(c for c, _, _ in columns), f"{form_name}_complete"]
    )
    for item in rows:
        values = item.response.values
        cells: list[str] = [item.local_id, item.response.event_date.isoformat()]
        for _column, field_name, code in columns:
            value = values.get(field_name)
            if code is not None:
                cells.append("1" if isinstance(value, list) and code in value else "0")
            else:
                cells.append("" if value is None else str(value))
        cells.append("2" if item.response.status == "complete" else "0")
        writer.writerow(cells)
    return out.getvalue()


def _json(rows: list[_Exported]) -> str:
    return json.dumps(
        [
            {
                "record_id": item.local_id,
                "site": item.site,
                "event_date": item.response.event_date.isoformat(),
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
) -> RecordsExport:
    """Export the responses to ``form`` that the principal may export (``record.export``).

    ``consent`` keeps only patients whose current consent state is one of
    those given (e.g. ``["improvement_and_research"]`` for data leaving
    direct care); by default every patient in scope is exported.

    ``csv`` is REDCap's export shape (``record_id``, ``event_date``, one column
    per field, checkbox columns ``field___code``, ``<form>_complete``) and
    imports back unchanged; ``json`` adds site, status, form version, whether
    the patient entered it and the patient's consent state; ``fhir`` is one R4 QuestionnaireResponse
    per line, its ``questionnaire`` naming the exact form version.
    """
    if fmt not in ("csv", "json", "fhir"):
        raise InputError(f"Unknown export format {fmt!r}; use csv, json or fhir.")
    states = sorted(set(consent)) if consent is not None else None
    unknown = [c for c in states or () if c not in CONSENT_STATES]
    if unknown:
        raise InputError(
            f"Unknown consent state(s) {', '.join(unknown)}; use {', '.join(CONSENT_STATES)}."
        )
    with unit_of_work(registry, principal, "record.export") as work:
        details: dict[str, Any] = {"form": form, "format": fmt}
        if states is not None:
            details["consent"] = states
        work.expect("export", "clinical", site_code=site, details=details)
        session = work.session
        definition, current, current_form = load_form(session, form)
        query = (
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
            .where(Response.form_id == definition.id)
            .order_by(Site.code, Patient.local_id, Response.event_date)
        )
        if site is not None:
            query = query.where(Response.site_id == _import_site(work, site).id)
        if states is not None:
            query = query.where(Patient.consent_state.in_(states))
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
        append_many(session, events)
        return RecordsExport(text, fmt, len(rows), len(patients))
