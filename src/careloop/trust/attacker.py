"""An intruder with an integer-programming solver, against released measure results.

:func:`attack` takes every release of the same data (result rows with hidden
counts missing) and the true rows, and for each hidden count asks a solver
(``scipy.optimize.milp``, HiGHS) for the smallest and largest values it can
have given *every* published number. It models what the rows mean, not how
careloop suppressed them:

- the unknowns are the counts of the finest cross-classification any release
  touched (site × every stratifier released × outcome), whole numbers ≥ 0;
  outcomes are *numerator* and *denominator − numerator* (the numerator is
  part of the denominator) or, for measures listed as independent (ratios),
  numerator and denominator; plus exclusions;
- every published numerator, denominator and exclusion count of every
  release is an equation on them; a level a release shows (network, sites,
  a stratifier, sites × a stratifier) whose row is absent is all zeros;
- with ``empty_rows_listed=False`` (the runner's own output, which drops
  all-zero rows) a row that is present has a count above zero.

A hidden count is **pinned** when the intruder learns it beyond what
suppression promises:

- it is determined exactly (smallest = largest) and is not zero — this
  includes a count hidden in one release and published in another;
- its true value v is from 1 to the threshold and the smallest possible value
  is above v − 1 or the largest below v + 1 (fewer than three values around v).

Zeros may be published, so a hidden zero that the intruder determines is
counted (:attr:`AttackReport.pinned_zeros`) but is not a disclosure.
``denominator − numerator`` is checked like the others: it is a count of
people too.

The solver is asked only what it must be: every solution it returns is
evaluated for all hidden counts of its table, and a count whose criterion
those solutions already meet needs no solve of its own (each solution is a
table of whole numbers consistent with everything published, so this is a
proof, not an estimate). Counts still in doubt are minimised and maximised
exactly. Independent tables (measure × period) are solved together in one
program per round, to keep the solver's fixed cost per call low.

Lives in ``src`` rather than in the tests because the federated network runs
it on what its nodes release and reports the result.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from careloop.core.errors import InputError

_COUNTS = ("numerator", "denominator", "excluded")
_BLOCK = ["measure_id", "definition_hash", "period_start", "period_end"]
DIFFERENCE = "denominator - numerator"
"""The derived count checked beside the published ones."""
Key = tuple[str, str]
_CEILING = 10_000_000.0
"""Upper bound on every unknown, so a program stacking many tables stays bounded;
a count that reaches half of it is reported as unbounded."""


@dataclass(frozen=True)
class HiddenCount:
    """One hidden count and what the intruder can learn about it."""

    measure_id: str
    period_start: Any
    site: str
    stratum: str
    count: str
    """``numerator``, ``denominator``, ``excluded`` or :data:`DIFFERENCE`."""
    true: int
    low: int
    """The smallest value proven possible (the minimum when pinned or ``exact``)."""
    high: float
    """The largest (``inf``: unbounded; the maximum when pinned or ``exact``)."""
    pinned: bool
    released: bool = True
    """False for a count no release showed (e.g. a site's women when only the sites and
    the network's women were released): only a small one can be pinned."""


@dataclass(frozen=True)
class AttackReport:
    """The outcome of :func:`attack`."""

    releases: int
    blocks: int
    """Measure × period tables attacked."""
    hidden: tuple[HiddenCount, ...] = field(repr=False)
    """Every hidden count (zeros included), and every count no release showed."""
    solves: int
    """Integer programs solved."""
    seconds: float

    @property
    def pinned(self) -> tuple[HiddenCount, ...]:
        """Hidden counts the intruder pins (see the module docstring)."""
        return tuple(h for h in self.hidden if h.pinned)

    @property
    def pinned_zeros(self) -> int:
        """Hidden zeros the intruder determines (not a disclosure: a zero may be published)."""
        return sum(1 for h in self.hidden if h.released and h.true == 0 and h.low == h.high == 0)

    def summary(self) -> dict[str, Any]:
        """Plain numbers for a report."""
        return {
            "releases": self.releases,
            "tables": self.blocks,
            "hidden_counts": sum(1 for h in self.hidden if h.released),
            "unreleased_small": sum(1 for h in self.hidden if not h.released and 1 <= h.true <= 10),
            "hidden_small": sum(1 for h in self.hidden if h.released and 1 <= h.true <= 10),
            "hidden_nonzero": sum(1 for h in self.hidden if h.released and h.true >= 1),
            "pinned": len(self.pinned),
            "hidden_zeros_determined": self.pinned_zeros,
            "solves": self.solves,
            "seconds": round(self.seconds, 3),
        }


def _stratifier(stratum: str) -> tuple[str | None, str | None]:
    if not stratum:
        return None, None
    name, _, value = stratum.partition("=")
    return name, value


class _Block:
    """The integer program of one measure × period over every release of it."""

    def __init__(
        self,
        key: tuple[Any, ...],
        shown: Sequence[tuple[frozenset[tuple[bool, str | None]], dict[Key, tuple[Any, ...]]]],
        sites: Sequence[str],
        values: dict[str, list[str]],
        subset: bool,
        empty_rows_listed: bool,
        true: dict[Key, tuple[int, int, int]],
    ) -> None:
        """Write every release as linear equations over the finest cells.

        Long because it builds the model in one pass over the releases: the
        equations each shows, the counts it hides and those none shows, all
        indexed by the cell array built at the top.
        """
        self.key = key
        self.subset = subset
        use_site = any(has_site for levels, _rows in shown for has_site, _ in levels)
        names = sorted({s for levels, _rows in shown for _, s in levels if s is not None})
        self.dims: list[tuple[str, list[str]]] = [("site", list(sites))] if use_site else []
        self.dims += [(n, values[n]) for n in names]
        shape = [len(v) for _, v in self.dims] + [3]
        self.n = int(np.prod(shape))
        self.cells = np.arange(self.n).reshape(shape)
        eq: list[tuple[np.ndarray, np.ndarray, float]] = []
        ge: list[tuple[np.ndarray, np.ndarray]] = []
        targets: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
        published: dict[tuple[str, str, str], int] = {}
        for levels, present in shown:
            for has_site, name in levels:
                for combo in self._combos(has_site, name):
                    forms = self._forms(*combo)
                    row = present.get(combo)
                    if row is None:
                        for idx, coef in forms.values():
                            eq.append((idx, coef, 0.0))
                        continue
                    hidden_pair = False
                    for count, value in zip(_COUNTS, row, strict=True):
                        if pd.isna(value):
                            targets[(*combo, count)] = forms[count]
                            hidden_pair = hidden_pair or count != "excluded"
                        else:
                            eq.append((*forms[count], float(value)))
                            published[(*combo, count)] = int(value)
                    if subset and hidden_pair:
                        targets[(*combo, DIFFERENCE)] = forms[DIFFERENCE]
                    if not empty_rows_listed and combo != ("", ""):
                        idx = np.concatenate([forms[c][0] for c in _COUNTS])
                        coef = np.concatenate([forms[c][1] for c in _COUNTS])
                        ge.append((idx, coef))
        self.eq = self._matrix([(i, c) for i, c, _v in eq])
        self.eq_values = np.array([v for _i, _c, v in eq])
        self.ge = self._matrix(ge)
        # Counts of every level no release showed, within the dimensions released:
        # margins released separately bound them (Fréchet bounds).
        shown_keys = {(*k[:2],) for k in targets} | {(*k[:2],) for k in published}
        self.unreleased: set[tuple[str, str, str]] = set()
        levels_all: list[tuple[bool, str | None]] = [(False, None)]
        levels_all += [(True, None)] if use_site else []
        levels_all += [(s, n) for n in names for s in ([False, True] if use_site else [False])]
        for has_site, name in levels_all:
            for combo in self._combos(has_site, name):
                if combo in shown_keys:
                    continue
                forms = self._forms(*combo)
                counts = [*_COUNTS, DIFFERENCE] if subset else list(_COUNTS)
                for count in counts:
                    targets[(*combo, count)] = forms[count]
                    self.unreleased.add((*combo, count))
        self.target_keys = list(targets)
        self.targets = self._matrix([targets[k] for k in self.target_keys])
        self.published = [published.get(k) for k in self.target_keys]
        self.released = [k not in self.unreleased for k in self.target_keys]
        # A large count must not be determined exactly if a release shows it; the
        # difference of two counts is shown by none, so only a small one matters.
        self.strict = [
            r and k[2] != DIFFERENCE for r, k in zip(self.released, self.target_keys, strict=True)
        ]
        self.upper = np.full(self.n, _CEILING)
        if len(self.eq_values):
            zero_rows = np.flatnonzero(self.eq_values == 0)
            fixed = self.eq[zero_rows].tocoo()
            self.upper[fixed.col[fixed.data > 0]] = 0.0
        self.true = np.array(
            [self._true(site, stratum, count, true) for site, stratum, count in self.target_keys],
            dtype=np.int64,
        )

    def _matrix(self, rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> sparse.csr_matrix:
        if not rows:
            return sparse.csr_matrix((0, self.n))
        indptr = np.cumsum([0, *(len(i) for i, _c in rows)])
        return sparse.csr_matrix(
            (np.concatenate([c for _i, c in rows]), np.concatenate([i for i, _c in rows]), indptr),
            shape=(len(rows), self.n),
        )

    @staticmethod
    def _true(site: str, stratum: str, count: str, true: dict[Key, tuple[int, int, int]]) -> int:
        num, den, exc = true.get((site, stratum), (0, 0, 0))
        return {"numerator": num, "denominator": den, "excluded": exc, DIFFERENCE: den - num}[count]

    def _combos(self, has_site: bool, name: str | None) -> list[Key]:
        labels = dict(self.dims)
        sites = labels.get("site", []) if has_site else [""]
        if name is None:
            return [(s, "") for s in sites]
        return [(s, f"{name}={v}") for s in sites for v in labels[name]]

    def _forms(self, site: str, stratum: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The cube cells (and coefficients) each count of an entry sums."""
        index: list[Any] = []
        name, value = _stratifier(stratum)
        for dim, labels in self.dims:
            if dim == "site":
                index.append(slice(None) if site == "" else labels.index(site))
            elif dim == name:
                index.append(labels.index(str(value)))
            else:
                index.append(slice(None))
        a, b, e = (np.asarray(self.cells[(*index, o)]).ravel() for o in range(3))
        ones = np.ones(len(a))
        return {
            "numerator": (a, ones),
            "denominator": (np.r_[a, b], np.r_[ones, ones]) if self.subset else (b, ones),
            "excluded": (e, ones),
            DIFFERENCE: (b, ones) if self.subset else (np.r_[b, a], np.r_[ones, -ones]),
        }


def _settled(v: int, low: float, high: float, threshold: int, strict: bool = True) -> bool:
    """Whether bounds [low, high] on a count of true value v keep the promise.

    Small counts: three values around v. Others, when ``strict`` (a count that
    a release shows): not determined exactly.
    """
    if v == 0:
        return True
    if v <= threshold:
        return low <= v - 1 and high >= v + 1
    return not strict or low < v or high > v


class _Batch:
    """Many blocks, solved together: one program per round holds one objective per block."""

    def __init__(self, blocks: list[_Block], threshold: int, exact: bool) -> None:
        self.blocks = blocks
        self.threshold = threshold
        self.exact_bounds = exact
        self.offsets = np.cumsum([0, *(b.n for b in blocks)])
        n = int(self.offsets[-1])
        self.n = n
        eqs = [b.eq for b in blocks if b.eq.shape[0]]
        ges = [b.ge for b in blocks if b.ge.shape[0]]
        self.constraints = []
        if eqs:
            a = sparse.block_diag([b.eq for b in blocks], format="csr")
            v = np.concatenate([b.eq_values for b in blocks])
            self.constraints.append(LinearConstraint(a, v, v))
        if ges:
            a = sparse.block_diag([b.ge for b in blocks], format="csr")
            self.constraints.append(LinearConstraint(a, 1.0, np.inf))
        self.bounds = Bounds(np.zeros(n), np.concatenate([b.upper for b in blocks]))
        self.integrality = np.ones(n)
        self.low = [b.true.astype(np.float64) for b in blocks]
        self.high = [b.true.astype(np.float64) for b in blocks]
        # (target, side) pairs already solved exactly: side +1 minimised, −1 maximised.
        self.exact: list[set[tuple[int, int]]] = [set() for _ in blocks]
        self.solves = 0

    def _solve(self, objective: np.ndarray) -> np.ndarray:
        self.solves += 1
        # No relative gap: the objective sums many tables' objectives, and a gap
        # allowed on the sum would let one table's bound be loose.
        result = milp(
            objective,
            integrality=self.integrality,
            bounds=self.bounds,
            constraints=self.constraints,
            options={"mip_rel_gap": 0.0},
        )
        if result.status != 0:
            keys = ", ".join(f"{b.key[0]} {b.key[2]}" for b in self.blocks[:3])
            raise InputError(
                f"The releases contradict each other (they cannot all come from the same "
                f"data), in one of: {keys}… ({result.message})"
            )
        return np.asarray(np.rint(result.x), dtype=np.float64)

    def _witness(self, x: np.ndarray) -> None:
        for i, b in enumerate(self.blocks):
            if not b.target_keys:
                continue
            values = b.targets @ x[self.offsets[i] : self.offsets[i + 1]]
            self.low[i] = np.minimum(self.low[i], values)
            self.high[i] = np.maximum(self.high[i], values)

    def _next(self, i: int) -> tuple[int, int] | None:
        """The next (target, side) block ``i`` needs solved, or None."""
        b = self.blocks[i]
        for t, v in enumerate(b.true.tolist()):
            if b.published[t] is not None:
                continue
            if not self.exact_bounds and _settled(
                v, self.low[i][t], self.high[i][t], self.threshold, b.strict[t]
            ):
                continue
            for side in (1, -1):
                if (t, side) in self.exact[i]:
                    continue
                if self.exact_bounds:
                    return t, side
                if v <= self.threshold:
                    wanted = self.low[i][t] > v - 1 if side > 0 else self.high[i][t] < v + 1
                else:
                    wanted = True
                if wanted:
                    return t, side
        return None

    def run(self) -> None:
        if not any(b.target_keys for b in self.blocks):
            return
        self._witness(self._solve(np.zeros(self.n)))
        while True:
            chosen = [(i, self._next(i)) for i in range(len(self.blocks))]
            work = [(i, ts) for i, ts in chosen if ts is not None]
            if not work:
                return
            objective = np.zeros(self.n)
            for i, (t, side) in work:
                row = self.blocks[i].targets[t]
                objective[self.offsets[i] + row.indices] = side * row.data
            x = self._solve(objective)
            self._witness(x)
            for i, (t, side) in work:
                self.exact[i].add((t, side))

    def results(self) -> list[HiddenCount]:
        out = []
        for i, b in enumerate(self.blocks):
            for t, (site, stratum, count) in enumerate(b.target_keys):
                v = int(b.true[t])
                low, high = float(self.low[i][t]), float(self.high[i][t])
                if b.published[t] is not None:
                    low = high = float(b.published[t] or 0)
                    pinned = v != 0
                else:
                    pinned = not _settled(v, low, high, self.threshold, b.strict[t])
                out.append(
                    HiddenCount(
                        measure_id=str(b.key[0]),
                        period_start=b.key[2],
                        site=site,
                        stratum=stratum,
                        count=count,
                        true=v,
                        low=round(low),
                        high=np.inf if high >= _CEILING / 2 else float(round(high)),
                        pinned=pinned,
                        released=b.released[t],
                    )
                )
        return out


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    return frame[name].tolist()


def _blocks(
    releases: Sequence[pd.DataFrame],
    truth: pd.DataFrame,
    independent: Iterable[str],
    empty_rows_listed: bool,
) -> list[_Block]:
    # Plain lists and dicts: pandas' per-group overhead dominates tables this small.
    rows: dict[tuple[Any, ...], dict[int, dict[Key, tuple[Any, ...]]]] = {}
    levels: dict[tuple[str, int], set[tuple[bool, str | None]]] = {}
    sites: dict[str, set[str]] = {}
    values: dict[str, dict[str, set[str]]] = {}
    for i, frame in enumerate(releases):
        missing = [c for c in [*_BLOCK, "site", "stratum", *_COUNTS] if c not in frame.columns]
        if missing:
            raise InputError(f"Release {i} lacks the columns {', '.join(missing)}.")
        counts = [
            frame[c].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan).tolist()
            for c in _COUNTS
        ]
        for m, h, p, e, s, q, a, b, x in zip(
            *(_column(frame, c) for c in _BLOCK),
            _column(frame, "site"),
            _column(frame, "stratum"),
            *counts,
            strict=True,
        ):
            site, stratum = str(s or ""), str(q or "")
            name, value = _stratifier(stratum)
            rows.setdefault((m, h, p, e), {}).setdefault(i, {})[(site, stratum)] = (a, b, x)
            levels.setdefault((m, i), set()).add((bool(site), name))
            if site:
                sites.setdefault(m, set()).add(site)
            if name is not None:
                values.setdefault(m, {}).setdefault(name, set()).add(str(value))
    true: dict[tuple[Any, ...], dict[Key, tuple[int, int, int]]] = {}
    for m, h, p, s, q, a, b, c in zip(
        _column(truth, "measure_id"),
        _column(truth, "definition_hash"),
        _column(truth, "period_start"),
        _column(truth, "site"),
        _column(truth, "stratum"),
        truth.numerator.to_numpy(dtype="int64").tolist(),
        truth.denominator.to_numpy(dtype="int64").tolist(),
        truth.excluded.to_numpy(dtype="int64").tolist(),
        strict=True,
    ):
        true.setdefault((m, h, p), {})[(str(s or ""), str(q or ""))] = (a, b, c)
    ratio = set(independent)
    out: list[_Block] = []
    for key in sorted(rows, key=str):
        measure = key[0]
        shown = [
            (frozenset(levels[(measure, i)]), present) for i, present in sorted(rows[key].items())
        ]
        out.append(
            _Block(
                key,
                shown,
                sorted(sites.get(measure, set())),
                {n: sorted(v) for n, v in values.get(measure, {}).items()},
                str(measure) not in ratio,
                empty_rows_listed,
                true.get(key[:3], {}),
            )
        )
    return out


def attack_many(
    cases: Sequence[tuple[Sequence[pd.DataFrame], pd.DataFrame, Iterable[str]]],
    *,
    threshold: int = 10,
    empty_rows_listed: bool = True,
    exact: bool = False,
) -> AttackReport:
    """:func:`attack` on many independent cases at once (each: releases, truth, ratios).

    The cases' tables are solved together, which is much faster than one by one.
    """
    started = time.perf_counter()
    blocks: list[_Block] = []
    for releases, truth, independent in cases:
        blocks += _blocks(releases, truth, independent, empty_rows_listed)
    batch = _Batch(blocks, threshold, exact)
    batch.run()
    return AttackReport(
        releases=sum(len(r) for r, _t, _i in cases),
        blocks=len(blocks),
        hidden=tuple(batch.results()),
        solves=batch.solves,
        seconds=time.perf_counter() - started,
    )


def attack(
    releases: Sequence[pd.DataFrame],
    truth: pd.DataFrame,
    *,
    threshold: int = 10,
    independent: Iterable[str] = (),
    empty_rows_listed: bool = True,
    exact: bool = False,
) -> AttackReport:
    """Bound every hidden count of ``releases`` with an integer-programming solver.

    Args:
        releases: Released result rows (columns ``measure_id``,
            ``definition_hash``, ``period_start``, ``period_end``, ``site``,
            ``stratum``, ``numerator``, ``denominator``, ``excluded``; a hidden
            count is missing), all computed from the same data.
        truth: The true rows (any superset of the released ones; an absent row
            is all zeros).
        threshold: Counts from 1 to this were to be protected.
        independent: Measures whose numerator is not part of the denominator.
        empty_rows_listed: Whether a release lists all-zero rows (careloop's
            shared output does; the runner's own output drops them).
        exact: Minimise and maximise every hidden count (slower); otherwise
            only those that the solutions found so far do not already settle.

    Returns:
        Every hidden count with its bounds and whether it is pinned.
    """
    return attack_many(
        [(releases, truth, independent)],
        threshold=threshold,
        empty_rows_listed=empty_rows_listed,
        exact=exact,
    )


__all__ = ["DIFFERENCE", "AttackReport", "HiddenCount", "attack", "attack_many"]
