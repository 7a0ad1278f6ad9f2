"""Coarsened exact matching (CEM) as in Iacus, King & Porro's R package ``cem``.

:func:`cem` coarsens every covariate, sorts the rows into strata of identical
coarsened values, keeps the strata that hold at least one treated and one
control row, and weights the kept controls so that each stratum counts as
much in the control group as it does in the treated group. The defaults
follow ``cem::cem`` so an analyst moving from R gets the same matched sample
from the same call:

- numeric covariates are cut into equal-width bins whose number of cut
  points is given by Sturges' rule, ``ceil(log2(n) + 1)`` (``nclass.Sturges``),
  spanning the variable's range; intervals are closed on the right and the
  first one also on the left (R's ``cut(..., include.lowest = TRUE)``);
- other covariates (text, categories, booleans) are matched exactly, after an
  optional ``grouping`` of their values;
- a missing value is a value of its own: rows missing the same covariate can
  match each other (cem "matches on missingness").

The multivariate imbalance ``L1`` (before and after matching) is cem's
``imbalance()``/``L1.meas``: numeric covariates are binned with
``pretty(range(x), nclass.scott(x))`` (finer than the matching coarsening and
fixed for before and after), the rest left as they are, and
``L1 = ½ Σ |f − g|`` over the cells of the multivariate histogram of treated
(``f``) and control (``g``) relative frequencies, weighted by the CEM weights
after matching. ``0`` is perfect balance, ``1`` complete separation.

:meth:`CemResult.att` estimates the sample average treatment effect on the
treated (SATT) by weighted least squares of the outcome on the treatment (and
optional covariates) with the CEM weights (``cem::att`` with
``model = "linear"``).

Reference: S. M. Iacus, G. King, G. Porro. *cem: Software for Coarsened
Exact Matching.* Journal of Statistical Software 30(9), 2009.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from careloop.analysis._frames import require_columns
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.effects import Effect
from careloop.core.errors import InputError

__all__ = [
    "CemResult",
    "cem",
    "imbalance",
    "l1_histogram_breaks",
    "r_pretty",
    "sturges_breaks",
]

Cutpoint = int | str | Sequence[float]
"""How to coarsen one numeric covariate: a number of cut points, a rule name
(``"sturges"``, ``"scott"``, ``"fd"``) or explicit cut points."""

_DBL_EPS = float(np.finfo(float).eps)


# --------------------------------------------------------------------------
# R's histogram helpers, reproduced so the numbers match the cem package.
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Imbalance
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Imbalance:
    """cem's ``imbalance()``: multivariate L1, local common support, per-covariate measures."""

    l1: float
    """Multivariate L1 distance of the treated and control histograms (0 balanced, 1 separated)."""
    lcs: float
    """Local common support: percentage of occupied histogram cells holding both groups."""
    table: pd.DataFrame
    """One row per covariate: ``statistic`` (difference in weighted means, treated minus
    control, or a χ² for categorical covariates), ``type``, univariate ``L1`` and the
    differences of the weighted quantiles ``min``, ``25%``, ``50%``, ``75%``, ``max``."""


def _l1(cells: np.ndarray, treated: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    keep = weights > 0
    cells, treated, weights = cells[keep], treated[keep], weights[keep]
    frame = pd.DataFrame({"cell": cells, "t": treated, "w": weights})
    wt = frame["w"].where(frame["t"], 0.0)
    wc = frame["w"].where(~frame["t"], 0.0)
    total_t, total_c = float(wt.sum()), float(wc.sum())
    if total_t <= 0 or total_c <= 0:
        return float("nan"), float("nan")
    by_cell = (
        pd.DataFrame({"cell": cells, "f": wt / total_t, "g": wc / total_c}).groupby("cell").sum()
    )
    l1 = 0.5 * float(np.abs(by_cell["f"] - by_cell["g"]).sum())
    counts = frame.groupby("cell")["t"].agg(["sum", "count"])
    both = ((counts["sum"] > 0) & (counts["sum"] < counts["count"])).mean()
    return l1, 100.0 * float(both)


def _weighted_quantiles(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """cem's ``qt.w``: the first value whose cumulative weight share reaches 0, .25, .5, .75, 1."""
    keep = ~np.isnan(x)
    x, w = x[keep], w[keep]
    if x.size == 0:
        return np.full(5, np.nan)
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cum = np.cumsum(w) / w.sum()
    out = []
    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        hit = np.nonzero(cum >= p)[0]
        out.append(x[hit[0]] if hit.size else x.max())
    return np.asarray(out)


def _l1_cells(data: pd.DataFrame, breaks: Mapping[str, np.ndarray | None]) -> pd.DataFrame:
    cells = {}
    for name in data.columns:
        col = data[name]
        b = breaks.get(name)
        if _is_numeric(col):
            x = col.to_numpy(dtype=float, na_value=np.nan)
            cells[name] = _cut(x, b) if b is not None and len(b) > 1 else x
        else:
            cells[name] = _codes(col)
    return pd.DataFrame(cells, index=data.index)


def imbalance(
    data: pd.DataFrame,
    treated: pd.Series | np.ndarray,
    weights: pd.Series | np.ndarray | None = None,
    *,
    breaks: Mapping[str, Sequence[float]] | None = None,
) -> Imbalance:
    """Imbalance of treated and control rows of ``data`` (covariates only): cem's ``imbalance()``.

    ``treated`` is a boolean per row; ``weights`` (default 1) are the CEM
    weights, rows with weight 0 are left out. ``breaks`` overrides the
    automatic L1 break points (``pretty(range(x), nclass.scott(x))``) per
    numeric covariate; keep them fixed when comparing two matchings.
    """
    t = np.asarray(treated, dtype=bool)
    w = np.ones(len(data)) if weights is None else np.asarray(weights, dtype=float)
    user = dict(breaks or {})
    all_breaks: dict[str, np.ndarray | None] = {}
    for name in data.columns:
        if name in user:
            all_breaks[name] = np.asarray(user[name], dtype=float)
        elif _is_numeric(data[name]):
            all_breaks[name] = l1_histogram_breaks(data[name])
        else:
            all_breaks[name] = None
    cells = _l1_cells(data, all_breaks)
    joint = _stratify(cells)
    l1, lcs = _l1(joint, t, w)

    rows = []
    keep = w > 0
    for name in data.columns:
        var_l1, _ = _l1(_stratify(cells[[name]]), t, w)
        col = data[name]
        if _is_numeric(col):
            x = col.to_numpy(dtype=float, na_value=np.nan)
            mt, mc = keep & t, keep & ~t
            okt, okc = mt & ~np.isnan(x), mc & ~np.isnan(x)
            stat = float(np.average(x[okt], weights=w[okt]) - np.average(x[okc], weights=w[okc]))
            q = _weighted_quantiles(x[mt], w[mt]) - _weighted_quantiles(x[mc], w[mc])
            rows.append([name, stat, "(diff)", var_l1, *q])
        else:
            from scipy.stats import chi2_contingency

            sub = col[keep].astype(object)
            tab = pd.crosstab(sub, t[keep])
            tab = tab[(tab > 0).all(axis=1)] if tab.shape[1] == 2 else tab
            stat = float("nan")
            if tab.shape[0] >= 2 and tab.shape[1] == 2:
                stat = float(chi2_contingency(tab.to_numpy(), correction=True)[0])
            rows.append([name, stat, "(Chi2)", var_l1, *([np.nan] * 5)])
    table = pd.DataFrame(
        rows, columns=["variable", "statistic", "type", "L1", "min", "25%", "50%", "75%", "max"]
    ).set_index("variable")
    return Imbalance(l1=l1, lcs=lcs, table=table)


# --------------------------------------------------------------------------
# CEM
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CemResult:
    """The matched sample of :func:`cem`: counts, strata, weights and imbalance."""

    treatment: str
    """Name of the treatment column."""
    treated_value: Any
    """The value of the treatment column that marks treated rows."""
    covariates: tuple[str, ...]
    """The covariates matched on, in column order."""
    n_treated: int
    """Treated rows in the input."""
    n_control: int
    """Control rows in the input."""
    n_matched_treated: int
    """Treated rows kept (in a stratum with at least one control)."""
    n_matched_control: int
    """Control rows kept (in a stratum with at least one treated row)."""
    weights: pd.Series
    """CEM weight per input row (same index as the input): 1 for a matched treated row,
    ``(m_T(s)/m_C(s)) · (M_C/M_T)`` for a matched control in stratum ``s``, 0 if unmatched
    (after ``k2k``: 1 for every kept row)."""
    matched: pd.Series
    """True for the rows kept by the matching (same index as the input)."""
    strata: pd.Series
    """Stratum number per input row (rows with identical coarsened covariates share one)."""
    strata_table: pd.DataFrame
    """One row per stratum: ``stratum``, ``n_treated``, ``n_control``, ``matched``,
    ``control_weight``, then the coarsened bin of each covariate."""
    breaks: dict[str, tuple[float, ...] | None]
    """Cut points used for each numeric covariate (None for exact matching)."""
    l1_before: float
    """Multivariate L1 imbalance of the unmatched data."""
    l1_after: float
    """Multivariate L1 imbalance of the matched, weighted data."""
    lcs_before: float
    """Local common support (%) of the L1 histogram before matching."""
    lcs_after: float
    """Local common support (%) after matching."""
    imbalance_before: Imbalance
    """Per-covariate imbalance before matching (cem's univariate table)."""
    imbalance_after: Imbalance
    """Per-covariate imbalance after matching."""
    k2k: bool
    """True if the strata were pruned to equal numbers of treated and controls."""
    data: pd.DataFrame = field(repr=False)
    """The input data (for :meth:`att`)."""
    caveats: tuple[str, ...] = ()
    """Things to read the result with care for."""

    @property
    def n_strata(self) -> int:
        """Number of strata that hold at least one treated row and one control."""
        return int(self.strata_table["matched"].sum())

    def counts(self) -> pd.DataFrame:
        """cem's summary table: All / Matched / Unmatched rows by control (G0) and treated (G1)."""
        return pd.DataFrame(
            {
                "control": [
                    self.n_control,
                    self.n_matched_control,
                    self.n_control - self.n_matched_control,
                ],
                "treated": [
                    self.n_treated,
                    self.n_matched_treated,
                    self.n_treated - self.n_matched_treated,
                ],
            },
            index=pd.Index(["All", "Matched", "Unmatched"], name="rows"),
        )

    def matched_data(self) -> pd.DataFrame:
        """The matched rows of the input with their ``cem_weight`` and ``cem_stratum``."""
        out = self.data.loc[self.matched.to_numpy()].copy()
        out["cem_weight"] = self.weights[self.matched].to_numpy()
        out["cem_stratum"] = self.strata[self.matched].to_numpy()
        return out

    def att(self, outcome: str, covariates: Sequence[str] = ()) -> Effect:
        """Sample average treatment effect on the treated (SATT) by weighted least squares.

        Regresses ``outcome`` on an intercept, the treatment indicator and
        ``covariates`` with the CEM weights on the matched rows (``cem::att``,
        ``model = "linear"``). The estimate is the treatment coefficient; the
        p value is from the t distribution with the residual degrees of
        freedom, and the 95% CI uses the same t quantile (cem prints
        ``estimate ± 1.96 · SE``; :meth:`att_table` has the SE to rebuild it).
        """
        return self._att_fit(outcome, covariates)[0]

    def att_table(self, outcome: str, covariates: Sequence[str] = ()) -> pd.DataFrame:
        """The weighted regression behind :meth:`att`: per term estimate, SE, t, p and CI."""
        return self._att_fit(outcome, covariates)[1]

    def _att_fit(self, outcome: str, covariates: Sequence[str]) -> tuple[Effect, pd.DataFrame]:
        import statsmodels.api as sm

        if self.n_matched_treated == 0 or self.n_matched_control == 0:
            raise InputError(
                "No stratum holds both treated and control rows, so the effect on the treated "
                "cannot be estimated. Coarsen more (fewer cut points, groupings) or drop "
                "covariates."
            )
        require_columns(self.data, [("outcome", outcome), *(("covariate", c) for c in covariates)])
        if outcome == self.treatment or self.treatment in covariates:
            raise InputError("The outcome and covariates must not include the treatment column.")
        rows = self.matched.to_numpy()
        frame = self.data.loc[rows, [outcome, *covariates]].copy()
        for name in frame.columns:
            if not _is_numeric(frame[name]):
                raise InputError(
                    f"Column {name!r} is not numeric; encode it (e.g. as 0/1 indicators) "
                    "before using it in the effect regression."
                )
        frame = frame.astype(float)
        treat = (self.data.loc[rows, self.treatment] == self.treated_value).astype(float).to_numpy()
        w = self.weights.to_numpy()[rows]
        complete = frame.notna().all(axis=1).to_numpy()
        if not complete.all():
            warnings.warn(
                f"{int((~complete).sum())} matched row(s) with a missing outcome or covariate "
                "were left out of the effect regression.",
                StatisticalWarning,
                stacklevel=3,
            )
        y = frame[outcome].to_numpy()[complete]
        exog = pd.DataFrame({"const": 1.0, self.treatment: treat}, index=frame.index)
        for name in covariates:
            exog[name] = frame[name]
        exog = exog.loc[complete]
        if exog[self.treatment].nunique() < 2:
            raise InputError("After removing missing values the matched rows hold only one group.")
        fit = sm.WLS(y, exog, weights=w[complete]).fit()
        ci = fit.conf_int(0.05)
        table = pd.DataFrame(
            {
                "estimate": fit.params,
                "se": fit.bse,
                "t": fit.tvalues,
                "p": fit.pvalues,
                "ci_low": ci[0],
                "ci_high": ci[1],
            }
        )
        table.attrs["df_resid"] = float(fit.df_resid)
        vals = table.loc[[self.treatment]].to_numpy(dtype=float)[0]
        effect = Effect(float(vals[0]), float(vals[4]), float(vals[5]), float(vals[3]))
        return effect, table

    def summary(self, outcome: str | None = None, covariates: Sequence[str] = ()) -> str:
        """A plain-language summary of the matching (and of the effect, given an outcome)."""
        lines = [
            "Coarsened exact matching (CEM)",
            f"Treatment: {self.treatment} = {self.treated_value!r}; matched on "
            f"{len(self.covariates)} covariate(s): {', '.join(self.covariates)}.",
            f"Kept {self.n_matched_treated} of {self.n_treated} treated and "
            f"{self.n_matched_control} of {self.n_control} control rows in "
            f"{self.n_strata} strata"
            + (" (pruned to equal numbers per stratum, k2k)." if self.k2k else "."),
        ]
        if self.n_matched_treated < self.n_treated:
            lines.append(
                f"{self.n_treated - self.n_matched_treated} treated row(s) had no comparable "
                "control: the effect applies to the matched treated rows only."
            )
        lines.append(
            f"Multivariate imbalance L1 went from {self.l1_before:.3f} before to "
            f"{self.l1_after:.3f} after matching (0 = identical covariate distributions, "
            "1 = no overlap)."
        )
        if outcome is not None:
            effect = self.att(outcome, covariates)
            adj = f", adjusted for {', '.join(covariates)}" if covariates else ""
            lines.append(
                f"Average effect on the treated for {outcome}{adj}: {effect} "
                "(weighted least squares on the matched rows)."
            )
        lines.extend(f"Caveat: {c}" for c in self.caveats)
        return "\n".join(lines)


def _treated_mask(series: pd.Series, treated_value: Any) -> tuple[np.ndarray, Any]:
    if series.isna().any():
        raise InputError(
            f"The treatment column {series.name!r} has {int(series.isna().sum())} missing "
            "value(s); remove those rows first."
        )
    levels = sorted(series.unique().tolist(), key=lambda v: (str(type(v)), v))
    if len(levels) == 1:
        raise InputError(
            f"Every row has {series.name} = {levels[0]!r}: CEM needs both treated and control rows."
        )
    if treated_value is None:
        if len(levels) != 2:
            raise InputError(
                f"The treatment column {series.name!r} must have exactly two values "
                f"(treated and control); it has {len(levels)}: {levels[:10]}."
            )
        treated_value = levels[1]
    elif treated_value not in levels:
        raise InputError(f"No row has {series.name} = {treated_value!r}.")
    mask = (series == treated_value).to_numpy()
    if len(levels) > 2:
        raise InputError(
            f"The treatment column {series.name!r} has {len(levels)} values; CEM here compares "
            "two groups. Keep two groups or recode the column to treated/control."
        )
    return mask, treated_value


def _k2k_prune(
    matched: np.ndarray,
    strata: np.ndarray,
    treated: np.ndarray,
    data: pd.DataFrame,
    method: Literal["euclidean", "random"],
    seed: int | None,
) -> np.ndarray:
    """Keep ``min(m_T, m_C)`` treated and controls per stratum: greedy nearest-neighbour pairs."""
    keep = np.zeros_like(matched)
    rng = np.random.default_rng(seed)
    numeric = data.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    for s in np.unique(strata[matched]):
        idx = np.nonzero(matched & (strata == s))[0]
        tr, ct = idx[treated[idx]], idx[~treated[idx]]
        if len(tr) == len(ct):
            keep[idx] = True
            continue
        if method == "random":
            dist = rng.random((len(tr), len(ct)))
        else:
            diff = numeric[tr][:, None, :] - numeric[ct][None, :, :]
            dist = np.sqrt(np.nansum(diff**2, axis=2))
        dist = dist.astype(float)
        for _ in range(min(len(tr), len(ct))):
            i, j = np.unravel_index(np.nanargmin(dist), dist.shape)
            keep[tr[i]] = keep[ct[j]] = True
            dist[i, :] = np.nan
            dist[:, j] = np.nan
    return keep


def cem(
    df: pd.DataFrame,
    *,
    treatment: str,
    drop: Sequence[str] = (),
    cutpoints: Mapping[str, Cutpoint] | None = None,
    grouping: Mapping[str, Sequence[Sequence[Any]]] | None = None,
    k2k: bool = False,
    treated_value: Any = None,
    k2k_method: Literal["euclidean", "random"] = "euclidean",
    seed: int | None = None,
    l1_breaks: Mapping[str, Sequence[float]] | None = None,
) -> CemResult:
    """Coarsened exact matching of treated and control rows of ``df``.

    Parameters
    ----------
    df:
        One row per unit; every column except ``treatment`` and ``drop`` is
        matched on (drop the outcome!).
    treatment:
        Column with two values; the larger (1, True, the later in sort
        order) is "treated" unless ``treated_value`` says otherwise.
    drop:
        Columns not to match on (the outcome, identifiers).
    cutpoints:
        Per numeric covariate: an integer ``n`` (``n`` equally spaced cut
        points over the range, i.e. ``n - 1`` bins, as in cem), a rule name
        (``"sturges"`` — the default —, ``"scott"``, ``"fd"``) or an explicit
        list of cut points. Values outside explicit cut points can only match
        each other (a warning says how many).
    grouping:
        Per non-numeric covariate: a list of groups of values that count as
        the same when matching, e.g. ``{"q1": [["agree", "strongly agree"], …]}``.
        Values in no group are matched as they are.
    k2k:
        Prune every stratum to the same number of treated and controls
        (nearest neighbours by Euclidean distance on the raw covariates, or
        at random with ``k2k_method="random"`` and ``seed``); all kept rows
        then weigh 1.
    l1_breaks:
        Fixed L1 histogram break points per numeric covariate (default: cem's
        automatic ``pretty``/Scott rule).
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError("cem() needs a pandas DataFrame.")
    require_columns(
        df,
        [
            ("treatment", treatment),
            *(("drop", c) for c in drop),
            *(("cutpoints", c) for c in cutpoints or {}),
            *(("grouping", c) for c in grouping or {}),
        ],
    )
    if len(df) == 0:
        raise InputError("The data frame has no rows.")
    treated, treated_value = _treated_mask(df[treatment], treated_value)
    covariates = tuple(str(c) for c in df.columns if c != treatment and c not in set(drop))
    if not covariates:
        raise InputError(
            "No covariates left to match on after dropping the treatment and `drop` columns."
        )
    data = df.loc[:, list(covariates)]
    caveats: list[str] = []
    if data.isna().any().any():
        caveats.append(
            "Some covariates have missing values; CEM matched on missingness "
            "(rows missing the same covariate can match each other)."
        )
        warnings.warn(caveats[-1], StatisticalWarning, stacklevel=2)

    cut_specs = dict(cutpoints or {})
    groups = dict(grouping or {})
    coarse: dict[str, np.ndarray] = {}
    breaks: dict[str, tuple[float, ...] | None] = {}
    for name in covariates:
        col = data[name]
        if name in groups:
            coarse[name] = _codes(_group_values(col, groups[name]))
            breaks[name] = None
        elif _is_numeric(col):
            bins, b = _coarsen_numeric(col, cut_specs.get(name))
            coarse[name] = bins
            breaks[name] = None if b is None else tuple(float(v) for v in b)
        else:
            if name in cut_specs:
                raise InputError(
                    f"Cut points were given for {name!r}, which is not numeric; "
                    "use grouping instead."
                )
            coarse[name] = _codes(col)
            breaks[name] = None
    coarse_frame = pd.DataFrame(coarse, index=df.index)
    strata = _stratify(coarse_frame)

    st = pd.DataFrame({"stratum": strata, "t": treated})
    per = st.groupby("stratum")["t"].agg(n_treated="sum", n="count")
    per["n_control"] = per["n"] - per["n_treated"]
    per["matched"] = (per["n_treated"] > 0) & (per["n_control"] > 0)
    matched = per["matched"].reindex(strata).to_numpy()

    if k2k and matched.any():
        matched = _k2k_prune(matched, strata, treated, data, k2k_method, seed)

    m_t = int((matched & treated).sum())
    m_c = int((matched & ~treated).sum())
    weights = np.zeros(len(df))
    if k2k:
        weights[matched] = 1.0
    elif m_t and m_c:
        mt_s = pd.Series(strata[matched & treated]).value_counts()
        mc_s = pd.Series(strata[matched & ~treated]).value_counts()
        ratio = (mt_s / mc_s) * (m_c / m_t)
        ctrl = matched & ~treated
        weights[ctrl] = ratio.reindex(strata[ctrl]).to_numpy()
        weights[matched & treated] = 1.0
    if m_t == 0:
        caveats.append(
            "No stratum holds both treated and control rows: nothing was matched. "
            "Coarsen more (fewer cut points, groupings) or match on fewer covariates."
        )
        warnings.warn(caveats[-1], StatisticalWarning, stacklevel=2)

    kept = pd.DataFrame({"stratum": strata, "t": treated, "m": matched})
    kept_counts = kept[kept["m"]].groupby("stratum")["t"].agg(["sum", "count"])
    table = pd.DataFrame(index=per.index)
    table["n_treated"] = per["n_treated"].astype(int)
    table["n_control"] = per["n_control"].astype(int)
    table["matched"] = per["matched"]
    if k2k:
        table["n_treated_kept"] = kept_counts["sum"].reindex(per.index).fillna(0).astype(int)
        table["n_control_kept"] = (
            (kept_counts["count"] - kept_counts["sum"]).reindex(per.index).fillna(0).astype(int)
        )
    ctrl_w = pd.Series(weights[~treated], index=strata[~treated]).groupby(level=0).first()
    table["control_weight"] = ctrl_w.reindex(per.index).fillna(0.0)
    first = coarse_frame.assign(stratum=strata).groupby("stratum").first()
    table = table.join(first.add_prefix("bin_"))
    table = table.reset_index()

    weights_s = pd.Series(weights, index=df.index, name="cem_weight")
    imb_before = imbalance(data, treated, None, breaks=l1_breaks)
    if m_t and m_c:
        imb_after = imbalance(data, treated, weights, breaks=l1_breaks)
    else:
        imb_after = Imbalance(float("nan"), float("nan"), imb_before.table.iloc[0:0])
    return CemResult(
        treatment=treatment,
        treated_value=treated_value,
        covariates=covariates,
        n_treated=int(treated.sum()),
        n_control=int((~treated).sum()),
        n_matched_treated=m_t,
        n_matched_control=m_c,
        weights=weights_s,
        matched=pd.Series(matched, index=df.index, name="cem_matched"),
        strata=pd.Series(strata, index=df.index, name="cem_stratum"),
        strata_table=table,
        breaks=breaks,
        l1_before=imb_before.l1,
        l1_after=imb_after.l1,
        lcs_before=imb_before.lcs,
        lcs_after=imb_after.lcs,
        imbalance_before=imb_before,
        imbalance_after=imb_after,
        k2k=k2k,
        data=df,
        caveats=tuple(caveats),
    )
