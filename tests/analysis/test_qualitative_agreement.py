"""Cohen's kappa and Krippendorff's alpha against published values and libraries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa

from careloop.analysis.qualitative import cohen_kappa, krippendorff_alpha
from careloop.core.errors import InputError

nan = np.nan

# Krippendorff K. Computing Krippendorff's alpha-reliability (2011), section C:
# 4 observers × 12 units with missing values; unit 12 has a single value.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
]

# The 3 coders × 15 units example of Wikipedia's "Krippendorff's alpha" article,
# used by the `krippendorff` package's tests (pln-fing-udelar/fast-krippendorff,
# tests/test_krippendorff.py): nominal 0.691358, interval 0.810845.
WIKIPEDIA = [
    [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
    [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
    [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
]

A = [1, 2, 3, 1, 2, 3, 1, 1, 2, 3, 3, 2, 1, 2]
B = [1, 2, 3, 2, 2, 3, 1, 1, 3, 3, 2, 2, 1, 1]


@pytest.mark.parametrize(
    ("level", "expected"),
    # Krippendorff (2011): nominal .743, ordinal .815, interval .849, ratio .797
    # (ordinal and ratio also in fast-krippendorff's tests).
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_reproduces_krippendorffs_worked_example(level, expected):
    result = krippendorff_alpha(KRIPPENDORFF_2011, level=level, n_boot=0)
    assert round(result.alpha, 3) == expected
    assert result.n_units == 11  # unit 12 is not pairable
    assert result.n_values == 40
    assert result.n_coders == 4


def test_alpha_reproduces_the_wikipedia_example():
    assert round(krippendorff_alpha(WIKIPEDIA, n_boot=0).alpha, 6) == 0.691358
    assert round(krippendorff_alpha(WIKIPEDIA, level="interval", n_boot=0).alpha, 6) == 0.810845


def test_alpha_takes_long_data_and_ordered_labels():
    labels = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}
    rows = [
        {"unit": j, "coder": f"c{i}", "value": labels[int(v)]}
        for i, row in enumerate(KRIPPENDORFF_2011)
        for j, v in enumerate(row)
        if not np.isnan(v)
    ]
    result = krippendorff_alpha(
        pd.DataFrame(rows),
        unit="unit",
        coder="coder",
        value="value",
        level="ordinal",
        categories=list(labels.values()),
        n_boot=0,
    )
    assert round(result.alpha, 3) == 0.815


def test_alpha_bootstrap_ci_brackets_the_estimate_and_is_reproducible():
    r1 = krippendorff_alpha(KRIPPENDORFF_2011, n_boot=300, seed=7)
    r2 = krippendorff_alpha(KRIPPENDORFF_2011, n_boot=300, seed=7)
    assert r1.ci_low < r1.alpha <= r1.ci_high <= 1
    assert (r1.ci_low, r1.ci_high) == (r2.ci_low, r2.ci_high)
    assert float(r1) == r1.alpha
    assert "tentative" in r1.summary()


def test_alpha_refuses_one_coder_and_no_variation():
    with pytest.raises(InputError, match="at least two coders"):
        krippendorff_alpha([[1, 2, 3]])
    with pytest.raises(InputError, match="undefined"):
        krippendorff_alpha([[1, 1, 1], [1, 1, 1]])
    with pytest.raises(InputError, match="No unit"):
        krippendorff_alpha([[1, nan], [nan, 2]])
    with pytest.raises(InputError, match="numeric"):
        krippendorff_alpha([["a", "b"], ["a", "a"]], level="interval")


def test_kappa_matches_sklearn_and_the_fleiss_cohen_everitt_se_in_statsmodels():
    result = cohen_kappa(A, B)
    assert result.kappa == pytest.approx(cohen_kappa_score(A, B), abs=1e-12)
    # statsmodels' cohens_kappa implements the Fleiss, Cohen & Everitt (1969) variance
    table = pd.crosstab(pd.Series(A), pd.Series(B)).to_numpy()
    ref = cohens_kappa(table)
    assert result.se == pytest.approx(ref.std_kappa, rel=1e-10)
    assert result.ci_low == pytest.approx(ref.kappa_low, rel=1e-10)
    assert result.ci_high == pytest.approx(ref.kappa_upp, rel=1e-10)
    assert result.p == pytest.approx(ref.pvalue_two_sided, rel=1e-8)


def test_kappa_by_hand_on_a_two_by_two_table():
    # 20 units: both yes 8, both no 7, a yes/b no 3, a no/b yes 2.
    # po = 15/20 = 0.75; pe = 0.55·0.5 + 0.45·0.5 = 0.5; kappa = 0.5.
    a = ["y"] * 8 + ["n"] * 7 + ["y"] * 3 + ["n"] * 2
    b = ["y"] * 8 + ["n"] * 7 + ["n"] * 3 + ["y"] * 2
    result = cohen_kappa(a, b)
    assert result.kappa == pytest.approx(0.5)
    assert result.observed_agreement == pytest.approx(0.75)
    assert result.expected_agreement == pytest.approx(0.5)
    assert "moderate" in result.summary()


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_weighted_kappa_matches_sklearn(weights):
    assert cohen_kappa(A, B, weights=weights).kappa == pytest.approx(
        cohen_kappa_score(A, B, weights=weights), abs=1e-12
    )


def test_weighted_kappa_se_matches_the_spread_of_kappa_over_simulated_samples():
    # Monte Carlo check of the Fleiss–Cohen–Everitt weighted variance: sample 300
    # units from a fixed joint distribution 400 times; the formula's SE should be
    # close to the SD of the 400 kappas.
    rng = np.random.default_rng(1)
    joint = np.array([[0.25, 0.05, 0.02], [0.06, 0.2, 0.07], [0.01, 0.06, 0.28]])
    cells = [(i, j) for i in range(3) for j in range(3)]
    kappas, ses = [], []
    for _ in range(400):
        draw = rng.choice(9, size=300, p=joint.ravel())
        a = [cells[d][0] for d in draw]
        b = [cells[d][1] for d in draw]
        r = cohen_kappa(a, b, weights="quadratic")
        kappas.append(r.kappa)
        ses.append(r.se)
    assert np.mean(ses) == pytest.approx(np.std(kappas, ddof=1), rel=0.12)


def test_kappa_drops_units_coded_by_one_coder_and_says_so():
    result = cohen_kappa([*A, "x", None], [*B, None, 2])
    assert result.n == len(A)
    assert result.n_dropped == 2
    assert "left out" in result.summary()


def test_kappa_refuses_one_coder_only_and_no_variation():
    with pytest.raises(InputError, match="one coder only"):
        cohen_kappa([1, 2, 3], [None, None, None])
    with pytest.raises(InputError, match="undefined"):
        cohen_kappa(["yes"] * 5, ["yes"] * 5)
    with pytest.raises(InputError, match="differ in length"):
        cohen_kappa([1, 2], [1, 2, 3])


def test_kappa_interval_is_kept_within_minus_one_and_one_with_few_units():
    # 7 units: the Wald interval 0.588 ± 1.96 × SE would pass 1 (by hand SE ≈ 0.35)
    result = cohen_kappa([1, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0])
    assert result.kappa == pytest.approx(
        cohen_kappa_score([1, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0])
    )
    assert result.kappa + 1.96 * result.se > 1
    assert result.ci_high == 1.0
