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
- A form version that cannot be read is reported and its responses left
  out (:attr:`RefreshReport.skipped_forms`); the other forms are loaded.

These rows are the ``registry`` source's (:mod:`careloop.interop.sources`):
they go to its store, and the CDM tables are then assembled from every
source's store — FHIR imports and loaded OMOP files keep their rows, consent
now in force removes a patient's rows from every source, and
``observation_period`` spans each person's first to last event across
sources. Further registry tables (the CDS card events) can be refreshed in
the same run (``extra``).

Incremental: a content hash per person (``careloop_etl_state``) tells which
persons changed since the last refresh; only their rows are rebuilt from the
registry, the others are copied inside the warehouse. Atomic: all tables are
swapped in one transaction (:meth:`Warehouse.replacing`), so readers see the
old or the new warehouse, never half of it.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, cast

import ibis
import pandas as pd
from sqlalchemy import select

from careloop.capture.forms import Form
from careloop.capture.forms_store import form_of_version
from careloop.core.clock import utcnow
from careloop.core.errors import CareloopError, ErrorDetail
from careloop.core.settings import Settings
from careloop.interop.sources import (
    SOURCES,
    assemble,
    persons_of,
    source_summaries,
    store_name,
    store_schemas,
    store_tables,
    withhold_persons,
    withholding,
)
from careloop.interop.warehouse import TableSwap, Warehouse, quiet_engine_warnings
from careloop.store.capture_models import FormDefinition, FormVersion, Response
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.store.scoping import Scope, set_scope
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
# Standard OMOP concepts the refresh itself writes, registered when no vocabulary
# holds them yet: (name, domain, vocabulary, class, code).
STANDARD_CONCEPTS: dict[int, tuple[str, str, str, str, str]] = {
    8507: ("MALE", "Gender", "Gender", "Gender", "M"),
    8532: ("FEMALE", "Gender", "Gender", "Gender", "F"),
    9201: ("Inpatient Visit", "Visit", "Visit", "Visit", "IP"),
    9202: ("Outpatient Visit", "Visit", "Visit", "Visit", "OP"),
    5083: ("Telehealth", "Visit", "CMS Place of Service", "Visit", "02"),
    32817: ("EHR", "Type Concept", "Type Concept", "Type Concept", "OMOP4976890"),
    3036277: ("Body height", "Measurement", "LOINC", "Clinical Observation", "8302-2"),
    3025315: ("Body weight", "Measurement", "LOINC", "Clinical Observation", "29463-7"),
    3038553: (
        "Body mass index (BMI) [Ratio]",
        "Measurement",
        "LOINC",
        "Clinical Observation",
        "39156-5",
    ),
    8582: ("centimeter", "Unit", "UCUM", "Unit", "cm"),
    9529: ("kilogram", "Unit", "UCUM", "Unit", "kg"),
    9531: ("kilogram per square meter", "Unit", "UCUM", "Unit", "kg/m2"),
    756265: ("OMOP CDM Version 5.4.0", "Metadata", "CDM", "CDM", "CDM v5.4.0"),
}
"""Standard concepts the refresh writes rows with; added to ``concept`` when the OMOP
vocabularies are not loaded, so every concept id in the warehouse is known."""
UNIT_CONCEPTS: dict[str, int] = {
    code: cid
    for cid, (_name, domain, _v, _c, code) in STANDARD_CONCEPTS.items()
    if domain == "Unit"
}
"""UCUM unit of a form field → its standard OMOP unit concept (others: 0, with the unit
kept as ``unit_source_value``)."""
PERSONS_PER_BATCH = 2_000
PERSON_TABLES = (
    "person",
    "visit_occurrence",
    "measurement",
    "observation",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
)
"""The person-level tables the registry source writes (observation periods are derived
when the CDM tables are assembled)."""
REGISTRY_TABLES = (*PERSON_TABLES, "care_site", "cdm_source")
"""Every table of the registry source's store."""


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
    skipped_forms: tuple[ErrorDetail, ...] = ()
    """Form versions that could not be read: their responses were left out (and why)."""
    withheld: Mapping[str, int] = field(default_factory=dict)
    """Other sources (e.g. ``fhir``) → persons whose rows were removed there because their
    consent no longer allows improvement use."""
    sources: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Every source in the warehouse after the refresh → its rows per table."""
    extra: Mapping[str, int] = field(default_factory=dict)
    """Further registry tables refreshed in the same run (``extra``) → rows written."""
    extra_provenance_ids: Mapping[str, int] = field(default_factory=dict)
    """Their provenance records, by name."""


class RegistryTables(Protocol):
    """Further tables a refresh copies from the registry in the same transaction.

    The CDS card events are one (:mod:`careloop.practice.events`); each gets a
    provenance record of its own.
    """

    @property
    def name(self) -> str:
        """Short name, for reports and provenance."""

    @property
    def schemas(self) -> Mapping[str, ibis.Schema]:
        """Warehouse table → its schema."""

    def read(self, registry: Registry) -> Mapping[str, pd.DataFrame]:
        """The rows of each table, as the registry holds them now."""


def _local_id(*parts: str) -> int:
    # Stable across runs and machines: a CRC of the names, inside the local range.
    return LOCAL_CONCEPT_BASE + 1_000_000 + zlib.crc32("/".join(parts).encode()) % 900_000_000


@dataclass
class _Snapshot:
    """What the refresh reads from the registry, as data frames."""

    sites: pd.DataFrame
    """id, code, name."""
    patients: pd.DataFrame
    """Consented patients: id, site_id, pseudo_id, sex, birth_date."""
    excluded: int
    forms: dict[int, tuple[str, bool]]
    """form id → (name, patient-reported)."""
    versions: dict[int, Form]
    responses: pd.DataFrame
    """Complete responses of consented patients: id, patient_id, form_id, form_version_id,
    event_date, version (the values are read only for persons to rebuild)."""
    hashes: dict[int, str]
    """patient id → content hash (demographics and every response's id, version, date)."""
    values: dict[int, dict[str, Any]]
    """response id → values, for the responses of persons to rebuild."""
    skipped: list[ErrorDetail] = field(default_factory=list)
    """Form versions that could not be read (their responses are left out)."""


def _frame(session: Any, query: Any, columns: list[str]) -> pd.DataFrame:
    # Chunks of rows become frames one at a time: no list of a million Row objects.
    result = session.execute(query.execution_options(yield_per=50_000))
    parts = [pd.DataFrame(chunk, columns=columns) for chunk in result.partitions()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _read_registry(
    registry: Registry, principal: Principal, previous: Mapping[int, str]
) -> _Snapshot:
    """Read the registry in one transaction: hashes for everyone, values for changed persons."""
    with unit_of_work(registry, principal, "warehouse.manage") as work:
        session = work.session
        sites = _frame(
            session, select(Site.id, Site.code, Site.name).order_by(Site.id), ["id", "code", "name"]
        )
        everyone = _frame(
            session,
            select(
                Patient.id,
                Patient.site_id,
                Patient.pseudo_id,
                Patient.sex,
                Patient.birth_date,
                Patient.consent_state,
            ).order_by(Patient.id),
            ["id", "site_id", "pseudo_id", "sex", "birth_date", "consent_state"],
        )
        patients = everyone[everyone.consent_state == CONSENT_FOR_IMPROVEMENT].drop(
            columns="consent_state"
        )
        forms = {
            d.id: (d.name, d.patient_reported) for d in session.scalars(select(FormDefinition))
        }
        versions, skipped = _readable_versions(session, forms)
        responses = _frame(
            session,
            select(
                Response.id,
                Response.patient_id,
                Response.form_id,
                Response.form_version_id,
                Response.event_date,
                Response.version,
            )
            .where(Response.status == "complete")
            .order_by(Response.id),
            ["id", "patient_id", "form_id", "form_version_id", "event_date", "version"],
        )
        responses = responses[
            responses.patient_id.isin(patients.id) & responses.form_version_id.isin(versions)
        ].reset_index(drop=True)
        hashes = _person_hashes(patients, responses)
        work.audit(
            "export",
            "warehouse",
            details={
                "patients": len(patients),
                "excluded_by_consent": len(everyone) - len(patients),
            },
        )
    return _Snapshot(
        sites,
        patients,
        len(everyone) - len(patients),
        forms,
        versions,
        responses,
        hashes,
        {},
        skipped,
    )


def _readable_versions(
    session: Any, forms: Mapping[int, tuple[str, bool]]
) -> tuple[dict[int, Form], list[ErrorDetail]]:
    """Every stored form version that can be read, and what is wrong with the others.

    One unreadable version must not stop the refresh of every other form: its
    responses are left out (and, as its persons' hashes leave them out too,
    loaded by the first refresh after it becomes readable).
    """
    versions: dict[int, Form] = {}
    skipped: list[ErrorDetail] = []
    for row in session.scalars(select(FormVersion).order_by(FormVersion.id)):
        try:
            versions[row.id] = form_of_version(row)
        except CareloopError as exc:
            name = forms.get(row.form_id, (f"form {row.form_id}", False))[0]
            skipped.append(
                ErrorDetail(
                    f"{name} version {row.version[:12]}",
                    f"This form version could not be read, so its responses were left out "
                    f"of the warehouse: {exc.message} Import a corrected data dictionary "
                    "and refresh again.",
                )
            )
    return versions, skipped


def _read_values(registry: Registry, response_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The values of these responses, read in short transactions.

    A response edited after the snapshot's hashes were taken gives its newer
    values here; its person's hash then differs on the next refresh, which
    rebuilds them again — the warehouse converges, never mixes within a row.
    """
    values: dict[int, dict[str, Any]] = {}
    for start in range(0, len(response_ids), 20_000):
        chunk = response_ids[start : start + 20_000]
        with registry.transaction() as session:
            set_scope(session, Scope.everything())
            query = select(Response.id, Response.values).where(Response.id.in_(chunk))
            values.update((row[0], row[1]) for row in session.execute(query))
    return values


def _person_hashes(patients: pd.DataFrame, responses: pd.DataFrame) -> dict[int, str]:
    # A response's version changes with every edit, so id + version + form version + date
    # stand for its values. Each row hashes to 64 bits (pandas' stable hash); a person's
    # responses combine by sum and count, which any added, removed or edited response changes.
    row_hash = pd.util.hash_pandas_object(
        responses[["id", "version", "form_version_id"]].assign(
            event_date=responses.event_date.astype(str)
        ),
        index=False,
    )
    per_person = row_hash.groupby(responses.patient_id.to_numpy()).agg(["sum", "count"])
    joined = {
        int(pid): f"{int(total)}:{int(n)}"
        for pid, total, n in zip(
            per_person.index, per_person["sum"], per_person["count"], strict=True
        )
    }
    out: dict[int, str] = {}
    for pid, pseudo, site, sex, born in zip(
        patients.id.tolist(),
        patients.pseudo_id,
        patients.site_id,
        patients.sex,
        patients.birth_date,
        strict=True,
    ):
        text = f"{pseudo}|{site}|{sex}|{born}|{joined.get(pid, '')}"
        out[pid] = hashlib.sha256(text.encode()).hexdigest()
    return out


def _as_text(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


class _Builder:
    """Turns the registry rows of the persons to rebuild into OMOP rows, a form at a time."""

    def __init__(
        self, snapshot: _Snapshot, concept_map: ConceptMap, standard: Mapping[tuple[str, str], int]
    ):
        self.snapshot = snapshot
        self.map = concept_map
        self.standard = standard
        self.frames: dict[str, list[pd.DataFrame]] = {t: [] for t in PERSON_TABLES}
        self.local_names: dict[int, str] = dict(concept_map.names)
        self.local_domains: dict[int, str] = {}

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

    def _record_domain(self, concept: int, domain: str) -> int:
        if concept >= LOCAL_CONCEPT_BASE:
            self.local_domains[concept] = domain
        return concept

    def _choice_concept(self, form: Form, name: str, code: str) -> int:
        if (name, code) in self.map.choices:
            return self.map.choices[(name, code)]
        concept = _local_id(form.name, name, code)
        label = next((c.label for c in form.field(name).choices if c.code == code), code)
        self.local_names.setdefault(concept, f"{form.field(name).label or name}: {label}")
        return concept

    def build(self, persons: set[int]) -> dict[str, pd.DataFrame]:
        """OMOP rows of ``persons`` (whose response values are in the snapshot)."""
        self.frames = {t: [] for t in PERSON_TABLES}
        snap = self.snapshot
        people = snap.patients[snap.patients.id.isin(persons)]
        birth = pd.to_datetime(people.birth_date)
        self.frames["person"].append(
            pd.DataFrame(
                {
                    "person_id": people.id,
                    "gender_concept_id": people.sex.map(GENDER).fillna(0).astype("int64"),
                    "year_of_birth": birth.dt.year.fillna(0).astype("int64"),
                    "month_of_birth": birth.dt.month.astype("Int64"),
                    "race_concept_id": 0,
                    "ethnicity_concept_id": 0,
                    "care_site_id": people.site_id,
                    "person_source_value": people.pseudo_id,
                    "gender_source_value": people.sex,
                }
            )
        )
        responses = snap.responses[snap.responses.patient_id.isin(persons)]
        site_of = dict(zip(people.id, people.site_id, strict=True))
        for keys, group in responses.groupby(["form_id", "form_version_id"]):
            form_id, version_id = (int(k) for k in cast(tuple[int, int], keys))
            self._add_form(form_id, version_id, group, site_of)
        return {
            name: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            for name, frames in self.frames.items()
        }

    def _add_form(
        self, form_id: int, version_id: int, group: pd.DataFrame, site_of: Mapping[int, int]
    ) -> None:
        form_name, patient_reported = self.snapshot.forms[form_id]
        form = self.snapshot.versions[version_id]
        values = pd.DataFrame.from_records(
            [self.snapshot.values.get(int(i), {}) for i in group.id], index=group.index
        )
        visit: pd.Series | None = None
        if not patient_reported:
            visit = group.id
            kind = (
                values[self.map.visit_type_field].astype(str)
                if self.map.visit_type_field in values
                else pd.Series("", index=group.index)
            )
            self.frames["visit_occurrence"].append(
                pd.DataFrame(
                    {
                        "visit_occurrence_id": group.id,
                        "person_id": group.patient_id,
                        "visit_concept_id": kind.map(self.map.visit_types)
                        .fillna(OUTPATIENT_VISIT)
                        .astype("int64"),
                        "visit_start_date": group.event_date,
                        "visit_end_date": group.event_date,
                        "visit_type_concept_id": EHR_TYPE,
                        "care_site_id": group.patient_id.map(site_of),
                        "visit_source_value": form_name,
                    }
                )
            )
        for index, f in enumerate(form.fields):
            if not f.stores_value or f.name not in values:
                continue
            domain = self._domain(form, f.name)
            if domain is None:
                continue
            column = values[f.name]
            given = column.map(
                lambda v: v not in (None, "", []) and not (isinstance(v, float) and math.isnan(v))
            )
            if not given.any():
                continue
            rows, answers = group[given], column[given]
            visits = visit[given] if visit is not None else None
            if domain in ("Measurement", "Observation"):
                self._add_values(form, index, f.name, domain, rows, answers, visits)
            else:
                self._add_choices(form, index, f.name, domain, rows, answers, visits, values)

    def _add_values(
        self,
        form: Form,
        index: int,
        name: str,
        domain: str,
        rows: pd.DataFrame,
        answers: pd.Series,
        visits: pd.Series | None,
    ) -> None:
        prefix = "measurement" if domain == "Measurement" else "observation"
        text = answers.map(_as_text)
        number = pd.to_numeric(
            text.where(~answers.map(lambda v: isinstance(v, list))), errors="coerce"
        )
        frame = pd.DataFrame(
            {
                f"{prefix}_id": rows.id * 1000 + index,
                "person_id": rows.patient_id,
                f"{prefix}_concept_id": self._record_domain(
                    self._value_concept(form, name), domain
                ),
                f"{prefix}_date": rows.event_date,
                f"{prefix}_type_concept_id": EHR_TYPE,
                "value_as_number": number,
                "visit_occurrence_id": visits if visits is not None else pd.NA,
                f"{prefix}_source_value": name,
                "value_source_value": text.str[:50],
            }
        )
        if domain == "Observation":
            frame["value_as_string"] = text.str[:60]
        unit = form.field(name).unit
        if unit:
            frame["unit_concept_id"] = UNIT_CONCEPTS.get(unit, 0)
            frame["unit_source_value"] = unit
        self.frames[DOMAIN_TABLES[domain]].append(frame)

    def _add_choices(
        self,
        form: Form,
        index: int,
        name: str,
        domain: str,
        rows: pd.DataFrame,
        answers: pd.Series,
        visits: pd.Series | None,
        values: pd.DataFrame,
    ) -> None:
        codes = answers.map(lambda v: [str(c) for c in v] if isinstance(v, list) else [str(v)])
        long = pd.DataFrame({"row": rows.index, "code": codes}).explode("code")
        long["k"] = long.groupby(level=0).cumcount()
        long = long[~long.code.isin(["0", ""]) & long.code.notna()]
        if long.empty:
            return
        base = rows.loc[long.row]
        concept = long.code.map(
            {
                c: self._record_domain(self._choice_concept(form, name, c), domain)
                for c in long.code.unique()
            }
        )
        row_id = base.id.to_numpy() * 100_000 + index * 100 + long.k.to_numpy()
        visit_ids = visits.loc[long.row].to_numpy() if visits is not None else pd.NA
        source = name + "=" + long.code.astype(str)
        if domain == "Condition":
            frame = pd.DataFrame(
                {
                    "condition_occurrence_id": row_id,
                    "person_id": base.patient_id.to_numpy(),
                    "condition_concept_id": concept.to_numpy(),
                    "condition_start_date": base.event_date.to_numpy(),
                    "condition_type_concept_id": EHR_TYPE,
                    "visit_occurrence_id": visit_ids,
                    "condition_source_value": source.to_numpy(),
                }
            )
            self.frames["condition_occurrence"].append(frame)
        elif domain == "Drug":
            start_field = self.map.drug_start_fields.get(name)
            start = base.event_date
            if start_field and start_field in values:
                given = pd.to_datetime(values.loc[long.row, start_field], errors="coerce").dt.date
                start = given.where(given.notna(), base.event_date.to_numpy())
            frame = pd.DataFrame(
                {
                    "drug_exposure_id": row_id,
                    "person_id": base.patient_id.to_numpy(),
                    "drug_concept_id": concept.to_numpy(),
                    "drug_exposure_start_date": start.to_numpy(),
                    "drug_exposure_end_date": base.event_date.to_numpy(),
                    "drug_type_concept_id": EHR_TYPE,
                    "visit_occurrence_id": visit_ids,
                    "drug_source_value": source.to_numpy(),
                }
            )
            self.frames["drug_exposure"].append(frame)
        else:
            frame = pd.DataFrame(
                {
                    "procedure_occurrence_id": row_id,
                    "person_id": base.patient_id.to_numpy(),
                    "procedure_concept_id": concept.to_numpy(),
                    "procedure_date": base.event_date.to_numpy(),
                    "procedure_type_concept_id": EHR_TYPE,
                    "visit_occurrence_id": visit_ids,
                    "procedure_source_value": source.to_numpy(),
                }
            )
            self.frames["procedure_occurrence"].append(frame)


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
    # Without the registry's store (a new warehouse) every person is built afresh.
    if not warehouse.has_table(STATE_TABLE) or not warehouse.has_table(
        store_name("registry", "person")
    ):
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
    extra: Sequence[RegistryTables] = (),
) -> RefreshReport:
    """Bring the warehouse up to date with the registry (see the module docstring).

    Args:
        settings: The installation (which warehouse).
        registry: The registry to read.
        principal: Who refreshes; needs ``warehouse.manage``.
        concept_map: Concepts of the registry's forms (what its measures count).
        full: Rebuild every registry person, not only those that changed.
        extra: Further registry tables to copy in the same transaction.
    """
    started = utcnow()
    cmap = concept_map or ConceptMap()
    with Warehouse.from_settings(settings) as warehouse:
        warehouse.create_schema()
        warehouse.ensure_table(STATE_TABLE, STATE_SCHEMA)
        previous = {} if full else _previous_state(warehouse)
        snapshot = _read_registry(registry, principal, previous)
        hashes = snapshot.hashes
        changed = [pid for pid, h in hashes.items() if previous.get(pid) != h]
        removed = [pid for pid in previous if pid not in hashes]
        builder = _Builder(snapshot, cmap, _standard_concepts(warehouse, snapshot))
        stores = store_tables(warehouse)
        stores["registry"] = set(REGISTRY_TABLES)
        withheld = _withheld_elsewhere(warehouse, stores, set(hashes))
        public = sorted({t for tables in stores.values() for t in tables} | {"observation_period"})
        names = [
            *store_schemas("registry", REGISTRY_TABLES),
            *(
                n
                for source, (tables, _) in withheld.items()
                for n in withholding(warehouse, source, tables)
            ),
            *public,
            "concept",
            STATE_TABLE,
        ]
        with warehouse.replacing(names, schemas=store_schemas("registry", REGISTRY_TABLES)) as swap:
            _write_registry_store(
                warehouse, swap, registry, builder, changed, set(changed) | set(removed), previous
            )
            _write_concepts(warehouse, swap, builder)
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
            for source, (tables, gone) in withheld.items():
                withhold_persons(warehouse, swap, source, tables, gone)
            assemble(warehouse, swap, public, stores)
        rows = warehouse.row_counts(PUBLIC_PERSON_TABLES)
        summaries = {s.name: dict(s.rows) for s in source_summaries(warehouse)}
    target = settings.resolved_warehouse_url.split("://", 1)[0] + "://…"
    provenance: Provenance = record_provenance(
        registry,
        principal,
        activity="warehouse.refresh",
        target=target,
        started_at=started,
        parameters={"full": full, "concept_map_fields": sorted(cmap.fields)},
        inputs=[
            InputRecord(
                "registry snapshot",
                hashlib.sha256("".join(sorted(hashes.values())).encode()).hexdigest(),
                len(snapshot.responses),
            )
        ],
        outputs={
            "rows": rows,
            "rebuilt": len(changed),
            "removed": len(removed),
            "skipped_forms": [d.location for d in snapshot.skipped],
            "withheld_elsewhere": {k: len(v[1]) for k, v in withheld.items()},
            "sources": summaries,
        },
        rows_in=len(snapshot.patients) + snapshot.excluded,
        rows_out=rows.get("person", 0),
        rows_rejected=snapshot.excluded,
    )
    extra_runs = refresh_registry_tables(settings, registry, principal, extra, parent=provenance.id)
    return RefreshReport(
        persons=rows.get("person", 0),
        persons_rebuilt=len(changed),
        persons_removed=len(removed),
        patients_excluded=snapshot.excluded,
        rows=rows,
        provenance_id=provenance.id,
        skipped_forms=tuple(snapshot.skipped),
        withheld={k: len(v[1]) for k, v in withheld.items()},
        sources=summaries,
        extra={k: sum(r.rows.values()) for k, r in extra_runs.items()},
        extra_provenance_ids={k: r.provenance_id for k, r in extra_runs.items()},
    )


@dataclass(frozen=True)
class TablesRefresh:
    """What :func:`refresh_registry_tables` wrote for one :class:`RegistryTables`."""

    rows: Mapping[str, int]
    """Rows per table."""
    provenance_id: int
    """Its provenance record."""


def refresh_registry_tables(
    settings: Settings,
    registry: Registry,
    principal: Principal,
    sources: Sequence[RegistryTables],
    *,
    parent: int | None = None,
) -> dict[str, TablesRefresh]:
    """Copy further registry tables (e.g. the CDS card events) into the warehouse.

    Each source's tables are replaced in one transaction and get one provenance
    record (with ``parent``, the refresh it belongs to, when given).
    """
    principal.require("warehouse.manage")
    out: dict[str, TablesRefresh] = {}
    for source in sources:
        started = utcnow()
        frames = source.read(registry)
        with Warehouse.from_settings(settings) as warehouse:
            with warehouse.replacing(list(source.schemas), schemas=source.schemas) as swap:
                rows = {t: swap.insert(t, frames[t]) for t in source.schemas}
            target = warehouse.url
        total = sum(rows.values())
        provenance = record_provenance(
            registry,
            principal,
            activity="warehouse.refresh",
            target=target,
            started_at=started,
            parameters={"source": source.name},
            inputs=[InputRecord(f"registry {source.name}", _frames_hash(frames), total)],
            outputs={"rows": rows},
            rows_in=total,
            rows_out=total,
            parent_ids=[parent] if parent is not None else [],
        )
        out[source.name] = TablesRefresh(rows, provenance.id)
    return out


PUBLIC_PERSON_TABLES = ("person", "observation_period", *PERSON_TABLES[1:])
"""The CDM tables a refresh reports rows of."""


def _frames_hash(frames: Mapping[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in sorted(frames):
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(frames[name], index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _withheld_elsewhere(
    warehouse: Warehouse, stores: Mapping[str, set[str]], allowed: set[int]
) -> dict[str, tuple[list[str], list[int]]]:
    """Other sources of registry patients → (their tables, persons consent now keeps out)."""
    out: dict[str, tuple[list[str], list[int]]] = {}
    for name, kind in SOURCES.items():
        if name == "registry" or not kind.registry_patients or not stores[name]:
            continue
        gone = sorted(persons_of(warehouse, name) - allowed)
        if gone:
            out[name] = (sorted(stores[name]), gone)
    return out


def _write_registry_store(
    warehouse: Warehouse,
    swap: TableSwap,
    registry: Registry,
    builder: _Builder,
    changed: list[int],
    stale: set[int],
    previous: Mapping[int, str],
) -> None:
    """The registry source's rows: unchanged persons copied, changed persons rebuilt."""
    snapshot = builder.snapshot
    for name in PERSON_TABLES:
        if previous:
            kept = warehouse.table(store_name("registry", name))
            if stale:
                kept = kept.filter(~kept.person_id.isin(sorted(stale)))
            swap.insert(store_name("registry", name), kept)
    # Persons in batches: only one batch's response values are in memory at a time.
    ordered = sorted(changed)
    for start in range(0, len(ordered), PERSONS_PER_BATCH):
        batch = ordered[start : start + PERSONS_PER_BATCH]
        responses = snapshot.responses
        snapshot.values = _read_values(
            registry, responses.id[responses.patient_id.isin(batch)].tolist()
        )
        for name, frame in builder.build(set(batch)).items():
            if not frame.empty:
                swap.insert(store_name("registry", name), frame)
    snapshot.values = {}
    swap.insert(
        store_name("registry", "care_site"),
        pd.DataFrame(
            [
                {
                    "care_site_id": s.id,
                    "care_site_name": s.name,
                    "place_of_service_concept_id": 0,
                    "care_site_source_value": s.code,
                }
                for s in snapshot.sites.itertuples(index=False)
            ],
            # Named, so that an installation with no site yet still has the columns.
            columns=[
                "care_site_id",
                "care_site_name",
                "place_of_service_concept_id",
                "care_site_source_value",
            ],
        ),
    )
    today = utcnow().date()
    swap.insert(
        store_name("registry", "cdm_source"),
        pd.DataFrame(
            [
                {
                    "cdm_source_name": "careloop registry",
                    "cdm_source_abbreviation": "careloop",
                    "cdm_holder": "careloop",
                    "source_release_date": today,
                    "cdm_release_date": today,
                    "cdm_version": "5.4",
                    "cdm_version_concept_id": 756265,
                    "vocabulary_version": "careloop local",
                }
            ]
        ),
    )


def _write_concepts(warehouse: Warehouse, swap: TableSwap, builder: _Builder) -> None:
    """``concept``: the registry's local concepts replaced, standard ones it needs added."""
    local = {**builder.local_names}
    concept = warehouse.table("concept")
    with quiet_engine_warnings():
        before = concept.filter(concept.concept_id >= LOCAL_CONCEPT_BASE).execute()
    # Concepts of persons not rebuilt this time keep the domain they were given.
    domains = {
        **dict(zip(before.concept_id, before.domain_id, strict=True)),
        **builder.local_domains,
    }
    others = concept.filter(~concept.concept_id.isin(sorted(local))) if local else concept
    swap.insert("concept", others)
    with quiet_engine_warnings():
        known = set(
            concept.filter(concept.concept_id.isin(list(STANDARD_CONCEPTS)))
            .concept_id.execute()
            .tolist()
        )
    missing = {k: v for k, v in STANDARD_CONCEPTS.items() if k not in known}
    if missing:
        swap.insert(
            "concept",
            pd.DataFrame(
                [
                    {
                        "concept_id": cid,
                        "concept_name": name,
                        "domain_id": domain,
                        "vocabulary_id": vocabulary,
                        "concept_class_id": concept_class,
                        "standard_concept": "S",
                        "concept_code": code,
                        "valid_start_date": date(1970, 1, 1),
                        "valid_end_date": date(2099, 12, 31),
                    }
                    for cid, (name, domain, vocabulary, concept_class, code) in missing.items()
                ]
            ),
        )
    if local:
        swap.insert(
            "concept",
            pd.DataFrame(
                [
                    {
                        "concept_id": cid,
                        "concept_name": name[:255],
                        "domain_id": domains.get(cid, "Observation"),
                        "vocabulary_id": "careloop",
                        "concept_class_id": "Registry field",
                        # Custom concepts (ids of 2 billion and up) stand in the
                        # *_concept_id columns, so they are this warehouse's standard.
                        "standard_concept": "S",
                        "concept_code": str(cid),
                        "valid_start_date": date(2000, 1, 1),
                        "valid_end_date": date(2099, 12, 31),
                    }
                    for cid, name in sorted(local.items())
                ]
            ),
        )
