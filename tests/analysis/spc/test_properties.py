"""Invariants of spc.qic, checked with hypothesis on random series."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from careloop.analysis import spc

values = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False).map(lambda v: round(v, 2)),
    min_size=3,
    max_size=40,
)
counts = st.lists(st.integers(min_value=0, max_value=50), min_size=3, max_size=40)
# Derandomised so that CI runs the same examples every time.
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


def qic(*args: Any, **kwargs: Any) -> spc.SpcChart:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spc.SpcWarning)
        return spc.qic(*args, **kwargs)


@SETTINGS
@given(values, st.sampled_from(["i", "c", "xbar"]))
def test_limits_are_symmetric_about_the_centre_line_where_they_should_be(
    y: list[float], chart: str
) -> None:
    if chart == "c":
        y = [abs(v) for v in y]
        points = qic(y, chart=chart, multiply=1).points
        points = points[points["lcl"] > 0]  # the LCL of a C chart is floored at 0
    elif chart == "xbar":
        points = qic(y + [v + 1 for v in y], x=list(range(len(y))) * 2, chart="xbar").points
    else:
        points = qic(y, chart=chart).points
    ok = points["ucl"].notna()
    np.testing.assert_allclose(
        (points["ucl"] - points["cl"])[ok], (points["cl"] - points["lcl"])[ok], atol=1e-9
    )


@SETTINGS
@given(values, st.data())
def test_values_of_excluded_points_change_nothing(y: list[float], data: st.DataObject) -> None:
    positions = data.draw(st.sets(st.integers(1, len(y)), min_size=1, max_size=len(y) - 2))
    excluded = sorted(positions)
    scrambled = list(y)
    replacements = data.draw(
        st.lists(
            st.floats(-1e4, 1e4, allow_nan=False), min_size=len(excluded), max_size=len(excluded)
        )
    )
    for position, value in zip(excluded, replacements, strict=True):
        scrambled[position - 1] = value
    first = qic(y, chart="i", exclude=excluded).points
    second = qic(scrambled, chart="i", exclude=excluded).points
    columns = ["cl", "ucl", "lcl", "n_useful", "longest_run", "n_crossings", "runs_signal"]
    pd.testing.assert_frame_equal(first[columns], second[columns])


@SETTINGS
@given(values, st.randoms(use_true_random=False))
def test_row_order_does_not_matter_because_x_is_sorted(y: list[float], rnd: Any) -> None:
    x = list(range(len(y)))
    order = list(range(len(y)))
    rnd.shuffle(order)
    plain = qic(y, x=x, chart="i").points
    shuffled = qic([y[i] for i in order], x=[x[i] for i in order], chart="i").points
    pd.testing.assert_frame_equal(plain, shuffled)


@SETTINGS
@given(values, st.floats(min_value=-100, max_value=100).map(lambda v: round(v, 1)))
def test_shifting_the_data_shifts_the_lines_and_keeps_the_runs(
    y: list[float], shift: float
) -> None:
    a = qic(y, chart="i").points
    b = qic([v + shift for v in y], chart="i").points
    np.testing.assert_allclose(b["cl"], a["cl"] + shift, atol=1e-6)
    np.testing.assert_allclose(b["ucl"] - b["cl"], a["ucl"] - a["cl"], atol=1e-6)


@SETTINGS
@given(counts, st.data())
def test_p_chart_limits_stay_within_zero_and_one(y: list[int], data: st.DataObject) -> None:
    n = [v + data.draw(st.integers(min_value=1, max_value=100)) for v in y]
    points = qic(y, n=n, chart="p").points
    assert ((points["lcl"] >= 0) | points["lcl"].isna()).all()
    assert ((points["ucl"] <= 1) | points["ucl"].isna()).all()


@SETTINGS
@given(values)
def test_run_statistics_stay_within_their_bounds(y: list[float]) -> None:
    summary = qic(y).summary().iloc[0]
    if summary["n_useful"] > 0:
        assert 1 <= summary["longest_run"] <= summary["n_useful"]
        assert 0 <= summary["n_crossings"] <= summary["n_useful"] - 1
        # runs = crossings + 1 runs must hold all useful points
        assert summary["longest_run"] * (summary["n_crossings"] + 1) >= summary["n_useful"]
    assert summary["n_useful"] <= summary["n_obs"] == len(y)
