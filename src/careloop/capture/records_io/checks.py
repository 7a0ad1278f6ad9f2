"""Reading a records file for one form: the report, rows checked against the form, notes."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, cast

from sqlalchemy import Table, select

from careloop.capture.event_dates import event_date_problem
from careloop.capture.forms import Form
from careloop.capture.forms_store import load_form
from careloop.capture.records_csv import (
    RecordsFile,
    validate_cells,
)
from careloop.capture.records_keys import (
    EVENT_DATE_COLUMN,
    KeyPlan,
    RowKey,
    other_form_columns,
    row_key,
)
from careloop.capture.validation import FormValidator
from careloop.core.csv_safety import safe_writer
from careloop.core.errors import (
    ErrorDetail,
    NotFound,
)
from careloop.store.database import Registry
from careloop.store.models import Site
from careloop.store.models.capture import FormDefinition, FormVersion
from careloop.trust.identity import site_by_code
from careloop.trust.work import Work

ImportMode = Literal["all-or-nothing", "row-level"]
ExportFormat = Literal["csv", "json", "fhir"]
DateFormat = Literal["ymd", "mdy", "dmy"]
ConsentState = Literal[
    "direct_care_only", "improvement_only", "improvement_and_research", "withdrawn"
]
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

    Long because it checks each row in one pass (status, key, patient, stored response,
    values), so that every problem in the file is reported at once with its row.

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
