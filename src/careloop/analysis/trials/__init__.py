"""Rapid-cycle randomised tests: design, concealed allocation, analysis, monitoring, power.

A learning community tests small changes (two wordings of a decision-support
card, a reminder or none) by randomising patients, clinicians, sites or days
and reading the result within weeks (Horwitz et al., NEJM 2019). The pieces:

- :mod:`~careloop.analysis.trials.design`: :class:`TrialDesign` and
  :class:`Allocator` — arms, unit of randomisation, simple / permuted-block /
  stratified allocation from a seed, revealed one unit at a time.
- :mod:`~careloop.analysis.trials.comparisons`: :func:`compare_proportions`,
  :func:`compare_means` (Welch), :func:`regression` (cluster-robust when units
  are clustered).
- :mod:`~careloop.analysis.trials.bayes`: :func:`probability_better`
  (beta-binomial).
- :mod:`~careloop.analysis.trials.sequential`: :func:`sequential_boundaries`
  (Lan–DeMets O'Brien–Fleming-type alpha spending, or classic
  O'Brien–Fleming) and :func:`monitor`.
- :mod:`~careloop.analysis.trials.samplesize`: :func:`sample_size_proportions`,
  :func:`sample_size_means`.
"""

from careloop.analysis.trials.bayes import BayesResult, probability_better
from careloop.analysis.trials.comparisons import (
    MeansComparison,
    ProportionsComparison,
    RegressionResult,
    compare_means,
    compare_proportions,
    regression,
)
from careloop.analysis.trials.design import Allocation, Allocator, Assignment, TrialDesign, Unit
from careloop.analysis.trials.samplesize import (
    SampleSize,
    sample_size_means,
    sample_size_proportions,
)
from careloop.analysis.trials.sequential import (
    SequentialBoundaries,
    SequentialResult,
    monitor,
    sequential_boundaries,
)

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
    "Unit",
    "compare_means",
    "compare_proportions",
    "monitor",
    "probability_better",
    "regression",
    "sample_size_means",
    "sample_size_proportions",
    "sequential_boundaries",
]
