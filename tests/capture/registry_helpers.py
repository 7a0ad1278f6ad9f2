"""Helpers for the registry-side capture tests: principals, example forms, valid values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from careloop.capture import example_file
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
