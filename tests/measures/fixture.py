"""A small hand-built OMOP warehouse for the measure tests.

Two care sites (A = 1, B = 2), five persons, ten visits from June 2023 to
March 2024, and the observations, measurements, drugs and conditions the
built-in measures read. Every expected number in test_builtin_measures.py is
worked out by hand from the rows below.

    person  sex     born  site
    1       male    2010  A
    2       female  2012  A
    3       female  2008  B
    4       male    2015  B
    5       female  2011  A
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from careloop.content.ibd import concepts as c
from careloop.warehouse import Warehouse

MALE, FEMALE = 8507, 8532
INPATIENT_HOSPITAL = 8717  # a descendant of 9201 (Inpatient Visit) in the OMOP vocabulary

D = date.fromisoformat


def _visits() -> pd.DataFrame:
    rows = [
        # id, person, concept, date, care site
        (1, 1, 9202, "2024-01-10", 1),
        (2, 2, 9202, "2024-01-15", 1),
        (3, 3, 5083, "2024-01-20", 2),
        (4, 1, 9202, "2024-02-12", 1),
        (5, 3, 9201, "2024-02-20", 2),
        (6, 4, 9202, "2024-02-25", 2),
        (7, 2, 9203, "2024-03-05", 1),
        (8, 5, 9202, "2023-06-01", 1),
        (9, 4, 9202, "2024-03-15", 2),
        (10, 3, INPATIENT_HOSPITAL, "2024-03-02", 2),
    ]
    return pd.DataFrame(
        {
            "visit_occurrence_id": [r[0] for r in rows],
            "person_id": [r[1] for r in rows],
            "visit_concept_id": [r[2] for r in rows],
            "visit_start_date": [D(r[3]) for r in rows],
            "visit_end_date": [D(r[3]) for r in rows],
            "visit_type_concept_id": 32817,
            "care_site_id": [r[4] for r in rows],
        }
    )


def _observations() -> pd.DataFrame:
    pga = c.PGA
    rows = [
        # id, person, concept, date, visit, value
        (1, 1, pga, "2024-01-10", 1, 2.0),
        (2, 2, pga, "2024-01-15", 2, 1.0),
        (3, 3, pga, "2024-01-20", 3, 1.0),
        (4, 1, pga, "2024-02-12", 4, 1.0),
        (5, 3, pga, "2024-02-20", 5, 3.0),
        (6, 4, pga, "2024-02-25", 6, 1.0),
        (7, 5, pga, "2023-06-01", 8, 1.0),
        (8, 4, pga, "2024-03-15", 9, None),
        (11, 1, c.NUTRITION, "2024-01-10", 1, 1.0),
        (12, 1, c.NUTRITION, "2024-02-12", 4, 2.0),
        (13, 4, c.NUTRITION, "2024-02-25", 6, 1.0),
        (14, 3, c.NUTRITION, "2024-02-20", 5, None),
        # model of care: pre-visit planning, self-management goal, care plan
        (21, 1, c.PREVISIT_PLANNING, "2024-01-10", 1, 1.0),
        (22, 1, c.SELF_MANAGEMENT_GOAL, "2024-01-10", 1, 1.0),
        (23, 1, c.CARE_PLAN_UPDATED, "2024-01-10", 1, 1.0),
        (24, 2, c.PREVISIT_PLANNING, "2024-01-15", 2, 1.0),
        (25, 2, c.SELF_MANAGEMENT_GOAL, "2024-01-15", 2, 0.0),
        (26, 2, c.CARE_PLAN_UPDATED, "2024-01-15", 2, 1.0),
        (27, 3, c.PREVISIT_PLANNING, "2024-01-20", 3, 1.0),
        (28, 3, c.SELF_MANAGEMENT_GOAL, "2024-01-20", 3, 1.0),
        (29, 3, c.CARE_PLAN_UPDATED, "2024-01-20", 3, 1.0),
        (30, 1, c.PREVISIT_PLANNING, "2024-02-12", 4, 1.0),
        (31, 1, c.SELF_MANAGEMENT_GOAL, "2024-02-12", 4, 1.0),
        (32, 1, c.CARE_PLAN_UPDATED, "2024-02-12", 4, 1.0),
        (33, 4, c.PREVISIT_PLANNING, "2024-02-25", 6, 1.0),
        (34, 4, c.SELF_MANAGEMENT_GOAL, "2024-02-25", 6, 1.0),
        # PROMs (no visit)
        (41, 1, c.PROM_ABDOMINAL_PAIN, "2024-01-05", None, 1.0),
        (42, 3, c.PROM_RECTAL_BLEEDING, "2023-11-25", None, 0.0),
        (43, 4, c.PROM_STOOL_FREQUENCY, "2024-03-20", None, 3.0),
    ]
    return pd.DataFrame(
        {
            "observation_id": [r[0] for r in rows],
            "person_id": [r[1] for r in rows],
            "observation_concept_id": [r[2] for r in rows],
            "observation_date": [D(r[3]) for r in rows],
            "observation_type_concept_id": 32879,
            "visit_occurrence_id": pd.array([r[4] for r in rows], dtype="Int64"),
            "value_as_number": pd.array([r[5] for r in rows], dtype="Float64"),
            "value_as_string": [None if r[5] is None else str(int(r[5])) for r in rows],
        }
    )


def _measurements() -> pd.DataFrame:
    h, w = c.BODY_HEIGHT, c.BODY_WEIGHT
    rows = [
        (1, 1, h, "2024-01-10", 1, 140.0),
        (2, 1, w, "2024-01-10", 1, 35.0),
        (3, 2, h, "2024-01-15", 2, 150.0),
        (4, 1, h, "2024-02-12", 4, 141.0),
        (5, 1, w, "2024-02-12", 4, 36.0),
        (6, 4, h, "2024-02-25", 6, 120.0),
        (7, 4, w, "2024-02-25", 6, None),
        (8, 3, c.PUCAI_TOTAL, "2024-01-20", 3, 5.0),
        (9, 3, c.PUCAI_TOTAL, "2024-02-20", 5, 40.0),
        (10, 1, c.SHPCDAI_TOTAL, "2024-01-10", 1, 10.0),
        (11, 1, c.SHPCDAI_TOTAL, "2024-02-12", 4, 7.5),
        (12, 2, c.PUCAI_TOTAL, "2024-01-15", 2, 15.0),
    ]
    return pd.DataFrame(
        {
            "measurement_id": [r[0] for r in rows],
            "person_id": [r[1] for r in rows],
            "measurement_concept_id": [r[2] for r in rows],
            "measurement_date": [D(r[3]) for r in rows],
            "measurement_type_concept_id": 32817,
            "visit_occurrence_id": [r[4] for r in rows],
            "value_as_number": pd.array([r[5] for r in rows], dtype="Float64"),
        }
    )


def tables() -> dict[str, pd.DataFrame]:
    """The fixture's OMOP tables as data frames."""
    return {
        "care_site": pd.DataFrame(
            {
                "care_site_id": [1, 2],
                "care_site_name": ["Site A", "Site B"],
                "care_site_source_value": ["A", "B"],
            }
        ),
        "person": pd.DataFrame(
            {
                "person_id": [1, 2, 3, 4, 5],
                "gender_concept_id": [MALE, FEMALE, FEMALE, MALE, FEMALE],
                "year_of_birth": [2010, 2012, 2008, 2015, 2011],
                "race_concept_id": 0,
                "ethnicity_concept_id": 0,
                "care_site_id": [1, 1, 2, 2, 1],
                "person_source_value": ["p1", "p2", "p3", "p4", "p5"],
            }
        ),
        "visit_occurrence": _visits(),
        "observation": _observations(),
        "measurement": _measurements(),
        "drug_exposure": pd.DataFrame(
            {
                "drug_exposure_id": [1],
                "person_id": [2],
                "drug_concept_id": [c.STEROID_ORAL],
                "drug_exposure_start_date": [D("2023-12-01")],
                "drug_exposure_end_date": [D("2023-12-21")],
                "drug_type_concept_id": [32817],
            }
        ),
        "condition_occurrence": pd.DataFrame(
            {
                "condition_occurrence_id": [1, 2, 3],
                "person_id": [1, 2, 3],
                "condition_concept_id": [
                    c.CROHNS_DISEASE,
                    c.ULCERATIVE_COLITIS,
                    c.ULCERATIVE_COLITIS,
                ],
                "condition_start_date": [D("2024-01-10"), D("2024-01-15"), D("2024-01-20")],
                "condition_type_concept_id": 32817,
                "visit_occurrence_id": [1, 2, 3],
            }
        ),
        "concept_ancestor": pd.DataFrame(
            {
                "ancestor_concept_id": [9201, 9201, 9203, 262, 9202],
                "descendant_concept_id": [9201, INPATIENT_HOSPITAL, 9203, 262, 9202],
                "min_levels_of_separation": [0, 1, 0, 0, 0],
                "max_levels_of_separation": [0, 1, 0, 0, 0],
            }
        ),
    }


def load(warehouse: Warehouse, *, skip: tuple[str, ...] = ()) -> None:
    """Create the OMOP tables in ``warehouse`` and load the fixture (minus ``skip``)."""
    data = {k: v for k, v in tables().items() if k not in skip}
    warehouse.create_schema(tables=[*data, "death", "procedure_occurrence"])
    for name, frame in data.items():
        warehouse.insert(name, frame)
