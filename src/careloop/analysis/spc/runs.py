"""Runs analysis for run and control charts: the Anhøj rules and their box variants.

The Anhøj rules (Anhøj & Olesen 2014, PLoS ONE 9:e113825) flag non-random
variation when, among the *useful* observations of a part (those not on the
centre line and not missing or excluded),

* the longest run on one side of the centre line is longer than
  ``round(log2(n_useful)) + 3`` (Schilling 2012), or
* the number of crossings of the centre line is smaller than the 5% lower
  binomial quantile ``qbinom(0.05, n_useful - 1, 0.5)`` (Chen 2010).

``bestbox`` and ``cutbox`` are the modified limits of Anhøj & Wentzel-Larsen,
"Smooth operator: modifying the Anhøj rules to improve runs analysis in
statistical process control" (The R Journal, 2020), tabulated there for 10 to
100 useful observations; outside that range qicharts2 falls back to the Anhøj
rules and so does this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

RunsMethod = Literal["anhoej", "bestbox", "cutbox"]
"""How runs signals are judged (qicharts2's ``method`` argument)."""

FloatArray = npt.NDArray[np.float64]

# Best-box and cut-box limits for n = 10..100 useful observations, from Anhøj &
# Wentzel-Larsen (2020), table in the paper's supplement (the same numbers
# qicharts2 0.7 ships). cb/lb: minimum crossings / maximum longest run of the
# best box; cbord/lbord: the border values of the cut box (0 = no cut box).
# fmt: off
_BOX_N0 = 10
_BOX_CB = (
    2, 3, 3, 3, 3, 4, 5, 5, 5, 5, 6, 7, 6, 6, 6, 6, 9, 9, 9, 10,
    11, 11, 11, 11, 11, 12, 13, 14, 13, 15, 15, 15, 14, 14, 17, 17, 17, 17, 19, 19,
    19, 19, 19, 21, 21, 21, 21, 23, 23, 23, 23, 23, 25, 25, 26, 26, 27, 27, 27, 28,
    29, 29, 29, 30, 30, 31, 31, 31, 32, 33, 33, 33, 34, 33, 35, 35, 35, 35, 37, 37,
    38, 37, 39, 39, 39, 39, 39, 41, 41, 42, 41,
)
_BOX_LB = (
    6, 7, 6, 6, 6, 7, 8, 7, 7, 7, 7, 8, 7, 7, 7, 7, 9, 8, 8, 8,
    10, 9, 8, 8, 8, 8, 9, 10, 8, 11, 9, 9, 8, 8, 10, 9, 9, 9, 12, 10,
    9, 9, 9, 11, 10, 9, 9, 12, 10, 10, 9, 9, 11, 10, 11, 10, 12, 10, 10, 11,
    14, 11, 10, 11, 10, 12, 11, 10, 11, 13, 11, 10, 11, 10, 11, 11, 10, 10, 12, 11,
    12, 10, 13, 11, 11, 10, 10, 12, 11, 12, 10,
)
_BOX_CBORD = (
    3, 4, 0, 0, 0, 6, 6, 0, 6, 6, 0, 0, 7, 7, 7, 0, 10, 10, 11, 0,
    12, 14, 0, 12, 13, 0, 15, 0, 0, 0, 0, 17, 0, 0, 0, 0, 19, 20, 20, 21,
    0, 21, 21, 23, 23, 0, 23, 25, 24, 26, 0, 24, 27, 27, 27, 27, 29, 0, 29, 29,
    30, 31, 30, 31, 0, 32, 34, 33, 33, 37, 35, 0, 36, 36, 0, 38, 36, 38, 38, 39,
    0, 39, 41, 40, 42, 0, 41, 42, 44, 43, 42,
)
_BOX_LBORD = (
    5, 6, 0, 0, 0, 6, 7, 0, 6, 5, 0, 0, 6, 6, 6, 0, 7, 7, 7, 0,
    9, 8, 0, 7, 7, 0, 8, 0, 0, 0, 0, 8, 0, 0, 0, 0, 8, 7, 11, 9,
    0, 8, 7, 9, 8, 0, 8, 11, 9, 8, 0, 8, 9, 9, 10, 9, 10, 0, 8, 8,
    13, 9, 9, 10, 0, 9, 8, 9, 8, 11, 9, 0, 10, 7, 0, 8, 9, 8, 10, 9,
    0, 9, 12, 10, 8, 0, 8, 9, 9, 10, 9,
)
# fmt: on


@dataclass(frozen=True)
class RunsResult:
    """The runs analysis of one part."""

    n_obs: int
    """Included observations of the part (missing values count, excluded points don't)."""
    n_useful: int
    """Included, non-missing observations not on the centre line."""
    longest_run: float
    """Length of the longest run on one side of the centre line (NaN if no useful point)."""
    longest_run_max: float
    """Largest longest run expected by chance: ``round(log2(n_useful)) + 3``."""
    n_crossings: float
    """Number of times the series crosses the centre line."""
    n_crossings_min: float
    """Fewest crossings expected by chance: ``qbinom(0.05, n_useful - 1, 0.5)``."""
    runs_signal: bool
    """True when the longest run is too long or there are too few crossings."""


@lru_cache(maxsize=4096)
def longest_run_max(n_useful: int) -> int:
    """Upper limit of the longest run for ``n_useful`` observations (Schilling 2012)."""
    # Python's round() rounds half to even like R's round(); log2 of an integer
    # is never exactly x.5, so the rounding rule cannot matter here anyway.
    return round(math.log2(n_useful)) + 3


@lru_cache(maxsize=4096)
def crossings_min(n_useful: int) -> int:
    """Lower limit of the number of crossings: the 5% quantile of Binomial(n_useful - 1, 0.5)."""
    trials = max(n_useful - 1, 0)
    if trials == 0:
        return 0
    # The smallest c with P(C <= c) >= 0.05, as R's qbinom. A tiny tolerance
    # protects against the cumulative sum landing a rounding error below 0.05.
    cdf = stats.binom.cdf(np.arange(trials + 1), trials, 0.5)
    return int(np.argmax(cdf >= 0.05 * (1 - 64 * np.finfo(float).eps)))


def runs_signal(
    n_useful: int, n_crossings: int, longest: int, method: RunsMethod = "anhoej"
) -> bool:
    """Whether a part with these run statistics signals non-random variation."""
    if method != "anhoej" and _BOX_N0 <= n_useful <= _BOX_N0 + len(_BOX_CB) - 1:
        i = n_useful - _BOX_N0
        cb, lb = _BOX_CB[i], _BOX_LB[i]
        if method == "bestbox":
            return not (n_crossings >= cb and longest <= lb)
        cbord, lbord = _BOX_CBORD[i], _BOX_LBORD[i]
        if cbord == 0:
            return not (n_crossings >= cb and longest <= lb)
        inside = (
            (n_crossings >= cb + 1 and longest <= lb - 1)
            or (n_crossings == cb and longest <= lbord)
            or (n_crossings >= cbord and longest <= lb)
        )
        return not inside
    return not (n_crossings >= crossings_min(n_useful) and longest <= longest_run_max(n_useful))


def analyse_runs(
    y: FloatArray, cl: FloatArray, include: npt.NDArray[np.bool_], method: RunsMethod = "anhoej"
) -> RunsResult:
    """Runs analysis of one part.

    Args:
        y: The plotted values of the part, in x order.
        cl: The centre line at each point.
        include: False for points excluded from the calculations.
        method: ``"anhoej"``, ``"bestbox"`` or ``"cutbox"``.
    """
    yi = y[include]
    side = np.sign(yi - cl[include])
    side = side[(side != 0) & ~np.isnan(side)]
    n_useful = int(side.size)
    if n_useful == 0:
        return RunsResult(int(yi.size), 0, math.nan, math.nan, math.nan, math.nan, False)
    # Run boundaries are where the side changes; runs = boundaries + 1.
    changes = np.flatnonzero(side[1:] != side[:-1])
    n_crossings = int(changes.size)
    edges = np.concatenate(([-1], changes, [n_useful - 1]))
    longest = int(np.max(np.diff(edges)))
    return RunsResult(
        n_obs=int(yi.size),
        n_useful=n_useful,
        longest_run=float(longest),
        longest_run_max=float(longest_run_max(n_useful)),
        n_crossings=float(n_crossings),
        n_crossings_min=float(crossings_min(n_useful)),
        runs_signal=runs_signal(n_useful, n_crossings, longest, method),
    )
