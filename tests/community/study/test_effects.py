"""The Study's effect estimators, checked against statsmodels fitted directly and a hand sandwich."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from careloop.community.study import clustered_proportion, its_effect
from careloop.core.errors import InputError


def _series(seed: int, *, overdispersed: bool) -> pd.DataFrame:
    """72 months, a step (odds ratio 2) at month 37; beta-binomial counts if overdispersed."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, 73)
    step = (t >= 37).astype(int)
    p = 1 / (1 + np.exp(-(0.2 + 0.002 * t + math.log(2.0) * step)))
    n = rng.integers(60, 120, size=len(t))
    if overdispersed:
        # Beta-binomial with intra-class correlation 0.05: what patients' shared states do.
        rho = 0.05
        a, b = p * (1 - rho) / rho, (1 - p) * (1 - rho) / rho
        p = rng.beta(a, b)
    y = rng.binomial(n, p)
    return pd.DataFrame({"t": t, "numerator": y, "denominator": n, "change": step})


def _statsmodels(frame: pd.DataFrame, scale: str | float) -> tuple[float, float, float]:
    # Proportions with the trials as variance weights: the form in which statsmodels'
    # scale="X2" is the quasi-binomial Pearson χ²/df (with a two-column endog it is not).
    X = sm.add_constant(frame[["t", "change"]].astype(float))
    share = frame.numerator / frame.denominator
    weights = frame.denominator.astype(float)
    res = sm.GLM(share, X, family=sm.families.Binomial(), var_weights=weights).fit(scale=scale)
    b, se = float(res.params["change"]), float(res.bse["change"])
    q = float(stats.t.ppf(0.975, res.df_resid))
    return math.exp(b), math.exp(b - q * se), math.exp(b + q * se)


def test_overdispersed_counts_get_the_quasi_binomial_interval_statsmodels_gives():
    frame = _series(3, overdispersed=True)
    fit = its_effect(frame, ["change"])
    assert fit.dispersion > 1.5  # the beta-binomial spread is seen
    # statsmodels GLM(Binomial).fit(scale="X2"): the quasi-binomial (Pearson χ²) scale.
    est, low, high = _statsmodels(frame, "X2")
    got = fit.step("change")
    assert got.estimate == pytest.approx(est, rel=1e-8)
    assert got.ci_low == pytest.approx(low, rel=1e-6)
    assert got.ci_high == pytest.approx(high, rel=1e-6)
    # …which is wider than the binomial model's own interval.
    _b_est, b_low, b_high = _statsmodels(frame, 1.0)
    assert got.ci_high / got.ci_low > b_high / b_low


def test_the_interval_is_never_narrower_than_the_binomial_one():
    for seed in range(12):
        frame = _series(seed, overdispersed=False)
        fit = its_effect(frame, ["change"])
        if fit.fit.pearson_dispersion < 1:
            _est, low, high = _statsmodels(frame, 1.0)
            got = fit.step("change")
            assert fit.dispersion == 1.0
            assert (got.ci_low, got.ci_high) == pytest.approx((low, high), rel=1e-6)
            return
    pytest.fail("no under-dispersed series among the seeds")


def test_a_cluster_robust_proportion_matches_the_sandwich_computed_by_hand():
    accepted = np.array([3, 9, 5, 12, 1, 7])
    shown = np.array([10, 12, 9, 14, 8, 11])
    effect, method = clustered_proportion(accepted, shown, what="clinicians")
    # By hand: intercept-only logistic regression, sandwich over clusters with the
    # G/(G−1) small-sample factor, t on G−1 df (Cameron & Miller 2015, §II.C, §VI).
    n, g = shown.sum(), len(shown)
    p = accepted.sum() / n
    bread = n * p * (1 - p)
    meat = np.sum((accepted - p * shown) ** 2) * g / (g - 1)
    se = math.sqrt(meat) / bread
    theta = math.log(p / (1 - p))
    q = stats.t.ppf(0.975, g - 1)
    expit = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert effect.estimate == pytest.approx(37 / 64)
    assert effect.ci_low == pytest.approx(expit(theta - q * se), rel=1e-9)
    assert effect.ci_high == pytest.approx(expit(theta + q * se), rel=1e-9)
    assert "6 clinicians" in method and "cluster-robust" in method
    # statsmodels: the same model on one row per card, cov_type="cluster" by clinician.
    rows = np.concatenate([[1] * a + [0] * (m - a) for a, m in zip(accepted, shown, strict=True)])
    groups = np.repeat(np.arange(g), shown)
    res = sm.GLM(rows, np.ones((n, 1)), family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    # Its small-sample factor is G/(G−1)·(N−1)/(N−K): the (N−1)/(N−1) is 1 here.
    assert float(res.bse[0]) == pytest.approx(se, rel=1e-9)


def test_clinicians_who_differ_widen_the_interval_and_identical_ones_get_the_binomial_one():
    clustered, _ = clustered_proportion([0, 10, 1, 9, 0, 10], [10] * 6)
    alike, _ = clustered_proportion([5, 5, 5, 5, 5, 5], [10] * 6)
    assert clustered.estimate == alike.estimate == 0.5
    assert clustered.ci_high - clustered.ci_low > 2 * (alike.ci_high - alike.ci_low)
    # Identical clinicians: the sandwich is 0; the binomial variance 1/(60·0.25) is used.
    half = stats.t.ppf(0.975, 5) * math.sqrt(1 / 15)
    assert alike.ci_high == pytest.approx(1 / (1 + math.exp(-half)), rel=1e-9)


def test_a_proportion_with_no_variation_gets_the_exact_interval():
    effect, method = clustered_proportion([4, 6], [4, 6])
    assert effect.estimate == 1.0 and effect.ci_high == 1.0
    # Clopper–Pearson lower bound for 10/10: (0.025)^(1/10) = 0.6915 (exact binomial tables).
    assert effect.ci_low == pytest.approx(0.025 ** (1 / 10), rel=1e-9)
    assert "Clopper–Pearson" in method


def test_bad_counts_are_refused_with_where_and_what():
    with pytest.raises(InputError, match="Cluster 2 has 5 successes of 3 trials"):
        clustered_proportion([1, 5], [2, 3])
    with pytest.raises(InputError, match="at least two clinicians"):
        clustered_proportion([1], [2], what="clinicians")
    with pytest.raises(InputError, match="same length"):
        clustered_proportion([1, 2], [2])
