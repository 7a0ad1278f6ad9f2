"""Estimating the planted effects from the measures, as an analyst would.

Each estimator works on the monthly measure results the warehouse produced
(never on the generator's hidden variables), so recovering the truth shows
that capture → warehouse → measures → analysis hold together.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats

from careloop.analysis import Effect, its, spc
from careloop.analysis.caveats import StatisticalWarning
from careloop.demo.network import PlantedTruth


@dataclass(frozen=True)
class Recovery:
    """One planted effect next to its estimate."""

    name: str
    """What was planted, in words."""
    truth: float
    """The planted value."""
    estimate: float
    ci_low: float
    ci_high: float
    scale: str
    """``odds ratio``, ``proportion``, ``month flagged``…"""
    method: str
    """How it was estimated."""

    @property
    def recovered(self) -> bool:
        """The truth lies inside the 95% confidence interval."""
        return self.ci_low <= self.truth <= self.ci_high

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "truth": self.truth,
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "scale": self.scale,
            "method": self.method,
            "recovered": self.recovered,
        }


def monthly(results: pd.DataFrame, measure: str, *, sites: list[str] | None = None) -> pd.DataFrame:
    """Numerator and denominator per month of one measure, summed over ``sites`` (or network)."""
    rows = results[(results.measure_id == measure) & (results.stratum.fillna("") == "")]
    rows = rows[rows.site.fillna("") == ""] if sites is None else rows[rows.site.isin(sites)]
    out = rows.groupby("period_start", as_index=False)[["numerator", "denominator"]].sum()
    out = out[out.denominator > 0].sort_values("period_start").reset_index(drop=True)
    out["period_start"] = pd.to_datetime(out.period_start).dt.date
    out["t"] = np.arange(1, len(out) + 1)
    return out


def _phase(frame: pd.DataFrame, name: str, when: date) -> None:
    frame[name] = (frame.period_start >= when).astype(int)


def _its(frame: pd.DataFrame, phases: list[str]) -> its.ItsResult:
    with warnings.catch_warnings():
        # Caveats (e.g. residual autocorrelation) are reported in the report, not raised here.
        warnings.simplefilter("ignore", StatisticalWarning)
        return its.segmented_regression(
            frame,
            outcome="numerator",
            trials="denominator",
            time="t",
            intervention=phases if len(phases) > 1 else phases[0],
            family="binomial",
        )


def _from_effect(name: str, truth: float, effect: Effect, method: str) -> Recovery:
    return Recovery(
        name, truth, effect.estimate, effect.ci_low, effect.ci_high, "odds ratio", method
    )


def network_change(results: pd.DataFrame, truth: PlantedTruth) -> tuple[Recovery, its.ItsResult]:
    """The change package: binomial ITS on the network's visits in remission.

    Sites with a change of their own are left out (they would mix two changes).
    """
    others = sorted(
        set(results.site.dropna()) - {""} - set(truth.site_changes) - {truth.excursion[0]}
    )
    frame = monthly(results, "remission-at-visit", sites=others)
    _phase(frame, "change_package", truth.change_date)
    fit = _its(frame, ["change_package"])
    return (
        _from_effect(
            "Network change package: odds of a visit in remission",
            truth.change_odds_ratio,
            fit.step,
            f"binomial interrupted time series, {len(others)} sites without their own change",
        ),
        fit,
    )


def site_changes(results: pd.DataFrame, truth: PlantedTruth) -> list[Recovery]:
    """Each site's own change, as the second phase of its own interrupted time series."""
    out = []
    for code, (when, ratio) in sorted(truth.site_changes.items()):
        frame = monthly(results, "remission-at-visit", sites=[code])
        _phase(frame, "change_package", truth.change_date)
        _phase(frame, "site_change", when)
        fit = _its(frame, ["change_package", "site_change"])
        effect = next(p for p in fit.interventions if p.intervention == "site_change").step
        out.append(
            _from_effect(
                f"Site {code}'s own change on {when:%b %Y}",
                ratio,
                effect,
                "binomial ITS with two phases (network change, site change)",
            )
        )
    return out


def excursion(results: pd.DataFrame, truth: PlantedTruth) -> tuple[Recovery, spc.SpcChart]:
    """The special-cause excursion: the P chart of that site flags that month below the limits."""
    code, month = truth.excursion
    frame = monthly(results, "remission-at-visit", sites=[code])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        chart = spc.qic(
            frame.numerator.to_numpy(),
            x=frame.period_start.tolist(),
            n=frame.denominator.to_numpy(),
            chart="p",
            title=f"Visits in remission at {code}",
        )
    points = chart.points
    flagged = points[points.sigma_signal & (points.y < points.lcl)]
    hit = any(pd.Timestamp(x).date() == month for x in flagged.x)
    others = len(flagged) - int(hit)
    return (
        Recovery(
            f"Special-cause excursion at {code} in {month:%b %Y}",
            1.0,
            1.0 if hit else 0.0,
            1.0 if hit and others == 0 else 0.0,
            1.0 if hit else 0.0,
            "month flagged (1 = yes)",
            f"P chart (Anhøj rules and 3-sigma limits); {others} other month(s) below the limits",
        ),
        chart,
    )


def knowledge_object(results: pd.DataFrame, truth: PlantedTruth) -> tuple[Recovery, its.ItsResult]:
    """The decision-support object's effect on steroid use at the sites it was deployed at."""
    frame = monthly(results, "steroid-at-visit", sites=list(truth.ko_sites))
    _phase(frame, "knowledge_object", truth.ko_date)
    fit = _its(frame, ["knowledge_object"])
    return (
        _from_effect(
            "Decision support: odds of a visit with corticosteroids at deployed sites",
            truth.ko_odds_ratio,
            fit.step,
            f"binomial ITS at the {len(truth.ko_sites)} deployed sites",
        ),
        fit,
    )


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval for a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    z = float(stats.norm.ppf(0.975))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def card_acceptance(accepted: int, shown: int, truth: PlantedTruth) -> Recovery:
    """The share of cards clinicians accepted, from the CDS feedback."""
    low, high = wilson(accepted, shown)
    return Recovery(
        "Decision-support cards accepted",
        truth.card_acceptance,
        accepted / shown if shown else math.nan,
        low,
        high,
        "proportion",
        f"CDS Hooks feedback on {shown} cards (Wilson 95% interval)",
    )
