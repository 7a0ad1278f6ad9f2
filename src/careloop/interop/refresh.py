"""The registry → OMOP ETL: `careloop warehouse refresh`.

What goes in:

- Sites become ``care_site`` rows (``care_site_source_value`` = site code).
- Patients whose consent allows improvement use (``improvement_and_research``)
  become ``person`` rows keyed by their internal id, with the pseudonymous id
  as ``person_source_value`` and only the year and month of birth: no names,
  no local ids (MRNs), no exact dates of birth. Withdrawn and
  direct-care-only patients are not loaded, and withdrawal removes a patient
  on the next refresh.
- Each *complete* form response of a form that is not patient-reported is a
  ``visit_occurrence``; every answered field with an OMOP domain becomes a
  row of that domain (measurement, observation, condition_occurrence,
  drug_exposure, procedure_occurrence), by the concept its dictionary
  declares or the :class:`ConceptMap` gives. Local codes get careloop-local
  concept ids (≥ 2,000,000,000) registered in ``concept``.
- ``observation_period`` spans each person's first to last event.

Incremental: a content hash per person (``careloop_etl_state``) tells which
persons changed since the last refresh; only their rows are rebuilt from the
registry, the others are copied inside the warehouse. Atomic: all tables are
swapped in one transaction (:meth:`Warehouse.replacing`), so readers see the
old or the new warehouse, never half of it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ibis
import pandas as pd
from sqlalchemy import select

from careloop.capture.forms import FieldType, Form
from careloop.capture.forms_store import form_of_version
from careloop.core.clock import utcnow
from careloop.core.settings import Settings
from careloop.interop.warehouse import Warehouse, quiet_engine_warnings
from careloop.store.capture_models import FormDefinition, FormVersion, Response
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.trust.principal import Principal
from careloop.trust.provenance import InputRecord, Provenance, record_provenance
from careloop.trust.work import unit_of_work

LOCAL_CONCEPT_BASE = 2_000_000_000
STATE_TABLE = "careloop_etl_state"
STATE_SCHEMA = ibis.schema(
    {"person_id": "int64", "content_hash": "string", "refreshed_at": "timestamp"}
)
CONSENT_FOR_IMPROVEMENT = "improvement_and_research"
OUTPATIENT_VISIT = 9202
EHR_TYPE = 32817  # OMOP type concept "EHR"
GENDER = {"female": 8532, "male": 8507}
DOMAIN_TABLES = {
    "Measurement": "measurement",
    "Observation": "observation",
    "Condition": "condition_occurrence",
    "Drug": "drug_exposure",
    "Procedure": "procedure_occurrence",
}
PERSON_TABLES = (
    "person",
    "observation_period",
    "visit_occurrence",
    "measurement",
    "observation",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
)


@dataclass(frozen=True)
class ConceptMap:
    """Explicit concepts for a registry's forms (what its measures expect).

    Fields not listed fall back to the code their dictionary declares
    (standard concepts looked up in the warehouse's ``concept`` table) or to
    a careloop-local concept id derived from the form and field names.
    """

    fields: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    """Field name → (OMOP domain, concept id) for measurement/observation fields."""
    choices: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(field name, answer code) → concept id for condition/drug/procedure fields."""
    visit_types: Mapping[str, int] = field(default_factory=dict)
    """Answer code of ``visit_type_field`` → the visit's ``visit_concept_id``."""
    visit_type_field: str | None = None
    """The field saying what kind of visit it was."""
    drug_start_fields: Mapping[str, str] = field(default_factory=dict)
    """Drug field → the date field giving the exposure's start (else the visit date)."""
    names: Mapping[int, str] = field(default_factory=dict)
    """Names of local concepts, for the ``concept`` table."""


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did."""

    persons: int
    """Persons in the warehouse after the refresh."""
    persons_rebuilt: int
    """Persons whose rows were rebuilt from the registry (new or changed)."""
    persons_removed: int
    """Persons removed (consent withdrawn, or deleted from the registry)."""
    patients_excluded: int
    """Registry patients not loaded because their consent does not allow it."""
    rows: Mapping[str, int]
    """Rows per warehouse table after the refresh."""
    provenance_id: int
    """The provenance record of this refresh."""


def _local_id(*parts: str) -> int:
    # Stable across runs and machines: a CRC of the names, inside the local range.
    return LOCAL_CONCEPT_BASE + 1_000_000 + zlib.crc32("/".join(parts).encode()) % 900_000_000


@dataclass
class _Snapshot:
    sites: list[Site]
    patients: list[Patient]
    excluded: int
    forms: dict[int, tuple[str, bool]]
    versions: dict[int, Form]
    responses: dict[int, list[Response]]


def _read_registry(registry: Registry, principal: Principal) -> _Snapshot:
    with unit_of_work(registry, principal, "warehouse.manage") as work:
        session = work.session
        sites = list(session.scalars(select(Site).order_by(Site.id)))
        all_patients = list(session.scalars(select(Patient).order_by(Patient.id)))
        patients = [p for p in all_patients if p.consent_state == CONSENT_FOR_IMPROVEMENT]
        forms = {
            d.id: (d.name, d.patient_reported) for d in session.scalars(select(FormDefinition))
        }
        versions = {v.id: form_of_version(v) for v in session.scalars(select(FormVersion))}
        responses: dict[int, list[Response]] = {}
        for r in session.scalars(
            select(Response).where(Response.status == "complete").order_by(Response.id)
        ):
            responses.setdefault(r.patient_id, []).append(r)
        session.expunge_all()
        work.audit(
            "export",
            "warehouse",
            details={
                "patients": len(patients),
                "excluded_by_consent": len(all_patients) - len(patients),
            },
        )
    return _Snapshot(sites, patients, len(all_patients) - len(patients), forms, versions, responses)


def _person_hash(p: Patient, responses: Iterable[Response]) -> str:
    payload = {
        "p": [p.pseudo_id, p.site_id, p.sex, p.birth_date.isoformat() if p.birth_date else None],
        "r": [
            [r.id, r.version, r.form_version_id, r.event_date.isoformat(), r.values]
            for r in responses
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _number(value: object) -> float | None:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


class _Builder:
    """Turns a person's registry rows into OMOP rows."""

    def __init__(
        self, snapshot: _Snapshot, concept_map: ConceptMap, standard: Mapping[tuple[str, str], int]
    ):
        self.snapshot = snapshot
        self.map = concept_map
        self.standard = standard
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in PERSON_TABLES}
        self.local_names: dict[int, str] = dict(concept_map.names)

    def _domain(self, form: Form, name: str) -> str | None:
        if name in self.map.fields:
            return self.map.fields[name][0]
        return form.field(name).omop_domain

    def _value_concept(self, form: Form, name: str) -> int:
        """The concept of a measurement or observation field."""
        if name in self.map.fields:
            return self.map.fields[name][1]
        f = form.field(name)
        if f.code is not None and f.code.system in ("LOINC", "SNOMED"):
            concept = self.standard.get((f.code.system, f.code.code))
            if concept:
                return concept
        concept = _local_id(form.name, name)
        self.local_names.setdefault(concept, f.label or name)
        return concept

    def _choice_concept(self, form: Form, name: str, code: str) -> int:
        if (name, code) in self.map.choices:
            return self.map.choices[(name, code)]
        concept = _local_id(form.name, name, code)
        label = next((c.label for c in form.field(name).choices if c.code == code), code)
        self.local_names.setdefault(concept, f"{form.field(name).label or name}: {label}")
        return concept

    def add_person(self, p: Patient, responses: list[Response]) -> None:
        events: list[date] = []
        self.rows["person"].append(
            {
                "person_id": p.id,
                "gender_concept_id": GENDER.get(p.sex, 0),
                "year_of_birth": p.birth_date.year if p.birth_date else 0,
                "month_of_birth": p.birth_date.month if p.birth_date else None,
                "race_concept_id": 0,
                "ethnicity_concept_id": 0,
                "care_site_id": p.site_id,
                "person_source_value": p.pseudo_id,
                "gender_source_value": p.sex,
            }
        )
        for r in responses:
            form_name, patient_reported = self.snapshot.forms[r.form_id]
            form = self.snapshot.versions[r.form_version_id]
            events.append(r.event_date)
            visit_id: int | None = None
            if not patient_reported:
                visit_id = r.id
                kind = str(r.values.get(self.map.visit_type_field or "", ""))
                self.rows["visit_occurrence"].append(
                    {
                        "visit_occurrence_id": r.id,
                        "person_id": p.id,
                        "visit_concept_id": self.map.visit_types.get(kind, OUTPATIENT_VISIT),
                        "visit_start_date": r.event_date,
                        "visit_end_date": r.event_date,
                        "visit_type_concept_id": EHR_TYPE,
                        "care_site_id": p.site_id,
                        "visit_source_value": form_name,
                    }
                )
            for index, f in enumerate(form.fields):
                value = r.values.get(f.name)
                if value in (None, "", []) or not f.stores_value:
                    continue
                self._add_value(p, r, visit_id, form, index, f.name, f.type, value)
        if events:
            self.rows["observation_period"].append(
                {
                    "observation_period_id": p.id,
                    "person_id": p.id,
                    "observation_period_start_date": min(events),
                    "observation_period_end_date": max(events),
                    "period_type_concept_id": EHR_TYPE,
                }
            )

    def _add_value(
        self,
        p: Patient,
        r: Response,
        visit_id: int | None,
        form: Form,
        index: int,
        name: str,
        kind: FieldType,
        value: object,
    ) -> None:
        domain = self._domain(form, name)
        if domain is None:
            return
        row_id = r.id * 1000 + index
        if domain in ("Measurement", "Observation"):
            concept_id = self._value_concept(form, name)
            table = DOMAIN_TABLES[domain]
            prefix = "measurement" if domain == "Measurement" else "observation"
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            self.rows[table].append(
                {
                    f"{prefix}_id": row_id,
                    "person_id": p.id,
                    f"{prefix}_concept_id": concept_id,
                    f"{prefix}_date": r.event_date,
                    f"{prefix}_type_concept_id": EHR_TYPE,
                    "value_as_number": _number(value) if not isinstance(value, list) else None,
                    "visit_occurrence_id": visit_id,
                    f"{prefix}_source_value": name,
                    "value_source_value": text[:50],
                    **({"value_as_string": text[:60]} if domain == "Observation" else {}),
                }
            )
            return
        codes = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        for k, code in enumerate(codes):
            if code in ("0", ""):
                continue  # "None" answers record no exposure or condition
            concept = self._choice_concept(form, name, code)
            row = r.id * 100_000 + index * 100 + k
            if domain == "Condition":
                self.rows["condition_occurrence"].append(
                    {
                        "condition_occurrence_id": row,
                        "person_id": p.id,
                        "condition_concept_id": concept,
                        "condition_start_date": r.event_date,
                        "condition_type_concept_id": EHR_TYPE,
                        "visit_occurrence_id": visit_id,
                        "condition_source_value": f"{name}={code}",
                    }
                )
            elif domain == "Drug":
                start_field = self.map.drug_start_fields.get(name)
                start = r.values.get(start_field) if start_field else None
                try:
                    start_date = date.fromisoformat(str(start)) if start else r.event_date
                except ValueError:
                    start_date = r.event_date
                self.rows["drug_exposure"].append(
                    {
                        "drug_exposure_id": row,
                        "person_id": p.id,
                        "drug_concept_id": concept,
                        "drug_exposure_start_date": start_date,
                        "drug_exposure_end_date": r.event_date,
                        "drug_type_concept_id": EHR_TYPE,
                        "visit_occurrence_id": visit_id,
                        "drug_source_value": f"{name}={code}",
                    }
                )
            else:
                self.rows["procedure_occurrence"].append(
                    {
                        "procedure_occurrence_id": row,
                        "person_id": p.id,
                        "procedure_concept_id": concept,
                        "procedure_date": r.event_date,
                        "procedure_type_concept_id": EHR_TYPE,
                        "visit_occurrence_id": visit_id,
                        "procedure_source_value": f"{name}={code}",
                    }
                )


def _standard_concepts(warehouse: Warehouse, snapshot: _Snapshot) -> dict[tuple[str, str], int]:
    wanted = {
        (f.code.system, f.code.code)
        for form in snapshot.versions.values()
        for f in form.fields
        if f.code is not None and f.code.system in ("LOINC", "SNOMED")
    }
    if not wanted or not warehouse.has_table("concept"):
        return {}
    concept = warehouse.table("concept")
    vocab = {"LOINC": "LOINC", "SNOMED": "SNOMED"}
    expr = concept.filter(
        concept.vocabulary_id.isin(list(vocab.values()))
        & concept.concept_code.isin([code for _s, code in wanted])
    ).select("vocabulary_id", "concept_code", "concept_id")
    with quiet_engine_warnings():
        found = expr.execute()
    return {
        (str(row.vocabulary_id), str(row.concept_code)): int(row.concept_id)
        for row in found.itertuples()
        if (str(row.vocabulary_id), str(row.concept_code)) in wanted
    }


def _previous_state(warehouse: Warehouse) -> dict[int, str]:
    if not warehouse.has_table(STATE_TABLE):
        return {}
    with quiet_engine_warnings():
        frame = warehouse.table(STATE_TABLE).execute()
    return {int(r.person_id): str(r.content_hash) for r in frame.itertuples()}


def refresh_warehouse(
    settings: Settings,
    registry: Registry,
    principal: Principal,
    *,
    concept_map: ConceptMap | None = None,
    full: bool = False,
) -> RefreshReport:
    """Bring the warehouse up to date with the registry (see the module docstring)."""
    started = utcnow()
    cmap = concept_map or ConceptMap()
    snapshot = _read_registry(registry, principal)
    hashes = {p.id: _person_hash(p, snapshot.responses.get(p.id, [])) for p in snapshot.patients}
    with Warehouse.from_settings(settings) as warehouse:
        warehouse.create_schema()
        warehouse.ensure_table(STATE_TABLE, STATE_SCHEMA)
        previous = {} if full else _previous_state(warehouse)
        changed = [pid for pid, h in hashes.items() if previous.get(pid) != h]
        removed = [pid for pid in previous if pid not in hashes]
        stale = set(changed) | set(removed)
        builder = _Builder(snapshot, cmap, _standard_concepts(warehouse, snapshot))
        for p in snapshot.patients:
            if p.id in stale:
                builder.add_person(p, snapshot.responses.get(p.id, []))
        local = {**builder.local_names}
        # Local concepts used by unchanged persons stay registered: keep every earlier one too.
        tables = [*PERSON_TABLES, "care_site", "concept", "cdm_source", STATE_TABLE]
        with warehouse.replacing(tables) as swap:
            for name in PERSON_TABLES:
                if not full and previous:
                    kept = warehouse.table(name)
                    if stale:
                        kept = kept.filter(~kept.person_id.isin(sorted(stale)))
                    swap.insert(name, kept)
                new = pd.DataFrame(builder.rows[name])
                if not new.empty:
                    swap.insert(name, new)
            swap.insert(
                "care_site",
                pd.DataFrame(
                    [
                        {
                            "care_site_id": s.id,
                            "care_site_name": s.name,
                            "place_of_service_concept_id": 0,
                            "care_site_source_value": s.code,
                        }
                        for s in snapshot.sites
                    ]
                ),
            )
            concept = warehouse.table("concept")
            others = concept.filter(~concept.concept_id.isin(sorted(local))) if local else concept
            swap.insert("concept", others)
            if local:
                swap.insert(
                    "concept",
                    pd.DataFrame(
                        [
                            {
                                "concept_id": cid,
                                "concept_name": name[:255],
                                "domain_id": "Observation",
                                "vocabulary_id": "careloop",
                                "concept_class_id": "Registry field",
                                "concept_code": str(cid),
                                "valid_start_date": date(2000, 1, 1),
                                "valid_end_date": date(2099, 12, 31),
                            }
                            for cid, name in sorted(local.items())
                        ]
                    ),
                )
            swap.insert(
                "cdm_source",
                pd.DataFrame(
                    [
                        {
                            "cdm_source_name": "careloop registry",
                            "cdm_source_abbreviation": "careloop",
                            "cdm_holder": "careloop",
                            "source_release_date": started.date(),
                            "cdm_release_date": started.date(),
                            "cdm_version": "5.4",
                            "cdm_version_concept_id": 756265,
                            "vocabulary_version": "careloop local",
                        }
                    ]
                ),
            )
            swap.insert(
                STATE_TABLE,
                pd.DataFrame(
                    [
                        {"person_id": pid, "content_hash": h, "refreshed_at": started}
                        for pid, h in hashes.items()
                    ],
                    columns=["person_id", "content_hash", "refreshed_at"],
                ),
            )
        rows = warehouse.row_counts(PERSON_TABLES)
    provenance: Provenance = record_provenance(
        registry,
        principal,
        activity="warehouse.refresh",
        target=settings.resolved_warehouse_url.split("://", 1)[0] + "://…",
        started_at=started,
        parameters={"full": full, "concept_map_fields": sorted(cmap.fields)},
        inputs=[
            InputRecord(
                "registry snapshot",
                hashlib.sha256("".join(sorted(hashes.values())).encode()).hexdigest(),
                sum(len(v) for v in snapshot.responses.values()),
            )
        ],
        outputs={"rows": rows, "rebuilt": len(changed), "removed": len(removed)},
        rows_in=len(snapshot.patients) + snapshot.excluded,
        rows_out=rows.get("person", 0),
        rows_rejected=snapshot.excluded,
    )
    return RefreshReport(
        persons=rows.get("person", 0),
        persons_rebuilt=len(changed),
        persons_removed=len(removed),
        patients_excluded=snapshot.excluded,
        rows=rows,
        provenance_id=provenance.id,
    )
