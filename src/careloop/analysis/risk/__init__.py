"""Risk prediction with few events.

- :func:`minimum_sample_size` — Riley et al.'s criteria for the sample size
  needed to develop a prediction model.
"""

from careloop.analysis.risk.samplesize import (
    Criterion,
    SampleSizeResult,
    cox_snell_r2_from_c_statistic,
    minimum_sample_size,
)

__all__ = [
    "Criterion",
    "SampleSizeResult",
    "cox_snell_r2_from_c_statistic",
    "minimum_sample_size",
]
