"""Bulk import and export of responses: REDCap-shaped CSV in; CSV, JSON or FHIR out.

Import (:func:`import_records`) reads a REDCap record export (or a CSV in its
shape) for one form — one row per response, one column per field, a checkbox
as ``field___code`` columns — as it comes from REDCap:

- The patient is the record id column: ``record_id``, or the project's record
  id field as first column (the first field of a stored form, e.g.
  ``study_id``), or the column named by ``record_id_field``: the patient's
  local id at the site. Unknown ids are registered (consent
  ``direct_care_only``, recorded with method ``default``), if the importer may
  register patients there.
- The event date comes from ``event_date_field``, an ``event_date`` column,
  the form's field annotated ``@CARELOOP-EVENT-DATE``, or ``event_date`` (one
  date for rows without their own); see :mod:`careloop.capture.records_keys`.
- ``redcap_event_name`` and ``redcap_repeat_instance`` (longitudinal and
  repeating projects) are part of the key; rows of another repeating
  instrument, and rows where none of this form's fields has a value (another
  event's), are skipped and counted. Other forms' columns are read past, with
  a note: import each form from the same file.
- Columns may be a subset of the form's: a field without a column is missing,
  not empty. A new response leaves it unanswered (an error only if it is
  required); a stored response keeps its value of it.
- An optional ``<form>_complete`` column gives the status the REDCap way
  (``2`` complete; ``0``/``1`` draft); without it rows are complete.
- The key is patient + form + event date + event name + repeat instance:
  re-importing a file creates no duplicates. A row whose response exists is
  left alone when nothing differs and otherwise replaces it (validated
  against the current form version; the reason for change is "bulk import of
  <file>").
- ``all-or-nothing``: any problem and nothing is written; the report lists
  every problem. ``row-level``: good rows are written, bad ones reported
  with row number, field, value and reason.
- A wrong header, no way to tell the event date, or a file that is not UTF-8
  is an error naming file, row and column, and nothing is written.

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

import io
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import Table, insert, select

from careloop.capture.event_dates import event_date_problem, latest_event_date
from careloop.capture.fhir_responses import ResponseSubject, response_to_fhir
from careloop.capture.forms import FieldType, Form, checkbox_column
from careloop.capture.forms_store import form_of_version, load_form
from careloop.capture.records_csv import (
    RecordsFile,
    read_header,
    read_records_csv,
    validate_cells,
)
from careloop.capture.records_keys import (
    EVENT_DATE_COLUMN,
    KeyPlan,
    RowKey,
    other_form_columns,
    parse_event_date,
    plan_keys,
    row_key,
)
from careloop.capture.response_rows import (
    ResponseChange,
    insert_responses,
    new_response_row,
    update_responses,
)
from careloop.capture.text_files import read_source
from careloop.capture.validation import FormValidator
from careloop.core.clock import utcnow
from careloop.core.csv_safety import safe_writer
from careloop.core.errors import (
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.core.ids import pseudonym
from careloop.store.capture_models import FormDefinition, FormVersion, Response
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
    skipped: int = 0
    """Rows holding nothing of this form (other instruments' or events' rows), of ``rows``."""
    notes: tuple[str, ...] = ()
    """What the reader decided and the user should know: where event dates and
    record ids came from, columns of other forms read past, rows skipped."""

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
            "skipped": self.skipped,
            "patients_created": self.patients_created,
            "written": self.written,
            "notes": list(self.notes),
            "problems": [
                {"row": p.row, "field": p.field, "value": p.value, "reason": p.reason}
                for p in self.problems
            ],
        }

    def problems_csv(self) -> str:
        """The problems as CSV (``row,field,value,reason``; what ``--report FILE.csv`` writes)."""
        out = io.StringIO()
        writer = safe_writer(out, lineterminator="\n")
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


@dataclass
class _Row:
    number: int
    key: RowKey
    status: str
    values: dict[str, Any]


_Stored = tuple[int, dict[str, Any], str, int, bool]
"""A stored response: id, values, status, version, patient_entered."""
_StoredKey = tuple[int, date, str, int]
"""patient id, event date, event name, repeat instance."""


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _check_rows(
    parsed: RecordsFile,
    form: Form,
    plan: KeyPlan,
    date_format: DateFormat,
    patient_of: dict[str, tuple[int, str]],
    existing: dict[_StoredKey, _Stored],
    latest: date,
) -> tuple[list[_Row], list[RejectedValue], int, int]:
    """Good rows, every problem, how many rows were rejected and how many took --event-date.

    A row of a file without some of the form's columns, whose response is
    stored, is validated with the stored values of those fields: a missing
    column is missing, not empty.
    """
    problems: list[RejectedValue] = []
    good: list[_Row] = []
    rejected = 0
    fallback_rows = 0
    seen: dict[RowKey, int] = {}
    complete_column = f"{form.name}_complete"
    missing = set(parsed.missing_fields)
    validator = FormValidator(form) if missing else None
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
        key, key_problems, fallback = row_key(record, plan, date_format)
        values, details = record.values, record.errors
        stored = None
        if key is not None and key.local_id in patient_of:
            pid = patient_of[key.local_id][0]
            stored = existing.get((pid, key.event_date, key.event_name, key.repeat_instance))
        if stored is not None and validator is not None:
            kept = {k: v for k, v in stored[1].items() if k in missing}
            values, field_details, _unstored = validate_cells(
                validator,
                {**kept, **record.cells},
                label=f"{parsed.source}:{record.row}",
                missing=missing - set(kept),
            )
            details = (*record.row_errors, *field_details)
        for detail in details:
            # A draft may leave required fields empty, as at entry.
            if status == "draft" and detail.message.endswith("[rule: required]"):
                continue
            row_problems.append(_problem(detail, parsed.source))
        row_problems.extend(
            RejectedValue(record.row, d.location, d.value, d.message) for d in key_problems
        )
        wrong_date = event_date_problem(key.event_date, latest=latest) if key else None
        if key is not None and wrong_date is not None:
            row_problems.append(
                RejectedValue(
                    record.row,
                    plan.event_date.field or EVENT_DATE_COLUMN,
                    key.event_date.isoformat(),
                    wrong_date,
                )
            )
        if key is not None:
            first = seen.get(key)
            if first is not None:
                row_problems.append(
                    RejectedValue(
                        record.row,
                        plan.record_id,
                        key.local_id,
                        f"row {first} has the same record id, event date"
                        + (", event" if key.event_name else "")
                        + (" and repeat instance" if key.repeat_instance != 1 else "")
                        + "; one response per patient, form, date, event and instance",
                    )
                )
            else:
                seen[key] = record.row
        if row_problems or key is None or status is None:
            rejected += 1
            problems.extend(sorted(row_problems, key=lambda p: p.row))
            continue
        fallback_rows += fallback
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        good.append(_Row(record.row, key, status, plain))
    return good, problems, rejected, fallback_rows


@dataclass(frozen=True)
class _Forms:
    form_id: int
    version_id: int
    version: str
    form: Form
    other_columns: dict[str, str]
    """Column → form, for the columns of every other stored form."""
    first_fields: frozenset[str]
    """The first field of each stored form (a REDCap project's record id field is one)."""


def _read_forms(registry: Registry, form: str) -> _Forms:
    with registry.transaction() as session:
        definition, version, form_obj = load_form(session, form)
        others: list[dict[str, Any]] = []
        first_fields = {form_obj.fields[0].name} if form_obj.fields else set()
        for name, stored in session.execute(
            select(FormDefinition.name, FormVersion.definition)
            .join(FormVersion, FormVersion.id == FormDefinition.current_version_id)
            .where(FormDefinition.id != definition.id)
        ):
            others.append({**stored, "name": name})
            fields = stored.get("fields") or []
            if fields:
                first_fields.add(str(fields[0].get("name", "")))
        return _Forms(
            definition.id,
            version.id,
            version.version,
            form_obj,
            other_form_columns(others),
            frozenset(first_fields),
        )


def _import_site(work: Work, code: str) -> Site:
    site = site_by_code(work.session, code)
    if work.scope.patient_ids is not None or not work.scope.allows_site(site.id):
        raise NotFound(
            f"There is no site with code {code!r} whose records you may import or export."
        )
    return site


def _unstored_values(parsed: RecordsFile) -> list[tuple[int, str]]:
    """(row, field) of every value a good row gives that is not stored: fields its
    branching logic hides (REDCap keeps those values; careloop does not) and fields
    that store nothing (file uploads)."""
    return [(r.row, name) for r in parsed.rows if r.ok for name in r.unstored]


def _notes(parsed: RecordsFile, plan: KeyPlan, fallback_rows: int) -> list[str]:
    """What the user should know about how the file was read."""
    notes = [plan.event_date.describe()]
    unstored = _unstored_values(parsed)
    if unstored:
        shown = ", ".join(f"row {row}: {name}" for row, name in unstored[:5])
        more = " …" if len(unstored) > 5 else ""
        notes.append(
            f"{len(unstored)} value(s) were not stored because the form's branching logic "
            f"hides their field on that row, or the field stores no data ({shown}{more}). "
            "REDCap keeps values in hidden fields; check those rows or the logic if they matter."
        )
    if fallback_rows:
        assert plan.event_date.fallback is not None
        notes.append(
            f"{fallback_rows} row(s) with an empty {plan.event_date.field} took the event "
            f"date {plan.event_date.fallback.isoformat()} (--event-date)."
        )
    if plan.record_id != "record_id":
        notes.append(f"Record ids (the patients' local ids) from the {plan.record_id} column.")
    if parsed.skipped:
        reasons: dict[str, int] = {}
        for s in parsed.skipped:
            kind = (
                "rows of other repeating instruments"
                if s.reason.startswith("a row of the repeating")
                else f"rows with no value in any field of {parsed.form}"
            )
            reasons[kind] = reasons.get(kind, 0) + 1
        notes.append(
            f"{len(parsed.skipped)} row(s) hold nothing of form {parsed.form} and were "
            "skipped: " + "; ".join(f"{n} {kind}" for kind, n in reasons.items()) + "."
        )
    if parsed.ignored_columns:
        notes.append(
            f"{len(parsed.ignored_columns)} column(s) of other forms were not imported "
            "into this one; import each form from the same file "
            "(careloop records import FORM FILE)."
        )
    if parsed.missing_fields:
        shown = ", ".join(parsed.missing_fields[:8])
        more = "…" if len(parsed.missing_fields) > 8 else ""
        notes.append(
            f"The file has no column for {len(parsed.missing_fields)} field(s) of "
            f"{parsed.form} ({shown}{more}): stored responses keep their values of them, "
            "new ones leave them unanswered."
        )
    return notes


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
    event_date_field: str | None = None,
    event_date: date | str | None = None,
    record_id_field: str | None = None,
) -> ImportReport:
    """Import a REDCap record export (or CSV in its shape) of ``form`` for patients of ``site``.

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
        event_date_field: A date or datetime field of the form that gives
            each row's event date.
        event_date: The event date of rows that have none of their own
            (``YYYY-MM-DD``), or of every row when nothing else gives one.
        record_id_field: The column holding the record id (default
            ``record_id``, or the project's record id field as first column).

    Returns:
        The :class:`ImportReport`; ``written`` is False when nothing was stored.

    Raises:
        ValidationFailed: The file cannot be read as this form's records (not
            UTF-8, empty, wrong header, no record id column, no event date);
            nothing is written.
    """
    if mode not in ("all-or-nothing", "row-level"):
        raise InputError(f"Unknown import mode {mode!r}; use all-or-nothing or row-level.")
    fallback = _fallback_date(event_date)
    label = name or (csv_path.name if isinstance(csv_path, Path) else "records.csv")
    forms = _read_forms(registry, form)
    form_obj = forms.form
    attempt = {"form": form, "source": label, "mode": mode}
    try:
        label, text = read_source(csv_path, name=label, default="records.csv")
        plan = plan_keys(
            read_header(text, name=label),
            form_obj,
            label=label,
            record_id_fields=forms.first_fields,
            record_id_field=record_id_field,
            event_date_field_name=event_date_field,
            event_date=fallback,
        )
        parsed = read_records_csv(
            text,
            form_obj,
            name=label,
            key_columns=(plan.record_id,),
            optional_columns=(EVENT_DATE_COLUMN, f"{form_obj.name}_complete"),
            missing_fields="allow",
            date_format=date_format,
            other_columns=forms.other_columns,
        )
    except ValidationFailed:
        # Refused before any row was read: still an audited attempt (or a denial).
        with unit_of_work(registry, principal, "record.write") as work:
            work.expect("import", "clinical", site_code=site, details=attempt)
            raise

    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("import", "clinical", site_code=site, details=attempt)
        site_row = _import_site(work, site)
        known = _known_patients(work, site_row)
        existing = _existing(work, site_row, forms.form_id)
        good, problems, rejected, fallback_rows = _check_rows(
            parsed,
            form_obj,
            plan,
            date_format,
            known,
            existing,
            latest_event_date(site_row.time_zone),
        )
        notes = _notes(parsed, plan, fallback_rows)
        total = len(parsed.rows) + len(parsed.skipped)

        def report(
            created: int, updated: int, unchanged: int, patients: int, written: bool
        ) -> ImportReport:
            return ImportReport(
                label,
                form,
                forms.version,
                site_row.code,
                mode,
                total,
                created,
                updated,
                unchanged,
                rejected,
                patients,
                written,
                tuple(problems),
                len(parsed.skipped),
                tuple(notes),
            )

        if mode == "all-or-nothing" and (problems or rejected):
            work.audit(
                "import",
                "clinical",
                site_code=site_row.code,
                outcome="failure",
                details={**attempt, "rows": total, "rejected_rows": rejected},
            )
            return report(0, 0, 0, 0, False)
        patient_of, created_patients = _patients(
            work, site_row, known, {r.key.local_id for r in good}
        )
        created, updated, unchanged, touched, moved = _write(
            work, site_row, forms, good, patient_of, existing
        )
        notes.extend(moved)
        reason = f"bulk import of {label}"
        events = [
            work.event(
                "import",
                "clinical",
                site_code=site_row.code,
                details={
                    **attempt,
                    "form_version": forms.version[:12],
                    "rows": total,
                    "created": created,
                    "updated": updated,
                    "unchanged": unchanged,
                    "rejected_rows": rejected,
                    "skipped_rows": len(parsed.skipped),
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
) -> RecordsExport:
    """Export the responses to ``form`` that the principal may export (``record.export``).

    ``consent`` keeps only patients whose current consent state is one of
    those given (e.g. ``["improvement_and_research"]`` for data leaving
    direct care); by default every patient in scope is exported.

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
            .order_by(
                Site.code,
                Patient.local_id,
                Response.event_date,
                Response.event_name,
                Response.repeat_instance,
            )
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
        work.audit_events(events)
        return RecordsExport(text, fmt, len(rows), len(patients))
