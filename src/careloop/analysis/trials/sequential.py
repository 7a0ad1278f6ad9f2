"""Group-sequential monitoring of a test: alpha-spending boundaries and the look at the data.

:func:`sequential_boundaries` (Lan–DeMets O'Brien–Fleming-type alpha spending,
or classic O'Brien–Fleming) and :func:`monitor`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import integrate, optimize, stats

from careloop.core.errors import InputError

__all__ = [
    "SequentialBoundaries",
    "SequentialResult",
    "monitor",
    "sequential_boundaries",
]


def _obf_spending(t: np.ndarray, alpha_side: float) -> np.ndarray:
    """Lan–DeMets O'Brien–Fleming-type spending per side: 2 − 2Φ(z_{1−α/2}/√t)."""
    z = stats.norm.ppf(1 - alpha_side / 2)
    return np.asarray(2 - 2 * stats.norm.cdf(z / np.sqrt(t)))


class _Grid:
    """Recursive numerical integration of the Z statistics' joint distribution.

    The sub-density of Z_k on the continuation region is carried on a grid
    and propagated with the Gaussian increment (Armitage, McPherson & Rowe
    1969; Jennison & Turnbull 2000, ch. 19), integrated by Simpson's rule.
    """

    def __init__(self, points: int = 2001) -> None:
        self.points = points | 1
        self.z: np.ndarray | None = None
        self.f: np.ndarray | None = None
        self.t_prev = 0.0

    def cross_prob(self, t: float, c: float) -> float:
        """P(continue until now and |Z_t| >= c)."""
        if self.z is None or self.f is None:
            return float(2 * stats.norm.sf(c))
        mean = self.z * math.sqrt(self.t_prev / t)
        sd = math.sqrt((t - self.t_prev) / t)
        tail = stats.norm.sf((c - mean) / sd) + stats.norm.cdf((-c - mean) / sd)
        return float(integrate.simpson(self.f * tail, x=self.z))

    def advance(self, t: float, c: float) -> None:
        """Condition on |Z_t| < c and move the density to look ``t``."""
        z_new = np.linspace(-c, c, self.points)
        if self.z is None or self.f is None:
            f_new = stats.norm.pdf(z_new)
        else:
            r = math.sqrt(self.t_prev / t)
            sd = math.sqrt((t - self.t_prev) / t)
            kernel = stats.norm.pdf((z_new[:, None] - r * self.z[None, :]) / sd) / sd
            f_new = integrate.simpson(kernel * self.f[None, :], x=self.z, axis=1)
        self.z, self.f, self.t_prev = z_new, f_new, t


@dataclass(frozen=True)
class SequentialBoundaries:
    """Two-sided z boundaries for interim looks."""

    information: tuple[float, ...]
    """Information fraction at each look (last = 1)."""
    z: tuple[float, ...]
    """Stop if |Z| at a look reaches its boundary."""
    alpha_spent: tuple[float, ...]
    """Cumulative two-sided alpha spent by each look."""
    alpha: float
    """Overall two-sided significance level."""
    kind: str
    """``obf-spending`` (Lan–DeMets O'Brien–Fleming-type) or ``obrien-fleming`` (classic)."""

    def table(self) -> pd.DataFrame:
        """One row per look: information, z boundary, nominal two-sided p, alpha spent."""
        return pd.DataFrame(
            {
                "look": range(1, len(self.z) + 1),
                "information": self.information,
                "z_boundary": self.z,
                "nominal_p": [float(2 * stats.norm.sf(z)) for z in self.z],
                "alpha_spent": self.alpha_spent,
            }
        )


def sequential_boundaries(
    information: Sequence[float] | int,
    *,
    alpha: float = 0.05,
    kind: Literal["obf-spending", "obrien-fleming"] = "obf-spending",
) -> SequentialBoundaries:
    """Two-sided group-sequential boundaries with overall type I error ``alpha``.

    ``information`` is the list of information fractions at the looks
    (increasing, last 1) or the number of equally spaced looks.

    ``obf-spending`` (default) spends ``alpha/2`` per side with the Lan–DeMets
    O'Brien–Fleming-type function ``α(t) = 2 − 2Φ(z_{1−α/4}/√t)``, the
    definition of gsDesign's ``sfLDOF`` and rpact's ``"asOF"`` (checked
    against rpact in ``tests/analysis/reference/trials_reference.R``); looks
    may be unequally spaced and need not be planned in advance.
    ``obrien-fleming`` gives the classic O'Brien & Fleming (1979) boundaries
    ``c·√(K/k)`` for equally spaced looks (K = 3: 3.471, 2.454, 2.004).
    """
    if isinstance(information, int):
        if information < 1:
            raise InputError("At least one look is needed.")
        t = np.arange(1, information + 1) / information
    else:
        t = np.asarray(list(information), dtype=float)
    if t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or abs(t[-1] - 1) > 1e-9:
        raise InputError("Information fractions must increase strictly from above 0 to 1.")
    if not 0 < alpha < 1:
        raise InputError("alpha must be between 0 and 1.")
    t[-1] = 1.0
    if kind == "obf-spending":
        z, spent = _spending_boundaries(t, alpha)
    elif kind == "obrien-fleming":
        z, spent = _classic_boundaries(t, alpha)
    else:
        raise InputError(f"Unknown boundary kind {kind!r}: use obf-spending or obrien-fleming.")
    return SequentialBoundaries(
        information=tuple(float(v) for v in t),
        z=tuple(z),
        alpha_spent=spent,
        alpha=alpha,
        kind=kind,
    )


def _spending_boundaries(
    t: npt.NDArray[np.float64], alpha: float
) -> tuple[list[float], tuple[float, ...]]:
    """Lan–DeMets O'Brien–Fleming-type spending: each look's boundary spends its share."""
    cum = _obf_spending(t, alpha / 2) * 2
    grid = _Grid()
    z: list[float] = []
    prev = 0.0
    for tk, target in zip(t, cum, strict=True):
        need = float(target - prev)
        if need <= 1e-15:
            c = 40.0
        else:
            c = float(
                optimize.brentq(lambda c, tk=tk, need=need: grid.cross_prob(tk, c) - need, 0.1, 40)
            )
        z.append(c)
        prev = float(target)
        grid.advance(tk, c)
    spent = tuple(float(v) for v in cum)
    return z, spent


def _classic_boundaries(
    t: npt.NDArray[np.float64], alpha: float
) -> tuple[list[float], tuple[float, ...]]:
    """Classic O'Brien–Fleming boundaries c·√(K/k) for equally spaced looks."""
    k = t.size
    if not np.allclose(t, np.arange(1, k + 1) / k):
        raise InputError("Classic O'Brien–Fleming boundaries need equally spaced looks.")

    def total(c: float) -> float:
        grid = _Grid()
        prob = 0.0
        for tk in t:
            ck = c / math.sqrt(tk)
            prob += grid.cross_prob(tk, ck)
            grid.advance(tk, ck)
        return prob

    c = float(optimize.brentq(lambda c: total(c) - alpha, 1.0, 10.0))
    z = [c / math.sqrt(tk) for tk in t]
    grid = _Grid()
    acc, cum_list = 0.0, []
    for tk, ck in zip(t, z, strict=True):
        acc += grid.cross_prob(tk, ck)
        grid.advance(tk, ck)
        cum_list.append(acc)
    spent = tuple(cum_list)
    return z, spent


@dataclass(frozen=True)
class SequentialResult:
    """The monitoring decision after the looks so far."""

    boundaries: SequentialBoundaries
    """Boundaries at the looks taken (plus the planned final look)."""
    z: tuple[float, ...]
    """Observed z statistics."""
    stopped_at: int | None
    """1-based look at which a boundary was crossed, or None."""

    @property
    def decision(self) -> str:
        """``stop`` (boundary crossed), ``continue`` or ``final: not significant``."""
        if self.stopped_at is not None:
            return "stop"
        if len(self.z) == len(self.boundaries.z):
            return "final: not significant"
        return "continue"

    def summary(self) -> str:
        """Plain-language summary for the learning community."""
        lines = []
        for i, z in enumerate(self.z):
            b = self.boundaries.z[i]
            lines.append(
                f"Look {i + 1} (information {100 * self.boundaries.information[i]:.0f}%): "
                f"z = {z:.2f}, boundary ±{b:.2f}" + (" — crossed" if abs(z) >= b else "")
            )
        if self.stopped_at is not None:
            lines.append(
                f"Stop at look {self.stopped_at}: the difference is unlikely to be chance even "
                f"allowing for repeated looks (overall two-sided alpha {self.boundaries.alpha})."
            )
        elif self.decision == "continue":
            lines.append("Continue: no boundary crossed; early differences may still be chance.")
        else:
            lines.append(
                "Final look reached without crossing the boundary: no significant difference."
            )
        return "\n".join(lines)


def monitor(
    z: Sequence[float],
    information: Sequence[float],
    *,
    alpha: float = 0.05,
    kind: Literal["obf-spending", "obrien-fleming"] = "obf-spending",
) -> SequentialResult:
    """Compare the observed z statistics at each look with their boundaries.

    ``information`` lists the information fraction of every look taken so far
    and, if the last look taken is not the final one, the planned remaining
    looks (so the boundaries are right; with alpha spending only the looks so
    far matter).
    """
    zs = tuple(float(v) for v in z)
    if not zs:
        raise InputError("No z statistics given.")
    b = sequential_boundaries(information, alpha=alpha, kind=kind)
    if len(zs) > len(b.z):
        raise InputError("More z statistics than looks in the information fractions.")
    stopped = next((i + 1 for i, v in enumerate(zs) if abs(v) >= b.z[i]), None)
    return SequentialResult(boundaries=b, z=zs, stopped_at=stopped)
