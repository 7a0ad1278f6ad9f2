"""Planning a test: the sample size for two proportions or two means."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import optimize, stats

from careloop.core.errors import InputError

__all__ = [
    "SampleSize",
    "sample_size_means",
    "sample_size_proportions",
]


@dataclass(frozen=True)
class SampleSize:
    """Units needed per arm."""

    n_per_arm: int
    """Rounded up."""
    n_exact: float
    """Before rounding."""
    total: int
    """Both arms."""
    method: str
    """The formula used."""

    def summary(self) -> str:
        """Plain-language summary."""
        return f"{self.n_per_arm} per arm ({self.total} in all); {self.method}."


def sample_size_proportions(
    p0: float,
    p1: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    method: Literal["pooled", "arcsine"] = "pooled",
) -> SampleSize:
    """Units per arm to detect proportions ``p0`` (comparator) vs ``p1`` with a two-sided test.

    ``pooled`` is the normal-approximation formula with the pooled variance
    under the null (Fleiss; R's ``power.prop.test``). ``arcsine`` uses
    Cohen's h (statsmodels ``NormalIndPower`` with ``proportion_effectsize``).
    """
    for p in (p0, p1):
        if not 0 < p < 1:
            raise InputError("Proportions must be strictly between 0 and 1.")
    if p0 == p1:
        raise InputError("The proportions must differ.")
    _check_alpha_power(alpha, power)
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    if method == "pooled":
        pbar = (p0 + p1) / 2
        n = (
            (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1)))
            / (p1 - p0)
        ) ** 2
        desc = "two proportions, normal approximation with pooled null variance (Fleiss)"

        def achieved(nn: float) -> float:
            num = math.sqrt(nn) * abs(p1 - p0) - za * math.sqrt(2 * pbar * (1 - pbar))
            return float(stats.norm.cdf(num / math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))))

        # Solve the power equation exactly as power.prop.test does (ignores the far tail).
        n = float(optimize.brentq(lambda nn: achieved(nn) - power, 2, max(10 * n, 10)))
    elif method == "arcsine":
        h = abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0)))

        def arc_power(nn: float) -> float:
            shift = h * math.sqrt(nn / 2)
            return float(stats.norm.sf(za - shift) + stats.norm.cdf(-za - shift))

        n = float(optimize.brentq(lambda nn: arc_power(nn) - power, 1e-6, 1e9))
        desc = "two proportions, arcsine (Cohen's h) normal approximation"
    else:
        raise InputError(f"Unknown method {method!r}: use pooled or arcsine.")
    per = math.ceil(n - 1e-9)
    return SampleSize(n_per_arm=per, n_exact=n, total=2 * per, method=desc)


def sample_size_means(
    difference: float,
    sd: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> SampleSize:
    """Units per arm to detect a difference in means with a two-sided two-sample t test.

    Solves the power of the t test with the noncentral t distribution (as R's
    ``power.t.test`` and statsmodels' ``TTestIndPower``).
    """
    if sd <= 0 or difference == 0:
        raise InputError("Need a non-zero difference and a positive standard deviation.")
    _check_alpha_power(alpha, power)
    d = abs(difference) / sd

    def t_power(n: float) -> float:
        df = 2 * n - 2
        nc = d * math.sqrt(n / 2)
        crit = stats.t.ppf(1 - alpha / 2, df)
        return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))

    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    upper = 2 * 2 * ((za + zb) / d) ** 2 + 10
    n = float(optimize.brentq(lambda nn: t_power(nn) - power, 2.0001, upper))
    per = math.ceil(n - 1e-9)
    return SampleSize(
        n_per_arm=per,
        n_exact=n,
        total=2 * per,
        method="two means, two-sample t test (noncentral t)",
    )


def _check_alpha_power(alpha: float, power: float) -> None:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise InputError("alpha and power must be between 0 and 1.")
    if power <= alpha:
        raise InputError("power must exceed alpha.")
