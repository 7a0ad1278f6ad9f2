"""careloop.analysis.funnel against independent computations.

References, named beside the numbers:

* **R** — tests/analysis/reference/funnel_reference.R (base R 4.2.2: qbinom,
  pbinom, qpois, ppois, quantile type 7), output committed as
  funnel_reference.Rout and read here line by line. It implements the formulas
  of Spiegelhalter, Stat Med 2005;24:1185 (appendix A.1.1, exact limits with
  interpolation) and Spiegelhalter, Qual Saf Health Care 2005;14:347
  (winsorised φ, additive τ²) on the two small data sets below.
* **by hand** — the binomial probabilities from math.comb and the φ/τ² of a
  five-unit example worked out in the comments.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.funnel import (
    FunnelResult,
    OverdispersionWarning,
    exact_limit,
    funnel,
    level_suffix,
    winsorised,
)
from careloop.core.errors import InputError

REFERENCE = Path(__file__).resolve().parent / "reference" / "funnel_reference.Rout"

PROPORTIONS = pd.DataFrame(
    {
        "site": [f"S{i:02d}" for i in range(1, 13)],
        "deaths": [4, 12, 9, 20, 18, 40, 27, 39, 72, 51, 98, 95],
        "cases": [50, 80, 120, 150, 200, 260, 300, 420, 500, 640, 800, 1000],
    }
)
RATES = pd.DataFrame(
    {
        "ward": list("ABCDEFGH"),
        "infections": [3, 10, 25, 14, 40, 33, 60, 12],
        "days": [1200, 2500, 6000, 5200, 9000, 11000, 12500, 8000],
    }
)


def r_reference() -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("#"):
            continue
        name, key, *values = line.split()
        out[f"{name} {key}"] = [float(v) for v in values]
    return out


R = r_reference()


def quiet(df: pd.DataFrame, **kwargs) -> FunnelResult:
    """Fit with the expected caveat warnings silenced (they are tested separately)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return funnel(df, **kwargs)


PROP_ARGS = {"numerator": "deaths", "denominator": "cases", "unit": "site", "kind": "proportion"}
RATE_ARGS = {"numerator": "infections", "denominator": "days", "unit": "ward", "kind": "rate"}


# --------------------------------------------------------------------------
# Exact limits
# --------------------------------------------------------------------------


def test_exact_limit_by_hand():
    # Bin(10, 0.2): P(R ≤ 4) and P(R ≤ 5) from the binomial formula
    cdf = [
        sum(math.comb(10, k) * 0.2**k * 0.8 ** (10 - k) for k in range(r + 1)) for r in range(11)
    ]
    assert cdf[4] < 0.975 <= cdf[5]  # r_p = 5
    alpha = (cdf[5] - 0.975) / (cdf[5] - cdf[4])
    # Spiegelhalter 2005 appendix A.1.1: limit = (r_p − α)/n
    assert exact_limit(0.975, 10, 0.2, "proportion")[()] == pytest.approx(
        (5 - alpha) / 10, abs=1e-12
    )
    # Poisson with mean 4 (rate 0.4 per unit, exposure 10): P(R ≤ r) by hand
    pcdf = [sum(math.exp(-4) * 4**k / math.factorial(k) for k in range(r + 1)) for r in range(20)]
    r = next(i for i, c in enumerate(pcdf) if c >= 0.999)
    a = (pcdf[r] - 0.999) / (pcdf[r] - pcdf[r - 1])
    assert exact_limit(0.999, 10, 0.4, "rate")[()] == pytest.approx((r - a) / 10, abs=1e-12)


@pytest.mark.parametrize("level", [0.95, 0.998])
def test_exact_proportion_limits_match_r(level):
    result = quiet(PROPORTIONS, **PROP_ARGS)
    suffix = level_suffix(level)
    # R: funnel_reference.Rout, "proportion exact_lower_<level>" / "exact_upper_<level>"
    assert result.units[f"lower_{suffix}"].tolist() == pytest.approx(
        R[f"proportion exact_lower_{level:g}"], abs=1e-12
    )
    assert result.units[f"upper_{suffix}"].tolist() == pytest.approx(
        R[f"proportion exact_upper_{level:g}"], abs=1e-12
    )


@pytest.mark.parametrize("level", [0.95, 0.998])
def test_exact_rate_limits_match_r(level):
    result = quiet(RATES, **RATE_ARGS)
    suffix = level_suffix(level)
    # R: funnel_reference.Rout, "rate exact_lower_<level>" / "exact_upper_<level>" (qpois/ppois)
    assert result.units[f"lower_{suffix}"].tolist() == pytest.approx(
        R[f"rate exact_lower_{level:g}"], abs=1e-12
    )
    assert result.units[f"upper_{suffix}"].tolist() == pytest.approx(
        R[f"rate exact_upper_{level:g}"], abs=1e-12
    )


def test_exact_limits_interpolate_smoothly_and_bracket_the_target():
    n = np.arange(20, 2000)
    upper = exact_limit(0.999, n, 0.1, "proportion")
    lower = exact_limit(0.001, n, 0.1, "proportion")
    assert (lower <= 0.1).all() and (upper >= 0.1).all()
    # the interpolation removes the saw-teeth of the raw quantiles: the upper
    # limit falls with n almost everywhere
    assert (np.diff(upper) <= 1e-3).all()
    # and lies within one case of the raw binomial quantile
    from scipy import stats

    q = stats.binom.ppf(0.999, n, 0.1) / n
    assert (np.abs(upper - q) <= 1 / n + 1e-12).all()


def test_normal_limits_match_r():
    result = quiet(PROPORTIONS, **PROP_ARGS, limits="normal")
    # R: "proportion normal_upper_0.95" = θ0 + 1.96·√(θ0(1−θ0)/n)
    assert result.units["upper_95"].tolist() == pytest.approx(
        R["proportion normal_upper_0.95"], abs=1e-12
    )
    rates = quiet(RATES, **RATE_ARGS, limits="normal")
    assert rates.units["upper_99_8"].tolist() == pytest.approx(
        R["rate normal_upper_0.998"], abs=1e-12
    )


# --------------------------------------------------------------------------
# Over-dispersion (Spiegelhalter, QSHC 2005)
# --------------------------------------------------------------------------


def test_phi_and_tau2_by_hand_on_five_units():
    five = pd.DataFrame({"site": list("abcde"), "d": [10, 20, 20, 30, 40], "n": [100] * 5})
    # target 0.2 given: s = √(0.2·0.8/100) = 0.04; z = −2.5, 0, 0, 2.5, 5
    plain = quiet(five, numerator="d", denominator="n", target=0.2, winsorise=0)
    assert plain.units["z"].tolist() == pytest.approx([-2.5, 0, 0, 2.5, 5])
    assert plain.phi == pytest.approx(37.5 / 5)  # (6.25 + 0 + 0 + 6.25 + 25)/5
    # winsorised at 20%: type-7 quantiles −2.5 + 0.8·2.5 = −0.5 and 2.5 + 0.2·2.5 = 3.0,
    # z becomes −0.5, 0, 0, 2.5, 3.0 and φ = (0.25 + 6.25 + 9)/5 = 3.1
    result = quiet(five, numerator="d", denominator="n", target=0.2, winsorise=0.2)
    assert result.phi == pytest.approx(3.1)
    # τ² = (Iφ − (I − 1)) / (Σw − Σw²/Σw), w = 1/0.04² = 625: (15.5 − 4)/(3125 − 625)
    assert result.tau2 == pytest.approx(11.5 / 2500)
    # given target: χ² on I = 5 df
    from scipy import stats

    assert result.phi_p == pytest.approx(stats.chi2.sf(5 * 3.1, 5))
    mult = quiet(five, numerator="d", denominator="n", target=0.2, winsorise=0.2,
                 overdispersion="multiplicative", limits="normal")  # fmt: skip
    z975 = 1.959963984540054
    assert mult.units["upper_95"].iloc[0] == pytest.approx(0.2 + z975 * 0.04 * math.sqrt(3.1))
    assert mult.units["z_adjusted"].tolist() == pytest.approx([-2.5 / math.sqrt(3.1), 0, 0,
                                                              2.5 / math.sqrt(3.1), 5 / math.sqrt(3.1)])  # fmt: skip
    add = quiet(five, numerator="d", denominator="n", target=0.2, winsorise=0.2,
                overdispersion="additive")  # fmt: skip
    assert add.units["upper_95"].iloc[0] == pytest.approx(0.2 + z975 * math.sqrt(0.0016 + 0.0046))
    assert add.units["z_adjusted"].iloc[4] == pytest.approx(0.2 / math.sqrt(0.0016 + 0.0046))


def test_winsorising_matches_numpy_and_r_quantiles():
    z = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 8.0])
    w = winsorised(z, 0.1)
    lo, hi = np.quantile(z, [0.1, 0.9])
    assert w.min() == lo and w.max() == hi
    assert (w[1:-1] == z[1:-1]).all()


@pytest.mark.parametrize(("name", "data", "args"), [("proportion", PROPORTIONS, PROP_ARGS),
                                                    ("rate", RATES, RATE_ARGS)])  # fmt: skip
def test_overdispersion_estimates_match_r(name, data, args):
    result = quiet(data, **args)
    # R: funnel_reference.Rout "<name> target / z / phi / phi_p / tau2"
    assert result.target == pytest.approx(R[f"{name} target"][0], rel=1e-12)
    assert result.target_source == "pooled"
    assert result.units["z"].tolist() == pytest.approx(R[f"{name} z"], abs=1e-10)
    assert result.phi == pytest.approx(R[f"{name} phi"][0], rel=1e-10)
    assert result.phi_p == pytest.approx(R[f"{name} phi_p"][0], rel=1e-8)
    assert result.tau2 == pytest.approx(R[f"{name} tau2"][0], rel=1e-10)


@pytest.mark.parametrize(("name", "data", "args"), [("proportion", PROPORTIONS, PROP_ARGS),
                                                    ("rate", RATES, RATE_ARGS)])  # fmt: skip
def test_adjusted_limits_match_r(name, data, args):
    mult = quiet(data, **args, overdispersion="multiplicative")
    add = quiet(data, **args, overdispersion="additive")
    for level in (0.95, 0.998):
        s = level_suffix(level)
        # R: "<name> multiplicative_upper_<level>", "additive_upper/lower_<level>"
        assert mult.units[f"upper_{s}"].tolist() == pytest.approx(
            R[f"{name} multiplicative_upper_{level:g}"], abs=1e-12
        )
        assert add.units[f"upper_{s}"].tolist() == pytest.approx(
            R[f"{name} additive_upper_{level:g}"], abs=1e-12
        )
        assert add.units[f"lower_{s}"].tolist() == pytest.approx(
            R[f"{name} additive_lower_{level:g}"], abs=1e-12
        )


def test_unadjusted_overdispersion_draws_a_warning():
    with pytest.warns(OverdispersionWarning, match="φ = 1.88"):
        result = funnel(PROPORTIONS, **PROP_ARGS)
    assert any("Over-dispersion" in c for c in result.caveats)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverdispersionWarning)
        funnel(PROPORTIONS, **PROP_ARGS, overdispersion="additive")


def test_arcsine_and_sqrt_transforms_put_z_on_the_stabilised_scale():
    result = quiet(PROPORTIONS, **PROP_ARGS, transform="arcsine", overdispersion="additive")
    theta = R["proportion target"][0]
    n = PROPORTIONS["cases"].to_numpy()
    y = PROPORTIONS["deaths"].to_numpy() / n
    # z = (asin √y − asin √θ0) · 2√n  (variance of asin √p ≈ 1/(4n))
    expected = (np.arcsin(np.sqrt(y)) - np.arcsin(np.sqrt(theta))) * 2 * np.sqrt(n)
    assert result.units["z"].to_numpy() == pytest.approx(expected, abs=1e-12)
    upper = (
        np.sin(np.arcsin(np.sqrt(theta)) + 1.959963984540054 * np.sqrt(1 / (4 * n) + result.tau2))
        ** 2
    )
    assert result.units["upper_95"].to_numpy() == pytest.approx(upper, abs=1e-12)
    rates = quiet(RATES, **RATE_ARGS, transform="sqrt")
    lam = R["rate target"][0]
    t = RATES["days"].to_numpy()
    z = (np.sqrt(RATES["infections"].to_numpy() / t) - np.sqrt(lam)) * 2 * np.sqrt(t)
    assert rates.units["z"].to_numpy() == pytest.approx(z, abs=1e-12)


# --------------------------------------------------------------------------
# Flags, output and edge cases
# --------------------------------------------------------------------------


def test_flags_follow_the_limits():
    result = quiet(PROPORTIONS, **PROP_ARGS)
    u = result.units
    for _, row in u.iterrows():
        if row["value"] > row["upper_99_8"]:
            assert row["flag"] == "above 99.8%"
        elif row["value"] > row["upper_95"]:
            assert row["flag"] == "above 95%"
        elif row["value"] < row["lower_99_8"]:
            assert row["flag"] == "below 99.8%"
        elif row["value"] < row["lower_95"]:
            assert row["flag"] == "below 95%"
        else:
            assert row["flag"] == "within"
    # S09 (72 of 500 = 14.4%) is beyond the exact 95% limit (R: 0.13415…) but not 99.8% (0.15127…)
    assert u.set_index("unit").loc["S09", "flag"] == "above 95%"
    assert set(result.flagged()["unit"]) == set(u.loc[u["flag"] != "within", "unit"])


def test_multiply_scales_values_and_limits_but_not_z():
    plain = quiet(PROPORTIONS, **PROP_ARGS)
    pct = quiet(PROPORTIONS, **PROP_ARGS, multiply=100)
    assert pct.units["value"].to_numpy() == pytest.approx(plain.units["value"].to_numpy() * 100)
    assert pct.units["upper_95"].to_numpy() == pytest.approx(
        plain.units["upper_95"].to_numpy() * 100
    )
    assert pct.units["z"].tolist() == plain.units["z"].tolist()
    assert pct.target == plain.target


def test_rows_of_a_unit_are_summed_and_zero_denominators_left_out():
    monthly = pd.concat([PROPORTIONS.assign(deaths=PROPORTIONS["deaths"] // 2,
                                            cases=PROPORTIONS["cases"] // 2)] * 2)  # fmt: skip
    empty = pd.DataFrame({"site": ["S99"], "deaths": [0], "cases": [0]})
    with pytest.warns(StatisticalWarning, match="zero denominator"):
        result = funnel(pd.concat([monthly, empty]), **PROP_ARGS, overdispersion="additive")
    assert len(result.units) == 12
    assert result.units["denominator"].tolist() == [2 * (c // 2) for c in PROPORTIONS["cases"]]


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (PROPORTIONS, {"numerator": "nope"}, "not in the data"),
        (PROPORTIONS.assign(deaths=PROPORTIONS["cases"] + 1), {}, "more events"),
        (PROPORTIONS.assign(deaths=-1), {}, "negative"),
        (PROPORTIONS.assign(cases=PROPORTIONS["cases"] + 0.5), {}, "whole numbers"),
        (PROPORTIONS, {"target": 1.2}, "between 0 and 1"),
        (PROPORTIONS.iloc[:1], {}, "at least 2 units"),
        (PROPORTIONS, {"levels": (0.998, 0.95)}, "increasing"),
        (PROPORTIONS, {"transform": "sqrt"}, "transform"),
        (PROPORTIONS, {"overdispersion": "both"}, "overdispersion"),
        (PROPORTIONS.assign(deaths=0), {}, "between 0 and 1"),
    ],
)
def test_bad_input_raises_a_clear_input_error(data, kwargs, message):
    with pytest.raises(InputError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        funnel(data, **{**PROP_ARGS, **kwargs})


def test_summary_names_the_flagged_units():
    text = quiet(PROPORTIONS, **PROP_ARGS, multiply=100).summary()
    assert "Funnel plot of 12 sites" in text
    assert "S09: 14.4 from 500 — above 95%" in text
    assert "φ = 1.88" in text


# --------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------


@st.composite
def unit_tables(draw):
    size = draw(st.integers(3, 15))
    cases = draw(st.lists(st.integers(5, 2000), min_size=size, max_size=size))
    share = draw(st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size))
    deaths = [round(n * s) for n, s in zip(cases, share, strict=True)]
    table = pd.DataFrame({"site": [f"u{i}" for i in range(size)], "deaths": deaths, "cases": cases})
    total = sum(deaths) / sum(cases)
    if not 0 < total < 1:
        table.loc[0, "deaths"] = 1 if total == 0 else table.loc[0, "cases"] - 1
    return table


@settings(max_examples=25, deadline=None)
@given(
    table=unit_tables(),
    seed=st.integers(0, 1000),
    adjust=st.sampled_from([None, "multiplicative", "additive"]),
)
def test_limits_bracket_the_target_widen_with_coverage_and_ignore_row_order(table, seed, adjust):
    result = quiet(table, **PROP_ARGS, overdispersion=adjust, curve_points=10)
    u = result.units
    # With a handful of expected events the discrete distribution dominates and
    # the interpolated exact limits can sit on either side of the target (e.g.
    # Bin(5, 0.005): P(R = 0) = 0.974, so the 0.975 limit is (1 − 0.976)/5 <
    # 0.005); the bracketing property is for units expecting ≥ 5 of each.
    expected = u["denominator"] * result.target
    regular = (expected >= 5) & (u["denominator"] - expected >= 5)
    for s in ("95", "99_8"):
        assert ((u[f"lower_{s}"] >= 0) & (u[f"upper_{s}"] <= 1)).all()
        assert (u.loc[regular, f"lower_{s}"] <= result.target).all()
        assert (u.loc[regular, f"upper_{s}"] >= result.target).all()
    assert (u["lower_99_8"] <= u["lower_95"] + 1e-12).all()
    assert (u["upper_99_8"] >= u["upper_95"] - 1e-12).all()
    shuffled = quiet(
        table.sample(frac=1, random_state=seed), **PROP_ARGS, overdispersion=adjust, curve_points=10
    )
    pd.testing.assert_frame_equal(shuffled.units, u)
    assert shuffled.phi == pytest.approx(result.phi)
