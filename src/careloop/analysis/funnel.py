"""Funnel plots for comparing units (sites, hospitals, clinicians) on proportions and rates.

A funnel plot puts each unit's indicator (a proportion, or a rate per unit of
exposure) against its denominator, with control limits around a target that
narrow as the denominator grows: a unit outside the 95% limits is a possible
outlier, one outside the 99.8% limits a probable one. The method is
Spiegelhalter's:

* Spiegelhalter DJ. Funnel plots for comparing institutional performance.
  *Statistics in Medicine* 2005;24:1185–1202 — exact limits from the binomial
  (proportions) or Poisson (rates) distribution at the target, made smooth by
  interpolating between the integers (appendix A.1.1): with ``r`` the smallest
  count whose cumulative probability reaches ``p``,
  ``α = (P(R ≤ r) − p) / (P(R ≤ r) − P(R ≤ r − 1))`` and the ``p`` limit is
  ``(r − α) / n``. The normal approximation ``θ0 ± z_p · √(g(θ0)/n)`` is an
  option.
* Spiegelhalter DJ. Handling over-dispersion of performance indicators.
  *Qual Saf Health Care* 2005;14:347–351 — with more variation between units
  than chance allows (as usual with real institutions), z-scores
  ``z_i = (y_i − θ0)/s_i`` with ``s_i = √(g(θ0)/n_i)`` are winsorised (the most
  extreme 10% at each end set to the 10th/90th percentile) and give
  ``φ = Σ z_i² / I``. A *multiplicative* adjustment widens the limits by √φ; an
  *additive* (random-effects) one estimates the between-unit variance
  ``τ² = (Iφ − (I − 1)) / (Σ w_i − Σ w_i² / Σ w_i)`` with ``w_i = 1/s_i²``
  (DerSimonian–Laird; 0 if negative) and uses ``θ0 ± z_p · √(s_i² + τ²)``.
  Adjusted limits use the normal form, as in the paper; ``transform`` puts
  z-scores and limits on a variance-stabilising scale (arcsine square root for
  proportions, square root for rates) and back.

:func:`funnel` returns a :class:`FunnelResult` with each unit's value, z-score,
limits and flag, and the limit curves for drawing; :mod:`careloop.charts.funnel`
draws it (a Plotly figure, or SVG/PNG through Vega-Lite with no browser).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from careloop.analysis._frames import numeric_column, require_columns
from careloop.analysis.caveats import StatisticalWarning
from careloop.core.errors import InputError

Kind: TypeAlias = Literal["proportion", "rate"]
Overdispersion: TypeAlias = Literal["multiplicative", "additive"]
LimitMethod: TypeAlias = Literal["exact", "normal"]
Transform: TypeAlias = Literal["none", "arcsine", "sqrt"]

FloatArray = npt.NDArray[np.float64]

DEFAULT_LEVELS: tuple[float, ...] = (0.95, 0.998)
"""Spiegelhalter's two funnels: about 2 and 3 standard errors."""

FEW_UNITS = 10
"""With fewer units the over-dispersion estimate is unreliable (a caveat)."""


class OverdispersionWarning(StatisticalWarning):
    """The units vary more than chance allows but the limits were not adjusted."""


@dataclass(frozen=True)
class FunnelResult:
    """Units compared on a funnel plot: values, z-scores, limits and flags."""

    kind: str
    """``"proportion"`` or ``"rate"``."""
    target: float
    """θ0, the value the limits are centred on (before ``multiply``)."""
    target_source: str
    """``"given"`` or ``"pooled"`` (Σ numerators / Σ denominators)."""
    levels: tuple[float, ...]
    """Coverage of each pair of limits, e.g. (0.95, 0.998)."""
    limits_method: str
    """``"exact"`` (binomial/Poisson with Spiegelhalter's interpolation) or
    ``"normal"``; adjusted limits are always normal (on the transform's scale)."""
    transform: str
    """Scale of the z-scores and adjusted limits: ``"none"``, ``"arcsine"`` or ``"sqrt"``."""
    overdispersion: str | None
    """``"multiplicative"``, ``"additive"`` or None (limits not adjusted)."""
    phi: float
    """Over-dispersion factor φ: mean of the squared winsorised z-scores
    (1 expected without over-dispersion), estimated whatever the adjustment."""
    phi_p: float
    """p value of the χ² test of no over-dispersion (I·φ on I − 1 df with a
    pooled target, I df with a given one)."""
    tau2: float
    """Between-unit variance τ² of the additive model (0 if Iφ ≤ I − 1), on the
    transform's scale; computed whatever the adjustment."""
    winsorise: float
    """Fraction winsorised at each end of the z-scores before φ is estimated."""
    multiply: float
    """Factor the values, target and limits are shown multiplied by (100: percent)."""
    units: pd.DataFrame
    """One row per unit: unit, numerator, denominator, value, z (unadjusted),
    z_adjusted (for the chosen adjustment; equal to z without one),
    ``lower_<level>``/``upper_<level>`` for each level (e.g. ``lower_95``,
    ``upper_99_8``; multiplied by ``multiply``, as is ``value``), and flag:
    ``"above 99.8%"``, ``"above 95%"``, ``"within"``, ``"below 95%"``,
    ``"below 99.8%"`` (the outermost limit a unit is beyond)."""
    curve: pd.DataFrame
    """The limit curves for drawing: denominator and the limit columns."""
    caveats: tuple[str, ...] = ()
    """Statistical caveats (also emitted as warnings)."""
    unit_label: str = "unit"
    """Name of the unit column."""
    numerator_label: str = "numerator"
    """Name of the numerator column."""
    denominator_label: str = "denominator"
    """Name of the denominator column."""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Details for reports (the winsorisation bounds)."""

    def flagged(self) -> pd.DataFrame:
        """The units beyond any limit, most extreme first."""
        out = self.units[self.units["flag"] != "within"]
        return out.reindex(out["z_adjusted"].abs().sort_values(ascending=False).index)

    def summary(self) -> str:
        """A short plain-language report."""
        what = "proportion" if self.kind == "proportion" else "rate"
        scale = f" × {self.multiply:g}" if self.multiply != 1 else ""
        lines = [
            f"Funnel plot of {len(self.units)} {self.unit_label}s: {self.numerator_label} "
            f"per {self.denominator_label} ({what}{scale}).",
            f"Target {self.target * self.multiply:.4g} ({self.target_source}); limits "
            + ", ".join(f"{lv:.1%}".replace(".0%", "%") for lv in self.levels)
            + f" ({self.limits_method if self.overdispersion is None else 'normal'}).",
            f"Over-dispersion φ = {self.phi:.3g} (χ² test p = {self.phi_p:.3g}); "
            f"τ² = {self.tau2:.3g}.",
        ]
        if self.overdispersion:
            lines.append(f"Limits adjusted for over-dispersion ({self.overdispersion}).")
        flagged = self.flagged()
        if flagged.empty:
            lines.append("No unit is beyond the limits.")
        for _, r in flagged.iterrows():
            lines.append(
                f"  {r['unit']}: {r['value']:.4g} from {r['denominator']:g} — {r['flag']} "
                f"(z {r['z_adjusted']:.2f})"
            )
        if self.caveats:
            lines.append("Caveats:")
            lines.extend(f"  - {c}" for c in self.caveats)
        return "\n".join(lines)


def level_suffix(level: float) -> str:
    """Column suffix of a level: 0.95 → ``"95"``, 0.998 → ``"99_8"``."""
    text = f"{level * 100:.10g}"
    return text.replace(".", "_")


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------


def exact_limit(p: float, n: Any, target: float, kind: Kind) -> FloatArray:
    """Spiegelhalter's interpolated exact ``p`` limit for denominators ``n``.

    Args:
        p: Cumulative probability of the limit (0.975 for the upper 95% limit).
        n: Denominators: numbers of cases (proportion) or exposures (rate).
        target: θ0, the proportion or the rate per unit of exposure.
        kind: ``"proportion"`` (binomial) or ``"rate"`` (Poisson with mean θ0·n).

    Returns:
        The limits on the proportion or rate scale, clipped to [0, 1] for
        proportions and to ≥ 0 for rates.
    """
    nn = np.asarray(n, dtype=float)
    if kind == "proportion":
        dist: Any = stats.binom(nn, target)
    else:
        dist = stats.poisson(target * nn)
    r = dist.ppf(p)
    f_r = dist.cdf(r)
    f_below = dist.cdf(r - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(f_r > f_below, (f_r - p) / (f_r - f_below), 0.0)
        limit = (r - alpha) / nn
    upper = 1.0 if kind == "proportion" else np.inf
    return np.asarray(np.clip(limit, 0.0, upper), dtype=float)


def _variance(target: float, kind: str) -> float:
    """g(θ0): the variance of one case/unit of exposure at the target."""
    return target * (1 - target) if kind == "proportion" else target


def _to_scale(values: Any, transform: str) -> FloatArray:
    v = np.asarray(values, dtype=float)
    if transform == "arcsine":
        return np.asarray(np.arcsin(np.sqrt(np.clip(v, 0.0, 1.0))), dtype=float)
    if transform == "sqrt":
        return np.asarray(np.sqrt(np.clip(v, 0.0, None)), dtype=float)
    return v


def _from_scale(values: Any, transform: str, kind: str) -> FloatArray:
    v = np.asarray(values, dtype=float)
    if transform == "arcsine":
        v = np.sin(np.clip(v, 0.0, math.pi / 2)) ** 2
    elif transform == "sqrt":
        v = np.clip(v, 0.0, None) ** 2
    upper = 1.0 if kind == "proportion" else np.inf
    return np.asarray(np.clip(v, 0.0, upper), dtype=float)


def _scale_se(n: Any, target: float, kind: str, transform: str) -> FloatArray:
    """Standard error of one unit's value at the target, on the transform's scale."""
    nn = np.asarray(n, dtype=float)
    if transform == "arcsine":
        return np.asarray(1 / (2 * np.sqrt(nn)), dtype=float)
    if transform == "sqrt":
        return np.asarray(1 / (2 * np.sqrt(nn)), dtype=float)
    return np.asarray(np.sqrt(_variance(target, kind) / nn), dtype=float)


def winsorised(z: FloatArray, fraction: float) -> FloatArray:
    """z with values below the ``fraction`` and above the 1 − ``fraction`` quantiles
    set to those quantiles (numpy's linear quantiles, R's type 7)."""
    if fraction <= 0:
        return z.copy()
    lo, hi = np.quantile(z, [fraction, 1 - fraction])
    return np.asarray(np.clip(z, lo, hi), dtype=float)


# --------------------------------------------------------------------------
# The funnel
# --------------------------------------------------------------------------


def funnel(
    df: pd.DataFrame,
    *,
    numerator: str,
    denominator: str,
    unit: str = "site",
    kind: Kind = "proportion",
    target: float | None = None,
    overdispersion: Overdispersion | None = None,
    limits: LimitMethod = "exact",
    levels: Sequence[float] = DEFAULT_LEVELS,
    winsorise: float = 0.1,
    transform: Transform = "none",
    multiply: float = 1,
    curve_points: int = 200,
) -> FunnelResult:
    """Compare units on a funnel plot with Spiegelhalter's limits.

    Long because it documents twelve options and then follows Spiegelhalter's
    method in order; the separable steps (unit totals, target, dispersion,
    limits) are helpers below.

    Args:
        df: One row per unit (rows of the same unit are summed).
        numerator: Events (cases with the outcome; or observed counts for rates).
        denominator: Cases (proportions) or exposure such as patient-days
            (rates). For standardised ratios (observed/expected) use the
            expected counts here with ``kind="rate"`` and ``target=1``.
        unit: Column naming the unit (site, hospital…).
        kind: ``"proportion"`` (binomial) or ``"rate"`` (Poisson).
        target: θ0; default the pooled value Σ numerators / Σ denominators.
        overdispersion: None, ``"multiplicative"`` (φ) or ``"additive"`` (τ²).
        limits: ``"exact"`` (interpolated binomial/Poisson) or ``"normal"``.
        levels: Coverage of each pair of limits.
        winsorise: Fraction of z-scores winsorised at each end for φ (0.1).
        transform: ``"none"``; ``"arcsine"`` (proportions) or ``"sqrt"`` (rates)
            for z-scores and adjusted limits on a variance-stabilising scale.
        multiply: Show values, target and limits multiplied (100: percent,
            1000: per 1,000).
        curve_points: Number of denominators the drawn limit curves are
            evaluated at.

    Returns:
        A :class:`FunnelResult`.

    Raises:
        InputError: Missing columns, negative or non-numeric values, more
            events than cases, a target outside its range, fewer than 2 units,
            non-integer cases with exact binomial limits, or options out of range.

    Warns:
        OverdispersionWarning: φ is significantly above 1 but the limits were
            not adjusted. StatisticalWarning: other caveats (few units, units
            with a zero denominator left out).
    """
    _check_options(kind, overdispersion, limits, levels, winsorise, transform, multiply)
    require_columns(df, {"numerator": numerator, "denominator": denominator, "unit": unit})
    caveats: list[str] = []
    data = _unit_totals(
        df,
        numerator=numerator,
        denominator=denominator,
        unit=unit,
        kind=kind,
        exact_binomial=kind == "proportion" and limits == "exact" and overdispersion is None,
        caveats=caveats,
    )
    num = data[numerator].to_numpy(dtype=float)
    den = data[denominator].to_numpy(dtype=float)
    target, target_source = _resolve_target(target, num, den, kind)

    value = num / den
    t0 = float(_to_scale(target, transform))
    se = _scale_se(den, target, kind, transform)
    z = (_to_scale(value, transform) - t0) / se
    phi, phi_p, tau2 = _dispersion(z, se, winsorise=winsorise, pooled=target_source == "pooled")

    if overdispersion == "multiplicative":
        spread = se * math.sqrt(max(phi, 1.0))
        if phi < 1:
            caveats.append(f"φ = {phi:.3g} < 1: no multiplicative widening applied (φ taken as 1).")
    elif overdispersion == "additive":
        spread = np.sqrt(se**2 + tau2)
    else:
        spread = se
    z_adj = (_to_scale(value, transform) - t0) / spread

    if overdispersion is None and phi_p < 0.05 and phi > 1:
        warnings.warn(
            f"Over-dispersion: φ = {phi:.3g} (χ² p = {phi_p:.3g}); the units vary more than "
            "chance allows, so many will fall outside unadjusted limits. Consider "
            "overdispersion='multiplicative' or 'additive'.",
            OverdispersionWarning,
            stacklevel=2,
        )
        caveats.append(f"Over-dispersion (φ = {phi:.3g}, p = {phi_p:.3g}) but limits not adjusted.")

    limits_at = functools.partial(
        _limits_at,
        target=target,
        kind=kind,
        transform=transform,
        overdispersion=overdispersion,
        limits=limits,
        levels=levels,
        phi=phi,
        tau2=tau2,
    )
    unit_limits = limits_at(den)
    units = pd.DataFrame(
        {
            "unit": data[unit].to_numpy(),
            "numerator": num,
            "denominator": den,
            "value": value * multiply,
            "z": z,
            "z_adjusted": z_adj,
        }
    )
    for key, arr in unit_limits.items():
        units[key] = arr * multiply
    units["flag"] = _flags(value, unit_limits, levels)

    grid = _grid(den, kind, limits, overdispersion, curve_points)
    curve = pd.DataFrame({"denominator": grid})
    for key, arr in limits_at(grid).items():
        curve[key] = arr * multiply

    for caveat in caveats:
        if not caveat.startswith("Over-dispersion ("):
            warnings.warn(caveat, StatisticalWarning, stacklevel=2)
    lo_w, hi_w = np.quantile(z, [winsorise, 1 - winsorise]) if winsorise > 0 else (z.min(), z.max())
    return FunnelResult(
        kind=kind,
        target=target,
        target_source=target_source,
        levels=tuple(float(lv) for lv in levels),
        limits_method=limits,
        transform=transform,
        overdispersion=overdispersion,
        phi=phi,
        phi_p=phi_p,
        tau2=tau2,
        winsorise=winsorise,
        multiply=float(multiply),
        units=units,
        curve=curve,
        caveats=tuple(caveats),
        unit_label=unit,
        numerator_label=numerator,
        denominator_label=denominator,
        extra={"winsorised_z_bounds": (float(lo_w), float(hi_w))},
    )


def _dispersion(
    z: FloatArray, se: FloatArray, *, winsorise: float, pooled: bool
) -> tuple[float, float, float]:
    """Return φ from winsorised z-scores, its χ² p-value and the additive τ² (moments)."""
    zw = winsorised(z, winsorise)
    n_units = len(z)
    phi = float(np.mean(zw**2))
    df_chi = n_units - 1 if pooled else n_units
    phi_p = float(stats.chi2.sf(n_units * phi, df_chi))
    w = 1 / se**2
    denom = w.sum() - (w**2).sum() / w.sum()
    tau2 = max(0.0, float((n_units * phi - (n_units - 1)) / denom)) if denom > 0 else 0.0
    return phi, phi_p, tau2


def _limits_at(
    n: FloatArray,
    *,
    target: float,
    kind: Kind,
    transform: Transform,
    overdispersion: Overdispersion | None,
    limits: LimitMethod,
    levels: Sequence[float],
    phi: float,
    tau2: float,
) -> dict[str, FloatArray]:
    """Return the lower and upper limit at each denominator in ``n``, for every level."""
    t0 = float(_to_scale(target, transform))
    out: dict[str, FloatArray] = {}
    s = _scale_se(n, target, kind, transform)
    if overdispersion == "multiplicative":
        s = s * math.sqrt(max(phi, 1.0))
    elif overdispersion == "additive":
        s = np.sqrt(s**2 + tau2)
    for level in levels:
        suffix = level_suffix(level)
        lower_p, upper_p = (1 - level) / 2, 1 - (1 - level) / 2
        if overdispersion is None and limits == "exact":
            lo = exact_limit(lower_p, n, target, kind)
            hi = exact_limit(upper_p, n, target, kind)
        else:
            zq = float(stats.norm.ppf(upper_p))
            lo = _from_scale(t0 - zq * s, transform, kind)
            hi = _from_scale(t0 + zq * s, transform, kind)
        out[f"lower_{suffix}"] = lo
        out[f"upper_{suffix}"] = hi
    return out


def _unit_totals(
    df: pd.DataFrame,
    *,
    numerator: str,
    denominator: str,
    unit: str,
    kind: Kind,
    exact_binomial: bool,
    caveats: list[str],
) -> pd.DataFrame:
    """Check the counts and sum them per unit, leaving out units that cannot be placed.

    Caveats (rows with missing values, units with a zero denominator, few units) are
    appended to ``caveats``; anything that makes the plot meaningless raises.
    """
    data = df[[unit, numerator, denominator]].copy()
    for col in (numerator, denominator):
        data[col] = numeric_column(data, col, allow_missing=True)
    n_rows = len(data)
    data = data.dropna()
    if len(data) < n_rows:
        caveats.append(f"{n_rows - len(data)} rows with missing values were left out.")
    if (data[[numerator, denominator]] < 0).any().any():
        raise InputError(f"{numerator!r} and {denominator!r} must not be negative.")
    data = data.groupby(unit, sort=True, as_index=False)[[numerator, denominator]].sum()
    zero = data[denominator] == 0
    if zero.any():
        caveats.append(
            f"{int(zero.sum())} unit(s) with a zero denominator cannot be placed "
            "and were left out: " + ", ".join(map(str, data.loc[zero, unit])) + "."
        )
        if (data.loc[zero, numerator] > 0).any():
            raise InputError(f"A unit has events but a zero {denominator!r}; check the data.")
        data = data[~zero].reset_index(drop=True)
    if len(data) < 2:
        raise InputError("A funnel plot needs at least 2 units with a positive denominator.")
    num = data[numerator].to_numpy(dtype=float)
    den = data[denominator].to_numpy(dtype=float)
    if kind == "proportion" and (num > den).any():
        bad_unit = data.loc[num > den, unit].iloc[0]
        raise InputError(
            f"Unit {bad_unit!r} has more events ({numerator}) than cases ({denominator})."
        )
    if exact_binomial and not np.allclose(den, np.round(den)):
        raise InputError(
            "Exact binomial limits need whole numbers of cases; use limits='normal' for "
            "non-integer denominators."
        )
    if len(data) < FEW_UNITS:
        caveats.append(
            f"Only {len(data)} units: the over-dispersion estimate (φ, τ²) is unreliable with "
            f"fewer than {FEW_UNITS}."
        )
    return data


def _resolve_target(
    target: float | None, num: FloatArray, den: FloatArray, kind: Kind
) -> tuple[float, str]:
    """Return θ0 and where it came from: the given target, or the pooled value."""
    target_source = "given"
    if target is None:
        target = float(num.sum() / den.sum())
        target_source = "pooled"
    target = float(target)
    if kind == "proportion" and not 0 < target < 1:
        raise InputError(
            f"The target proportion must be between 0 and 1 (exclusive); got {target:g}."
        )
    if kind == "rate" and not target > 0:
        raise InputError(f"The target rate must be positive; got {target:g}.")
    return target, target_source


def _check_options(
    kind: str,
    overdispersion: str | None,
    limits: str,
    levels: Sequence[float],
    winsorise: float,
    transform: str,
    multiply: float,
) -> None:
    if kind not in ("proportion", "rate"):
        raise InputError(f"kind must be 'proportion' or 'rate'; got {kind!r}.")
    if overdispersion not in (None, "multiplicative", "additive"):
        raise InputError(
            f"overdispersion must be None, 'multiplicative' or 'additive'; got {overdispersion!r}."
        )
    if limits not in ("exact", "normal"):
        raise InputError(f"limits must be 'exact' or 'normal'; got {limits!r}.")
    if not levels or any(not 0 < lv < 1 for lv in levels):
        raise InputError(
            f"levels must be coverages between 0 and 1, e.g. (0.95, 0.998); got {levels!r}."
        )
    if list(levels) != sorted(levels) or len(set(levels)) != len(levels):
        raise InputError(f"levels must be distinct and increasing; got {levels!r}.")
    if not 0 <= winsorise < 0.5:
        raise InputError(f"winsorise must be from 0 to below 0.5; got {winsorise!r}.")
    allowed = {"proportion": ("none", "arcsine"), "rate": ("none", "sqrt")}[kind]
    if transform not in allowed:
        raise InputError(f"transform for a {kind} must be one of {allowed}; got {transform!r}.")
    if not multiply > 0:
        raise InputError(f"multiply must be positive; got {multiply!r}.")


def _flags(value: FloatArray, lims: dict[str, FloatArray], levels: Sequence[float]) -> list[str]:
    flags = ["within"] * len(value)
    for level in levels:  # increasing: the outermost limit a unit is beyond wins
        suffix = level_suffix(level)
        name = f"{level * 100:.10g}%"
        for i, v in enumerate(value):
            if v > lims[f"upper_{suffix}"][i]:
                flags[i] = f"above {name}"
            elif v < lims[f"lower_{suffix}"][i]:
                flags[i] = f"below {name}"
    return flags


def _grid(
    den: FloatArray, kind: str, limits: str, overdispersion: str | None, count: int
) -> FloatArray:
    lo = max(float(den.min()) * 0.8, 1e-9)
    hi = float(den.max()) * 1.1
    grid = np.geomspace(lo, hi, max(count, 10))
    grid = np.union1d(grid, den)
    if kind == "proportion" and limits == "exact" and overdispersion is None:
        # binomial limits exist for whole numbers of cases only
        grid = np.unique(np.maximum(1.0, np.round(grid)))
    return np.asarray(grid, dtype=float)
