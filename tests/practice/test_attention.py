"""A site's measures needing attention: a latest point of special cause of concern, read from
the dashboards' signals (the planted series of tests/practice/test_dashboards.py)."""

from __future__ import annotations

import pytest

from careloop.core.errors import PermissionDenied
from careloop.measures import MeasureCatalog, parse_yaml
from careloop.practice.feedback.attention import site_attention
from careloop.practice.feedback.dashboards import StoredResults
from careloop.trust.principal import Grant, Principal
from tests.practice.test_dashboards import CATALOG, CLINICIAN, _stored

# The same numbers read as a measure where lower is better: the planted rise is a concern.
FEWER = parse_yaml(
    """
id: visit-flare
title: Visits in flare
type: proportion
subject: visit
period: month
improvement: down
denominator: {visit: {concepts: [9202]}}
numerator: {observation: {concepts: [2000000101], value: {in: [1]}}}
"""
)
LEAD = Principal(user_id=2, email="lead@x", grants=(Grant("site_lead", 1, "S1"),))
PATIENT = Principal(user_id=3, email="p@x", grants=(Grant("patient", 1, "S1"),))


def _as_fewer(stored: StoredResults, run_id: str) -> StoredResults:
    frame = stored.frame.assign(measure_id=FEWER.id, definition_hash=FEWER.definition_hash)
    return StoredResults(run_id, None, frame)


def test_a_rise_of_a_measure_where_lower_is_better_needs_attention_at_the_site():
    stored = _as_fewer(_stored(jump_at=18), "run-concern")
    found = site_attention(stored, MeasureCatalog((FEWER,)), "s1", LEAD)
    assert (found.site, found.run_id, found.measures) == ("S1", "run-concern", 1)
    [item] = found.attention
    latest = stored.rows(FEWER.id, "S1").iloc[-1]
    assert (item.measure_id, item.period_start, item.percent) == (
        FEWER.id,
        latest.period_start,
        True,
    )
    assert item.value == pytest.approx(latest.value)
    assert item.outside_limits > 0 or item.runs_signal


def test_an_improvement_or_a_flat_series_needs_no_attention():
    rising = site_attention(_stored(jump_at=18), CATALOG, "S1", LEAD)
    assert rising.measures == 1 and rising.attention == ()
    flat = site_attention(
        _as_fewer(_stored(jump_at=99), "run-flat"), MeasureCatalog((FEWER,)), "S1", LEAD
    )
    assert flat.attention == ()


def test_the_answer_is_kept_per_run_and_site_but_still_refused_to_whoever_may_not_see_it():
    stored = _as_fewer(_stored(jump_at=18), "run-kept")
    catalog = MeasureCatalog((FEWER,))
    first = site_attention(stored, catalog, "S1", CLINICIAN)
    assert site_attention(stored, catalog, "S1", LEAD) is first
    with pytest.raises(PermissionDenied):
        site_attention(stored, catalog, "S1", PATIENT)
