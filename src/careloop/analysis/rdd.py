"""Regression discontinuity designs: local polynomial estimates with robust inference.

:func:`estimate` wraps the ``rdrobust`` package (Calonico, Cattaneo, Farrell &
Titiunik), the reference implementation of local polynomial RD estimation with
MSE-optimal bandwidths and robust bias-corrected confidence intervals
(Calonico, Cattaneo & Titiunik, *Econometrica* 2014). careloop adds column
names, checks that turn rdrobust's failures into clear errors, a result a
clinician can read, an rdplot-style binned scatter plot (Plotly) and a
density (manipulation) test of the running variable.

Three effects are reported, as rdrobust does:

- ``conventional``: the local polynomial estimate with its conventional CI
  (valid only if the bandwidth is small enough for the bias to be negligible);
- ``bias_corrected``: the estimate minus its estimated leading bias, with the
  conventional standard error (shown for completeness, not for inference);
- ``robust``: the bias-corrected estimate with the robust standard error that
  accounts for the bias estimation — **the one to report**.

The density test uses the ``rddensity`` package (Cattaneo, Jansson & Ma,
*JASA* 2020), the local polynomial density discontinuity test by rdrobust's
authors; it is on PyPI, so careloop does not implement a McCrary test itself.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from careloop.analysis._frames import require_columns
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.effects import Effect
from careloop.core.errors import InputError

__all__ = ["DensityTest", "RddResult", "density_test", "estimate"]

Kernel = Literal["triangular", "epanechnikov", "uniform"]

_KERNELS = {"triangular": "tri", "epanechnikov": "epa", "uniform": "uni"}
_BWSELECT = (
    "mserd",
    "msetwo",
    "msesum",
    "msecomb1",
    "msecomb2",
    "cerrd",
    "certwo",
    "cersum",
    "cercomb1",
    "cercomb2",
)

MIN_POINTS_PER_SIDE = 10
"""Fewest observations inside the bandwidth on each side that :func:`estimate` accepts."""


@dataclass(frozen=True)
class DensityTest:
    """A test of a jump in the density of the running variable at the cut-off.

    A jump suggests that units sort themselves around the cut-off (e.g. a
    score nudged to qualify), which breaks the RD design. A large p value is
    no proof of no manipulation, only of no detectable jump.
    """

    statistic: float
    """Robust bias-corrected t statistic for density right minus left."""
    p: float
    """Two-sided p value for no jump in density."""
    density_left: float
    """Estimated density just below the cut-off."""
    density_right: float
    """Estimated density just above the cut-off."""
    h: tuple[float, float]
    """Bandwidths (left, right)."""
    n_left: int
    """Observations below the cut-off."""
    n_right: int
    """Observations at or above the cut-off."""
    n_h_left: int
    """Observations within the left bandwidth."""
    n_h_right: int
    """Observations within the right bandwidth."""
    method: str = "rddensity (Cattaneo, Jansson & Ma 2020), jackknife standard errors"
    """How the test was computed."""

    def summary(self) -> str:
        """Plain-language reading of the test."""
        verdict = (
            "a jump in the number of units at the cut-off: units may have sorted "
            "themselves around it, so read the RD estimate with great care"
            if self.p < 0.05
            else "no detectable jump in the number of units at the cut-off"
        )
        return (
            f"Density (manipulation) test: density {self.density_left:.4g} just below vs "
            f"{self.density_right:.4g} just above the cut-off; T = {self.statistic:.3f}, "
            f"p = {self.p:.3f}: {verdict}. ({self.method}; {self.n_h_left} and "
            f"{self.n_h_right} observations within bandwidths {self.h[0]:.4g} and "
            f"{self.h[1]:.4g}.)"
        )


@dataclass(frozen=True, eq=False)
class RddResult:
    """A regression discontinuity estimate (sharp or fuzzy) at one cut-off."""

    outcome: str
    """Outcome column."""
    running: str
    """Running variable (score) column."""
    cutoff: float
    """Cut-off of the running variable; units at or above it are on the right."""
    design: Literal["sharp", "fuzzy"]
    """Sharp (treatment switches at the cut-off) or fuzzy (its probability jumps)."""
    conventional: Effect
    """Conventional local polynomial estimate and CI."""
    bias_corrected: Effect
    """Bias-corrected estimate with the conventional standard error."""
    robust: Effect
    """Bias-corrected estimate with the robust CI and p value: report this one."""
    se_conventional: float
    """Conventional standard error."""
    se_robust: float
    """Robust standard error."""
    h: tuple[float, float]
    """Main bandwidth (left, right) of the point estimate."""
    b: tuple[float, float]
    """Bias bandwidth (left, right) of the bias correction."""
    n_left: int
    """Observations below the cut-off (complete cases)."""
    n_right: int
    """Observations at or above the cut-off."""
    n_h_left: int
    """Observations within the main bandwidth below the cut-off."""
    n_h_right: int
    """Observations within the main bandwidth at or above the cut-off."""
    p: int
    """Order of the local polynomial of the point estimate."""
    q: int
    """Order of the local polynomial of the bias correction."""
    kernel: str
    """Kernel weighting observations by distance to the cut-off."""
    bwselect: str
    """Bandwidth selector (or ``"manual"``)."""
    vce: str
    """Variance estimator."""
    covariates: tuple[str, ...] = ()
    """Covariates adjusted for."""
    first_stage: Effect | None = None
    """Fuzzy designs: jump in the probability of treatment at the cut-off (conventional)."""
    caveats: tuple[str, ...] = ()
    """Things to read the result with care for."""
    data: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    """Complete cases used (outcome, running variable, treatment, covariates)."""
    running_all: pd.Series = field(default_factory=lambda: pd.Series(dtype=float), repr=False)
    """Every non-missing value of the running variable (for the density test)."""

    def summary(self) -> str:
        """A plain-language summary a clinician can read."""
        kind = (
            "sharp (everyone at or above the cut-off is treated)"
            if self.design == "sharp"
            else "fuzzy (the chance of treatment jumps at the cut-off)"
        )
        sig = "p<0.001" if self.robust.p < 0.001 else f"p={self.robust.p:.3f}"
        lines = [
            f"Regression discontinuity: {self.outcome} at {self.running} = {self.cutoff:g}, "
            f"{kind}.",
            f"Estimated jump in {self.outcome} at the cut-off: {self.conventional.estimate:.4g} "
            f"(robust 95% CI {self.robust.ci_low:.4g} to {self.robust.ci_high:.4g}; {sig}).",
            f"Based on {self.n_h_left} units just below and {self.n_h_right} just above the "
            f"cut-off (within {self.h[0]:.4g} and {self.h[1]:.4g} of it; {self.n_left} and "
            f"{self.n_right} units in all), local polynomial of order {self.p}, "
            f"{self.kernel} kernel, {self.bwselect} bandwidth.",
        ]
        if self.first_stage is not None:
            lines.append(
                f"First stage: the probability of treatment jumps by "
                f"{self.first_stage.estimate:.3g} (95% CI {self.first_stage.ci_low:.3g} to "
                f"{self.first_stage.ci_high:.3g}); the effect above is for units whose "
                "treatment follows the cut-off (compliers)."
            )
        if self.covariates:
            lines.append(f"Adjusted for {', '.join(self.covariates)}.")
        lines.append(
            "The effect applies to units near the cut-off; it rests on units just either side "
            "being comparable (check the density test and covariates at the cut-off)."
        )
        lines.extend(f"Caveat: {c}" for c in self.caveats)
        return "\n".join(lines)

    def table(self) -> pd.DataFrame:
        """The three estimates with standard error, CI and p value (rdrobust's table)."""
        rows = []
        for name, eff, se in (
            ("conventional", self.conventional, self.se_conventional),
            ("bias-corrected", self.bias_corrected, self.se_conventional),
            ("robust", self.robust, self.se_robust),
        ):
            rows.append(
                {
                    "method": name,
                    "estimate": eff.estimate,
                    "se": se,
                    "ci_low": eff.ci_low,
                    "ci_high": eff.ci_high,
                    "p": eff.p,
                }
            )
        return pd.DataFrame(rows)

    def density_test(self) -> DensityTest:
        """Manipulation test of the running variable at the cut-off (see :func:`density_test`)."""
        values = self.running_all if len(self.running_all) else self.data[self.running]
        return density_test(values, cutoff=self.cutoff)

    def binned(self, *, nbins: int | tuple[int, int] | None = None, order: int = 4) -> Any:
        """rdplot's bins and global polynomial fits (``rdrobust.rdplot`` output)."""
        from rdrobust import rdplot

        y = self.data[self.outcome].to_numpy(dtype=float)
        x = self.data[self.running].to_numpy(dtype=float)
        kwargs: dict[str, Any] = {"c": self.cutoff, "p": order, "hide": True}
        if nbins is not None:
            kwargs["nbins"] = list(nbins) if isinstance(nbins, tuple) else nbins
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with contextlib.redirect_stdout(io.StringIO()):
                out = rdplot(y, x, **kwargs)
        _reemit(caught)
        return out


def _reemit(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    messages = []
    for w in caught:
        text = str(w.message)
        if text not in messages:
            messages.append(text)
            warnings.warn(f"rdrobust: {text}", StatisticalWarning, stacklevel=3)
    return messages


def _pair(value: Any) -> tuple[float, float]:
    arr = np.asarray(value, dtype=float).ravel()
    return (float(arr[0]), float(arr[-1]))


def _numeric(df: pd.DataFrame, name: str) -> pd.Series:
    col = df[name]
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float)
    if not pd.api.types.is_numeric_dtype(col):
        raise InputError(f"Column {name!r} must be numeric for a regression discontinuity.")
    return col.astype(float)


def _effect(coef: Any, ci: Any, pv: Any, row: int) -> Effect:
    c = np.asarray(coef, dtype=float).ravel()
    lo_hi = np.asarray(ci, dtype=float)
    p = np.asarray(pv, dtype=float).ravel()
    return Effect(float(c[row]), float(lo_hi[row, 0]), float(lo_hi[row, 1]), float(p[row]))


def estimate(
    df: pd.DataFrame,
    *,
    outcome: str,
    running: str,
    cutoff: float = 0.0,
    covariates: Sequence[str] | None = None,
    fuzzy: str | None = None,
    p: int = 1,
    q: int | None = None,
    kernel: Kernel = "triangular",
    bwselect: str = "mserd",
    h: float | tuple[float, float] | None = None,
    b: float | tuple[float, float] | None = None,
    vce: str = "nn",
    cluster: str | None = None,
    min_points: int = MIN_POINTS_PER_SIDE,
) -> RddResult:
    """Estimate the jump in ``outcome`` where ``running`` crosses ``cutoff``.

    Long because it documents fourteen options, most of them rdrobust's, and turns them
    into one checked rdrobust call whose printed output and warnings it captures.

    Parameters
    ----------
    df:
        One row per unit. Rows missing the outcome, running variable,
        treatment (fuzzy) or a covariate are left out.
    outcome, running:
        Column names; units with ``running >= cutoff`` are on the right
        (treated in a sharp design).
    covariates:
        Columns to adjust for (they should not jump at the cut-off).
    fuzzy:
        Column with the treatment actually received (0/1) for a fuzzy design.
    p, q:
        Orders of the local polynomial for the estimate (default 1, local
        linear) and for the bias correction (default ``p + 1``).
    kernel:
        ``"triangular"`` (default), ``"epanechnikov"`` or ``"uniform"``.
    bwselect:
        rdrobust's bandwidth selector: ``"mserd"`` (one MSE-optimal bandwidth,
        default), ``"msetwo"`` (one per side), ``"cerrd"`` … Ignored if ``h``
        is given.
    h, b:
        Manual main and bias bandwidths (one number or a (left, right) pair).
    vce:
        Variance estimator: ``"nn"`` (nearest neighbours, default), ``"hc0"`` …
        ``"hc3"``; with ``cluster``, cluster-robust.
    min_points:
        Fewest observations within ``h`` on each side; fewer is an error
        (default 10), fewer than 3 × that a warning.
    """
    try:
        from rdrobust import rdrobust
    except ImportError as exc:  # pragma: no cover - rdrobust is a dependency
        raise InputError("The rdrobust package is needed for regression discontinuity.") from exc

    if kernel not in _KERNELS:
        raise InputError(f"Unknown kernel {kernel!r}: use triangular, epanechnikov or uniform.")
    if h is None and bwselect not in _BWSELECT:
        raise InputError(
            f"Unknown bandwidth selector {bwselect!r}: use one of {', '.join(_BWSELECT)}."
        )
    if p < 0 or (q is not None and q < p):
        raise InputError("The polynomial orders must satisfy 0 <= p <= q.")
    covs = tuple(covariates or ())
    require_columns(
        df,
        [
            ("outcome", outcome),
            ("running", running),
            ("fuzzy", fuzzy),
            *(("covariate", c) for c in covs),
            ("cluster", cluster),
        ],
    )
    columns = [outcome, running, *([fuzzy] if fuzzy else []), *covs]
    frame = pd.DataFrame({c: _numeric(df, c) for c in dict.fromkeys(columns)})
    if cluster is not None:
        frame["__cluster__"] = pd.factorize(df[cluster])[0]
        frame.loc[df[cluster].isna().to_numpy(), "__cluster__"] = np.nan
    complete = frame.notna().all(axis=1)
    caveats: list[str] = []
    dropped = int((~complete).sum())
    if dropped:
        caveats.append(f"{dropped} row(s) with missing values were left out.")
    data = frame[complete].reset_index(drop=True)
    x = data[running].to_numpy()
    n_left, n_right = int((x < cutoff).sum()), int((x >= cutoff).sum())
    need = max(min_points, (q if q is not None else p + 1) + 2)
    if n_left < need or n_right < need:
        raise InputError(
            f"Too few observations on one side of the cut-off {cutoff:g}: {n_left} below and "
            f"{n_right} at or above; at least {need} on each side are needed."
        )
    if h is not None:
        _check_bandwidth(x, cutoff, h, min_points)

    kwargs = _rdrobust_options(
        data,
        cutoff=cutoff,
        p=p,
        q=q,
        kernel=kernel,
        bwselect=bwselect,
        vce=vce,
        h=h,
        b=b,
        fuzzy=fuzzy,
        covs=covs,
        clustered=cluster is not None,
    )
    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("always")
        try:
            fit = rdrobust(data[outcome].to_numpy(), x, **kwargs)
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
            raise InputError(
                f"rdrobust could not fit the local polynomials: {exc} "
                "Check that there are enough distinct values of the running variable on each "
                "side of the cut-off, or widen the bandwidth."
            ) from exc
    caveats.extend(_reemit(caught))
    for line in printed.getvalue().splitlines():
        if line.strip() and "Mass points" in line:
            caveats.append(
                "The running variable has repeated values (mass points); rdrobust adjusted "
                "for them, but a discrete score weakens the design."
            )

    n_h = [int(v) for v in fit.N_h]
    if min(n_h) < min_points:
        raise InputError(
            f"The selected bandwidth holds {n_h[0]} observation(s) below and {n_h[1]} above the "
            f"cut-off; at least {min_points} on each side are needed for a trustworthy estimate."
        )
    if min(n_h) < 3 * min_points:
        caveats.append(
            f"Only {min(n_h)} observations within the bandwidth on one side: "
            "the estimate is imprecise."
        )
        warnings.warn(caveats[-1], StatisticalWarning, stacklevel=2)

    coef = fit.coef.to_numpy()
    ci = fit.ci.to_numpy()
    pv = fit.pv.to_numpy()
    se = np.asarray(fit.se, dtype=float).ravel()
    if not np.all(np.isfinite(np.concatenate([coef.ravel(), ci.ravel(), se]))):
        raise InputError(
            "rdrobust returned a non-finite estimate or standard error; the data near the "
            "cut-off cannot support this fit (too few or too few distinct values)."
        )
    first_stage = None
    if fuzzy:
        first_stage = _effect(fit.tau_T, fit.ci_T, fit.pv_T, 0)
        if abs(first_stage.estimate) < 0.1:
            caveats.append(
                f"The first stage is weak (jump in treatment probability "
                f"{first_stage.estimate:.3g}); the fuzzy estimate is unstable."
            )
            warnings.warn(caveats[-1], StatisticalWarning, stacklevel=2)
    bws = fit.bws.to_numpy(dtype=float)
    return RddResult(
        outcome=outcome,
        running=running,
        cutoff=float(cutoff),
        design="fuzzy" if fuzzy else "sharp",
        conventional=_effect(coef, ci, pv, 0),
        bias_corrected=_effect(coef, ci, pv, 1),
        robust=_effect(coef, ci, pv, 2),
        se_conventional=float(se[0]),
        se_robust=float(se[2]),
        h=(float(bws[0, 0]), float(bws[0, 1])),
        b=(float(bws[1, 0]), float(bws[1, 1])),
        n_left=int(fit.N[0]),
        n_right=int(fit.N[1]),
        n_h_left=n_h[0],
        n_h_right=n_h[1],
        p=int(fit.p),
        q=int(fit.q),
        kernel=kernel,
        bwselect="manual" if h is not None else bwselect,
        vce=vce if cluster is None else f"{vce} (clustered by {cluster})",
        covariates=covs,
        first_stage=first_stage,
        caveats=tuple(caveats),
        data=data,
        running_all=frame[running].dropna().reset_index(drop=True),
    )


def _check_bandwidth(
    x: npt.NDArray[np.float64], cutoff: float, h: float | tuple[float, float], min_points: int
) -> None:
    """Refuse a bandwidth that is not positive or holds too few points on a side."""
    hl, hr = _pair(h)
    if not (hl > 0 and hr > 0 and math.isfinite(hl) and math.isfinite(hr)):
        raise InputError("The bandwidth h must be one or two positive numbers.")
    in_l = int(((x < cutoff) & (x >= cutoff - hl)).sum())
    in_r = int(((x >= cutoff) & (x <= cutoff + hr)).sum())
    if in_l < min_points or in_r < min_points:
        raise InputError(
            f"The bandwidth h = ({hl:g}, {hr:g}) holds {in_l} observation(s) below and "
            f"{in_r} above the cut-off; at least {min_points} on each side are needed. "
            "Widen the bandwidth or let it be selected from the data (h=None)."
        )


def _rdrobust_options(
    data: pd.DataFrame,
    *,
    cutoff: float,
    p: int,
    q: int | None,
    kernel: Kernel,
    bwselect: str,
    vce: str,
    h: float | tuple[float, float] | None,
    b: float | tuple[float, float] | None,
    fuzzy: str | None,
    covs: tuple[str, ...],
    clustered: bool,
) -> dict[str, Any]:
    """The keyword arguments of the rdrobust call (the options given, in its spelling)."""
    kwargs: dict[str, Any] = {
        "c": cutoff,
        "p": p,
        "kernel": _KERNELS[kernel],
        "bwselect": bwselect,
        "vce": vce,
    }
    if q is not None:
        kwargs["q"] = q
    if h is not None:
        kwargs["h"] = list(_pair(h))
    if b is not None:
        kwargs["b"] = list(_pair(b))
    if fuzzy:
        kwargs["fuzzy"] = data[fuzzy].to_numpy()
    if covs:
        kwargs["covs"] = data[list(covs)]
    if clustered:
        kwargs["cluster"] = data["__cluster__"].to_numpy()
    return kwargs


def density_test(running: pd.Series | Sequence[float], *, cutoff: float = 0.0) -> DensityTest:
    """Test for a jump in the density of the running variable at ``cutoff`` (rddensity).

    Uses ``rddensity`` defaults: local quadratic density estimates on each
    side, triangular kernel, separate MSE-optimal bandwidths, jackknife
    standard errors, robust bias-corrected test statistic.
    """
    from rddensity import rddensity

    x = pd.to_numeric(pd.Series(running), errors="coerce").dropna().to_numpy(dtype=float)
    n_left, n_right = int((x < cutoff).sum()), int((x >= cutoff).sum())
    if min(n_left, n_right) < MIN_POINTS_PER_SIDE:
        raise InputError(
            f"Too few values of the running variable for a density test: {n_left} below and "
            f"{n_right} at or above the cut-off (at least {MIN_POINTS_PER_SIDE} each)."
        )
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        try:
            out = rddensity(X=x, c=cutoff)
        except Exception as exc:  # rddensity raises bare Exceptions on degenerate input
            raise InputError(f"The density test could not be computed: {exc}") from exc
    _reemit(caught)
    stat = float(out.test["t_jk"])
    pval = float(out.test["p_jk"])
    if not (math.isfinite(stat) and math.isfinite(pval)):
        raise InputError("The density test returned no finite statistic (too few distinct values).")
    return DensityTest(
        statistic=stat,
        p=pval,
        density_left=float(out.hat["left"]),
        density_right=float(out.hat["right"]),
        h=(float(out.h["left"]), float(out.h["right"])),
        n_left=int(out.n["left"]),
        n_right=int(out.n["right"]),
        n_h_left=int(out.n["eff_left"]),
        n_h_right=int(out.n["eff_right"]),
    )
