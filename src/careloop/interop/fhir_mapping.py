"""The mapping between FHIR R4 resources and careloop: registry patients and OMOP rows.

One function per direction and resource type, on plain dicts (the JSON of a
resource that fhir.resources has already validated), so the same code serves
the importer, the exporter and the REST API. docs/fhir.md has the table.

Stable keys: a clinical resource's OMOP id is a 63-bit hash of (site code,
resource type, resource id), so importing the same resource again replaces
its row instead of adding one. ``careloop_fhir_link`` (a careloop table in
the warehouse) keeps, per OMOP row, the resource type and id it came from and
the coding as sent (system, code, display), which OMOP's ``*_source_value``
columns cannot hold; the exporter reads it back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import ibis

from careloop.core.errors import ErrorDetail
from careloop.interop.fhir_codes import (
    ADMINISTRATIVE_GENDER,
    CARELOOP_CONSENT_SYSTEM,
    CODE_SYSTEMS,
    LOCAL_SYSTEM_PREFIX,
    MRN_TYPE_SYSTEM,
    STATUS_SETS,
    VOCABULARY_SYSTEMS,
    code_format_problem,
    is_known_system,
)

ConsentState = Literal["direct_care_only", "improvement_and_research", "withdrawn"]
CONSENT_STATES: tuple[ConsentState, ...] = (
    "direct_care_only",
    "improvement_and_research",
    "withdrawn",
)

MAPPED_TYPES = (
    "Patient",
    "Consent",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
)
"""Resource types careloop maps; others are validated, counted and skipped."""

CLINICAL_TABLES = (
    "visit_occurrence",
    "condition_occurrence",
    "measurement",
    "observation",
    "drug_exposure",
    "procedure_occurrence",
)
ID_COLUMNS = {
    "person": "person_id",
    "visit_occurrence": "visit_occurrence_id",
    "condition_occurrence": "condition_occurrence_id",
    "measurement": "measurement_id",
    "observation": "observation_id",
    "drug_exposure": "drug_exposure_id",
    "procedure_occurrence": "procedure_occurrence_id",
}
LINK_TABLE = "careloop_fhir_link"
LINK_SCHEMA = ibis.schema(
    {
        "cdm_table": "!string",
        "cdm_id": "!int64",
        "person_id": "!int64",
        "resource_type": "!string",
        "resource_id": "!string",
        "code_system": "string",
        "code": "string",
        "display": "string",
        "value_system": "string",
        "value_code": "string",
        "value_display": "string",
        "status": "string",
        "loaded_at": "timestamp",
    }
)

# OMOP standard concepts careloop fills when the warehouse's concept table knows them.
GENDER_CONCEPTS = {"male": 8507, "female": 8532}
VISIT_CONCEPTS = {"AMB": 9202, "IMP": 9201, "ACUTE": 9201, "EMER": 9203, "HH": 581476}
EHR_TYPE_CONCEPT = 32817  # "EHR" (Type Concept)
PRESCRIPTION_TYPE_CONCEPT = 32838  # "EHR prescription"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def stable_id(site_code: str, resource_type: str, resource_id: str) -> int:
    """The OMOP row id of a resource: the same resource always gets the same id."""
    digest = hashlib.sha256(f"{site_code}|{resource_type}|{resource_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF or 1


# ---------------------------------------------------------------- primitives


def parse_when(value: str | None) -> tuple[date | None, datetime | None]:
    """A FHIR date or dateTime as (date, UTC datetime without zone or None).

    Partial dates (``2019``, ``2019-07``) give their first day and no time.
    """
    if not value:
        return None, None
    if len(value) == 4:
        return date(int(value), 1, 1), None
    if len(value) == 7:
        return date(int(value[:4]), int(value[5:7]), 1), None
    if len(value) == 10:
        return date.fromisoformat(value), None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return date.fromisoformat(value[:10]), moment


def format_when(day: date | None, moment: datetime | None) -> str | None:
    """The inverse of :func:`parse_when`: a dateTime in UTC, or a date."""
    if moment is not None and not _is_missing(moment):
        return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "+00:00"
    if day is not None and not _is_missing(day):
        if isinstance(day, datetime):  # pandas reads DATE columns as timestamps
            day = day.date()
        return day.isoformat() if isinstance(day, date) else str(day)[:10]
    return None


def _is_missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN / NaT
    except (TypeError, ValueError):
        return False


def reference_keys(resource: Mapping[str, Any], full_url: str | None) -> list[str]:
    """The keys other resources of the same import may use to refer to ``resource``."""
    keys = [f"{resource['resourceType']}/{resource.get('id')}"]
    if full_url:
        keys.append(full_url)
    return keys


def reference_key(reference: Mapping[str, Any] | None) -> str | None:
    """A reference as the key :func:`reference_keys` produces (absolute URLs shortened)."""
    if not reference:
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None
    if ref.startswith(("urn:uuid:", "urn:oid:")):
        return ref
    parts = ref.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2:
        return f"{parts[-2]}/{parts[-1]}"
    return ref


# ---------------------------------------------------------------- codes


@dataclass(frozen=True)
class Coded:
    """One coding chosen from a CodeableConcept."""

    system: str
    code: str
    display: str | None
    vocabulary_id: str | None
    """The OMOP vocabulary, or None for local codes and codes in the wrong format."""


def choose_coding(
    concept: Mapping[str, Any] | None, path: str, *, where: str = ""
) -> tuple[Coded | None, list[ErrorDetail], list[ErrorDetail]]:
    """The coding careloop keeps from a CodeableConcept, with errors and warnings.

    The first coding whose system careloop knows is kept. A concept without
    codings, or whose codings are all in unknown systems, is an error. A code
    that does not fit its system's format (e.g. CIEL codes sent with the
    LOINC system) is kept with its system but mapped to no concept: a warning.
    Locations are prefixed with ``where`` (the file and line or entry).
    """
    if where:
        path = f"{where}: {path}"
    if not concept or not concept.get("coding"):
        return None, [ErrorDetail(path, "needs a coding with a system and a code")], []
    codings = concept["coding"]
    for index, coding in enumerate(codings):
        system, code = coding.get("system"), coding.get("code")
        if not system or not code or not is_known_system(system):
            continue
        problem = code_format_problem(system, code)
        warnings = []
        vocabulary = CODE_SYSTEMS[system].vocabulary_id if system in CODE_SYSTEMS else None
        if problem is not None:
            warnings.append(ErrorDetail(f"{path}.coding[{index}].code", problem, code))
            vocabulary = None
        return Coded(system, code, coding.get("display"), vocabulary), [], warnings
    first = codings[0]
    if not first.get("system"):
        return None, [ErrorDetail(f"{path}.coding[0].system", "a coding needs a system")], []
    known = ", ".join(sorted(CODE_SYSTEMS))
    return (
        None,
        [
            ErrorDetail(
                f"{path}.coding[0].system",
                f"unknown code system; use one of {known} or a local system "
                f"{LOCAL_SYSTEM_PREFIX}<name>",
                first.get("system"),
            )
        ],
        [],
    )


def coded_fields(resource: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any] | None]]:
    """(FHIR path, CodeableConcept) pairs that the mapping turns into concepts."""
    kind = resource["resourceType"]
    if kind in ("Condition", "Observation", "Procedure"):
        fields: list[tuple[str, Mapping[str, Any] | None]] = [
            (f"{kind}.code", resource.get("code"))
        ]
        if kind == "Observation" and "valueCodeableConcept" in resource:
            fields.append(("Observation.valueCodeableConcept", resource["valueCodeableConcept"]))
        return fields
    if kind in ("MedicationRequest", "MedicationStatement"):
        return [(f"{kind}.medicationCodeableConcept", resource.get("medicationCodeableConcept"))]
    return []


def check_resource(
    resource: Mapping[str, Any], where: str
) -> tuple[list[ErrorDetail], list[ErrorDetail], dict[str, Coded]]:
    """Checks beyond fhir.resources: coded values, code systems, what the mapping needs.

    Returns errors, warnings and the chosen codings by FHIR path.
    """
    kind = resource["resourceType"]
    errors: list[ErrorDetail] = []
    warnings: list[ErrorDetail] = []
    codes: dict[str, Coded] = {}

    def err(path: str, message: str, value: Any = None) -> None:
        errors.append(ErrorDetail(f"{where}: {path}", message, value))

    if kind in MAPPED_TYPES and not resource.get("id"):
        err(f"{kind}.id", "needs an id (careloop keys re-imports on it)")
    status = resource.get("status")
    if kind in STATUS_SETS and status is not None and status not in STATUS_SETS[kind]:
        err(f"{kind}.status", f"use one of {', '.join(sorted(STATUS_SETS[kind]))}", status)
    if kind == "Patient":
        gender = resource.get("gender")
        if gender is not None and gender not in ADMINISTRATIVE_GENDER:
            err("Patient.gender", "use one of female, male, other, unknown", gender)
        birth = resource.get("birthDate")
        # The registry's rule for dates of birth (careloop.trust.patients).
        if isinstance(birth, str) and not (
            birth[:4] >= "1900" and birth <= date.today().isoformat()
        ):
            err("Patient.birthDate", "the date of birth must lie between 1900 and today", birth)
    for path, concept in coded_fields(resource):
        chosen, problems, notes = choose_coding(concept, path, where=where)
        errors.extend(problems)
        warnings.extend(notes)
        if chosen is not None:
            codes[path] = chosen
    if kind in ("MedicationRequest", "MedicationStatement") and "medicationReference" in resource:
        err(
            f"{kind}.medication[x]",
            "medicationReference is not supported; send medicationCodeableConcept",
        )
    if kind == "Observation" and "valueQuantity" in resource:
        value = resource["valueQuantity"].get("value")
        if value is None:
            err("Observation.valueQuantity.value", "a quantity needs a value")
    if kind == "Consent":
        try:
            consent_state(resource)
        except ValueError as exc:
            err("Consent.policyRule", str(exc))
    date_field = _event_date_path(resource)
    if kind in MAPPED_TYPES and kind not in ("Patient", "Consent") and date_field is None:
        err(f"{kind}.{_DATE_FIELDS[kind][0]}", "needs a date (OMOP rows require one)")
    subject = resource.get("patient" if kind == "Consent" else "subject")
    if kind in MAPPED_TYPES and kind != "Patient" and reference_key(subject) is None:
        err(
            f"{kind}.{'patient' if kind == 'Consent' else 'subject'}",
            "needs a reference to the patient",
        )
    return errors, warnings, codes


_DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "Encounter": ("period.start",),
    "Condition": ("onsetDateTime", "recordedDate", "onsetPeriod.start"),
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "MedicationRequest": ("authoredOn",),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    "Procedure": ("performedDateTime", "performedPeriod.start"),
}


def _get(resource: Mapping[str, Any], dotted: str) -> Any:
    if "." not in dotted:  # the common case, on the import's hot path
        return resource.get(dotted)
    value: Any = resource
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _event_date_path(resource: Mapping[str, Any]) -> str | None:
    for path in _DATE_FIELDS.get(resource["resourceType"], ()):
        if _get(resource, path):
            return path
    return None


def event_when(resource: Mapping[str, Any]) -> tuple[date | None, datetime | None]:
    path = _event_date_path(resource)
    return parse_when(_get(resource, path)) if path else (None, None)


# ---------------------------------------------------------------- patients and consent


@dataclass(frozen=True)
class PatientFields:
    """What the registry keeps of a FHIR Patient."""

    local_id: str
    given_name: str | None
    family_name: str | None
    birth_date: date | None
    sex: str


def patient_fields(resource: Mapping[str, Any]) -> PatientFields:
    """Registry fields of a Patient: the MRN (identifier of type MR, else the first) …"""
    local_id = None
    identifiers = resource.get("identifier") or []
    for identifier in identifiers:
        codings = (identifier.get("type") or {}).get("coding") or []
        if any(c.get("code") == "MR" and c.get("system") == MRN_TYPE_SYSTEM for c in codings):
            local_id = identifier.get("value")
            break
    if local_id is None:
        local_id = next((i.get("value") for i in identifiers if i.get("value")), None)
    if local_id is None:
        local_id = resource["id"]
    names = resource.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = " ".join(name.get("given") or []) or None
    birth = resource.get("birthDate")
    birth_date = date.fromisoformat(birth) if birth and len(birth) == 10 else None
    return PatientFields(
        local_id=str(local_id)[:64],
        given_name=given,
        family_name=name.get("family"),
        birth_date=birth_date,
        sex=resource.get("gender") or "unknown",
    )


def patient_resource(
    *,
    pseudo_id: str,
    site_code: str,
    local_id: str | None,
    given_name: str | None,
    family_name: str | None,
    birth_date: date | None,
    sex: str,
    identifiable: bool,
) -> dict[str, Any]:
    """A registry patient as a FHIR Patient (``id`` is the pseudonym).

    Without ``identifiable`` (analysts) the resource has no identifier, no
    name and the year of birth only.
    """
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pseudo_id,
        "meta": {"tag": [{"system": "urn:careloop:site", "code": site_code}]},
        "gender": sex,
    }
    if identifiable:
        resource["identifier"] = [
            {
                "use": "usual",
                "type": {"coding": [{"system": MRN_TYPE_SYSTEM, "code": "MR"}]},
                "system": f"urn:careloop:site:{site_code}:mrn",
                "value": local_id,
            }
        ]
        name: dict[str, Any] = {"family": family_name} if family_name else {}
        if given_name:
            name["given"] = given_name.split(" ")
        if name:
            resource["name"] = [{"use": "official", **name}]
        if birth_date is not None:
            resource["birthDate"] = birth_date.isoformat()
    elif birth_date is not None:
        resource["birthDate"] = str(birth_date.year)
    return resource


def consent_state(resource: Mapping[str, Any]) -> ConsentState | None:
    """The careloop consent state a FHIR Consent sets (None: it sets nothing).

    careloop's own code system in ``policyRule`` wins; otherwise an active
    Consent with scope ``research`` sets ``improvement_and_research`` when its
    provision permits and ``direct_care_only`` when it denies. Inactive,
    rejected, draft and entered-in-error Consents set nothing.
    """
    if resource.get("status") not in ("active", None):
        return None
    for coding in (resource.get("policyRule") or {}).get("coding") or []:
        if coding.get("system") == CARELOOP_CONSENT_SYSTEM:
            code = coding.get("code")
            if code not in CONSENT_STATES:
                raise ValueError(
                    f"{code!r} is not a careloop consent state; use one of "
                    + ", ".join(CONSENT_STATES)
                )
            return code  # type: ignore[no-any-return]
    scope_codes = {c.get("code") for c in (resource.get("scope") or {}).get("coding") or []}
    if "research" in scope_codes:
        kind = (resource.get("provision") or {}).get("type", "permit")
        return "improvement_and_research" if kind == "permit" else "direct_care_only"
    raise ValueError(
        "cannot tell which consent this is: use scope 'research' with a permit or deny "
        f"provision, or policyRule with a code of {CARELOOP_CONSENT_SYSTEM}"
    )


def consent_resource(pseudo_id: str, state: str) -> dict[str, Any]:
    """A patient's current consent state as a FHIR Consent."""
    return {
        "resourceType": "Consent",
        "id": f"{pseudo_id}-consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pseudo_id}"},
        "policyRule": {"coding": [{"system": CARELOOP_CONSENT_SYSTEM, "code": state}]},
        "provision": {"type": "permit" if state == "improvement_and_research" else "deny"},
    }


def person_row(
    person_id: int, pseudo_id: str, birth_date: date, sex: str, concepts: Mapping[Any, int]
) -> dict[str, Any]:
    """A person row: the pseudonym only, never names or MRNs."""
    return {
        "person_id": person_id,
        "gender_concept_id": concepts.get(("Gender", sex), 0),
        "year_of_birth": birth_date.year,
        "month_of_birth": birth_date.month,
        "day_of_birth": None,
        "race_concept_id": 0,
        "ethnicity_concept_id": 0,
        "person_source_value": pseudo_id,
        "gender_source_value": sex,
    }


# ---------------------------------------------------------------- clinical resources → rows


@dataclass
class MappedRow:
    """One OMOP row and its link row."""

    table: str
    row: dict[str, Any]
    link: dict[str, Any]


ConceptLookup = Callable[[Coded | None], int]


def clinical_rows(
    resource: Mapping[str, Any],
    *,
    site_code: str,
    person_id: int,
    visit_id: int | None,
    codes: Mapping[str, Coded],
    concept: ConceptLookup,
    unit_concept: Callable[[str | None], int],
    standard: Mapping[int, int],
    loaded_at: datetime,
) -> MappedRow:
    """The OMOP row of one validated clinical resource (Encounter … Procedure)."""
    kind = resource["resourceType"]
    rid = str(resource["id"])
    row_id = stable_id(site_code, kind, rid)
    start_day, start_at = event_when(resource)
    assert start_day is not None  # checked by check_resource
    link: dict[str, Any] = {
        "cdm_id": row_id,
        "person_id": person_id,
        "resource_type": kind,
        "resource_id": rid,
        "status": resource.get("status"),
        "loaded_at": loaded_at,
        "code_system": None,
        "code": None,
        "display": None,
        "value_system": None,
        "value_code": None,
        "value_display": None,
    }
    ehr = standard.get(EHR_TYPE_CONCEPT, 0)
    if kind == "Encounter":
        end_day, end_at = parse_when(_get(resource, "period.end"))
        klass = (resource.get("class") or {}).get("code")
        link.update(code_system=(resource.get("class") or {}).get("system"), code=klass)
        row = {
            "visit_occurrence_id": row_id,
            "person_id": person_id,
            "visit_concept_id": standard.get(VISIT_CONCEPTS.get(klass or "", -1), 0),
            "visit_start_date": start_day,
            "visit_start_datetime": start_at,
            "visit_end_date": end_day or start_day,
            "visit_end_datetime": end_at,
            "visit_type_concept_id": ehr,
            "visit_source_value": klass,
        }
        return MappedRow("visit_occurrence", row, {**link, "cdm_table": "visit_occurrence"})
    code_path = (
        f"{kind}.medicationCodeableConcept" if kind.startswith("Medication") else f"{kind}.code"
    )
    coded = codes.get(code_path)
    if coded is not None:
        link.update(code_system=coded.system, code=coded.code, display=coded.display)
    source = coded.code[:50] if coded else None
    concept_id = concept(coded)
    if kind == "Condition":
        end_day, end_at = parse_when(
            resource.get("abatementDateTime") or _get(resource, "abatementPeriod.end")
        )
        statuses: list[dict[str, Any]] = (resource.get("clinicalStatus") or {}).get("coding") or []
        clinical = statuses[0].get("code") if statuses else None
        row = {
            "condition_occurrence_id": row_id,
            "person_id": person_id,
            "condition_concept_id": concept_id,
            "condition_start_date": start_day,
            "condition_start_datetime": start_at,
            "condition_end_date": end_day,
            "condition_end_datetime": end_at,
            "condition_type_concept_id": ehr,
            "visit_occurrence_id": visit_id,
            "condition_source_value": source,
            "condition_source_concept_id": concept_id,
            "condition_status_source_value": clinical,
        }
        return MappedRow("condition_occurrence", row, {**link, "cdm_table": "condition_occurrence"})
    if kind == "Procedure":
        end_day, end_at = parse_when(_get(resource, "performedPeriod.end"))
        row = {
            "procedure_occurrence_id": row_id,
            "person_id": person_id,
            "procedure_concept_id": concept_id,
            "procedure_date": start_day,
            "procedure_datetime": start_at,
            "procedure_end_date": end_day,
            "procedure_end_datetime": end_at,
            "procedure_type_concept_id": ehr,
            "visit_occurrence_id": visit_id,
            "procedure_source_value": source,
            "procedure_source_concept_id": concept_id,
        }
        return MappedRow("procedure_occurrence", row, {**link, "cdm_table": "procedure_occurrence"})
    if kind in ("MedicationRequest", "MedicationStatement"):
        end_day, end_at = parse_when(_get(resource, "effectivePeriod.end"))
        dosage = (resource.get("dosageInstruction") or resource.get("dosage") or [{}])[0]
        row = {
            "drug_exposure_id": row_id,
            "person_id": person_id,
            "drug_concept_id": concept_id,
            "drug_exposure_start_date": start_day,
            "drug_exposure_start_datetime": start_at,
            # OMOP requires an end date; without one the exposure is taken as one day.
            "drug_exposure_end_date": end_day or start_day,
            "drug_exposure_end_datetime": end_at,
            "drug_type_concept_id": standard.get(PRESCRIPTION_TYPE_CONCEPT, 0)
            if kind == "MedicationRequest"
            else ehr,
            "sig": dosage.get("text"),
            "visit_occurrence_id": visit_id,
            "drug_source_value": source,
            "drug_source_concept_id": concept_id,
        }
        return MappedRow("drug_exposure", row, {**link, "cdm_table": "drug_exposure"})
    # Observation: a number goes to measurement, anything else to observation.
    quantity = resource.get("valueQuantity")
    if quantity is not None or "valueInteger" in resource:
        number = quantity.get("value") if quantity else resource["valueInteger"]
        unit = (quantity or {}).get("code") or (quantity or {}).get("unit")
        row = {
            "measurement_id": row_id,
            "person_id": person_id,
            "measurement_concept_id": concept_id,
            "measurement_date": start_day,
            "measurement_datetime": start_at,
            "measurement_type_concept_id": ehr,
            "value_as_number": float(number),
            "unit_concept_id": unit_concept(unit),
            "unit_source_value": unit,
            "visit_occurrence_id": visit_id,
            "measurement_source_value": source,
            "measurement_source_concept_id": concept_id,
        }
        if quantity is None:
            link["value_system"] = "integer"
        return MappedRow("measurement", row, {**link, "cdm_table": "measurement"})
    value = codes.get("Observation.valueCodeableConcept")
    row = {
        "observation_id": row_id,
        "person_id": person_id,
        "observation_concept_id": concept_id,
        "observation_date": start_day,
        "observation_datetime": start_at,
        "observation_type_concept_id": ehr,
        "value_as_string": resource.get("valueString"),
        "value_as_concept_id": concept(value) if value is not None else None,
        "visit_occurrence_id": visit_id,
        "observation_source_value": source,
        "observation_source_concept_id": concept_id,
        "value_source_value": value.code[:50] if value else None,
    }
    if value is not None:
        link.update(value_system=value.system, value_code=value.code, value_display=value.display)
    return MappedRow("observation", row, {**link, "cdm_table": "observation"})


# ---------------------------------------------------------------- rows → resources


def _coding(system: Any, code: Any, display: Any) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if isinstance(display, str) and display:
        out["display"] = display
    return out


def row_coding(
    link: Mapping[str, Any], concept_id: Any, vocab: Mapping[int, tuple[str, str, str]]
) -> dict[str, Any] | None:
    """The coding of an OMOP row: as sent (link table), else its concept, else local."""
    if isinstance(link.get("code"), str):
        return _coding(link["code_system"], link["code"], link.get("display"))
    known = vocab.get(int(concept_id)) if concept_id and not _is_missing(concept_id) else None
    if known is not None:
        vocabulary_id, code, name = known
        system = VOCABULARY_SYSTEMS.get(vocabulary_id, f"{LOCAL_SYSTEM_PREFIX}{vocabulary_id}")
        return _coding(system, code, name)
    return None


def _opt(value: Any) -> Any:
    return None if value is None or _is_missing(value) else value


def resource_of_row(
    table: str,
    row: Mapping[str, Any],
    link: Mapping[str, Any],
    *,
    patient_id: str,
    vocab: Mapping[int, tuple[str, str, str]],
    visit_resource_ids: Mapping[int, str],
) -> dict[str, Any]:
    """An OMOP row (with its link row, if any) as a FHIR resource.

    Rows that did not come from FHIR get ids such as ``measurement-42``.
    """
    id_column = ID_COLUMNS[table]
    rid = link.get("resource_id") or f"{table.replace('_', '-')}-{int(row[id_column])}"
    subject = {"reference": f"Patient/{patient_id}"}
    visit = _opt(row.get("visit_occurrence_id"))
    encounter = {}
    if visit is not None:
        visit_id = visit_resource_ids.get(int(visit), f"visit-occurrence-{int(visit)}")
        encounter = {"encounter": {"reference": f"Encounter/{visit_id}"}}
    if table == "visit_occurrence":
        period = {
            "start": format_when(row["visit_start_date"], _opt(row.get("visit_start_datetime"))),
            "end": format_when(row["visit_end_date"], _opt(row.get("visit_end_datetime"))),
        }
        klass = _opt(link.get("code")) or _opt(row.get("visit_source_value")) or "AMB"
        return {
            "resourceType": "Encounter",
            "id": rid,
            "status": _opt(link.get("status")) or "finished",
            "class": {"system": _opt(link.get("code_system")) or ACT_CODE_SYSTEM, "code": klass},
            "subject": subject,
            "period": {k: v for k, v in period.items() if v},
        }
    if table == "condition_occurrence":
        out: dict[str, Any] = {
            "resourceType": "Condition",
            "id": rid,
            "subject": subject,
            **encounter,
            "onsetDateTime": format_when(
                row["condition_start_date"], _opt(row.get("condition_start_datetime"))
            ),
        }
        coding = row_coding(link, row.get("condition_concept_id"), vocab)
        out["code"] = {"coding": [coding]} if coding else {"text": "unknown"}
        status = _opt(row.get("condition_status_source_value"))
        if status:
            out["clinicalStatus"] = {
                "coding": [{"system": CONDITION_CLINICAL_SYSTEM, "code": status}]
            }
        end = format_when(
            _opt(row.get("condition_end_date")), _opt(row.get("condition_end_datetime"))
        )
        if end:
            out["abatementDateTime"] = end
        return out
    if table in ("measurement", "observation"):
        prefix = "measurement" if table == "measurement" else "observation"
        out = {
            "resourceType": "Observation",
            "id": rid,
            "status": _opt(link.get("status")) or "final",
            "subject": subject,
            **encounter,
            "effectiveDateTime": format_when(
                row[f"{prefix}_date"], _opt(row.get(f"{prefix}_datetime"))
            ),
        }
        coding = row_coding(link, row.get(f"{prefix}_concept_id"), vocab)
        out["code"] = {"coding": [coding]} if coding else {"text": "unknown"}
        number = _opt(row.get("value_as_number"))
        if table == "measurement" and number is not None:
            if link.get("value_system") == "integer":
                out["valueInteger"] = int(number)
            else:
                unit = _opt(row.get("unit_source_value"))
                quantity: dict[str, Any] = {"value": float(number)}
                if unit:
                    quantity.update(unit=unit, system="http://unitsofmeasure.org", code=unit)
                out["valueQuantity"] = quantity
        elif isinstance(link.get("value_code"), str):
            out["valueCodeableConcept"] = {
                "coding": [
                    _coding(link["value_system"], link["value_code"], link.get("value_display"))
                ]
            }
        elif _opt(row.get("value_as_string")) is not None:
            out["valueString"] = row["value_as_string"]
        elif number is not None:
            out["valueQuantity"] = {"value": float(number)}
        return out
    if table == "drug_exposure":
        kind = (
            "MedicationRequest"
            if link.get("resource_type") != "MedicationStatement"
            else ("MedicationStatement")
        )
        coding = row_coding(link, row.get("drug_concept_id"), vocab)
        start = format_when(
            row["drug_exposure_start_date"], _opt(row.get("drug_exposure_start_datetime"))
        )
        out = {
            "resourceType": kind,
            "id": rid,
            "status": _opt(link.get("status"))
            or ("completed" if kind.endswith("Statement") else "active"),
            "subject": subject,
            "medicationCodeableConcept": {"coding": [coding]} if coding else {"text": "unknown"},
        }
        if kind == "MedicationRequest":
            out.update(intent="order", authoredOn=start, **encounter)
        else:
            out["effectiveDateTime"] = start
        return out
    out = {
        "resourceType": "Procedure",
        "id": rid,
        "status": _opt(link.get("status")) or "completed",
        "subject": subject,
        **encounter,
        "performedDateTime": format_when(
            row["procedure_date"], _opt(row.get("procedure_datetime"))
        ),
    }
    coding = row_coding(link, row.get("procedure_concept_id"), vocab)
    out["code"] = {"coding": [coding]} if coding else {"text": "unknown"}
    return out
