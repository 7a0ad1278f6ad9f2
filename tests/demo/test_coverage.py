"""Over 100 seeds, the demo's 95% intervals cover the planted truth about 95% of the time.

The estimators are the demo's own (careloop.demo.recovery, which uses the
learning-cycle Study's estimators in careloop.community.study.effects);
their input here is the generator's monthly counts in the shape of the
measure results, and the clinicians' answers to the cards drawn as the demo
draws them, so 100 seeds run in a minute or two (the full pipeline for one
seed is tested in test_pipeline.py). Each effect's coverage is checked with
an exact binomial test against 95%; the test fails if any is off at the 1%
level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from careloop.demo import recovery
from careloop.demo.decision_support import CALLS_PER_SITE, clinician_ref
from careloop.demo.network import PlantedTruth, generate_network

SEEDS = range(100, 200)


def measure_results(seed: int) -> tuple[pd.DataFrame, PlantedTruth]:
    """The generator's visits of consenting patients as monthly measure results by site."""
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


def card_answers(seed: int, truth: PlantedTruth) -> dict[str, tuple[int, int]]:
    """Clinician → (cards shown, accepted), drawn as the demo draws them (one card per call)."""
    rng = np.random.default_rng(seed + 1)
    out: dict[str, tuple[int, int]] = {}
    for site in truth.ko_sites:
        for i in range(CALLS_PER_SITE):
            who = clinician_ref(site, i)
            shown, accepted = out.get(who, (0, 0))
            out[who] = (shown + 1, accepted + int(rng.random() < truth.card_acceptance))
    return out


def estimates(seed: int) -> list[recovery.Recovery]:
    results, truth = measure_results(seed)
    return [
        recovery.network_change(results, truth)[0],
        recovery.knowledge_object(results, truth)[0],
        *recovery.site_changes(results, truth),
        recovery.card_acceptance(card_answers(seed, truth), truth),
    ]


@pytest.mark.slow
def test_the_intervals_of_every_planted_effect_cover_the_truth_95_times_in_100():
    hits: dict[str, list[bool]] = {}
    for seed in SEEDS:
        for r in estimates(seed):
            hits.setdefault(r.name.split(" on ")[0], []).append(r.recovered)
    assert len(hits) == 5 and all(len(v) == len(SEEDS) for v in hits.values())
    for name, seen in hits.items():
        covered = sum(seen)
        # Exact binomial test against 95% coverage: fail if clearly off (p < 0.01).
        p = stats.binomtest(covered, len(seen), 0.95).pvalue
        assert p > 0.01, f"{name}: {covered}/{len(seen)} intervals covered the truth (p = {p:.4f})"


def test_the_special_cause_month_is_reported_as_detected_not_as_an_interval():
    results, truth = measure_results(4)
    found, _chart = recovery.excursion(results, truth)
    assert found.scale == "detection" and found.detected is True and found.recovered
    assert found.estimate is None and found.ci_low is None and found.ci_high is None
    assert "detected" in found.method
    as_json = found.as_dict()
    assert as_json["detected"] is True and as_json["ci_low"] is None
    assert found.describe() == "Special-cause excursion at S004 in Mar 2022: detected"


def test_card_acceptance_is_clustered_by_clinician():
    _results, truth = measure_results(4)
    answers = card_answers(4, truth)
    assert len(answers) == 6 * len(truth.ko_sites)
    card = recovery.card_acceptance(answers, truth)
    assert "clustered" in card.method or "cluster-robust" in card.method
    assert card.ci_low is not None and card.ci_high is not None
    assert card.ci_low < card.estimate < card.ci_high  # type: ignore[operator]
