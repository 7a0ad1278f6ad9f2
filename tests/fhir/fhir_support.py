"""Helpers of the FHIR tests: small installations, warehouse and registry peeks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from careloop.store.models import Patient, Site
from careloop.store.scoping import Scope, set_scope
from careloop.trust.principal import Grant, Principal
from careloop.warehouse import Warehouse
from tests.foundation import Installation, build_installation, make_settings

FHIR_SMALL = Path(__file__).resolve().parents[1] / "data" / "fhir_small"
BOB_BUNDLE = FHIR_SMALL / "synthea_bob_trimmed.json"
HANDWRITTEN = FHIR_SMALL / "handwritten.ndjson"
CLINICAL = (
    "visit_occurrence",
    "condition_occurrence",
    "measurement",
    "observation",
    "drug_exposure",
    "procedure_occurrence",
)


@pytest.fixture(name="fhir_install")
def fhir_install_fixture(database_url: str | None, tmp_path: Path) -> Iterator[Installation]:
    """Sites A and B, no patients, a DuckDB warehouse in the data directory."""
    inst = build_installation(make_settings(tmp_path, database_url), with_users=False)
    try:
        yield inst
    finally:
        inst.registry.close()


@pytest.fixture(name="sqlite_install")
def sqlite_install_fixture(tmp_path: Path) -> Iterator[Installation]:
    """As ``fhir_install`` on SQLite only, for tests whose subject is not the registry engine."""
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    try:
        yield inst
    finally:
        inst.registry.close()


def site_principal(inst: Installation, role: str, code: str) -> Principal:
    """A principal holding ``role`` at site ``code`` (no login needed)."""
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        site_id = session.scalar(select(Site.id).where(Site.code == code))
    return Principal(
        user_id=None,
        email=f"{role}.{code}@example.org",
        grants=(
            Grant(role, site_id, code),  # type: ignore[arg-type]
        ),
    )


def registry_patients(inst: Installation) -> list[Patient]:
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        rows = list(session.scalars(select(Patient).order_by(Patient.local_id)))
        session.expunge_all()
        return rows


def patient_count(inst: Installation) -> int:
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        return int(session.scalar(select(func.count()).select_from(Patient)) or 0)


def warehouse_counts(inst: Installation) -> dict[str, int]:
    path = inst.settings.data_dir / "warehouse.duckdb"
    if not path.exists():
        return {}
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        return wh.row_counts(["person", *CLINICAL])


def warehouse_frame(inst: Installation, table: str) -> pd.DataFrame:
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        frame: pd.DataFrame = wh.table(table).execute()
        return frame


def write_ndjson(path: Path, resources: list[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def bundle(resources: list[Mapping[str, Any]], kind: str = "collection") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"fullUrl": f"urn:uuid:{r.get('id')}", "resource": r} for r in resources],
    }


def patient(pid: str, mrn: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "value": mrn,
            }
        ],
        "name": [{"family": "Testperson", "given": ["Sam"]}],
        "gender": "female",
        "birthDate": "1980-02-03",
        **extra,
    }


def observation(oid: str, pid: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2022-01-10",
        "valueQuantity": {"value": 70.5, "unit": "kg", "code": "kg"},
        **extra,
    }
