"""Shared parts of the FHIR mapping: constants, stable ids, dates, codes, consent, checks."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any, Literal

import ibis

from careloop.core.errors import ErrorDetail
from careloop.fhir.codes import (
    ADMINISTRATIVE_GENDER,
    CARELOOP_CONSENT_SYSTEM,
    CODE_SYSTEMS,
    LOCAL_SYSTEM_PREFIX,
    MRN_TYPE_SYSTEM,
    STATUS_SETS,
    code_format_problem,
    is_known_system,
)
from careloop.trust.patients import patient_field_problems

ConsentState = Literal[
    "direct_care_only", "improvement_only", "improvement_and_research", "withdrawn"
]
CONSENT_STATES: tuple[ConsentState, ...] = (
    "direct_care_only",
    "improvement_only",
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
