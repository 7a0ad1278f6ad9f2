"""The dashboards' data: phases and annotations at deployments, signals, funnel windows, access."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from careloop.core.errors import NotFound, PermissionDenied
from careloop.measures import MeasureCatalog, parse_yaml
from careloop.practice.feedback.dashboards import (
    Deployed,
    StoredResults,
    measure_detail,
    measure_numbers,
    overview,
    site_view,
)
from careloop.trust.principal import Grant, Principal

_MEASURE_YAML = """
id: visit-remission
title: Visits in remission
type: proportion
subject: visit
period: month
improvement: up
target: 0.8
denominator: {visit: {concepts: [9202]}}
numerator: {observation: {concepts: [2000000101], value: {in: [1]}}}
"""
MEASURE = parse_yaml(_MEASURE_YAML)
CATALOG = MeasureCatalog((MEASURE,))
CLINICIAN = Principal(user_id=1, email="c@x", grants=(Grant("clinician", 1, "S1"),))


def _stored(jump_at: int = 18) -> StoredResults:
    """Two sites, 24 months, 100 visits a month each; remission 50% → 80% from month ``jump_at``."""
    rng = np.random.default_rng(7)
    rows = []
    months = pd.date_range("2022-01-01", periods=24, freq="MS")
    for site in ("S1", "S2"):
        for i, start in enumerate(months):
            p = 0.8 if i >= jump_at else 0.5
            num = int(rng.binomial(100, p))
            rows.append((site, start.date(), (start + pd.offsets.MonthEnd(0)).date(), num, 100))
    frame = pd.DataFrame(
        rows, columns=["site", "period_start", "period_end", "numerator", "denominator"]
    )
    network = (
        frame.groupby(["period_start", "period_end"], as_index=False)[["numerator", "denominator"]]
        .sum()
        .assign(site="")
    )
    frame = pd.concat([network, frame], ignore_index=True)
    frame = frame.assign(
        measure_id=MEASURE.id,
        definition_hash=MEASURE.definition_hash,
        stratum="",
        value=frame.numerator / frame.denominator,
        excluded=0,
        small_denominator=frame.denominator <= 10,
    )
    return StoredResults("run-1", None, frame)


def test_a_network_wide_deployment_starts_a_phase_and_is_marked_on_every_chart():
    deployed = Deployed("steroid-sparing 1.0 (all sites)", date(2023, 7, 12), ())
    detail = measure_detail(_stored(), CATALOG, MEASURE.id, CLINICIAN, deployments=[deployed])
    assert detail.network.chart is not None
    parts = detail.network.chart.points.groupby("part")["x"].min()
    assert list(parts) == [pd.Timestamp("2022-01-01"), pd.Timestamp("2023-07-01")]
    assert [a.label for a in detail.network.annotations] == [deployed.label]
    for site in detail.sites:
        assert site.chart is not None and site.chart.points["part"].max() == 2
        assert site.annotations[0].kind == "deployment"


def test_a_deployment_at_one_site_is_a_phase_of_that_site_only():
    deployed = Deployed("steroid-sparing 1.0 (S1)", date(2023, 7, 1), ("S1",))
    detail = measure_detail(_stored(), CATALOG, MEASURE.id, CLINICIAN, deployments=[deployed])
    s1, s2 = detail.sites
    assert detail.network.chart is not None and detail.network.chart.points["part"].max() == 1
    assert len(detail.network.annotations) == 1  # still marked on the network chart
    assert s1.chart is not None and s1.chart.points["part"].max() == 2
    assert s2.chart is not None and s2.chart.points["part"].max() == 1 and not s2.annotations


def test_a_planted_rise_is_a_signal_of_improvement_and_a_flat_series_is_common_cause():
    rising = overview(_stored(jump_at=18), CATALOG, CLINICIAN).rows[0].network.signals
    assert rising is not None and rising.any and rising.variation == "special_cause_improvement"
    flat = overview(_stored(jump_at=99), CATALOG, CLINICIAN).rows[0].network.signals
    assert flat is not None and flat.outside_limits == 0


def test_the_funnel_of_a_visit_measure_sums_the_last_twelve_months_of_each_site():
    stored = _stored()
    detail = measure_detail(stored, CATALOG, MEASURE.id, CLINICIAN)
    f = stored.frame
    last12 = sorted(f.period_start.unique())[-12:]
    for numbers in detail.funnel.sites:
        mine = f[(f.site == numbers.site) & f.period_start.isin(last12)]
        assert (numbers.numerator, numbers.denominator) == (mine.numerator.sum(), 1200)
    assert detail.funnel.window == "Jan 2023 to Dec 2023" and detail.funnel.result is not None
    assert detail.patient_list_sites == ("S1",)


def test_a_site_within_the_funnel_is_neither_better_nor_worse_whatever_its_raw_difference():
    view = site_view(_stored(), CATALOG, "s1", CLINICIAN)
    (row,) = view.rows
    assert view.site == "S1" and view.may_list_patients
    mine = row.site.latest
    theirs = next(p for p in row.network.points if p.period_start == mine.period_start)
    assert mine.value != theirs.value  # a raw difference, which is not evidence …
    assert row.funnel_flag == "within" and row.better_than_network is None  # … within the funnel
    with pytest.raises(NotFound):
        site_view(_stored(), CATALOG, "S9", CLINICIAN)


def _with_site(stored: StoredResults, site: str, rate: float) -> StoredResults:
    """``stored`` with one more site whose remission is ``rate`` every month (400 visits)."""
    template = stored.frame[stored.frame.site == "S1"]
    extra = template.assign(site=site, numerator=int(400 * rate), denominator=400)
    extra = extra.assign(value=extra.numerator / extra.denominator)
    return StoredResults("run-1", None, pd.concat([stored.frame, extra], ignore_index=True))


@pytest.mark.parametrize(
    ("improvement", "rate", "flag_side", "better"),
    [("up", 0.95, "above", True), ("up", 0.2, "below", False), ("down", 0.95, "above", False)],
)
def test_better_or_worse_than_the_network_comes_from_the_funnel_limits_and_the_direction(
    improvement, rate, flag_side, better
):
    measure = parse_yaml(_MEASURE_YAML.replace("improvement: up", f"improvement: {improvement}"))
    view = site_view(_with_site(_stored(), "S3", rate), MeasureCatalog((measure,)), "S3", CLINICIAN)
    (row,) = view.rows
    assert row.funnel_flag.startswith(flag_side) and row.funnel_flag.endswith("99.8%")
    assert row.better_than_network is better


def test_results_without_a_definition_are_shown_by_id_and_patients_see_nothing():
    stored = _stored()
    row = overview(stored, MeasureCatalog(()), CLINICIAN).rows[0]
    assert row.measure.title == MEASURE.id and row.measure.definition is None
    patient = Principal(user_id=9, email="p@x", grants=(Grant("patient", 1, "S1"),), patient_id=3)
    for call in (
        lambda: overview(stored, CATALOG, patient),
        lambda: measure_numbers(stored, MEASURE.id, patient),
        lambda: site_view(stored, CATALOG, "S1", patient),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert len(measure_numbers(stored, MEASURE.id, CLINICIAN)) == 72
