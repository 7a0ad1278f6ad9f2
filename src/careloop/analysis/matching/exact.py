"""Coarsened exact matching: strata of like coarsened values, weights, the effect on the treated.

:func:`cem` keeps the strata that hold at least one treated and one control
row and weights the kept controls so that each stratum counts as much in the
control group as it does in the treated group; :meth:`CemResult.att`
estimates the sample average treatment effect on the treated by weighted
least squares (``cem::att`` with ``model = "linear"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from careloop.analysis._frames import require_columns
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.effects import Effect
from careloop.analysis.matching.balance import Imbalance, imbalance
from careloop.analysis.matching.coarsening import (
    Cutpoint,
    _coarsen_numeric,
    _codes,
    _group_values,
    _is_numeric,
    _stratify,
)
from careloop.core.errors import InputError

__all__ = [
    "CemResult",
    "cem",
]


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

    Long because it documents its options and follows the CEM algorithm in order
    (coarsen, stratify, match, weight, summarise), every step reading the same strata.

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
