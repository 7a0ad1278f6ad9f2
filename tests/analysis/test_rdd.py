"""Regression discontinuity on the US Senate data against rdrobust's published output.

Published numbers: S. Calonico, M. D. Cattaneo, M. H. Farrell, R. Titiunik,
*rdrobust: Software for regression-discontinuity designs*, Stata Journal
17(2):372–404, 2017, the output of ``rdrobust vote margin`` on these data
("CCFT 2017"): conventional 7.4141 (SE 1.4587), robust 95% CI 4.0937 to
10.9193, h = 17.754, b = 28.028, 595/702 observations, 360/323 within h. The
covariate-adjusted bandwidths are the R baseline pinned in rdrobust's own
test suite (rdpackages/rdrobust, ``Python/rdrobust/tests/test_numerical_contracts.py``,
commit 3844d431: ``rdbwselect(y, x, covs=…, vce="hc1")`` → 17.976890 / 28.963712,
and ``rdrobust(..., h=[10, 10], b=[20, 20], vce="hc1")`` → N 491/617, N_h 215/181).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careloop import charts
from careloop.analysis import Effect, rdd
from careloop.analysis.caveats import StatisticalWarning
from careloop.core.errors import InputError


@pytest.fixture(scope="module")
def senate(test_data: Path) -> pd.DataFrame:
    return pd.read_csv(test_data / "rdrobust_senate" / "rdrobust_senate.csv")


@pytest.fixture(scope="module")
def fit(senate: pd.DataFrame) -> rdd.RddResult:
    return rdd.estimate(senate, outcome="vote", running="margin")


def test_sharp_senate_matches_published(fit: rdd.RddResult) -> None:
    # CCFT 2017, rdrobust vote margin.
    assert isinstance(fit.conventional, Effect)
    assert fit.conventional.estimate == pytest.approx(7.4141, abs=5e-5)
    assert fit.se_conventional == pytest.approx(1.4587, abs=5e-5)
    assert fit.conventional.ci_low == pytest.approx(4.5551, abs=5e-4)
    assert fit.conventional.ci_high == pytest.approx(10.2732, abs=5e-4)
    assert fit.robust.ci_low == pytest.approx(4.0937, abs=5e-4)
    assert fit.robust.ci_high == pytest.approx(10.9193, abs=5e-4)
    assert fit.h == pytest.approx((17.754, 17.754), abs=5e-4)
    assert fit.b == pytest.approx((28.028, 28.028), abs=5e-4)
    assert (fit.n_left, fit.n_right) == (595, 702)
    assert (fit.n_h_left, fit.n_h_right) == (360, 323)
    # The robust effect is the bias-corrected point with the robust SE.
    assert fit.robust.estimate == fit.bias_corrected.estimate
    assert fit.robust.p < 0.001 and fit.conventional.p < 0.001
    assert fit.design == "sharp" and fit.p == 1 and fit.q == 2
    assert fit.caveats == ("93 row(s) with missing values were left out.",)


def test_covariate_adjusted_bandwidths_match_r_baseline(senate: pd.DataFrame) -> None:
    res = rdd.estimate(
        senate,
        outcome="vote",
        running="margin",
        covariates=["termshouse", "termssenate", "population"],
        vce="hc1",
    )
    assert res.h == pytest.approx((17.976890, 17.976890), abs=1e-5)
    assert res.b == pytest.approx((28.963712, 28.963712), abs=1e-5)
    manual = rdd.estimate(
        senate,
        outcome="vote",
        running="margin",
        covariates=["termshouse", "termssenate", "population"],
        vce="hc1",
        h=10,
        b=20,
    )
    assert (manual.n_left, manual.n_right) == (491, 617)
    assert (manual.n_h_left, manual.n_h_right) == (215, 181)
    assert manual.bwselect == "manual"


def test_summary_and_table(fit: rdd.RddResult) -> None:
    text = fit.summary()
    assert "7.414" in text and "4.094 to 10.92" in text
    assert "360 units just below and 323 just above" in text
    table = fit.table()
    assert list(table["method"]) == ["conventional", "bias-corrected", "robust"]
    assert table.loc[2, "se"] == pytest.approx(1.7413, abs=5e-4)


def test_figure_is_an_rdplot(fit: rdd.RddResult) -> None:
    fig = charts.rdd.figure(fit)
    names = [t.name for t in fig.data]
    assert names[0] == "bin mean"
    bins = fit.binned().vars_bins
    # rdplot's default (esmv) bins for these data; the means are vote averages.
    assert len(fig.data[0].x) == len(bins)
    assert bins["rdplot_mean_y"].between(0, 100).all()
    assert (fig.data[1].x < 0).all() and (fig.data[2].x >= 0).all()


def test_density_test_on_senate(fit: rdd.RddResult) -> None:
    # rddensity 3.0 on all 1390 margins (`rddensity(X = margin)`): T_jk = -0.8753,
    # p = 0.3814, bandwidths 19.841 / 27.119, 408/460 effective observations —
    # no evidence of sorting around a zero margin.
    dt = fit.density_test()
    assert dt.statistic == pytest.approx(-0.8753, abs=5e-4)
    assert dt.p == pytest.approx(0.3814, abs=5e-4)
    assert dt.h == pytest.approx((19.841, 27.119), abs=5e-3)
    assert (dt.n_left, dt.n_right, dt.n_h_left, dt.n_h_right) == (640, 750, 408, 460)
    assert "no detectable jump" in dt.summary()


def test_density_test_detects_heaping() -> None:
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, 3000)
    # Move a third of those just below the cut-off to just above it.
    below = (x > -0.2) & (x < 0)
    move = below & (rng.uniform(size=x.size) < 0.6)
    x[move] = -x[move]
    dt = rdd.density_test(x)
    assert dt.p < 0.001
    assert "jump" in dt.summary()


def test_fuzzy_design() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    x = rng.uniform(-1, 1, n)
    treated = (rng.uniform(size=n) < np.where(x >= 0, 0.8, 0.2)).astype(float)
    y = 1 + x + 2.0 * treated + rng.normal(0, 1, n)
    df = pd.DataFrame({"y": y, "x": x, "t": treated})
    res = rdd.estimate(df, outcome="y", running="x", fuzzy="t")
    assert res.design == "fuzzy"
    assert res.first_stage is not None
    assert res.first_stage.estimate == pytest.approx(0.6, abs=0.1)
    # The complier effect is 2.
    assert res.robust.ci_low < 2 < res.robust.ci_high
    assert "compliers" in res.summary()


def test_bandwidth_with_too_few_points_is_an_error(senate: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="holds 3 observation"):
        rdd.estimate(senate, outcome="vote", running="margin", h=0.3)


def test_one_side_too_small_is_an_error(senate: pd.DataFrame) -> None:
    df = pd.DataFrame({"x": np.r_[np.linspace(-1, -0.01, 200), [0.1, 0.2, 0.3]]})
    df["y"] = df["x"] + (df["x"] >= 0)
    with pytest.raises(InputError, match="Too few observations"):
        rdd.estimate(df, outcome="y", running="x")
    # A cut-off where the right side has only mass points: rdrobust's failure
    # becomes a careloop error that says what to do.
    with pytest.raises(InputError, match="widen the bandwidth"):
        rdd.estimate(senate, outcome="vote", running="margin", cutoff=95)


def test_bad_inputs(senate: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="not found"):
        rdd.estimate(senate, outcome="votes", running="margin")
    with pytest.raises(InputError, match="kernel"):
        rdd.estimate(senate, outcome="vote", running="margin", kernel="gaussian")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="bandwidth selector"):
        rdd.estimate(senate, outcome="vote", running="margin", bwselect="ik")


def test_few_points_warn(senate: pd.DataFrame) -> None:
    with pytest.warns(StatisticalWarning, match="imprecise"):
        res = rdd.estimate(senate, outcome="vote", running="margin", h=1.0)
    assert res.n_h_left < 30
    assert any("imprecise" in c for c in res.caveats)
