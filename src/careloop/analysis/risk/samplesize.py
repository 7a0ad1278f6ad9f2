"""Minimum sample size for developing a prediction model (Riley et al. criteria).

Implements the criteria of

- Riley RD, Snell KIE, Ensor J, et al. *Minimum sample size for developing a
  multivariable prediction model: Part I – continuous outcomes.* Stat Med
  2019;38:1262–75 (criteria 1–4 for linear models);
- Riley RD, Snell KIE, Ensor J, et al. *Part II – binary and time-to-event
  outcomes.* Stat Med 2019;38:1276–96 (criteria 1–3);
- Riley RD, Ensor J, Snell KIE, et al. *Calculating the sample size required
  for developing a clinical prediction model.* BMJ 2020;368:m441;
- Riley RD, Van Calster B, Collins GS. *A note on estimating the Cox-Snell R²
  from a reported C statistic (AUROC) to inform sample size calculations for
  developing a prediction model with a binary outcome.* Stat Med
  2021;40:859–64.

Written here rather than wrapping the ``pmsampsize`` package because that
package needs Python ≥ 3.12; the formulas follow the papers and were checked
against pmsampsize's own tests (see ``tests/analysis/test_risk_samplesize.py``).

Each criterion's ``n`` is the smallest sample size that meets *that*
criterion alone. pmsampsize prints, for the survival criterion 3 and the
continuous criterion 4, the largest of the other criteria instead (it only
checks precision there); the final sample size is the same.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
from scipy import optimize, stats

from careloop.core.errors import InputError

Outcome = Literal["binary", "survival", "continuous"]

_R2_DIFFERENCE = 0.05
"""Criterion 2: largest acceptable optimism in (Nagelkerke) R² (Riley et al.)."""
_RISK_MARGIN = 0.05
"""Criterion 3 (binary, survival): margin of error of the overall risk."""
_Z = 1.96


@dataclass(frozen=True)
class Criterion:
    """One of Riley et al.'s criteria and the sample size it needs."""

    number: int
    """1, 2, 3 (or 4 for continuous outcomes), numbered as in Riley et al."""
    name: str
    """What the criterion protects, in words."""
    n: int
    """Smallest number of participants that meets this criterion alone."""
    shrinkage: float
    """Expected uniform shrinkage factor of the predictor effects at ``n``."""


@dataclass(frozen=True)
class SampleSizeResult:
    """Minimum sample size to develop a prediction model, by Riley et al.'s criteria."""

    outcome: Outcome
    """``"binary"``, ``"survival"`` or ``"continuous"``."""
    parameters: int
    """Number of candidate predictor parameters (not predictors: a 3-level factor counts 2)."""
    n: int
    """Minimum number of participants: the largest of the criteria."""
    events: float | None
    """Expected number of outcome events at ``n`` (binary, survival); None for continuous."""
    events_per_parameter: float | None
    """``events / parameters`` (EPP); None for continuous outcomes."""
    subjects_per_parameter: float
    """``n / parameters``."""
    decided_by: int
    """Number of the criterion that needs the most participants."""
    decided_by_name: str
    """That criterion in words."""
    criteria: tuple[Criterion, ...]
    """Every criterion with its own sample size."""
    r2: float
    """Anticipated R² used: Cox-Snell R² (binary, survival) or R² (continuous)."""
    r2_source: str
    """Where ``r2`` came from: given, converted from Nagelkerke's R² or from a C statistic."""
    max_r2_cox_snell: float | None
    """Largest Cox-Snell R² possible with this outcome frequency (binary, survival)."""
    r2_nagelkerke: float | None
    """``r2 / max_r2_cox_snell`` (binary, survival)."""
    target_shrinkage: float
    """Shrinkage asked for in criterion 1 (0.9: predictor effects overfitted by at most 10%)."""
    expected_shrinkage: float
    """Expected shrinkage factor at ``n``."""
    prevalence: float | None = None
    """Anticipated outcome proportion (binary)."""
    c_statistic: float | None = None
    """C statistic the R² was derived from, if any (binary)."""
    rate: float | None = None
    """Overall event rate per unit of time (survival)."""
    timepoint: float | None = None
    """Time point of interest for predictions (survival)."""
    meanfup: float | None = None
    """Anticipated mean follow-up (survival), in the units of ``rate`` and ``timepoint``."""
    overall_risk: float | None = None
    """Anticipated overall risk by ``timepoint`` (survival), ``1 − exp(−rate × timepoint)``."""
    overall_risk_ci: tuple[float, float] | None = None
    """95% CI of the overall risk expected at ``n`` (survival)."""
    intercept: float | None = None
    """Anticipated mean outcome value (continuous)."""
    sd: float | None = None
    """Anticipated standard deviation of the outcome (continuous)."""
    intercept_ci: tuple[float, float] | None = None
    """95% CI of the intercept expected at ``n`` (continuous)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary of every field."""
        return asdict(self)

    def summary(self) -> str:
        """A paragraph a clinician can read."""
        lines = [
            f"To develop a {self.outcome} outcome prediction model with {self.parameters} "
            f"candidate predictor parameters, at least {self.n:,} participants are needed"
        ]
        if self.events is not None and self.events_per_parameter is not None:
            lines[0] += (
                f" ({math.ceil(self.events):,} outcome events, "
                f"{self.events_per_parameter:.2f} events per parameter)."
            )
        else:
            lines[0] += f" ({self.subjects_per_parameter:.2f} participants per parameter)."
        lines.append(
            f"The deciding requirement is criterion {self.decided_by}: {self.decided_by_name}."
        )
        lines.append(
            f"Anticipated R² {self.r2:.4g} ({self.r2_source}); expected shrinkage of the "
            f"predictor effects at this size {self.expected_shrinkage:.3f} "
            f"(target {self.target_shrinkage:g})."
        )
        for c in self.criteria:
            lines.append(f"  criterion {c.number} ({c.name}): n = {c.n:,}")
        if self.overall_risk is not None and self.overall_risk_ci is not None:
            lo, hi = self.overall_risk_ci
            lines.append(
                f"Overall risk by time {self.timepoint:g}: {self.overall_risk:.3f} "
                f"(95% CI {lo:.3f} to {hi:.3f} with n = {self.n:,})."
            )
        if self.intercept_ci is not None:
            lo, hi = self.intercept_ci
            lines.append(
                f"Mean outcome {self.intercept:g} "
                f"(95% CI {lo:.3g} to {hi:.3g} with n = {self.n:,})."
            )
        lines.append(
            "Method: Riley et al., BMJ 2020;368:m441 and Stat Med 2019;38:1262–96. "
            "Rules of thumb such as 10 events per variable are not used."
        )
        return "\n".join(lines)


def minimum_sample_size(
    *,
    outcome: Outcome,
    parameters: int,
    prevalence: float | None = None,
    r2_cox_snell: float | None = None,
    r2_nagelkerke: float | None = None,
    c_statistic: float | None = None,
    shrinkage: float = 0.9,
    rate: float | None = None,
    timepoint: float | None = None,
    meanfup: float | None = None,
    intercept: float | None = None,
    sd: float | None = None,
    r2: float | None = None,
    mmoe: float = 1.1,
) -> SampleSizeResult:
    """Minimum sample size to develop a prediction model (Riley et al. criteria).

    Args:
        outcome: ``"binary"`` (logistic model), ``"survival"`` (Cox model) or
            ``"continuous"`` (linear model).
        parameters: Number of candidate predictor parameters.
        prevalence: Binary: anticipated outcome proportion.
        r2_cox_snell: Binary, survival: anticipated (optimism-adjusted) Cox-Snell R².
        r2_nagelkerke: Binary, survival: anticipated Nagelkerke R², converted
            to Cox-Snell with the largest possible Cox-Snell R².
        c_statistic: Binary: C statistic of an existing model, converted to
            Cox-Snell R² (Riley, Van Calster & Collins 2021).
        shrinkage: Target shrinkage factor for criterion 1 (default 0.9).
        rate: Survival: overall event rate per unit of time.
        timepoint: Survival: time point of interest, same unit as ``rate``.
        meanfup: Survival: anticipated mean follow-up, same unit.
        intercept: Continuous: anticipated mean outcome value.
        sd: Continuous: anticipated standard deviation of the outcome.
        r2: Continuous: anticipated (adjusted) R².
        mmoe: Continuous: multiplicative margin of error allowed for the
            intercept and the residual standard deviation (default 1.1).

    Returns:
        The sample size, events, events per parameter and each criterion.

    Raises:
        InputError: A required value is missing, one not used by this outcome
            is given, or a value is out of range.
    """
    if (
        isinstance(parameters, bool)
        or not isinstance(parameters, int | np.integer)
        or parameters < 1
    ):
        raise InputError(f"parameters must be a positive whole number, got {parameters!r}.")
    parameters = int(parameters)
    _check_open_unit("shrinkage", shrinkage)
    given = {
        "prevalence": prevalence,
        "r2_cox_snell": r2_cox_snell,
        "r2_nagelkerke": r2_nagelkerke,
        "c_statistic": c_statistic,
        "rate": rate,
        "timepoint": timepoint,
        "meanfup": meanfup,
        "intercept": intercept,
        "sd": sd,
        "r2": r2,
    }
    _check_used(outcome, given)
    if outcome == "binary":
        return _binary(parameters, prevalence, r2_cox_snell, r2_nagelkerke, c_statistic, shrinkage)
    if outcome == "survival":
        return _survival(
            parameters, rate, timepoint, meanfup, r2_cox_snell, r2_nagelkerke, shrinkage
        )
    return _continuous(parameters, r2, intercept, sd, shrinkage, mmoe)


def _check_used(outcome: str, given: dict[str, float | None]) -> None:
    """Refuse an unknown outcome type, or a value that this outcome type does not use."""
    allowed = {
        "binary": {"prevalence", "r2_cox_snell", "r2_nagelkerke", "c_statistic"},
        "survival": {"rate", "timepoint", "meanfup", "r2_cox_snell", "r2_nagelkerke"},
        "continuous": {"intercept", "sd", "r2"},
    }
    if outcome not in allowed:
        raise InputError(f"outcome must be 'binary', 'survival' or 'continuous', got {outcome!r}.")
    extra = sorted(k for k, v in given.items() if v is not None and k not in allowed[outcome])
    if extra:
        raise InputError(
            f"{', '.join(extra)} not used for a {outcome} outcome; "
            f"give only {', '.join(sorted(allowed[outcome]))}."
        )


# --- shared pieces ---------------------------------------------------------


def _check_open_unit(name: str, value: float | None) -> float:
    if value is None:
        raise InputError(f"{name} is required for this outcome.")
    if not isinstance(value, int | float) or not 0 < value < 1:
        raise InputError(f"{name} must be a number strictly between 0 and 1, got {value!r}.")
    return float(value)


def _check_positive(name: str, value: float | None) -> float:
    if value is None:
        raise InputError(f"{name} is required for this outcome.")
    if not isinstance(value, int | float) or not value > 0 or not math.isfinite(value):
        raise InputError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


def _n_for_shrinkage(parameters: int, r2_cs: float, s: float) -> int:
    """Riley et al. Part II eq. 11: n so that the expected shrinkage is ``s``."""
    return math.ceil(parameters / ((s - 1) * math.log(1 - r2_cs / s)))


def _shrinkage_at(parameters: int, r2_cs: float, n: int) -> float:
    """Invert eq. 11: expected shrinkage factor with ``n`` participants."""

    def gap(s: float) -> float:
        return parameters / ((s - 1) * math.log(1 - r2_cs / s)) - n

    lo, hi = r2_cs * (1 + 1e-12) + 1e-12, 1 - 1e-12
    if gap(lo) > 0:
        return lo
    if gap(hi) < 0:
        return hi
    return float(optimize.brentq(gap, lo, hi, xtol=1e-12))


def _resolve_r2_cs(
    r2_cox_snell: float | None,
    r2_nagelkerke: float | None,
    c_statistic: float | None,
    max_r2: float,
    prevalence: float | None,
) -> tuple[float, str]:
    supplied = [v is not None for v in (r2_cox_snell, r2_nagelkerke, c_statistic)]
    if sum(supplied) != 1:
        choices = (
            "r2_cox_snell, r2_nagelkerke or c_statistic"
            if prevalence is not None
            else ("r2_cox_snell or r2_nagelkerke")
        )
        raise InputError(f"Give exactly one of {choices} (the anticipated model performance).")
    if r2_cox_snell is not None:
        value = _check_open_unit("r2_cox_snell", r2_cox_snell)
        if value >= max_r2:
            raise InputError(
                f"r2_cox_snell {value:g} is not below the largest Cox-Snell R² possible "
                f"for this outcome frequency ({max_r2:.3f}); did you give Nagelkerke's R²? "
                "Use r2_nagelkerke for that."
            )
        return value, "Cox-Snell R² given"
    if r2_nagelkerke is not None:
        value = _check_open_unit("r2_nagelkerke", r2_nagelkerke)
        return value * max_r2, f"from Nagelkerke R² {value:g} × max Cox-Snell R² {max_r2:.4f}"
    assert c_statistic is not None and prevalence is not None
    c = _check_open_unit("c_statistic", c_statistic)
    if c <= 0.5:
        raise InputError(f"c_statistic must be above 0.5 (0.5 is a coin toss), got {c:g}.")
    value = cox_snell_r2_from_c_statistic(c, prevalence)
    return value, f"from C statistic {c:g} (Riley, Van Calster & Collins 2021)"


def cox_snell_r2_from_c_statistic(c_statistic: float, prevalence: float) -> float:
    """Cox-Snell R² implied by a C statistic and an outcome proportion.

    Riley, Van Calster & Collins (Stat Med 2021;40:859–64) assume the linear
    predictor is normal with equal variances in those with and without the
    outcome, its mean difference ``√2 Φ⁻¹(C)`` giving the C statistic, and
    take the likelihood-ratio R² of the logistic calibration model. pmsampsize
    estimates this by simulating a million patients; here the same
    large-sample value is computed exactly by Gauss–Hermite quadrature (the
    logistic model is then the true model, so no fitting is needed), which
    makes the answer reproducible without a random seed.
    """
    c = float(c_statistic)
    phi = float(prevalence)
    mu = math.sqrt(2) * float(stats.norm.ppf(c))
    nodes, weights = np.polynomial.hermite_e.hermegauss(160)
    weights = weights / weights.sum()
    # log-odds of an event given the linear predictor x (events ~ N(mu, 1), others ~ N(0, 1))
    alpha = math.log(phi / (1 - phi)) - mu * mu / 2
    eta_events = alpha + mu * (nodes + mu)
    eta_others = alpha + mu * nodes
    loglik_model = phi * float(np.sum(weights * -np.logaddexp(0.0, -eta_events))) + (
        1 - phi
    ) * float(np.sum(weights * -np.logaddexp(0.0, eta_others)))
    loglik_null = phi * math.log(phi) + (1 - phi) * math.log(1 - phi)
    return 1 - math.exp(-2 * (loglik_model - loglik_null))


def _criterion_1_and_2(
    parameters: int, r2_cs: float, max_r2: float, shrinkage: float
) -> tuple[Criterion, Criterion, float]:
    if r2_cs >= shrinkage:
        raise InputError(
            f"The anticipated Cox-Snell R² ({r2_cs:.3f}) must be below the target "
            f"shrinkage ({shrinkage:g}); lower the R² or raise the shrinkage."
        )
    n1 = _n_for_shrinkage(parameters, r2_cs, shrinkage)
    # Criterion 2 (Part II eq. 22): the shrinkage that keeps apparent minus adjusted
    # Nagelkerke R² within 0.05, then criterion 1's formula with that shrinkage.
    s2 = r2_cs / (r2_cs + _R2_DIFFERENCE * max_r2)
    n2 = _n_for_shrinkage(parameters, r2_cs, s2)
    c1 = Criterion(1, f"expected shrinkage of predictor effects ≥ {shrinkage:g}", n1, shrinkage)
    c2 = Criterion(
        2,
        f"apparent and adjusted Nagelkerke R² differ by ≤ {_R2_DIFFERENCE:g}",
        n2,
        _shrinkage_at(parameters, r2_cs, n2),
    )
    return c1, c2, s2


def _pick(criteria: tuple[Criterion, ...]) -> Criterion:
    # ties go to the lowest-numbered criterion
    return max(criteria, key=lambda c: (c.n, -c.number))


# --- binary ----------------------------------------------------------------


def _binary(
    parameters: int,
    prevalence: float | None,
    r2_cox_snell: float | None,
    r2_nagelkerke: float | None,
    c_statistic: float | None,
    shrinkage: float,
) -> SampleSizeResult:
    phi = _check_open_unit("prevalence", prevalence)
    # Part II eq. 23: max Cox-Snell R² = 1 − exp(2 ln L_null / n); per participant
    # ln L_null / n = φ ln φ + (1 − φ) ln(1 − φ), whatever n is.
    max_r2 = 1 - math.exp(2 * (phi * math.log(phi) + (1 - phi) * math.log(1 - phi)))
    r2_cs, source = _resolve_r2_cs(r2_cox_snell, r2_nagelkerke, c_statistic, max_r2, phi)
    c1, c2, _ = _criterion_1_and_2(parameters, r2_cs, max_r2, shrinkage)
    # Criterion 3: overall risk within ±0.05 (95% CI): n = (1.96 / 0.05)² φ (1 − φ).
    n3 = math.ceil((_Z / _RISK_MARGIN) ** 2 * phi * (1 - phi))
    c3 = Criterion(
        3,
        f"overall risk estimated within ±{_RISK_MARGIN:g}",
        n3,
        _shrinkage_at(parameters, r2_cs, n3),
    )
    criteria = (c1, c2, c3)
    decider = _pick(criteria)
    result = _cox_snell_result(
        "binary",
        parameters,
        criteria,
        decider,
        events=decider.n * phi,
        r2_cs=r2_cs,
        source=source,
        max_r2=max_r2,
        shrinkage=shrinkage,
    )
    return replace(
        result, prevalence=phi, c_statistic=None if c_statistic is None else float(c_statistic)
    )


# --- survival --------------------------------------------------------------


def _survival_risk_ci(rate: float, timepoint: float, person_time: float) -> tuple[float, float]:
    """95% CI of 1 − exp(−rate × t) from a Poisson rate over ``person_time``."""
    se = math.sqrt(rate / person_time)
    lo = 1 - math.exp(-(rate - _Z * se) * timepoint)
    hi = 1 - math.exp(-(rate + _Z * se) * timepoint)
    return lo, hi


def _survival(
    parameters: int,
    rate: float | None,
    timepoint: float | None,
    meanfup: float | None,
    r2_cox_snell: float | None,
    r2_nagelkerke: float | None,
    shrinkage: float,
) -> SampleSizeResult:
    rate_ = _check_positive("rate", rate)
    t = _check_positive("timepoint", timepoint)
    fu = _check_positive("meanfup", meanfup)
    # Part II eq. 23 with an exponential null model and mean follow-up as the time
    # unit (BMJ 2020): ln L_null / n = (E/n) ln(E/n) − E/n, E/n = rate × meanfup.
    # pmsampsize rounds E up at a notional n = 10,000, which can move criterion 2 by one.
    e_per_n = rate_ * fu
    max_r2 = 1 - math.exp(2 * (e_per_n * math.log(e_per_n) - e_per_n))
    r2_cs, source = _resolve_r2_cs(r2_cox_snell, r2_nagelkerke, None, max_r2, None)
    c1, c2, _ = _criterion_1_and_2(parameters, r2_cs, max_r2, shrinkage)
    cuminc = 1 - math.exp(-rate_ * t)

    def margin(n: int) -> float:
        lo, hi = _survival_risk_ci(rate_, t, fu * n)
        return max(hi - cuminc, cuminc - lo)

    # Criterion 3: smallest n whose 95% CI for the overall risk by `timepoint` is
    # within ±0.05 (margin falls with n, so bisection on integers works).
    lo_n, hi_n = 1, 2
    while margin(hi_n) > _RISK_MARGIN:
        lo_n, hi_n = hi_n, hi_n * 2
    while hi_n - lo_n > 1:
        mid = (lo_n + hi_n) // 2
        if margin(mid) > _RISK_MARGIN:
            lo_n = mid
        else:
            hi_n = mid
    n3 = hi_n if margin(lo_n) > _RISK_MARGIN else lo_n
    c3 = Criterion(
        3,
        f"overall risk by time {t:g} estimated within ±{_RISK_MARGIN:g}",
        n3,
        _shrinkage_at(parameters, r2_cs, n3),
    )
    criteria = (c1, c2, c3)
    decider = _pick(criteria)
    result = _cox_snell_result(
        "survival",
        parameters,
        criteria,
        decider,
        events=decider.n * rate_ * fu,
        r2_cs=r2_cs,
        source=source,
        max_r2=max_r2,
        shrinkage=shrinkage,
    )
    return replace(
        result,
        rate=rate_,
        timepoint=t,
        meanfup=fu,
        overall_risk=cuminc,
        overall_risk_ci=_survival_risk_ci(rate_, t, fu * decider.n),
    )


def _cox_snell_result(
    outcome: Outcome,
    parameters: int,
    criteria: tuple[Criterion, ...],
    decider: Criterion,
    *,
    events: float,
    r2_cs: float,
    source: str,
    max_r2: float,
    shrinkage: float,
) -> SampleSizeResult:
    """A binary or survival outcome's result (both judged on Cox–Snell R²).

    The size ``decider`` sets and what follows from it; the caller adds the
    fields of its own kind with :func:`dataclasses.replace`.
    """
    return SampleSizeResult(
        outcome=outcome,
        parameters=parameters,
        n=decider.n,
        events=events,
        events_per_parameter=events / parameters,
        subjects_per_parameter=decider.n / parameters,
        decided_by=decider.number,
        decided_by_name=decider.name,
        criteria=criteria,
        r2=r2_cs,
        r2_source=source,
        max_r2_cox_snell=max_r2,
        r2_nagelkerke=r2_cs / max_r2,
        target_shrinkage=shrinkage,
        expected_shrinkage=_shrinkage_at(parameters, r2_cs, decider.n),
    )


# --- continuous ------------------------------------------------------------


def _linear_shrinkage(parameters: int, r2_adj: float, n: int) -> float:
    """Part I eq. 6 with the apparent R² written in terms of the adjusted R²."""
    r2_app = (r2_adj * (n - parameters - 1) + parameters) / (n - 1)
    if not 0 < r2_app < 1:
        return float("nan")
    return 1 + (parameters - 2) / (n * math.log(1 - r2_app))


def _continuous(
    parameters: int,
    r2: float | None,
    intercept: float | None,
    sd: float | None,
    shrinkage: float,
    mmoe: float,
) -> SampleSizeResult:
    """Riley et al. criteria 1–4 for a linear prediction model.

    Long because it is the four published criteria for a continuous outcome one after
    another, each solved for its own minimum sample size before the largest is picked.
    """
    r2_ = _check_open_unit("r2", r2)
    if intercept is None or not isinstance(intercept, int | float) or not math.isfinite(intercept):
        raise InputError(
            f"intercept (the anticipated mean outcome) is required, got {intercept!r}."
        )
    if intercept == 0:
        raise InputError(
            "intercept is 0: a multiplicative margin of error is undefined; "
            "shift the outcome scale so its mean is not zero."
        )
    sd_ = _check_positive("sd", sd)
    if not isinstance(mmoe, int | float) or not mmoe > 1:
        raise InputError(f"mmoe must be above 1 (e.g. 1.1 for 10%), got {mmoe!r}.")
    p = parameters

    # Criterion 1: smallest n whose expected shrinkage reaches the target (Part I eq. 6).
    n1 = p + 2
    while True:
        s = _linear_shrinkage(p, r2_, n1)
        if not math.isnan(s) and s >= shrinkage:
            break
        n1 += 1
    # Criterion 2: apparent − adjusted R² ≤ 0.05 (Part I eq. 8).
    n2 = math.ceil(1 + p * (1 - r2_) / _R2_DIFFERENCE)

    # Criterion 3: residual SD within a multiplicative margin `mmoe` (Part I section 3.3).
    def resvar_mmoe(n: int) -> float:
        df = n - p - 1
        low = df / stats.chi2.ppf(0.025, df)
        high = stats.chi2.ppf(0.975, df) / df
        return float(math.sqrt(max(low, high)))

    n3 = p + 2
    while resvar_mmoe(n3) > mmoe:
        n3 += 1

    # Criterion 4: intercept within a multiplicative margin `mmoe` (Part I section 3.4).
    def intercept_halfwidth(n: int) -> float:
        return float(stats.t.ppf(0.975, n - p - 1)) * math.sqrt(sd_**2 * (1 - r2_) / n)

    n4 = p + 2
    while (abs(intercept) + intercept_halfwidth(n4)) / abs(intercept) > mmoe:
        n4 += 1
    criteria = (
        Criterion(
            1,
            f"expected shrinkage of predictor effects ≥ {shrinkage:g}",
            n1,
            _linear_shrinkage(p, r2_, n1),
        ),
        Criterion(
            2,
            f"apparent and adjusted R² differ by ≤ {_R2_DIFFERENCE:g}",
            n2,
            _linear_shrinkage(p, r2_, n2),
        ),
        Criterion(
            3, f"residual SD estimated within a factor {mmoe:g}", n3, _linear_shrinkage(p, r2_, n3)
        ),
        Criterion(
            4,
            f"mean outcome (intercept) estimated within a factor {mmoe:g}",
            n4,
            _linear_shrinkage(p, r2_, n4),
        ),
    )
    decider = _pick(criteria)
    n = decider.n
    half = intercept_halfwidth(n)
    return SampleSizeResult(
        outcome="continuous",
        parameters=p,
        n=n,
        events=None,
        events_per_parameter=None,
        subjects_per_parameter=n / p,
        decided_by=decider.number,
        decided_by_name=decider.name,
        criteria=criteria,
        r2=r2_,
        r2_source="R² given",
        max_r2_cox_snell=None,
        r2_nagelkerke=None,
        target_shrinkage=shrinkage,
        expected_shrinkage=_linear_shrinkage(p, r2_, n),
        intercept=float(intercept),
        sd=sd_,
        intercept_ci=(float(intercept) - half, float(intercept) + half),
    )
