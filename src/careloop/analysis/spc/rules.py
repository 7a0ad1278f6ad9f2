"""Optional rule sets for special-cause variation beyond Shewhart's 3-sigma rule.

All rules look at one part at a time, at its included, non-missing points in x
order (excluded and missing points are skipped, so "consecutive" means
consecutive among the points that are analysed). Zone tests need a symmetric
sigma; charts without one (run, MR, T, G) evaluate only their non-zone tests.

* **Western Electric** (Western Electric Co., *Statistical Quality Control
  Handbook*, 1956): 1 one point beyond 3σ; 2 two of three consecutive points
  beyond 2σ on the same side; 3 four of five beyond 1σ on the same side;
  4 eight in a row on the same side of the centre line.
* **Nelson** (Nelson, *J Qual Technol* 1984;16:237–9): 1 beyond 3σ; 2 nine in a
  row on one side; 3 six in a row steadily increasing or decreasing;
  4 fourteen in a row alternating up and down; 5 two of three beyond 2σ on one
  side; 6 four of five beyond 1σ on one side; 7 fifteen in a row within 1σ;
  8 eight in a row beyond 1σ on either side.
  Western Electric and Nelson flag the point that completes a pattern.
* **NHS Making Data Count** (NHS England/Improvement, *Making data count*,
  2019; as NHSRplotthedots implements it): a point outside the limits; a shift
  of 7 or more points on one side of the centre line; a trend of 7 or more
  points increasing or decreasing; two of three points close to a limit
  (beyond 2σ, within the limits) on the same side. Every point of a pattern is
  flagged. Each special-cause point is an improvement or a concern given
  ``improvement="up"|"down"``; assurance compares the limits with a target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RuleSet = Literal["anhoej", "western_electric", "nelson", "nhs"]
"""Rule sets ``qic(rules=...)`` accepts; ``anhoej`` (3-sigma + Anhøj runs) is always on."""

Improvement = Literal["up", "down"]
"""Which direction of the measure is better."""

VARIATION_CLASSES = (
    "common_cause",
    "special_cause_improvement",
    "special_cause_concern",
    "special_cause_neither",
)
"""Variation icon classes of Making Data Count (``neither`` without an improvement direction)."""

ASSURANCE_CLASSES = ("pass", "fail", "hit_or_miss")
"""Assurance icon classes of Making Data Count (target against the limits)."""


def _run_lengths_ending(cond: BoolArray) -> npt.NDArray[np.int64]:
    """For each position, how many consecutive True values end there."""
    out = np.zeros(cond.size, dtype=np.int64)
    count = 0
    for i, c in enumerate(cond):
        count = count + 1 if c else 0
        out[i] = count
    return out


def _k_of_m(cond: BoolArray, k: int, m: int) -> BoolArray:
    """Windows of m consecutive points with at least k True; flags each window's last point."""
    out = np.zeros(cond.size, dtype=bool)
    if cond.size < m:
        return out
    sums = np.convolve(cond.astype(np.int64), np.ones(m, dtype=np.int64), mode="valid")
    out[m - 1 :] = sums >= k
    return out


def _spread(last: BoolArray, length: int) -> BoolArray:
    """Mark the ``length`` points ending at each flagged position (whole-pattern flags)."""
    out = last.copy()
    for i in np.flatnonzero(last):
        out[max(0, i - length + 1) : i + 1] = True
    return out


def _same_side_run(side: FloatArray, length: int) -> BoolArray:
    up = _run_lengths_ending(side > 0) >= length
    down = _run_lengths_ending(side < 0) >= length
    return up | down


def _trend(y: FloatArray, points: int) -> tuple[BoolArray, BoolArray]:
    """Last points of strictly increasing / decreasing runs of ``points`` points."""
    d = np.diff(y)
    inc = np.concatenate(([0], _run_lengths_ending(d > 0))) >= points - 1
    dec = np.concatenate(([0], _run_lengths_ending(d < 0))) >= points - 1
    return inc, dec


def _zone_k_of_m(z: FloatArray, beyond: float, k: int, m: int) -> BoolArray:
    with np.errstate(invalid="ignore"):
        hi = _k_of_m(z > beyond, k, m) & (z > beyond)
        lo = _k_of_m(z < -beyond, k, m) & (z < -beyond)
    return hi | lo


def western_electric(y: FloatArray, cl: FloatArray, sigma: FloatArray) -> dict[str, BoolArray]:
    """Western Electric rules 1–4 for the analysed points of one part."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (y - cl) / sigma
    side = np.sign(y - cl)
    with np.errstate(invalid="ignore"):
        r1 = np.abs(z) > 3
    return {
        "we1": r1,
        "we2": _zone_k_of_m(z, 2, 2, 3),
        "we3": _zone_k_of_m(z, 1, 4, 5),
        "we4": _same_side_run(side, 8),
    }


def nelson(y: FloatArray, cl: FloatArray, sigma: FloatArray) -> dict[str, BoolArray]:
    """Nelson rules 1–8 for the analysed points of one part."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (y - cl) / sigma
    side = np.sign(y - cl)
    inc, dec = _trend(y, 6)
    d = np.sign(np.diff(y))
    alternating = np.concatenate(([False], (d[1:] * d[:-1]) < 0))
    alt_len = np.concatenate(([0], _run_lengths_ending(alternating)))
    with np.errstate(invalid="ignore"):
        r1 = np.abs(z) > 3
        within1 = np.abs(z) < 1
        beyond1 = np.abs(z) > 1
    return {
        "nelson1": r1,
        "nelson2": _same_side_run(side, 9),
        "nelson3": inc | dec,
        # 14 points alternate when 13 differences alternate in sign: 12 sign changes.
        "nelson4": alt_len >= 12,
        "nelson5": _zone_k_of_m(z, 2, 2, 3),
        "nelson6": _zone_k_of_m(z, 1, 4, 5),
        "nelson7": _run_lengths_ending(within1) >= 15,
        "nelson8": _run_lengths_ending(beyond1) >= 8,
    }


def making_data_count(
    y: FloatArray, cl: FloatArray, sigma: FloatArray, lcl: FloatArray, ucl: FloatArray
) -> tuple[dict[str, BoolArray], FloatArray]:
    """Making Data Count rules; returns the flags and each point's direction (+1 up, -1 down)."""
    side = np.sign(y - cl)
    with np.errstate(invalid="ignore", divide="ignore"):
        outside = (y > ucl) | (y < lcl)
        z = (y - cl) / sigma
        close_hi = (z > 2) & ~outside
        close_lo = (z < -2) & ~outside
    shift = _spread(_same_side_run(side, 7), 7)
    inc, dec = _trend(y, 7)
    inc, dec = _spread(inc, 7), _spread(dec, 7)
    two_hi = _spread(_k_of_m(close_hi, 2, 3), 3) & close_hi
    two_lo = _spread(_k_of_m(close_lo, 2, 3), 3) & close_lo
    flags = {
        "mdc_outside": outside,
        "mdc_shift": shift,
        "mdc_trend": inc | dec,
        "mdc_two_of_three": two_hi | two_lo,
    }
    # Direction of a special cause: the side of the centre line, except for a
    # point flagged only by a trend, which goes the way the trend goes.
    direction = side.astype(float)
    only_trend = (inc | dec) & ~(outside | shift | two_hi | two_lo)
    direction[only_trend & inc] = 1.0
    direction[only_trend & dec] = -1.0
    return flags, direction


def variation_class(special: bool, direction: float, improvement: Improvement | None) -> str:
    """The Making Data Count variation icon class of one point."""
    if not special:
        return "common_cause"
    if improvement is None or direction == 0:
        return "special_cause_neither"
    better = direction > 0 if improvement == "up" else direction < 0
    return "special_cause_improvement" if better else "special_cause_concern"


def assurance_class(lcl: float, ucl: float, target: float, improvement: Improvement) -> str | None:
    """Making Data Count assurance: will the process consistently meet the target?"""
    if np.isnan(lcl) or np.isnan(ucl) or np.isnan(target):
        return None
    if improvement == "up":
        return "pass" if lcl > target else "fail" if ucl < target else "hit_or_miss"
    return "pass" if ucl < target else "fail" if lcl > target else "hit_or_miss"


RULE_FUNCTIONS: dict[str, Callable[[FloatArray, FloatArray, FloatArray], dict[str, BoolArray]]] = {
    "western_electric": western_electric,
    "nelson": nelson,
}
"""Zone-and-pattern rule sets that need only y, centre line and sigma."""
