"""Riley et al.'s minimum sample size, checked against published worked examples.

Sources of the reference numbers:

- "pmsampsize R tests" = the testthat files of the R package pmsampsize by
  Ensor, Martin & Riley (github.com/JoieEnsor/pmsampsize, the version with
  unrounded maximum R², v1.1.x: tests/testthat/test_bin.R, test_surv.R,
  test_cont.R). Their columns: criteria 1, 2, 3 (4), final n; EPP.
- "pmsampsize Python test" = tests/test_pmsampsize.py of the Python port by
  Whittle & Ensor (the four examples of the package help: BMJ 2020 / Stat Med
  2019 worked examples).
- Riley et al. Stat Med 2019;38:1276–96 (Part II) abstract: the Chagas disease
  diagnostic model (24 parameters, prevalence 0.174, Cox-Snell R² 0.288)
  "requires an EPP of at least 4.8" and the recurrent VTE prognostic model
  (25 parameters, R² 0.051, rate 0.065, mean follow-up 2.07) "an EPP of at
  least 23".
"""

from __future__ import annotations

import json
import math

import pytest

from careloop.analysis.risk import cox_snell_r2_from_c_statistic, minimum_sample_size
from careloop.core.errors import InputError


def _ns(result):
    return [c.n for c in result.criteria]


def test_binary_worked_example_needs_662_participants_decided_by_criterion_2():
    # pmsampsize Python test 1 and R test 4.1: criteria 623, 662, 221 → 662, EPP 4.8.
    # Criterion 1 alone is the 623 participants, 108 events, EPP 4.5 often quoted.
    r = minimum_sample_size(outcome="binary", parameters=24, prevalence=0.174, r2_cox_snell=0.288)
    assert _ns(r) == [623, 662, 221]
    assert r.n == 662
    assert r.decided_by == 2
    assert math.ceil(r.events) == 116
    assert round(r.events_per_parameter, 2) == 4.80  # Part II abstract: "at least 4.8"
    assert round(r.criteria[0].n * 0.174) == 108
    assert round(r.criteria[0].n * 0.174 / 24, 2) == 4.52  # pmsampsize R test 4.1, EPP column
    assert round(r.max_r2_cox_snell, 3) == 0.603  # Part II eq. 23 for prevalence 0.174
    assert r.expected_shrinkage > 0.9


@pytest.mark.parametrize(
    ("r2", "parameters", "prevalence", "expected", "epp"),
    [
        # pmsampsize R tests 4.2–4.4 (criteria 1, 2, 3; final EPP)
        (0.55, 24, 0.174, [255, 532, 221], 3.86),
        (0.288, 36, 0.174, [934, 992, 221], 4.79),
        (0.288, 24, 0.25, [623, 590, 289], 6.49),
    ],
)
def test_binary_matches_pmsampsize_tests(r2, parameters, prevalence, expected, epp):
    r = minimum_sample_size(
        outcome="binary", parameters=parameters, prevalence=prevalence, r2_cox_snell=r2
    )
    assert _ns(r) == expected
    assert r.n == max(expected)
    assert round(r.events_per_parameter, 2) == epp


def test_c_statistic_is_converted_to_cox_snell_r2_as_pmsampsize_does():
    # pmsampsize Python test 2: cstatistic 0.89, 24 parameters, prevalence 0.174
    # → criteria 615, 660, 221 → 660 (pmsampsize simulates 1e6 patients; we integrate).
    r = minimum_sample_size(outcome="binary", parameters=24, prevalence=0.174, c_statistic=0.89)
    assert _ns(r) == [615, 660, 221]
    assert r.n == 660
    assert "C statistic" in r.r2_source


def test_c_statistic_conversion_agrees_with_a_large_simulation():
    # The Riley, Van Calster & Collins (2021) simulation, redone here with 400,000
    # patients (reference/cstat_r2_simulation.py holds the full-size script).
    import numpy as np
    import statsmodels.api as sm
    from scipy import stats

    rng = np.random.default_rng(123456)
    n, phi, c = 400_000, 0.174, 0.89
    mu = math.sqrt(2) * stats.norm.ppf(c)
    n_events = int(phi * n)
    lp = np.concatenate([rng.normal(mu, 1, n_events), rng.normal(0, 1, n - n_events)])
    y = np.concatenate([np.ones(n_events), np.zeros(n - n_events)])
    fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    simulated = 1 - math.exp(-(fit.null_deviance - fit.deviance) / n)
    assert cox_snell_r2_from_c_statistic(c, phi) == pytest.approx(simulated, abs=0.003)


def test_nagelkerke_r2_is_converted_with_the_maximum_cox_snell_r2():
    r_cs = minimum_sample_size(
        outcome="binary", parameters=24, prevalence=0.174, r2_cox_snell=0.288
    )
    r_n = minimum_sample_size(
        outcome="binary", parameters=24, prevalence=0.174, r2_nagelkerke=r_cs.r2_nagelkerke
    )
    assert r_n.r2 == pytest.approx(0.288)
    assert r_n.n == r_cs.n


def test_survival_worked_example_needs_5143_participants():
    # pmsampsize Python test 3 and the package help (BMJ 2020 example): 30 parameters,
    # R² 0.051, rate 0.065, timepoint 2, mean follow-up 2.07 → criteria 5143, 1039 → 5143.
    r = minimum_sample_size(
        outcome="survival",
        parameters=30,
        r2_cox_snell=0.051,
        rate=0.065,
        timepoint=2,
        meanfup=2.07,
    )
    assert _ns(r)[:2] == [5143, 1039]
    assert r.n == 5143
    assert r.decided_by == 1
    assert math.ceil(r.events) == 692  # 5143 × 0.065 × 2.07 = 691.99
    assert round(r.events_per_parameter, 2) == 23.07
    assert round(r.overall_risk, 3) == 0.122  # 1 − exp(−0.065 × 2)
    lo, hi = r.overall_risk_ci
    assert hi - r.overall_risk < 0.05 and r.overall_risk - lo < 0.05


@pytest.mark.parametrize(
    ("r2", "parameters", "rate", "timepoint", "meanfup", "c1", "c2", "epp"),
    [
        # pmsampsize R tests 3.1 and 3.4–3.9 (criterion 1, criterion 2, final EPP).
        # 3.1 is Part II's recurrent VTE example: "EPP of at least 23".
        (0.051, 25, 0.065, 2, 2.07, 4286, 866, 23.07),
        (0.051, 25, 0.1, 2, 2.07, 4286, 731, 35.49),
        (0.051, 25, 0.065, 4, 2.07, 4286, 866, 23.07),
        (0.051, 25, 0.065, 2, 4, 4286, 679, 44.57),
        (0.06, 40, 0.08, 3, 5, 5798, 969, 57.98),
        (0.03, 10, 0.09, 3, 3, 2950, 272, 79.65),
        (0.3, 80, 0.03, 1, 5, 1974, 2272, 4.26),
    ],
)
def test_survival_matches_pmsampsize_tests(r2, parameters, rate, timepoint, meanfup, c1, c2, epp):
    r = minimum_sample_size(
        outcome="survival",
        parameters=parameters,
        r2_cox_snell=r2,
        rate=rate,
        timepoint=timepoint,
        meanfup=meanfup,
    )
    assert _ns(r)[:2] == [c1, c2]
    assert r.n == max(c1, c2)
    assert round(r.events_per_parameter, 2) == epp


def test_survival_criterion_2_differs_from_pmsampsize_by_at_most_one_where_it_rounds_events():
    # pmsampsize R test 3.2 gives 859 for criterion 2: it rounds the events up at a
    # notional n = 10,000 before taking the maximum R². The exact E/n gives 860.
    r = minimum_sample_size(
        outcome="survival",
        parameters=25,
        r2_cox_snell=0.065,
        rate=0.065,
        timepoint=2,
        meanfup=2.07,
    )
    assert r.criteria[0].n == 3335 and r.n == 3335
    assert abs(r.criteria[1].n - 859) <= 1


def test_continuous_worked_example_needs_918_participants():
    # pmsampsize Python test 4 / R test 2.1: criteria 918, 401, 259 → 918, SPP 36.72.
    r = minimum_sample_size(outcome="continuous", parameters=25, r2=0.2, intercept=1.9, sd=0.6)
    assert _ns(r)[:3] == [918, 401, 259]
    assert r.n == 918
    assert round(r.subjects_per_parameter, 2) == 36.72
    assert r.events is None and r.events_per_parameter is None
    _lo, hi = r.intercept_ci
    assert hi / 1.9 <= 1.1


@pytest.mark.parametrize(
    ("r2", "parameters", "intercept", "sd", "expected"),
    [
        # pmsampsize R tests 2.2, 2.3, 2.6 (criteria 1–3)
        (0.3, 25, 1.9, 0.6, [574, 351, 259]),
        (0.2, 50, 1.9, 0.6, [1924, 801, 284]),
        (0.5, 100, 1.9, 2, [1264, 1001, 334]),
    ],
)
def test_continuous_matches_pmsampsize_tests(r2, parameters, intercept, sd, expected):
    r = minimum_sample_size(
        outcome="continuous", parameters=parameters, r2=r2, intercept=intercept, sd=sd
    )
    assert _ns(r)[:3] == expected
    assert r.n == max(expected)


def test_continuous_with_low_target_shrinkage_is_decided_by_residual_variance():
    # pmsampsize R test 2.7 (older version): criteria 32, 67, 264 with shrinkage
    # 0.845, 0.851, 0.954 → 264.
    r = minimum_sample_size(
        outcome="continuous", parameters=30, r2=0.89, intercept=3.3, sd=1.1, shrinkage=0.84
    )
    assert _ns(r)[:3] == [32, 67, 264]
    assert [round(c.shrinkage, 3) for c in r.criteria[:3]] == [0.845, 0.851, 0.954]
    assert r.n == 264 and r.decided_by == 3


def test_continuous_intercept_criterion_can_decide_when_the_mean_is_near_zero():
    # Hand check: with mean 0.2, SD 2 and R² 0.2 the 95% CI half-width
    # t × √(4 × 0.8 / n) must be ≤ 0.02, i.e. n ≈ 1.96² × 3.2 / 0.02² ≈ 30,700.
    r = minimum_sample_size(outcome="continuous", parameters=5, r2=0.2, intercept=0.2, sd=2)
    assert r.decided_by == 4
    assert r.n == pytest.approx(1.96**2 * 3.2 / 0.02**2, rel=0.01)


def test_summary_reads_as_a_sentence_and_to_dict_is_json():
    r = minimum_sample_size(outcome="binary", parameters=24, prevalence=0.174, r2_cox_snell=0.288)
    text = r.summary()
    assert "at least 662 participants" in text
    assert "criterion 2" in text
    json.dumps(r.to_dict())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "binary", "parameters": 24, "r2_cox_snell": 0.2}, "prevalence"),
        ({"outcome": "binary", "parameters": 24, "prevalence": 0.2}, "exactly one"),
        (
            {
                "outcome": "binary",
                "parameters": 24,
                "prevalence": 0.2,
                "r2_cox_snell": 0.2,
                "c_statistic": 0.8,
            },
            "exactly one",
        ),
        (
            {"outcome": "binary", "parameters": 24, "prevalence": 0.2, "r2_cox_snell": 0.7},
            "largest Cox-Snell",
        ),
        ({"outcome": "binary", "parameters": 24, "prevalence": 0.2, "c_statistic": 0.4}, "0.5"),
        (
            {"outcome": "binary", "parameters": 0, "prevalence": 0.2, "r2_cox_snell": 0.2},
            "parameters",
        ),
        (
            {
                "outcome": "binary",
                "parameters": 24,
                "prevalence": 0.2,
                "r2_cox_snell": 0.2,
                "rate": 0.1,
            },
            "not used",
        ),
        (
            {
                "outcome": "survival",
                "parameters": 10,
                "r2_cox_snell": 0.05,
                "rate": 0.1,
                "timepoint": 2,
            },
            "meanfup",
        ),
        (
            {
                "outcome": "survival",
                "parameters": 10,
                "c_statistic": 0.8,
                "rate": 0.1,
                "timepoint": 2,
                "meanfup": 2,
            },
            "not used",
        ),
        ({"outcome": "continuous", "parameters": 10, "r2": 0.2, "sd": 1}, "intercept"),
        (
            {"outcome": "continuous", "parameters": 10, "r2": 0.2, "intercept": 0, "sd": 1},
            "intercept is 0",
        ),
        ({"outcome": "ordinal", "parameters": 10}, "outcome must be"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(InputError, match=message):
        minimum_sample_size(**kwargs)
