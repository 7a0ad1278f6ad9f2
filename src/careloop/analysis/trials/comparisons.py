"""Reading a two-arm test: proportions, means and regression.

:func:`compare_proportions` (risk difference with the Newcombe hybrid score CI
built on Wilson intervals, risk ratio with the log (Katz) CI, pooled z test),
:func:`compare_means` (Welch) and :func:`regression` with cluster-robust
standard errors when units are clustered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from careloop.analysis._frames import require_columns
from careloop.analysis.effects import Effect
from careloop.core.errors import InputError

__all__ = [
    "MeansComparison",
    "ProportionsComparison",
    "RegressionResult",
    "compare_means",
    "compare_proportions",
    "regression",
]

_Z975 = float(stats.norm.ppf(0.975))


def _wilson(x: int, n: int, z: float = _Z975) -> tuple[float, float]:
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ProportionsComparison:
    """Intervention vs comparator for a binary outcome."""

    events: tuple[int, int]
    """Events in (intervention, comparator)."""
    n: tuple[int, int]
    """Units in (intervention, comparator)."""
    risk: tuple[float, float]
    """Proportions (intervention, comparator)."""
    difference: Effect
    """Risk difference (intervention − comparator): Newcombe hybrid score CI (Wilson-based),
    p from the pooled two-proportion z test."""
    ratio: Effect
    """Risk ratio (intervention / comparator): log (Katz) CI, same p value."""
    caveats: tuple[str, ...] = ()

    def summary(self, labels: tuple[str, str] = ("intervention", "comparator")) -> str:
        """Plain-language summary."""
        a, b = labels
        lines = [
            f"{a}: {self.events[0]}/{self.n[0]} ({100 * self.risk[0]:.1f}%); "
            f"{b}: {self.events[1]}/{self.n[1]} ({100 * self.risk[1]:.1f}%).",
            f"Difference {100 * self.difference.estimate:+.1f} percentage points "
            f"(95% CI {100 * self.difference.ci_low:+.1f} to "
            f"{100 * self.difference.ci_high:+.1f}); "
            f"ratio {self.ratio.estimate:.2f} (95% CI {self.ratio.ci_low:.2f} to "
            f"{self.ratio.ci_high:.2f}); p {_fmt_p(self.difference.p)}.",
        ]
        lines.extend(f"Caveat: {c}" for c in self.caveats)
        return "\n".join(lines)


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"= {p:.3f}"


def compare_proportions(events1: int, n1: int, events0: int, n0: int) -> ProportionsComparison:
    """Compare the proportion with the outcome in the intervention (1) and comparator (0) arms.

    The risk-difference CI is Newcombe's hybrid score interval (his method 10,
    built from Wilson score intervals; statsmodels' ``method="newcomb"``),
    which keeps its coverage with small counts and proportions near 0 or 1
    where the Wald interval does not. The risk-ratio CI is the log (Katz)
    interval; with a zero count 0.5 is added to each cell (and a caveat says
    so). The p value is the pooled two-proportion z test (Pearson χ² without
    continuity correction).
    """
    for x, n in ((events1, n1), (events0, n0)):
        if n <= 0 or x < 0 or x > n or int(x) != x or int(n) != n:
            raise InputError("Counts must be whole numbers with 0 <= events <= n and n > 0.")
    x1, x0, n1, n0 = int(events1), int(events0), int(n1), int(n0)
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = _wilson(x1, n1)
    l0, u0 = _wilson(x0, n0)
    d = p1 - p0
    lo = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    pooled = (x1 + x0) / (n1 + n0)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    pval = float(2 * stats.norm.sf(abs(d) / se0)) if se0 > 0 else float("nan")
    caveats: list[str] = []
    a, b = float(x1), float(x0)
    m1, m0 = float(n1), float(n0)
    if x1 == 0 or x0 == 0 or x1 == n1 or x0 == n0:
        a, b, m1, m0 = a + 0.5, b + 0.5, m1 + 1, m0 + 1
        caveats.append("A zero or complete count: 0.5 was added to each cell for the ratio CI.")
    rr = (a / m1) / (b / m0)
    se_log = math.sqrt(1 / a - 1 / m1 + 1 / b - 1 / m0)
    ratio = Effect(
        (x1 / n1) / (x0 / n0) if x0 else float("inf"),
        rr * math.exp(-_Z975 * se_log),
        rr * math.exp(_Z975 * se_log),
        pval,
    )
    return ProportionsComparison(
        events=(x1, x0),
        n=(n1, n0),
        risk=(p1, p0),
        difference=Effect(d, lo, hi, pval),
        ratio=ratio,
        caveats=tuple(caveats),
    )


@dataclass(frozen=True)
class MeansComparison:
    """Intervention vs comparator for a continuous outcome."""

    n: tuple[int, int]
    """Units with a value in (intervention, comparator)."""
    mean: tuple[float, float]
    """Means (intervention, comparator)."""
    sd: tuple[float, float]
    """Standard deviations."""
    difference: Effect
    """Difference in means (intervention − comparator): Welch t CI and p."""
    ratio: Effect
    """Ratio of means: delta-method CI on the log scale (positive outcomes only)."""

    def summary(self, labels: tuple[str, str] = ("intervention", "comparator")) -> str:
        """Plain-language summary."""
        a, b = labels
        return (
            f"{a}: mean {self.mean[0]:.4g} (SD {self.sd[0]:.3g}, n {self.n[0]}); "
            f"{b}: mean {self.mean[1]:.4g} (SD {self.sd[1]:.3g}, n {self.n[1]}).\n"
            f"Difference {self.difference}; ratio {self.ratio.estimate:.3g} "
            f"(95% CI {self.ratio.ci_low:.3g} to {self.ratio.ci_high:.3g})."
        )


def compare_means(values1: Sequence[float], values0: Sequence[float]) -> MeansComparison:
    """Compare means by Welch's t test (unequal variances), with the ratio of means."""
    y1 = np.asarray(values1, dtype=float)
    y0 = np.asarray(values0, dtype=float)
    y1, y0 = y1[~np.isnan(y1)], y0[~np.isnan(y0)]
    if y1.size < 2 or y0.size < 2:
        raise InputError("Each arm needs at least two values to compare means.")
    m1, m0 = float(y1.mean()), float(y0.mean())
    v1, v0 = float(y1.var(ddof=1)) / y1.size, float(y0.var(ddof=1)) / y0.size
    se = math.sqrt(v1 + v0)
    if se == 0:
        raise InputError("Both arms have constant values: the difference has no uncertainty.")
    df = (v1 + v0) ** 2 / (v1**2 / (y1.size - 1) + v0**2 / (y0.size - 1))
    t = (m1 - m0) / se
    q = float(stats.t.ppf(0.975, df))
    p = float(2 * stats.t.sf(abs(t), df))
    diff = Effect(m1 - m0, m1 - m0 - q * se, m1 - m0 + q * se, p)
    if m1 > 0 and m0 > 0:
        se_log = math.sqrt(v1 / m1**2 + v0 / m0**2)
        r = m1 / m0
        ratio = Effect(r, r * math.exp(-_Z975 * se_log), r * math.exp(_Z975 * se_log), p)
    else:
        ratio = Effect(float("nan"), float("nan"), float("nan"), float("nan"))
    return MeansComparison(
        n=(int(y1.size), int(y0.size)),
        mean=(m1, m0),
        sd=(math.sqrt(float(y1.var(ddof=1))), math.sqrt(float(y0.var(ddof=1)))),
        difference=diff,
        ratio=ratio,
    )


@dataclass(frozen=True, eq=False)
class RegressionResult:
    """The arm effect from a regression, with cluster-robust errors where units cluster."""

    effect: Effect
    """Arm coefficient: difference (linear) or odds ratio (logistic)."""
    scale: Literal["difference", "odds ratio"]
    """What :attr:`effect` measures."""
    se: float
    """Standard error of the coefficient (log odds for logistic)."""
    covariance: str
    """``cluster`` (CR1 by cluster), ``HC1`` or ``nonrobust``."""
    n: int
    """Observations used."""
    n_clusters: int | None
    """Clusters, if clustered."""
    table: pd.DataFrame = field(repr=False)
    """All coefficients with SE, p and CI."""

    def summary(self) -> str:
        """Plain-language summary."""
        cl = f" in {self.n_clusters} clusters (cluster-robust errors)" if self.n_clusters else ""
        return f"Arm effect ({self.scale}): {self.effect}; {self.n} observations{cl}."


def regression(
    df: pd.DataFrame,
    *,
    outcome: str,
    arm: str,
    intervention: Any = None,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    family: Literal["gaussian", "binomial"] = "gaussian",
) -> RegressionResult:
    """Regress ``outcome`` on the arm indicator (and covariates).

    With ``cluster`` (e.g. clinician or site when patients are the unit but
    clinicians were randomised) the standard errors are cluster-robust
    (statsmodels ``cov_type="cluster"``, the CR1 small-sample correction);
    otherwise heteroskedasticity-robust (HC1) for linear models. Logistic
    models report the odds ratio.
    """

    require_columns(
        df,
        [
            ("outcome", outcome),
            ("arm", arm),
            *(("covariate", c) for c in covariates),
            ("cluster", cluster),
        ],
    )
    cols = [outcome, arm, *covariates, *([cluster] if cluster else [])]
    data = df[cols].dropna()
    levels = sorted(data[arm].unique().tolist(), key=str)
    if len(levels) != 2:
        raise InputError(f"The arm column {arm!r} must hold exactly two arms; it has {levels}.")
    if intervention is None:
        intervention = levels[1]
    x = _design(data, arm=arm, intervention=intervention, covariates=covariates)
    y = data[outcome].astype(float)
    if cluster:
        groups = pd.factorize(data[cluster])[0]
        cov: dict[str, Any] = {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
        covariance = "cluster"
        n_clusters: int | None = len(set(groups))
        if n_clusters is not None and n_clusters < 10:
            import warnings

            from careloop.analysis.caveats import StatisticalWarning

            warnings.warn(
                f"Only {n_clusters} clusters: cluster-robust standard errors are unreliable "
                "with fewer than about 30–40 clusters.",
                StatisticalWarning,
                stacklevel=2,
            )
    else:
        cov = {"cov_type": "HC1"} if family == "gaussian" else {}
        covariance = "HC1" if family == "gaussian" else "nonrobust"
        n_clusters = None
    fit = _fit(y, x, family=family, cov=cov)
    ci = fit.conf_int(0.05)
    table = pd.DataFrame(
        {"estimate": fit.params, "se": fit.bse, "p": fit.pvalues, "ci_low": ci[0], "ci_high": ci[1]}
    )
    row = table.loc[["arm"]].to_numpy(dtype=float)[0]
    effect, scale, se_arm = _arm_effect(row, family)
    return RegressionResult(
        effect=effect,
        scale=scale,
        se=se_arm,
        covariance=covariance,
        n=len(data),
        n_clusters=n_clusters,
        table=table,
    )


def _design(
    data: pd.DataFrame, *, arm: str, intervention: Any, covariates: Sequence[str]
) -> pd.DataFrame:
    """The design matrix: a constant, the intervention-arm indicator and the covariates."""
    x = pd.DataFrame(
        {"const": 1.0, "arm": (data[arm] == intervention).astype(float)}, index=data.index
    )
    for c in covariates:
        if not pd.api.types.is_numeric_dtype(data[c]):
            raise InputError(f"Covariate {c!r} must be numeric (encode categories as indicators).")
        x[c] = data[c].astype(float)
    return x


def _fit(y: pd.Series, x: pd.DataFrame, *, family: str, cov: dict[str, Any]) -> Any:
    """Fit the linear (OLS) or logistic (GLM) model with the chosen covariance."""
    import statsmodels.api as sm

    if family == "gaussian":
        fit = sm.OLS(y, x).fit(**cov)
    elif family == "binomial":
        if not set(np.unique(y)) <= {0.0, 1.0}:
            raise InputError("A logistic regression needs a 0/1 outcome.")
        fit = sm.GLM(y, x, family=sm.families.Binomial()).fit(**cov)
    else:
        raise InputError(f"Unknown family {family!r}: use gaussian or binomial.")
    return fit


def _arm_effect(
    row: npt.NDArray[np.float64], family: str
) -> tuple[Effect, Literal["difference", "odds ratio"], float]:
    """The arm's effect on its reporting scale (odds ratio for logistic), and its SE."""
    est, se_arm, p, lo, hi = (float(v) for v in row)
    if family == "binomial":
        effect = Effect(math.exp(est), math.exp(lo), math.exp(hi), p)
        scale: Literal["difference", "odds ratio"] = "odds ratio"
    else:
        effect = Effect(est, lo, hi, p)
        scale = "difference"
    return effect, scale, se_arm
