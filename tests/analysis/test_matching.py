"""Coarsened exact matching against the cem authors' published output.

Every published number below is from S. M. Iacus, G. King, G. Porro, *cem:
Software for Coarsened Exact Matching*, Journal of Statistical Software 30(9),
2009, as printed in the Sweave output of the package's vignette
``inst/doc/JSS-paper.tex`` (repository cran/cem, commit 33b3317e…); "JSS §x"
names the section. The data are the package's ``LL`` and ``LeLonde``
(tests/data/cem_lalonde/SOURCE.md).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from careloop import charts
from careloop.analysis import Effect
from careloop.analysis import matching as m
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.matching import balance, coarsening
from careloop.core.errors import InputError

REFERENCE = Path(__file__).parent / "reference"

Q1_GROUPS = [
    ["strongly agree", "agree"],
    ["neutral", "no opinion"],
    ["strongly disagree", "disagree"],
]


@pytest.fixture(scope="module")
def ll(test_data: Path) -> pd.DataFrame:
    return pd.read_csv(test_data / "cem_lalonde" / "LL.csv")


@pytest.fixture(scope="module")
def lelonde(test_data: Path) -> pd.DataFrame:
    return pd.read_csv(test_data / "cem_lalonde" / "LeLonde.csv")


@pytest.fixture(scope="module")
def le(lelonde: pd.DataFrame) -> pd.DataFrame:
    """``Le <- data.frame(na.omit(LeLonde))`` (JSS §3.1): 258 treated, 392 controls."""
    return lelonde.dropna().reset_index(drop=True)


@pytest.fixture(scope="module")
def mat(le: pd.DataFrame) -> m.CemResult:
    """``mat <- cem(treatment = "treated", data = Le, drop = "re78")`` (JSS §3.2.1)."""
    return m.cem(le, treatment="treated", drop=["re78"])


def test_unmatched_sizes_and_imbalance(le: pd.DataFrame, mat: m.CemResult) -> None:
    # JSS §3.1: "the data include 258 treated units and 392 control units";
    # imbalance(group = Le$treated, data = Le[vars]): L1=0.902.
    assert (mat.n_treated, mat.n_control) == (258, 392)
    assert round(mat.l1_before, 3) == 0.902
    table = mat.imbalance_before.table
    # JSS §3.1, univariate table: statistic column (treated minus control means; χ² for q1).
    assert table.loc["age", "statistic"] == pytest.approx(-0.252373, abs=5e-7)
    assert table.loc["education", "statistic"] == pytest.approx(0.153635, abs=5e-7)
    assert table.loc["re74", "statistic"] == pytest.approx(-18.160447, abs=5e-6)
    assert table.loc["re75", "statistic"] == pytest.approx(101.501762, abs=5e-6)
    assert table.loc["q1", "statistic"] == pytest.approx(7.494021, abs=5e-7)
    assert table.loc["q1", "type"] == "(Chi2)"
    # ... the univariate L1 column and quantile differences.
    # For 0/1 and categorical covariates the published L1 column is ours:
    assert table.loc["nodegree", "L1"] == pytest.approx(8.122e-02, abs=5e-6)
    assert table.loc["u75", "L1"] == pytest.approx(6.556e-02, abs=5e-6)
    assert table.loc["q1", "L1"] == pytest.approx(1.067e-01, abs=5e-5)
    assert table.loc["re74", "50%"] == pytest.approx(284.1, abs=0.05)
    assert table.loc["re74", "max"] == pytest.approx(-2139.0, abs=0.05)
    assert table.loc["re75", "75%"] == pytest.approx(1238.4, abs=0.05)
    assert table.loc["age", "max"] == -6.0
    # For other numeric covariates cem's univariate L1 cuts the already binned
    # codes a second time with the original-scale breaks (imbalance() passes the
    # reduced data and the breaks to L1.meas), so it prints education 8.464e-02,
    # age 5.102e-03 and re74 5.551e-17 (~0). We report the L1 of the single
    # histogram instead; cutting our bins twice reproduces the published column,
    # which confirms the break points.
    t = (le["treated"] == 1).to_numpy()
    for name, published in (("education", 8.464e-02), ("age", 5.102e-03), ("re74", 0.0)):
        b = m.l1_histogram_breaks(le[name])
        twice = coarsening._cut(coarsening._cut(le[name].to_numpy(float), b), b)
        l1, _ = balance._l1(coarsening._stratify(pd.DataFrame({"x": twice})), t, np.ones(len(t)))
        assert l1 == pytest.approx(published, abs=5e-6)
    assert table.loc["education", "L1"] > 0.0846


def test_automatic_coarsening_matches_published(mat: m.CemResult) -> None:
    # JSS §3.2.1 printout of `mat`: G0 All 392 Matched 95 Unmatched 297;
    # G1 All 258 Matched 84 Unmatched 174; L1=0.605.
    counts = mat.counts()
    assert counts.loc["Matched"].tolist() == [95, 84]
    assert counts.loc["Unmatched"].tolist() == [297, 174]
    assert (mat.n_matched_control, mat.n_matched_treated) == (95, 84)
    assert round(mat.l1_after, 3) == 0.605
    # JSS §3.2.2: mat$breaks$education = 3.0 4.2 5.4 6.6 7.8 9.0 10.2 11.4 12.6 13.8 15.0
    # (Sturges: ceil(log2(650) + 1) = 11 cut points).
    assert mat.breaks["education"] == pytest.approx(
        [3.0, 4.2, 5.4, 6.6, 7.8, 9.0, 10.2, 11.4, 12.6, 13.8, 15.0]
    )
    # After matching, JSS §3.2.1 prints re74 statistic 1.496e+02 and re75 1.588e+02
    # (R's sign there depends on which group comes first among the kept rows; we
    # always report treated minus control) and q1 χ² 2.083.
    after = mat.imbalance_after.table
    assert abs(after.loc["re74", "statistic"]) == pytest.approx(149.6, abs=0.05)
    assert abs(after.loc["re75", "statistic"]) == pytest.approx(158.8, abs=0.05)
    assert after.loc["q1", "statistic"] == pytest.approx(2.083, abs=5e-4)


def test_local_common_support_uses_the_same_histogram(le: pd.DataFrame, mat: m.CemResult) -> None:
    # The JSS output prints LCS=9.1% before and 30.5% after. That cem version
    # counted the L1 cells holding more than one row (rowSums(tab1) > 1); later
    # versions count cells holding both groups, which is what lcs_* reports. The
    # old definition on our L1 cells reproduces the published figures, which
    # checks the histogram cells themselves.
    data = le[list(mat.covariates)]
    breaks = {c: m.l1_histogram_breaks(data[c]) for c in ("age", "education", "re74", "re75")}
    breaks |= {
        c: m.l1_histogram_breaks(data[c]) for c in data.columns if c not in breaks and c != "q1"
    }
    cells = coarsening._stratify(balance._l1_cells(data, breaks))
    old = []
    for w in (np.ones(len(le)), mat.weights.to_numpy()):
        counts = pd.Series(cells[w > 0]).value_counts()
        old.append(round(100 * float((counts > 1).mean()), 1))
    assert old == [9.1, 30.5]
    assert 0 < mat.lcs_before < mat.lcs_after <= 100


def test_user_cutpoints(le: pd.DataFrame) -> None:
    # JSS §3.2.2: educut <- c(0, 6.5, 8.5, 12.5, 17); Matched G0 137, G1 91; L1=0.713.
    # (The published call also passes grouping=list(q1.grp), an unnamed list, which
    # cem ignores: only named groupings are applied.)
    mat1 = m.cem(
        le, treatment="treated", drop=["re78"], cutpoints={"education": [0, 6.5, 8.5, 12.5, 17]}
    )
    assert (mat1.n_matched_control, mat1.n_matched_treated) == (137, 91)
    assert round(mat1.l1_after, 3) == 0.713
    assert mat1.breaks["education"] == (0.0, 6.5, 8.5, 12.5, 17.0)


@pytest.mark.parametrize(
    ("age_cutpoints", "controls", "treated", "l1"),
    # JSS §3.3 "Progressive coarsening": cem("treated", Le, cutpoints = list(age = 10|6|3), ...)
    [(10, 87, 77, 0.644), (6, 131, 101, 0.729), (3, 173, 123, 0.783)],
)
def test_number_of_cutpoints(
    le: pd.DataFrame, age_cutpoints: int, controls: int, treated: int, l1: float
) -> None:
    res = m.cem(le, treatment="treated", drop=["re78"], cutpoints={"age": age_cutpoints})
    assert (res.n_matched_control, res.n_matched_treated) == (controls, treated)
    assert round(res.l1_after, 3) == l1
    assert len(res.breaks["age"] or ()) == age_cutpoints


def test_k2k(le: pd.DataFrame) -> None:
    # JSS §3.4: k2k(mat, Le, "euclidean", 1) -> Matched G0 70, G1 70.
    res = m.cem(le, treatment="treated", drop=["re78"], k2k=True)
    assert (res.n_matched_control, res.n_matched_treated) == (70, 70)
    assert set(res.weights.unique()) == {0.0, 1.0}
    kept = res.matched_data()
    per = kept.groupby("cem_stratum")["treated"].agg(["sum", "count"])
    assert (per["count"] == 2 * per["sum"]).all()
    rnd = m.cem(le, treatment="treated", drop=["re78"], k2k=True, k2k_method="random", seed=1)
    assert (rnd.n_matched_control, rnd.n_matched_treated) == (70, 70)


def test_att_on_ll(ll: pd.DataFrame) -> None:
    # JSS §3.5: mat <- cem(treatment = "treated", data = LL, drop = "re78");
    # All 425/297, Matched 222/163;
    # att(mat, re78 ~ treated, data = LL): SATT 550.962564 (p.value=0.368242),
    # 95% conf. interval [-647.777701, 1749.702830] (cem prints estimate ± qnorm(.975)·SE).
    res = m.cem(ll, treatment="treated", drop=["re78"])
    assert (res.n_control, res.n_treated) == (425, 297)
    assert (res.n_matched_control, res.n_matched_treated) == (222, 163)
    effect = res.att("re78")
    assert isinstance(effect, Effect)
    assert effect.estimate == pytest.approx(550.962564, abs=1e-6)
    assert effect.p == pytest.approx(0.368242, abs=1e-6)
    se = res.att_table("re78").loc["treated", "se"]
    z = norm.ppf(0.975)
    assert effect.estimate - z * se == pytest.approx(-647.777701, abs=1e-5)
    assert effect.estimate + z * se == pytest.approx(1749.702830, abs=1e-5)
    # Our interval uses the t quantile (df = 385 - 2), consistent with the p value.
    assert effect.ci_low < -647.777701 and effect.ci_high > 1749.702830
    # att(mat, re78 ~ treated + re74, data = LL): 553.113736 (p.value=0.362760),
    # [-636.606542, 1742.834014].
    adjusted = res.att("re78", covariates=["re74"])
    assert adjusted.estimate == pytest.approx(553.113736, abs=1e-6)
    assert adjusted.p == pytest.approx(0.362760, abs=1e-6)
    se2 = res.att_table("re78", ["re74"]).loc["treated", "se"]
    assert adjusted.estimate - z * se2 == pytest.approx(-636.606542, abs=1e-5)


def test_weights_balance_strata(ll: pd.DataFrame) -> None:
    res = m.cem(ll, treatment="treated", drop=["re78"])
    w, t = res.weights, ll["treated"] == 1
    assert (w[t & res.matched] == 1).all()
    assert (w[~res.matched] == 0).all()
    # Control weights sum to the number of matched controls, and in every stratum
    # the weighted share of controls equals the share of treated rows.
    assert w[~t].sum() == pytest.approx(res.n_matched_control)
    frame = pd.DataFrame({"s": res.strata, "t": t, "w": w})[res.matched]
    treated_share = frame[frame.t].groupby("s")["w"].sum() / res.n_matched_treated
    control_share = frame[~frame.t].groupby("s")["w"].sum() / res.n_matched_control
    pd.testing.assert_series_equal(treated_share, control_share, check_names=False)
    assert res.strata_table["matched"].sum() == res.n_strata
    assert res.strata_table.loc[res.strata_table.matched, "n_treated"].sum() == 163


def test_missing_values_and_grouping(
    ll: pd.DataFrame, lelonde: pd.DataFrame, le: pd.DataFrame
) -> None:
    # JSS §3.6.1: cutpoints = mat$breaks where `mat` is by then the LL match (§3.5),
    # grouping = list(q1 = q1.grp).
    breaks = {k: v for k, v in m.cem(ll, treatment="treated", drop=["re78"]).breaks.items() if v}
    with pytest.warns(StatisticalWarning, match="missing values"):
        mat3 = m.cem(
            lelonde,
            treatment="treated",
            drop=["re78"],
            cutpoints=breaks,
            grouping={"q1": Q1_GROUPS},
        )
    # mat3: All 425/297, Matched 134/101, L1=0.723.
    assert (mat3.n_control, mat3.n_treated) == (425, 297)
    assert (mat3.n_matched_control, mat3.n_matched_treated) == (134, 101)
    assert round(mat3.l1_after, 3) == 0.723
    assert mat3.caveats
    # mat4 (Le, the same options): All 392/258, Matched 132/100, L1=0.734.
    mat4 = m.cem(
        le, treatment="treated", drop=["re78"], cutpoints=breaks, grouping={"q1": Q1_GROUPS}
    )
    assert (mat4.n_matched_control, mat4.n_matched_treated) == (132, 100)
    assert round(mat4.l1_after, 3) == 0.734


def test_r_pretty_matches_r() -> None:
    # tests/analysis/reference/cem_pretty.R: R 4.2.2's pretty(c(lo, hi), n, 1).
    lines = (REFERENCE / "cem_pretty.txt").read_text().splitlines()
    assert len(lines) == 120
    for line in lines:
        lo, hi, n, expected = line.split()
        want = np.array([float(v) for v in expected.split(",")])
        got = m.r_pretty(float(lo), float(hi), int(n), 1)
        np.testing.assert_array_equal(got, want, err_msg=line)


def test_sturges_breaks() -> None:
    # R: seq(17, 55, length = nclass.Sturges(1:722)) -> 11 points, by 3.8.
    b = m.sturges_breaks(pd.Series(np.linspace(17, 55, 722)))
    assert len(b) == math.ceil(math.log2(722) + 1) == 11
    assert b[0] == 17 and b[-1] == 55 and b[1] == pytest.approx(20.8)


def test_summary_reads_well(ll: pd.DataFrame) -> None:
    res = m.cem(ll, treatment="treated", drop=["re78"])
    text = res.summary(outcome="re78")
    assert "163 of 297 treated" in text and "222 of 425 control" in text
    assert "L1" in text and "551" in text
    fig = charts.matching.figure(res)
    assert len(fig.data) == 2


def test_all_treated_is_an_error(ll: pd.DataFrame) -> None:
    with pytest.raises(InputError, match=r"Every row has treated = 1\.0"):
        m.cem(ll[ll.treated == 1], treatment="treated", drop=["re78"])


def test_three_groups_and_missing_treatment_are_errors(ll: pd.DataFrame) -> None:
    three = ll.assign(treated=np.arange(len(ll)) % 3)
    with pytest.raises(InputError, match="exactly two values"):
        m.cem(three, treatment="treated", drop=["re78"])
    gap = ll.copy()
    gap.loc[0, "treated"] = np.nan
    with pytest.raises(InputError, match="missing"):
        m.cem(gap, treatment="treated", drop=["re78"])
    with pytest.raises(InputError, match="not found"):
        m.cem(ll, treatment="treat", drop=["re78"])


def test_no_matches_warns_and_att_refuses() -> None:
    df = pd.DataFrame({"t": [1, 1, 0, 0], "x": ["a", "a", "b", "b"], "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.warns(StatisticalWarning, match="nothing was matched"):
        res = m.cem(df, treatment="t", drop=["y"])
    assert res.n_matched_treated == 0 and res.n_matched_control == 0
    assert (res.weights == 0).all()
    assert math.isnan(res.l1_after)
    with pytest.raises(InputError, match="No stratum"):
        res.att("y")


def test_values_outside_explicit_cutpoints_warn(ll: pd.DataFrame) -> None:
    with pytest.warns(StatisticalWarning, match="outside the cut points"):
        m.cem(ll, treatment="treated", drop=["re78"], cutpoints={"age": [20, 30, 40]})


def test_exact_matching_of_text_columns() -> None:
    df = pd.DataFrame(
        {
            "t": [1, 0, 1, 0, 1, 0],
            "site": ["a", "a", "b", "c", "b", "b"],
            "y": [5.0, 3.0, 7.0, 1.0, 9.0, 4.0],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = m.cem(df, treatment="t", drop=["y"])
    assert (res.n_matched_treated, res.n_matched_control) == (3, 2)
    # Stratum a: 5 - 3; stratum b: mean(7, 9) - 4 = 4; weighted by treated counts: (2 + 2*4)/3.
    assert res.att("y").estimate == pytest.approx((2 + 2 * 4) / 3)
