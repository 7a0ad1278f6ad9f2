"""What a measure's chart says: per-phase limits, the Making Data Count icons, the chart
chosen for the data, phases at changes and notes, and old data, on constructed series."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest

from careloop.charts import mdc_icons
from careloop.charts._spc_look import label_shifts
from careloop.practice.feedback.dashboards import (
    Deployed,
    MeasureInfo,
    Point,
    choose_chart,
    phase_starts,
    spc_chart,
    staleness,
)


def _info(kind: str = "proportion", improvement: str | None = "up", target: float | None = None):
    return MeasureInfo("m", "M", "", kind, improvement, target, ())  # type: ignore[arg-type]


def _points(numerators, denominators, *, start: str = "2020-01-01") -> list[Point]:
    months = pd.date_range(start, periods=len(numerators), freq="MS")
    return [
        Point(
            m.date(),
            (m + pd.offsets.MonthEnd(0)).date(),
            int(x),
            int(n),
            x / n if n else None,
            n <= 10,
        )
        for m, x, n in zip(months, numerators, denominators, strict=True)
    ]


def _values(values, *, start: str = "2020-01-01") -> list[Point]:
    months = pd.date_range(start, periods=len(values), freq="MS")
    return [
        Point(m.date(), (m + pd.offsets.MonthEnd(0)).date(), 30, 30, float(v), False)
        for m, v in zip(months, values, strict=True)
    ]


# --- per-phase limits, against the P chart formulas computed by hand -------------------

# Montgomery, *Introduction to Statistical Quality Control* (7th ed., 2013), §7.2.2,
# "variable sample size": per phase p̄ = Σx / Σn; for each subgroup i,
# UCL_i, LCL_i = p̄ ± 3·sqrt(p̄(1 − p̄)/n_i), the lower limit not below 0.
# (qicharts2 computes the same; this is numpy straight from the formula.)
NUMERATORS = [44, 51, 47, 55, 49, 52, 46, 50, 53, 48, 70, 74, 69, 77, 72, 75, 71, 73, 76, 70]
DENOMINATORS = [
    90,
    100,
    95,
    110,
    98,
    104,
    92,
    100,
    106,
    96,
    100,
    102,
    97,
    108,
    99,
    104,
    98,
    101,
    105,
    96,
]


def _by_hand(x: list[int], n: list[int]) -> tuple[float, np.ndarray, np.ndarray]:
    xs, ns = np.asarray(x, float), np.asarray(n, float)
    p = xs.sum() / ns.sum()
    sigma = np.sqrt(p * (1 - p) / ns)
    return p, np.clip(p - 3 * sigma, 0, None), np.minimum(p + 3 * sigma, 1)


def test_each_phase_has_its_own_centre_line_and_limits_as_the_p_chart_formulas_give():
    points = _points(NUMERATORS, DENOMINATORS)
    chart, signals = spc_chart(_info(), points, phase_starts=[date(2020, 11, 1)])
    assert chart is not None and signals is not None
    pts = chart.points
    assert list(pts["part"]) == [1] * 10 + [2] * 10
    for part, rows in ((1, slice(0, 10)), (2, slice(10, 20))):
        p, lcl, ucl = _by_hand(NUMERATORS[rows], DENOMINATORS[rows])
        mine = pts[pts["part"] == part]
        np.testing.assert_allclose(mine["cl"], p * 100, rtol=1e-12)
        np.testing.assert_allclose(mine["ucl"], ucl * 100, rtol=1e-12)
        np.testing.assert_allclose(mine["lcl"], lcl * 100, rtol=1e-12)
    # One centre line over both phases would sit between them and flag every point:
    # with the phases, the new level is common cause within its own phase.
    assert signals.variation == "common_cause" and signals.outside_limits == 0
    whole, whole_signals = spc_chart(_info(), points)
    assert whole is not None and whole_signals is not None and whole_signals.any


# --- the Making Data Count icons ---------------------------------------------------------

FLAT = [50, 48, 52, 49, 51, 50, 47, 53, 50, 49, 51, 52, 48, 50, 49, 51, 50, 52, 48, 50]


@pytest.mark.parametrize(
    ("improvement", "later", "icon"),
    [
        ("up", 70, "improvement_high"),
        ("down", 70, "concern_high"),
        ("up", 30, "concern_low"),
        ("down", 30, "improvement_low"),
        (None, 70, "neither_high"),
    ],
)
def test_a_sustained_shift_in_the_latest_months_chooses_the_variation_icon_by_direction(
    improvement, later, icon
):
    numerators = FLAT + [later] * 8
    chart, signals = spc_chart(_info(improvement=improvement), _points(numerators, [100] * 28))
    assert chart is not None and signals is not None
    assert signals.variation_icon == icon
    assert signals.needs_attention == icon.startswith("concern")


def test_a_flat_series_is_common_cause():
    _, signals = spc_chart(_info(), _points(FLAT, [100] * 20))
    assert signals is not None and signals.variation_icon == "common_cause" and not signals.any


@pytest.mark.parametrize(
    ("improvement", "target", "assurance"),
    [
        ("up", 0.30, "pass"),  # the target lies below the lower limit (about 35%)
        ("up", 0.80, "fail"),  # above the upper limit (about 65%)
        ("up", 0.50, "hit_or_miss"),
        ("down", 0.80, "pass"),
        ("down", 0.30, "fail"),
        ("up", None, None),
    ],
)
def test_the_assurance_icon_comes_from_where_the_target_lies_against_the_latest_limits(
    improvement, target, assurance
):
    _, signals = spc_chart(_info(improvement=improvement, target=target), _points(FLAT, [100] * 20))
    assert signals is not None and signals.assurance == assurance
    assert signals.needs_attention == (assurance == "fail")


def test_every_icon_is_an_inline_svg_with_its_text_alternative():
    for icon, words in mdc_icons.VARIATION_TEXT.items():
        svg = mdc_icons.variation_svg(icon)
        assert svg.startswith("<svg") and 'role="img"' in svg and f'aria-label="{words}"' in svg
    for key in ("pass", "fail", "hit_or_miss", None):
        svg = mdc_icons.assurance_svg(key)
        assert f"<title>{mdc_icons.ASSURANCE_TEXT[key or 'none']}</title>" in svg
    assert ">H</text>" in mdc_icons.variation_svg("improvement_high")
    assert "</text>" not in mdc_icons.variation_svg("common_cause")
    with pytest.raises(KeyError):
        mdc_icons.variation_svg("improving")


# --- the chart chosen for the data ------------------------------------------------------


def test_a_zero_inflated_median_gets_a_run_chart_with_the_reason_not_an_i_chart():
    # As the demo's median PUCAI: 0 in most months, a few months at 5-30.
    values = [0.0] * 57 + [25, 30, 10, 5, 15, 20, 25, 35, 5, 10, 30, 20, 15, 10, 5]
    rng = np.random.default_rng(3)
    values = list(rng.permutation(values))
    choice = choose_chart(_info("continuous", "down"), _values(values))
    assert choice.kind == "run"
    assert "79% of the values are the same (0)" in choice.reason
    chart, signals = spc_chart(_info("continuous", "down"), _values(values))
    assert chart is not None and chart.chart_type == "run" and signals is not None
    assert signals.outside_limits == 0 and signals.assurance is None
    assert signals.limits_note == choice.reason
    assert not any(choice.reason in c for c in signals.caveats)  # said once, by the page


def test_continuous_values_that_vary_get_an_i_chart_and_other_kinds_their_own():
    rng = np.random.default_rng(5)
    assert choose_chart(_info("continuous"), _values(rng.normal(40, 5, 30))).kind == "i"
    assert choose_chart(_info("continuous"), _values([1, 2, 1, 2, 3] * 6)).reason == (
        "the values take only 3 different levels"
    )
    assert choose_chart(_info("proportion"), _points(FLAT, [100] * 20)).kind == "p"
    assert choose_chart(_info("ratio"), _points(FLAT, [100] * 20)).kind == "u"
    assert choose_chart(_info("count"), _points(FLAT, [100] * 20)).kind == "c"
    every = choose_chart(_info("proportion"), _points([100] * 20, [100] * 20))
    assert every.kind == "run" and "every value is 100%" in every.reason
    assert choose_chart(_info(""), _points(FLAT, [100] * 20)).kind == "run"


# --- phases at changes and notes --------------------------------------------------------


def test_which_changes_start_a_phase_on_the_network_chart_and_on_a_site_chart():
    changes = [
        Deployed("everywhere", date(2021, 7, 12), ()),
        Deployed("pilot", date(2022, 1, 1), ("S1", "S2")),
        Deployed("a line only", date(2022, 3, 5), (), kind="note", starts_phase=False),
        Deployed("new coding", date(2022, 6, 1), (), kind="note"),
        Deployed("S2 rota", date(2022, 9, 1), ("S2",), kind="note"),
    ]
    assert phase_starts(changes, "") == [date(2021, 7, 1), date(2022, 6, 1)]
    assert phase_starts(changes, "S1") == [date(2021, 7, 1), date(2022, 1, 1), date(2022, 6, 1)]
    assert phase_starts(changes, "S2")[-1] == date(2022, 9, 1)
    assert phase_starts(changes, "S3") == [date(2021, 7, 1), date(2022, 6, 1)]


# --- labels, old data ---------------------------------------------------------------------


def test_limit_labels_closer_than_the_gap_are_pushed_apart_and_far_ones_stay():
    # UCL 81.3 and a target of 80 on a 0-100 axis 300 px high: 3.9 px apart.
    shifts = label_shifts([81.3, 80.0, 70.7, 60.1], 100.0, plot_px=300.0, gap_px=12.0)
    positions = [v * 3 + s for v, s in zip([81.3, 80.0, 70.7, 60.1], shifts, strict=True)]
    assert all(a - b >= 12.0 - 1e-9 for a, b in itertools.pairwise(positions))
    assert shifts[0] == 0 and shifts[3] == 0


def test_results_older_than_three_months_carry_a_warning_with_their_age():
    assert staleness(date(2024, 3, 31), date(2026, 11, 15)) == (
        "These data end in March 2024; the newest results are 32 months old. "
        "Run the measures again on fresh data before acting on them."
    )
    assert staleness(date(2026, 9, 30), date(2026, 12, 8)) == ""
    assert staleness(None, date(2026, 12, 8)) == ""
