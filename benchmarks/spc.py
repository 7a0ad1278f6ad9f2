"""Benchmark: 2,000 P charts (100 sites × 20 measures × 60 months) with runs analysis.

Prints careloop's time for ``spc.qic`` over every series and the ratio against
a plain NumPy computation of the same P chart limits and Anhøj runs statistics,
measured in the same run. Target: under 2 s for careloop on 2 cores.

Run: .venv/bin/python benchmarks/spc.py
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from scipy import stats

from careloop.analysis import spc

SITES, MEASURES, MONTHS = 100, 20, 60


def make_data(seed: int = 20240601) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = rng.integers(40, 400, size=(SITES * MEASURES, MONTHS)).astype(float)
    p = rng.uniform(0.05, 0.6, size=(SITES * MEASURES, 1))
    y = rng.binomial(n.astype(int), p).astype(float)
    return y, n


def numpy_baseline(y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same limits and runs statistics, vectorised over all series, no data frames."""
    cl = y.sum(axis=1, keepdims=True) / n.sum(axis=1, keepdims=True)
    sigma = np.sqrt(cl * (1 - cl) / n)
    ucl = np.minimum(cl + 3 * sigma, 1)
    lcl = np.maximum(cl - 3 * sigma, 0)
    side = np.sign(y / n - cl)
    signals = np.zeros(len(y), dtype=bool)
    for i, s in enumerate(side):
        s = s[s != 0]
        changes = np.flatnonzero(s[1:] != s[:-1])
        longest = np.max(np.diff(np.concatenate(([-1], changes, [s.size - 1]))))
        c_min = stats.binom.ppf(0.05, s.size - 1, 0.5)
        signals[i] = longest > round(math.log2(s.size)) + 3 or changes.size < c_min
    return ucl, lcl, signals


def main() -> None:
    y, n = make_data()
    start = time.perf_counter()
    ucl_np, lcl_np, signals_np = numpy_baseline(y, n)
    numpy_time = time.perf_counter() - start

    start = time.perf_counter()
    charts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spc.SpcWarning)
        for yi, ni in zip(y, n, strict=True):
            charts.append(spc.qic(yi, n=ni, chart="p"))
    careloop_time = time.perf_counter() - start

    # Same numbers, or the comparison means nothing.
    np.testing.assert_allclose(np.vstack([c.points["ucl"] for c in charts]), ucl_np, rtol=1e-12)
    np.testing.assert_allclose(np.vstack([c.points["lcl"] for c in charts]), lcl_np, atol=1e-15)
    assert [bool(c.points["runs_signal"].iloc[0]) for c in charts] == signals_np.tolist()

    print(
        f"charts: {len(charts)} P charts of {MONTHS} points ({SITES} sites × {MEASURES} measures)"
    )
    per_chart = careloop_time / len(charts) * 1e3
    print(f"careloop spc.qic: {careloop_time:.3f} s ({per_chart:.2f} ms/chart)")
    print(f"plain NumPy (vectorised limits + runs loop): {numpy_time:.3f} s")
    print(f"ratio careloop / NumPy: {careloop_time / numpy_time:.1f}×")


if __name__ == "__main__":
    main()
