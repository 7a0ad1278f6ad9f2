"""What a segmented regression returns: the effects, the series, the diagnostics, a report.

:class:`ItsResult` is a frozen dataclass; :meth:`ItsResult.summary` is its
plain-language report (written here, beside the fields it reads) and
:meth:`ItsResult.to_dict` its JSON form. It is drawn by
:mod:`careloop.charts.its`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from careloop.analysis._frames import json_value, records
from careloop.analysis.effects import Effect
from careloop.analysis.its.design import Harmonics

__all__ = ["AutocorrelationDiagnostics", "ItsResult", "PhaseEffect"]


@dataclass(frozen=True)
class PhaseEffect:
    """The estimated effect of one intervention (phase)."""

    intervention: str
    """The intervention's column."""
    start: Any
    """The first time value (or date) at which the intervention is on."""
    n_before: int
    """Number of time points before it starts (in the treated series)."""
    n_after: int
    """Number of time points from its start on (in the treated series)."""
    step: Effect
    """Immediate change in level at the start (ratio for log/logit links)."""
    slope: Effect | None
    """Change in slope per time unit after the start (ratio for log/logit links);
    None unless ``slope_change=True``."""


@dataclass(frozen=True)
class AutocorrelationDiagnostics:
    """Autocorrelation of the model's residuals (treated series)."""

    residuals: str
    """Which residuals: ``"deviance"`` (GLM) or ``"innovations"`` (AR(1) model)."""
    lags: int
    """Number of lags examined."""
    acf: tuple[float, ...]
    """Autocorrelation at lags 1…lags (as R's ``acf``)."""
    pacf: tuple[float, ...]
    """Partial autocorrelation at lags 1…lags (Durbin–Levinson, as R's ``pacf``)."""
    ljung_box_stat: float
    """Ljung–Box Q statistic at ``lags``."""
    ljung_box_p: float
    """Its p value (χ² with ``lags`` df; as R's ``Box.test(type="Ljung-Box")``)."""
    durbin_watson: float
    """Durbin–Watson statistic (about 2 without lag-1 autocorrelation)."""


@dataclass(frozen=True)
class ItsResult:
    """A fitted interrupted time series (segmented regression) model.

    Frozen; every field is documented. ``step``/``slope`` are those of the
    first intervention; :attr:`interventions` has one entry per intervention.
    """

    outcome: str
    """The outcome column."""
    time: str
    """The time column."""
    family: str
    """``poisson``, ``quasipoisson``, ``gaussian`` or ``binomial``."""
    effect_scale: str
    """Scale of the effects: ``"rate ratio"``, ``"odds ratio"`` or ``"difference"``."""
    step: Effect
    """Immediate change in level at the (first) intervention."""
    slope: Effect | None
    """Change in slope per time unit after the (first) intervention; None unless
    ``slope_change=True``."""
    trend: Effect
    """Underlying (pre-intervention) trend per time unit of the treated series."""
    interventions: tuple[PhaseEffect, ...]
    """One entry per intervention column, in the order given."""
    dispersion: float
    """Scale the model used: 1 for Poisson and binomial, Pearson χ²/df for
    quasi-Poisson, the residual variance for Gaussian (σ² of the innovations
    with AR(1) errors)."""
    pearson_dispersion: float
    """Pearson χ² / residual df, whatever the family (over-dispersion if ≫ 1)."""
    covariance: str
    """How the standard errors were computed."""
    ar1: float | None
    """The AR(1) coefficient when ``autocorrelation="ar1"``, else None."""
    n_obs: int
    """Number of rows used (both series for a comparative ITS)."""
    coefficients: pd.DataFrame
    """Every model term: term, estimate, std_error, z, p, ci_low, ci_high (link
    scale) and, for log/logit links, ratio, ratio_ci_low, ratio_ci_high."""
    series: pd.DataFrame
    """One row per time point (and series): time, [date], [group], observed,
    fitted, fitted_low, fitted_high, counterfactual, counterfactual_low,
    counterfactual_high, post (any intervention on), and exposure or trials
    when given. Values are rates per unit of exposure when an exposure is
    given, proportions for binomial outcomes, else on the outcome's scale.
    The counterfactual is the fitted model with the intervention terms set to
    zero (for a comparative ITS: with the treated-minus-control change terms set
    to zero); it equals the fitted values before the intervention."""
    autocorrelation: AutocorrelationDiagnostics
    """Residual autocorrelation diagnostics."""
    caveats: tuple[str, ...]
    """Statistical caveats (also emitted as :class:`StatisticalWarning`)."""
    seasonality: Harmonics | None = None
    """The seasonal terms, if any."""
    exposure: str | None = None
    """The exposure (offset) column, if any."""
    control: str | None = None
    """The control-series marker column of a comparative ITS, if any."""
    model: Any = field(default=None, repr=False, compare=False)
    """The statsmodels results object, for further analysis."""

    # --- text -----------------------------------------------------------------

    def summary(self) -> str:
        """A plain-language report of the model and its effects."""
        return _summary_text(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the results (no statsmodels object)."""

        def eff(e: Effect | None) -> dict[str, Any] | None:
            if e is None:
                return None
            return {k: json_value(getattr(e, k)) for k in ("estimate", "ci_low", "ci_high", "p")}

        ac = self.autocorrelation
        return {
            "outcome": self.outcome,
            "time": self.time,
            "family": self.family,
            "effect_scale": self.effect_scale,
            "step": eff(self.step),
            "slope": eff(self.slope),
            "trend": eff(self.trend),
            "interventions": [
                {
                    "intervention": ph.intervention,
                    "start": json_value(ph.start),
                    "n_before": ph.n_before,
                    "n_after": ph.n_after,
                    "step": eff(ph.step),
                    "slope": eff(ph.slope),
                }
                for ph in self.interventions
            ],
            "dispersion": json_value(self.dispersion),
            "pearson_dispersion": json_value(self.pearson_dispersion),
            "covariance": self.covariance,
            "ar1": json_value(self.ar1),
            "n_obs": self.n_obs,
            "seasonality": None if self.seasonality is None else str(self.seasonality),
            "exposure": self.exposure,
            "control": self.control,
            "autocorrelation": {
                "residuals": ac.residuals,
                "lags": ac.lags,
                "acf": [json_value(v) for v in ac.acf],
                "pacf": [json_value(v) for v in ac.pacf],
                "ljung_box_stat": json_value(ac.ljung_box_stat),
                "ljung_box_p": json_value(ac.ljung_box_p),
                "durbin_watson": json_value(ac.durbin_watson),
            },
            "coefficients": records(self.coefficients.to_dict(orient="records")),
            "caveats": list(self.caveats),
        }


# --- the report ------------------------------------------------------------


def _signed_pct(ratio: float, digits: int = 1) -> str:
    """A ratio as a signed percentage change: 0.885 → "−11.5%"."""
    change = (ratio - 1) * 100
    sign = "+" if change >= 0 else "−"
    return f"{sign}{abs(change):.{digits}f}%"


def _p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.3e}"


def _describe_step(result: ItsResult, e: Effect, what: str) -> str:
    if result.effect_scale == "difference":
        head = (
            f"{what}: {_fmt(e.estimate)} (95% CI {_fmt(e.ci_low)} to {_fmt(e.ci_high)}; "
            f"p {_p(e.p)})"
        )
        if e.ci_low > 0 or e.ci_high < 0:
            direction = "rose" if e.estimate > 0 else "fell"
            return (
                f"{head} — the level {direction} by {_fmt(abs(e.estimate))} beyond what the "
                "earlier trend predicted."
            )
        return f"{head} — no clear change in level beyond what the earlier trend predicted."
    kind = "rate" if result.effect_scale == "rate ratio" else "odds"
    head = (
        f"{what}: {result.effect_scale} {e.estimate:.3f} "
        f"(95% CI {e.ci_low:.3f} to {e.ci_high:.3f}; p {_p(e.p)})"
    )
    if e.ci_high < 1:  # a clear fall: magnitudes, smallest first
        return (
            f"{head} — the {kind} fell by {(1 - e.estimate) * 100:.1f}% (95% CI "
            f"{(1 - e.ci_high) * 100:.1f}% to {(1 - e.ci_low) * 100:.1f}%) beyond what the "
            "earlier trend predicted."
        )
    if e.ci_low > 1:
        return (
            f"{head} — the {kind} rose by {(e.estimate - 1) * 100:.1f}% (95% CI "
            f"{(e.ci_low - 1) * 100:.1f}% to {(e.ci_high - 1) * 100:.1f}%) beyond what the "
            "earlier trend predicted."
        )
    return (
        f"{head} — a change of {_signed_pct(e.estimate)} (95% CI {_signed_pct(e.ci_low)} to "
        f"{_signed_pct(e.ci_high)}): no clear change beyond what the earlier trend predicted."
    )


def _describe_slope(result: ItsResult, e: Effect, what: str) -> str:
    if result.effect_scale == "difference":
        return (
            f"{what}: {_fmt(e.estimate)} per time unit "
            f"(95% CI {_fmt(e.ci_low)} to {_fmt(e.ci_high)}; "
            f"p {_p(e.p)})."
        )
    return (
        f"{what}: {result.effect_scale} {e.estimate:.4f} per time unit (95% CI {e.ci_low:.4f} to "
        f"{e.ci_high:.4f}; p {_p(e.p)}), i.e. {_signed_pct(e.estimate, 2)} per time unit "
        f"(95% CI {_signed_pct(e.ci_low, 2)} to {_signed_pct(e.ci_high, 2)}) on top of the "
        "earlier trend."
    )


def _summary_text(r: ItsResult) -> str:
    """The report :meth:`ItsResult.summary` returns."""
    family = {
        "poisson": "Poisson regression",
        "quasipoisson": f"quasi-Poisson regression (dispersion {r.dispersion:.2f})",
        "gaussian": "linear regression",
        "binomial": "logistic (binomial) regression",
    }[r.family]
    if r.ar1 is not None:
        family = f"linear regression with AR(1) errors (φ = {r.ar1:.2f})"
    what = r.outcome
    if r.exposure:
        what = f"{r.outcome} per {r.exposure}"
    lines = [
        f"Interrupted time series of {what}: segmented {family}.",
    ]
    n_t = r.interventions[0].n_before + r.interventions[0].n_after
    design = f"{n_t} time points"
    if r.control:
        design += f" in the treated series, compared with a control series (marked by {r.control})"
    lines.append(f"Data: {design}; n = {r.n_obs} rows. Standard errors: {r.covariance}.")
    if r.seasonality is not None:
        lines.append(f"Seasonality: {r.seasonality}.")
    trend_what = "Underlying trend before the intervention"
    if r.effect_scale == "difference":
        lines.append(
            f"{trend_what}: {_fmt(r.trend.estimate)} per time unit "
            f"(95% CI {_fmt(r.trend.ci_low)} to "
            f"{_fmt(r.trend.ci_high)})."
        )
    else:
        lines.append(
            f"{trend_what}: {r.effect_scale} {r.trend.estimate:.4f} per time unit (95% CI "
            f"{r.trend.ci_low:.4f} to {r.trend.ci_high:.4f})."
        )
    prefix = "Treated minus control, " if r.control else ""
    for ph in r.interventions:
        lines.append(
            f"Intervention {ph.intervention} (from {ph.start}; {ph.n_before} points before, "
            f"{ph.n_after} from its start):"
        )
        lines.append("  " + _describe_step(r, ph.step, f"{prefix}immediate change in level"))
        if ph.slope is not None:
            lines.append("  " + _describe_slope(r, ph.slope, f"{prefix}change in slope"))
    ac = r.autocorrelation
    verdict = (
        "little evidence of remaining autocorrelation"
        if ac.ljung_box_p >= 0.05
        else "evidence of remaining autocorrelation"
    )
    lines.append(
        f"Residuals: lag-1 autocorrelation {ac.acf[0]:.2f}; Ljung–Box p = {ac.ljung_box_p:.3g} at "
        f"{ac.lags} lags ({verdict})."
    )
    if r.control:
        assumption = (
            "the design assumes that, without the intervention, the treated series would have "
            "changed as the control series did."
        )
    else:
        assumption = (
            "the design assumes the earlier trend would have continued without the intervention "
            "and that nothing else changed at the same time."
        )
    lines.append(
        "Reading: the confidence interval shows the range of effects compatible with the data; "
        + assumption
    )
    if r.caveats:
        lines.append("Caveats:")
        lines.extend(f"  - {c}" for c in r.caveats)
    return "\n".join(lines)
