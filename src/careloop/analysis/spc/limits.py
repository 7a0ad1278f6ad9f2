"""Centre lines, sigma and 3-sigma limits of each chart type, one part at a time.

Each function follows the conventions of qicharts2 (Anhøj, ``helper.functions.R``)
and the textbooks it cites, so that the numbers agree with ``qicharts2::qic``:

* **I** (Montgomery 6.33): mean centre line, sigma = average moving range / 1.128,
  after screening moving ranges above 3.267 × their mean (Nelson 1982;
  Provost & Murray 2011) when ``screen_mr`` is on (qicharts2's default once
  attached, option ``qic.screenedmr``).
* **MR**: centre line the mean moving range, UCL 3.267 × it, LCL 0.
* **Xbar / S** (Montgomery 6.29–6.31): grand mean weighted by subgroup size;
  sigma from the mean subgroup SD, or the pooled SD when subgroup sizes vary
  (sizes count non-missing values, so missing values make them vary); A3, B3,
  B4 from the exact c4 constant of each subgroup's size.
* **T**: an I chart of y^(1/3.6), centre line and limits transformed back
  (Provost & Murray 2011, ch. 7).
* **P / U** (Montgomery 7.7, 7.19) and Laney's **P′ / U′** (Laney 2002): the
  binomial/Poisson sigma multiplied by sigma_z, the average moving range of
  the standardised values / 1.128 (screened like the I chart), or their SD when
  x is categorical (funnel-style comparisons).
* **C** (Montgomery 7.17): sigma = sqrt(mean count).
* **G** (Provost & Murray 2011; Montgomery p. 319): limits from the mean number
  of cases between events, sigma = sqrt(mean × (mean + 1)), centre line the median.

The "baseline" of a part is its included points inside the freeze period:
centre line and sigma come from those, limits are drawn for every point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from careloop.core.errors import InputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

D2 = 1.128
"""d2 for moving ranges of two (Montgomery, Appendix VI)."""
D4 = 3.267
"""D4 for moving ranges of two: the upper limit of a moving range."""


@dataclass
class PartData:
    """The subgroups of one part, as the chart functions need them."""

    y: FloatArray
    """Plotted value per subgroup before the chart transforms it (aggregate or sum / n)."""
    y_sum: FloatArray
    """Sum of the raw values in each subgroup (the numerator for P/U/C charts)."""
    y_len: FloatArray
    """Number of non-missing raw values in each subgroup (subgroup size for Xbar/S)."""
    y_mean: FloatArray
    """Mean of the raw values in each subgroup."""
    y_sd: FloatArray
    """Sample SD of the raw values in each subgroup (NaN below two values)."""
    n: FloatArray
    """Denominator of each subgroup (NaN without denominators)."""
    cl: FloatArray
    """User-fixed centre line per point (NaN where not fixed)."""
    base: BoolArray
    """Points whose values estimate the centre line and sigma."""
    categorical: bool = False
    """x is categorical (no time order): P′/U′ use the SD of z instead of moving ranges."""


@dataclass
class PartLimits:
    """What a chart function returns for one part (before ``multiply``)."""

    y: FloatArray
    """Plotted value per point."""
    cl: FloatArray
    """Centre line per point."""
    lcl: FloatArray
    """Lower 3-sigma limit per point (clipped at the chart's natural bound)."""
    ucl: FloatArray
    """Upper 3-sigma limit per point (clipped at the chart's natural bound)."""
    sigma: FloatArray
    """One sigma per point on the plotted scale; NaN without symmetric limits (T, G, MR, run)."""


def _mean(a: FloatArray) -> float:
    """Mean of the non-missing values; NaN (not a warning) when there are none."""
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else math.nan


def _fixed_or(cl: FloatArray, value: float) -> FloatArray:
    """The user's centre line where given for the whole part, else ``value`` everywhere."""
    if not np.isnan(cl).any():
        return cl.copy()
    return np.full(cl.shape, value)


def _screened_sigma(mr: FloatArray, screen_mr: bool) -> float:
    """Average moving range / d2, after dropping ranges above D4 × average when screening."""
    mr = mr[~np.isnan(mr)]
    if mr.size == 0:
        return math.nan
    amr = mr.mean()
    if screen_mr:
        # Strictly below the limit, as qicharts2 keeps ``mr < 3.267 * amr``.
        mr = mr[mr < D4 * amr]
        amr = mr.mean() if mr.size else math.nan
    return float(amr / D2)


def _limits(cl: FloatArray, sigma: FloatArray | float) -> tuple[FloatArray, FloatArray, FloatArray]:
    sig = np.broadcast_to(np.asarray(sigma, dtype=float), cl.shape).copy()
    return cl - 3 * sig, cl + 3 * sig, sig


def c4(n: FloatArray) -> FloatArray:
    """The bias-correction constant c4(n) = sqrt(2/(n-1)) Γ(n/2)/Γ((n-1)/2); NaN for n ≤ 1."""
    n = np.where(n > 1, n, np.nan)
    with np.errstate(invalid="ignore"):
        out: FloatArray = np.sqrt(2 / (n - 1)) * np.exp(gammaln(n / 2) - gammaln((n - 1) / 2))
    return out


def a3(n: FloatArray) -> FloatArray:
    """A3(n) = 3 / (c4(n) sqrt(n)): Xbar limits from the mean subgroup SD."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 3 / (c4(n) * np.sqrt(np.where(n > 1, n, np.nan)))


def b3_b4(n: FloatArray) -> tuple[FloatArray, FloatArray]:
    """B3(n) and B4(n): S chart limit factors, B3 floored at 0."""
    c = c4(n)
    with np.errstate(invalid="ignore"):
        c5 = np.sqrt(1 - c**2)
        return np.maximum(0, 1 - 3 * c5 / c), 1 + 3 * c5 / c


def run_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """Run chart: median centre line, no limits."""
    b = d.y[d.base]
    b = b[~np.isnan(b)]
    cl = _fixed_or(d.cl, float(np.median(b)) if b.size else math.nan)
    nan = np.full(cl.shape, math.nan)
    return PartLimits(d.y.copy(), cl, nan, nan.copy(), nan.copy())


def i_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """Individuals (X) chart."""
    cl = _fixed_or(d.cl, _mean(d.y[d.base]))
    # Moving ranges of the baseline points in order, excluded points skipped;
    # a range next to a missing value is missing (not bridged), as in qicharts2.
    mr = np.abs(np.diff(d.y[d.base] - cl[d.base]))
    lcl, ucl, sig = _limits(cl, _screened_sigma(mr, screen_mr))
    return PartLimits(d.y.copy(), cl, lcl, ucl, sig)


def mr_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """Moving range chart of the individuals."""
    y = np.concatenate(([math.nan], np.abs(np.diff(d.y))))
    cl = _fixed_or(d.cl, _mean(y[d.base]))
    nan = np.full(cl.shape, math.nan)
    return PartLimits(y, cl, np.zeros(cl.shape), D4 * cl, nan)


def _pooled_sd(d: PartData) -> float:
    """Pooled SD of the baseline subgroups, Montgomery 6.31, counted as qicharts2 counts.

    The sum of squares comes from the subgroups that have an SD (two or more
    values); the degrees of freedom are sum(n - 1) over every baseline
    subgroup, so a subgroup of one value adds 0 and a subgroup whose values
    are all missing (n = 0) subtracts 1. That last term is qicharts2's
    (``sum(y.length - 1)``); it is kept so that a chart with an empty subgroup
    has the centre line and limits an R user gets from ``qic()``.
    """
    n = d.y_len[d.base]
    s2 = d.y_sd[d.base] ** 2
    ok = ~np.isnan(s2)
    dof = (n - 1).sum()
    # No degrees of freedom left (no subgroup of two or more values, or more
    # empty subgroups than there are): no sigma, where qicharts2 gives 0, Inf or NaN.
    return float(np.sqrt(((n[ok] - 1) * s2[ok]).sum() / dof)) if dof > 0 else math.nan


def _variable_n(d: PartData) -> bool:
    return np.unique(d.y_len).size > 1


def xbar_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """Xbar chart of subgroup means, sigma from the subgroup SDs."""
    y = d.y_mean.copy()
    if np.isnan(d.cl).any():
        lb, mb = d.y_len[d.base], d.y_mean[d.base]
        ok = ~np.isnan(mb)
        total = lb[ok].sum()
        cl = np.full(y.shape, (lb[ok] * mb[ok]).sum() / total if total > 0 else math.nan)
    else:
        cl = d.cl.copy()
    stdev = _pooled_sd(d) if _variable_n(d) else _mean(d.y_sd[d.base])
    half = a3(d.y_len) * stdev
    with np.errstate(invalid="ignore"):
        sig = half / 3
    return PartLimits(y, cl, cl - half, cl + half, sig)


def s_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """S chart of subgroup standard deviations."""
    y = d.y_sd.copy()
    cl = _fixed_or(d.cl, _pooled_sd(d) if _variable_n(d) else _mean(d.y_sd[d.base]))
    b3, b4 = b3_b4(d.y_len)
    ucl = b4 * cl
    with np.errstate(invalid="ignore"):
        sig = (ucl - cl) / 3
    return PartLimits(y, cl, b3 * cl, ucl, sig)


def t_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """T chart of times between rare events: an I chart of y^(1/3.6), transformed back."""
    if np.any(d.y[~np.isnan(d.y)] <= 0):
        raise InputError(
            "A T chart needs times between events greater than zero; found a value ≤ 0. "
            "Remove zero or negative times, or use a G chart for counts of opportunities."
        )
    t = PartData(
        y=d.y ** (1 / 3.6),
        y_sum=d.y_sum,
        y_len=d.y_len,
        y_mean=d.y_mean,
        y_sd=d.y_sd,
        n=d.n,
        cl=d.cl ** (1 / 3.6),
        base=d.base,
        categorical=d.categorical,
    )
    lim = i_chart(t, screen_mr)
    with np.errstate(invalid="ignore"):
        # A negative transformed limit has no real back-transform: the LCL is 0.
        lcl = np.where(lim.lcl > 0, lim.lcl, 0.0) ** 3.6
    nan = np.full(lim.cl.shape, math.nan)
    return PartLimits(d.y.copy(), lim.cl**3.6, lcl, lim.ucl**3.6, nan)


def _proportion_cl(d: PartData) -> FloatArray:
    num, den = d.y_sum[d.base], d.n[d.base]
    ok = ~(np.isnan(num) | np.isnan(den))
    total = den[ok].sum()
    return _fixed_or(d.cl, num[ok].sum() / total if total > 0 else math.nan)


def _laney_sigma_z(d: PartData, cl: FloatArray, stdev: FloatArray, screen_mr: bool) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (d.y[d.base] - cl[d.base]) / stdev[d.base]
    if d.categorical:
        zz = z[np.isfinite(z)]
        return float(np.std(zz, ddof=1)) if zz.size > 1 else math.nan
    return _screened_sigma(np.abs(np.diff(z)), screen_mr)


def _clip(lcl: FloatArray, ucl: FloatArray, upper: float | None) -> tuple[FloatArray, FloatArray]:
    # Only finite limits are clipped: an infinite one (a zero denominator) is
    # removed later, as qicharts2 does.
    lcl = np.where((lcl < 0) & np.isfinite(lcl), 0.0, lcl)
    if upper is not None:
        ucl = np.where((ucl > upper) & np.isfinite(ucl), upper, ucl)
    return lcl, ucl


def p_chart(d: PartData, screen_mr: bool, *, prime: bool = False) -> PartLimits:
    """P chart of proportions (Laney's P′ chart with ``prime``)."""
    cl = _proportion_cl(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        stdev = np.sqrt(cl * (1 - cl) / d.n)
    if prime:
        stdev = stdev * _laney_sigma_z(d, cl, stdev, screen_mr)
    lcl, ucl, sig = _limits(cl, stdev)
    lcl, ucl = _clip(lcl, ucl, 1.0)
    return PartLimits(d.y.copy(), cl, lcl, ucl, sig)


def pp_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """Laney's P′ chart."""
    return p_chart(d, screen_mr, prime=True)


def c_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """C chart of counts."""
    y = d.y_sum.copy()
    cl = _fixed_or(d.cl, _mean(y[d.base]))
    with np.errstate(invalid="ignore"):
        lcl, ucl, sig = _limits(cl, np.sqrt(cl))
    lcl, ucl = _clip(lcl, ucl, None)
    return PartLimits(y, cl, lcl, ucl, sig)


def u_chart(d: PartData, screen_mr: bool, *, prime: bool = False) -> PartLimits:
    """U chart of rates (Laney's U′ chart with ``prime``)."""
    cl = _proportion_cl(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        stdev = np.sqrt(cl / d.n)
    if prime:
        stdev = stdev * _laney_sigma_z(d, cl, stdev, screen_mr)
    lcl, ucl, sig = _limits(cl, stdev)
    lcl, ucl = _clip(lcl, ucl, None)
    return PartLimits(d.y.copy(), cl, lcl, ucl, sig)


def up_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """Laney's U′ chart."""
    return u_chart(d, screen_mr, prime=True)


def g_chart(d: PartData, screen_mr: bool) -> PartLimits:
    """G chart of the number of opportunities (cases, days) between events."""
    fixed = not np.isnan(d.cl).any()
    mean = d.cl.copy() if fixed else np.full(d.y.shape, _mean(d.y[d.base]))
    with np.errstate(invalid="ignore"):
        stdev = np.sqrt(mean * (mean + 1))
    lcl, ucl, _ = _limits(mean, stdev)
    lcl = np.where(lcl < 0, 0.0, lcl)
    if fixed:
        # A fixed G centre line is taken as the mean; the line drawn is the
        # geometric median 0.693 × mean (Provost & Murray 2011, p. 228), as qicharts2.
        cl = 0.693 * mean
    else:
        b = d.y[d.base]
        b = b[~np.isnan(b)]
        cl = np.full(d.y.shape, float(np.median(b)) if b.size else math.nan)
    return PartLimits(d.y.copy(), cl, lcl, ucl, np.full(d.y.shape, math.nan))


CHART_FUNCTIONS = {
    "run": run_chart,
    "i": i_chart,
    "mr": mr_chart,
    "xbar": xbar_chart,
    "s": s_chart,
    "t": t_chart,
    "p": p_chart,
    "pp": pp_chart,
    "c": c_chart,
    "u": u_chart,
    "up": up_chart,
    "g": g_chart,
}
"""Chart type → function computing one part's limits."""
