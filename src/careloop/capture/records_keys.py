"""Whose response a row of a records CSV is, and for which date, event and instance.

A REDCap record export names the patient in its first column, the project's
record id field (``record_id`` unless the project renamed it, e.g.
``study_id``), and has no event date of its own. :func:`plan_keys` decides
from the header and the options where each part of a response's key comes
from, and refuses, before any row is read, a file that gives no event date
— saying every way to give one:

1. ``--event-date-field FIELD``: a date or datetime field of the form;
2. an ``event_date`` column (careloop's own export);
3. the form's field whose Field Annotation holds ``@CARELOOP-EVENT-DATE``;
4. ``--event-date YYYY-MM-DD``: one date for the rows that have none of
   their own (a form with no date field, such as a baseline questionnaire).

Longitudinal and repeating projects add ``redcap_event_name`` and
``redcap_repeat_instance``; :func:`row_key` reads them (defaults ``''`` and
``1``) so that events sharing a date and instances of one day stay apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from careloop.capture.forms import FieldType, Form, checkbox_column
from careloop.capture.records_csv import RecordRow
from careloop.capture.redcap import EVENT_DATE_TAG, event_date_field
from careloop.core.errors import ErrorDetail, ValidationFailed
from careloop.core.plain_text import control_characters, shown, text_problem

__all__ = [
    "EVENT_DATE_COLUMN",
    "RECORD_ID_COLUMN",
    "EventDateSource",
    "KeyPlan",
    "RowKey",
    "other_form_columns",
    "parse_event_date",
    "plan_keys",
    "row_key",
]

RECORD_ID_COLUMN = "record_id"
"""REDCap's default name of the record id field; careloop's export writes it."""
EVENT_DATE_COLUMN = "event_date"
"""careloop's own event date column (``YYYY-MM-DD``)."""
EVENT_NAME_MAX = 100
"""Longest event name stored (REDCap's unique event names are far shorter)."""


def parse_event_date(text: str, date_format: Literal["ymd", "mdy", "dmy"]) -> date | None:
    """A date written ``YYYY-MM-DD`` (or ``MM/DD/YYYY``, ``DD/MM/YYYY``); None if it is not one.

    A datetime's time is ignored: the event date is the day.
    """
    value = text.strip()
    if date_format != "ymd" and "/" in value:
        parts = value.split(" ")[0].split("/")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            a, b, year = parts
            month, day = (a, b) if date_format == "mdy" else (b, a)
            value = f"{year}-{int(month):02d}-{int(day):02d}"
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class EventDateSource:
    """Where each row's event date comes from."""

    kind: Literal["field", "column", "tag", "fixed"]
    """``field`` (``--event-date-field``), ``column`` (``event_date``), ``tag``
    (the field annotated ``@CARELOOP-EVENT-DATE``) or ``fixed`` (``--event-date``)."""
    field: str | None
    """The field or column read (None for ``fixed``)."""
    fallback: date | None
    """The date of rows whose field is empty (``--event-date``), if given."""

    def describe(self) -> str:
        """One sentence for the import report."""
        if self.kind == "fixed":
            assert self.fallback is not None
            return f"Event date {self.fallback.isoformat()} (--event-date) for every row."
        if self.kind == "column":
            return f"Event dates from the {EVENT_DATE_COLUMN} column."
        how = "--event-date-field" if self.kind == "field" else EVENT_DATE_TAG
        return f"Event dates from field {self.field} ({how})."


@dataclass(frozen=True)
class KeyPlan:
    """Where the parts of each row's key come from."""

    record_id: str
    """The column holding the patient's record id (their local id at the site)."""
    event_date: EventDateSource
    """Where the event date comes from."""


@dataclass(frozen=True)
class RowKey:
    """A row's key: with the form, it names one response."""

    local_id: str
    """The patient's local id at the site (REDCap's record id)."""
    event_date: date
    """The event (visit) date."""
    event_name: str
    """REDCap's unique event name; ``''`` when the project is not longitudinal."""
    repeat_instance: int
    """The instance of a repeating instrument or event; 1 otherwise."""


def other_form_columns(definitions: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Column → form for the export columns of stored forms (their native definitions).

    Read from the stored definition rather than a built :class:`Form`, so a
    form that does not load (e.g. logic naming a field since removed) still
    has its columns recognised.
    """
    out: dict[str, str] = {}
    for definition in definitions:
        name = str(definition.get("name", ""))
        for f in definition.get("fields") or ():
            field_name = str(f.get("name", ""))
            kind = f.get("type")
            if kind == FieldType.DESCRIPTIVE.value:
                continue
            if kind == FieldType.CHECKBOX.value:
                for code in f.get("choices") or {}:
                    out[checkbox_column(field_name, str(code))] = name
            else:
                out[field_name] = name
        out[f"{name}_complete"] = name
        out[f"{name}_timestamp"] = name
    return out


def _date_fields(form: Form) -> list[str]:
    return [
        f.name
        for f in form.fields
        if f.type is FieldType.TEXT and (f.validation or "").startswith("date")
    ]


def plan_keys(
    header: Sequence[str],
    form: Form,
    *,
    label: str,
    record_id_fields: Iterable[str] = (),
    record_id_field: str | None = None,
    event_date_field_name: str | None = None,
    event_date: date | None = None,
) -> KeyPlan:
    """Decide the record id column and the event date source for a file's header.

    Args:
        header: The file's header.
        form: The form imported into.
        label: The file's name, for messages.
        record_id_fields: Fields that may be a REDCap project's record id: the
            first field of each stored form. An export without ``record_id``
            has its record id field as first column.
        record_id_field: The record id column, when the caller names it.
        event_date_field_name: ``--event-date-field``.
        event_date: ``--event-date``.

    Raises:
        ValidationFailed: No record id column, a wrong ``--event-date-field``,
            or no event date at all (the message lists the ways to give one).
    """
    record_id = _record_id_column(header, label, record_id_fields, record_id_field)
    dates = _event_date_source(header, form, label, event_date_field_name, event_date)
    return KeyPlan(record_id, dates)


def _record_id_column(
    header: Sequence[str],
    label: str,
    record_id_fields: Iterable[str],
    record_id_field: str | None,
) -> str:
    """The column holding the record id: the one named, ``record_id``, or the project's."""
    where = f"{label}:1"
    columns = set(header)
    if record_id_field is not None:
        if record_id_field not in columns:
            raise ValidationFailed(
                f"{label} has no column {record_id_field!r} (--record-id-field).",
                details=[
                    ErrorDetail(
                        where,
                        f"the first columns are {', '.join(header[:3])}; name the column "
                        "holding the record id",
                        record_id_field,
                    )
                ],
            )
        record_id = record_id_field
    elif RECORD_ID_COLUMN in columns:
        record_id = RECORD_ID_COLUMN
    elif header and header[0] in set(record_id_fields):
        record_id = header[0]
    else:
        first = header[0] if header else ""
        raise ValidationFailed(
            f"{label} has no record id column; nothing was read.",
            details=[
                ErrorDetail(
                    where,
                    "expected a record_id column, or the REDCap project's record id field "
                    "(the first field of its first form) as the first column, as REDCap "
                    f"exports it; the first column is {first!r}. Name the column with "
                    "--record-id-field, or import the project's data dictionary first",
                    first,
                )
            ],
        )
    return record_id


def _event_date_source(
    header: Sequence[str],
    form: Form,
    label: str,
    event_date_field_name: str | None,
    event_date: date | None,
) -> EventDateSource:
    """Where rows' event dates come from: the field named, event_date, the tag, the date."""
    where = f"{label}:1"
    columns = set(header)
    dates = _date_fields(form)
    if event_date_field_name is not None:
        if event_date_field_name not in dates:
            what = (
                "is not a date or datetime field"
                if event_date_field_name in form.field_names
                else "is not a field"
            )
            raise ValidationFailed(
                f"--event-date-field {event_date_field_name!r} {what} of form {form.name!r}.",
                details=[
                    ErrorDetail(
                        "--event-date-field",
                        "name a text field validated as a date or datetime; the form's are: "
                        + (", ".join(dates) or "none (use --event-date YYYY-MM-DD)"),
                        event_date_field_name,
                    )
                ],
            )
        if event_date_field_name not in columns and event_date is None:
            raise ValidationFailed(
                f"{label} has no column for the event date field {event_date_field_name!r}.",
                details=[
                    ErrorDetail(
                        where,
                        "export the field with the others, or give --event-date YYYY-MM-DD",
                        event_date_field_name,
                    )
                ],
            )
        if event_date_field_name in columns:
            return EventDateSource("field", event_date_field_name, event_date)
        return EventDateSource("fixed", None, event_date)
    if EVENT_DATE_COLUMN in columns:
        return EventDateSource("column", EVENT_DATE_COLUMN, event_date)
    tagged = event_date_field(form)
    if tagged is not None and tagged in columns:
        return EventDateSource("tag", tagged, event_date)
    if event_date is not None:
        return EventDateSource("fixed", None, event_date)
    found = (
        f"its field {tagged!r} carries {EVENT_DATE_TAG} but the file has no column for it"
        if tagged is not None
        else f"no field of form {form.name!r} carries {EVENT_DATE_TAG}"
    )
    raise ValidationFailed(
        f"{label} gives no event date for form {form.name!r}; nothing was read.",
        details=[
            ErrorDetail(
                where,
                f"the file has no {EVENT_DATE_COLUMN} column and {found}. Give one of: "
                "--event-date-field FIELD, naming a date field of the form "
                f"({', '.join(dates) or 'it has none'}); an {EVENT_DATE_COLUMN} column "
                f"(YYYY-MM-DD); the action tag {EVENT_DATE_TAG} in the Field Annotation of "
                "that date field in the data dictionary (then re-import the dictionary); "
                "or --event-date YYYY-MM-DD, one date for every row",
            )
        ],
    )


def row_key(
    record: RecordRow, plan: KeyPlan, date_format: Literal["ymd", "mdy", "dmy"]
) -> tuple[RowKey | None, list[ErrorDetail], bool]:
    """The row's key, its key problems (located at the column) and whether it took the fallback.

    The key is None when a part is missing or wrong; the problems say which.
    """
    problems: list[ErrorDetail] = []
    local_id = record.extras.get(plan.record_id, "").strip()
    wrong_id = text_problem(local_id, what="a record id (local id)", max_length=64, required=False)
    if wrong_id is not None:
        problems.append(ErrorDetail(plan.record_id, wrong_id, shown(local_id)))
    source = plan.event_date
    day: date | None = None
    empty = False
    if source.kind == "column":
        text = record.extras.get(EVENT_DATE_COLUMN, "").strip()
        day = parse_event_date(text, date_format)
        empty = not text
        if day is None and text:
            problems.append(
                ErrorDetail(EVENT_DATE_COLUMN, "the event date must be a date, YYYY-MM-DD", text)
            )
    elif source.kind in ("field", "tag"):
        assert source.field is not None
        value = record.values.get(source.field)
        if isinstance(value, str) and value:
            day = parse_event_date(value, "ymd")
        # An empty cell has no date; a wrong one is already a problem of the field.
        empty = not record.cells.get(source.field, "").strip()
        if empty and source.fallback is None:
            problems.append(
                ErrorDetail(
                    source.field,
                    f"the event date field {source.field} is empty on this row; fill it, or "
                    "give --event-date YYYY-MM-DD for rows without one",
                )
            )
    fallback_used = False
    if source.kind == "fixed":
        day = source.fallback
    elif empty and source.fallback is not None:
        day, fallback_used = source.fallback, True
    event_name = record.extras.get("redcap_event_name", "").strip()
    if control_characters(event_name):
        problems.append(
            ErrorDetail(
                "redcap_event_name",
                "an event name must not contain control characters",
                shown(event_name),
            )
        )
    elif len(event_name) > EVENT_NAME_MAX:
        problems.append(
            ErrorDetail(
                "redcap_event_name",
                f"an event name is at most {EVENT_NAME_MAX} characters",
                event_name,
            )
        )
    text = record.extras.get("redcap_repeat_instance", "").strip()
    instance = 1
    if text:
        try:
            instance = int(text)
        except ValueError:
            instance = 0
        if instance < 1:
            problems.append(
                ErrorDetail(
                    "redcap_repeat_instance",
                    "the repeat instance is a whole number from 1 (or empty)",
                    text,
                )
            )
    if problems or day is None or not local_id:
        return None, problems, False
    return RowKey(local_id, day, event_name, instance), problems, fallback_used
