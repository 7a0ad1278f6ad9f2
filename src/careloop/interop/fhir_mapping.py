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
from datetime import date, datetime, tzinfo
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
from careloop.trust.patients import patient_field_problems

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


def parse_when(
    value: str | None, zone: tzinfo | None = None
) -> tuple[date | None, datetime | None]:
    """A FHIR date or dateTime as (date, datetime) on the site's clock, OMOP's way.

    OMOP keeps no time zone: a ``*_datetime`` is a local date and time and its
    ``*_date`` is the date part of it (docs/fhir.md, "Dates and times"). An
    instant with an offset is therefore converted to ``zone`` (the site's time
    zone) and the zone dropped; without ``zone`` the wall-clock time as
    written is kept. Partial dates (``2019``, ``2019-07``) give their first
    day, and dates their day, with no time.
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
        if zone is not None:
            moment = moment.astimezone(zone)
        moment = moment.replace(tzinfo=None)
    return moment.date(), moment


def format_when(day: date | None, moment: datetime | None, *, zone: tzinfo) -> str | None:
    """The inverse of :func:`parse_when`: a dateTime with the site's offset, or a date.

    A local time that occurs twice (the hour repeated when clocks go back) is
    read as its first occurrence.
    """
    if moment is not None and not _is_missing(moment):
        local = moment.replace(tzinfo=None).replace(tzinfo=zone)
        return local.isoformat(timespec="seconds")
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

    The first coding whose system careloop knows is kept; when no coding is in
    a known system, the first is kept with no vocabulary (concept 0) and a
    warning. A concept without codings, or a coding without a system or code,
    is an error. A code
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
    if not first.get("code"):
        return None, [ErrorDetail(f"{path}.coding[0].code", "a coding needs a code")], []
    # A system careloop does not map (an OID, a vendor's own) is what real EHRs send:
    # the code is kept as the source value with concept 0 (OMOP's "no matching
    # concept"), and the import says so.
    known = ", ".join(sorted(CODE_SYSTEMS))
    return (
        Coded(str(first["system"]), str(first["code"]), first.get("display"), None),
        [],
        [
            ErrorDetail(
                f"{path}.coding[0].system",
                "a code system careloop does not map to OMOP concepts: the code is kept as "
                f"the source value with concept 0 (systems mapped: {known}, or a local "
                f"system {LOCAL_SYSTEM_PREFIX}<name>)",
                first.get("system"),
            )
        ],
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


def component_coded_fields(
    resource: Mapping[str, Any],
) -> list[tuple[str, Mapping[str, Any] | None]]:
    """(FHIR path, CodeableConcept) of an Observation's components: codes and coded values."""
    if resource["resourceType"] != "Observation":
        return []
    fields: list[tuple[str, Mapping[str, Any] | None]] = []
    for index, component in enumerate(resource.get("component") or []):
        if not isinstance(component, dict):
            continue
        fields.append((f"Observation.component[{index}].code", component.get("code")))
        if "valueCodeableConcept" in component:
            fields.append(
                (
                    f"Observation.component[{index}].valueCodeableConcept",
                    component["valueCodeableConcept"],
                )
            )
    return fields


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
        # The registry's rules for ids and names (as through the API: 64 and 200 characters,
        # no control characters).
        paths = {
            "local_id": "Patient.identifier.value",
            "given_name": "Patient.name.given",
            "family_name": "Patient.name.family",
        }
        if resource.get("id"):
            fields = patient_fields(resource)
            for detail in patient_field_problems({name: getattr(fields, name) for name in paths}):
                err(paths[detail.location], detail.message, detail.value)
    for path, concept in coded_fields(resource):
        chosen, problems, notes = choose_coding(concept, path, where=where)
        errors.extend(problems)
        warnings.extend(notes)
        if chosen is not None:
            codes[path] = chosen
    # A component whose code cannot be used is left out and counted (unmapped_elements),
    # not an error: before components became rows, such panels imported without them.
    for path, concept in component_coded_fields(resource):
        chosen, problems, notes = choose_coding(concept, path, where=where)
        if chosen is not None:
            codes[path] = chosen
            warnings.extend(notes)
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


def event_when(
    resource: Mapping[str, Any], zone: tzinfo | None = None
) -> tuple[date | None, datetime | None]:
    """When a clinical resource happened, on the site's clock (see :func:`parse_when`)."""
    path = _event_date_path(resource)
    return parse_when(_get(resource, path), zone) if path else (None, None)


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
        local_id=str(local_id),
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

COMPONENT = "Observation.component"
"""``resource_type`` of the link rows of Observation components (``resource_id`` ``<id>/<i>``)."""
FIELD_CONCEPT_NAMES = {
    "measurement": "measurement.measurement_id",
    "observation": "observation.observation_id",
}
"""The OMOP CDM field concepts (vocabulary ``CDM``) that name a component's panel row."""
NUMBER_VALUES = ("valueQuantity", "valueInteger")
"""Observation values that become ``measurement`` rows; the rest become ``observation`` rows."""


def field_concept(concept: ConceptLookup, table: str) -> int:
    """The concept id of ``<table>.<table>_id`` when the warehouse's vocabulary has it, else 0."""
    return concept(Coded("", FIELD_CONCEPT_NAMES[table], None, "CDM"))


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
    zone: tzinfo | None = None,
) -> list[MappedRow]:
    """The OMOP rows of one validated clinical resource (Encounter … Procedure).

    One row per resource, and for an Observation one more per component
    (blood pressure and other panels) that has a code careloop knows and a
    value: each component row has its own code, value and unit, and points
    at the panel's row (``measurement_event_id``/``observation_event_id``,
    with the CDM field concept of the panel row's id when the vocabulary has
    it). Dates and times are on the site's clock (``zone``; see
    :func:`parse_when`).
    """
    kind = resource["resourceType"]
    rid = str(resource["id"])
    row_id = stable_id(site_code, kind, rid)
    start_day, start_at = event_when(resource, zone)
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
        end_day, end_at = parse_when(_get(resource, "period.end"), zone)
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
        return [MappedRow("visit_occurrence", row, {**link, "cdm_table": "visit_occurrence"})]
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
            resource.get("abatementDateTime") or _get(resource, "abatementPeriod.end"), zone
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
        return [
            MappedRow("condition_occurrence", row, {**link, "cdm_table": "condition_occurrence"})
        ]
    if kind == "Procedure":
        end_day, end_at = parse_when(_get(resource, "performedPeriod.end"), zone)
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
        return [
            MappedRow("procedure_occurrence", row, {**link, "cdm_table": "procedure_occurrence"})
        ]
    if kind in ("MedicationRequest", "MedicationStatement"):
        end_day, end_at = parse_when(_get(resource, "effectivePeriod.end"), zone)
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
        return [MappedRow("drug_exposure", row, {**link, "cdm_table": "drug_exposure"})]
    # Observation: a number goes to measurement, anything else to observation. A panel
    # without a value of its own goes where its components' numbers go.
    components = mapped_components(resource, codes)
    numeric = any(key in resource for key in NUMBER_VALUES) or (
        not has_observation_value(resource)
        and any(any(key in c for key in NUMBER_VALUES) for _, c in components)
    )
    common = _RowContext(person_id, visit_id, start_day, start_at, ehr, concept, unit_concept)
    panel = _observation_row(
        resource,
        "measurement" if numeric else "observation",
        common,
        row_id=row_id,
        concept_id=concept_id,
        source=source,
        value=codes.get("Observation.valueCodeableConcept"),
        link=link,
        event=None,
    )
    rows = [panel]
    for index, component in components:
        coded_part = codes[f"Observation.component[{index}].code"]
        part_id = stable_id(site_code, COMPONENT, f"{rid}/{index}")
        part_link = {
            **link,
            "cdm_id": part_id,
            "resource_type": COMPONENT,
            "resource_id": f"{rid}/{index}",
            "code_system": coded_part.system,
            "code": coded_part.code,
            "display": coded_part.display,
        }
        part_concept = concept(coded_part)
        rows.append(
            _observation_row(
                component,
                "measurement" if any(k in component for k in NUMBER_VALUES) else "observation",
                common,
                row_id=part_id,
                concept_id=part_concept,
                source=coded_part.code[:50],
                value=codes.get(f"Observation.component[{index}].valueCodeableConcept"),
                link=part_link,
                event=(panel.row[ID_COLUMNS[panel.table]], field_concept(concept, panel.table)),
            )
        )
    return rows


def has_observation_value(item: Mapping[str, Any]) -> bool:
    """Whether an Observation (or a component) carries a value careloop maps."""
    return any(key in item for key in (*NUMBER_VALUES, "valueCodeableConcept", "valueString"))


def mapped_components(
    resource: Mapping[str, Any], codes: Mapping[str, Coded]
) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, component) of the components that become rows: a known code and a value."""
    out: list[tuple[int, Mapping[str, Any]]] = []
    for index, component in enumerate(resource.get("component") or []):
        if not isinstance(component, dict) or f"Observation.component[{index}].code" not in codes:
            continue
        if _component_problem(index, component, codes) is None:
            out.append((index, component))
    return out


def _component_problem(
    index: int, component: Any, codes: Mapping[str, Coded]
) -> tuple[str, str] | None:
    """Why a component does not become a row, as (element, reason); None when it does."""
    path = f"Observation.component[{index}]"
    if not isinstance(component, dict):
        return "Observation.component", "not an element careloop can read"
    if f"{path}.code" not in codes:
        return (
            "Observation.component",
            "its code has no coding in a code system careloop knows",
        )
    if "dataAbsentReason" in component and not has_observation_value(component):
        return "Observation.component", "no value (dataAbsentReason)"
    quantity = component.get("valueQuantity")
    if quantity is not None and quantity.get("value") is None:
        return "Observation.component", "a valueQuantity without a value"
    if "valueCodeableConcept" in component and f"{path}.valueCodeableConcept" not in codes:
        return (
            "Observation.component",
            "its coded value has no coding in a code system careloop knows",
        )
    other = next((k for k in component if k.startswith("value")), None)
    if not has_observation_value(component):
        if other is not None:
            return f"Observation.component.{other}", "a value of this type is not mapped"
        return "Observation.component", "no value"
    return None


_NOT_KEPT = "not mapped to OMOP"
UNMAPPED_ELEMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "Patient": (
        ("deceasedBoolean", "death is not recorded yet (OMOP death table)"),
        ("deceasedDateTime", "death is not recorded yet (OMOP death table)"),
        ("address", "not kept: identifying (the registry keeps MRN, name, birth date, sex)"),
        ("telecom", "not kept: identifying (the registry keeps MRN, name, birth date, sex)"),
        ("maritalStatus", _NOT_KEPT),
        ("communication", _NOT_KEPT),
        ("multipleBirthBoolean", _NOT_KEPT),
        ("multipleBirthInteger", _NOT_KEPT),
        ("extension", "extensions (e.g. US Core race, ethnicity, birth sex) are not read"),
    ),
    "Encounter": (
        ("reasonCode", _NOT_KEPT),
        ("diagnosis", _NOT_KEPT),
        ("hospitalization", "admission source and discharge disposition are not mapped"),
        ("type", "the visit keeps its class (AMB, IMP, EMER, HH) only"),
    ),
    "Condition": (
        ("severity", _NOT_KEPT),
        ("bodySite", _NOT_KEPT),
        ("stage", _NOT_KEPT),
        ("evidence", _NOT_KEPT),
    ),
    "Observation": (
        ("valueBoolean", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueDateTime", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueTime", "a value of this type is not mapped (the row keeps code and date)"),
        ("valuePeriod", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueRange", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueRatio", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueSampledData", "a value of this type is not mapped (the row keeps code and date)"),
        ("dataAbsentReason", "no value: the row keeps code and date"),
        ("interpretation", _NOT_KEPT),
        ("referenceRange", _NOT_KEPT),
        ("bodySite", _NOT_KEPT),
        ("hasMember", "member Observations are imported as rows of their own, not linked"),
    ),
    "MedicationRequest": (
        ("dispenseRequest", _NOT_KEPT),
        ("reasonCode", _NOT_KEPT),
    ),
    "MedicationStatement": (("reasonCode", _NOT_KEPT),),
    "Procedure": (
        ("bodySite", _NOT_KEPT),
        ("reasonCode", _NOT_KEPT),
        ("outcome", _NOT_KEPT),
        ("complication", _NOT_KEPT),
    ),
}
"""Elements with clinical content that careloop reads but does not keep: counted, never silent."""


def unmapped_elements(
    resource: Mapping[str, Any], codes: Mapping[str, Coded]
) -> list[tuple[str, str]]:
    """(element, reason) of what a mapped resource holds that careloop does not keep.

    Besides the elements of :data:`UNMAPPED_ELEMENTS`: Observation components
    that do not become rows, and dosage instructions after the first (whose
    text becomes ``sig``).
    """
    kind = resource["resourceType"]
    out = [
        (f"{kind}.{name}", reason)
        for name, reason in UNMAPPED_ELEMENTS.get(kind, ())
        if resource.get(name) not in (None, [], {})
    ]
    if kind == "Observation":
        for index, component in enumerate(resource.get("component") or []):
            problem = _component_problem(index, component, codes)
            if problem is not None:
                out.append(problem)
    if kind == "Patient":
        others = len(resource.get("identifier") or []) - 1
        out.extend(
            [("Patient.identifier", "not kept: only the MRN is kept (as local id)")] * others
        )
    if kind in ("MedicationRequest", "MedicationStatement"):
        name = "dosageInstruction" if kind == "MedicationRequest" else "dosage"
        extra = len(resource.get(name) or []) - 1
        out.extend([(f"{kind}.{name}", "only the first dosage's text is kept (as sig)")] * extra)
    return out


@dataclass(frozen=True)
class _RowContext:
    """What an Observation's rows share: patient, visit, when, type and concept lookups."""

    person_id: int
    visit_id: int | None
    day: date
    moment: datetime | None
    ehr: int
    concept: ConceptLookup
    unit_concept: Callable[[str | None], int]


def _observation_row(
    item: Mapping[str, Any],
    table: str,
    context: _RowContext,
    *,
    row_id: int,
    concept_id: int,
    source: str | None,
    value: Coded | None,
    link: dict[str, Any],
    event: tuple[int, int] | None,
) -> MappedRow:
    """The row of an Observation or of one of its components (``item``) in ``table``.

    ``event`` is (panel row id, CDM field concept of that id) for a component.
    Every row of a table has the same columns, components or not.
    """
    link = {**link, "cdm_table": table}
    if table == "measurement":
        quantity = item.get("valueQuantity")
        number = quantity.get("value") if quantity else item.get("valueInteger")
        unit = (quantity or {}).get("code") or (quantity or {}).get("unit")
        if quantity is None and "valueInteger" in item:
            link["value_system"] = "integer"
        row = {
            "measurement_id": row_id,
            "person_id": context.person_id,
            "measurement_concept_id": concept_id,
            "measurement_date": context.day,
            "measurement_datetime": context.moment,
            "measurement_type_concept_id": context.ehr,
            "value_as_number": float(number) if number is not None else None,
            "unit_concept_id": context.unit_concept(unit),
            "unit_source_value": unit,
            "visit_occurrence_id": context.visit_id,
            "measurement_source_value": source,
            "measurement_source_concept_id": concept_id,
            "measurement_event_id": event[0] if event else None,
            "meas_event_field_concept_id": event[1] if event else None,
        }
        return MappedRow("measurement", row, link)
    row = {
        "observation_id": row_id,
        "person_id": context.person_id,
        "observation_concept_id": concept_id,
        "observation_date": context.day,
        "observation_datetime": context.moment,
        "observation_type_concept_id": context.ehr,
        "value_as_string": item.get("valueString"),
        "value_as_concept_id": context.concept(value) if value is not None else None,
        "visit_occurrence_id": context.visit_id,
        "observation_source_value": source,
        "observation_source_concept_id": concept_id,
        "value_source_value": value.code[:50] if value else None,
        "observation_event_id": event[0] if event else None,
        "obs_event_field_concept_id": event[1] if event else None,
    }
    if value is not None:
        link.update(value_system=value.system, value_code=value.code, value_display=value.display)
    return MappedRow("observation", row, link)


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
    zone: tzinfo,
) -> dict[str, Any]:
    """An OMOP row (with its link row, if any) as a FHIR resource.

    Rows that did not come from FHIR get ids such as ``measurement-42``;
    times get the offset of ``zone``, the patient's site's time zone.
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
            "start": format_when(
                row["visit_start_date"], _opt(row.get("visit_start_datetime")), zone=zone
            ),
            "end": format_when(
                row["visit_end_date"], _opt(row.get("visit_end_datetime")), zone=zone
            ),
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
                row["condition_start_date"], _opt(row.get("condition_start_datetime")), zone=zone
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
            _opt(row.get("condition_end_date")), _opt(row.get("condition_end_datetime")), zone=zone
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
                row[f"{prefix}_date"], _opt(row.get(f"{prefix}_datetime")), zone=zone
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
            row["drug_exposure_start_date"],
            _opt(row.get("drug_exposure_start_datetime")),
            zone=zone,
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
            row["procedure_date"], _opt(row.get("procedure_datetime")), zone=zone
        ),
    }
    coding = row_coding(link, row.get("procedure_concept_id"), vocab)
    out["code"] = {"coding": [coding]} if coding else {"text": "unknown"}
    return out
