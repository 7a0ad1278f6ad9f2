"""Interrupted time series: segmented regression for evaluating a change.

:func:`segmented_regression` fits the model (:mod:`~careloop.analysis.its.model`)
to data checked and laid out as a design matrix by
:mod:`~careloop.analysis.its.design`, and returns an :class:`ItsResult`
(:mod:`~careloop.analysis.its.result`) with its plain-language summary. The
result is drawn by :mod:`careloop.charts.its`.
"""

from careloop.analysis.its.design import (
    AUTOCORRELATION_METHODS,
    FAMILIES,
    MIN_POINTS_PER_SEGMENT,
    Harmonics,
)
from careloop.analysis.its.model import (
    OVERDISPERSION_WARN,
    Autocorrelation,
    Family,
    segmented_regression,
)
from careloop.analysis.its.result import AutocorrelationDiagnostics, ItsResult, PhaseEffect

__all__ = [
    "AUTOCORRELATION_METHODS",
    "FAMILIES",
    "MIN_POINTS_PER_SEGMENT",
    "OVERDISPERSION_WARN",
    "Autocorrelation",
    "AutocorrelationDiagnostics",
    "Family",
    "Harmonics",
    "ItsResult",
    "PhaseEffect",
    "segmented_regression",
]
