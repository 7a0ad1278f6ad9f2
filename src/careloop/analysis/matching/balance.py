"""Multivariate imbalance L1 of treated and control rows (cem's ``imbalance()``/``L1.meas``).

Numeric covariates are binned with ``pretty(range(x), nclass.scott(x))``, the
rest left as they are, and ``L1 = ½ Σ |f − g|`` over the cells of the
multivariate histogram of treated and control relative frequencies (weighted
by the CEM weights after matching): 0 is perfect balance, 1 separation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from careloop.analysis.matching.coarsening import (
    _codes,
    _cut,
    _is_numeric,
    _stratify,
    l1_histogram_breaks,
)

__all__ = [
    "Imbalance",
    "imbalance",
]


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
