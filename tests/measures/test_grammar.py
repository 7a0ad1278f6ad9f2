"""The grammar's features on the hand-built fixture, each number worked out by hand.

See tests/measures/fixture.py for the rows and test_builtin_measures.py for
the lookback windows. Runs on DuckDB and PostgreSQL.
"""

from __future__ import annotations

from datetime import date

import pytest

from careloop.measures import compute_measure, parse_yaml
from careloop.warehouse import Warehouse

START, END = date(2024, 1, 1), date(2024, 3, 31)
CLINIC = "visit: {concepts: [9202, 5083, 9201]}"


def _network(url: str, text: str, *, by=(), start=START, end=END):
    with Warehouse.connect(url) as wh:
        frame = compute_measure(wh, parse_yaml(text), start=start, end=end, by=by)
    return frame[(frame.site == "") & (frame.stratum == "")].reset_index(drop=True)


def _counts(frame):
    return [(int(d), int(n)) for d, n in zip(frame.denominator, frame.numerator, strict=True)]


def test_exclusions_leave_the_denominator_and_are_counted(fixture_url):
    text = f"""
id: remission-without-uc
title: t
type: proportion
lookback: 12 months
denominator: {{all_of: [{CLINIC}]}}
numerator: {{observation: {{concepts: [2000000101], value: {{in: [1]}}, at: last}}}}
exclusions: {{any_of: [condition: {{concepts: [2000000012]}}]}}
"""
    rows = _network(fixture_url, text)
    # UC (P2 from 15 Jan, P3 from 20 Jan) is excluded every month.
    # Jan: P1 P2 P3 P5 − P2 P3 = P1 P5; in remission P5.  Feb: P1 P4 P5, all in remission.
    # Mar: P1 P4 P5; P4's last PGA is blank.
    assert _counts(rows) == [(2, 1), (3, 3), (3, 2)]
    assert list(rows.excluded) == [2, 2, 2]


def test_a_ratio_counts_its_numerator_outside_the_denominator_too(fixture_url):
    text = """
id: proms-per-remission
title: t
type: ratio
lookback: 12 months
denominator: {observation: {concepts: [2000000101], value: {in: [1]}, at: last}}
numerator: {observation: {concepts: [2000000301, 2000000302, 2000000303]}}
"""
    rows = _network(fixture_url, text)
    # Denominator (in remission): Jan P2 P3 P5; Feb P1 P2 P4 P5; Mar P1 P2 P5.
    # Numerator (a PROM in 12 months, in or out of the denominator): Jan P1 P3;
    # Feb P1 P3; Mar P1 P3 P4.
    assert _counts(rows) == [(3, 2), (4, 2), (3, 3)]
    assert list(rows.value) == pytest.approx([2 / 3, 2 / 4, 3 / 3])


def test_a_none_of_denominator_counts_everyone_else(fixture_url):
    text = f"""
id: not-seen
title: t
type: count
denominator: {{none_of: [{CLINIC}]}}
"""
    rows = _network(fixture_url, text)
    # Clinic visits in the month: Jan P1 P2 P3; Feb P1 P3 P4; Mar P4 only (V7 is an ER
    # visit, V10 an 8717 visit). Of the five persons the others are counted.
    assert list(rows.numerator) == [2, 2, 4]
    assert list(rows.value) == [2.0, 2.0, 4.0]


def test_at_first_reads_the_earliest_row_in_the_window(fixture_url):
    text = f"""
id: first-pga-quiescent
title: t
type: proportion
lookback: 12 months
denominator: {{all_of: [{CLINIC}]}}
numerator: {{observation: {{concepts: [2000000101], value: {{eq: 1}}, at: first}}}}
"""
    rows = _network(fixture_url, text)
    # First PGA in the window: P1's is 2 (10 Jan) throughout; P2 1; P3 1 (20 Jan);
    # P4 1 (25 Feb); P5 1 (June 2023).
    assert _counts(rows) == [(4, 3), (5, 4), (5, 4)]


def test_a_quarter_period_uses_the_quarter_end_for_its_lookback(fixture_url):
    text = f"""
id: remission-quarterly
title: t
type: proportion
period: quarter
lookback: 12 months
denominator: {{all_of: [{CLINIC}]}}
numerator: {{observation: {{concepts: [2000000101], value: {{in: [1]}}, at: last}}}}
"""
    rows = _network(fixture_url, text)
    # Q1 2024 ends 31 March: the same window and numbers as March.
    assert list(rows.period_start) == [date(2024, 1, 1)]
    assert list(rows.period_end) == [date(2024, 3, 31)]
    assert _counts(rows) == [(5, 3)]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # Heights: V1 140 and V2 150 in January; V4 141 and V6 120 in February.
        ("{between: [130, 145]}", [(2, 1), (2, 1)]),
        ("{gt: 145}", [(2, 1), (2, 0)]),
        ("{lt: 130}", [(2, 0), (2, 1)]),
        ("{in: [120, 150]}", [(2, 1), (2, 1)]),
    ],
)
def test_value_conditions_on_a_measurement(fixture_url, condition, expected):
    text = f"""
id: heights
title: t
type: proportion
subject: visit
denominator: {{measurement: {{concepts: [3036277]}}}}
numerator: {{measurement: {{concepts: [3036277], value: {condition}}}}}
"""
    rows = _network(fixture_url, text, end=date(2024, 2, 29))
    assert _counts(rows) == expected


def test_a_text_value_is_compared_as_text(fixture_url):
    text = """
id: pga-text
title: t
type: count
denominator:
  observation: {concepts: [2000000101], value: {eq: 1}, value_column: value_as_string}
"""
    rows = _network(fixture_url, text)
    # PGA "1" in the month: Jan P2 P3; Feb P1 P4; none in March.
    assert list(rows.numerator) == [2, 2, 0]


def test_age_bands_use_the_age_reached_in_the_period_year(fixture_url):
    text = f"""
id: remission-by-age
title: t
type: proportion
lookback: 12 months
stratify: [age_band]
denominator: {{all_of: [{CLINIC}]}}
numerator: {{observation: {{concepts: [2000000101], value: {{in: [1]}}, at: last}}}}
"""
    with Warehouse.connect(fixture_url) as wh:
        frame = compute_measure(wh, parse_yaml(text), start=START, end=date(2024, 1, 31))
    got = {r.stratum: (r.denominator, r.numerator) for r in frame.itertuples()}
    # In 2024: P1 14, P2 12, P5 13 (10-14; P2 and P5 in remission); P3 16 (15-17, in remission).
    assert got == {"": (4, 3), "age_band=10-14": (3, 2), "age_band=15-17": (1, 1)}


def test_death_criteria_match_the_person_or_the_visits_period(tmp_path):
    import pandas as pd

    from tests.measures import fixture

    with Warehouse.connect(f"duckdb://{tmp_path / 'w.duckdb'}") as wh:
        fixture.load(wh)
        wh.insert(
            "death",
            pd.DataFrame(
                {
                    "person_id": [3],
                    "death_date": [date(2024, 2, 10)],
                    "death_type_concept_id": [32817],
                    "cause_concept_id": [0],
                }
            ),
        )
        people = compute_measure(
            wh,
            parse_yaml("id: d\ntitle: t\ntype: count\ndenominator: {death: {}}"),
            start=START,
            end=END,
        )
        visits = compute_measure(
            wh,
            parse_yaml(
                "id: v\ntitle: t\ntype: proportion\nsubject: visit\n"
                f"denominator: {{{CLINIC}}}\nnumerator: {{death: {{}}}}"
            ),
            start=START,
            end=END,
        )
    # P3 died on 10 February: one death in February.
    assert list(people.numerator) == [0, 1, 0]
    # Clinic visits of February: V4 V5 V6; V5 is P3's (20 February, same month as the death).
    assert _counts(visits) == [(3, 0), (3, 1), (1, 0)]


def test_a_ratio_takes_its_exclusions_out_of_both_terms(fixture_url):
    text = """
id: proms-per-remission-without-uc
title: t
type: ratio
lookback: 12 months
denominator: {observation: {concepts: [2000000101], value: {in: [1]}, at: last}}
numerator: {observation: {concepts: [2000000301, 2000000302, 2000000303]}}
exclusions: {condition: {concepts: [2000000012]}}
"""
    rows = _network(fixture_url, text)
    # UC (P2, P3) is excluded from both. Denominator: Jan P2 P3 P5 → P5; Feb P1 P2 P4 P5 →
    # P1 P4 P5; Mar P1 P2 P5 → P1 P5. Numerator: Jan P1 P3 → P1; Feb P1 P3 → P1;
    # Mar P1 P3 P4 → P1 P4. Excluded counts the denominator's UC patients: 2, 1, 1.
    assert _counts(rows) == [(1, 1), (3, 1), (2, 2)]
    assert list(rows.excluded) == [2, 1, 1]
