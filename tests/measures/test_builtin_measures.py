"""Every built-in measure on the hand-built fixture (tests/measures/fixture.py).

The expected numbers are worked out by hand from the fixture's rows; the
comment beside each shows the arithmetic. Months are January, February and
March 2024. Lookback windows: 12 months ending January 2024 is 2023-02-01 to
2024-01-31; ending February 2023-03-01 to 2024-02-29; ending March 2023-04-01
to 2024-03-31. Three months ending January is 2023-11-01 to 2024-01-31,
February 2023-12-01 to 2024-02-29, March 2024-01-01 to 2024-03-31.

Each test runs on DuckDB and on PostgreSQL (``fixture_url``); the last test
compares the two engines' complete result frames.
"""

from __future__ import annotations

import math
from datetime import date
from functools import cache

import pandas as pd
import pytest

from careloop.measures import builtin_measures, run_measures
from careloop.warehouse import Warehouse
from tests.measures import fixture

START, END = date(2024, 1, 1), date(2024, 3, 31)

# measure id → [(denominator, numerator) for January, February, March]
EXPECTED: dict[str, list[tuple[int, int]]] = {
    # Persons with a clinic visit (9202/5083/9201) in 12 months: Jan P1 P2 P3 P5 (V8 2023-06);
    # Feb and Mar also P4. Last PGA quiescent (1): Jan P2 P3 P5 (P1's last is 2 = mild);
    # Feb P1 P2 P4 P5 (P3's last is 3); Mar P1 P2 P5 (P4's last PGA, 15 March, has no value).
    "remission-prevalence": [(4, 3), (5, 4), (5, 3)],
    # Same people with a PGA value in the window. In remission at the last PGA with no
    # PGA of 2-4 and no steroid in the window: Jan P3 P5 (P2 had prednisolone 2023-12-01);
    # Feb P4 P5 (P1 had a mild PGA in January); Mar P5 only (P4's last PGA is blank).
    "sustained-steroid-free-remission": [(4, 2), (5, 2), (5, 1)],
    # Clinic visits: Jan V1 V2 V3, Feb V4 V5 V6, Mar V9 (V7 is an ER visit).
    # With a PGA value: all but V9 (blank).
    "visits-with-complete-pga": [(3, 3), (3, 3), (1, 0)],
    # In-person visits (9202/9201): Jan V1 V2 (V3 is telehealth), Feb V4 V5 V6, Mar V9.
    # Height and weight: V1, V4 (V2 no weight, V5 none, V6 weight blank).
    "growth-assessed": [(2, 1), (3, 1), (1, 0)],
    # Clinic visits as above; nutrition recorded: V1; V4 V6 (V5's is blank); none.
    "nutrition-assessed": [(3, 1), (3, 2), (1, 0)],
    # Denominator as remission; steroids in 12 months: P2 (2023-12-01) in every window.
    "steroid-exposure": [(4, 1), (5, 1), (5, 1)],
    # Outpatient or telehealth visits: Jan V1 V2 V3, Feb V4 V6, Mar V9. All three items
    # yes: V1 V3 (V2 no self-management goal); V4 (V6 no care plan); none.
    "model-care-adherence": [(3, 2), (2, 1), (1, 0)],
    # Clinic visit in 3 months: Jan P1 P2 P3; Feb and Mar P1 P2 P3 P4. A PROM in 3 months:
    # Jan P1 (01-05) P3 (2023-11-25); Feb P1 only (P3's falls before 12-01); Mar P1 P4 (03-20).
    "prom-completion": [(3, 2), (4, 1), (4, 2)],
    # ER or inpatient visits with descendants: Feb V5 (9201); Mar V7 (9203) and V10 (8717,
    # a descendant of 9201 through concept_ancestor).
    "emergency-visits": [(0, 0), (1, 1), (2, 2)],
    # PGA, height, weight and PUCAI or shPCDAI: V1 of Jan's V1 V2 V3; V4 of Feb's V4 V5 V6;
    # not V9.
    "data-completeness": [(3, 1), (3, 1), (1, 0)],
    # Clinic visit and UC/IBD-U in 12 months: P2 and P3 every month; both have a PUCAI.
    "pucai-median": [(2, 2), (2, 2), (2, 2)],
}
PUCAI_MEDIANS = [
    10.0,  # P2's last PUCAI 15, P3's last 5 (20 January): (5 + 15) / 2
    27.5,  # P2 15, P3 40 (20 February): (15 + 40) / 2
    27.5,  # unchanged in March
]
BY_SITE_REMISSION = {
    # site A = P1 P2 P5, site B = P3 P4 (person.care_site_id)
    ("A", 1): (3, 2),  # P2 P5 in remission; P1 mild
    ("A", 2): (3, 3),
    ("A", 3): (3, 3),
    ("B", 1): (1, 1),  # P3 only (P4 not yet seen)
    ("B", 2): (2, 1),  # P4 in remission, P3 moderate
    ("B", 3): (2, 0),  # P3 moderate, P4 blank
}


@cache
def _run(url: str) -> pd.DataFrame:
    with Warehouse.connect(url) as wh:
        run = run_measures(wh, builtin_measures(), start=START, end=END, by=["site", "sex"])
    assert run.failures == ()
    return run.results


def _network(results: pd.DataFrame, measure_id: str) -> pd.DataFrame:
    rows = results[(results.measure_id == measure_id) & (results.site == "")]
    return rows[rows.stratum == ""].sort_values("period_start")


@pytest.mark.parametrize("measure_id", sorted(EXPECTED))
def test_builtin_measure_matches_the_hand_computed_numbers(fixture_url, measure_id):
    rows = _network(_run(fixture_url), measure_id)
    assert list(rows.period_start) == [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]
    assert list(rows.period_end) == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]
    got = list(zip(rows.denominator, rows.numerator, strict=True))
    assert got == EXPECTED[measure_id]
    for (den, num), value in zip(EXPECTED[measure_id], rows.value, strict=True):
        if measure_id == "emergency-visits":
            assert value == num  # a count: the value is the number of visits
        elif measure_id != "pucai-median":
            assert (math.isnan(value) and den == 0) or value == pytest.approx(num / den)


def test_every_builtin_measure_has_hand_computed_numbers():
    assert sorted(m.id for m in builtin_measures()) == sorted(EXPECTED)


def test_continuous_measure_gives_the_median_of_the_last_values(fixture_url):
    rows = _network(_run(fixture_url), "pucai-median")
    assert list(rows.value) == PUCAI_MEDIANS


def test_by_site_adds_a_row_per_site_beside_the_network_row(fixture_url):
    results = _run(fixture_url)
    rows = results[(results.measure_id == "remission-prevalence") & (results.stratum == "")]
    got = {
        (r.site, r.period_start.month): (r.denominator, r.numerator)
        for r in rows.itertuples()
        if r.site
    }
    assert got == BY_SITE_REMISSION
    assert set(rows.site) == {"", "A", "B"}


def test_sex_strata_split_the_network_counts(fixture_url):
    results = _run(fixture_url)
    rows = results[
        (results.measure_id == "remission-prevalence")
        & (results.site == "")
        & (results.period_start == date(2024, 1, 1))
    ]
    got = {r.stratum: (r.denominator, r.numerator) for r in rows.itertuples()}
    # January: male P1 (mild); female P2 P3 P5 (all quiescent).
    assert got == {"": (4, 3), "sex=male": (1, 0), "sex=female": (3, 3)}


def test_site_rows_are_crossed_with_sex_strata(fixture_url):
    results = _run(fixture_url)
    rows = results[
        (results.measure_id == "remission-prevalence")
        & (results.site == "B")
        & (results.period_start == date(2024, 2, 1))
    ]
    got = {r.stratum: (r.denominator, r.numerator) for r in rows.itertuples()}
    # February at B: P3 female moderate, P4 male quiescent.
    assert got == {"": (2, 1), "sex=female": (1, 0), "sex=male": (1, 1)}


def test_small_denominators_are_flagged(fixture_url):
    results = _run(fixture_url)
    assert results.small_denominator.all()  # every fixture cell has at most 10 subjects
    assert (results.definition_hash.str.len() == 16).all()


def test_every_builtin_measure_gives_identical_results_on_duckdb_and_postgres(
    postgres_database, tmp_path
):
    duck_url = f"duckdb://{tmp_path / 'w.duckdb'}"
    for url in (duck_url, postgres_database):
        with Warehouse.connect(url) as wh:
            fixture.load(wh)
    with Warehouse.connect(duck_url) as duck, Warehouse.connect(postgres_database) as pg:
        kwargs = {"start": date(2023, 6, 1), "end": END, "by": ["site", "sex", "age_band"]}
        a = run_measures(duck, builtin_measures(), **kwargs).results
        b = run_measures(pg, builtin_measures(), **kwargs).results
    assert len(a) > 300
    pd.testing.assert_frame_equal(a, b)
