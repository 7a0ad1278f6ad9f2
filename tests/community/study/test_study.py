"""A learning cycle's automatic Study: charts with the change's phase, effects, balancing, progress."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from careloop.community.study import Change, StudyMeasure, monthly_counts, study_change
from careloop.core.errors import InputError

CHANGE = date(2022, 7, 15)


def _months(n: int, start: date = date(2021, 1, 1)) -> list[date]:
    return [
        date(start.year + (start.month - 1 + i) // 12, (start.month - 1 + i) % 12 + 1, 1)
        for i in range(n)
    ]


def results(
    months: int = 36,
    *,
    step: float = 2.5,
    balancing_step: float = 1.0,
    dip: date | None = None,
    seed: int = 1,
) -> pd.DataFrame:
    """Measure results of two sites (and their network rows) around a change at S1 in Jul 2022."""
    rng = np.random.default_rng(seed)
    rows = []
    for period in _months(months):
        after = period >= CHANGE.replace(day=1)
        for site in ("S1", "S2"):
            changed = after and site == "S1"
            for measure, base, ratio in (
                ("remission", 0.0, step),
                ("wait-over-4-weeks", -1.0, balancing_step),
                ("plan-updated", -0.5, 3.0),
            ):
                logit = base + math.log(ratio) * changed
                if measure == "remission" and site == "S1" and period == dip:
                    logit -= 3.0
                n = int(rng.integers(70, 90))
                y = int(rng.binomial(n, 1 / (1 + math.exp(-logit))))
                rows.append((measure, site, period, "", y, n))
    frame = pd.DataFrame(
        rows, columns=["measure_id", "site", "period_start", "stratum", "numerator", "denominator"]
    )
    network = frame.groupby(["measure_id", "period_start"], as_index=False)[
        ["numerator", "denominator"]
    ].sum()
    network["site"], network["stratum"] = None, ""
    return pd.concat([frame, network], ignore_index=True)


def change(**kwargs: object) -> Change:
    options: dict[str, object] = {
        "label": "PDSA 1: pre-visit planning",
        "started": CHANGE,
        "measures": (
            StudyMeasure("remission", "outcome", "up", target=0.6),
            StudyMeasure("plan-updated", "process", "up"),
            StudyMeasure("wait-over-4-weeks", "balancing", "down"),
        ),
        "sites": ("S1",),
        "aim": "60% of visits in remission by the end of 2023",
    }
    options.update(kwargs)
    return Change(**options)  # type: ignore[arg-type]


def test_each_measure_gets_a_chart_with_a_new_phase_at_the_change_month():
    study = study_change(results(), change())
    for m in study.measures:
        pts = m.chart.points  # type: ignore[union-attr]
        first_of_new_phase = pts[pts.part == 2].x.iloc[0]
        assert pd.Timestamp(first_of_new_phase).date() == date(2022, 7, 1)
        assert m.annotation.kind == "pdsa" and m.annotation.label == "PDSA 1: pre-visit planning"
        assert (m.baseline_points, m.after_points) == (18, 18)


def test_the_effect_is_the_odds_ratio_statsmodels_gives_for_the_same_counts():
    data = results()
    study = study_change(data, change())
    frame = monthly_counts(data, "remission", ("S1",))
    X = sm.add_constant(
        pd.DataFrame({"t": frame.t, "change": (frame.period_start >= date(2022, 7, 1)).astype(int)})
    ).astype(float)
    res = sm.GLM(
        frame.numerator / frame.denominator,
        X,
        family=sm.families.Binomial(),
        var_weights=frame.denominator.astype(float),
    ).fit()
    effect = study.measure("remission").effect
    assert effect is not None
    assert effect.estimate == pytest.approx(math.exp(res.params["change"]), rel=1e-8)
    assert effect.ci_low < 2.5 < effect.ci_high
    assert "quasi-binomial" in study.measure("remission").effect_method


def test_an_improving_outcome_is_detected_in_the_intended_direction_and_scores_significant():
    study = study_change(results(), change())
    remission = study.measure("remission")
    assert remission.signal is not None and remission.signal.detected
    assert remission.signal.direction == "up" and remission.moved == "better"
    assert study.measure("plan-updated").moved == "better"
    assert remission.sustained and remission.target_met is True
    assert study.progress.score == 5.0
    assert [s.score for s in study.progress.steps] == [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]
    assert all(s.met and s.reason for s in study.progress.steps)


def test_a_balancing_measure_that_moved_the_wrong_way_is_flagged_and_caps_the_score():
    study = study_change(results(balancing_step=2.5), change())
    wait = study.measure("wait-over-4-weeks")
    assert wait.moved == "worse" and wait.flagged
    assert study.to_dict()["balancing_flagged"] == ["wait-over-4-weeks"]
    assert study.progress.score == 3.5
    four = next(s for s in study.progress.steps if s.score == 4.0)
    assert not four.met and "wait-over-4-weeks" in four.reason


def test_no_change_in_the_data_stops_the_score_at_changes_tested():
    study = study_change(results(step=1.0, seed=5), change())
    assert study.measure("remission").moved != "better"
    assert study.progress.score == 3.0  # the process measure still improves


def test_a_short_baseline_stops_the_score_at_the_aim_with_the_reason():
    short = results()
    short = short[short.period_start >= date(2022, 1, 1)]
    study = study_change(short, change())
    assert study.progress.score == 1.0
    step = next(s for s in study.progress.steps if s.score == 1.5)
    assert not step.met and "fewer than 10 months" in step.reason
    assert any("6 month(s) before the change" in c for c in study.caveats)


def test_without_an_aim_the_score_is_intent_only():
    study = study_change(results(), change(aim=None))
    assert study.progress.score == 0.5
    assert "No aim" in study.progress.steps[1].reason


def test_a_special_cause_month_is_reported_as_detected_without_an_interval():
    study = study_change(results(dip=date(2021, 9, 1)), change())
    remission = study.to_dict()["measures"][0]
    assert {"month": "2021-09-01", "detected": True} in remission["special_causes"]
    assert set(remission["special_causes"][0]) == {"month", "detected"}


def test_the_study_is_json_ready_with_no_nan():
    data = results()
    study = study_change(data, change())
    text = json.dumps(study.to_dict(), allow_nan=False)
    again = json.loads(text)
    assert again["change"]["started"] == "2022-07-15"
    assert again["measures"][0]["phase"]["starts"].startswith("2022-07-01")
    assert again["measures"][0]["chart"]["points"][0]["lcl"] is not None


def test_the_network_rows_are_studied_when_the_change_names_no_sites():
    study = study_change(results(), change(sites=()))
    assert study.measure("remission").points == 36
    assert study.measure("remission").effect.estimate > 1  # type: ignore[union-attr]


def test_a_change_naming_a_measure_without_results_is_refused_with_the_measures_there_are():
    with pytest.raises(InputError, match="No results for measure\\(s\\) falls") as err:
        study_change(results(), change(measures=(StudyMeasure("falls", "outcome", "down"),)))
    assert "remission" in str(err.value)


def test_bad_changes_are_refused_with_what_to_fix():
    with pytest.raises(InputError, match="earlier change"):
        change(earlier=(date(2023, 1, 1),))
    with pytest.raises(InputError, match="role must be outcome, process or balancing"):
        StudyMeasure("remission", "primary", "up")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="names no measures"):
        change(measures=())
    with pytest.raises(InputError, match="'numerator'"):
        study_change(results().drop(columns=["numerator"]), change())


def test_the_cycles_step_counts_the_cycles_tested_and_a_change_counts_itself():
    study = study_change(results(), change(cycles_tested=3, cycles_recorded=5))
    step = next(s for s in study.progress.steps if s.score == 2.0)
    assert step.met and step.title == "Activity: cycles tested"
    assert step.reason.startswith("3 learning cycle(s) tested a change for this aim")
    assert "5 recorded in all, planned ones included" in step.reason
    assert study.to_dict()["change"]["cycles_tested"] == 3
    with pytest.raises(InputError, match="itself a tested cycle"):
        change(cycles_tested=0)
