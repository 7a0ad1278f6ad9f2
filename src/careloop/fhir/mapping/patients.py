"""Patients and consent: FHIR Patient and Consent ↔ registry patients and OMOP persons."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from careloop.fhir.codes import CARELOOP_CONSENT_SYSTEM, MRN_TYPE_SYSTEM

# ---------------------------------------------------------------- patients and consent


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


def consent_resource(pseudo_id: str, state: str) -> dict[str, Any]:
    """A patient's current consent state as a FHIR Consent.

    A ``custom`` mix of purposes has no careloop code: it goes as a research
    Consent that denies, which reads back as direct care only (never wider).
    """
    rule = [{"system": CARELOOP_CONSENT_SYSTEM, "code": state}] if state != "custom" else []
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
        **({"policyRule": {"coding": rule}} if rule else {}),
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
