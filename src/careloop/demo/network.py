"""A synthetic paediatric IBD learning network with planted, known effects.

The generator writes what an ImproveCareNow-like registry would hold: sites
of different sizes in several countries, children with Crohn's disease,
ulcerative colitis or IBD-unclassified, clinic visits every few months
recorded on the example IBD visit form, symptom PROMs, steroid courses and
growth, with realistic gaps. Into it it plants effects the analyses must
recover (:class:`PlantedTruth`):

- a network-wide change package at ``change_date`` that multiplies the odds
  of a visit in remission (PGA quiescent) by ``change_odds_ratio``;
- site-level changes: one site improves (odds ratio > 1) and one worsens
  at their own dates;
- a special-cause excursion: one site's remission collapses for one month;
- a decision-support knowledge object deployed at some sites that cuts the
  odds of a visit with corticosteroids by ``ko_odds_ratio``, with cards
  accepted at ``card_acceptance``;
- a consent mix: some patients opted out of improvement use, some withdrew;
- a few data-quality problems (birth years after the first visit).

The visit-level models are logistic in time with no patient random effect,
so a binomial interrupted time series of monthly counts is the correctly
specified estimator of each planted odds ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal, cast

import numpy as np
import pandas as pd

Scale = Literal["small", "icn"]


@dataclass(frozen=True)
class SiteSpec:
    """One synthetic care centre."""

    code: str
    name: str
    country: str
    time_zone: str
    patients: int
    baseline_logit: float
    """The site's own remission level before any change (logit scale)."""


@dataclass(frozen=True)
class PlantedTruth:
    """The effects written into the data, which the demo must recover."""

    start: date
    end: date
    baseline_remission: float
    """Network remission probability at a visit before the change package."""
    change_date: date
    change_odds_ratio: float
    site_changes: dict[str, tuple[date, float]]
    """Site code → (date, odds ratio of its own extra change)."""
    excursion: tuple[str, date]
    """Site code and month of the special-cause excursion."""
    excursion_logit_drop: float
    ko_sites: tuple[str, ...]
    ko_date: date
    ko_odds_ratio: float
    """Effect of the knowledge object on the odds of a visit with corticosteroids."""
    baseline_steroid: float
    card_acceptance: float
    consent_mix: dict[str, float]
    data_quality_problems: int


@dataclass
class SyntheticNetwork:
    """Everything the generator made."""

    seed: int
    scale: Scale
    sites: list[SiteSpec]
    truth: PlantedTruth
    patients: pd.DataFrame
    """One row per patient: site, local_id, given/family name, birth_date, sex, consent, disease."""
    visits: pd.DataFrame
    """One row per visit: site, local_id, event_date and every visit-form value."""
    proms: pd.DataFrame
    """One row per completed PROM: site, local_id, event_date and PROM values."""
    notes: list[str] = field(default_factory=list)


_COUNTRIES = (
    ("US", "America/Chicago"),
    ("GB", "Europe/London"),
    ("BE", "Europe/Brussels"),
    ("QA", "Asia/Qatar"),
    ("IE", "Europe/Dublin"),
)
_NAMES = ("Alex", "Sam", "Jo", "Kai", "Ria", "Max", "Ola", "Tom", "Ada", "Noor", "Luis", "Mia")


def _expit(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _site_specs(scale: Scale, rng: np.random.Generator) -> list[SiteSpec]:
    if scale == "small":
        sizes = [140, 110, 90, 70, 60, 45, 25, 12]
    else:
        sizes = list(rng.integers(20, 600, size=100))
        total = sum(sizes)
        sizes = [max(8, round(s * 30_000 / total)) for s in sizes]
    specs = []
    for i, size in enumerate(sizes):
        country, zone = _COUNTRIES[i % len(_COUNTRIES)]
        specs.append(
            SiteSpec(
                code=f"S{i + 1:03d}",
                name=f"Synthetic Children's IBD Centre {i + 1}",
                country=country,
                time_zone=zone,
                patients=int(size),
                baseline_logit=float(rng.normal(0.0, 0.15)),
            )
        )
    return specs


def generate_network(scale: Scale = "small", seed: int = 2007) -> SyntheticNetwork:
    """Generate the synthetic network (deterministic for a seed).

    Long because the planted truth (dates, effects, sites) is written out in one place,
    where the tests and the report read it.
    """
    rng = np.random.default_rng(seed)
    years = 6 if scale == "small" else 8
    # Eight years for the ICN scale start a year earlier, so no visit lies in the future.
    start = date(2019, 1, 1) if scale == "small" else date(2018, 1, 1)
    end = date(start.year + years - 1, 12, 31)
    sites = _site_specs(scale, rng)
    codes = [s.code for s in sites]
    truth = PlantedTruth(
        start=start,
        end=end,
        baseline_remission=0.55,
        change_date=date(2021, 7, 1),
        change_odds_ratio=2.0,
        site_changes={codes[1]: (date(2023, 4, 1), 1.8), codes[2]: (date(2022, 10, 1), 0.55)},
        excursion=(codes[3], date(2022, 3, 1)),
        excursion_logit_drop=3.0,
        ko_sites=tuple(codes[0:1] + codes[4:6]),
        ko_date=date(2023, 1, 1),
        ko_odds_ratio=0.5,
        baseline_steroid=0.25,
        card_acceptance=0.65,
        consent_mix={"improvement_and_research": 0.85, "direct_care_only": 0.10, "withdrawn": 0.05},
        data_quality_problems=2,
    )
    base = math.log(truth.baseline_remission / (1 - truth.baseline_remission))
    steroid_base = math.log(truth.baseline_steroid / (1 - truth.baseline_steroid))
    span_days = (end - start).days
    frames = []
    for site in sites:
        n = site.patients
        # Enrolment spread over the first two thirds of the period; everyone stays to the end.
        enrol = rng.integers(0, int(span_days * 0.66), size=n)
        age_days = rng.integers(4 * 365, 16 * 365, size=n)
        frames.append(
            pd.DataFrame(
                {
                    "site": site.code,
                    "local_id": [f"{site.code}-{i + 1:05d}" for i in range(n)],
                    "given_name": rng.choice(_NAMES, size=n),
                    "family_name": [f"Synthetic{i + 1:05d}" for i in range(n)],
                    "enrol_day": enrol,
                    "birth_day": enrol - age_days,
                    "sex": rng.choice(["female", "male"], size=n),
                    "consent_state": rng.choice(
                        list(truth.consent_mix), size=n, p=list(truth.consent_mix.values())
                    ),
                    "disease_type": rng.choice(["1", "2", "3"], size=n, p=[0.62, 0.32, 0.06]),
                }
            )
        )
    patients = pd.concat(frames, ignore_index=True)
    origin = np.datetime64(start.isoformat(), "D")
    patients["first_visit"] = list((origin + patients.enrol_day.to_numpy()).astype(object))
    patients["birth_date"] = list((origin + patients.birth_day.to_numpy()).astype(object))
    # Visits about every 3 months (2 to 4) from enrolment to the end, for everyone at once.
    gaps = rng.integers(60, 120, size=(len(patients), 64))
    offsets = np.concatenate(
        [np.zeros((len(patients), 1), dtype=np.int64), np.cumsum(gaps, axis=1)], axis=1
    )
    days = patients.enrol_day.to_numpy()[:, None] + offsets
    keep = days <= span_days
    who = np.repeat(np.arange(len(patients)), keep.sum(axis=1))
    visits = pd.DataFrame(
        {
            "site": patients.site.to_numpy()[who],
            "local_id": patients.local_id.to_numpy()[who],
            "event_date": list((origin + days[keep]).astype(object)),
            "disease_type": patients.disease_type.to_numpy()[who],
            "born": patients.birth_date.to_numpy()[who],
        }
    )
    patients = patients.drop(columns=["enrol_day", "birth_day"])
    # Only one visit a patient per day (the registry's key is patient, form, date).
    visits = visits.drop_duplicates(["local_id", "event_date"]).reset_index(drop=True)
    t = np.array([(d - start).days / 365.25 for d in visits.event_date])
    site_logit = visits.site.map({s.code: s.baseline_logit for s in sites}).to_numpy()
    post = np.array([d >= truth.change_date for d in visits.event_date])
    logit = base + site_logit + math.log(truth.change_odds_ratio) * post
    for code, (when, ratio) in truth.site_changes.items():
        hit = (visits.site.to_numpy() == code) & np.array([d >= when for d in visits.event_date])
        logit = logit + math.log(ratio) * hit
    ex_site, ex_month = truth.excursion
    ex = (visits.site.to_numpy() == ex_site) & np.array(
        [d.year == ex_month.year and d.month == ex_month.month for d in visits.event_date]
    )
    logit = logit - truth.excursion_logit_drop * ex
    remission = rng.random(len(visits)) < _expit(logit)
    ko = np.isin(visits.site.to_numpy(), truth.ko_sites) & np.array(
        [d >= truth.ko_date for d in visits.event_date]
    )
    steroid_logit = steroid_base + math.log(truth.ko_odds_ratio) * ko
    steroid = rng.random(len(visits)) < _expit(steroid_logit)
    visits["remission"] = remission
    visits["steroid"] = steroid
    visits["ko_window"] = ko
    _fill_visit_values(visits, rng, t)
    proms = _proms(visits, rng)
    # Data-quality problems the warehouse checks must find: birth years typed after the first visit.
    bad = patients.sample(truth.data_quality_problems, random_state=seed).index
    for idx in bad:
        first_visit = cast(date, patients.loc[idx, "first_visit"])
        patients.at[idx, "birth_date"] = date(first_visit.year + 1, 6, 15)
    network = SyntheticNetwork(seed, scale, sites, truth, patients, visits, proms)
    network.notes.append(
        f"{len(patients):,} patients, {len(visits):,} visits, {len(proms):,} PROMs"
    )
    return network


def _fill_visit_values(visits: pd.DataFrame, rng: np.random.Generator, t: np.ndarray) -> None:
    n = len(visits)
    rem = visits.remission.to_numpy()
    visits["visit_date"] = [d.isoformat() for d in visits.event_date]
    visits["visit_type"] = rng.choice(["1", "2", "3"], size=n, p=[0.8, 0.15, 0.05])
    visits["pga"] = np.where(rem, "1", rng.choice(["2", "3", "4"], size=n, p=[0.55, 0.35, 0.10]))
    age = np.array(
        [(d - b).days / 365.25 for d, b in zip(visits.event_date, visits.born, strict=True)]
    )
    # Each child keeps their own growth curve (an offset from the average), plus measurement noise.
    offset = visits.local_id.map(
        {pid: rng.normal(0, 6) for pid in visits.local_id.unique()}
    ).to_numpy()
    height = np.round(np.clip(75 + 5.8 * age + offset + rng.normal(0, 0.8, n), 80, 195), 1)
    weight = np.round(np.clip(height * height / 10_000 * rng.normal(17.5, 2.0, n), 10, 120), 1)
    visits["height_cm"] = [f"{h:.1f}" for h in height]
    visits["weight_kg"] = [f"{w:.1f}" for w in weight]
    uc = visits.disease_type.isin(["2", "3"]).to_numpy()
    for name, codes in (
        ("pucai_pain", ["0", "5", "10"]),
        ("pucai_bleeding", ["0", "10", "20", "30"]),
        ("pucai_consistency", ["0", "5", "10"]),
        ("pucai_stools", ["0", "5", "10", "15"]),
        ("pucai_nocturnal", ["0", "10"]),
        ("pucai_activity", ["0", "5", "10"]),
    ):
        active = rng.choice(codes, size=n)
        visits[name] = np.where(uc, np.where(rem, "0", active), "")
    for name in (
        "shpcdai_pain",
        "shpcdai_stools",
        "shpcdai_wellbeing",
        "shpcdai_weight",
        "shpcdai_perirectal",
    ):
        active = rng.choice(["0", "1", "2"], size=n)
        visits[name] = np.where(~uc, np.where(rem, "0", active), "")
    visits["shpcdai_eim"] = np.where(~uc, np.where(rem, "0", rng.choice(["0", "1"], size=n)), "")
    steroid = visits.steroid.to_numpy()
    visits["steroid_use"] = np.where(
        steroid, rng.choice(["1", "2", "3"], size=n, p=[0.7, 0.1, 0.2]), "0"
    )
    visits["steroid_start"] = [
        (d - timedelta(days=int(k))).isoformat() if s else ""
        for d, s, k in zip(visits.event_date, steroid, rng.integers(5, 40, size=n), strict=True)
    ]
    meds = rng.random((n, 4)) < np.array([0.35, 0.45, 0.15, 0.30])
    visits["medications"] = [[str(c + 1) for c in range(4) if row[c]] for row in meds]
    visits["nutrition"] = rng.choice(["1", "2", "3", "4"], size=n, p=[0.7, 0.15, 0.1, 0.05])
    for name, p_yes, p_missing in (
        ("vitamin_d", 0.4, 0.2),
        ("previsit_planning", 0.55 + 0.05 * np.clip(t - 2, 0, 4), 0.1),
        ("self_management_goal", 0.35 + 0.06 * np.clip(t - 2, 0, 4), 0.1),
        ("care_plan_updated", 0.5, 0.1),
        ("population_review", 0.3, 0.3),
    ):
        yes = rng.random(n) < p_yes
        missing = rng.random(n) < p_missing
        visits[name] = np.where(missing, "", np.where(yes, "1", "0"))


def _proms(visits: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    # About 40% of visits have a PROM filled the same day by the patient or a carer.
    pick = visits[rng.random(len(visits)) < 0.4]
    n = len(pick)
    rem = pick.remission.to_numpy()
    frame = pd.DataFrame(
        {
            "site": pick.site.to_numpy(),
            "local_id": pick.local_id.to_numpy(),
            "event_date": pick.event_date.to_numpy(),
            "prom_date": [d.isoformat() for d in pick.event_date],
            "completed_by": rng.choice(["1", "2", "3"], size=n, p=[0.5, 0.35, 0.15]),
        }
    )
    frame["carer_relationship"] = np.where(frame.completed_by == "1", "", "parent")
    for name, top in (("tummy_pain", 3), ("blood_in_stool", 2), ("urgency", 2), ("tiredness", 3)):
        low = rng.integers(0, 2, size=n)
        high = rng.integers(1, top + 1, size=n)
        frame[name] = np.where(rem, low, high).astype(str)
    frame["stools_worst_day"] = np.where(
        rem, rng.integers(1, 3, size=n), rng.integers(3, 9, size=n)
    ).astype(str)
    frame["wants_contact"] = "0"
    return frame
