"""Helpers for the registry-side capture tests: principals, example forms, valid values."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, text

from careloop.capture import example_file, example_forms
from careloop.capture.forms import FieldType, checkbox_column
from careloop.capture.forms_store import import_forms
from careloop.store.models import AuditEntry
from careloop.trust.identity import resolve_token
from careloop.trust.principal import Principal, RequestContext
from tests.foundation import Installation

VISIT = "ibd_visit"
PROM = "ibd_symptoms_prom"


def principal(inst: Installation, key: str, request_id: str | None = None) -> Principal:
    """The principal behind a test user's token (e.g. ``clinician@A``)."""
    return resolve_token(inst.registry, inst.tokens[key], RequestContext(request_id=request_id))


def import_examples(inst: Installation) -> None:
    """Import the paediatric IBD example forms (idempotent)."""
    import_forms(inst.registry, inst.operator, example_file("yaml"), fmt="yaml", name="ibd.yaml")


def audit_seq(inst: Installation) -> int:
    """The audit chain's last sequence number."""
    with inst.registry.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(AuditEntry.seq), 0))).scalar_one())


def audit_since(inst: Installation, seq: int) -> list[Any]:
    """Entries appended after ``seq``."""
    with inst.registry.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT seq, action, category, outcome, patient_id, reason, details, "
                    "site_code, user_email FROM audit_entry WHERE seq > :s ORDER BY seq"
                ),
                {"s": seq},
            )
        )


def crohns_visit(day: str = "2024-03-01", **changes: Any) -> dict[str, Any]:
    """A complete, valid visit of a child with Crohn's disease."""
    values: dict[str, Any] = {
        "visit_date": day,
        "visit_type": "1",
        "disease_type": "1",
        "pga": "2",
        "height_cm": "131.5",
        "weight_kg": "28.4",
        "shpcdai_pain": "1",
        "shpcdai_stools": "0",
        "shpcdai_wellbeing": "0",
        "shpcdai_weight": "1",
        "shpcdai_perirectal": "0",
        "shpcdai_eim": "0",
        "steroid_use": "0",
        "nutrition": "1",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def prom_answers(day: str = "2024-03-02", **changes: Any) -> dict[str, Any]:
    """A complete, valid symptoms PROM filled by the patient."""
    values: dict[str, Any] = {
        "prom_date": day,
        "completed_by": "1",
        "tummy_pain": "1",
        "stools_worst_day": "3",
        "blood_in_stool": "0",
        "urgency": "1",
        "tiredness": "1",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def records_csv(form_name: str, rows: list[dict[str, Any]]) -> bytes:
    """A CSV in REDCap's export shape (every field's column) for ``rows`` of key and field values.

    A checkbox value is a list of codes; a ``<form>_complete`` key is written as given.
    """
    form = example_forms().form(form_name)
    columns: list[tuple[str, str, str | None]] = []
    for f in form.fields:
        if f.type is FieldType.DESCRIPTIVE:
            continue
        if f.type is FieldType.CHECKBOX:
            columns.extend((checkbox_column(f.name, c.code), f.name, c.code) for c in f.choices)
        else:
            columns.append((f.name, f.name, None))
    complete = f"{form_name}_complete"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["record_id", "event_date", *(c for c, _, _ in columns), complete])
    for row in rows:
        cells = [row["record_id"], row["event_date"]]
        for _column, name, code in columns:
            value = row.get(name)
            if code is not None:
                cells.append("1" if value and code in value else "0")
            else:
                cells.append("" if value is None else str(value))
        cells.append(row.get(complete, "2"))
        writer.writerow(cells)
    return out.getvalue().encode("utf-8")


def visit_rows(n: int, *, prefix: str, patients: int = 20) -> list[dict[str, Any]]:
    """``n`` valid visit rows for ``patients`` patients with local ids ``<prefix>-<k>``."""
    rows = []
    for i in range(n):
        day = date(2023, 1, 1) + timedelta(days=i // patients)
        rows.append(
            {
                "record_id": f"{prefix}-{i % patients}",
                "event_date": day.isoformat(),
                **crohns_visit(day.isoformat(), weight_kg=f"{20 + (i % 30)}.5"),
                "medications": ["1", "3"] if i % 3 == 0 else [],
            }
        )
    return rows
