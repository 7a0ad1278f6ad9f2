"""Coarsening covariates as cem does: R's ``pretty()``, the histogram-bin rules, strata.

Numeric covariates are cut into bins (Sturges', Scott's or Freedman–Diaconis'
number, or given cut points) with R's ``cut(..., include.lowest = TRUE)``;
other covariates are matched exactly after an optional grouping of their
values; rows with the same coarsened values form a stratum.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from careloop.analysis.caveats import StatisticalWarning
from careloop.core.errors import InputError

__all__ = [
    "Cutpoint",
    "l1_histogram_breaks",
    "r_pretty",
    "sturges_breaks",
]

Cutpoint = int | str | Sequence[float]
"""How to coarsen one numeric covariate: a number of cut points, a rule name
(``"sturges"``, ``"scott"``, ``"fd"``) or explicit cut points."""

_DBL_EPS = float(np.finfo(float).eps)


def _nclass_sturges(n: int) -> int:
    """R's ``nclass.Sturges``: ``ceiling(log2(n) + 1)`` (n counts missing values too)."""
    return math.ceil(math.log2(n) + 1)


def _nclass_scott(x: np.ndarray) -> int:
    """R's ``nclass.scott`` on non-missing values."""
    if x.size < 2:
        return 1
    h: float = 3.5 * math.sqrt(float(np.var(x, ddof=1))) * float(x.size) ** (-1 / 3)
    if h > 0:
        return max(1, math.ceil((float(x.max()) - float(x.min())) / h))
    return 1


def _nclass_fd(x: np.ndarray) -> int:
    """R's ``nclass.FD`` (Freedman–Diaconis, on values rounded to 5 significant digits)."""
    with np.errstate(divide="ignore"):
        mag = np.where(x == 0, 0.0, np.floor(np.log10(np.abs(x))))
    rounded = np.round(x / 10.0 ** (mag - 4)) * 10.0 ** (mag - 4)
    q1, q3 = np.quantile(rounded, [0.25, 0.75])
    h = 2.0 * float(q3 - q1)
    al = 0.25
    while h == 0 and (al := al / 2) >= 1 / 512:
        lo, hi = np.quantile(rounded, [al, 1 - al])
        h = float(hi - lo) / (1 - 2 * al)
    if h > 0:
        width: float = h * float(x.size) ** (-1 / 3)
        return max(1, math.ceil((float(x.max()) - float(x.min())) / width))
    return 1


def _seq_length(lo: float, hi: float, n: int) -> np.ndarray:
    """R's ``seq(lo, hi, length.out = n)`` for doubles (``seq.default``)."""
    if n == 1:
        return np.array([lo])
    if lo == hi:
        return np.full(n, lo)
    by = (hi - lo) / (n - 1)
    out = lo + np.arange(n, dtype=float) * by
    out[0], out[-1] = lo, hi
    return out


def _seq_int_length(lo: float, hi: float, n: int) -> np.ndarray:
    """R's primitive ``seq.int(lo, hi, length.out = n)``: ``lo + i·by``, ends exact."""
    out = np.empty(n)
    if n > 2:
        out[:] = lo + np.arange(n, dtype=float) * ((hi - lo) / (n - 1))
    if n > 0:
        out[0] = lo
    if n > 1:
        out[-1] = hi
    return out


def r_pretty(lo: float, hi: float, n: int = 5, min_n: int | None = None) -> np.ndarray:
    """R's ``pretty(c(lo, hi), n, min.n)``: about ``n + 1`` round break points covering [lo, hi].

    A port of R's ``R_pretty`` (src/appl/pretty.c, R 4.x) with its default
    ``shrink.sml = 0.75``, ``high.u.bias = 1.5`` and ``u5.bias = 2.75``; checked
    against R 4.2 in ``tests/analysis/reference/cem_pretty.R``.
    """
    if min_n is None:
        min_n = n // 3
    h, h5 = 1.5, 0.5 + 1.5 * 1.5
    shrink_sml, rounding_eps = 0.75, 1e-10
    ndiv = n
    dx = hi - lo
    if dx == 0 and hi == 0:
        cell, i_small = 1.0, True
    else:
        cell = max(abs(lo), abs(hi))
        u = 1 + (1 / (1 + h) if h5 >= 1.5 * h + 0.5 else 1.5 / (1 + h5))
        u *= max(1, ndiv) * _DBL_EPS
        i_small = dx < cell * u * 3
    if i_small:
        if cell > 10:
            cell = 9 + cell / 10
        cell *= shrink_sml
        if min_n > 1:
            cell /= min_n
    else:
        cell = dx
        if ndiv > 1:
            cell /= ndiv
    cell = max(cell, 2.0**-20 * 2.2250738585072014e-308)
    base = 10.0 ** math.floor(math.log10(cell))
    unit = base
    if 2 * base - cell < h * (cell - unit):
        unit = 2 * base
        if 5 * base - cell < h5 * (cell - unit):
            unit = 5 * base
            if 10 * base - cell < h * (cell - unit):
                unit = 10 * base
    ns = math.floor(lo / unit + rounding_eps)
    nu = math.ceil(hi / unit - rounding_eps)
    while ns * unit > lo + rounding_eps * unit:
        ns -= 1
    while nu * unit < hi - rounding_eps * unit:
        nu += 1
    k = int(0.5 + nu - ns)
    if k < min_n:
        k = min_n - k
        if ns >= 0:
            nu += k // 2
            ns -= k // 2 + k % 2
        else:
            ns -= k // 2
            nu += k // 2 + k % 2
        ndiv = min_n
    else:
        ndiv = k
    low, high = lo, hi
    if ns * unit < low:
        low = ns * unit
    if nu * unit > high:
        high = nu * unit
    s = _seq_int_length(low, high, ndiv + 1)
    if ndiv:
        delta = (max(low, high) - min(low, high)) / ndiv
        s[np.abs(s) < 1e-14 * delta] = 0.0
    return s


def _cut(x: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """R's ``cut(x, breaks, include.lowest = TRUE, labels = FALSE)``: bin 1..k, NaN outside."""
    breaks = np.sort(np.asarray(breaks, dtype=float))
    idx = np.searchsorted(breaks, x, side="left").astype(float)
    idx[x == breaks[0]] = 1.0
    outside = (x < breaks[0]) | (x > breaks[-1]) | np.isnan(x)
    idx[outside] = np.nan
    return idx


def _is_numeric(s: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(s)) and not pd.api.types.is_bool_dtype(s)


def sturges_breaks(x: pd.Series | np.ndarray) -> np.ndarray:
    """The automatic CEM cut points: ``nclass.Sturges(x)`` equally spaced points over the range."""
    values = np.asarray(x, dtype=float)
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return np.array([], dtype=float)
    return _seq_length(float(finite.min()), float(finite.max()), _nclass_sturges(values.size))


def l1_histogram_breaks(x: pd.Series | np.ndarray) -> np.ndarray:
    """cem's L1 histogram breaks (``imbalance()``): ``pretty(range(x), nclass.scott(x), 1)``."""
    values = np.asarray(x, dtype=float)
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return np.array([], dtype=float)
    return r_pretty(float(finite.min()), float(finite.max()), _nclass_scott(finite), 1)


def _codes(s: pd.Series) -> np.ndarray:
    """Exact-match codes for a non-numeric column; missing values stay NaN."""
    codes = pd.Categorical(s).codes.astype(float)
    codes[codes < 0] = np.nan
    return codes


def _coarsen_numeric(s: pd.Series, spec: Cutpoint | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Coarsen one numeric column as cem's ``reduce.var`` does; returns (bins, break points)."""
    x = s.to_numpy(dtype=float, na_value=np.nan)
    finite = x[~np.isnan(x)]
    if spec is None:
        spec = "sturges"
    if isinstance(spec, str):
        rule = spec.lower()
        if finite.size == 0:
            return x, None
        if rule == "sturges":
            count = _nclass_sturges(x.size)
        elif rule == "scott":
            count = _nclass_scott(finite)
        elif rule == "fd":
            count = _nclass_fd(finite)
        else:
            raise InputError(
                f"Unknown coarsening rule {spec!r} for {s.name!r}: "
                "use 'sturges', 'scott', 'fd', a number of cut points or a list of cut points."
            )
        spec = count
    if isinstance(spec, int | np.integer) and not isinstance(spec, bool):
        if spec < 1:
            raise InputError(
                f"The number of cut points for {s.name!r} must be at least 1, not {spec}."
            )
        if finite.size == 0:
            return x, None
        breaks = _seq_length(float(finite.min()), float(finite.max()), int(spec))
    else:
        breaks = np.asarray(list(spec), dtype=float)  # type: ignore[arg-type]
        if breaks.size == 0 or np.isnan(breaks).any():
            raise InputError(f"The cut points for {s.name!r} must be a non-empty list of numbers.")
    breaks = np.unique(breaks)
    if breaks.size < 2:
        return x, breaks
    bins = _cut(x, breaks)
    outside = np.isnan(bins) & ~np.isnan(x)
    if outside.any():
        warnings.warn(
            f"{int(outside.sum())} value(s) of {s.name!r} lie outside the cut points "
            f"{breaks[0]:g}..{breaks[-1]:g}; CEM treats them like missing values "
            "(they can only match each other). Widen the cut points to include them.",
            StatisticalWarning,
            stacklevel=3,
        )
    return bins, breaks


def _group_values(s: pd.Series, groups: Sequence[Sequence[Any]]) -> pd.Series:
    """cem's ``group.var``: values in the i-th group become one level, the rest stay as they are."""
    out = s.astype(object).copy()
    for i, group in enumerate(groups, start=1):
        members = set(group)
        mask = s.isin(members)
        out[mask] = f"group {i:02d}"
    return out


def _stratify(frame: pd.DataFrame) -> np.ndarray:
    """One integer stratum per row from the coarsened columns; missing is a value of its own."""
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=int)
    keys = frame.astype(float).fillna(-1e300)
    return keys.groupby(list(keys.columns), sort=True, dropna=False).ngroup().to_numpy()
