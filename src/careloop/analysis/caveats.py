"""Warnings for statistical caveats.

A failure (bad input, a model that cannot be fitted) raises a
:mod:`careloop.core.errors` type. A result that is computed but should be read
with care (over-dispersion ignored, residual autocorrelation, few points)
emits a :class:`StatisticalWarning` and, where the result type has one, is
also listed in its ``caveats`` field so that reports show it.
"""

from __future__ import annotations


class StatisticalWarning(UserWarning):
    """A caveat about a statistical result: computed, but read it with care."""
