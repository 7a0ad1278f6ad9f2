"""Behaviour of careloop.analysis.spc: phases, freeze, exclusions, labels, edge cases, rules.

Numbers are derived by hand from the formulas named beside them (Montgomery,
*Introduction to Statistical Quality Control*; Provost & Murray, *The Health
Care Data Guide*; Anhøj & Olesen 2014); the point-by-point comparison with
qicharts2 is in test_spc_qicharts2.py.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from careloop.analysis import spc
from careloop.analysis.spc import rules as spc_rules
from careloop.core.errors import InputError

Y24 = [8.0, 11, 9, 12, 10, 9, 11, 10, 12, 8, 10, 11, 9, 10, 12, 9, 11, 10, 8, 12, 10, 9, 11, 10]


def quiet_qic(*args: Any, **kwargs: Any) -> spc.SpcChart:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spc.SpcWarning)
        return spc.qic(*args, **kwargs)


# --- the result contract --------------------------------------------------------


def test_points_have_the_contract_columns_in_order() -> None:
    chart = spc.qic(Y24, chart="i")
    assert tuple(chart.points.columns[: len(spc.POINT_COLUMNS)]) == spc.POINT_COLUMNS
    assert chart.points["part"].dtype.kind == "i"
    assert chart.points["include"].dtype == bool
    assert chart.chart_type == "i"


def test_summary_has_one_row_per_part_with_the_last_points_limits() -> None:
    chart = spc.qic(Y24, chart="i", part=[12])
    summary = chart.summary()
    assert summary["part"].tolist() == [1, 2]
    expected = [
        "part", "n_obs", "n_useful", "longest_run", "longest_run_max", "n_crossings",
        "n_crossings_min", "runs_signal", "lcl", "cl", "ucl", "alcl", "aucl", "sigma_signal",
    ]  # fmt: skip
    assert summary.columns.tolist() == expected
    last = chart.points[chart.points["part"] == 2].iloc[-1]
    assert summary.loc[1, "ucl"] == last["ucl"]


def test_i_chart_limits_are_mean_plus_minus_three_mr_bar_over_d2() -> None:
    # Montgomery eq. 6.33: sigma = MR-bar / 1.128; no moving range here exceeds 3.267 MR-bar.
    y = np.array(Y24)
    mr = np.abs(np.diff(y))
    assert mr.max() < 3.267 * mr.mean()
    chart = spc.qic(y, chart="i")
    sigma = mr.mean() / 1.128
    np.testing.assert_allclose(chart.points["cl"], y.mean())
    np.testing.assert_allclose(chart.points["ucl"], y.mean() + 3 * sigma)
    np.testing.assert_allclose(chart.points["lcl"], y.mean() - 3 * sigma)
    np.testing.assert_allclose(chart.points["sigma"], sigma)


def test_screening_drops_moving_ranges_above_d4_times_their_mean() -> None:
    # Provost & Murray: a moving range above 3.267 × MR-bar is left out of sigma.
    y = np.array([10.0, 11, 10, 11, 10, 11, 10, 11, 10, 40, 10, 11, 10, 11, 10, 11])
    mr = np.abs(np.diff(y))
    kept = mr[mr < 3.267 * mr.mean()]
    assert kept.size == mr.size - 2
    screened = spc.qic(y, chart="i")
    unscreened = spc.qic(y, chart="i", screen_mr=False)
    np.testing.assert_allclose(screened.points["sigma"], kept.mean() / 1.128)
    np.testing.assert_allclose(unscreened.points["sigma"], mr.mean() / 1.128)


def test_p_chart_flags_a_point_beyond_three_sigma() -> None:
    counts = [10, 12, 9, 11, 10, 13, 8, 30, 10, 11, 9, 12]
    chart = spc.qic(counts, n=[100] * 12, chart="p")
    p = sum(counts) / 1200
    ucl = p + 3 * np.sqrt(p * (1 - p) / 100)  # Montgomery eq. 7.8
    np.testing.assert_allclose(chart.points["ucl"], ucl)
    assert chart.points["sigma_signal"].tolist() == [False] * 7 + [True] + [False] * 4
    assert chart.summary()["sigma_signal"].iloc[0] == 1


def test_run_chart_centre_is_the_median_and_points_on_it_are_not_useful() -> None:
    y = [1, 2, 3, 3, 3, 4, 5, 6, 2, 3]
    chart = quiet_qic(y)
    assert chart.points["cl"].iloc[0] == 3
    assert chart.summary()["n_useful"].iloc[0] == 6  # four 3s sit on the median
    assert np.isnan(chart.points["ucl"]).all()


def test_a_long_run_is_a_runs_signal() -> None:
    # 24 useful points: longest run limit round(log2(24)) + 3 = 8 and fewest
    # crossings qbinom(0.05, 23, 0.5) = 8 (Anhøj & Olesen 2014).
    chart = spc.qic(list(range(1, 25)))
    summary = chart.summary().iloc[0]
    assert summary["longest_run_max"] == 8 and summary["n_crossings_min"] == 8
    assert summary["longest_run"] == 12 and summary["n_crossings"] == 1
    assert summary["runs_signal"]
    assert chart.points["runs_signal"].all()


def test_runs_analysis_of_a_control_chart_uses_its_mean() -> None:
    chart = spc.qic(Y24, chart="i")
    y = np.array(Y24)
    side = np.sign(y - y.mean())
    side = side[side != 0]
    assert chart.summary()["n_useful"].iloc[0] == side.size
    assert chart.summary()["n_crossings"].iloc[0] == np.count_nonzero(np.diff(side))


# --- parts, freeze, exclude ---------------------------------------------------------


def test_parts_have_their_own_centre_lines() -> None:
    y = Y24[:12] + [v + 10 for v in Y24[12:]]
    chart = spc.qic(y, chart="i", part=[12])
    assert chart.points["part"].tolist() == [1] * 12 + [2] * 12
    np.testing.assert_allclose(chart.summary()["cl"], [np.mean(y[:12]), np.mean(y[12:])])


def test_freeze_uses_the_baseline_for_limits_and_extends_them() -> None:
    chart = spc.qic(Y24, chart="i", freeze=12)
    base = spc.qic(Y24[:12], chart="i")
    np.testing.assert_allclose(chart.points["cl"], base.points["cl"].iloc[0])
    np.testing.assert_allclose(chart.points["ucl"], base.points["ucl"].iloc[0])
    assert chart.points["baseline"].tolist() == [True] * 12 + [False] * 12


def test_freeze_inside_parts_freezes_the_first_part_and_leaves_later_parts_whole() -> None:
    # Documented meaning (qicharts2 issue #20): points 1..8 are part 1's baseline;
    # part 2 starts after the freeze and uses all of its own points.
    chart = quiet_qic(Y24, chart="i", part=[12], freeze=8)
    first = quiet_qic(Y24[:8], chart="i")
    second = spc.qic(Y24[12:], chart="i")
    summary = chart.summary()
    np.testing.assert_allclose(summary.loc[0, ["cl", "ucl"]], first.summary().loc[0, ["cl", "ucl"]])
    np.testing.assert_allclose(
        summary.loc[1, ["cl", "ucl"]], second.summary().loc[0, ["cl", "ucl"]]
    )


def test_freeze_per_part_counts_from_the_start_of_each_part() -> None:
    chart = spc.qic(Y24, chart="i", part=[12], freeze=[6, 5])
    summary = chart.summary()
    np.testing.assert_allclose(summary.loc[0, "cl"], np.mean(Y24[:6]))
    np.testing.assert_allclose(summary.loc[1, "cl"], np.mean(Y24[12:17]))
    assert chart.points["baseline"].sum() == 11


def test_freeze_per_part_needs_one_value_per_part() -> None:
    with pytest.raises(InputError, match="one baseline length"):
        spc.qic(Y24, chart="i", part=[12], freeze=[6])


def test_part_freeze_and_exclude_together() -> None:
    chart = spc.qic(Y24, chart="c", part=[12], freeze=[10, None], exclude=[3, 15])
    summary = chart.summary()
    first = [v for i, v in enumerate(Y24[:10], start=1) if i != 3]
    second = [v for i, v in enumerate(Y24[12:], start=13) if i != 15]
    np.testing.assert_allclose(summary["cl"], [np.mean(first), np.mean(second)])
    assert summary["n_obs"].tolist() == [11, 11]
    assert not chart.points["include"].iloc[[2, 14]].any()


def test_excluded_points_are_still_tested_against_the_limits() -> None:
    y = list(Y24)
    y[5] = 40
    chart = spc.qic(y, chart="i", exclude=[6])
    clean = spc.qic([v for i, v in enumerate(y) if i != 5], chart="i")
    assert chart.points["cl"].iloc[0] == pytest.approx(clean.points["cl"].iloc[0])
    assert chart.points["sigma_signal"].iloc[5]


def test_label_forms_match_positions() -> None:
    months = pd.date_range("2020-01-01", periods=24, freq="MS")
    by_label = spc.qic(
        Y24,
        x=months,
        chart="i",
        part_at="2021-01-01",
        exclude_x=[months[2]],
    )
    by_position = spc.qic(Y24, x=months, chart="i", part=[12], exclude=[3])
    pd.testing.assert_frame_equal(by_label.points, by_position.points)
    frozen = spc.qic(Y24, x=months, chart="i", freeze_until="2020-10-15")
    assert frozen.points["baseline"].sum() == 10
    # A date between two subgroups starts the part at the next subgroup.
    between = spc.qic(Y24, x=months, chart="i", part_at="2020-12-15")
    pd.testing.assert_frame_equal(
        between.points, spc.qic(Y24, x=months, chart="i", part=[12]).points
    )
    with pytest.raises(InputError, match="part_at"):
        spc.qic(Y24, x=months, chart="i", part_at="2030-01-01")


def test_python_dates_work_as_x_and_with_date_labels() -> None:
    import datetime as dt

    days = [dt.date(2021 + i // 12, (i % 12) + 1, 1) for i in range(24)]
    chart = spc.qic(Y24, x=days, chart="i", part_at="2022-01-01")
    assert chart.points["part"].tolist() == [1] * 12 + [2] * 12
    assert not chart.options["categorical"]


def test_exclude_x_must_name_an_x_value() -> None:
    with pytest.raises(InputError, match="not an x value"):
        spc.qic(Y24, chart="i", exclude_x=[99])


def test_positions_out_of_range_are_errors_not_silently_dropped() -> None:
    with pytest.raises(InputError, match="exclude"):
        spc.qic(Y24, chart="i", exclude=[25])
    with pytest.raises(InputError, match="part"):
        spc.qic(Y24, chart="i", part=[24])
    with pytest.raises(InputError, match="freeze"):
        spc.qic(Y24, chart="i", freeze=0)


# --- x, aggregation ---------------------------------------------------------------


def test_x_is_sorted_before_analysis() -> None:
    x = list(range(24, 0, -1))
    chart = spc.qic(Y24, x=x, chart="i")
    assert chart.points["x"].tolist() == list(range(1, 25))
    assert chart.points["y"].tolist() == Y24[::-1]


def test_raw_records_are_aggregated_by_x() -> None:
    x = [1, 1, 2, 2, 3, 3, 3]
    y = [1.0, 3, 2, 2, 5, 6, 10]
    assert quiet_qic(y, x=x, agg="mean").points["y"].tolist() == [2, 2, 7]
    assert quiet_qic(y, x=x, agg="median").points["y"].tolist() == [2, 2, 6]
    assert quiet_qic(y, x=x, agg="sum").points["y"].tolist() == [4, 4, 21]
    # Sample SDs (n - 1): sqrt(2), 0, sqrt(((5-7)^2 + (6-7)^2 + (10-7)^2) / 2) = sqrt(7).
    sd = quiet_qic(y, x=x, agg="sd").points["y"]
    np.testing.assert_allclose(sd, [np.sqrt(2), 0, np.sqrt(7)], rtol=1e-12)
    with_n = quiet_qic(y, x=x, n=[2] * 7, chart="u")
    assert with_n.points["y"].tolist() == [1, 1, 3.5]


@pytest.mark.parametrize("agg", ["mean", "median", "sum", "sd"])
def test_a_subgroup_whose_values_are_all_missing_stays_missing_for_every_aggregate(
    agg: spc.Aggregate,
) -> None:
    # Grouped records (x = 2 has two records, both missing) and one record per x.
    grouped = quiet_qic([1.0, 3, np.nan, np.nan, 5, 6], x=[1, 1, 2, 2, 3, 3], agg=agg)
    assert np.isnan(grouped.points["y"].iloc[1])
    assert grouped.points["y_length"].tolist() == [2, 0, 2]
    single = quiet_qic([1.0, np.nan, 5], x=[1, 2, 3], agg=agg)
    assert np.isnan(single.points["y"].iloc[1])


def test_an_unknown_aggregate_is_refused_with_the_choices() -> None:
    with pytest.raises(InputError, match="mean, median, sum, sd") as err:
        spc.qic(Y24, x=[1, 2] * 12, agg="std")  # type: ignore[arg-type]
    assert err.value.details[0].location == "agg"
    assert spc.AGGREGATES == ("mean", "median", "sum", "sd")


def test_xbar_subgroups_come_from_raw_records() -> None:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"g": np.repeat(np.arange(1, 21), 4), "v": rng.normal(10, 1, 80)})
    chart = spc.qic("v", x="g", data=data, chart="xbar")
    sds = data.groupby("g")["v"].std()
    c4 = 0.9213  # Montgomery Appendix VI, n = 4
    a3 = 3 / (c4 * 2)
    np.testing.assert_allclose(chart.points["ucl"], data["v"].mean() + a3 * sds.mean(), rtol=2e-4)


# Subgroups of unequal size: A = [1, 3] (n 2, s² 2), B = [2, 4, 9] (n 3, mean 5,
# s² 13), C = two missing values (n 0), D = [5] (n 1), E = [4, 6] (n 2, s² 2).
UNEQUAL = pd.DataFrame(
    {
        "g": ["A", "A", "B", "B", "B", "C", "C", "D", "E", "E"],
        "v": [1.0, 3, 2, 4, 9, np.nan, np.nan, 5, 4, 6],
    }
)


def test_pooled_sd_counts_degrees_of_freedom_as_qicharts2_does() -> None:
    # qicharts2 qic.s/qic.xbar (Montgomery 6.31): sqrt(sum((n-1) s²) / sum(n-1)),
    # the sum of squares over subgroups with an SD, the degrees of freedom over
    # every subgroup: (1·2 + 2·13 + 1·2) / (1 + 2 - 1 + 0 + 1) = 30 / 3 = 10.
    s = quiet_qic("v", x="g", data=UNEQUAL, chart="s").points
    np.testing.assert_allclose(s["cl"], np.sqrt(10), rtol=1e-12)
    assert s["y_length"].tolist() == [2, 3, 0, 1, 2]
    # B4(3) = 2.568 (Montgomery Appendix VI); no limits for n = 0 or 1.
    np.testing.assert_allclose(s["ucl"].iloc[1], 2.568 * np.sqrt(10), rtol=2e-4)
    assert s["ucl"].iloc[[2, 3]].isna().all()
    xbar = quiet_qic("v", x="g", data=UNEQUAL, chart="xbar").points
    # Grand mean weighted by size: (2·2 + 3·5 + 1·5 + 2·5) / 8 = 34 / 8.
    np.testing.assert_allclose(xbar["cl"], 34 / 8, rtol=1e-12)
    # A3(3) = 1.954 (Montgomery Appendix VI, to 4 digits).
    np.testing.assert_allclose(
        xbar["ucl"].iloc[1] - xbar["cl"].iloc[1], 1.954 * np.sqrt(10), rtol=3e-4
    )


def test_more_empty_subgroups_than_degrees_of_freedom_leave_no_limits() -> None:
    # A (1 degree of freedom) and two empty subgroups: sum(n - 1) = -1, no sigma.
    data = pd.DataFrame({"g": [1, 1, 2, 2, 3], "v": [1.0, 3, np.nan, np.nan, np.nan]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", spc.SpcWarning)
        chart = spc.qic("v", x="g", data=data, chart="s")
    assert any("cannot be estimated" in str(w.message) for w in caught)
    assert chart.points["cl"].isna().all() and chart.points["ucl"].isna().all()


def test_text_x_has_no_runs_signal() -> None:
    chart = quiet_qic([5, 6, 7, 8, 9, 10, 11, 12, 13, 14], x=list("abcdefghij"), chart="i")
    assert chart.options["categorical"]
    assert not chart.points["runs_signal"].any()


# --- edge cases ------------------------------------------------------------------


def test_all_equal_values_warn_that_there_is_no_variation() -> None:
    # Screened, every moving range (0) fails "mr < 3.267 × 0": no sigma, no limits (as qicharts2).
    with pytest.warns(spc.NoVariationWarning):
        chart = spc.qic([5.0] * 12, chart="i")
    assert chart.points["ucl"].isna().all()
    with pytest.warns(spc.NoVariationWarning):
        unscreened = spc.qic([5.0] * 12, chart="i", screen_mr=False)
    assert (unscreened.points["ucl"] == 5).all()
    assert not chart.points["sigma_signal"].any()
    assert chart.summary()["n_useful"].iloc[0] == 0
    assert not chart.summary()["runs_signal"].iloc[0]


def test_fewer_than_ten_useful_points_warn() -> None:
    with pytest.warns(spc.FewPointsWarning, match="5 useful"):
        chart = spc.qic([12.5, 9.75, 11, 10.25, 12], chart="i")
    assert np.isfinite(chart.points["ucl"]).all()


def test_a_single_point_in_a_part_has_no_limits_and_a_warning() -> None:
    with pytest.warns(spc.FewPointsWarning, match="Part 2"):
        chart = spc.qic(Y24[:13], chart="i", part=[12])
    last = chart.points.iloc[-1]
    assert last["part"] == 2 and last["cl"] == Y24[12]
    assert np.isnan(last["ucl"]) and np.isnan(last["lcl"])
    assert not last["sigma_signal"]


def test_missing_values_are_gaps_left_out_of_the_calculations() -> None:
    y = list(Y24)
    y[4] = np.nan
    chart = spc.qic(y, chart="c")
    assert np.isnan(chart.points["y"].iloc[4])
    np.testing.assert_allclose(chart.points["cl"], np.nanmean(y))
    assert chart.summary()["n_obs"].iloc[0] == 24  # counted, as qicharts2 counts them
    assert chart.summary()["n_useful"].iloc[0] == np.count_nonzero(
        ~np.isnan(y) & (np.array(y) != np.nanmean(y))
    )


def test_zero_denominators_are_treated_as_missing_with_a_warning() -> None:
    counts = [10, 12, 9, 11, 3, 13, 8, 10, 10, 11, 9, 12]
    n = [100] * 12
    n[4] = 0
    with pytest.warns(spc.ZeroDenominatorWarning):
        chart = spc.qic(counts, n=n, chart="p")
    assert np.isnan(chart.points["y"].iloc[4]) and np.isnan(chart.points["ucl"].iloc[4])
    kept = [c for i, c in enumerate(counts) if i != 4]
    np.testing.assert_allclose(chart.points["cl"].iloc[0], sum(kept) / 1100)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="Unknown chart type"):
        spc.qic(Y24, chart="x")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="needs denominators"):
        spc.qic(Y24, chart="p")
    with pytest.raises(InputError, match="greater than zero"):
        spc.qic([1.0, 0.0, 3.0], chart="t")
    with pytest.raises(InputError, match="above 1"):
        spc.qic([5, 6], n=[4, 10], chart="p")
    with pytest.raises(InputError, match="numeric"):
        spc.qic(["1", "two"], chart="run")
    with pytest.raises(InputError, match="not in the data"):
        spc.qic("missing", data=pd.DataFrame({"y": [1]}))
    with pytest.raises(InputError, match="No data"):
        spc.qic([], chart="run")


# --- chart specifics ----------------------------------------------------------------


def test_t_chart_limits_are_the_i_chart_of_y_to_the_one_over_3_6_transformed_back() -> None:
    # Provost & Murray (2011), ch. 7: y^(1/3.6), I chart, back-transformed with ^3.6.
    y = np.array([12.0, 30, 7, 45, 22, 16, 60, 9, 25, 33, 14, 41])
    chart = spc.qic(y, chart="t")
    i_chart = spc.qic(y ** (1 / 3.6), chart="i")
    np.testing.assert_allclose(chart.points["cl"], i_chart.points["cl"] ** 3.6)
    np.testing.assert_allclose(chart.points["ucl"], i_chart.points["ucl"] ** 3.6)


def test_g_chart_centre_is_the_median_and_limits_come_from_the_mean() -> None:
    # Provost & Murray (2011) p. 228; Montgomery p. 319: sigma = sqrt(mean (mean + 1)).
    y = np.array([3.0, 10, 25, 7, 40, 2, 18, 30, 12, 5, 22, 9])
    chart = spc.qic(y, chart="g")
    m = y.mean()
    np.testing.assert_allclose(chart.points["cl"], np.median(y))
    np.testing.assert_allclose(chart.points["ucl"], m + 3 * np.sqrt(m * (m + 1)))
    assert (chart.points["lcl"] == 0).all()


def test_laney_p_prime_uses_the_moving_range_of_z_scores() -> None:
    # Laney (2002): sigma_z = mean |z_i - z_(i-1)| / 1.128, limits p ± 3 sigma_p sigma_z.
    counts = np.array([120, 95, 140, 110, 130, 100, 125, 90, 135, 105, 115, 128])
    n = np.array([1000, 900, 1100, 1000, 1050, 950, 1000, 900, 1100, 980, 1000, 1020])
    p = counts.sum() / n.sum()
    sp = np.sqrt(p * (1 - p) / n)
    z = (counts / n - p) / sp
    mr = np.abs(np.diff(z))
    assert mr.max() < 3.267 * mr.mean()
    chart = spc.qic(counts, n=n, chart="pp")
    np.testing.assert_allclose(chart.points["ucl"], p + 3 * sp * mr.mean() / 1.128)


def test_multiply_scales_values_and_limits_but_not_the_runs() -> None:
    plain = spc.qic([10, 12, 9, 11, 10, 13, 8, 14, 10, 11], n=[100] * 10, chart="p")
    percent = spc.qic([10, 12, 9, 11, 10, 13, 8, 14, 10, 11], n=[100] * 10, chart="p", multiply=100)
    for column in ("y", "cl", "ucl", "lcl"):
        np.testing.assert_allclose(percent.points[column], plain.points[column] * 100)
    assert percent.summary()["runs_signal"].tolist() == plain.summary()["runs_signal"].tolist()


def test_a_fixed_centre_line_is_used_as_given() -> None:
    chart = spc.qic(Y24, chart="i", cl=9.0)
    assert (chart.points["cl"] == 9).all()


def test_target_is_kept_on_the_points_and_the_chart() -> None:
    chart = spc.qic(Y24, chart="i", target=11)
    assert chart.target == 11 and (chart.points["target"] == 11).all()


# --- rule sets -------------------------------------------------------------------


def _we(y: list[float]) -> dict[str, np.ndarray]:
    a = np.array(y, dtype=float)
    return spc_rules.western_electric(a, np.zeros_like(a), np.ones_like(a))


def _nelson(y: list[float]) -> dict[str, np.ndarray]:
    a = np.array(y, dtype=float)
    return spc_rules.nelson(a, np.zeros_like(a), np.ones_like(a))


def test_western_electric_rules_flag_the_point_completing_each_pattern() -> None:
    assert np.flatnonzero(_we([0.2, 3.5, -0.2])["we1"]).tolist() == [1]
    assert np.flatnonzero(_we([2.5, -0.5, 2.5])["we2"]).tolist() == [2]
    assert not _we([2.5, -2.5, 0.5])["we2"].any()
    assert np.flatnonzero(_we([1.5, 1.5, -0.5, 1.5, 1.5])["we3"]).tolist() == [4]
    assert np.flatnonzero(_we([0.1] * 8 + [-0.1])["we4"]).tolist() == [7]
    assert not _we([0.1] * 7 + [-0.1])["we4"].any()


def test_nelson_rules_flag_trends_alternation_hugging_and_mixtures() -> None:
    assert np.flatnonzero(_nelson([0.1] * 9)["nelson2"]).tolist() == [8]
    assert np.flatnonzero(_nelson([-2.5, -2, -1, 0.5, 1, 2])["nelson3"]).tolist() == [5]
    assert not _nelson([-2.5, -2, -1, 0.5, 1])["nelson3"].any()
    alternating = [0.5, -0.5] * 7
    assert np.flatnonzero(_nelson(alternating)["nelson4"]).tolist() == [13]
    assert not _nelson(alternating[:13])["nelson4"].any()
    assert np.flatnonzero(_nelson([0.5, -0.5] * 7 + [0.5])["nelson7"]).tolist() == [14]
    assert np.flatnonzero(_nelson([1.5, -1.5] * 4)["nelson8"]).tolist() == [7]


def test_rule_sets_add_columns_through_qic() -> None:
    chart = spc.qic(Y24, chart="i", rules=["anhoej", "western_electric", "nelson"])
    for column in ("we1", "we4", "we_signal", "nelson1", "nelson8", "nelson_signal"):
        assert chart.points[column].dtype == bool


def test_making_data_count_classifies_a_sustained_rise_as_improvement() -> None:
    rng = np.random.default_rng(7)
    y = np.concatenate([rng.normal(50, 2, 20), rng.normal(54, 1, 8)])
    chart = spc.qic(y, chart="i", freeze=20, rules=["nhs"], improvement="up", target=45)
    points = chart.points
    assert points["mdc_shift"].iloc[20:].all()
    assert set(points["variation"].iloc[20:]) == {"special_cause_improvement"}
    summary = chart.summary()
    assert summary["variation"].iloc[0] == "special_cause_improvement"
    lcl = summary["lcl"].iloc[0]
    assert summary["assurance"].iloc[0] == ("pass" if lcl > 45 else "hit_or_miss")


def test_making_data_count_concern_and_assurance_classes() -> None:
    assert spc_rules.variation_class(True, -1.0, "up") == "special_cause_concern"
    assert spc_rules.variation_class(True, -1.0, "down") == "special_cause_improvement"
    assert spc_rules.variation_class(True, 1.0, None) == "special_cause_neither"
    assert spc_rules.variation_class(False, 1.0, "up") == "common_cause"
    assert spc_rules.assurance_class(10, 20, 5, "up") == "pass"
    assert spc_rules.assurance_class(10, 20, 25, "up") == "fail"
    assert spc_rules.assurance_class(10, 20, 15, "up") == "hit_or_miss"
    assert spc_rules.assurance_class(10, 20, 25, "down") == "pass"


def test_making_data_count_trend_of_seven_flags_all_seven_points() -> None:
    y = np.array([0.2, -0.3, 0.1, -1.5, -1, -0.5, 0.1, 0.4, 0.8, 1.2, -0.2])
    flags, direction = spc_rules.making_data_count(
        y, np.zeros_like(y), np.ones_like(y), np.full_like(y, -3), np.full_like(y, 3)
    )
    assert np.flatnonzero(flags["mdc_trend"]).tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert (direction[3:10] == 1).all()


# --- faceting and rendering ----------------------------------------------------------


def test_qic_by_makes_the_same_chart_as_qic_per_group() -> None:
    data = pd.DataFrame(
        {
            "site": ["A"] * 12 + ["B"] * 12,
            "month": list(range(1, 13)) * 2,
            "events": Y24,
            "days": [100] * 24,
        }
    )
    facets = spc.qic_by(data, by="site", y="events", x="month", n="days", chart="u")
    assert list(facets) == ["A", "B"]
    single = spc.qic("events", x="month", n="days", data=data[data["site"] == "B"], chart="u")
    pd.testing.assert_frame_equal(facets["B"].points, single.points)
    summary = facets.summary()
    assert summary["facet"].tolist() == ["A", "B"]


def test_making_a_chart_imports_no_drawing_library() -> None:
    # A fresh interpreter: the suite itself has long imported Plotly by now.
    code = (
        "import sys\n"
        "from careloop.analysis import spc\n"
        "spc.qic(list(range(24)), chart='i')\n"
        "drawn = sorted(m for m in sys.modules if m.split('.')[0] in ('plotly', 'vl_convert')"
        " or m.startswith('careloop.charts'))\n"
        "print(drawn)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
