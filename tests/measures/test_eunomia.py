"""A measure on the real Eunomia GiBleed set (../shared/data/eunomia_gibleed), checked against plain SQL.

The SQL below is written independently of the compiler: persons with an NSAID
(celecoxib or diclofenac, with every descendant through concept_ancestor)
started in the two years up to each year's end, and of those, persons with a
GI haemorrhage (192671 and descendants) in the same window, per year and sex.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from careloop.measures import compute_measure, data_extent, parse_yaml
from careloop.warehouse import Warehouse, load_omop_csv
from tests.warehouse.engine_warnings import ENGINE_WARNINGS

pytestmark = [*ENGINE_WARNINGS, pytest.mark.slow]

MEASURE = """
id: gi-bleed-in-nsaid-users
title: NSAID users with a GI haemorrhage
type: proportion
period: year
lookback: 2 years
improvement: down
stratify: [sex]
denominator: {drug: {concepts: [1118084, 1124300], descendants: true}}
numerator: {condition: {concepts: [192671], descendants: true}}
"""

SQL = """
WITH years AS (
  SELECT make_date(y, 1, 1) AS ps, make_date(y, 12, 31) AS pe, make_date(y - 1, 1, 1) AS ws
  FROM range(2000, 2011) AS r(y)
),
nsaid AS (
  SELECT descendant_concept_id AS id FROM concept_ancestor
  WHERE ancestor_concept_id IN (1118084, 1124300)
  UNION SELECT 1118084 UNION SELECT 1124300
),
bleed AS (
  SELECT descendant_concept_id AS id FROM concept_ancestor WHERE ancestor_concept_id = 192671
  UNION SELECT 192671
),
den AS (
  SELECT DISTINCT d.person_id, y.ps FROM drug_exposure d
  JOIN years y ON d.drug_exposure_start_date BETWEEN y.ws AND y.pe
  WHERE d.drug_concept_id IN (SELECT id FROM nsaid)
),
num AS (
  SELECT DISTINCT c.person_id, y.ps FROM condition_occurrence c
  JOIN years y ON c.condition_start_date BETWEEN y.ws AND y.pe
  WHERE c.condition_concept_id IN (SELECT id FROM bleed)
)
SELECT den.ps, p.gender_concept_id, count(*) AS denominator, count(num.person_id) AS numerator
FROM den JOIN person p USING (person_id)
LEFT JOIN num USING (person_id, ps)
GROUP BY ALL ORDER BY 1, 2
"""


@pytest.fixture(scope="module")
def eunomia(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = shared_data / "eunomia_gibleed"
    if not (folder / "person.csv").exists():
        pytest.skip("../shared/data/eunomia_gibleed is absent")
    path = tmp_path_factory.mktemp("eunomia") / "eunomia.duckdb"
    with Warehouse.connect(f"duckdb://{path}") as wh:
        load_omop_csv(wh, folder)
    with Warehouse.connect(f"duckdb://{path}") as wh:
        yield wh


def test_a_measure_with_descendants_matches_plain_sql_on_eunomia(eunomia):
    results = compute_measure(
        eunomia, parse_yaml(MEASURE), start=date(2000, 1, 1), end=date(2010, 12, 31)
    )
    expected = eunomia.ibis.con.execute(SQL).fetchall()
    sex = {8507: "male", 8532: "female"}
    want = {(ps, f"sex={sex[g]}"): (den, num) for ps, g, den, num in expected}
    for ps in {k[0] for k in want}:
        want[(ps, "")] = tuple(
            sum(v[i] for k, v in want.items() if k[0] == ps and k[1]) for i in (0, 1)
        )
    got = {
        (r.period_start, r.stratum): (r.denominator, r.numerator)
        for r in results.itertuples()
        if r.denominator > 0
    }
    assert got == want
    assert sum(v[0] for k, v in want.items() if k[1] == "") > 1000  # a real test, not zeros
    assert sum(v[1] for k, v in want.items() if k[1] == "") > 50


def test_the_default_period_of_a_run_is_the_extent_of_the_data(eunomia):
    # Eunomia's visits end in 2019, years before today: a run with no period must
    # cover them, not the last twelve months (which hold nothing).
    extent = data_extent(eunomia)
    expected = eunomia.ibis.con.execute(
        "SELECT min(visit_start_date), max(visit_start_date) FROM visit_occurrence"
    ).fetchone()
    assert extent == expected
    assert extent is not None and extent[1].year < date.today().year - 1
