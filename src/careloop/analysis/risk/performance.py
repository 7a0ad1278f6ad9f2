"""How good are predicted risks: discrimination, calibration, net benefit.

- C statistic: area under the ROC curve (scikit-learn).
- Calibration slope and calibration-in-the-large: logistic recalibration of
  the outcome on the logit of the predicted risk (Cox 1958; Van Calster et
  al., J Clin Epidemiol 2016;74:167–76), fitted with statsmodels.
- Net benefit: Vickers & Elkin, Med Decis Making 2006;26:565–74,
  NB = TP/n − FP/n × pt / (1 − pt).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import statsmodels.api as sm
from scipy import optimize
from sklearn.metrics import roc_auc_score

from careloop.core.errors import InputError

FloatArray = npt.NDArray[np.float64]

_EPS = 1e-10


def _as_arrays(y: npt.ArrayLike, risk: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    yv = np.asarray(y, dtype=float)
    pv = np.asarray(risk, dtype=float)
    if yv.shape != pv.shape or yv.ndim != 1:
        raise InputError("Outcomes and predicted risks must be two lists of the same length.")
    if not np.isin(yv, (0.0, 1.0)).all():
        raise InputError("Outcomes must be coded 0 (no event) and 1 (event).")
    if ((pv < 0) | (pv > 1) | np.isnan(pv)).any():
        raise InputError("Predicted risks must lie between 0 and 1.")
    return yv, pv


def c_statistic(y: npt.ArrayLike, risk: npt.ArrayLike) -> float:
    """Concordance (C) statistic: area under the ROC curve.

    Raises:
        InputError: Everyone has the same outcome (C is then undefined).
    """
    yv, pv = _as_arrays(y, risk)
    if yv.min() == yv.max():
        raise InputError(
            "The C statistic needs both events and non-events; all outcomes are equal."
        )
    return float(roc_auc_score(yv, pv))


@dataclass(frozen=True)
class Calibration:
    """Calibration of predicted risks against observed outcomes."""

    slope: float
    """Calibration slope: 1 is ideal, < 1 means predictions too extreme (overfitting)."""
    in_the_large: float
    """Calibration-in-the-large (intercept with the logit of the risk as offset): 0 is ideal."""
    observed_expected: float
    """Observed events / sum of predicted risks."""


def calibration(y: npt.ArrayLike, risk: npt.ArrayLike) -> Calibration:
    """Calibration slope and calibration-in-the-large by logistic recalibration.

    The slope is NaN when every predicted risk is the same (it is then undefined).
    """
    yv, pv = _as_arrays(y, risk)
    if yv.min() == yv.max():
        raise InputError("Calibration needs both events and non-events; all outcomes are equal.")
    p_clip = np.clip(pv, _EPS, 1 - _EPS)
    lp = np.log(p_clip / (1 - p_clip))

    # calibration-in-the-large: the intercept a with Σ y = Σ expit(a + lp); the score is
    # monotone in a, so a bracketing root finder is robust even with extreme risks
    def score(a: float) -> float:
        return float(np.sum(yv - 1 / (1 + np.exp(-(a + lp)))))

    citl = float(optimize.brentq(score, -60.0, 60.0, xtol=1e-10))
    if float(np.std(lp)) < 1e-8:
        slope = float("nan")
    else:
        with warnings.catch_warnings():
            # near-separation only makes the slope large, which is what it should report
            warnings.simplefilter("ignore")
            fit = sm.GLM(
                yv, sm.add_constant(lp, has_constant="add"), family=sm.families.Binomial()
            ).fit()
        slope = float(fit.params[1])
    return Calibration(
        slope=slope,
        in_the_large=citl,
        observed_expected=float(yv.sum() / max(pv.sum(), _EPS)),
    )


def brier_score(y: npt.ArrayLike, risk: npt.ArrayLike) -> float:
    """Mean squared difference between outcome and predicted risk."""
    yv, pv = _as_arrays(y, risk)
    return float(np.mean((yv - pv) ** 2))


def calibration_table(y: npt.ArrayLike, risk: npt.ArrayLike, *, groups: int = 10) -> pd.DataFrame:
    """Observed against predicted risk by group of predicted risk (deciles by default).

    Returns:
        One row per group: ``n``, ``mean_predicted``, ``observed`` and a 95%
        Wilson interval ``observed_low`` / ``observed_high``.
    """
    yv, pv = _as_arrays(y, risk)
    groups = max(1, min(groups, len(np.unique(pv))))
    frame = pd.DataFrame({"y": yv, "p": pv})
    frame["group"] = pd.qcut(frame["p"].rank(method="first"), groups, labels=False)
    rows = []
    for _, g in frame.groupby("group", sort=True):
        n = len(g)
        obs = float(g["y"].mean())
        z = 1.959963984540054
        centre = (obs + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(obs * (1 - obs) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        rows.append(
            {
                "n": n,
                "mean_predicted": float(g["p"].mean()),
                "observed": obs,
                "observed_low": centre - half,
                "observed_high": centre + half,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class DecisionCurve:
    """Net benefit of deciding by the model, treating all and treating none."""

    thresholds: tuple[float, ...]
    """Threshold risks pt at which a clinician would act."""
    net_benefit_model: tuple[float, ...]
    """Net benefit of acting when predicted risk ≥ pt."""
    net_benefit_all: tuple[float, ...]
    """Net benefit of acting for everyone."""
    prevalence: float
    """Observed event proportion."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionCurve:
        """The curve back from its fields (as :attr:`RiskModel.decision_curve` stores them)."""
        return cls(
            thresholds=tuple(data["thresholds"]),
            net_benefit_model=tuple(data["net_benefit_model"]),
            net_benefit_all=tuple(data["net_benefit_all"]),
            prevalence=float(data["prevalence"]),
        )

    def to_frame(self) -> pd.DataFrame:
        """The curve as a table (threshold, model, treat all, treat none)."""
        return pd.DataFrame(
            {
                "threshold": self.thresholds,
                "net_benefit_model": self.net_benefit_model,
                "net_benefit_all": self.net_benefit_all,
                "net_benefit_none": [0.0] * len(self.thresholds),
            }
        )

    def summary(self) -> str:
        """Where deciding by the model beats treating everyone and treating no one."""
        better = [
            t
            for t, m, a in zip(
                self.thresholds, self.net_benefit_model, self.net_benefit_all, strict=True
            )
            if m > max(a, 0.0)
        ]
        if not better:
            return (
                "At no threshold risk does deciding by the model give more net benefit than "
                "treating everyone or no one (Vickers & Elkin 2006)."
            )
        return (
            f"Deciding by the model gives more net benefit than treating everyone or no one "
            f"at {len(better)} of {len(self.thresholds)} threshold risks, between "
            f"{min(better):.0%} and {max(better):.0%} (Vickers & Elkin 2006; event "
            f"proportion {self.prevalence:.1%})."
        )


def decision_curve(
    y: npt.ArrayLike,
    risk: npt.ArrayLike,
    *,
    thresholds: Sequence[float] | None = None,
) -> DecisionCurve:
    """Net benefit across threshold risks (Vickers & Elkin 2006).

    Args:
        y: Observed outcomes, 0/1.
        risk: Predicted risks.
        thresholds: Threshold risks in (0, 1); default 0.01 to 0.99 by 0.01.
    """
    yv, pv = _as_arrays(y, risk)
    pts = (
        np.round(np.arange(0.01, 1.0, 0.01), 2)
        if thresholds is None
        else np.asarray(thresholds, dtype=float)
    )
    if ((pts <= 0) | (pts >= 1)).any():
        raise InputError("Thresholds must lie strictly between 0 and 1.")
    n = len(yv)
    prevalence = float(yv.mean())
    model, treat_all = [], []
    for pt in pts:
        odds = pt / (1 - pt)
        act = pv >= pt
        tp = float(np.sum(act & (yv == 1)))
        fp = float(np.sum(act & (yv == 0)))
        model.append(tp / n - fp / n * odds)
        treat_all.append(prevalence - (1 - prevalence) * odds)
    return DecisionCurve(
        thresholds=tuple(float(t) for t in pts),
        net_benefit_model=tuple(model),
        net_benefit_all=tuple(treat_all),
        prevalence=prevalence,
    )
