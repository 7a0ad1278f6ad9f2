"""The effect estimate every evaluation method reports."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Effect:
    """An estimated effect with its 95% confidence interval and p value.

    For log and logit links the estimate and interval are on the ratio scale
    (rate ratio, odds ratio); the method that returns it says which.
    """

    estimate: float
    """Point estimate."""
    ci_low: float
    """Lower bound of the confidence interval."""
    ci_high: float
    """Upper bound of the confidence interval."""
    p: float
    """Two-sided p value for no effect (NaN where not defined)."""

    def __str__(self) -> str:
        p = "n/a" if math.isnan(self.p) else (f"{self.p:.3f}" if self.p >= 0.001 else "<0.001")
        return f"{self.estimate:.3g} (95% CI {self.ci_low:.3g} to {self.ci_high:.3g}; p {p})"
