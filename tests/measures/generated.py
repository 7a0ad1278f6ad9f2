"""A random OMOP warehouse with sites of very different sizes, for disclosure-control tests.

The hand-built fixture (fixture.py) has five patients, so every count is
small and everything is hidden; suppression only shows what it does when
large and small counts sit side by side. :func:`load` writes ``persons``
patients spread over five sites (one of them tiny), with outpatient and
emergency visits over a year and a physician global assessment (PGA)
at some visits; :data:`MEASURES` defines proportions, counts and a
continuous measure and three more on them (written to a folder by :func:`write_measures`).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from careloop.warehouse import Warehouse

MALE, FEMALE = 8507, 8532
OUTPATIENT, EMERGENCY = 9202, 9203
PGA = 2000000101
WEIGHT = 3025315
SITES = ("A", "B", "C", "D", "E")
SITE_WEIGHTS = (0.45, 0.3, 0.15, 0.07, 0.03)
START = date(2023, 1, 1)

MEASURES = {
    "pga-quiescent": """\
id: pga-quiescent
title: Patients whose last PGA was quiescent
type: proportion
subject: person
period: month
denominator: {visit: {concepts: [9202]}}
numerator: {observation: {concepts: [2000000101], value: {in: [1]}, at: last}}
""",
    "urgent-visits": """\
id: urgent-visits
title: Emergency visits
type: count
subject: visit
period: month
denominator: {visit: {concepts: [9203]}}
""",
    "weight-mean": """\
id: weight-mean
title: Mean weight at the last visit
type: continuous
aggregate: mean
subject: person
period: month
denominator: {visit: {concepts: [9202]}}
value: {measurement: {concepts: [3025315], at: last}}
""",
    "pga-recorded": """\
id: pga-recorded
title: Outpatient visits with a PGA
type: proportion
subject: visit
period: month
denominator: {visit: {concepts: [9202]}}
numerator: {observation: {concepts: [2000000101]}}
""",
    "urgent-patients": """\
id: urgent-patients
title: Patients with an emergency visit
type: count
subject: person
period: month
denominator: {visit: {concepts: [9203]}}
""",
    "weighed-quarterly": """\
id: weighed-quarterly
title: Patients weighed in the quarter
type: proportion
subject: person
period: quarter
denominator: {visit: {concepts: [9202]}}
numerator: {measurement: {concepts: [3025315]}}
""",
}


def write_measures(folder: Path) -> Path:
    """Write :data:`MEASURES` as YAML files into ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in MEASURES.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def tables(persons: int = 400, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The random OMOP tables as data frames."""
    rng = np.random.default_rng(seed)
    site = rng.choice(len(SITES), size=persons, p=SITE_WEIGHTS) + 1
    sex = rng.choice([MALE, FEMALE, 0], size=persons, p=[0.49, 0.49, 0.02])
    person = pd.DataFrame(
        {
            "person_id": np.arange(1, persons + 1),
            "gender_concept_id": sex,
            "year_of_birth": rng.integers(2004, 2022, size=persons),
            "race_concept_id": 0,
            "ethnicity_concept_id": 0,
            "care_site_id": site,
            "person_source_value": [f"p{i}" for i in range(1, persons + 1)],
        }
    )
    visits: list[tuple[int, int, int, date, int]] = []
    observations: list[tuple[int, int, int, date, int, float]] = []
    measurements: list[tuple[int, int, int, date, int, float]] = []
    for pid, s in zip(person.person_id, site, strict=True):
        for _ in range(int(rng.integers(0, 8))):
            day = START + timedelta(days=int(rng.integers(0, 366)))
            concept = EMERGENCY if rng.random() < 0.02 else OUTPATIENT
            vid = len(visits) + 1
            visits.append((vid, int(pid), concept, day, int(s)))
            if concept == OUTPATIENT and rng.random() < 0.8:
                value = 1.0 if rng.random() < 0.6 else 2.0
                observations.append((len(observations) + 1, int(pid), PGA, day, vid, value))
            if concept == OUTPATIENT and rng.random() < 0.7:
                kg = float(round(rng.normal(40, 12), 1))
                measurements.append((len(measurements) + 1, int(pid), WEIGHT, day, vid, kg))
    return {
        "care_site": pd.DataFrame(
            {
                "care_site_id": list(range(1, len(SITES) + 1)),
                "care_site_name": [f"Site {c}" for c in SITES],
                "care_site_source_value": list(SITES),
            }
        ),
        "person": person,
        "visit_occurrence": pd.DataFrame(
            {
                "visit_occurrence_id": [v[0] for v in visits],
                "person_id": [v[1] for v in visits],
                "visit_concept_id": [v[2] for v in visits],
                "visit_start_date": [v[3] for v in visits],
                "visit_end_date": [v[3] for v in visits],
                "visit_type_concept_id": 32817,
                "care_site_id": [v[4] for v in visits],
            }
        ),
        "observation": pd.DataFrame(
            {
                "observation_id": [o[0] for o in observations],
                "person_id": [o[1] for o in observations],
                "observation_concept_id": [o[2] for o in observations],
                "observation_date": [o[3] for o in observations],
                "observation_type_concept_id": 32879,
                "visit_occurrence_id": pd.array([o[4] for o in observations], dtype="Int64"),
                "value_as_number": pd.array([o[5] for o in observations], dtype="Float64"),
                "value_as_string": [str(int(o[5])) for o in observations],
            }
        ),
        "measurement": pd.DataFrame(
            {
                "measurement_id": [m[0] for m in measurements],
                "person_id": [m[1] for m in measurements],
                "measurement_concept_id": [m[2] for m in measurements],
                "measurement_date": [m[3] for m in measurements],
                "measurement_type_concept_id": 32817,
                "visit_occurrence_id": [m[4] for m in measurements],
                "value_as_number": pd.array([m[5] for m in measurements], dtype="Float64"),
            }
        ),
    }


def load(warehouse: Warehouse, *, persons: int = 400, seed: int = 0) -> None:
    """Create the OMOP tables in ``warehouse`` and fill them with random patients."""
    data = tables(persons, seed)
    warehouse.create_schema(
        tables=[*data, "death", "procedure_occurrence", "condition_occurrence", "drug_exposure"]
    )
    for name, frame in data.items():
        warehouse.insert(name, frame)
