"""Penalised logistic regression for risk prediction with few events.

Ridge, lasso and elastic net come from scikit-learn with the penalty chosen
by cross-validated log-loss; Firth's correction from
:mod:`careloop.analysis.risk.firth`. Internal validation is Harrell's
bootstrap optimism correction (Harrell, Lee & Mark, Stat Med 1996;15:361–87;
Steyerberg, *Clinical Prediction Models*, ch. 17): the whole fitting
procedure, penalty choice included, is repeated in each bootstrap sample; the
mean drop in performance from the bootstrap sample to the original data is
the optimism subtracted from the apparent performance.

Pavlou et al. (BMJ 2015;351:h3868) explain why penalisation helps when
events are few, and why it is no cure for too small a sample: check
:func:`~careloop.analysis.risk.minimum_sample_size` first.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from careloop.analysis._frames import require_columns
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.risk.firth import firth_logistic
from careloop.analysis.risk.performance import (
    brier_score,
    c_statistic,
    calibration,
    calibration_table,
    decision_curve,
)
from careloop.core.errors import ErrorDetail, InputError

Penalty = Literal["ridge", "lasso", "elasticnet", "firth", "none"]
FloatArray = npt.NDArray[np.float64]

FORMAT_VERSION = 1
"""Version of :meth:`RiskModel.to_dict`'s layout."""

_METRICS = ("c_statistic", "calibration_slope", "calibration_in_the_large", "brier_score")


class EventsPerParameterWarning(StatisticalWarning):
    """Fewer than 10 events (or non-events) per candidate predictor parameter."""


@dataclass(frozen=True)
class Encoding:
    """How one raw predictor becomes model columns."""

    name: str
    """Column name in the input data."""
    levels: tuple[str, ...] = ()
    """Categorical: all levels, the first is the reference; empty for numeric."""


@dataclass(frozen=True)
class ValidationMetric:
    """One performance measure, apparent and corrected for optimism."""

    name: str
    """``c_statistic``, ``calibration_slope``, ``calibration_in_the_large`` or ``brier_score``."""
    apparent: float
    """Performance in the data the model was fitted to."""
    optimism: float
    """Mean bootstrap optimism (bootstrap-sample minus original-data performance)."""
    corrected: float
    """``apparent − optimism``: the expected performance in new patients like these."""


@dataclass(frozen=True)
class RiskModel:
    """A fitted logistic risk model with its validation, ready to save.

    Save with :meth:`to_dict` (JSON-serialisable) and load with
    :meth:`from_dict`; predict with :meth:`predict_risk`.
    """

    outcome: str
    """Outcome column name (1 = event)."""
    encodings: tuple[Encoding, ...]
    """Raw predictors and how they are encoded."""
    feature_names: tuple[str, ...]
    """Model columns (categorical levels as ``name=level``)."""
    intercept: float
    """Intercept on the log-odds scale."""
    coefficients: tuple[float, ...]
    """Log-odds ratios per unit of each model column (original scale)."""
    penalty: Penalty
    """Estimation method."""
    penalty_strength: float | None
    """Chosen inverse regularisation strength C (scikit-learn), None for Firth/none."""
    l1_ratio: float | None
    """Elastic-net mixing (1 = lasso, 0 = ridge), None for Firth/none."""
    n: int
    """Training patients."""
    events: int
    """Training events."""
    parameters: int
    """Candidate predictor parameters (model columns)."""
    training_sha256: str
    """SHA-256 of the training data used (outcome and predictors, canonical CSV)."""
    validation: tuple[ValidationMetric, ...]
    """Apparent and optimism-corrected performance."""
    n_bootstrap: int
    """Bootstrap replicates for optimism correction (0: none)."""
    calibration: tuple[dict[str, float], ...]
    """Observed against predicted risk by decile (rows of :func:`calibration_table`)."""
    decision_curve: dict[str, tuple[float, ...] | float]
    """Net benefit across thresholds (apparent), fields of :class:`DecisionCurve`."""
    caveats: tuple[str, ...] = field(default=())
    """Warnings raised while fitting, kept with the model."""

    # --- use ---------------------------------------------------------------

    def linear_predictor(self, df: pd.DataFrame) -> FloatArray:
        """Log-odds of the outcome for each row of ``df``."""
        x = _encode(df, self.encodings)
        return np.asarray(self.intercept + x @ np.asarray(self.coefficients), dtype=float)

    def predict_risk(self, df: pd.DataFrame) -> pd.Series:
        """Predicted risk of the outcome for each row of ``df``."""
        lp = self.linear_predictor(df)
        return pd.Series(1 / (1 + np.exp(-lp)), index=df.index, name=f"risk_{self.outcome}")

    def metric(self, name: str) -> ValidationMetric:
        """One validation metric by name."""
        for m in self.validation:
            if m.name == name:
                return m
        raise KeyError(name)

    # --- text and storage --------------------------------------------------

    def summary(self) -> str:
        """A paragraph a clinician can read."""
        c = self.metric("c_statistic")
        s = self.metric("calibration_slope")
        citl = self.metric("calibration_in_the_large")
        method = {
            "ridge": "ridge-penalised",
            "lasso": "lasso-penalised",
            "elasticnet": "elastic-net-penalised",
            "firth": "Firth bias-reduced",
            "none": "unpenalised (maximum likelihood)",
        }[self.penalty]
        lines = [
            f"A {method} logistic model for {self.outcome!r} from {self.n} patients with "
            f"{self.events} events and {self.parameters} predictor parameters "
            f"({self.events / self.parameters:.1f} events per parameter).",
        ]
        if self.n_bootstrap:
            lines.append(
                f"After correcting for optimism ({self.n_bootstrap} bootstrap samples), the "
                f"C statistic is {c.corrected:.3f} (apparent {c.apparent:.3f}), the "
                f"calibration slope {s.corrected:.2f} (1 is ideal; below 1 means predictions "
                f"too extreme) and calibration-in-the-large {citl.corrected:.2f} (0 is ideal)."
            )
        else:
            lines.append(
                f"Apparent C statistic {c.apparent:.3f} and calibration slope {s.apparent:.2f}; "
                "not validated internally (n_bootstrap = 0): expect worse in new patients."
            )
        nonzero = sum(1 for b in self.coefficients if b != 0)
        if nonzero < len(self.coefficients):
            lines.append(f"The lasso kept {nonzero} of {len(self.coefficients)} parameters.")
        lines.extend(f"Caveat: {c}" for c in self.caveats)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary that :meth:`from_dict` reads back."""
        out = asdict(self)
        out["format_version"] = FORMAT_VERSION
        out["kind"] = "careloop.risk_model"
        return json.loads(json.dumps(out))  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskModel:
        """Rebuild a model saved with :meth:`to_dict`."""
        if data.get("kind") != "careloop.risk_model":
            raise InputError("Not a careloop risk model (kind is not 'careloop.risk_model').")
        if data.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"Risk model format version {data.get('format_version')!r} is not supported "
                f"(this careloop reads version {FORMAT_VERSION})."
            )
        curve = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data["decision_curve"].items()
        }
        return cls(
            outcome=data["outcome"],
            encodings=tuple(Encoding(e["name"], tuple(e["levels"])) for e in data["encodings"]),
            feature_names=tuple(data["feature_names"]),
            intercept=float(data["intercept"]),
            coefficients=tuple(float(b) for b in data["coefficients"]),
            penalty=data["penalty"],
            penalty_strength=data["penalty_strength"],
            l1_ratio=data["l1_ratio"],
            n=int(data["n"]),
            events=int(data["events"]),
            parameters=int(data["parameters"]),
            training_sha256=data["training_sha256"],
            validation=tuple(ValidationMetric(**m) for m in data["validation"]),
            n_bootstrap=int(data["n_bootstrap"]),
            calibration=tuple(dict(row) for row in data["calibration"]),
            decision_curve=curve,
            caveats=tuple(data.get("caveats", ())),
        )


# --- encoding ----------------------------------------------------------------


def _encodings_for(df: pd.DataFrame, predictors: Sequence[str]) -> tuple[Encoding, ...]:
    out = []
    for name in predictors:
        col = df[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            out.append(Encoding(name))
        else:
            levels = tuple(sorted(str(v) for v in col.dropna().unique()))
            if len(levels) < 2:
                raise InputError(
                    f"Predictor {name!r} has a single level ({', '.join(levels)}); drop it.",
                    [ErrorDetail(name, "needs at least two levels")],
                )
            out.append(Encoding(name, levels))
    return tuple(out)


def _feature_names(encodings: Sequence[Encoding]) -> tuple[str, ...]:
    names: list[str] = []
    for e in encodings:
        if e.levels:
            names.extend(f"{e.name}={lv}" for lv in e.levels[1:])
        else:
            names.append(e.name)
    return tuple(names)


def _encode(df: pd.DataFrame, encodings: Sequence[Encoding]) -> FloatArray:
    require_columns(df, [("predictor", e.name) for e in encodings])
    cols: list[FloatArray] = []
    for e in encodings:
        col = df[e.name]
        if col.isna().any():
            row = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise InputError(
                f"Predictor {e.name!r} has missing values (first at row {row}); impute or "
                "drop those rows first.",
                [ErrorDetail(f"row {row}:{e.name}", "missing value")],
            )
        if e.levels:
            values = col.astype(str)
            unknown = sorted(set(values) - set(e.levels))
            if unknown:
                raise InputError(
                    f"Predictor {e.name!r} has levels the model never saw: {', '.join(unknown)}.",
                    [ErrorDetail(e.name, f"known levels: {', '.join(e.levels)}")],
                )
            for lv in e.levels[1:]:
                cols.append(np.asarray((values == lv).to_numpy(dtype=float), dtype=np.float64))
        else:
            try:
                cols.append(col.to_numpy(dtype=float))
            except (TypeError, ValueError) as exc:
                raise InputError(f"Predictor {e.name!r} is not numeric.") from exc
    return np.column_stack(cols) if cols else np.zeros((len(df), 0))


def _training_hash(df: pd.DataFrame, outcome: str, predictors: Sequence[str]) -> str:
    canonical = df[[outcome, *predictors]].to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- fitting -----------------------------------------------------------------


class _Separation(Exception):
    """Maximum likelihood estimates do not exist (the outcome is separated)."""


_SEPARATION_MESSAGE = (
    "The outcome is perfectly or quasi-perfectly separated by the predictors: maximum "
    "likelihood estimates are infinite, so an unpenalised model would report meaningless "
    "coefficients. Use penalty='firth' (made for this) or a penalised fit."
)


@dataclass(frozen=True)
class _Fit:
    intercept: float
    coefficients: FloatArray
    c: float | None


def _fit(
    x: FloatArray,
    y: FloatArray,
    penalty: Penalty,
    *,
    l1_ratio: float,
    cv_folds: int,
    seed: int,
) -> _Fit:
    if penalty == "firth":
        f = firth_logistic(x, y)
        return _Fit(f.intercept, np.asarray(f.coefficients), None)
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    if (sd == 0).any():
        raise InputError("A predictor is constant in the data (or in a bootstrap sample).")
    z = (x - mean) / sd
    with warnings.catch_warnings():
        # convergence to 1e-4 is ample for prediction; the result is checked by validation
        warnings.simplefilter("ignore", ConvergenceWarning)
        if penalty == "none":
            est: Any = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10)
            est.fit(z, y)
            c_value = None
        else:
            ratio = {"ridge": 0.0, "lasso": 1.0, "elasticnet": l1_ratio}[penalty]
            folds = int(min(cv_folds, y.sum(), len(y) - y.sum()))
            if folds < 2:
                raise InputError("Too few events to choose a penalty by cross-validation.")
            est = LogisticRegressionCV(
                Cs=10,
                l1_ratios=(ratio,),
                cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                scoring="neg_log_loss",
                solver="newton-cholesky" if ratio == 0.0 else "saga",
                max_iter=5000,
                use_legacy_attributes=False,
            )
            est.fit(z, y)
            c_value = float(np.ravel(est.C_)[0])
    beta_z = np.ravel(est.coef_)
    if penalty == "none":
        # under separation the fitted log-odds run off to ±infinity; |lp| > 25 means a
        # fitted risk within 1e-11 of 0 or 1, which a finite ML estimate does not produce
        lp = float(np.ravel(est.intercept_)[0]) + z @ beta_z
        if not np.isfinite(lp).all() or float(np.max(np.abs(lp))) > 25:
            raise _Separation(_SEPARATION_MESSAGE)
    beta = beta_z / sd
    intercept = float(np.ravel(est.intercept_)[0] - np.sum(beta * mean))
    return _Fit(intercept, beta, c_value)


def _performance(y: FloatArray, risk: FloatArray) -> dict[str, float]:
    cal = calibration(y, risk)
    return {
        "c_statistic": c_statistic(y, risk),
        "calibration_slope": cal.slope,
        "calibration_in_the_large": cal.in_the_large,
        "brier_score": brier_score(y, risk),
    }


def _risk(fit: _Fit, x: FloatArray) -> FloatArray:
    lp = fit.intercept + x @ fit.coefficients
    return np.asarray(1 / (1 + np.exp(-lp)), dtype=float)


def fit_risk_model(
    df: pd.DataFrame,
    *,
    outcome: str,
    predictors: Sequence[str],
    penalty: Penalty = "ridge",
    l1_ratio: float = 0.5,
    n_bootstrap: int = 200,
    cv_folds: int = 5,
    seed: int = 0,
) -> RiskModel:
    """Fit a penalised logistic risk model and validate it by the bootstrap.

    Long because it documents its options and follows the model-building steps in order
    (checks, encoding, fit, bootstrap optimism correction, decision curve), each sharing
    the encoded data.

    Args:
        df: One row per patient.
        outcome: Column coded 0/1 (or False/True): 1 is the event.
        predictors: Candidate predictor columns; text columns become indicator
            columns (first level in sorted order is the reference).
        penalty: ``"ridge"`` (default), ``"lasso"``, ``"elasticnet"``,
            ``"firth"`` or ``"none"``.
        l1_ratio: Elastic-net mixing parameter.
        n_bootstrap: Bootstrap replicates for optimism correction (Harrell);
            0 skips internal validation. 200 is Harrell's usual choice.
        cv_folds: Folds for choosing the penalty (fewer if events are few).
        seed: Seed for the folds and the bootstrap, so results reproduce.

    Returns:
        The model, its apparent and optimism-corrected performance, a
        calibration table and a decision curve.

    Warns:
        EventsPerParameterWarning: fewer than 10 events (or non-events) per
            parameter.

    Raises:
        InputError: Missing columns or values, an outcome that is not 0/1 or
            has no events, or a constant predictor.
    """
    if penalty not in ("ridge", "lasso", "elasticnet", "firth", "none"):
        raise InputError(
            f"penalty must be ridge, lasso, elasticnet, firth or none, got {penalty!r}."
        )
    if not predictors:
        raise InputError("Give at least one predictor column.")
    require_columns(df, [("outcome", outcome), *(("predictor", p) for p in predictors)])
    y_col = df[outcome]
    if y_col.isna().any():
        row = int(np.flatnonzero(y_col.isna().to_numpy())[0])
        raise InputError(
            f"The outcome {outcome!r} is missing for some patients (first at row {row}).",
            [ErrorDetail(f"row {row}:{outcome}", "missing outcome")],
        )
    y: FloatArray = np.asarray(y_col.astype(float).to_numpy(), dtype=np.float64)
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputError(f"The outcome {outcome!r} must be coded 0/1 (1 = event).")
    events = int(y.sum())
    if events == 0 or events == len(y):
        raise InputError(
            f"The outcome {outcome!r} has {events} events in {len(y)} patients; a risk model "
            "needs both events and non-events."
        )
    encodings = _encodings_for(df, predictors)
    x = _encode(df, encodings)
    names = _feature_names(encodings)
    parameters = len(names)
    limiting = min(events, len(y) - events)
    caveats: list[str] = []
    epp = limiting / parameters
    if epp < 10:
        message = (
            f"Only {epp:.1f} events per candidate parameter ({limiting} "
            f"{'events' if limiting == events else 'non-events'}, {parameters} parameters). "
            "Expect overfitting: check the optimism-corrected calibration slope, and size "
            "the study by Riley et al.'s criteria (risk.minimum_sample_size) rather than "
            "by 10 events per parameter."
        )
        warnings.warn(message, EventsPerParameterWarning, stacklevel=2)
        caveats.append(message)

    try:
        fit = _fit(x, y, penalty, l1_ratio=l1_ratio, cv_folds=cv_folds, seed=seed)
    except _Separation as exc:
        raise InputError(str(exc)) from None
    apparent_risk = _risk(fit, x)
    apparent = _performance(y, apparent_risk)
    optimism = dict.fromkeys(_METRICS, 0.0)
    if n_bootstrap:
        rng = np.random.default_rng(seed)
        diffs: dict[str, list[float]] = {m: [] for m in _METRICS}
        used = 0
        for b in range(n_bootstrap):
            idx = rng.integers(0, len(y), len(y))
            yb, xb = y[idx], x[idx]
            if yb.min() == yb.max() or (xb.std(axis=0) == 0).any():
                continue  # an unusable resample (no events or a constant column)
            try:
                fb = _fit(xb, yb, penalty, l1_ratio=l1_ratio, cv_folds=cv_folds, seed=seed + b + 1)
            except _Separation:
                continue
            boot = _performance(yb, _risk(fb, xb))
            test = _performance(y, _risk(fb, x))
            for m in _METRICS:
                diff = boot[m] - test[m]
                if math.isfinite(diff):  # a slope is undefined when a fit predicts one risk
                    diffs[m].append(diff)
            used += 1
        if used < n_bootstrap / 2:
            raise InputError(
                f"Only {used} of {n_bootstrap} bootstrap samples could be fitted "
                "(too few events or rare categories); the model cannot be validated."
            )
        optimism = {m: float(np.mean(diffs[m])) if diffs[m] else math.nan for m in _METRICS}
        if used < n_bootstrap:
            caveats.append(
                f"{n_bootstrap - used} of {n_bootstrap} bootstrap samples could not be fitted "
                "(no events, a constant predictor or separation) and were left out of the "
                "optimism estimate."
            )
    validation = tuple(
        ValidationMetric(m, apparent[m], optimism[m], apparent[m] - optimism[m]) for m in _METRICS
    )
    curve = decision_curve(y, apparent_risk)
    return RiskModel(
        outcome=outcome,
        encodings=encodings,
        feature_names=names,
        intercept=fit.intercept,
        coefficients=tuple(float(b) for b in fit.coefficients),
        penalty=penalty,
        penalty_strength=None if fit.c is None or not math.isfinite(fit.c) else fit.c,
        l1_ratio={"ridge": 0.0, "lasso": 1.0, "elasticnet": l1_ratio}.get(penalty),
        n=len(y),
        events=events,
        parameters=parameters,
        training_sha256=_training_hash(df, outcome, predictors),
        validation=validation,
        n_bootstrap=n_bootstrap,
        calibration=tuple(
            {str(k): float(v) for k, v in row.items()}
            for row in calibration_table(y, apparent_risk).to_dict("records")
        ),
        decision_curve={
            "thresholds": curve.thresholds,
            "net_benefit_model": curve.net_benefit_model,
            "net_benefit_all": curve.net_benefit_all,
            "prevalence": curve.prevalence,
        },
        caveats=tuple(caveats),
    )
