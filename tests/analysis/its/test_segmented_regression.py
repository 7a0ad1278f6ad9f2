"""careloop.analysis.its against independent references.

References, named beside each number:

* **R** — ``tests/analysis/its/reference/sicily_reference.R`` run with R 4.2.2
  (Debian r-base-core) and sandwich 3.0.2; its output is committed as
  ``sicily_reference.Rout`` and the numbers below are copied from it. Its
  models 1–4 are those of the Lopez Bernal, Cummins & Gasparrini IJE 2017
  tutorial's R code (gasparrini/2017_lopezbernal_IJE_codedata, ``Rcode.R``:
  ``model1`` … ``model4``).
* **statsmodels** — ``tests/analysis/its/reference/sicily_statsmodels.py``, the
  same models through statsmodels' formula interface without careloop code,
  committed as ``sicily_statsmodels.json``.

Data: ``tests/data/its_sicily/sicily.csv`` (see its SOURCE.md).
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from careloop import charts
from careloop.analysis import Effect
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.its import Harmonics, ItsResult, segmented_regression
from careloop.core.errors import InputError
from tests.charts._svg_marks import count_items, mark_groups

REFERENCE = Path(__file__).resolve().parent / "reference"
TOL = 1e-6


@pytest.fixture(scope="module")
def sicily(test_data: Path) -> pd.DataFrame:
    d = pd.read_csv(test_data / "its_sicily" / "sicily.csv")
    # derived columns, built as in sicily_reference.R
    d["rate"] = d["aces"] / d["stdpop"] * 1e5
    d["phase2"] = (d["time"] >= 49).astype(int)
    d["trials"] = np.round(d["pop"] / 100)
    return d


@pytest.fixture(scope="module")
def statsmodels_ref() -> dict:
    return json.loads((REFERENCE / "sicily_statsmodels.json").read_text())


def fit(df: pd.DataFrame, **kwargs) -> tuple[ItsResult, list[str]]:
    """Fit and return the result with the caveat warnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = segmented_regression(df, **kwargs)
    others = [w for w in caught if not issubclass(w.category, StatisticalWarning)]
    assert not others, [str(w.message) for w in others]
    return result, [str(w.message) for w in caught]


def close(effect: Effect | None, expected: tuple[float, float, float], tol: float = TOL) -> None:
    assert effect is not None
    got = (effect.estimate, effect.ci_low, effect.ci_high)
    assert got == pytest.approx(expected, abs=tol), (got, expected)


SEASON = Harmonics(column="month", period=12, pairs=2)
TUTORIAL = {"outcome": "aces", "time": "time", "intervention": "smokban", "exposure": "stdpop"}


# --------------------------------------------------------------------------
# The tutorial's models (Lopez Bernal, Cummins & Gasparrini 2017)
# --------------------------------------------------------------------------


def test_model1_poisson_matches_r(sicily):
    result, caveats = fit(sicily, **TUTORIAL, family="poisson")
    # R: sicily_reference.Rout, model1_poisson smokban / time
    close(result.step, (0.894376508018192, 0.864686416793232, 0.925086045715106))
    close(result.trend, (1.00495723868352, 1.00397439714782, 1.00594104237273))
    assert result.step.p == pytest.approx(9.13012886987489e-11, rel=1e-6)
    # R: model1_poisson pearson_dispersion
    assert result.pearson_dispersion == pytest.approx(3.55918676375114, rel=1e-9)
    assert result.dispersion == 1.0
    assert result.effect_scale == "rate ratio"
    # the Poisson model ignores over-dispersion: careloop says so
    assert any("Over-dispersion" in c for c in caveats)
    assert any("Over-dispersion" in c for c in result.caveats)


def test_model2_quasipoisson_matches_r(sicily):
    result, _ = fit(sicily, **TUTORIAL, family="quasipoisson")
    # R: model2_quasipoisson smokban / time
    close(result.step, (0.894376508018192, 0.839189003858915, 0.95319330260111))
    close(result.trend, (1.00495723868352, 1.00310383065222, 1.00681407120711))
    assert result.step.p == pytest.approx(0.000592226200881843, rel=1e-4)
    # R's summary.glm dispersion (3.55919463201087) is computed from the last
    # IRLS iteration's working weights; the Pearson χ²/df at convergence is
    # R's model1 pearson_dispersion, 3.55918676375114 — they differ by 2e-6.
    assert result.dispersion == pytest.approx(3.55918676375114, rel=1e-9)
    assert result.dispersion == pytest.approx(3.55919463201087, rel=1e-5)


def test_model3_seasonally_adjusted_matches_r(sicily):
    result, _ = fit(sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    # R: model3_seasonal smokban / time
    close(result.step, (0.885071547243928, 0.839400955658534, 0.933227009643085))
    close(result.trend, (1.00540376750647, 1.00383733902098, 1.00697264031047))
    # R: model3_seasonal dispersion
    assert result.dispersion == pytest.approx(2.26218641456037, rel=1e-5)
    coef = result.coefficients.set_index("term")
    # R: model3_seasonal cos1 … sin2 (tsModel::harmonic(month, 2, 12) terms)
    for term, expected in {
        "cos1": (1.03889824884482, 1.01936398354106, 1.05880685297859),
        "cos2": (1.01487290535542, 0.99571762713555, 1.03439668632514),
        "sin1": (1.03779339831987, 1.01760304750298, 1.05838434764825),
        "sin2": (0.981952637616598, 0.96356712684882, 1.00068895633203),
    }.items():
        row = coef.loc[term]
        assert (row["ratio"], row["ratio_ci_low"], row["ratio_ci_high"]) == pytest.approx(
            expected, abs=TOL
        )
    # R code: exp(coef(model3)["time"] * 12), the annual trend; R: 1.06680759688108
    assert result.trend.estimate**12 == pytest.approx(1.06680759688108, abs=TOL)


def test_model3_residual_autocorrelation_matches_r(sicily):
    result, caveats = fit(sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    ac = result.autocorrelation
    # R: model3_seasonal acf / pacf / ljung_box (acf, pacf, Box.test on deviance residuals)
    r_acf = [
        -0.214683865627985,
        0.312515674161517,
        -0.0415558493916091,
        0.0104186526881304,
        0.00431631867628745,
        -0.243137489988894,
        -0.0292138313593433,
        0.0277657149376938,
        -0.111090178350727,
        0.0916081595216161,
        -0.356736260599664,
        0.23271068450817,
    ]
    r_pacf = [
        -0.214683865627985,
        0.279299177063656,
        0.0759052093217764,
        -0.0818269382866306,
        -0.0202872795656677,
        -0.254056817440688,
        -0.134322015311772,
        0.185130960728062,
        -0.0237072763602158,
        0.00516328503189964,
        -0.385498616091187,
        0.0122623866158633,
    ]
    assert ac.lags == 12
    assert list(ac.acf) == pytest.approx(r_acf, abs=TOL)
    assert list(ac.pacf) == pytest.approx(r_pacf, abs=TOL)
    assert ac.ljung_box_stat == pytest.approx(28.4671155243783, abs=TOL)
    assert ac.ljung_box_p == pytest.approx(0.00472399869483686, abs=TOL)
    assert ac.residuals == "deviance"
    assert 0 < ac.durbin_watson < 4
    # p < 0.05 without an adjustment: a caveat
    assert any("autocorrelation" in c for c in caveats)


def test_model4_slope_change_matches_r(sicily):
    result, _ = fit(
        sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON, slope_change=True
    )
    # R: model4_slope smokban and smokban:I(time - 36)
    close(result.step, (0.87646441777702, 0.826753209697353, 0.929164672865824))
    close(result.slope, (1.00148332704095, 0.997849532370104, 1.00513035463247))
    close(result.trend, (1.0051156426422, 1.00339430619308, 1.00683993206719))
    assert result.slope is not None
    assert result.slope.p == pytest.approx(0.424172452085745, rel=1e-4)


@pytest.mark.parametrize(
    ("season", "step", "trend"),
    [
        # R: model1_neweywest3 —
        # sandwich::NeweyWest(model1, lag = 3, prewhite = FALSE, adjust = FALSE)
        (
            None,
            (0.894376508018192, 0.84001180370156, 0.952259640364539),
            (1.00495723868352, 1.00343261351739, 1.0064841803798),
        ),
        # R: model3_neweywest3 — the same on the seasonal model
        (
            SEASON,
            (0.885071547243928, 0.84810458150245, 0.923649819640195),
            (1.00540376750647, 1.00387130741205, 1.00693856697838),
        ),
    ],
)
def test_newey_west_matches_r_sandwich(sicily, season, step, trend):
    result, _ = fit(
        sicily,
        **TUTORIAL,
        family="poisson",
        seasonality=season,
        autocorrelation="newey-west",
        lags=3,
    )
    close(result.step, step)
    close(result.trend, trend)
    assert "Newey–West" in result.covariance and "3 lags" in result.covariance


def test_newey_west_default_lags_follow_newey_west_1994(sicily):
    result, _ = fit(sicily, **TUTORIAL, family="quasipoisson", autocorrelation="newey-west")
    # floor(4 * (59/100)^(2/9)) = 3
    assert math.floor(4 * (59 / 100) ** (2 / 9)) == 3
    assert "3 lags" in result.covariance


def test_gaussian_matches_r(sicily):
    result, _ = fit(sicily, outcome="rate", time="time", intervention="smokban", family="gaussian")
    # R: gaussian smokban / time (glm gaussian; CIs with the normal quantile)
    close(result.step, (-24.0933031404522, -37.911076279577, -10.2755300013275))
    close(result.trend, (1.06213964781137, 0.66640669470388, 1.45787260091885))
    assert result.dispersion == pytest.approx(199.635767541365, rel=1e-9)
    assert result.effect_scale == "difference"


def test_ar1_errors_match_r_arima(sicily):
    result, _ = fit(
        sicily,
        outcome="rate",
        time="time",
        intervention="smokban",
        family="gaussian",
        autocorrelation="ar1",
    )
    # R: ar1 — stats::arima(rate, order = c(1, 0, 0), xreg = cbind(smokban, time), method = "ML").
    # Both maximise the same exact Gaussian likelihood with different optimisers:
    # the maximum agrees to 1e-6, the coefficients to about 1e-2 of their SE.
    assert result.model.llf == pytest.approx(-237.190472717021, abs=1e-6)
    assert result.ar1 == pytest.approx(0.200907919808713, abs=2e-3)
    assert result.step.estimate == pytest.approx(-23.7233239322162, abs=0.05)
    assert result.step.ci_low == pytest.approx(-39.5794270322237, abs=0.05)
    assert result.step.ci_high == pytest.approx(-7.86722083220863, abs=0.05)
    assert result.trend.estimate == pytest.approx(1.05509338711919, abs=2e-3)
    assert result.dispersion == pytest.approx(181.59512391162, rel=1e-3)
    assert result.autocorrelation.residuals == "innovations"


def test_two_phases_with_slope_changes_match_r(sicily):
    result, _ = fit(
        sicily,
        **TUTORIAL | {"intervention": ["smokban", "phase2"]},
        family="poisson",
        slope_change=True,
    )
    # R: phases — glm(aces ~ offset(log(stdpop)) + smokban + phase2 + time
    #                 + I(time - 36):smokban + I(time - 48):phase2, poisson)
    first, second = result.interventions
    close(first.step, (0.890660661374552, 0.849156810998611, 0.934193076526419))
    close(first.slope, (0.998660792096081, 0.992850202193487, 1.00450538809037))
    close(second.step, (1.12042870703158, 1.05962002005903, 1.18472703778333))
    close(second.slope, (0.988826448515905, 0.980497394334971, 0.997226255708474))
    close(result.trend, (1.00486672024819, 1.00375684699676, 1.00597782070782))
    assert result.step == first.step and result.slope == first.slope
    assert (first.start, first.n_before, first.n_after) == (37, 36, 23)
    assert (second.start, second.n_before, second.n_after) == (49, 48, 11)


def test_binomial_matches_r(sicily):
    result, _ = fit(
        sicily,
        outcome="aces",
        time="time",
        intervention="smokban",
        family="binomial",
        trials="trials",
        seasonality=SEASON,
    )
    # R: binomial — glm(cbind(aces, trials - aces) ~ smokban + time + harmonics, binomial)
    close(result.step, (0.855694522908615, 0.822012749272145, 0.890756399075494))
    close(result.trend, (1.00792567736009, 1.00673888231848, 1.00911387145611))
    assert result.effect_scale == "odds ratio"
    assert result.series["observed"].iloc[0] == pytest.approx(728 / round(364277.4 / 100))


def test_comparative_its_matches_r(sicily):
    control = sicily.copy()
    control["aces"] = np.round(sicily["aces"] * 0.8 + 30 * np.cos(2 * np.pi * sicily["time"] / 12))
    stacked = pd.concat(
        [sicily.assign(is_control=0), control.assign(is_control=1)], ignore_index=True
    )
    result, _ = fit(
        stacked, **TUTORIAL, family="quasipoisson", slope_change=True, control="is_control"
    )
    # R: comparative — treated:smokban, treated:smokban:I(time - 36) and the
    # treated series' pre-trend (time + time:treated)
    close(result.step, (1.00574445804936, 0.898343733607294, 1.1259853851657))
    close(result.slope, (1.00020040812274, 0.992894614196057, 1.00755995863561))
    close(result.trend, (1.00486672024819, 1.00258736702487, 1.00715125551477))
    assert result.n_obs == 118
    assert set(result.series["group"]) == {"treated", "control"}
    ctl = result.series[result.series["group"] == "control"]
    # no counterfactual for the control series: it is the comparison
    assert np.allclose(ctl["counterfactual"], ctl["fitted"])
    text = result.summary()
    assert "Treated minus control" in text
    # the CI of the step includes 1: no direction is claimed
    assert "a change of +0.6% (95% CI −10.2% to +12.6%): no clear change" in text
    assert "as the control series did" in text
    # both series drawn: 118 points, fitted lines per series and segment, one counterfactual
    svg = charts.its.svg(result, per=100_000)
    assert count_items(svg, "observed", "path") == 118
    assert len(mark_groups(svg, "fitted")) == 4
    assert len(mark_groups(svg, "counterfactual")) == 1


def test_comparative_its_with_newey_west_runs(sicily):
    control = sicily.assign(aces=np.round(sicily["aces"] * 0.9), is_control=True)
    stacked = pd.concat([sicily.assign(is_control=False), control], ignore_index=True)
    result, _ = fit(
        stacked,
        **TUTORIAL,
        family="quasipoisson",
        control="is_control",
        autocorrelation="newey-west",
        lags=2,
    )
    # the control is the treated series scaled by 0.9 (rounded): no difference in step
    assert result.step.ci_low < 1 < result.step.ci_high
    assert "2 lags" in result.covariance


# --------------------------------------------------------------------------
# Against the statsmodels reference script (1e-6)
# --------------------------------------------------------------------------


def test_statsmodels_reference_json_is_current():
    spec = importlib.util.spec_from_file_location(
        "sicily_statsmodels", REFERENCE / "sicily_statsmodels.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.compute()
    stored = json.loads((REFERENCE / "sicily_statsmodels.json").read_text())
    assert fresh.keys() == stored.keys()
    for model, terms in stored.items():
        for term, values in terms.items():
            assert np.allclose(fresh[model][term], values, rtol=1e-9, atol=1e-12), (model, term)


@pytest.mark.parametrize(
    ("model", "kwargs", "step_term", "slope_term"),
    [
        ("model1_poisson", {"family": "poisson"}, "smokban", None),
        ("model2_quasipoisson", {"family": "quasipoisson"}, "smokban", None),
        ("model3_seasonal", {"family": "quasipoisson", "seasonality": SEASON}, "smokban", None),
        (
            "model4_slope",
            {"family": "quasipoisson", "seasonality": SEASON, "slope_change": True},
            "smokban",
            "slope1",
        ),
        (
            "model1_neweywest3",
            {"family": "poisson", "autocorrelation": "newey-west", "lags": 3},
            "smokban",
            None,
        ),
        (
            "model3_neweywest3",
            {
                "family": "poisson",
                "seasonality": SEASON,
                "autocorrelation": "newey-west",
                "lags": 3,
            },
            "smokban",
            None,
        ),
    ],
)
def test_matches_statsmodels_reference(
    sicily, statsmodels_ref, model, kwargs, step_term, slope_term
):
    result, _ = fit(sicily, **TUTORIAL, **kwargs)
    ref = statsmodels_ref[model]
    close(result.step, tuple(ref[step_term][:3]))
    assert result.step.p == pytest.approx(ref[step_term][3], rel=1e-6)
    close(result.trend, tuple(ref["time"][:3]))
    if slope_term:
        close(result.slope, tuple(ref[slope_term][:3]))


def test_fitted_and_counterfactual_match_statsmodels_predict(sicily, statsmodels_ref):
    result, _ = fit(sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    ref = statsmodels_ref["model3_seasonal"]
    s = result.series
    # statsmodels: m3.predict(d, offset=0) and m3.predict(d with smokban = 0, offset=0)
    assert s["fitted"].to_numpy() == pytest.approx(ref["fitted_rate"], rel=TOL)
    assert s["counterfactual"].to_numpy() == pytest.approx(ref["counterfactual_rate"], rel=TOL)
    pre = ~s["post"]
    assert np.allclose(s.loc[pre, "fitted"], s.loc[pre, "counterfactual"])
    # post: counterfactual / fitted = 1 / step
    post = s["post"]
    ratio = s.loc[post, "fitted"] / s.loc[post, "counterfactual"]
    assert np.allclose(ratio, result.step.estimate)
    assert s["observed"].iloc[0] == pytest.approx(728 / 379875.3)
    assert (s["fitted_low"] < s["fitted"]).all() and (s["fitted"] < s["fitted_high"]).all()


def test_gaussian_and_binomial_and_phases_match_statsmodels_reference(sicily, statsmodels_ref):
    g, _ = fit(sicily, outcome="rate", time="time", intervention="smokban", family="gaussian")
    close(g.step, tuple(statsmodels_ref["gaussian"]["smokban"][:3]))
    b, _ = fit(
        sicily,
        outcome="aces",
        time="time",
        intervention="smokban",
        family="binomial",
        trials="trials",
        seasonality=SEASON,
    )
    close(b.step, tuple(statsmodels_ref["binomial"]["smokban"][:3]))
    ph, _ = fit(
        sicily,
        **TUTORIAL | {"intervention": ["smokban", "phase2"]},
        family="poisson",
        slope_change=True,
    )
    ref = statsmodels_ref["phases"]
    close(ph.interventions[1].step, tuple(ref["phase2"][:3]))
    close(ph.interventions[1].slope, tuple(ref["slope2"][:3]))


# --------------------------------------------------------------------------
# Behaviour, edge cases and errors
# --------------------------------------------------------------------------


def test_dates_as_time_are_ranked_and_kept(sicily):
    dated = sicily.assign(
        date=pd.to_datetime(dict(year=sicily["year"], month=sicily["month"], day=1))
    )
    result, _ = fit(
        dated,
        outcome="aces",
        time="date",
        intervention="smokban",
        exposure="stdpop",
        family="quasipoisson",
        seasonality=SEASON,
    )
    reference, _ = fit(sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    close(
        result.step, (reference.step.estimate, reference.step.ci_low, reference.step.ci_high), 1e-12
    )
    assert str(result.interventions[0].start) == "2005-01-01"
    assert "date" in result.series.columns
    # dates given as ISO strings work too
    as_text = dated.assign(date=dated["date"].dt.strftime("%Y-%m-%d"))
    again, _ = fit(
        as_text,
        outcome="aces",
        time="date",
        intervention="smokban",
        exposure="stdpop",
        family="quasipoisson",
        seasonality=SEASON,
    )
    assert again.step == result.step


def test_unsorted_rows_give_the_same_result(sicily):
    shuffled = sicily.sample(frac=1, random_state=3)
    a, _ = fit(shuffled, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    b, _ = fit(sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    assert a.step.estimate == pytest.approx(b.step.estimate, rel=1e-12)
    assert a.series["time"].is_monotonic_increasing


def test_missing_values_are_dropped_with_a_caveat(sicily):
    holed = sicily.copy()
    holed.loc[[5, 40], "aces"] = np.nan
    result, caveats = fit(holed, **TUTORIAL, family="quasipoisson")
    assert result.n_obs == 57
    assert any("2 of 59 rows" in c for c in caveats)


def test_few_points_draw_a_caveat_not_a_crash(sicily):
    short = sicily[(sicily["time"] >= 31) & (sicily["time"] <= 42)]
    result, caveats = fit(short, **TUTORIAL, family="quasipoisson")
    assert any("Few points" in c for c in caveats)
    assert math.isfinite(result.step.estimate)


def test_constant_series_is_sensible(sicily):
    flat = sicily.assign(aces=800)
    result, _ = fit(flat, outcome="aces", time="time", intervention="smokban", family="poisson")
    assert result.step.estimate == pytest.approx(1.0, abs=1e-8)
    assert result.trend.estimate == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        ({}, {"outcome": "nope"}, "not in the data"),
        ({"smokban": 2}, {}, "must be 0 before"),
        ({"stdpop": 0.0}, {}, "must be > 0"),
        ({"aces": -1}, {}, "negative"),
        ({}, {"family": "weibull"}, "family must be one of"),
        ({}, {"family": "poisson", "autocorrelation": "ar1"}, "gaussian"),
        ({}, {"family": "binomial", "exposure": None}, "trials"),
        ({}, {"family": "gaussian"}, "exposure="),
        ({}, {"lags": 3}, "newey-west"),
        ({}, {"autocorrelation": "arma"}, "autocorrelation must be"),
    ],
)
def test_bad_input_raises_a_clear_input_error(sicily, change, kwargs, message):
    df = sicily.copy()
    for col, value in change.items():
        df.loc[3, col] = value
    args = {**TUTORIAL, "family": "quasipoisson", **kwargs}
    with pytest.raises(InputError, match=message):
        segmented_regression(df, **args)


def test_intervention_switching_off_or_without_post_points_is_refused(sicily):
    off = sicily.assign(smokban=((sicily["time"] >= 37) & (sicily["time"] <= 50)).astype(int))
    with pytest.raises(InputError, match="switches back"):
        segmented_regression(off, **TUTORIAL)
    never = sicily.assign(smokban=0)
    with pytest.raises(InputError, match="points on both sides"):
        segmented_regression(never, **TUTORIAL)


def test_collinear_design_and_duplicate_times_are_refused(sicily):
    twin = sicily.assign(ban2=sicily["smokban"])
    with pytest.raises(InputError, match="collinear"):
        segmented_regression(twin, **TUTORIAL | {"intervention": ["smokban", "ban2"]})
    doubled = pd.concat([sicily, sicily.iloc[[3]]])
    with pytest.raises(InputError, match="more than once"):
        segmented_regression(doubled, **TUTORIAL)


def test_harmonics_parse_and_validate():
    assert Harmonics.parse("month:12:2") == Harmonics("month", 12, 2)
    assert Harmonics("month", 12, 2).term_names() == ["cos1", "cos2", "sin1", "sin2"]
    with pytest.raises(InputError, match="COLUMN:PERIOD:PAIRS"):
        Harmonics.parse("month-12")
    with pytest.raises(InputError, match="pairs"):
        Harmonics("month", 12, 7)
    terms = Harmonics("m", 12, 1).terms([3, 12])
    assert terms["cos1"].tolist() == pytest.approx([0.0, 1.0], abs=1e-12)
    assert terms["sin1"].tolist() == pytest.approx([1.0, 0.0], abs=1e-12)


def test_summary_reads_like_a_report(sicily):
    result, _ = fit(
        sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON, slope_change=True
    )
    text = result.summary()
    assert "quasi-Poisson" in text
    assert "rate ratio 0.876 (95% CI 0.827 to 0.929" in text
    assert "the rate fell by 12.4%" in text
    assert "change in slope" in text
    assert "Ljung–Box" in text
    assert "Caveats:" in text


def test_to_dict_is_json(sicily):
    result, _ = fit(sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["step"]["estimate"] == pytest.approx(result.step.estimate)
    assert data["interventions"][0]["start"] == 37
    assert len(data["autocorrelation"]["acf"]) == 12
    assert {c["term"] for c in data["coefficients"]} >= {"intercept", "time", "smokban", "cos1"}


def test_result_is_frozen(sicily):
    result, _ = fit(sicily, **TUTORIAL, family="quasipoisson")
    with pytest.raises(AttributeError):
        result.step = None  # type: ignore[misc]


# --------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------


PROPERTY = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(scale=st.floats(0.01, 100), shift=st.integers(-500, 500))
def test_exposure_scale_and_time_origin_do_not_change_the_effects(sicily, scale, shift):
    base, _ = fit(sicily, **TUTORIAL, family="quasipoisson", slope_change=True)
    moved = sicily.assign(stdpop=sicily["stdpop"] * scale, time=sicily["time"] + shift)
    other, _ = fit(moved, **TUTORIAL, family="quasipoisson", slope_change=True)
    for a, b in ((base.step, other.step), (base.slope, other.slope), (base.trend, other.trend)):
        assert a is not None and b is not None
        assert (b.estimate, b.ci_low, b.ci_high) == pytest.approx(
            (a.estimate, a.ci_low, a.ci_high), rel=1e-6
        )


@PROPERTY
@given(k=st.floats(0.1, 10), c=st.floats(-1000, 1000))
def test_gaussian_effects_are_equivariant_under_affine_changes_of_the_outcome(sicily, k, c):
    base, _ = fit(sicily, outcome="rate", time="time", intervention="smokban", family="gaussian")
    moved, _ = fit(sicily.assign(rate=sicily["rate"] * k + c), outcome="rate", time="time",
                   intervention="smokban", family="gaussian")  # fmt: skip
    assert moved.step.estimate == pytest.approx(k * base.step.estimate, rel=1e-6)
    assert moved.step.ci_high - moved.step.ci_low == pytest.approx(
        k * (base.step.ci_high - base.step.ci_low), rel=1e-6
    )
    assert moved.step.p == pytest.approx(base.step.p, rel=1e-5)
