"""spc.qic against qicharts2's own calculations, point by point.

Reference: tests/analysis/spc/reference/qicharts2_points.csv, written by
qicharts2_reference.R with qicharts2::qic(return.data = TRUE) (qicharts2 0.8.1,
anhoej/qicharts2 commit 1b9487ecb3938d25a8a04578464f960d3a064f64, in R 4.2.2)
for the cases in qicharts2_cases.csv: every chart type, parts, freeze, exclude,
multiply, fixed centre lines, aggregation of raw records (agg.fun mean, median,
sum and sd), missing values, text x, and the three runs methods. The cases
named na_* and tbl7.4_na_* are Xbar, S, run and I charts of subgroups made
unequal by missing values: qicharts2's own NA_test data (Montgomery's Table 6.3
with values removed) and Montgomery's Table 7.4 with values set missing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careloop.analysis import spc
from careloop.analysis.spc.runs import crossings_min, longest_run_max, runs_signal

REFERENCE = Path(__file__).parent / "reference"
DATA = Path(__file__).parent.parent.parent / "data" / "qicharts2"
CASES = pd.read_csv(REFERENCE / "qicharts2_cases.csv", dtype=str, keep_default_na=False)
POINTS = pd.read_csv(REFERENCE / "qicharts2_points.csv")

# A subgroup whose values are all missing, summed with agg="sum": qicharts2's
# sum(y, na.rm = TRUE) plots 0, careloop keeps it missing (docs/analysis/spc.md,
# "Known differences"). Checked separately below.
SUM_OF_NOTHING = {"na_run_sum"}


def _positions(text: str) -> list[int] | None:
    return [int(float(v)) for v in text.split(";")] if text else None


def chart_for(case: pd.Series) -> spc.SpcChart:
    data = pd.read_csv(DATA / case["file"])
    if case["filter"]:
        for condition in case["filter"].split(";"):
            column, value = condition.split("=")
            data = data[data[column] == value]
    data = data.reset_index(drop=True)
    # ISO date strings (month columns) are parsed by qic itself.
    x = data[case["x"]]
    freeze = _positions(case["freeze"])
    with warnings.catch_warnings():
        # Short parts warn (FewPointsWarning); that is tested elsewhere.
        warnings.simplefilter("ignore", spc.SpcWarning)
        return spc.qic(
            data[case["y"]],
            x=x,
            n=data[case["n"]] if case["n"] else None,
            chart=case["chart"],
            part=_positions(case["part"]),
            freeze=freeze[0] if freeze else None,
            exclude=_positions(case["exclude"]),
            multiply=float(case["multiply"]),
            cl=float(case["cl"]) if case["cl"] else None,
            agg=case["agg"],
            method=case["method"],
            screen_mr=case["screen"] == "1",
        )


COMPARED = [c for _, c in CASES.iterrows() if c["case"] not in SUM_OF_NOTHING]


@pytest.mark.parametrize("case", COMPARED, ids=[c["case"] for c in COMPARED])
def test_points_match_qicharts2(case: pd.Series) -> None:
    points = chart_for(case).points
    expected = POINTS[POINTS["case"] == case["case"]].reset_index(drop=True)
    assert len(points) == len(expected)
    numeric = ["y", "cl", "ucl", "lcl", "longest_run", "longest_run_max"]
    numeric += ["n_crossings", "n_crossings_min", "n_obs", "n_useful"]
    for column in numeric:
        np.testing.assert_allclose(
            points[column].to_numpy(float),
            expected[column].to_numpy(float),
            rtol=1e-9,
            atol=1e-12,
            err_msg=column,
        )
    for column in ["part", "include", "runs_signal", "sigma_signal"]:
        assert points[column].tolist() == expected[column].tolist(), column


def test_the_missing_value_cases_cover_unequal_subgroups_of_every_kind() -> None:
    # The reference must hold what the comparison above is meant to catch:
    # subgroups of one value (no SD) and an empty subgroup (all values missing)
    # in Xbar and S charts, with and without freeze, part and exclude.
    sizes = chart_for(CASES[CASES["case"] == "na_s"].iloc[0]).points["y_length"]
    assert set(sizes) == {0, 1, 3, 4, 5}
    missing_cases = set(CASES["case"][CASES["case"].str.contains("_na_|^na_", regex=True)])
    for chart in ("xbar", "s"):
        for variant in ("", "_freeze", "_part"):
            assert f"na_{chart}{variant}" in missing_cases
    assert {"na_run_sd", "na_i_sd", "na_run_median", "na_i_median"} <= missing_cases


def test_an_empty_subgroup_summed_stays_missing_where_qicharts2_plots_zero() -> None:
    # NA_test sample 16: five records, all missing. Every other subgroup's sum
    # is qicharts2's; sample 16 is a gap in careloop and 0 in qicharts2.
    case = CASES[CASES["case"] == "na_run_sum"].iloc[0]
    ours = chart_for(case).points
    theirs = POINTS[POINTS["case"] == "na_run_sum"].reset_index(drop=True)
    empty = (ours["y_length"] == 0).to_numpy()
    assert ours["x"][empty].tolist() == [16]
    assert theirs["y"][empty].tolist() == [0]
    assert ours["y"][empty].isna().all()
    np.testing.assert_allclose(ours["y"][~empty], theirs["y"][~empty], rtol=1e-12)


def test_montgomery_example_7_1_matches_the_issue_reference_numbers() -> None:
    # qicharts2 tests/testthat/test_montgomery.R, Example 7.1 (numbers quoted in issue 6).
    data = pd.read_csv(DATA / "tbl_07.03.csv")
    chart = spc.qic(
        "count", x="sample", n="size", data=data, chart="p", exclude=[15, 23], part=[30]
    )
    summary = chart.summary()
    np.testing.assert_allclose(summary["cl"], [0.2150, 0.109687], atol=1e-6)
    np.testing.assert_allclose(summary["ucl"], [0.389297, 0.242270], atol=1e-6)
    np.testing.assert_allclose(summary["lcl"], [0.040703, 0.0], atol=1e-6)


def test_montgomery_example_6_5_matches_the_issue_reference_numbers() -> None:
    # qicharts2 tests/testthat/test_montgomery.R, Example 6.5 (numbers quoted in issue 6).
    data = pd.read_csv(DATA / "tbl_06.07.csv")
    summary = spc.qic("cost", x="weeks", data=data, chart="i", freeze=20).summary()
    np.testing.assert_allclose(
        summary[["cl", "ucl", "lcl"]].iloc[0], [300.5, 321.216685, 279.783315], atol=1e-6
    )


@pytest.mark.parametrize(
    ("file", "kwargs", "expected", "tolerance"),
    [
        # Montgomery, Introduction to SQC (6th ed.), Example 6.3: x̿ = 74.001, s̄ = 0.0094,
        # Xbar UCL 74.014 / LCL 73.988 (A3 = 1.427 with s̄ rounded), S UCL 0.0196 / LCL 0.
        (
            "tbl_06.03.csv",
            {"y": "obs", "x": "sample", "chart": "xbar"},
            (73.988, 74.001, 74.014),
            6e-4,
        ),
        ("tbl_06.03.csv", {"y": "obs", "x": "sample", "chart": "s"}, (0.0, 0.0094, 0.0196), 6e-5),
        # Example 7.3: c̄ = 19.85, UCL 33.22, LCL 6.48 (26 samples).
        (
            "tbl_07.08.csv",
            {"y": "count", "x": "sample", "chart": "c", "freeze": 26},
            (6.48, 19.85, 33.22),
            0.01,
        ),
        # Example 7.3 revised without samples 6 and 20: c̄ = 19.67, UCL 32.97, LCL 6.36.
        (
            "tbl_07.08.csv",
            {"y": "count", "x": "sample", "chart": "c", "exclude": [6, 20], "freeze": 26},
            (6.36, 19.67, 32.97),
            0.01,
        ),
    ],
)
def test_limits_agree_with_montgomerys_published_values(
    file: str, kwargs: dict[str, object], expected: tuple[float, float, float], tolerance: float
) -> None:
    data = pd.read_csv(DATA / file)
    y = kwargs.pop("y")
    summary = spc.qic(y, data=data, **kwargs).summary()  # type: ignore[arg-type]
    # Published to 2–4 digits and computed from rounded intermediate values.
    np.testing.assert_allclose(summary[["lcl", "cl", "ucl"]].iloc[0], expected, atol=tolerance)


def test_montgomery_example_7_5_u_chart_limits_vary_with_inspection_units() -> None:
    # Montgomery Example 7.5: ū = 153 / 107.5 = 1.42 per 50 m²; a 500 m² roll
    # (10 units) has UCL 1.42 + 3√(1.42/10) = 2.55 and LCL 0.29.
    data = pd.read_csv(DATA / "tbl_07.11.csv")
    points = spc.qic("count", x="roll", n="meters", data=data, chart="u", multiply=50).points
    assert data["count"].sum() == 153
    np.testing.assert_allclose(points["cl"].iloc[0], 153 / (data["meters"].sum() / 50), rtol=1e-12)
    first = points.iloc[0]
    np.testing.assert_allclose([first["lcl"], first["ucl"]], [0.29, 2.55], atol=0.01)


def test_runs_limits_match_qicharts2_for_1_to_1000_useful_points() -> None:
    # R's round(log2(n)) + 3 and qbinom(0.05, n - 1, 0.5).
    limits = pd.read_csv(REFERENCE / "qicharts2_runs_limits.csv")
    assert [longest_run_max(n) for n in limits["n_useful"]] == limits["longest_run_max"].tolist()
    assert [crossings_min(n) for n in limits["n_useful"]] == limits["n_crossings_min"].tolist()


def test_runs_signal_matches_qicharts2_crsignal_for_every_method() -> None:
    grid = pd.read_csv(REFERENCE / "qicharts2_crsignal.csv")
    for method in ("anhoej", "bestbox", "cutbox"):
        ours = [runs_signal(int(r.n), int(r.c), int(r.l), method) for r in grid.itertuples()]
        assert ours == grid[method].tolist(), method
