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

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from careloop.capture.event_dates import latest_event_date
from careloop.capture.records_csv import (
    RecordsFile,
    read_header,
    read_records_csv,
)
from careloop.capture.records_io.checks import (
    ConsentState,
    DateFormat,
    ExportFormat,
    ImportMode,
    ImportReport,
    RejectedValue,
    _check_rows,
    _Forms,
    _import_site,
    _notes,
    _read_forms,
)
from careloop.capture.records_io.export import (
    RecordsExport,
    export_records,
)
from careloop.capture.records_io.writing import (
    _existing,
    _fallback_date,
    _known_patients,
    _patients,
    _write,
)
from careloop.capture.records_keys import (
    EVENT_DATE_COLUMN,
    KeyPlan,
    plan_keys,
)
from careloop.capture.text_files import read_source
from careloop.core.errors import (
    InputError,
    ValidationFailed,
)
from careloop.store.database import Registry
from careloop.trust.audit import AuditEvent, append_many
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

__all__ = [
    "ConsentState",
    "DateFormat",
    "ExportFormat",
    "ImportMode",
    "ImportReport",
    "RecordsExport",
    "RejectedValue",
    "export_records",
    "import_records",
]


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

    Long because it documents ten options and keeps the audited attempt, the all-or-
    nothing refusal and the writes with their audit in one unit of work; reading,
    checking and writing the rows are helpers.

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
        label, plan, parsed = _read_file(
            csv_path,
            label,
            forms,
            record_id_field=record_id_field,
            event_date_field=event_date_field,
            event_date=fallback,
            date_format=date_format,
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
        events.extend(
            _patient_events(
                work, site_row.code, form, reason, touched, patient_of, created_patients
            )
        )
        append_many(work.session, events)
        return report(created, updated, unchanged, len(created_patients), True)


def _read_file(
    csv_path: Path | bytes,
    label: str,
    forms: _Forms,
    *,
    record_id_field: str | None,
    event_date_field: str | None,
    event_date: date | None,
    date_format: DateFormat,
) -> tuple[str, KeyPlan, RecordsFile]:
    """Read the file: its label, how its rows are keyed, and its rows checked cell by cell."""
    label, text = read_source(csv_path, name=label, default="records.csv")
    form_obj = forms.form
    plan = plan_keys(
        read_header(text, name=label),
        form_obj,
        label=label,
        record_id_fields=forms.first_fields,
        record_id_field=record_id_field,
        event_date_field_name=event_date_field,
        event_date=event_date,
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
    return label, plan, parsed


def _patient_events(
    work: Work,
    site_code: str,
    form: str,
    reason: str,
    touched: Mapping[int, Sequence[int]],
    patient_of: Mapping[str, tuple[int, str]],
    created_patients: Collection[int],
) -> list[AuditEvent]:
    """One audit event per patient whose responses the import created or changed."""
    events = []
    pseudonyms = dict(patient_of.values())
    for pid in sorted(touched):
        n_created, n_updated = touched[pid]
        event = work.event(
            "create" if n_created else "update",
            "clinical",
            site_code=site_code,
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
    return events
