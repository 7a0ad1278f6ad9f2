"""Interrupted time series: segmented regression for evaluating a change.

:func:`segmented_regression` fits the segmented regression model of an
interrupted time series (Wagner et al. 2002; Penfold & Zhang 2013; Lopez
Bernal, Cummins & Gasparrini, *Int J Epidemiol* 2017;46:348–355) with
statsmodels and returns an :class:`ItsResult`:

* the underlying trend before the intervention, the immediate change in level
  at the intervention (*step*) and, optionally, the change in slope after it —
  each an :class:`careloop.analysis.Effect` with its 95% confidence interval
  and p value, on the rate-ratio scale for Poisson models (log link), the
  odds-ratio scale for binomial ones (logit link) and as differences for
  Gaussian ones;
* the fitted series and the counterfactual (the same model with the
  intervention terms set to zero);
* residual autocorrelation diagnostics;
* a plain-language :meth:`ItsResult.summary` (drawn by :mod:`careloop.charts.its`).

The model, for one intervention ``I`` (0 before, 1 from its start on) and
time ``t``::

    g(E[y]) = log(exposure) + b0 + b1·t + b2·I [+ b3·(t − T0)·I] [+ harmonics]

where ``T0`` is the last time point before the intervention starts (the coding
of the tutorial's R code, ``I(time-36):smokban``), so ``b2`` is the change in
level and ``b3`` the change in slope per time unit. Several intervention
columns (phases) each get their own step and slope terms. With a ``control``
series (comparative ITS, Linden 2015) both series are stacked and the effects
are the *differences* between the treated and the control series' changes.

Estimation is statsmodels' throughout: ``GLM`` (Poisson, quasi-Poisson as
Poisson with the Pearson χ² scale, Gaussian, binomial), Newey–West
heteroscedasticity-and-autocorrelation-consistent covariance
(``cov_type="HAC"``, Bartlett kernel) and, for Gaussian outcomes, regression
with AR(1) errors by exact maximum likelihood (``ARIMA(order=(1, 0, 0))``).
Confidence intervals are Wald intervals with the normal quantile, as R's
``Epi::ci.exp`` gives for the tutorial.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from scipy import stats

from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.effects import Effect
from careloop.analysis.its.design import (
    Harmonics,
    ItsDesign,
    ItsSpec,
    design,
    validate,
)
from careloop.analysis.its.result import AutocorrelationDiagnostics, ItsResult, PhaseEffect
from careloop.core.errors import InputError

Family: TypeAlias = Literal["poisson", "quasipoisson", "gaussian", "binomial"]
Autocorrelation: TypeAlias = Literal["newey-west", "ar1"]

OVERDISPERSION_WARN = 1.5
"""Pearson χ²/df above this in a Poisson or binomial model draws a caveat."""

_Z = float(stats.norm.ppf(0.975))


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


__all__ = ["OVERDISPERSION_WARN", "Autocorrelation", "Family", "segmented_regression"]


def segmented_regression(
    df: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    intervention: str | Sequence[str],
    exposure: str | None = None,
    family: Family = "poisson",
    trials: str | None = None,
    seasonality: Harmonics | None = None,
    slope_change: bool = False,
    autocorrelation: Autocorrelation | None = None,
    lags: int | None = None,
    control: str | None = None,
    diagnostic_lags: int | None = None,
) -> ItsResult:
    """Fit a segmented regression model to an interrupted time series.

    Args:
        df: One row per time point (per series, with ``control``).
        outcome: Counts (Poisson, quasi-Poisson), events (binomial, with
            ``trials``) or a continuous measure (Gaussian).
        time: Numeric time (1, 2, …) or dates. Dates are replaced by their rank
            1, 2, … in date order (equally spaced periods are assumed) and kept
            for the figure.
        intervention: One 0/1 column, or several (phases): each is 0 before its
            intervention starts and 1 from then on.
        exposure: Population or person-time column; log(exposure) is the offset,
            so the effects are on rates (Poisson families only).
        family: ``"poisson"``, ``"quasipoisson"`` (Poisson with Pearson-χ²
            dispersion), ``"gaussian"`` or ``"binomial"`` (events out of ``trials``).
        trials: Number of trials per row, for ``family="binomial"``.
        seasonality: :class:`Harmonics` (Fourier terms), e.g.
            ``Harmonics("month", 12, 2)``.
        slope_change: Also estimate a change in slope after each intervention.
        autocorrelation: None (model-based standard errors), ``"newey-west"``
            (HAC standard errors, Bartlett kernel, ``lags`` lags) or ``"ar1"``
            (AR(1) errors by maximum likelihood; Gaussian family only).
        lags: Newey–West lags; default ⌊4(n/100)^(2/9)⌋ (Newey & West 1994).
        control: Column marking the rows of the control series (1/True) in a
            comparative ITS; the treated series' rows are 0/False.
        diagnostic_lags: Lags for the residual autocorrelation diagnostics;
            default min(12, n/4), or 2 periods of the seasonality if smaller.

    Returns:
        The fitted model's effects, series, diagnostics and caveats.

    Raises:
        InputError: Missing columns, unusable values (negative counts, exposure
            ≤ 0, interventions that are not 0/1 switching on once), no time
            points before or after an intervention, duplicated time points, or
            a design whose terms are collinear.

    Warns:
        StatisticalWarning: Over-dispersion ignored by a Poisson or binomial
            model, residual autocorrelation without an adjustment, few points
            around an intervention, rows dropped for missing values.
    """
    spec = validate(
        df,
        outcome=outcome,
        time=time,
        intervention=intervention,
        exposure=exposure,
        family=family,
        trials=trials,
        seasonality=seasonality,
        autocorrelation=autocorrelation,
        lags=lags,
        control=control,
        diagnostic_lags=diagnostic_lags,
    )
    caveats: list[str] = list(spec.caveats)
    design_ = design(spec, slope_change=slope_change)
    fit = _fit(spec, design_)
    result = _assemble(spec, design_, fit, slope_change=slope_change, caveats=caveats)
    for caveat in result.caveats:
        warnings.warn(caveat, StatisticalWarning, stacklevel=2)
    return result


# --- fitting ----------------------------------------------------------------


@dataclass
class _Fit:
    results: Any
    params: pd.Series  # regression coefficients only
    cov: pd.DataFrame
    dispersion: float
    pearson_dispersion: float
    covariance: str
    ar1: float | None
    resid: np.ndarray  # residuals of the treated series for diagnostics
    resid_kind: str
    link: str  # "log" | "logit" | "identity"


def _newey_west_default_lags(n: int) -> int:
    return int(4 * (n / 100) ** (2 / 9))  # floor: the value is positive


def _fit(spec: ItsSpec, design: ItsDesign) -> _Fit:
    """Fit the segmented regression as a GLM with the chosen family and covariance.

    Long because every option (AR(1) errors, family and offset, Newey–West or
    quasi-Poisson covariance) adjusts the one model before it is fitted under one
    capture of warnings.
    """
    import statsmodels.api as sm

    d = spec.data
    X = design.X
    y = d[spec.outcome].to_numpy(dtype=float)
    treated = (d["_group"] == 1.0).to_numpy()

    if spec.autocorrelation == "ar1":
        from statsmodels.tsa.arima.model import ARIMA

        with warnings.catch_warnings():
            # statsmodels' optimiser chatter is not a caveat about the result
            warnings.simplefilter("ignore")
            res = ARIMA(y, exog=X, order=(1, 0, 0), trend="n").fit(cov_type="approx")
        params = pd.Series(np.asarray(res.params), index=res.param_names)
        cov_all = pd.DataFrame(
            np.asarray(res.cov_params()), index=res.param_names, columns=res.param_names
        )
        names = list(X.columns)
        if not res.mle_retvals.get("converged", True):
            spec.caveats.append("The AR(1) model's likelihood maximisation did not converge.")
        sigma2 = float(params["sigma2"])
        ar1 = float(params["ar.L1"])
        resid = np.asarray(res.resid)[treated]
        fitted_mean = X.to_numpy() @ params[names].to_numpy()
        df_resid = len(y) - len(names)
        pearson = float(np.sum((y - fitted_mean) ** 2) / df_resid)
        return _Fit(
            results=res,
            params=params[names],
            cov=cov_all.loc[names, names],
            dispersion=sigma2,
            pearson_dispersion=pearson,
            covariance=(
                "AR(1) errors, exact maximum likelihood (statsmodels ARIMA), "
                "observed-information standard errors"
            ),
            ar1=ar1,
            resid=resid,
            resid_kind="innovations",
            link="identity",
        )

    offset = None
    if spec.family in ("poisson", "quasipoisson"):
        fam = sm.families.Poisson()
        endog: Any = y
        link = "log"
        if spec.exposure is not None:
            offset = np.log(d[spec.exposure].to_numpy(dtype=float))
    elif spec.family == "binomial":
        fam = sm.families.Binomial()
        n = d[spec.trials].to_numpy(dtype=float)
        endog = np.column_stack([y, n - y])
        link = "logit"
    else:
        fam = sm.families.Gaussian()
        endog = y
        link = "identity"

    model = sm.GLM(endog, X, family=fam, offset=offset)
    fit_kwargs: dict[str, Any] = {}
    if spec.family == "quasipoisson":
        fit_kwargs["scale"] = "X2"
    covariance = "model-based (Fisher information)"
    if spec.family == "quasipoisson":
        covariance = "model-based, scaled by the Pearson χ² dispersion (quasi-Poisson)"
    if spec.autocorrelation == "newey-west":
        n_series = len(d) if spec.control is None else int(treated.sum())
        maxlags = spec.lags if spec.lags is not None else _newey_west_default_lags(n_series)
        if spec.control is None:
            fit_kwargs.update(cov_type="HAC", cov_kwds={"maxlags": maxlags})
        else:
            groups = d["_group"].to_numpy().astype(int)
            fit_kwargs.update(cov_type="hac-panel", cov_kwds={"groups": groups, "maxlags": maxlags})
        covariance = (
            f"Newey–West (HAC, Bartlett kernel, {maxlags} lag{'s' if maxlags != 1 else ''})"
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", RuntimeWarning)
            res = model.fit(**fit_kwargs)
    except (np.linalg.LinAlgError, RuntimeWarning, ValueError) as exc:
        raise InputError(f"The {spec.family} model could not be fitted: {exc}.") from exc
    for w in caught:
        if "separation" in str(w.message).lower():
            spec.caveats.append(
                "The model fits the data perfectly (e.g. a constant series, or all or no events): "
                "its standard errors are not meaningful."
            )
        else:
            spec.caveats.append(f"statsmodels warned while fitting: {w.message}")
    if not getattr(res, "converged", True):
        spec.caveats.append("The model's fitting algorithm (IRLS) did not converge.")

    params = pd.Series(np.asarray(res.params), index=X.columns)
    cov = pd.DataFrame(np.asarray(res.cov_params()), index=X.columns, columns=X.columns)
    pearson = float(res.pearson_chi2 / res.df_resid)
    dispersion = 1.0 if spec.family in ("poisson", "binomial") else float(res.scale)
    resid = np.asarray(res.resid_deviance)[treated]
    return _Fit(res, params, cov, dispersion, pearson, covariance, None, resid, "deviance", link)


# --- assembling the result --------------------------------------------------


def _effect(fit: _Fit, weights: Mapping[str, float]) -> Effect:
    names = list(weights)
    c = np.array([weights[n] for n in names], dtype=float)
    est = float(c @ fit.params[names].to_numpy())
    var = float(c @ fit.cov.loc[names, names].to_numpy() @ c)
    se = math.sqrt(var) if var > 0 else float("nan")
    lo, hi = est - _Z * se, est + _Z * se
    p = float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan")
    if fit.link in ("log", "logit"):
        return Effect(math.exp(est), math.exp(lo), math.exp(hi), p)
    return Effect(est, lo, hi, p)


def _inverse_link(link: str, eta: np.ndarray) -> np.ndarray:
    if link == "log":
        return np.asarray(np.exp(eta), dtype=float)
    if link == "logit":
        return np.asarray(1 / (1 + np.exp(-eta)), dtype=float)
    return np.asarray(eta, dtype=float)


def _band(fit: _Fit, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% band on the plotted scale (offset excluded: rate per exposure unit)."""
    M = X[fit.params.index].to_numpy()
    eta = M @ fit.params.to_numpy()
    V = fit.cov.to_numpy()
    se = np.sqrt(np.einsum("ij,jk,ik->i", M, V, M).clip(min=0))
    return (
        _inverse_link(fit.link, eta),
        _inverse_link(fit.link, eta - _Z * se),
        _inverse_link(fit.link, eta + _Z * se),
    )


def _diagnostics(resid: np.ndarray, kind: str, lags: int) -> AutocorrelationDiagnostics:
    from statsmodels.stats.diagnostic import acorr_ljungbox
    from statsmodels.stats.stattools import durbin_watson
    from statsmodels.tsa.stattools import acf, pacf

    r = np.asarray(resid, dtype=float)
    n = len(r)
    lags = max(1, min(lags, n - 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = acf(r, nlags=lags, fft=False)[1:]
        p_lags = max(1, min(lags, n // 2 - 1))
        pa = pacf(r, nlags=p_lags, method="ldb")[1:]
        lb = acorr_ljungbox(r, lags=[lags], return_df=True)
    return AutocorrelationDiagnostics(
        residuals=kind,
        lags=lags,
        acf=tuple(float(v) for v in a),
        pacf=tuple(float(v) for v in pa),
        ljung_box_stat=float(lb["lb_stat"].iloc[0]),
        ljung_box_p=float(lb["lb_pvalue"].iloc[0]),
        durbin_watson=float(durbin_watson(r)),
    )


def _assemble(
    spec: ItsSpec, design: ItsDesign, fit: _Fit, *, slope_change: bool, caveats: list[str]
) -> ItsResult:
    """The ITS result of one fit: effects, coefficients, series, diagnostics and caveats."""
    d = spec.data
    ratio = fit.link in ("log", "logit")
    effect_scale = {"log": "rate ratio", "logit": "odds ratio"}.get(fit.link, "difference")

    treated = d["_group"] == 1.0
    phases = _phase_effects(spec, design, fit)
    trend = _effect(fit, dict.fromkeys(design.trend_terms, 1.0))

    coef = _coefficients(fit, ratio=ratio)

    series = _series(spec, design, fit)

    # diagnostics
    n_t = int(treated.sum())
    if spec.diagnostic_lags is not None:
        dlags = spec.diagnostic_lags
    else:
        dlags = min(12, max(1, n_t // 4))
        if spec.seasonality is not None:
            dlags = min(dlags, max(1, int(2 * spec.seasonality.period)))
    diag = _diagnostics(fit.resid, fit.resid_kind, dlags)

    all_caveats = list(dict.fromkeys(caveats + spec.caveats))
    if spec.family in ("poisson", "binomial") and fit.pearson_dispersion > OVERDISPERSION_WARN:
        alt = (
            "family='quasipoisson'"
            if spec.family == "poisson"
            else "a quasi-binomial or random-effects model"
        )
        all_caveats.append(
            f"Over-dispersion: Pearson χ²/df = {fit.pearson_dispersion:.2f} (1 expected under the "
            f"{spec.family} model), so its confidence intervals are too narrow; consider {alt}."
        )
    if spec.autocorrelation is None and diag.ljung_box_p < 0.05:
        all_caveats.append(
            f"Residual autocorrelation: Ljung–Box p = {diag.ljung_box_p:.3g} at {diag.lags} lags; "
            "standard errors may be too small. Consider seasonality, autocorrelation='newey-west' "
            "or, for a continuous outcome, 'ar1'."
        )

    first = phases[0]
    return ItsResult(
        outcome=spec.outcome,
        time=spec.time,
        family=spec.family,
        effect_scale=effect_scale,
        step=first.step,
        slope=first.slope,
        trend=trend,
        interventions=tuple(phases),
        dispersion=fit.dispersion,
        pearson_dispersion=fit.pearson_dispersion,
        covariance=fit.covariance,
        ar1=fit.ar1,
        n_obs=len(d),
        coefficients=coef,
        series=series,
        autocorrelation=diag,
        caveats=tuple(all_caveats),
        seasonality=spec.seasonality,
        exposure=spec.exposure,
        control=spec.control,
        model=fit.results,
    )


def _phase_effects(spec: ItsSpec, design: ItsDesign, fit: _Fit) -> list[PhaseEffect]:
    """The step and slope change at each intervention, with the periods before and after."""
    d = spec.data
    phases: list[PhaseEffect] = []
    treated = d["_group"] == 1.0
    for i, name in enumerate(spec.interventions):
        step = _effect(fit, {design.step_terms[i]: 1.0})
        slope_term = design.slope_terms[i]
        slope = _effect(fit, {slope_term: 1.0}) if slope_term else None
        start_t = design.starts[i]
        start: Any = int(start_t) if float(start_t).is_integer() else start_t
        if spec.dated:
            start = pd.Timestamp(d.loc[treated & (d["_t"] == start_t), "_date"].iloc[0]).date()
        n_after = int(d.loc[treated, name].sum())
        phases.append(
            PhaseEffect(
                intervention=name,
                start=start,
                n_before=int(treated.sum()) - n_after,
                n_after=n_after,
                step=step,
                slope=slope,
            )
        )
    return phases


def _coefficients(fit: _Fit, *, ratio: bool) -> pd.DataFrame:
    """The coefficients table, with ratios for a log or logit link."""
    se = np.sqrt(np.diag(fit.cov.to_numpy()).clip(min=0))
    est = fit.params.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est / se
    coef = pd.DataFrame(
        {
            "term": list(fit.params.index),
            "estimate": est,
            "std_error": se,
            "z": z,
            "p": 2 * stats.norm.sf(np.abs(z)),
            "ci_low": est - _Z * se,
            "ci_high": est + _Z * se,
        }
    )
    if ratio:
        coef["ratio"] = np.exp(coef["estimate"])
        coef["ratio_ci_low"] = np.exp(coef["ci_low"])
        coef["ratio_ci_high"] = np.exp(coef["ci_high"])
    return coef


def _series(spec: ItsSpec, design: ItsDesign, fit: _Fit) -> pd.DataFrame:
    """The observed, fitted and counterfactual series, with their confidence bands."""
    d = spec.data
    treated = d["_group"] == 1.0
    fitted, f_lo, f_hi = _band(fit, design.X)
    cf, c_lo, c_hi = _band(fit, design.counterfactual_X)
    y = d[spec.outcome].to_numpy(dtype=float)
    if spec.family == "binomial":
        observed = y / d[spec.trials].to_numpy(dtype=float)
    elif spec.exposure is not None:
        observed = y / d[spec.exposure].to_numpy(dtype=float)
    else:
        observed = y
    series = pd.DataFrame({"time": d["_t"].to_numpy()})
    if spec.dated:
        series["date"] = d["_date"].to_numpy()
    if spec.control is not None:
        series["group"] = np.where(treated, "treated", "control")
    series["observed"] = observed
    series["fitted"] = fitted
    series["fitted_low"] = f_lo
    series["fitted_high"] = f_hi
    series["counterfactual"] = cf
    series["counterfactual_low"] = c_lo
    series["counterfactual_high"] = c_hi
    series["post"] = (d[spec.interventions].to_numpy() == 1).any(axis=1)
    if spec.exposure is not None:
        series["exposure"] = d[spec.exposure].to_numpy()
    if spec.trials is not None:
        series["trials"] = d[spec.trials].to_numpy()
    return series
