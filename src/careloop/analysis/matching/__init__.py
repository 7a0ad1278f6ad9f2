"""Coarsened exact matching (CEM) as in Iacus, King & Porro's R package ``cem``.

:func:`cem` coarsens every covariate, sorts the rows into strata of identical
coarsened values, keeps the strata that hold at least one treated and one
control row, and weights the kept controls so that each stratum counts as
much in the control group as it does in the treated group. The defaults
follow ``cem::cem`` so an analyst moving from R gets the same matched sample
from the same call:

- numeric covariates are cut into equal-width bins whose number of cut
  points is given by Sturges' rule, ``ceil(log2(n) + 1)`` (``nclass.Sturges``),
  spanning the variable's range; intervals are closed on the right and the
  first one also on the left (R's ``cut(..., include.lowest = TRUE)``);
- other covariates (text, categories, booleans) are matched exactly, after an
  optional ``grouping`` of their values;
- a missing value is a value of its own: rows missing the same covariate can
  match each other (cem "matches on missingness").

The multivariate imbalance ``L1`` (before and after matching) is cem's
``imbalance()``/``L1.meas``: numeric covariates are binned with
``pretty(range(x), nclass.scott(x))`` (finer than the matching coarsening and
fixed for before and after), the rest left as they are, and
``L1 = ½ Σ |f − g|`` over the cells of the multivariate histogram of treated
(``f``) and control (``g``) relative frequencies, weighted by the CEM weights
after matching. ``0`` is perfect balance, ``1`` complete separation.

:meth:`CemResult.att` estimates the sample average treatment effect on the
treated (SATT) by weighted least squares of the outcome on the treatment (and
optional covariates) with the CEM weights (``cem::att`` with
``model = "linear"``).

Reference: S. M. Iacus, G. King, G. Porro. *cem: Software for Coarsened
Exact Matching.* Journal of Statistical Software 30(9), 2009.
"""

from careloop.analysis.matching.balance import Imbalance, imbalance
from careloop.analysis.matching.coarsening import (
    Cutpoint,
    l1_histogram_breaks,
    r_pretty,
    sturges_breaks,
)
from careloop.analysis.matching.exact import CemResult, cem

__all__ = [
    "CemResult",
    "Cutpoint",
    "Imbalance",
    "cem",
    "imbalance",
    "l1_histogram_breaks",
    "r_pretty",
    "sturges_breaks",
]
