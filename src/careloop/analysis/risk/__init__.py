"""Risk prediction with few events.

- :func:`minimum_sample_size` — Riley et al.'s criteria for the sample size
  needed to develop a prediction model.
- :func:`fit_risk_model` — ridge, lasso, elastic-net or Firth logistic
  regression with bootstrap optimism correction; a :class:`RiskModel` that
  saves to and loads from a JSON-ready dictionary.
- :func:`c_statistic`, :func:`calibration`, :func:`calibration_table`,
  :func:`decision_curve` — performance of predicted risks.
"""

from careloop.analysis.risk.firth import FirthFit, firth_logistic
from careloop.analysis.risk.models import (
    Encoding,
    EventsPerParameterWarning,
    RiskModel,
    ValidationMetric,
    fit_risk_model,
)
from careloop.analysis.risk.performance import (
    Calibration,
    DecisionCurve,
    brier_score,
    c_statistic,
    calibration,
    calibration_table,
    decision_curve,
)
from careloop.analysis.risk.samplesize import (
    Criterion,
    SampleSizeResult,
    cox_snell_r2_from_c_statistic,
    minimum_sample_size,
)

__all__ = [
    "Calibration",
    "Criterion",
    "DecisionCurve",
    "Encoding",
    "EventsPerParameterWarning",
    "FirthFit",
    "RiskModel",
    "SampleSizeResult",
    "ValidationMetric",
    "brier_score",
    "c_statistic",
    "calibration",
    "calibration_table",
    "cox_snell_r2_from_c_statistic",
    "decision_curve",
    "firth_logistic",
    "fit_risk_model",
    "minimum_sample_size",
]
