"""Concept ids of the IBD registry form, as the IBD measures expect them.

The registry → OMOP ETL writes the IBD visit form and the symptoms PROM
(``forms/ibd_registry.yaml`` beside this file) with exactly these ids, through
the content package's concept map (:data:`CONCEPT_MAP`); the IBD measures under
``measures/`` count them. Local codes get
careloop-local concept ids at or above 2,000,000,000 (OMOP's range for site
concepts); fields with a standard code keep the standard concept.

How each field becomes a row:

- ``Observation``/``Measurement`` fields: one row per answered field, with
  ``*_concept_id`` from :data:`FIELD_CONCEPTS`, the answer's code as
  ``value_as_number`` (radio codes and yes/no as 1/0, numbers as they are)
  and as ``value_source_value``; ``visit_occurrence_id`` of the visit.
- ``Drug`` fields (``steroid_use``, ``medications``): one ``drug_exposure``
  per chosen answer other than "None", with the concept of that answer from
  :data:`CHOICE_CONCEPTS`; ``drug_exposure_start_date`` is ``steroid_start``
  when given, else the visit date.
- ``disease_type`` (Condition): one ``condition_occurrence`` with the concept
  of the answer from :data:`CHOICE_CONCEPTS`.
- ``visit_type``: the visit's ``visit_concept_id`` from :data:`VISIT_TYPES`
  (and an observation with the code, like other local fields).
- The person's ``care_site_id`` is their registry site; the care site's
  ``care_site_source_value`` is the registry site code (what results show).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from careloop.core.content import LOCAL_CONCEPT_BASE as LOCAL_CONCEPT_BASE
from careloop.core.content import ConceptMap

# Standard OMOP visit concepts (Visit domain, vocabulary "Visit"/"CMS Place of Service").
OUTPATIENT_VISIT: Final = 9202
INPATIENT_VISIT: Final = 9201
EMERGENCY_ROOM_VISIT: Final = 9203
EMERGENCY_AND_INPATIENT_VISIT: Final = 262
TELEHEALTH_VISIT: Final = 5083

# Standard LOINC measurement concepts.
BODY_HEIGHT: Final = 3036277
BODY_WEIGHT: Final = 3025315
BODY_MASS_INDEX: Final = 3038553

# careloop-local concepts of the IBD visit form.
VISIT_TYPE: Final = 2_000_000_001
PGA: Final = 2_000_000_101
PUCAI_TOTAL: Final = 2_000_000_102
SHPCDAI_TOTAL: Final = 2_000_000_103
NUTRITION: Final = 2_000_000_111
PREVISIT_PLANNING: Final = 2_000_000_121
SELF_MANAGEMENT_GOAL: Final = 2_000_000_122
CARE_PLAN_UPDATED: Final = 2_000_000_123
CROHNS_DISEASE: Final = 2_000_000_011
ULCERATIVE_COLITIS: Final = 2_000_000_012
IBD_UNCLASSIFIED: Final = 2_000_000_013
STEROID_ORAL: Final = 2_000_000_201
STEROID_INTRAVENOUS: Final = 2_000_000_202
STEROID_BUDESONIDE: Final = 2_000_000_203
# The symptoms PROM.
PROM_ABDOMINAL_PAIN: Final = 2_000_000_301
PROM_STOOL_FREQUENCY: Final = 2_000_000_302
PROM_RECTAL_BLEEDING: Final = 2_000_000_303

FIELD_CONCEPTS: Final = MappingProxyType(
    {
        # field name → (OMOP domain, concept id); codes as the form declares them.
        "visit_type": ("Observation", VISIT_TYPE),
        "pga": ("Observation", PGA),
        "height_cm": ("Measurement", BODY_HEIGHT),  # LOINC 8302-2
        "weight_kg": ("Measurement", BODY_WEIGHT),  # LOINC 29463-7
        "bmi": ("Measurement", BODY_MASS_INDEX),  # LOINC 39156-5
        "pucai_total": ("Measurement", PUCAI_TOTAL),
        "shpcdai_total": ("Measurement", SHPCDAI_TOTAL),
        "nutrition": ("Observation", NUTRITION),
        "previsit_planning": ("Observation", PREVISIT_PLANNING),
        "self_management_goal": ("Observation", SELF_MANAGEMENT_GOAL),
        "care_plan_updated": ("Observation", CARE_PLAN_UPDATED),
        "tummy_pain": ("Observation", PROM_ABDOMINAL_PAIN),
        "stools_worst_day": ("Observation", PROM_STOOL_FREQUENCY),
        "blood_in_stool": ("Observation", PROM_RECTAL_BLEEDING),
    }
)
"""Observation and measurement fields: field name → (domain, concept id)."""

CHOICE_CONCEPTS: Final = MappingProxyType(
    {
        ("disease_type", "1"): CROHNS_DISEASE,
        ("disease_type", "2"): ULCERATIVE_COLITIS,
        ("disease_type", "3"): IBD_UNCLASSIFIED,
        ("steroid_use", "1"): STEROID_ORAL,
        ("steroid_use", "2"): STEROID_INTRAVENOUS,
        ("steroid_use", "3"): STEROID_BUDESONIDE,
        **{("medications", str(code)): 2_000_000_210 + code for code in range(1, 10)},
    }
)
"""Condition and drug fields: (field name, answer code) → concept id."""

VISIT_TYPES: Final = MappingProxyType(
    {"1": OUTPATIENT_VISIT, "2": TELEHEALTH_VISIT, "3": INPATIENT_VISIT}
)
"""``visit_type`` answer code → the visit's standard ``visit_concept_id``."""

STEROIDS: Final = (STEROID_ORAL, STEROID_INTRAVENOUS, STEROID_BUDESONIDE)
CLINIC_VISITS: Final = (OUTPATIENT_VISIT, TELEHEALTH_VISIT, INPATIENT_VISIT)
PROM_ITEMS: Final = (PROM_ABDOMINAL_PAIN, PROM_STOOL_FREQUENCY, PROM_RECTAL_BLEEDING)


def local_concepts() -> dict[int, str]:
    """Every careloop-local concept id with a name (for the ``concept`` table)."""
    names = {
        VISIT_TYPE: "Type of IBD visit",
        PGA: "Physician global assessment of IBD activity",
        PUCAI_TOTAL: "PUCAI total score",
        SHPCDAI_TOTAL: "Short PCDAI total score",
        NUTRITION: "Nutritional therapy",
        PREVISIT_PLANNING: "Pre-visit planning done",
        SELF_MANAGEMENT_GOAL: "Self-management goal set",
        CARE_PLAN_UPDATED: "Care plan updated",
        CROHNS_DISEASE: "Crohn's disease (registry)",
        ULCERATIVE_COLITIS: "Ulcerative colitis (registry)",
        IBD_UNCLASSIFIED: "IBD unclassified (registry)",
        STEROID_ORAL: "Oral prednisone or prednisolone (registry)",
        STEROID_INTRAVENOUS: "Intravenous corticosteroids (registry)",
        STEROID_BUDESONIDE: "Budesonide (registry)",
        PROM_ABDOMINAL_PAIN: "Patient-reported abdominal pain",
        PROM_STOOL_FREQUENCY: "Stools on the worst day",
        PROM_RECTAL_BLEEDING: "Patient-reported blood in stool",
    }
    meds = (
        "5-ASA",
        "Thiopurine",
        "Methotrexate",
        "Infliximab",
        "Adalimumab",
        "Vedolizumab",
        "Ustekinumab",
        "Antibiotics for IBD",
        "Other IBD medication",
    )
    for code, name in enumerate(meds, start=1):
        names[2_000_000_210 + code] = f"{name} (registry)"
    return dict(sorted(names.items()))


ANSWER_LABELS: Final = MappingProxyType(
    {
        PGA: {1: "quiescent", 2: "mild", 3: "moderate", 4: "severe"},
        PREVISIT_PLANNING: {1: "yes", 0: "no"},
        SELF_MANAGEMENT_GOAL: {1: "yes", 0: "no"},
        CARE_PLAN_UPDATED: {1: "yes", 0: "no"},
    }
)
"""Answer codes of the IBD visit form's coded fields, to say criteria in words."""

CONCEPT_MAP: Final = ConceptMap(
    fields=FIELD_CONCEPTS,
    choices=CHOICE_CONCEPTS,
    visit_types=VISIT_TYPES,
    visit_type_field="visit_type",
    drug_start_fields=MappingProxyType({"steroid_use": "steroid_start"}),
    names=MappingProxyType(local_concepts()),
)
"""The ETL's concept map for the IBD registry's forms."""
