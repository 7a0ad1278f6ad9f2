"""Rapid-cycle randomised tests: design, concealed allocation, analysis, monitoring, power.

A learning community tests small changes (two wordings of a decision-support
card, a reminder or none) by randomising patients, clinicians, sites or days
and reading the result within weeks (Horwitz et al., NEJM 2019). This module
holds the pieces:

- :class:`TrialDesign` and :class:`Allocator`: arms, unit of randomisation,
  simple / permuted-block / stratified allocation from a seed. The sequence is
  a pure function of the seed, the stratum and the unit's position in it, so
  it can be stored and audited, while :meth:`Allocator.assign` reveals one
  allocation at a time (concealment). :meth:`Allocator.to_dict` /
  :meth:`Allocator.from_dict` store the design and the allocations made.
- Analysis: :func:`compare_proportions` (risk difference with the Newcombe
  hybrid score CI built on Wilson intervals, risk ratio with the log (Katz)
  CI, pooled z test), :func:`compare_means` (Welch), :func:`regression` with
  cluster-robust standard errors when units are clustered,
  :func:`probability_better` (Bayesian beta-binomial).
- Monitoring: :func:`sequential_boundaries` (Lan–DeMets O'Brien–Fleming-type
  alpha spending, or classic O'Brien–Fleming) and :func:`monitor`.
- Planning: :func:`sample_size_proportions`, :func:`sample_size_means`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import integrate, optimize, special, stats

from careloop.analysis._frames import require_columns
from careloop.analysis.effects import Effect
from careloop.core.errors import InputError, IntegrityFailure

__all__ = [
    "Allocation",
    "Allocator",
    "Assignment",
    "BayesResult",
    "MeansComparison",
    "ProportionsComparison",
    "RegressionResult",
    "SampleSize",
    "SequentialBoundaries",
    "SequentialResult",
    "TrialDesign",
    "compare_means",
    "compare_proportions",
    "monitor",
    "probability_better",
    "regression",
    "sample_size_means",
    "sample_size_proportions",
    "sequential_boundaries",
]

Unit = Literal["patient", "clinician", "site", "day"]
Allocation = Literal["simple", "blocks", "stratified"]
_UNITS = ("patient", "clinician", "site", "day")
_ALLOCATIONS = ("simple", "blocks", "stratified")
_Z975 = float(stats.norm.ppf(0.975))


# --------------------------------------------------------------------------
# Design and allocation
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialDesign:
    """What is randomised, to which arms, and how; with the seed the sequence comes from."""

    name: str
    """Short name of the test, e.g. ``"sepsis-card-wording"``."""
    arms: tuple[str, ...]
    """Arm labels; the first is the comparator (usual care / control)."""
    seed: int
    """Seed of the allocation sequence (store it; do not show it to recruiters)."""
    unit: Unit = "patient"
    """Unit of randomisation."""
    allocation: Allocation = "blocks"
    """``simple`` (independent draws), ``blocks`` (permuted blocks) or
    ``stratified`` (permuted blocks within each stratum)."""
    ratio: tuple[int, ...] = ()
    """Allocation ratio per arm (default 1:1:…)."""
    block_multiples: tuple[int, ...] = (1, 2)
    """Block sizes as multiples of ``sum(ratio)``, chosen at random per block
    (varying sizes keep the next allocation hard to guess)."""
    strata: tuple[str, ...] = ()
    """Names of the stratification factors (``stratified`` only)."""

    def __post_init__(self) -> None:
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            raise InputError("A trial needs at least two arms with distinct names.")
        if self.unit not in _UNITS:
            raise InputError(
                f"Unknown unit of randomisation {self.unit!r}: use {', '.join(_UNITS)}."
            )
        if self.allocation not in _ALLOCATIONS:
            raise InputError(
                f"Unknown allocation {self.allocation!r}: use {', '.join(_ALLOCATIONS)}."
            )
        if not self.ratio:
            object.__setattr__(self, "ratio", tuple(1 for _ in self.arms))
        if len(self.ratio) != len(self.arms) or any(int(r) < 1 for r in self.ratio):
            raise InputError("The allocation ratio needs one positive integer per arm.")
        if not self.block_multiples or any(int(m) < 1 for m in self.block_multiples):
            raise InputError("Block multiples must be positive integers.")
        if self.allocation == "stratified" and not self.strata:
            raise InputError("A stratified allocation needs the names of its strata factors.")
        if self.allocation != "stratified" and self.strata:
            raise InputError("Strata factors are only used with allocation='stratified'.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InputError("The seed must be an integer.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the design."""
        return {
            "name": self.name,
            "arms": list(self.arms),
            "seed": self.seed,
            "unit": self.unit,
            "allocation": self.allocation,
            "ratio": list(self.ratio),
            "block_multiples": list(self.block_multiples),
            "strata": list(self.strata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialDesign:
        """Rebuild a design from :meth:`to_dict`."""
        try:
            return cls(
                name=str(data["name"]),
                arms=tuple(data["arms"]),
                seed=int(data["seed"]),
                unit=data.get("unit", "patient"),
                allocation=data.get("allocation", "blocks"),
                ratio=tuple(int(r) for r in data.get("ratio", ())),
                block_multiples=tuple(int(m) for m in data.get("block_multiples", (1, 2))),
                strata=tuple(data.get("strata", ())),
            )
        except KeyError as exc:
            raise InputError(f"The trial design is missing {exc.args[0]!r}.") from exc

    def stratum_key(self, strata: Mapping[str, Any] | None = None) -> str:
        """The canonical text key of a stratum (``""`` when not stratified)."""
        if self.allocation != "stratified":
            return ""
        given = dict(strata or {})
        missing = [s for s in self.strata if s not in given]
        if missing:
            raise InputError(f"Stratified allocation needs a value for {', '.join(missing)}.")
        return json.dumps({s: str(given[s]) for s in self.strata}, sort_keys=True)

    def _rng(self, key: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.name}\x00{key}".encode()).digest()
        words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, *words])))

    def sequence(self, n: int, strata: Mapping[str, Any] | None = None) -> list[str]:
        """The first ``n`` allocations of a stratum, for audit (not for recruiters).

        Deterministic: the same design, stratum and position always give the
        same arm (NumPy PCG64 seeded from the seed, the design name and the
        stratum key).
        """
        key = self.stratum_key(strata)
        rng = self._rng(key)
        ratio = np.asarray(self.ratio, dtype=int)
        out: list[str] = []
        if self.allocation == "simple":
            probs = ratio / ratio.sum()
            draws = rng.choice(len(self.arms), size=n, p=probs)
            return [self.arms[int(i)] for i in draws]
        base = np.repeat(np.arange(len(self.arms)), ratio)
        while len(out) < n:
            mult = int(rng.choice(np.asarray(self.block_multiples, dtype=int)))
            block = np.tile(base, mult)
            rng.shuffle(block)
            out.extend(self.arms[int(i)] for i in block)
        return out[:n]


@dataclass(frozen=True)
class Assignment:
    """One revealed allocation."""

    unit_id: str
    """Identifier of the randomised unit."""
    arm: str
    """The arm allocated."""
    stratum: str
    """Stratum key (``""`` when not stratified)."""
    position: int
    """0-based position of the unit in its stratum's sequence."""


class Allocator:
    """Concealed allocation: each :meth:`assign` reveals the next arm of the unit's stratum.

    Assigning a unit again returns its existing allocation. The allocator
    keeps no sequence in memory beyond what was revealed; :meth:`to_dict`
    stores the design and the assignments so far, and :meth:`from_dict`
    checks them against the seed (a tampered record fails).
    """

    def __init__(self, design: TrialDesign) -> None:
        self.design = design
        self._by_unit: dict[str, Assignment] = {}
        self._counts: dict[str, int] = {}

    @property
    def assignments(self) -> list[Assignment]:
        """Allocations revealed so far, in order."""
        return list(self._by_unit.values())

    def assign(self, unit_id: str, strata: Mapping[str, Any] | None = None) -> Assignment:
        """Allocate ``unit_id`` (with its stratum values, if stratified) and reveal its arm."""
        unit_id = str(unit_id)
        if not unit_id:
            raise InputError("The unit identifier must not be empty.")
        key = self.design.stratum_key(strata)
        existing = self._by_unit.get(unit_id)
        if existing is not None:
            if existing.stratum != key:
                raise InputError(
                    f"Unit {unit_id!r} was already allocated in another stratum "
                    f"({existing.stratum})."
                )
            return existing
        position = self._counts.get(key, 0)
        arm = self.design.sequence(position + 1, _decode(key))[position]
        assignment = Assignment(unit_id=unit_id, arm=arm, stratum=key, position=position)
        self._by_unit[unit_id] = assignment
        self._counts[key] = position + 1
        return assignment

    def counts(self) -> pd.DataFrame:
        """Units allocated per stratum and arm."""
        rows = [(a.stratum, a.arm) for a in self._by_unit.values()]
        frame = pd.DataFrame(rows, columns=["stratum", "arm"])
        table = pd.crosstab(frame["stratum"], frame["arm"]) if rows else pd.DataFrame()
        return table.reindex(columns=list(self.design.arms), fill_value=0)

    def to_dict(self) -> dict[str, Any]:
        """The design and the allocations made (JSON-ready), for storage and audit."""
        return {
            "version": 1,
            "design": self.design.to_dict(),
            "assignments": [
                {"unit_id": a.unit_id, "arm": a.arm, "stratum": a.stratum, "position": a.position}
                for a in self._by_unit.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Allocator:
        """Restore an allocator; every stored allocation is re-derived from the seed and checked."""
        if data.get("version") != 1:
            raise InputError("Unknown allocation record version; expected 1.")
        alloc = cls(TrialDesign.from_dict(data["design"]))
        for row in data.get("assignments", []):
            stratum = str(row["stratum"])
            position = alloc._counts.get(stratum, 0)
            if int(row["position"]) != position:
                raise IntegrityFailure(
                    f"Allocation record out of order at unit {row['unit_id']!r}: "
                    f"position {row['position']} where {position} was expected."
                )
            got = alloc.assign(str(row["unit_id"]), _decode(stratum))
            if got.arm != row["arm"]:
                raise IntegrityFailure(
                    f"Allocation record does not match the seed: unit {row['unit_id']!r} is "
                    f"stored in {row['arm']!r} but the sequence gives {got.arm!r}."
                )
        return alloc


def _decode(key: str) -> dict[str, Any] | None:
    return json.loads(key) if key else None


# --------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------


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
    import statsmodels.api as sm

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
    x = pd.DataFrame(
        {"const": 1.0, "arm": (data[arm] == intervention).astype(float)}, index=data.index
    )
    for c in covariates:
        if not pd.api.types.is_numeric_dtype(data[c]):
            raise InputError(f"Covariate {c!r} must be numeric (encode categories as indicators).")
        x[c] = data[c].astype(float)
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
    if family == "gaussian":
        fit = sm.OLS(y, x).fit(**cov)
    elif family == "binomial":
        if not set(np.unique(y)) <= {0.0, 1.0}:
            raise InputError("A logistic regression needs a 0/1 outcome.")
        fit = sm.GLM(y, x, family=sm.families.Binomial()).fit(**cov)
    else:
        raise InputError(f"Unknown family {family!r}: use gaussian or binomial.")
    ci = fit.conf_int(0.05)
    table = pd.DataFrame(
        {"estimate": fit.params, "se": fit.bse, "p": fit.pvalues, "ci_low": ci[0], "ci_high": ci[1]}
    )
    row = table.loc[["arm"]].to_numpy(dtype=float)[0]
    est, se_arm, p, lo, hi = (float(v) for v in row)
    if family == "binomial":
        effect = Effect(math.exp(est), math.exp(lo), math.exp(hi), p)
        scale: Literal["difference", "odds ratio"] = "odds ratio"
    else:
        effect = Effect(est, lo, hi, p)
        scale = "difference"
    return RegressionResult(
        effect=effect,
        scale=scale,
        se=se_arm,
        covariance=covariance,
        n=len(data),
        n_clusters=n_clusters,
        table=table,
    )


# --------------------------------------------------------------------------
# Bayesian beta-binomial
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BayesResult:
    """Posterior comparison of two arms under independent beta priors."""

    probability_better: float
    """Posterior probability that the intervention's proportion is higher."""
    posterior: tuple[tuple[float, float], tuple[float, float]]
    """Beta posterior parameters (a, b) for (intervention, comparator)."""
    mean: tuple[float, float]
    """Posterior means."""
    interval: tuple[tuple[float, float], tuple[float, float]]
    """95% equal-tailed credible intervals."""
    method: str
    """``closed form``, ``numerical integration`` or ``Monte Carlo (n draws, seed s)``."""

    def summary(self, labels: tuple[str, str] = ("intervention", "comparator")) -> str:
        """Plain-language summary."""
        a, b = labels
        return (
            f"Posterior probability that {a} has a higher rate than {b}: "
            f"{100 * self.probability_better:.1f}% ({self.method}). Posterior means "
            f"{100 * self.mean[0]:.1f}% vs {100 * self.mean[1]:.1f}%."
        )


def _prob_b_beats_a_closed(a_a: float, b_a: float, a_b: int, b_b: float) -> float:
    """P(p_B > p_A) for p_A ~ Beta(a_a, b_a), p_B ~ Beta(a_b, b_b) with integer a_b.

    The finite sum of Evan Miller (2015, "Formulas for Bayesian A/B testing"),
    in log space for stability.
    """
    i = np.arange(a_b)
    terms = (
        special.betaln(a_a + i, b_a + b_b)
        - np.log(b_b + i)
        - special.betaln(1 + i, b_b)
        - special.betaln(a_a, b_a)
    )
    return float(np.exp(special.logsumexp(terms)))


def probability_better(
    events1: int,
    n1: int,
    events0: int,
    n0: int,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    draws: int | None = None,
    seed: int | None = None,
) -> BayesResult:
    """Posterior probability that the intervention (1) has a higher proportion than comparator (0).

    Beta(``prior``) priors (default uniform) and binomial likelihoods give
    Beta posteriors. The probability is exact — a finite sum when the
    intervention's posterior ``a`` is a whole number, otherwise
    ``∫ f₁(x) F₀(x) dx`` by adaptive quadrature — unless ``draws`` asks for a
    Monte Carlo estimate (with ``seed``).
    """
    for x, n in ((events1, n1), (events0, n0)):
        if n < 0 or x < 0 or x > n:
            raise InputError("Counts must satisfy 0 <= events <= n.")
    a0, b0 = prior
    if a0 <= 0 or b0 <= 0:
        raise InputError("Beta prior parameters must be positive.")
    post1 = (a0 + events1, b0 + n1 - events1)
    post0 = (a0 + events0, b0 + n0 - events0)
    if draws is not None:
        rng = np.random.default_rng(seed)
        s1 = rng.beta(*post1, size=draws)
        s0 = rng.beta(*post0, size=draws)
        prob = float(np.mean(s1 > s0))
        method = f"Monte Carlo ({draws} draws, seed {seed})"
    elif float(post1[0]).is_integer() and post1[0] < 100_000:
        prob = _prob_b_beats_a_closed(post0[0], post0[1], int(post1[0]), post1[1])
        method = "closed form"
    else:
        dist1, dist0 = stats.beta(*post1), stats.beta(*post0)
        prob = float(integrate.quad(lambda t: dist1.pdf(t) * dist0.cdf(t), 0, 1, limit=200)[0])
        method = "numerical integration"
    d1, d0 = stats.beta(*post1), stats.beta(*post0)
    return BayesResult(
        probability_better=min(1.0, max(0.0, prob)),
        posterior=(post1, post0),
        mean=(float(d1.mean()), float(d0.mean())),
        interval=(
            (float(d1.ppf(0.025)), float(d1.ppf(0.975))),
            (float(d0.ppf(0.025)), float(d0.ppf(0.975))),
        ),
        method=method,
    )


# --------------------------------------------------------------------------
# Group-sequential monitoring
# --------------------------------------------------------------------------


def _obf_spending(t: np.ndarray, alpha_side: float) -> np.ndarray:
    """Lan–DeMets O'Brien–Fleming-type spending per side: 2 − 2Φ(z_{1−α/2}/√t)."""
    z = stats.norm.ppf(1 - alpha_side / 2)
    return np.asarray(2 - 2 * stats.norm.cdf(z / np.sqrt(t)))


class _Grid:
    """Recursive numerical integration of the Z statistics' joint distribution.

    The sub-density of Z_k on the continuation region is carried on a grid
    and propagated with the Gaussian increment (Armitage, McPherson & Rowe
    1969; Jennison & Turnbull 2000, ch. 19), integrated by Simpson's rule.
    """

    def __init__(self, points: int = 2001) -> None:
        self.points = points | 1
        self.z: np.ndarray | None = None
        self.f: np.ndarray | None = None
        self.t_prev = 0.0

    def cross_prob(self, t: float, c: float) -> float:
        """P(continue until now and |Z_t| >= c)."""
        if self.z is None or self.f is None:
            return float(2 * stats.norm.sf(c))
        mean = self.z * math.sqrt(self.t_prev / t)
        sd = math.sqrt((t - self.t_prev) / t)
        tail = stats.norm.sf((c - mean) / sd) + stats.norm.cdf((-c - mean) / sd)
        return float(integrate.simpson(self.f * tail, x=self.z))

    def advance(self, t: float, c: float) -> None:
        """Condition on |Z_t| < c and move the density to look ``t``."""
        z_new = np.linspace(-c, c, self.points)
        if self.z is None or self.f is None:
            f_new = stats.norm.pdf(z_new)
        else:
            r = math.sqrt(self.t_prev / t)
            sd = math.sqrt((t - self.t_prev) / t)
            kernel = stats.norm.pdf((z_new[:, None] - r * self.z[None, :]) / sd) / sd
            f_new = integrate.simpson(kernel * self.f[None, :], x=self.z, axis=1)
        self.z, self.f, self.t_prev = z_new, f_new, t


@dataclass(frozen=True)
class SequentialBoundaries:
    """Two-sided z boundaries for interim looks."""

    information: tuple[float, ...]
    """Information fraction at each look (last = 1)."""
    z: tuple[float, ...]
    """Stop if |Z| at a look reaches its boundary."""
    alpha_spent: tuple[float, ...]
    """Cumulative two-sided alpha spent by each look."""
    alpha: float
    """Overall two-sided significance level."""
    kind: str
    """``obf-spending`` (Lan–DeMets O'Brien–Fleming-type) or ``obrien-fleming`` (classic)."""

    def table(self) -> pd.DataFrame:
        """One row per look: information, z boundary, nominal two-sided p, alpha spent."""
        return pd.DataFrame(
            {
                "look": range(1, len(self.z) + 1),
                "information": self.information,
                "z_boundary": self.z,
                "nominal_p": [float(2 * stats.norm.sf(z)) for z in self.z],
                "alpha_spent": self.alpha_spent,
            }
        )


def sequential_boundaries(
    information: Sequence[float] | int,
    *,
    alpha: float = 0.05,
    kind: Literal["obf-spending", "obrien-fleming"] = "obf-spending",
) -> SequentialBoundaries:
    """Two-sided group-sequential boundaries with overall type I error ``alpha``.

    ``information`` is the list of information fractions at the looks
    (increasing, last 1) or the number of equally spaced looks.

    ``obf-spending`` (default) spends ``alpha/2`` per side with the Lan–DeMets
    O'Brien–Fleming-type function ``α(t) = 2 − 2Φ(z_{1−α/4}/√t)``, the
    definition of gsDesign's ``sfLDOF`` and rpact's ``"asOF"`` (checked
    against rpact in ``tests/analysis/reference/trials_reference.R``); looks
    may be unequally spaced and need not be planned in advance.
    ``obrien-fleming`` gives the classic O'Brien & Fleming (1979) boundaries
    ``c·√(K/k)`` for equally spaced looks (K = 3: 3.471, 2.454, 2.004).
    """
    if isinstance(information, int):
        if information < 1:
            raise InputError("At least one look is needed.")
        t = np.arange(1, information + 1) / information
    else:
        t = np.asarray(list(information), dtype=float)
    if t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or abs(t[-1] - 1) > 1e-9:
        raise InputError("Information fractions must increase strictly from above 0 to 1.")
    if not 0 < alpha < 1:
        raise InputError("alpha must be between 0 and 1.")
    t[-1] = 1.0
    if kind == "obf-spending":
        cum = _obf_spending(t, alpha / 2) * 2
        grid = _Grid()
        z: list[float] = []
        prev = 0.0
        for tk, target in zip(t, cum, strict=True):
            need = float(target - prev)
            if need <= 1e-15:
                c = 40.0
            else:
                c = float(
                    optimize.brentq(
                        lambda c, tk=tk, need=need: grid.cross_prob(tk, c) - need, 0.1, 40
                    )
                )
            z.append(c)
            prev = float(target)
            grid.advance(tk, c)
        spent = tuple(float(v) for v in cum)
    elif kind == "obrien-fleming":
        k = t.size
        if not np.allclose(t, np.arange(1, k + 1) / k):
            raise InputError("Classic O'Brien–Fleming boundaries need equally spaced looks.")

        def total(c: float) -> float:
            grid = _Grid()
            prob = 0.0
            for tk in t:
                ck = c / math.sqrt(tk)
                prob += grid.cross_prob(tk, ck)
                grid.advance(tk, ck)
            return prob

        c = float(optimize.brentq(lambda c: total(c) - alpha, 1.0, 10.0))
        z = [c / math.sqrt(tk) for tk in t]
        grid = _Grid()
        acc, cum_list = 0.0, []
        for tk, ck in zip(t, z, strict=True):
            acc += grid.cross_prob(tk, ck)
            grid.advance(tk, ck)
            cum_list.append(acc)
        spent = tuple(cum_list)
    else:
        raise InputError(f"Unknown boundary kind {kind!r}: use obf-spending or obrien-fleming.")
    return SequentialBoundaries(
        information=tuple(float(v) for v in t),
        z=tuple(z),
        alpha_spent=spent,
        alpha=alpha,
        kind=kind,
    )


@dataclass(frozen=True)
class SequentialResult:
    """The monitoring decision after the looks so far."""

    boundaries: SequentialBoundaries
    """Boundaries at the looks taken (plus the planned final look)."""
    z: tuple[float, ...]
    """Observed z statistics."""
    stopped_at: int | None
    """1-based look at which a boundary was crossed, or None."""

    @property
    def decision(self) -> str:
        """``stop`` (boundary crossed), ``continue`` or ``final: not significant``."""
        if self.stopped_at is not None:
            return "stop"
        if len(self.z) == len(self.boundaries.z):
            return "final: not significant"
        return "continue"

    def summary(self) -> str:
        """Plain-language summary for the learning community."""
        lines = []
        for i, z in enumerate(self.z):
            b = self.boundaries.z[i]
            lines.append(
                f"Look {i + 1} (information {100 * self.boundaries.information[i]:.0f}%): "
                f"z = {z:.2f}, boundary ±{b:.2f}" + (" — crossed" if abs(z) >= b else "")
            )
        if self.stopped_at is not None:
            lines.append(
                f"Stop at look {self.stopped_at}: the difference is unlikely to be chance even "
                f"allowing for repeated looks (overall two-sided alpha {self.boundaries.alpha})."
            )
        elif self.decision == "continue":
            lines.append("Continue: no boundary crossed; early differences may still be chance.")
        else:
            lines.append(
                "Final look reached without crossing the boundary: no significant difference."
            )
        return "\n".join(lines)


def monitor(
    z: Sequence[float],
    information: Sequence[float],
    *,
    alpha: float = 0.05,
    kind: Literal["obf-spending", "obrien-fleming"] = "obf-spending",
) -> SequentialResult:
    """Compare the observed z statistics at each look with their boundaries.

    ``information`` lists the information fraction of every look taken so far
    and, if the last look taken is not the final one, the planned remaining
    looks (so the boundaries are right; with alpha spending only the looks so
    far matter).
    """
    zs = tuple(float(v) for v in z)
    if not zs:
        raise InputError("No z statistics given.")
    b = sequential_boundaries(information, alpha=alpha, kind=kind)
    if len(zs) > len(b.z):
        raise InputError("More z statistics than looks in the information fractions.")
    stopped = next((i + 1 for i, v in enumerate(zs) if abs(v) >= b.z[i]), None)
    return SequentialResult(boundaries=b, z=zs, stopped_at=stopped)


# --------------------------------------------------------------------------
# Sample size
# --------------------------------------------------------------------------


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
