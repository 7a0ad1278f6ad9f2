"""Reading a CSV of responses in REDCap's export shape, with precise errors.

One row per response, one column per field; a checkbox field has one column
per option named ``field___code`` holding ``1``/``0``. REDCap's own export
columns ``redcap_event_name``, ``redcap_repeat_instrument``,
``redcap_repeat_instance`` and ``<form>_complete`` are accepted and handed
back untouched, as are the caller's own key columns (e.g. ``patient_id``,
``event_date``). Calculated fields' columns are accepted and recomputed.

:func:`read_records_csv` checks the header first (unknown, missing and
repeated columns, all reported together), then validates every row with
:func:`~careloop.capture.validation.validate_response` and reports each
problem as ``file:row:field`` — row 1 being the header, as a spreadsheet
numbers it. It writes nothing: ``careloop records import`` decides, per its
mode, what to store.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from careloop.capture.forms import FieldType, Form, checkbox_column
from careloop.capture.text_files import read_source
from careloop.capture.validation import FormValidator, StoredValue
from careloop.core.errors import ErrorDetail, ValidationFailed

__all__ = ["REDCAP_EXPORT_COLUMNS", "RecordRow", "RecordsFile", "read_records_csv"]

REDCAP_EXPORT_COLUMNS = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")
"""Columns REDCap adds to an export that are not fields."""

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

    @property
    def ok(self) -> bool:
        """The row has no errors."""
        return not self.errors


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
    """Every data row, in file order."""

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
) -> RecordsFile:
    """Read and validate a records CSV for one form.

    Args:
        source: A path, the file's bytes, or its decoded text.
        form: The form the rows answer.
        name: How to call the file in locations (default: the path's name).
        key_columns: Non-field columns that must be present and filled in
            every row (e.g. ``("patient_id", "event_date")``).
        optional_columns: Further non-field columns that may be present.
        missing_fields: ``"error"``: every field of the form must have its
            column(s), as in a REDCap export; ``"allow"``: a file may carry
            a subset.
        date_format: How dates are written: ``ymd`` (``2024-03-31``, REDCap's
            export), or ``mdy``/``dmy`` (``03/31/2024``, ``31/03/2024``) as
            REDCap's import tool allows.
        now: The moment ``today``/``now`` stand for in ranges and logic.

    Raises:
        ValidationFailed: The file cannot be read as this form's records: not
            UTF-8, empty, or a wrong header (unknown, missing or repeated
            columns — all listed). Row problems do not raise: they are in
            each :class:`RecordRow`'s ``errors``.
    """
    label, text = read_source(source, name=name, default="records.csv")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise ValidationFailed(f"{label} is empty; expected a header row naming the form's fields.")
    header = [h.strip() for h in header]
    keys = tuple(key_columns)
    _check_header(header, form, label, keys, tuple(optional_columns), missing_fields)
    validator = FormValidator(form)
    date_fields = {
        f.name
        for f in form.fields
        if f.type is FieldType.TEXT and (f.validation or "").startswith(("date", "datetime"))
    }
    extra_names = (
        set(keys) | set(optional_columns) | set(REDCAP_EXPORT_COLUMNS) | {f"{form.name}_complete"}
    )
    rows: list[RecordRow] = []
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
        for column, cell in zip(header, cells, strict=False):
            if column in extra_names:
                extras[column] = cell.strip()
            else:
                values[column] = (
                    _to_iso(cell.strip(), date_format) if column in date_fields else cell
                )
        for key in keys:
            if not extras.get(key):
                problems.append(
                    ErrorDetail(f"{label}:{number}:{key}", f"the key column {key!r} is empty")
                )
        result = validator.validate(values, now=now)
        problems.extend(e.as_detail(f"{label}:{number}") for e in result.errors)
        rows.append(RecordRow(number, result.values, extras, tuple(problems)))
    return RecordsFile(label, form.name, form.content_hash(), tuple(header), tuple(rows))


def _check_header(
    header: list[str],
    form: Form,
    label: str,
    keys: tuple[str, ...],
    optional: tuple[str, ...],
    missing_fields: MissingColumns,
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
    allowed.add(f"{form.name}_complete")
    details: list[ErrorDetail] = []
    seen: set[str] = set()
    for i, column in enumerate(header, start=1):
        where = f"{label}:1:{column or f'column {i}'}"
        if column in seen:
            details.append(ErrorDetail(where, f"column {column!r} appears twice", column))
            continue
        seen.add(column)
        if column not in allowed:
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
            details.append(
                ErrorDetail(
                    where,
                    f"unknown column {column!r}: not a field of form "
                    f"{form.name!r} nor a key column{hint}",
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
