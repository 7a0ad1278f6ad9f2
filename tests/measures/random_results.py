"""Random measure results and random releases of them, for the disclosure attacker.

Independent of the runner: the counts of a random site × sex × age band ×
outcome cube are summed with numpy into the rows `careloop measures run`
would print (network, sites, each stratifier, sites × each stratifier; rows
whose counts are all zero are left out, except the network's). Many small
sites and zero-inflated counts, so small cells sit beside large ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from careloop.measures.runner import RESULT_COLUMNS
from careloop.trust.attacker import attack_many

SEXES = ("female", "male", "unknown")
AGE_BANDS = ("0-4", "5-9", "10-14", "15-17")


@dataclass(frozen=True)
class RandomData:
    """Every row any release could print, and what the random releases may ask for."""

    truth: pd.DataFrame
    """All levels and periods, columns :data:`RESULT_COLUMNS`."""
    independent: frozenset[str]
    """Measures whose numerator is not part of the denominator (ratios)."""
    periods: tuple[date, ...]
    strata: tuple[str, ...]


def _cube(rng: np.random.Generator, sites: int, shape: tuple[int, ...]) -> np.ndarray:
    """Site × strata counts: site sizes from tiny to large, many zeros."""
    size = rng.choice([0.3, 1.0, 3.0, 10.0, 30.0], size=sites, p=[0.25, 0.25, 0.2, 0.2, 0.1])
    lam = size.reshape(-1, *([1] * len(shape))) * rng.gamma(1.0, 1.0, size=(sites, *shape))
    counts = rng.poisson(lam)
    zero = rng.random(counts.shape) < rng.uniform(0.0, 0.5)
    return np.where(zero, 0, counts).astype(np.int64)


def random_data(rng: np.random.Generator) -> RandomData:
    """A random network: 1–5 sites, up to two stratifiers, 1–3 periods, 1–2 measures."""
    n_sites = int(rng.integers(1, 6))
    sites = [f"S{i}" for i in range(n_sites)]
    strata: dict[str, tuple[str, ...]] = {}
    if rng.random() < 0.8:
        strata["sex"] = SEXES[: int(rng.integers(2, 4))]
    if rng.random() < 0.6:
        strata["age_band"] = AGE_BANDS[: int(rng.integers(2, 5))]
    periods = tuple(date(2024, m, 1) for m in range(1, int(rng.integers(1, 4)) + 1))
    measures = {"m-prop": "subset"}
    if rng.random() < 0.3:
        measures["m-ratio"] = "independent"
    names = list(strata)
    shape = tuple(len(strata[n]) for n in names)
    rows = []
    for measure, kind in measures.items():
        for start in periods:
            end = date(start.year, start.month, 28)
            a = _cube(rng, n_sites, shape)
            b = _cube(rng, n_sites, shape)
            e = _cube(rng, n_sites, shape) * (rng.random() < 0.4)
            # subset: a = numerator, b = denominator − numerator; ratio: a, b independent.
            levels: list[tuple[bool, str | None]] = [(False, None), (True, None)]
            levels += [(s, n) for n in names for s in (False, True)]
            for has_site, name in levels:
                axes = tuple(range(1, 1 + len(names)))
                keep = () if name is None else (1 + names.index(name),)
                summed = tuple(ax for ax in axes if ax not in keep)
                labels_site = sites if has_site else [""]
                labels_val = [""] if name is None else [f"{name}={v}" for v in strata[name]]
                sa = a.sum(axis=summed)
                sb = b.sum(axis=summed)
                se = e.sum(axis=summed)
                if not has_site:
                    sa, sb, se = sa.sum(axis=0), sb.sum(axis=0), se.sum(axis=0)
                for i, j in itertools.product(range(len(labels_site)), range(len(labels_val))):
                    pick = (
                        (i, j) if has_site and name else (i,) if has_site else (j,) if name else ()
                    )
                    num, other, exc = int(sa[pick]), int(sb[pick]), int(se[pick])
                    den = num + other if kind == "subset" else other
                    site, stratum = labels_site[i], labels_val[j]
                    if num == den == exc == 0 and (site, stratum) != ("", ""):
                        continue
                    rows.append(
                        {
                            "measure_id": measure,
                            "definition_hash": "h",
                            "site": site,
                            "period_start": start,
                            "period_end": end,
                            "stratum": stratum,
                            "numerator": num,
                            "denominator": den,
                            "value": num / den if den else np.nan,
                            "excluded": exc,
                            "small_denominator": den <= 10,
                        }
                    )
    truth = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    truth = truth.sort_values(["measure_id", "site", "stratum", "period_start"], kind="stable")
    return RandomData(
        truth=truth.reset_index(drop=True),
        independent=frozenset(m for m, k in measures.items() if k == "independent"),
        periods=periods,
        strata=tuple(names),
    )


def random_release(
    rng: np.random.Generator, data: RandomData
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The rows of one random `measures run`: random --by and --from/--to."""
    options = ["site", *data.strata]
    by = tuple(s for s in options if rng.random() < 0.5)
    first = int(rng.integers(0, len(data.periods)))
    last = int(rng.integers(first, len(data.periods)))
    chosen = set(data.periods[first : last + 1])
    t = data.truth
    names = t.stratum.str.partition("=")[0]
    level_ok = ((t.site == "") | ("site" in by)) & ((names == "") | names.isin(by))
    rows = t[level_ok & t.period_start.isin(chosen)]
    return rows.reset_index(drop=True), by


def attack_sequences(
    seeds: range,
    releases: int,
    share: Callable[[pd.DataFrame, pd.DataFrame | None, pd.DataFrame], Any],
) -> dict[str, Any]:
    """Random data per seed, ``releases`` random releases of it, then the intruder on them.

    ``share(rows, history, context)`` returns a
    :class:`~careloop.measures.sharing.SharedRelease` (or just the published frame,
    then no history is kept); ``context`` holds every level of the release's periods.
    Returns the attacker's summary over all sequences and the pinned counts.
    """
    cases = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        data = random_data(rng)
        published: list[pd.DataFrame] = []
        cells: list[pd.DataFrame] = []
        for _ in range(releases):
            rows, _by = random_release(rng, data)
            context = data.truth[data.truth.period_start.isin(set(rows.period_start))]
            history = pd.concat(cells, ignore_index=True) if cells else None
            out = share(rows, history, context)
            if isinstance(out, pd.DataFrame):
                published.append(out)
            else:
                published.append(out.published)
                cells.append(out.cells)
        cases.append((published, data.truth, data.independent))
    report = attack_many(cases)
    summary = report.summary()
    summary["pinned_counts"] = list(report.pinned)
    return summary
