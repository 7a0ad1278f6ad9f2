"""Bulk writes of form responses, for the importers.

The records CSV import (:mod:`careloop.capture.records_io`) and
:func:`careloop.capture.entry.save_responses` (the FHIR import) write many
responses in one unit of work: new ones with multi-row INSERTs, changed ones
with one UPDATE per row that also checks the row's version, so a response
edited meanwhile is never overwritten. The caller has checked the scope and
the form's rules, and writes the audit entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.orm import Session

from careloop.core.errors import Conflict
from careloop.store.models.capture import Response

__all__ = ["ResponseChange", "insert_responses", "new_response_row", "update_responses"]

BATCH = 500
"""Rows per statement (per query of ids, per INSERT … RETURNING, per UPDATE batch)."""
BULK_BATCH = 5_000
"""Rows per multi-row INSERT when no ids are wanted."""


def _table() -> Table:
    return cast(Table, Response.__table__)


def new_response_row(
    *,
    site_id: int,
    patient_id: int,
    form_id: int,
    form_version_id: int,
    event_date: date,
    status: str,
    values: Mapping[str, Any],
    entered_by_user_id: int | None,
    patient_entered: bool,
    now: datetime,
    event_name: str = "",
    repeat_instance: int = 1,
) -> dict[str, Any]:
    """The column values of a new response (version 1) for :func:`insert_responses`."""
    return {
        "site_id": site_id,
        "patient_id": patient_id,
        "form_id": form_id,
        "form_version_id": form_version_id,
        "event_date": event_date,
        "event_name": event_name,
        "repeat_instance": repeat_instance,
        "status": status,
        "values": dict(values),
        "entered_by_user_id": entered_by_user_id,
        "patient_entered": patient_entered,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def insert_responses(
    session: Session, rows: Sequence[Mapping[str, Any]], *, ids: bool = True
) -> list[int]:
    """Insert the rows (from :func:`new_response_row`); their new ids in order, if ``ids``.

    Without ``ids`` the INSERTs skip RETURNING, which bulk loads of
    100,000 rows notice.
    """
    table = _table()
    if not ids:
        for start in range(0, len(rows), BULK_BATCH):
            session.execute(insert(table), list(rows[start : start + BULK_BATCH]))
        return []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    new_ids: list[int] = []
    for start in range(0, len(rows), BATCH):
        result = session.execute(statement, list(rows[start : start + BATCH]))
        new_ids.extend(int(r[0]) for r in result)
    return new_ids


@dataclass(frozen=True)
class ResponseChange:
    """New contents for a stored response."""

    response_id: int
    """The response."""
    version: int
    """Its version as read; the update applies only if it is still that."""
    values: Mapping[str, Any]
    """The new values."""
    status: str
    """The new status."""
    form_version_id: int
    """The form version the values were validated against."""
    patient_entered: bool
    """Whether the patient (or their carer) entered it."""


def update_responses(session: Session, changes: Sequence[ResponseChange], now: datetime) -> None:
    """Apply the changes, each bumping the response's version.

    Raises:
        Conflict: A response's version is no longer the one read (edited
            meanwhile); the caller's transaction should be rolled back.
    """
    if not changes:
        return
    table = _table()
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values(
            {
                "values": bindparam("b_values", type_=table.c["values"].type),
                "status": bindparam("b_status"),
                "form_version_id": bindparam("b_form_version_id"),
                "patient_entered": bindparam("b_patient_entered"),
                "version": bindparam("b_new_version"),
                "updated_at": bindparam("b_updated_at"),
            }
        )
    )
    params = [
        {
            "b_id": c.response_id,
            "b_version": c.version,
            "b_values": dict(c.values),
            "b_status": c.status,
            "b_form_version_id": c.form_version_id,
            "b_patient_entered": c.patient_entered,
            "b_new_version": c.version + 1,
            "b_updated_at": now,
        }
        for c in changes
    ]
    for start in range(0, len(params), BATCH):
        chunk = params[start : start + BATCH]
        result = session.connection().execute(statement, chunk)
        if result.rowcount != len(chunk):
            raise Conflict("A response changed while it was being imported; import again.")
