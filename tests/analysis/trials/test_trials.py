"""Rapid-cycle randomised tests: allocation, comparisons, Bayes, monitoring, sample size.

References beside the numbers:
- ``trials_reference.txt``: tests/analysis/trials/reference/trials_reference.R run with R 4.2.2,
  Debian's r-cran-rpact 3.3.4 (``getDesignGroupSequential``) and base R
  ``power.prop.test`` / ``power.t.test``.
- statsmodels 0.15 (``confint_proportions_2indep``, ``proportions_ztest``,
  ``TTestIndPower``, ``NormalIndPower``, ``CompareMeans``).
- Classic O'Brien–Fleming boundaries for K = 3, two-sided 0.05: 3.471, 2.454,
  2.004 (Jennison & Turnbull, *Group Sequential Methods*, 2000, Table 2.3:
  C_B(3, 0.05) = 2.004; rpact ``typeOfDesign = "OF"`` prints the same).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from careloop.analysis import trials as t
from careloop.analysis.caveats import StatisticalWarning
from careloop.core.errors import InputError, IntegrityFailure

REFERENCE = (Path(__file__).parent / "reference" / "trials_reference.txt").read_text()


def _ref(pattern: str) -> list[float]:
    match = re.search("^" + pattern + r".*?z=([0-9.,]+)", REFERENCE, re.MULTILINE)
    assert match, pattern
    return [float(v) for v in match.group(1).split(",")]


# ---------------------------------------------------------------- allocation


def test_allocation_is_reproducible_and_balanced() -> None:
    design = t.TrialDesign(name="card-wording", arms=("usual", "new"), seed=2024)
    a, b = t.Allocator(design), t.Allocator(design)
    arms_a = [a.assign(f"p{i}").arm for i in range(200)]
    arms_b = [b.assign(f"p{i}").arm for i in range(200)]
    assert arms_a == arms_b == design.sequence(200)
    # Permuted blocks of 2 or 4: never more than 2 apart.
    diff = np.cumsum([1 if x == "new" else -1 for x in arms_a])
    assert np.abs(diff).max() <= 2
    # Another seed gives another sequence.
    other = t.TrialDesign(name="card-wording", arms=("usual", "new"), seed=2025).sequence(200)
    assert other != arms_a


def test_assign_is_idempotent_and_concealed() -> None:
    design = t.TrialDesign(name="reminder", arms=("none", "reminder"), seed=7, unit="clinician")
    alloc = t.Allocator(design)
    first = alloc.assign("dr-1")
    assert alloc.assign("dr-1") == first
    assert len(alloc.assignments) == 1
    # Only revealed allocations are stored.
    record = alloc.to_dict()
    assert [r["unit_id"] for r in record["assignments"]] == ["dr-1"]
    assert "sequence" not in json.dumps(record)


def test_ratio_and_simple_allocation() -> None:
    design = t.TrialDesign(name="r", arms=("a", "b"), seed=1, ratio=(1, 2))
    seq = design.sequence(300)
    assert seq.count("b") == 200
    simple = t.TrialDesign(name="s", arms=("a", "b", "c"), seed=3, allocation="simple")
    counts = pd.Series(simple.sequence(3000)).value_counts()
    assert set(counts.index) == {"a", "b", "c"}
    assert counts.between(900, 1100).all()


def test_stratified_allocation_balances_within_strata() -> None:
    design = t.TrialDesign(
        name="strat", arms=("a", "b"), seed=9, allocation="stratified", strata=("site",)
    )
    alloc = t.Allocator(design)
    for i in range(40):
        alloc.assign(f"u{i}", {"site": "north" if i % 3 else "south"})
    counts = alloc.counts()
    assert (counts["a"] - counts["b"]).abs().max() <= 2
    with pytest.raises(InputError, match="site"):
        alloc.assign("x", {})


def test_round_trip_and_tamper_detection() -> None:
    design = t.TrialDesign(
        name="strat", arms=("a", "b"), seed=5, allocation="stratified", strata=("site", "age")
    )
    alloc = t.Allocator(design)
    for i in range(25):
        alloc.assign(f"u{i}", {"site": i % 2, "age": "old" if i % 5 else "young"})
    record = json.loads(json.dumps(alloc.to_dict()))
    restored = t.Allocator.from_dict(record)
    assert [a.arm for a in restored.assignments] == [a.arm for a in alloc.assignments]
    nxt = alloc.assign("new", {"site": 0, "age": "old"})
    assert restored.assign("new", {"site": 0, "age": "old"}) == nxt
    record["assignments"][3]["arm"] = "b" if record["assignments"][3]["arm"] == "a" else "a"
    with pytest.raises(IntegrityFailure, match="does not match the seed"):
        t.Allocator.from_dict(record)


def test_design_validation() -> None:
    with pytest.raises(InputError):
        t.TrialDesign(name="x", arms=("a",), seed=1)
    with pytest.raises(InputError):
        t.TrialDesign(name="x", arms=("a", "b"), seed=1, unit="ward")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        t.TrialDesign(name="x", arms=("a", "b"), seed=1, allocation="stratified")
    d = t.TrialDesign(name="x", arms=("a", "b"), seed=1)
    assert t.TrialDesign.from_dict(d.to_dict()) == d


# ---------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    ("x1", "n1", "x0", "n0"), [(30, 100, 20, 100), (3, 40, 9, 38), (56, 70, 48, 80)]
)
def test_proportions_against_statsmodels(x1: int, n1: int, x0: int, n0: int) -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    res = t.compare_proportions(x1, n1, x0, n0)
    lo, hi = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff")
    assert (res.difference.ci_low, res.difference.ci_high) == pytest.approx((lo, hi), abs=1e-10)
    rlo, rhi = confint_proportions_2indep(x1, n1, x0, n0, method="log", compare="ratio")
    assert (res.ratio.ci_low, res.ratio.ci_high) == pytest.approx((rlo, rhi), abs=1e-10)
    _, p = proportions_ztest([x1, x0], [n1, n0])
    assert res.difference.p == pytest.approx(p, abs=1e-12)
    assert res.difference.estimate == pytest.approx(x1 / n1 - x0 / n0)


def test_newcombe_hand_worked() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873–890, Table II example (h):
    # 56/70 vs 48/80, method 10 interval 0.0524 to 0.3339.
    res = t.compare_proportions(56, 70, 48, 80)
    assert res.difference.ci_low == pytest.approx(0.0524, abs=5e-5)
    assert res.difference.ci_high == pytest.approx(0.3339, abs=5e-5)
    assert "percentage points" in res.summary()


def test_zero_counts() -> None:
    res = t.compare_proportions(0, 20, 5, 20)
    assert res.difference.ci_low < res.difference.estimate < res.difference.ci_high
    assert res.caveats
    with pytest.raises(InputError):
        t.compare_proportions(5, 4, 1, 10)


def test_means_against_statsmodels() -> None:
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    rng = np.random.default_rng(3)
    y1, y0 = rng.normal(12, 3, 40), rng.normal(10, 5, 55)
    res = t.compare_means(y1, y0)
    cm = CompareMeans(DescrStatsW(y1), DescrStatsW(y0))
    lo, hi = cm.tconfint_diff(usevar="unequal")
    _, p, _ = cm.ttest_ind(usevar="unequal")
    assert (res.difference.ci_low, res.difference.ci_high) == pytest.approx((lo, hi), abs=1e-10)
    assert res.difference.p == pytest.approx(p, abs=1e-12)
    assert res.ratio.estimate == pytest.approx(y1.mean() / y0.mean())
    assert res.ratio.ci_low < res.ratio.estimate < res.ratio.ci_high


def test_cluster_robust_regression_matches_hand_sandwich() -> None:
    rng = np.random.default_rng(4)
    clinicians = np.repeat(np.arange(30), 12)
    arm = np.where(clinicians % 2 == 0, "reminder", "none")
    effect = rng.normal(0, 1, 30)[clinicians]
    y = 2 + 0.8 * (arm == "reminder") + effect + rng.normal(0, 1, clinicians.size)
    df = pd.DataFrame({"y": y, "arm": arm, "clinician": clinicians})
    res = t.regression(df, outcome="y", arm="arm", cluster="clinician")
    # CR1 sandwich by hand: (X'X)^-1 (sum_g X_g'u_g u_g'X_g) (X'X)^-1 · G/(G-1) · (n-1)/(n-k).
    x = np.column_stack([np.ones(len(df)), (arm == "reminder").astype(float)])
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    u = y - x @ beta
    bread = np.linalg.inv(x.T @ x)
    meat = sum(
        np.outer(
            x[clinicians == g].T @ u[clinicians == g], x[clinicians == g].T @ u[clinicians == g]
        )
        for g in range(30)
    )
    n, k, g = len(df), 2, 30
    v = bread @ meat @ bread * g / (g - 1) * (n - 1) / (n - k)
    assert res.effect.estimate == pytest.approx(beta[1])
    assert res.se == pytest.approx(math.sqrt(v[1, 1]), rel=1e-10)
    assert res.n_clusters == 30 and res.covariance == "cluster"
    # Ignoring the clustering understates the uncertainty here.
    naive = t.regression(df, outcome="y", arm="arm")
    assert naive.se < res.se
    assert "30 clusters" in res.summary()


def test_logistic_regression_odds_ratio() -> None:
    df = pd.DataFrame(
        {"y": [1] * 30 + [0] * 70 + [1] * 20 + [0] * 80, "arm": ["b"] * 100 + ["a"] * 100}
    )
    res = t.regression(df, outcome="y", arm="arm", family="binomial")
    assert res.scale == "odds ratio"
    assert res.effect.estimate == pytest.approx((30 / 70) / (20 / 80))


def test_few_clusters_warn() -> None:
    df = pd.DataFrame(
        {"y": np.arange(40.0), "arm": ["a", "b"] * 20, "site": np.repeat(range(4), 10)}
    )
    with pytest.warns(StatisticalWarning, match="Only 4 clusters"):
        t.regression(df, outcome="y", arm="arm", cluster="site")


# ---------------------------------------------------------------- Bayes


@pytest.mark.parametrize(
    ("x1", "n1", "x0", "n0"), [(30, 100, 20, 100), (4, 10, 7, 12), (0, 5, 0, 5)]
)
def test_probability_better_against_quadrature(x1: int, n1: int, x0: int, n0: int) -> None:
    res = t.probability_better(x1, n1, x0, n0)
    assert res.method == "closed form"
    post1, post0 = stats.beta(1 + x1, 1 + n1 - x1), stats.beta(1 + x0, 1 + n0 - x0)
    ref = integrate.quad(lambda p: post1.pdf(p) * post0.cdf(p), 0, 1, epsabs=1e-13)[0]
    assert res.probability_better == pytest.approx(ref, abs=1e-9)


def test_probability_better_jeffreys_and_monte_carlo() -> None:
    exact = t.probability_better(30, 100, 20, 100, prior=(0.5, 0.5))
    assert exact.method == "numerical integration"
    # Equal data: one half by symmetry.
    assert t.probability_better(7, 20, 7, 20, prior=(0.5, 0.5)).probability_better == pytest.approx(
        0.5, abs=1e-9
    )
    mc = t.probability_better(30, 100, 20, 100, prior=(0.5, 0.5), draws=400_000, seed=11)
    assert mc.probability_better == pytest.approx(exact.probability_better, abs=0.002)
    assert (
        mc.probability_better
        == t.probability_better(
            30, 100, 20, 100, prior=(0.5, 0.5), draws=400_000, seed=11
        ).probability_better
    )
    assert "higher rate" in exact.summary()


# ---------------------------------------------------------------- monitoring


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_obf_spending_boundaries_match_rpact(k: int) -> None:
    b = t.sequential_boundaries(k)
    assert b.z == pytest.approx(_ref(f"asOF k={k} "), abs=1e-5)
    assert b.alpha_spent[-1] == pytest.approx(0.05)


def test_unequal_looks_match_rpact() -> None:
    b = t.sequential_boundaries([0.3, 0.7, 1.0])
    assert b.z == pytest.approx(_ref("asOF unequal"), abs=1e-5)


def test_classic_obrien_fleming() -> None:
    b = t.sequential_boundaries(3, kind="obrien-fleming")
    # Published: 3.471, 2.454, 2.004 (Jennison & Turnbull Table 2.3; rpact "OF").
    assert b.z == pytest.approx([3.471, 2.454, 2.004], abs=5e-4)
    assert b.z == pytest.approx(_ref("OF k=3"), abs=1e-5)
    assert b.alpha_spent[-1] == pytest.approx(0.05, abs=1e-6)


def test_monitor_decisions() -> None:
    early = t.monitor([2.9], [1 / 3, 2 / 3, 1])
    assert early.decision == "continue" and early.stopped_at is None
    stop = t.monitor([2.9, 2.6], [1 / 3, 2 / 3, 1])
    assert stop.decision == "stop" and stop.stopped_at == 2
    assert "Stop at look 2" in stop.summary()
    final = t.monitor([1.0, 1.5, 1.9], [1 / 3, 2 / 3, 1])
    assert final.decision == "final: not significant"
    with pytest.raises(InputError):
        t.sequential_boundaries([0.5, 0.4, 1])


# ---------------------------------------------------------------- sample size


def test_sample_size_proportions() -> None:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    # base R power.prop.test (trials_reference.txt).
    for p0, p1, power, ref in (
        (0.2, 0.3, 0.8, 293.151286),
        (0.1, 0.15, 0.9, 917.320640),
        (0.5, 0.6, 0.8, 387.338517),
    ):
        res = t.sample_size_proportions(p0, p1, power=power)
        assert res.n_exact == pytest.approx(ref, abs=1e-5)
        assert res.n_per_arm == math.ceil(ref)
    arc = t.sample_size_proportions(0.2, 0.3, method="arcsine")
    ref = NormalIndPower().solve_power(proportion_effectsize(0.3, 0.2), alpha=0.05, power=0.8)
    assert arc.n_exact == pytest.approx(ref, rel=1e-6)


def test_sample_size_means() -> None:
    from statsmodels.stats.power import TTestIndPower

    res = t.sample_size_means(5, 10)
    assert res.n_exact == pytest.approx(
        TTestIndPower().solve_power(0.5, alpha=0.05, power=0.8), rel=1e-6
    )
    # base R power.t.test counts only the upper tail, hence a hair more.
    assert res.n_exact == pytest.approx(63.765764, abs=1e-3)
    assert t.sample_size_means(1, 2, power=0.9).n_exact == pytest.approx(85.031289, abs=1e-3)
    assert res.n_per_arm == 64 and "64 per arm" in res.summary()
    with pytest.raises(InputError):
        t.sample_size_means(0, 1)
