"""Reading a CSV of responses in REDCap's export shape, with precise errors.

One row per response, one column per field; a checkbox field has one column
per option named ``field___code`` holding ``1``/``0``. REDCap's own export
columns (:data:`REDCAP_EXPORT_COLUMNS`, ``<form>_complete`` and a survey's
``<form>_timestamp``) are accepted and handed back untouched, as are the
caller's own key columns (e.g. ``patient_id``, ``event_date``); a key column
that is also a field of the form (REDCap's record id field) is both.
Calculated fields' columns are accepted and recomputed.

A REDCap export may hold several instruments side by side. Columns of the
caller's ``other_columns`` (other forms' fields) are left out and listed in
:attr:`RecordsFile.ignored_columns`; rows that hold nothing of this form — a
row of another repeating instrument, or one where every field of this form is
empty and the form is not marked complete (another event's row) — are left
out and listed in :attr:`RecordsFile.skipped`.

:func:`read_records_csv` checks the header first (unknown, missing and
repeated columns, all reported together), then validates every row with
:func:`~careloop.capture.validation.validate_response` and reports each
problem as ``file:row:field`` — row 1 being the header, as a spreadsheet
numbers it. It writes nothing: ``careloop records import`` decides, per its
mode, what to store.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from careloop.capture.forms import FieldType, Form, checkbox_column
from careloop.capture.text_files import csv_rows, read_source
from careloop.capture.validation import FormValidator, StoredValue, ValidationResult
from careloop.core.csv_safety import restore_cell, restore_row
from careloop.core.errors import ErrorDetail, ValidationFailed

__all__ = [
    "REDCAP_EXPORT_COLUMNS",
    "RecordRow",
    "RecordsFile",
    "SkippedRow",
    "read_header",
    "read_records_csv",
    "validate_cells",
]

REDCAP_EXPORT_COLUMNS = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
)
"""Columns REDCap adds to an export that are not fields (besides ``<form>_complete``
and ``<form>_timestamp``)."""

DateFormat = Literal["ymd", "mdy", "dmy"]
MissingColumns = Literal["error", "allow"]

_SLASH_DATE = re.compile(
    r"^([0-9]{1,2})[/-]([0-9]{1,2})[/-]([0-9]{4})((?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?)$"
)


@dataclass(frozen=True)
class RecordRow:
    """One data row of the file, validated."""

    row: int
    """Row number as a spreadsheet shows it (the header is row 1)."""
    values: Mapping[str, StoredValue]
    """Clean stored values of the form's fields (calculated fields computed)."""
    extras: Mapping[str, str]
    """Cells of the non-field columns (keys, ``redcap_event_name``, ``<form>_complete`` …)."""
    errors: tuple[ErrorDetail, ...]
    """Every problem in this row, located ``file:row:field``."""
    cells: Mapping[str, str] = field(default_factory=dict)
    """The cells of the form's field columns as read (dates turned to ``YYYY-MM-DD``)."""
    row_errors: tuple[ErrorDetail, ...] = ()
    """The problems of :attr:`errors` that are not about a field's value (cell count, keys)."""
    unstored: tuple[str, ...] = ()
    """Fields whose given value is not stored: hidden by branching logic on this row, or a
    field that stores nothing (a file upload)."""

    @property
    def ok(self) -> bool:
        """The row has no errors."""
        return not self.errors


@dataclass(frozen=True)
class SkippedRow:
    """A data row that holds no response to the form."""

    row: int
    """Row number as a spreadsheet shows it."""
    reason: str
    """Why, e.g. a row of another repeating instrument."""


@dataclass(frozen=True)
class RecordsFile:
    """A whole records file, validated row by row."""

    source: str
    """The file's name as used in locations."""
    form: str
    """The form the rows were validated against."""
    form_version: str
    """That form's content hash."""
    columns: tuple[str, ...]
    """The header, as read."""
    rows: tuple[RecordRow, ...]
    """Every data row that holds a response to the form, in file order."""
    skipped: tuple[SkippedRow, ...] = ()
    """Data rows that hold nothing of this form (other instruments' or events' rows)."""
    ignored_columns: tuple[str, ...] = ()
    """Columns of other forms (``other_columns``), read past."""
    missing_fields: tuple[str, ...] = ()
    """Fields of the form that store a value but have no column in the file."""

    @property
    def errors(self) -> tuple[ErrorDetail, ...]:
        """All problems of all rows."""
        return tuple(e for r in self.rows for e in r.errors)

    @property
    def valid_rows(self) -> tuple[RecordRow, ...]:
        """Rows without problems (what a row-level import writes)."""
        return tuple(r for r in self.rows if r.ok)

    @property
    def rejected_rows(self) -> tuple[RecordRow, ...]:
        """Rows with at least one problem."""
        return tuple(r for r in self.rows if not r.ok)

    def raise_for_errors(self) -> None:
        """Raise :class:`ValidationFailed` listing every problem (all-or-nothing imports)."""
        errors = self.errors
        if errors:
            bad = len(self.rejected_rows)
            raise ValidationFailed(
                f"{self.source}: {len(errors)} problem(s) in {bad} of {len(self.rows)} row(s); "
                "nothing was imported.",
                details=list(errors),
            )


def _to_iso(text: str, fmt: DateFormat) -> str:
    m = _SLASH_DATE.match(text)
    if m is None or fmt == "ymd":
        return text
    a, b, year = m.group(1), m.group(2), m.group(3)
    month, day = (a, b) if fmt == "mdy" else (b, a)
    return f"{year}-{int(month):02d}-{int(day):02d}{m.group(4).replace('T', ' ')}"


def read_header(text: str, *, name: str = "records.csv") -> list[str]:
    """The header row of a records CSV's text (stripped cells; empty for an empty file)."""
    header = next(csv_rows(text, name=name), None) or []
    return [restore_cell(h.strip()) for h in header]


def read_records_csv(
    source: str | Path | bytes,
    form: Form,
    *,
    name: str | None = None,
    key_columns: Iterable[str] = (),
    optional_columns: Iterable[str] = (),
    missing_fields: MissingColumns = "error",
    date_format: DateFormat = "ymd",
    now: dt.datetime | None = None,
    other_columns: Mapping[str, str] | None = None,
) -> RecordsFile:
    """Read and validate a records CSV for one form.

    Long because it documents its options and reads the file in one pass, header then
    rows, each row checked cell by cell so that every problem is reported at once.

    Args:
        source: A path, the file's bytes, or its decoded text.
        form: The form the rows answer.
        name: How to call the file in locations (default: the path's name).
        key_columns: Non-field columns that must be present and filled in
            every row (e.g. ``("patient_id", "event_date")``).
        optional_columns: Further non-field columns that may be present.
        missing_fields: ``"error"``: every field of the form must have its
            column(s); ``"allow"``: a file may carry a subset, as REDCap
            exports of chosen fields do (a required field without a column is
            then an error of each row that needs it).
        date_format: How dates are written: ``ymd`` (``2024-03-31``, REDCap's
            export), or ``mdy``/``dmy`` (``03/31/2024``, ``31/03/2024``) as
            REDCap's import tool allows.
        now: The moment ``today``/``now`` stand for in ranges and logic.
        other_columns: Column → form, for the columns of the project's other
            forms that a REDCap export may hold beside this form's: read past
            and listed in :attr:`RecordsFile.ignored_columns`.

    Raises:
        ValidationFailed: The file cannot be read as this form's records: not
            UTF-8, empty, or a wrong header (unknown, missing or repeated
            columns — all listed). Row problems do not raise: they are in
            each :class:`RecordRow`'s ``errors``.
    """
    label, text = read_source(source, name=name, default="records.csv")
    # Cells careloop escaped for spreadsheets on export come back as they were.
    reader = (restore_row(r) for r in csv_rows(text, name=label))
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise ValidationFailed(f"{label} is empty; expected a header row naming the form's fields.")
    header = [h.strip() for h in header]
    keys = tuple(key_columns)
    others = dict(other_columns or {})
    for own in _form_columns(form):
        others.pop(own, None)
    for key in (*keys, *optional_columns):
        others.pop(key, None)
    _check_header(header, form, label, keys, tuple(optional_columns), missing_fields, others)
    validator = FormValidator(form)
    date_fields = {
        f.name
        for f in form.fields
        if f.type is FieldType.TEXT and (f.validation or "").startswith(("date", "datetime"))
    }
    extra_names = (
        set(keys)
        | set(optional_columns)
        | set(REDCAP_EXPORT_COLUMNS)
        | {f"{form.name}_complete", f"{form.name}_timestamp"}
    )
    field_columns = set(_form_columns(form))
    ignored = tuple(c for c in header if c in others)
    missing = _missing_fields(form, set(header))
    data_columns = _data_columns(form, set(header) - set(keys))
    context_columns = _context_columns(form, header)
    rows: list[RecordRow] = []
    skipped: list[SkippedRow] = []
    width = len(header)
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        problems: list[ErrorDetail] = []
        if len(cells) != width:
            problems.append(
                ErrorDetail(
                    f"{label}:{number}",
                    f"row has {len(cells)} cells but the header "
                    f"has {width}; check for an unquoted comma or a missing cell",
                )
            )
        values: dict[str, str] = {}
        extras: dict[str, str] = {}
        elsewhere: dict[str, str] = {}
        for column, cell in zip(header, cells, strict=False):
            if column in extra_names:
                extras[column] = cell.strip()
            if column in context_columns:
                elsewhere[column] = cell.strip()
            if column in field_columns:
                values[column] = (
                    _to_iso(cell.strip(), date_format) if column in date_fields else cell
                )
        reason = _not_this_form(form.name, values, extras, data_columns)
        if reason is not None:
            skipped.append(SkippedRow(number, reason))
            continue
        for key in keys:
            if not extras.get(key):
                problems.append(
                    ErrorDetail(f"{label}:{number}:{key}", f"the key column {key!r} is empty")
                )
        result_values, field_problems, unstored = validate_cells(
            validator,
            values,
            label=f"{label}:{number}",
            missing=missing,
            now=now,
            context=_row_context(form, elsewhere),
        )
        rows.append(
            RecordRow(
                number,
                result_values,
                extras,
                (*problems, *field_problems),
                values,
                tuple(problems),
                unstored,
            )
        )
    return RecordsFile(
        label,
        form.name,
        form.content_hash(),
        tuple(header),
        tuple(rows),
        tuple(skipped),
        ignored,
        missing,
    )


def _context_columns(form: Form, header: Iterable[str]) -> set[str]:
    """Columns of other forms that this form's logic reads (a multi-form export has them
    side by side: REDCap evaluates such logic within the same record and event)."""
    names = {name for name, _form in form.other_form_fields}
    return {c for c in header if c in names or c.split("___", 1)[0] in names}


def _row_context(form: Form, cells: Mapping[str, str]) -> dict[str, object]:
    """Other forms' answers in this row, as validation's ``context``."""
    out: dict[str, object] = {}
    for name, _form in form.other_form_fields:
        if name in cells:
            out[name] = cells[name]
        boxes = {c.split("___", 1)[1]: v for c, v in cells.items() if c.startswith(f"{name}___")}
        if boxes:
            out[name] = [code for code, v in boxes.items() if v == "1"]
    return out


def validate_cells(
    validator: FormValidator,
    cells: Mapping[str, object],
    *,
    label: str,
    missing: Iterable[str] = (),
    now: dt.datetime | None = None,
    context: Mapping[str, object] | None = None,
) -> tuple[Mapping[str, StoredValue], tuple[ErrorDetail, ...], tuple[str, ...]]:
    """Validate one row's cells: the clean values, the problems located ``label:field``
    and the fields whose given value is not stored (hidden, or storing nothing).

    ``missing`` names fields the file has no column for: a required one is
    reported as such rather than as an empty cell. ``context`` holds other
    forms' answers this form's logic reads.
    """
    result: ValidationResult = validator.validate(cells, now=now, context=context)
    absent = set(missing)
    problems = []
    for e in result.errors:
        if e.rule == "required" and e.field in absent:
            problems.append(
                ErrorDetail(
                    f"{label}:{e.field}",
                    "this field is required but the file has no column for it; add the "
                    f"column, or import the row as a draft ({validator.form.name}_complete "
                    "0 or 1) [rule: required]",
                )
            )
        else:
            problems.append(e.as_detail(label))
    return result.values, tuple(problems), (*result.cleared, *result.ignored)


def _form_columns(form: Form) -> list[str]:
    """The columns a REDCap export gives the form's fields."""
    out: list[str] = []
    for f in form.fields:
        if f.type is FieldType.DESCRIPTIVE:
            continue
        if f.type is FieldType.CHECKBOX:
            out.extend(checkbox_column(f.name, c.code) for c in f.choices)
        else:
            out.append(f.name)
    return out


def _missing_fields(form: Form, header: set[str]) -> tuple[str, ...]:
    out = []
    for f in form.fields:
        if f.type in (FieldType.DESCRIPTIVE, FieldType.CALC):
            continue
        if f.type is FieldType.CHECKBOX:
            present = any(checkbox_column(f.name, c.code) in header for c in f.choices)
        else:
            present = f.name in header
        if not present:
            out.append(f.name)
    return tuple(out)


def _data_columns(form: Form, header: set[str]) -> tuple[list[str], list[str]]:
    """The columns whose cells say whether a row holds this form (no calcs, no keys):
    plain ones and checkbox options (where ``0`` is as good as empty)."""
    plain: list[str] = []
    boxes: list[str] = []
    for f in form.fields:
        if f.type is FieldType.CHECKBOX:
            boxes.extend(
                c for c in (checkbox_column(f.name, o.code) for o in f.choices) if c in header
            )
        elif f.type not in (FieldType.CALC, FieldType.DESCRIPTIVE) and f.name in header:
            plain.append(f.name)
    return plain, boxes


def _not_this_form(
    form_name: str,
    values: Mapping[str, str],
    extras: Mapping[str, str],
    data: tuple[list[str], list[str]],
) -> str | None:
    """Why the row holds no response to the form, or None when it does."""
    instrument = extras.get("redcap_repeat_instrument", "")
    if instrument and instrument != form_name:
        return f"a row of the repeating instrument {instrument!r}"
    if extras.get(f"{form_name}_complete", "") in ("1", "2"):
        return None
    plain, boxes = data
    if any(values.get(c, "").strip() for c in plain) or any(
        values.get(c, "").strip() not in ("", "0") for c in boxes
    ):
        return None
    event = extras.get("redcap_event_name", "")
    where = f" (event {event})" if event else ""
    return f"no field of form {form_name!r} has a value on this row{where}"


def _check_header(
    header: list[str],
    form: Form,
    label: str,
    keys: tuple[str, ...],
    optional: tuple[str, ...],
    missing_fields: MissingColumns,
    others: Mapping[str, str],
) -> None:
    expected: dict[str, str] = {}  # column → field
    for f in form.fields:
        if f.type is FieldType.DESCRIPTIVE:
            continue
        if f.type is FieldType.CHECKBOX:
            for c in f.choices:
                expected[checkbox_column(f.name, c.code)] = f.name
        else:
            expected[f.name] = f.name
    allowed = set(expected) | set(keys) | set(optional) | set(REDCAP_EXPORT_COLUMNS)
    allowed |= {f"{form.name}_complete", f"{form.name}_timestamp"}
    details: list[ErrorDetail] = []
    seen: set[str] = set()
    for i, column in enumerate(header, start=1):
        where = f"{label}:1:{column or f'column {i}'}"
        if column in seen:
            details.append(ErrorDetail(where, f"column {column!r} appears twice", column))
            continue
        seen.add(column)
        if column not in allowed and column not in others:
            hint = ""
            close = difflib.get_close_matches(column, sorted(allowed), n=1)
            if column in {f.name for f in form.fields if f.type is FieldType.CHECKBOX}:
                field = form.field(column)
                hint = (
                    f"; {column} is a checkbox: give one column per option, e.g. "
                    f"{checkbox_column(column, field.choices[0].code)}"
                )
            elif close:
                hint = f"; did you mean {close[0]!r}?"
            elif others:
                hint = (
                    "; if it belongs to another form of the REDCap project, import that "
                    "form's data dictionary first (careloop forms import)"
                )
            details.append(
                ErrorDetail(
                    where,
                    f"unknown column {column!r}: not a field of form "
                    f"{form.name!r}{' nor of another form' if others else ''} "
                    f"nor a key column{hint}",
                    column,
                )
            )
    for key in keys:
        if key not in seen:
            details.append(ErrorDetail(f"{label}:1", f"missing key column {key!r}", key))
    if missing_fields == "error":
        calcs = {f.name for f in form.fields if f.type is FieldType.CALC}
        for column, field_name in expected.items():
            if column not in seen and field_name not in calcs:
                details.append(
                    ErrorDetail(
                        f"{label}:1:{field_name}",
                        f"missing column {column!r} for field {field_name!r}",
                        column,
                    )
                )
    if details:
        raise ValidationFailed(
            f"{label}: the header does not match form {form.name!r}; nothing was read.",
            details=details,
        )
