"""The plain-language report of an interrupted time series (``ItsResult.summary``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from careloop.analysis.effects import Effect

if TYPE_CHECKING:
    from careloop.analysis.its import ItsResult


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


def summary_text(r: ItsResult) -> str:
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
