"""Over many seeds, the 95% intervals of the planted odds ratios cover the truth about 95% of the time.

The estimators are the demo's own (careloop.demo.recovery); their input here
is the generator's monthly counts in the shape of the measure results, so
many seeds run in seconds (the full pipeline for one seed is tested in
test_pipeline.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from careloop.demo import recovery
from careloop.demo.network import generate_network

SEEDS = range(100, 140)


def _results(seed: int) -> tuple[pd.DataFrame, object]:
    network = generate_network("small", seed)
    visits = network.visits.merge(network.patients[["local_id", "consent_state"]], on="local_id")
    visits = visits[visits.consent_state == "improvement_and_research"]
    visits = visits.assign(period_start=[d.replace(day=1) for d in visits.event_date])
    rows = []
    for measure, flag in (("remission-at-visit", "remission"), ("steroid-at-visit", "steroid")):
        g = visits.groupby(["site", "period_start"])[flag].agg(["sum", "size"]).reset_index()
        rows.append(
            pd.DataFrame(
                {
                    "measure_id": measure,
                    "site": g.site,
                    "period_start": g.period_start,
                    "stratum": "",
                    "numerator": g["sum"].astype(int),
                    "denominator": g["size"].astype(int),
                }
            )
        )
    return pd.concat(rows, ignore_index=True), network.truth


@pytest.mark.slow
def test_interval_coverage_of_the_planted_odds_ratios_is_close_to_nominal():
    hits: dict[str, list[bool]] = {}
    for seed in SEEDS:
        results, truth = _results(seed)
        estimates = [
            recovery.network_change(results, truth)[0],  # type: ignore[arg-type]
            recovery.knowledge_object(results, truth)[0],  # type: ignore[arg-type]
            *recovery.site_changes(results, truth),  # type: ignore[arg-type]
        ]
        for r in estimates:
            hits.setdefault(r.name.split(" on ")[0], []).append(r.recovered)
    for name, seen in hits.items():
        covered = sum(seen)
        # Exact binomial test against 95% coverage: fail only if clearly off (p < 0.01).
        p = stats.binomtest(covered, len(seen), 0.95).pvalue
        assert p > 0.01, f"{name}: {covered}/{len(seen)} intervals covered the truth"
    assert np.mean([np.mean(v) for v in hits.values()]) > 0.85
