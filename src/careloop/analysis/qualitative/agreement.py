"""Inter-rater agreement: Cohen's kappa and Krippendorff's alpha.

Cohen's kappa is written out here (a few lines) so that its standard error
can follow Fleiss, Cohen & Everitt (1969), *Large sample standard errors of
kappa and weighted kappa*, Psychol Bull 72:323–7, for weighted kappa too
(statsmodels gives it for unweighted kappa only). Krippendorff's alpha
follows Krippendorff (2011), *Computing Krippendorff's alpha-reliability*
(coincidence matrices; nominal, ordinal, interval and ratio metrics); no
well-kept library for it is among careloop's dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from careloop.analysis._frames import require_columns
from careloop.core.errors import ErrorDetail, InputError

Level = Literal["nominal", "ordinal", "interval", "ratio"]
KappaWeights = Literal["linear", "quadratic"]

_Z = float(stats.norm.ppf(0.975))


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def agreement_words(value: float) -> str:
    """Landis & Koch's (1977) words for a kappa: slight, fair, moderate, substantial…

    The benchmarks clinicians meet most often: ≤ 0.2 slight, ≤ 0.4 fair,
    ≤ 0.6 moderate, ≤ 0.8 substantial, above almost perfect; below 0 poor.
    """
    if value < 0:
        return "poor (worse than chance)"
    for bound, words in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if value <= bound:
            return words
    return "almost perfect"


@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa between two coders, with a 95% confidence interval.

    ``float(result)`` is the kappa.
    """

    kappa: float
    """Cohen's kappa (weighted if ``weights`` is set)."""
    ci_low: float
    """Lower bound of the 95% CI, kappa − 1.96 SE (Fleiss, Cohen & Everitt 1969), ≥ −1."""
    ci_high: float
    """Upper bound of the 95% CI, ≤ 1."""
    se: float
    """Large-sample standard error of kappa (Fleiss, Cohen & Everitt 1969)."""
    p: float
    """Two-sided p value for kappa = 0, from the standard error under no agreement."""
    n: int
    """Number of units both coders coded."""
    observed_agreement: float
    """Proportion of units on which the coders agree (weighted if ``weights`` is set)."""
    expected_agreement: float
    """Agreement expected by chance from each coder's own category frequencies."""
    categories: tuple[str, ...]
    """Categories in the order used for the agreement table."""
    weights: str | None
    """None (unweighted), ``"linear"`` or ``"quadratic"``."""
    n_dropped: int = 0
    """Units dropped because one of the coders left them uncoded."""

    def __float__(self) -> float:
        return self.kappa

    def summary(self) -> str:
        """A sentence a clinician can read."""
        kind = "Cohen's kappa" if self.weights is None else f"{self.weights}-weighted kappa"
        text = (
            f"{kind} = {self.kappa:.3f} (95% CI {self.ci_low:.3f} to {self.ci_high:.3f}) over "
            f"{self.n} units: {agreement_words(self.kappa)} agreement beyond chance "
            f"(Landis & Koch). The coders agreed on {self.observed_agreement:.1%} of units; "
            f"{self.expected_agreement:.1%} agreement was expected by chance."
        )
        if self.n_dropped:
            text += f" {self.n_dropped} units coded by only one coder were left out."
        return text


def cohen_kappa(
    a: Sequence[Any] | pd.Series,
    b: Sequence[Any] | pd.Series,
    *,
    weights: KappaWeights | None = None,
    categories: Sequence[Any] | None = None,
) -> KappaResult:
    """Cohen's kappa for two coders who coded the same units.

    Long because it documents its options and computes kappa, its standard errors and
    p-value from one agreement table, in the order of Fleiss, Cohen & Everitt (1969).

    Args:
        a: First coder's category per unit (None/NaN where not coded).
        b: Second coder's category per unit, same order and length.
        weights: None for plain kappa; ``"linear"`` or ``"quadratic"`` for
            weighted kappa on ordered categories.
        categories: The categories in order (required to set the order for
            weighted kappa on non-numeric categories); by default the sorted
            values seen.

    Returns:
        Kappa with its Fleiss–Cohen–Everitt standard error and 95% CI.

    Raises:
        InputError: The two lists differ in length, fewer than two units are
            coded by both, or both coders used one and the same category only
            (kappa is then 0/0: undefined, not perfect).
    """
    a_list, b_list = list(a), list(b)
    if len(a_list) != len(b_list):
        raise InputError(
            f"The two coders' lists differ in length ({len(a_list)} and {len(b_list)}); "
            "give one category per unit for each coder, in the same unit order."
        )
    pairs = [
        (x, y)
        for x, y in zip(a_list, b_list, strict=True)
        if not (_is_missing(x) or _is_missing(y))
    ]
    dropped = len(a_list) - len(pairs)
    if len(pairs) < 2:
        raise InputError(
            "Kappa needs at least two units coded by both coders; "
            f"found {len(pairs)}. With one coder only, agreement cannot be measured."
        )
    if categories is None:
        seen = {x for pair in pairs for x in pair}
        try:
            cats = sorted(seen)
        except TypeError:
            cats = sorted(seen, key=str)
    else:
        cats = list(categories)
        unknown = sorted({str(x) for pair in pairs for x in pair if x not in cats})
        if unknown:
            raise InputError(
                f"Codes not among the given categories: {', '.join(unknown)}.",
                [ErrorDetail("categories", "list every category the coders used", unknown)],
            )
    index = {c: i for i, c in enumerate(cats)}
    k = len(cats)
    table = np.zeros((k, k))
    for x, y in pairs:
        table[index[x], index[y]] += 1
    n = len(pairs)
    if weights is None:
        w = np.eye(k)
    else:
        if weights not in ("linear", "quadratic"):
            raise InputError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}.")
        pos = np.arange(k, dtype=float)
        dist = np.abs(pos[:, None] - pos[None, :]) / max(k - 1, 1)
        w = 1 - dist if weights == "linear" else 1 - dist**2
    p = table / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    po = float((w * p).sum())
    pe = float((w * np.outer(rows, cols)).sum())
    if math.isclose(pe, 1.0):
        only = ", ".join(str(c) for c in cats)
        raise InputError(
            f"Kappa is undefined: both coders used only the category {only}, so chance "
            "agreement is 100%. Report the percentage agreement instead, or code units "
            "that vary."
        )
    kappa = (po - pe) / (1 - pe)
    # Fleiss, Cohen & Everitt (1969), eq. for weighted kappa (plain kappa: w = identity)
    w_row = w @ cols  # w̄_i. = Σ_j p_.j w_ij
    w_col = rows @ w  # w̄_.j = Σ_i p_i. w_ij
    var = (
        float((p * (w - (w_row[:, None] + w_col[None, :]) * (1 - kappa)) ** 2).sum())
        - (kappa - pe * (1 - kappa)) ** 2
    ) / (n * (1 - pe) ** 2)
    var0 = (
        float((np.outer(rows, cols) * (w - (w_row[:, None] + w_col[None, :])) ** 2).sum()) - pe**2
    ) / (n * (1 - pe) ** 2)
    se = math.sqrt(max(var, 0.0))
    se0 = math.sqrt(max(var0, 0.0))
    pval = float(2 * stats.norm.sf(abs(kappa) / se0)) if se0 > 0 else float("nan")
    return KappaResult(
        kappa=float(kappa),
        # kappa cannot leave [-1, 1]; the Wald interval can with few units
        ci_low=float(max(kappa - _Z * se, -1.0)),
        ci_high=float(min(kappa + _Z * se, 1.0)),
        se=se,
        p=pval,
        n=n,
        observed_agreement=po,
        expected_agreement=pe,
        categories=tuple(str(c) for c in cats),
        weights=weights,
        n_dropped=dropped,
    )


@dataclass(frozen=True)
class AlphaResult:
    """Krippendorff's alpha, with a bootstrap 95% CI. ``float(result)`` is alpha."""

    alpha: float
    """Krippendorff's alpha: 1 − observed / expected disagreement."""
    ci_low: float
    """Lower bound of a 95% percentile bootstrap CI over units (NaN if not computed)."""
    ci_high: float
    """Upper bound of that CI."""
    level: Level
    """Metric: nominal, ordinal, interval or ratio."""
    observed_disagreement: float
    """D_o from the coincidence matrix."""
    expected_disagreement: float
    """D_e from the value frequencies."""
    n_units: int
    """Units with values from at least two coders (pairable units)."""
    n_values: int
    """Pairable values n.. (values in pairable units)."""
    n_coders: int
    """Coders who gave at least one value."""
    n_boot: int
    """Bootstrap replicates used for the CI (0: no CI)."""

    def __float__(self) -> float:
        return self.alpha

    def summary(self) -> str:
        """A sentence a clinician can read."""
        ci = f" (95% bootstrap CI {self.ci_low:.3f} to {self.ci_high:.3f})" if self.n_boot else ""
        verdict = (
            "reliable enough to draw conclusions (≥ 0.800)"
            if self.alpha >= 0.8
            else "acceptable only for tentative conclusions (0.667–0.800)"
            if self.alpha >= 0.667
            else "too unreliable to draw conclusions (< 0.667)"
        )
        return (
            f"Krippendorff's alpha ({self.level}) = {self.alpha:.3f}{ci} from "
            f"{self.n_coders} coders over {self.n_units} units: {verdict}, by Krippendorff's "
            "own guidance."
        )


def _reliability_matrix(
    data: Any,
    *,
    unit: str | None,
    coder: str | None,
    value: str | None,
    layout: Literal["coders_by_units", "units_by_coders"],
) -> tuple[list[list[Any]], int]:
    """Rows = units, each a list of the values coders gave; also the coder count."""
    if isinstance(data, pd.DataFrame) and (unit or coder or value):
        if not (unit and coder and value):
            raise InputError("For long data give all of unit=, coder= and value= column names.")
        require_columns(data, {"unit": unit, "coder": coder, "value": value})
        frame = data[[unit, coder, value]]
        dup = frame.duplicated(subset=[unit, coder], keep=False)
        if dup.any():
            first = frame[dup].iloc[0]
            raise InputError(
                "A coder gave more than one value to a unit "
                f"(unit {first[unit]!r}, coder {first[coder]!r}); keep one value per unit "
                "and coder.",
            )
        kept = frame[~frame[value].map(_is_missing)]
        units = [list(g[value]) for _, g in kept.groupby(unit, sort=True)]
        return units, int(kept[coder].nunique())
    matrix = (
        data.to_numpy(dtype=object)
        if isinstance(data, pd.DataFrame)
        else np.asarray(data, dtype=object)
    )
    if matrix.ndim != 2:
        raise InputError("Reliability data must be a 2-D table (coders × units).")
    if layout == "units_by_coders":
        matrix = matrix.T
    n_coders = sum(any(not _is_missing(v) for v in row) for row in matrix)
    units = [[v for v in matrix[:, j] if not _is_missing(v)] for j in range(matrix.shape[1])]
    return units, n_coders


def _delta2(values: np.ndarray, marginals: np.ndarray, level: Level) -> np.ndarray:
    """Krippendorff's squared difference functions δ²(c, k)."""
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "ordinal":
        # δ² = (Σ_{g=c..k} n_g − (n_c + n_k)/2)², values in rank order
        cum = np.concatenate([[0.0], np.cumsum(marginals)])
        i = np.arange(len(values))
        lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
        between = cum[hi + 1] - cum[lo]
        return np.asarray((between - (marginals[lo] + marginals[hi]) / 2) ** 2)
    v = values.astype(float)
    diff = np.subtract.outer(v, v)
    if level == "interval":
        return np.asarray(diff**2)
    total = np.add.outer(v, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(total == 0, 0.0, diff / np.where(total == 0, 1.0, total))
    return np.asarray(ratio**2)


def krippendorff_alpha(
    data: Any,
    *,
    level: Level = "nominal",
    unit: str | None = None,
    coder: str | None = None,
    value: str | None = None,
    layout: Literal["coders_by_units", "units_by_coders"] = "coders_by_units",
    categories: Sequence[Any] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> AlphaResult:
    """Krippendorff's alpha for any number of coders, with missing values.

    Long because it documents its options and computes alpha in order: the
    coincidence counts, the distance metric of the level, and the bootstrap interval.

    Args:
        data: Either reliability data — a 2-D table with one row per coder and
            one column per unit (None/NaN where a coder left a unit uncoded;
            ``layout="units_by_coders"`` for the transpose) — or a long data
            frame with ``unit``, ``coder`` and ``value`` columns.
        level: ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"``.
        unit: Long data: the unit column.
        coder: Long data: the coder column.
        value: Long data: the value column.
        layout: Orientation of a 2-D table.
        categories: Ordinal data given as labels: the labels in rank order.
        n_boot: Bootstrap replicates (resampling units) for the 95% CI; 0 for none.
        seed: Seed of the bootstrap.

    Returns:
        Alpha with its disagreements and a bootstrap CI.

    Raises:
        InputError: Fewer than two coders, no unit coded by two coders, only
            one value ever used (alpha is then undefined), or non-numeric
            values for an interval or ratio metric.
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise InputError(f"level must be nominal, ordinal, interval or ratio, got {level!r}.")
    units, n_coders = _reliability_matrix(data, unit=unit, coder=coder, value=value, layout=layout)
    if n_coders < 2:
        raise InputError(
            f"Krippendorff's alpha needs at least two coders; found {n_coders}. "
            "With one coder only, agreement cannot be measured."
        )
    pairable = [u for u in units if len(u) >= 2]
    if not pairable:
        raise InputError("No unit was coded by two or more coders, so there is nothing to compare.")
    seen = {v for u in pairable for v in u}
    if categories is not None:
        domain = list(categories)
        unknown = sorted(str(v) for v in seen if v not in domain)
        if unknown:
            raise InputError(f"Values not among the given categories: {', '.join(unknown)}.")
    else:
        try:
            domain = sorted(seen)
        except TypeError:
            domain = sorted(seen, key=str)
    if level in ("interval", "ratio"):
        try:
            numeric = np.array([float(v) for v in domain])
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"The {level} metric needs numeric values; got {domain[:5]!r}. "
                "Use level='nominal' or 'ordinal' for labels."
            ) from exc
        if level == "ratio" and (numeric < 0).any():
            raise InputError("The ratio metric needs values ≥ 0.")
        values = numeric
    else:
        values = np.arange(len(domain), dtype=float)
    if len(domain) < 2:
        raise InputError(
            f"Every coder used the same value ({domain[0]!r}) for every unit: alpha is "
            "undefined (no variation to agree on). Report the percentage agreement instead."
        )
    index = {v: i for i, v in enumerate(domain)}
    k = len(domain)
    counts = np.zeros((len(pairable), k))
    for r, u in enumerate(pairable):
        for v in u:
            counts[r, index[v]] += 1
    m_u = counts.sum(axis=1)
    # per-unit coincidences: (n_uc n_uk − [c = k] n_uc) / (m_u − 1)
    per_unit = (
        counts[:, :, None] * counts[:, None, :] - np.einsum("uc,ck->uck", counts, np.eye(k))
    ) / (m_u - 1)[:, None, None]

    def alpha_of(weights_u: np.ndarray) -> tuple[float, float, float]:
        o = np.tensordot(weights_u, per_unit, axes=1)
        marg = o.sum(axis=1)
        n_all = marg.sum()
        d2 = _delta2(values, marg, level)
        d_o = float((o * d2).sum() / n_all)
        d_e = float((np.outer(marg, marg) * d2).sum() / (n_all * (n_all - 1)))
        if d_e == 0:
            return float("nan"), d_o, d_e
        return 1 - d_o / d_e, d_o, d_e

    alpha, d_o, d_e = alpha_of(np.ones(len(pairable)))
    ci_low = ci_high = float("nan")
    if n_boot:
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            w_u = np.bincount(
                rng.integers(0, len(pairable), len(pairable)), minlength=len(pairable)
            )
            boots.append(alpha_of(w_u.astype(float))[0])
        arr = np.array(boots)
        arr = arr[~np.isnan(arr)]
        if arr.size:
            ci_low, ci_high = (float(x) for x in np.percentile(arr, [2.5, 97.5]))
    return AlphaResult(
        alpha=float(alpha),
        ci_low=ci_low,
        ci_high=ci_high,
        level=level,
        observed_disagreement=d_o,
        expected_disagreement=d_e,
        n_units=len(pairable),
        n_values=int(m_u.sum()),
        n_coders=n_coders,
        n_boot=n_boot,
    )
