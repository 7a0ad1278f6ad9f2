"""Coded values in FHIR R4 that fhir.resources does not check, and code systems.

fhir.resources validates structure and primitive formats, but not value sets:
``Patient.gender = "banana"`` passes. This module holds the value sets
careloop's mapping relies on and the code systems it knows, with a format
check for the systems whose codes carry one (LOINC's mod-10 check digit,
SNOMED CT's Verhoeff check digit). Written by hand because no maintained
Python package ships these checks for R4.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

ADMINISTRATIVE_GENDER = frozenset({"male", "female", "other", "unknown"})
OBSERVATION_STATUS = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
     "entered-in-error", "unknown"}
)  # fmt: skip
ENCOUNTER_STATUS = frozenset(
    {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
     "entered-in-error", "unknown"}
)  # fmt: skip
CONSENT_STATUS = frozenset(
    {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
)
MEDICATION_REQUEST_STATUS = frozenset(
    {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft",
     "unknown"}
)  # fmt: skip
MEDICATION_STATEMENT_STATUS = frozenset(
    {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown",
     "not-taken"}
)  # fmt: skip
PROCEDURE_STATUS = frozenset(
    {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
     "entered-in-error", "unknown"}
)  # fmt: skip

STATUS_SETS: dict[str, frozenset[str]] = {
    "Observation": OBSERVATION_STATUS,
    "Encounter": ENCOUNTER_STATUS,
    "Consent": CONSENT_STATUS,
    "MedicationRequest": MEDICATION_REQUEST_STATUS,
    "MedicationStatement": MEDICATION_STATEMENT_STATUS,
    "Procedure": PROCEDURE_STATUS,
}

CARELOOP_CONSENT_SYSTEM = "https://careloop.org/fhir/CodeSystem/consent-state"
"""careloop's own consent states as a FHIR code system (Consent.policyRule)."""
LOCAL_SYSTEM_PREFIX = "urn:careloop:local:"
"""Systems of site-local codes: accepted, kept as source values with concept 0."""
MRN_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"


@dataclass(frozen=True)
class CodeSystem:
    """A code system careloop recognises."""

    uri: str
    """The FHIR system URI."""
    vocabulary_id: str
    """The OMOP vocabulary_id its codes live in."""
    pattern: re.Pattern[str] | None = None
    """A format every code of the system matches, when there is one."""


CODE_SYSTEMS: dict[str, CodeSystem] = {
    s.uri: s
    for s in (
        CodeSystem("http://loinc.org", "LOINC", re.compile(r"^(LP|LA|LL)?\d{1,7}-\d$")),
        CodeSystem("http://snomed.info/sct", "SNOMED", re.compile(r"^\d{6,18}$")),
        CodeSystem("http://www.nlm.nih.gov/research/umls/rxnorm", "RxNorm", re.compile(r"^\d+$")),
        CodeSystem("http://hl7.org/fhir/sid/cvx", "CVX", re.compile(r"^\d{1,3}$")),
        CodeSystem(
            "http://hl7.org/fhir/sid/icd-10-cm",
            "ICD10CM",
            re.compile(r"^[A-Z]\d[0-9A-Z](\.[0-9A-Z]{1,4})?$"),
        ),
        CodeSystem(
            "http://hl7.org/fhir/sid/icd-10", "ICD10", re.compile(r"^[A-Z]\d\d(\.[0-9A-Z]{1,2})?$")
        ),
        CodeSystem("http://hl7.org/fhir/sid/icd-9-cm", "ICD9CM"),
        CodeSystem("http://hl7.org/fhir/sid/ndc", "NDC", re.compile(r"^[\d-]{10,13}$")),
        CodeSystem("http://www.ama-assn.org/go/cpt", "CPT4", re.compile(r"^\d{4}[0-9A-Z]$")),
        CodeSystem("https://openconceptlab.org/orgs/CIEL/sources/CIEL", "CIEL"),
        CodeSystem("http://unitsofmeasure.org", "UCUM"),
    )
}
VOCABULARY_SYSTEMS: dict[str, str] = {s.vocabulary_id: s.uri for s in CODE_SYSTEMS.values()}


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the digits before the dash (as LOINC's manual gives it)."""
    digits = [int(c) for c in number]
    total = 0
    # From the right, every other digit (starting with the rightmost) is doubled.
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 0:
            doubled = digit * 2
            total += doubled // 10 + doubled % 10
        else:
            total += digit
    return (10 - total % 10) % 10


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(number: str) -> bool:
    """True when the last digit of ``number`` is its Verhoeff check digit (SNOMED CT ids)."""
    check = 0
    for position, char in enumerate(reversed(number)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


@functools.lru_cache(maxsize=65536)
def code_format_problem(system: str, code: str) -> str | None:
    """Why ``code`` cannot be a code of ``system`` (None when it can, or we cannot tell).

    The message says what careloop does with such a code. Cached: bulk files
    repeat the same few hundred codes.
    """
    known = CODE_SYSTEMS.get(system)
    if known is None or known.pattern is None:
        return None
    if not known.pattern.match(code):
        return (
            f"{code!r} is not in the format of {known.vocabulary_id} codes; "
            "kept as a source value with concept 0"
        )
    if known.vocabulary_id == "LOINC" and code[0].isdigit():
        number, check = code.split("-")
        if loinc_check_digit(number) != int(check):
            return (
                f"{code!r} fails LOINC's check digit (expected -{loinc_check_digit(number)}); "
                "kept as a source value with concept 0"
            )
    if known.vocabulary_id == "SNOMED" and not verhoeff_valid(code):
        return (
            f"{code!r} fails SNOMED CT's Verhoeff check digit; "
            "kept as a source value with concept 0"
        )
    return None


def is_known_system(system: str) -> bool:
    """Whether careloop accepts codes of ``system`` (a known vocabulary or a local one)."""
    return system in CODE_SYSTEMS or system.startswith(LOCAL_SYSTEM_PREFIX)
