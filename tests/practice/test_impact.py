"""The impact report: the measure before/after a deployment (SPC, ITS), card acceptance, variants."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from careloop.core.errors import InputError
from careloop.knowledge import Deployment
from careloop.practice.feedback.impact import deployment_annotations, impact_report

DEPLOYMENT = Deployment(
    id=1,
    identifier="ibd-steroid-review",
    version="1.0.0",
    mode="live",
    sites=(),
    measures=("sustained-steroid-free-remission",),
    started_at=datetime(2025, 1, 1, 9, 30, tzinfo=UTC),
    ended_at=None,
    by="lead@example.org",
    reason="go live",
)


def results(step: float = 0.15) -> pd.DataFrame:
    """24 months at 400 patients; remission 40 % before, 40 % + step after (planted)."""
    rng = np.random.default_rng(11)
    months = pd.date_range("2024-01-01", periods=24, freq="MS")
    p = np.where(months >= "2025-01-01", 0.40 + step, 0.40)
    numerators = rng.binomial(400, p)
    return pd.DataFrame(
        {
            "measure_id": "sustained-steroid-free-remission",
            "site": "",
            "stratum": "",
            "period_start": months.date,
            "numerator": numerators,
            "denominator": 400,
        }
    )


def events() -> pd.DataFrame:
    rows = []
    # Site A: 10 standard cards (4 accepted, 4 overridden), 10 peer-comparison (8 accepted).
    for i in range(20):
        variant = "standard" if i < 10 else "peer-comparison"
        accepted = (i < 4) or (10 <= i < 18)
        outcome = "accepted" if accepted else ("overridden" if i < 8 else None)
        rows.append(
            {
                "ko_identifier": "ibd-steroid-review",
                "ko_version": "1.0.0",
                "shown": True,
                "site_code": "A",
                "variant": variant,
                "outcome": outcome,
            }
        )
    rows.append(
        {
            "ko_identifier": "ibd-steroid-review",
            "ko_version": "1.0.0",
            "shown": False,
            "site_code": "B",
            "variant": "standard",
            "outcome": None,
        }
    )
    return pd.DataFrame(rows)


def test_a_planted_improvement_shows_in_the_spc_phases_and_the_its_level_change():
    report = impact_report(
        DEPLOYMENT,
        results(),
        measure_id="sustained-steroid-free-remission",
        card_events=events(),
        variant_arms=["standard", "peer-comparison"],
    )
    parts = report.spc.summary()
    assert list(parts["part"]) == [1, 2]
    assert parts["cl"].iloc[1] - parts["cl"].iloc[0] == pytest.approx(15, abs=2.5)
    assert report.its is not None
    assert report.its.effect_scale == "odds ratio"
    assert report.its.step.ci_low > 1  # the planted rise is detected
    assert report.series["after"].sum() == 12


def test_card_acceptance_by_site_counts_only_shown_cards_of_the_deployed_version():
    report = impact_report(
        DEPLOYMENT,
        results(),
        measure_id="sustained-steroid-free-remission",
        card_events=events(),
        variant_arms=["standard", "peer-comparison"],
    )
    row = report.cards.set_index("site_code").loc["A"]
    assert (row["cards_shown"], row["accepted"], row["overridden"], row["no_feedback"]) == (
        20,
        12,
        4,
        4,
    )
    assert row["acceptance_rate"] == pytest.approx(12 / 16)
    assert "B" not in set(report.cards["site_code"])  # silent cards are not "shown"
    # Peer comparison 8/10 against standard 4/10: risk difference 0.4.
    assert report.variants is not None
    assert report.variants.difference.estimate == pytest.approx(0.4)
    assert report.variants.events == (8, 4) and report.variants.n == (10, 10)


def test_the_report_renders_as_json_and_as_html_with_the_deployment_marked():
    report = impact_report(DEPLOYMENT, results(), measure_id="sustained-steroid-free-remission")
    data = report.to_dict()
    assert data["deployment"]["version"] == "1.0.0" and data["cards"] == []
    assert data["spc"]["centre_after"] > data["spc"]["centre_before"]
    page = report.to_html()
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "ibd-steroid-review 1.0.0 (live)" in page and "<script" not in page


def test_results_without_periods_on_both_sides_are_refused():
    late = results()
    late = late[pd.to_datetime(late["period_start"]) >= "2025-01-01"]
    with pytest.raises(InputError, match="both before and after 2025-01-01"):
        impact_report(DEPLOYMENT, late, measure_id="sustained-steroid-free-remission")
    with pytest.raises(InputError, match="No results of measure 'other'"):
        impact_report(DEPLOYMENT, results(), measure_id="other")


def test_deployments_become_chart_annotations():
    (annotation,) = deployment_annotations([DEPLOYMENT])
    assert annotation.kind == "deployment"
    assert annotation.x == pd.Timestamp("2025-01-01")
    assert annotation.label == "ibd-steroid-review 1.0.0"
