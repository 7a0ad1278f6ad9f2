"""The registry's form answers as OMOP rows: what a refresh reads and the rows it builds.

:func:`read_registry` takes one consistent snapshot of the registry (sites,
consented patients, complete responses, a content hash per person, the form
versions that can be read); :class:`RowBuilder` turns the responses of the
persons to rebuild into CDM rows, a form at a time, with the concepts a
:class:`ConceptMap` or the dictionary gives. :mod:`careloop.warehouse.refresh`
writes them to the registry source's store and assembles the warehouse.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd
from sqlalchemy import select

from careloop.capture.forms import Form
from careloop.capture.forms_store import form_of_version
from careloop.core.content import LOCAL_CONCEPT_BASE, ConceptMap
from careloop.core.errors import CareloopError, ErrorDetail
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.store.models.capture import FormDefinition, FormVersion, Response
from careloop.store.scoping import Scope, set_scope
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings

CONSENT_FOR_IMPROVEMENT = "quality_improvement"
"""The consent purpose a patient needs to be in the warehouse."""
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


def _local_id(*parts: str) -> int:
    # Stable across runs and machines: a CRC of the names, inside the local range.
    return LOCAL_CONCEPT_BASE + 1_000_000 + zlib.crc32("/".join(parts).encode()) % 900_000_000


@dataclass
class RegistrySnapshot:
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


def read_registry(
    registry: Registry, principal: Principal, previous: Mapping[int, str]
) -> RegistrySnapshot:
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
                getattr(Patient, f"consent_{CONSENT_FOR_IMPROVEMENT}"),
            ).order_by(Patient.id),
            ["id", "site_id", "pseudo_id", "sex", "birth_date", "consents"],
        )
        patients = everyone[everyone.consents.astype(bool)].drop(columns="consents")
        forms = {
            d.id: (d.name, d.patient_reported) for d in session.scalars(select(FormDefinition))
        }
        versions, skipped = readable_versions(session, forms)
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
    return RegistrySnapshot(
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


def readable_versions(
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


def read_values(registry: Registry, response_ids: list[int]) -> dict[int, dict[str, Any]]:
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


class RowBuilder:
    """Turns the registry rows of the persons to rebuild into OMOP rows, a form at a time."""

    def __init__(
        self,
        snapshot: RegistrySnapshot,
        concept_map: ConceptMap,
        standard: Mapping[tuple[str, str], int],
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


def standard_concepts(
    warehouse: Warehouse, snapshot: RegistrySnapshot
) -> dict[tuple[str, str], int]:
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
