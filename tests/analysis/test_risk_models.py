"""Penalised and Firth logistic risk models, validation and decision curves."""

from __future__ import annotations

import hashlib
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import optimize

from careloop import charts
from careloop.analysis.risk import (
    EventsPerParameterWarning,
    RiskModel,
    c_statistic,
    calibration,
    decision_curve,
    firth_logistic,
    fit_risk_model,
)
from careloop.core.errors import InputError


def _cohort(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(60, 10, n),
            "sbp": rng.normal(130, 15, n),
            "sex": rng.choice(["F", "M"], n),
            "noise": rng.normal(0, 1, n),
        }
    )
    lp = -2.2 + 0.06 * (df["age"] - 60) + 0.03 * (df["sbp"] - 130) + 0.7 * (df["sex"] == "M")
    df["event"] = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return df


PREDICTORS = ["age", "sbp", "sex", "noise"]


def _fit(df, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EventsPerParameterWarning)
        return fit_risk_model(df, outcome="event", predictors=PREDICTORS, **kwargs)


# --- Firth ---------------------------------------------------------------------


def test_firth_on_a_two_by_two_table_adds_a_half_to_every_cell():
    # Hand-checked reference: for a saturated 2×2 logistic model Firth's estimate is
    # the log odds (ratio) with 0.5 added to each cell (Firth 1993; Heinze & Schemper
    # 2002). x=1: 8 events, 2 non-events; x=0: 3 events, 12 non-events.
    x = [1] * 10 + [0] * 15
    y = [1] * 8 + [0] * 2 + [1] * 3 + [0] * 12
    fit = firth_logistic(x, y)
    assert fit.intercept == pytest.approx(math.log(3.5 / 12.5), abs=1e-8)
    assert fit.coefficients[0] == pytest.approx(
        math.log(8.5 / 2.5) - math.log(3.5 / 12.5), abs=1e-8
    )
    assert fit.converged


def test_firth_stays_finite_under_complete_separation():
    # Maximum likelihood diverges here; Firth gives log(5.5/0.5) − log(0.5/5.5).
    fit = firth_logistic([1] * 5 + [0] * 5, [1] * 5 + [0] * 5)
    assert fit.coefficients[0] == pytest.approx(2 * math.log(11), abs=1e-7)
    assert fit.intercept == pytest.approx(-math.log(11), abs=1e-7)


def test_firth_maximises_the_jeffreys_penalised_likelihood():
    # Independent check: maximise ℓ(β) + ½ log det I(β) with scipy's BFGS.
    rng = np.random.default_rng(11)
    x = rng.normal(size=(60, 3))
    y = (rng.random(60) < 1 / (1 + np.exp(-(-1 + x @ [1.0, -0.5, 0.0])))).astype(float)
    design = np.column_stack([np.ones(60), x])

    def neg(beta):
        eta = design @ beta
        p = 1 / (1 + np.exp(-eta))
        info = design.T @ (design * (p * (1 - p))[:, None])
        return -(np.sum(y * eta - np.logaddexp(0, eta)) + 0.5 * np.linalg.slogdet(info)[1])

    ref = optimize.minimize(neg, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    fit = firth_logistic(x, y)
    assert [fit.intercept, *fit.coefficients] == pytest.approx(list(ref), abs=1e-5)


# --- performance -----------------------------------------------------------------


def test_c_statistic_equals_the_proportion_of_concordant_pairs():
    # By hand: events at risks 0.8, 0.4; non-events at 0.3, 0.4, 0.1.
    # Pairs: (0.8 vs all) 3 concordant; (0.4 vs 0.3, 0.1) 2, (0.4 vs 0.4) a tie = ½ → 5.5/6.
    assert c_statistic([1, 1, 0, 0, 0], [0.8, 0.4, 0.3, 0.4, 0.1]) == pytest.approx(5.5 / 6)


def test_maximum_likelihood_fit_is_perfectly_calibrated_in_its_own_data():
    # A property of the logistic MLE with an intercept: apparent slope 1, CITL 0.
    df = _cohort()
    x = sm.add_constant(df[["age", "sbp"]].to_numpy())
    p = sm.GLM(df["event"], x, family=sm.families.Binomial()).fit().predict(x)
    cal = calibration(df["event"], p)
    assert cal.slope == pytest.approx(1, abs=1e-6)
    assert cal.in_the_large == pytest.approx(0, abs=1e-6)
    assert cal.observed_expected == pytest.approx(1, abs=1e-6)


def test_net_benefit_by_hand():
    # 10 patients, 3 events. At pt = 0.2 (odds 1/4) the model flags risks ≥ 0.2:
    # 2 events (TP) and 2 non-events (FP): NB = 2/10 − 2/10 × 1/4 = 0.15.
    # Treat all: 3/10 − 7/10 × 1/4 = 0.125.
    y = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    risk = [0.9, 0.5, 0.1, 0.3, 0.25, 0.1, 0.05, 0.05, 0.02, 0.01]
    curve = decision_curve(y, risk, thresholds=[0.2, 0.6])
    assert curve.net_benefit_model[0] == pytest.approx(0.15)
    assert curve.net_benefit_all[0] == pytest.approx(0.125)
    # pt = 0.6 (odds 1.5): TP 1, FP 0 → 0.1; treat all 0.3 − 0.7 × 1.5 = −0.75
    assert curve.net_benefit_model[1] == pytest.approx(0.1)
    assert curve.net_benefit_all[1] == pytest.approx(-0.75)
    assert list(curve.to_frame()["net_benefit_none"]) == [0.0, 0.0]
    assert len(charts.risk.decision_curve_figure(curve).data) == 3


# --- fitting and validation ------------------------------------------------------


def test_unpenalised_model_matches_statsmodels():
    df = _cohort()
    model = _fit(df, penalty="none", n_bootstrap=0)
    design = np.column_stack([df["age"], df["sbp"], (df["sex"] == "M").astype(float), df["noise"]])
    ref = sm.GLM(df["event"], sm.add_constant(design), family=sm.families.Binomial()).fit()
    assert model.feature_names == ("age", "sbp", "sex=M", "noise")
    assert [model.intercept, *model.coefficients] == pytest.approx(list(ref.params), abs=1e-4)


def test_ridge_shrinks_coefficients_towards_zero():
    df = _cohort()
    ml = _fit(df, penalty="none", n_bootstrap=0)
    ridge = _fit(df, penalty="ridge", n_bootstrap=0)
    assert ridge.penalty_strength is not None
    assert np.linalg.norm(ridge.coefficients[:3]) < np.linalg.norm(ml.coefficients[:3])


def test_lasso_can_drop_a_pure_noise_predictor_entirely():
    rng = np.random.default_rng(0)
    df = _cohort(300, seed=5)
    df["noise"] = rng.normal(size=len(df))
    lasso = _fit(df, penalty="lasso", n_bootstrap=0)
    assert 0.0 in lasso.coefficients or min(abs(b) for b in lasso.coefficients) < 1e-3


def test_bootstrap_optimism_matches_a_direct_implementation_of_harrells_method():
    # Reference: Harrell's algorithm written out with statsmodels for the ML model,
    # using the same bootstrap draws (numpy default_rng(seed), integers(0, n, n)).
    df = _cohort(200, seed=8)
    model = _fit(df, penalty="none", n_bootstrap=15, seed=4)
    design = sm.add_constant(
        np.column_stack([df["age"], df["sbp"], (df["sex"] == "M").astype(float), df["noise"]])
    )
    y = df["event"].to_numpy(float)
    rng = np.random.default_rng(4)
    diffs = []
    for _ in range(15):
        idx = rng.integers(0, len(y), len(y))
        fit = sm.GLM(y[idx], design[idx], family=sm.families.Binomial()).fit()
        diffs.append(
            c_statistic(y[idx], fit.predict(design[idx])) - c_statistic(y, fit.predict(design))
        )
    assert model.metric("c_statistic").optimism == pytest.approx(np.mean(diffs), abs=1e-6)
    corrected = model.metric("calibration_slope").corrected
    assert corrected < 1  # unpenalised fits with few events are overfitted


def test_few_events_per_parameter_warns_and_names_rileys_criteria():
    df = _cohort(150)
    with pytest.warns(EventsPerParameterWarning, match="Riley"):
        model = fit_risk_model(
            df, outcome="event", predictors=PREDICTORS, penalty="firth", n_bootstrap=0
        )
    assert model.caveats and "minimum_sample_size" in model.caveats[0]
    assert "Caveat" in model.summary()


def test_model_round_trips_through_json_with_metadata_and_figures():
    df = _cohort()
    model = _fit(df, penalty="firth", n_bootstrap=10)
    data = json.loads(json.dumps(model.to_dict()))
    again = RiskModel.from_dict(data)
    assert again == model
    pd.testing.assert_series_equal(again.predict_risk(df), model.predict_risk(df))
    canonical = df[["event", *PREDICTORS]].to_csv(index=False, lineterminator="\n")
    assert data["training_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert data["n"] == 400 and data["events"] == int(df["event"].sum())
    assert {m["name"] for m in data["validation"]} >= {"c_statistic", "calibration_slope"}
    assert len(charts.risk.calibration_figure(model).data) == 2
    assert len(charts.risk.decision_curve_figure(model).data) == 3
    assert "optimism" in model.summary()


def test_the_training_hash_changes_when_the_data_change():
    df = _cohort()
    a = _fit(df, penalty="firth", n_bootstrap=0)
    df.loc[0, "age"] += 1
    b = _fit(df, penalty="firth", n_bootstrap=0)
    assert a.training_sha256 != b.training_sha256


def test_predicting_with_an_unseen_category_is_refused():
    df = _cohort()
    model = _fit(df, penalty="firth", n_bootstrap=0)
    new = df.head(2).assign(sex=["F", "X"])
    with pytest.raises(InputError, match="never saw"):
        model.predict_risk(new)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns="age"), "not in the data"),
        (lambda d: d.assign(event=d["event"] * 2), "0/1"),
        (lambda d: d.assign(event=0), "needs both"),
        (lambda d: d.assign(age=d["age"].where(d.index != 5)), "row 5"),
    ],
)
def test_bad_training_data_is_refused(change, message):
    with pytest.raises(InputError, match=message):
        _fit(change(_cohort()), penalty="firth", n_bootstrap=0)


def test_decision_curve_summary_names_the_useful_threshold_range():
    # From the hand example above: the model beats both strategies at 0.2 and 0.6.
    y = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    risk = [0.9, 0.5, 0.1, 0.3, 0.25, 0.1, 0.05, 0.05, 0.02, 0.01]
    text = decision_curve(y, risk, thresholds=[0.2, 0.6]).summary()
    assert "2 of 2 threshold risks, between 20% and 60%" in text


def test_separated_data_are_refused_for_maximum_likelihood_but_fitted_by_firth():
    # x > 0 always has the event: ML estimates are infinite (Heinze & Schemper 2002)
    rng = np.random.default_rng(4)
    x = rng.normal(size=60)
    df = pd.DataFrame({"x": x, "z": rng.normal(size=60), "event": (x > 0).astype(int)})
    with pytest.raises(InputError, match="separated"):
        fit_risk_model(df, outcome="event", predictors=["x", "z"], penalty="none", n_bootstrap=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EventsPerParameterWarning)
        firth = fit_risk_model(
            df, outcome="event", predictors=["x", "z"], penalty="firth", n_bootstrap=0
        )
    assert all(math.isfinite(b) for b in firth.coefficients)
