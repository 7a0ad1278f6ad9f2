"""Estimating the planted effects from the measures, as an analyst would.

Each estimator works on the monthly measure results the warehouse produced
(never on the generator's hidden variables), so recovering the truth shows
that capture → warehouse → measures → analysis hold together. The effects are
estimated as a learning cycle's Study estimates them
(:mod:`careloop.community.study.effects`): quasi-binomial interrupted time
series of the monthly counts, and card acceptance with standard errors
clustered by clinician. The special-cause month is *detected* or not: a
detection, not an estimate with an interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from careloop.analysis import Effect, its, spc
from careloop.analysis.caveats import StatisticalWarning
from careloop.community.study.effects import (
    ItsEffects,
    clustered_proportion,
    its_effect,
    its_method,
)
from careloop.demo.network import PlantedTruth


@dataclass(frozen=True)
class Recovery:
    """One planted effect next to its estimate."""

    name: str
    """What was planted, in words."""
    truth: float
    """The planted value (1 for a planted special cause)."""
    estimate: float | None
    """None for a detection (``detected`` says whether it was found)."""
    ci_low: float | None
    ci_high: float | None
    scale: str
    """``odds ratio``, ``proportion`` or ``detection``."""
    method: str
    """How it was estimated."""
    detected: bool | None = None
    """For a detection (scale ``detection``): whether it was found; else None."""

    @property
    def recovered(self) -> bool:
        """The truth lies inside the 95% confidence interval (a detection: it was found)."""
        if self.detected is not None:
            return self.detected
        if self.estimate is None or self.ci_low is None or self.ci_high is None:
            return False
        return self.ci_low <= self.truth <= self.ci_high

    def describe(self) -> str:
        """One line for the console: the planted value beside the estimate (or the detection)."""
        if self.detected is not None:
            return f"{self.name}: {'detected' if self.detected else 'not detected'}"
        return (
            f"{self.name}: planted {self.truth:g}, estimated {self.estimate:.3g} "
            f"(95% CI {self.ci_low:.3g} to {self.ci_high:.3g})"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "truth": self.truth,
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "scale": self.scale,
            "method": self.method,
            "detected": self.detected,
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


def _its(frame: pd.DataFrame, phases: list[str]) -> ItsEffects:
    # Caveats (e.g. residual autocorrelation) stay in the result, for the report.
    return its_effect(frame, phases)


def _from_effect(name: str, truth: float, effect: Effect, method: str) -> Recovery:
    return Recovery(
        name, truth, effect.estimate, effect.ci_low, effect.ci_high, "odds ratio", method
    )


def network_change(results: pd.DataFrame, truth: PlantedTruth) -> tuple[Recovery, its.ItsResult]:
    """The change package: quasi-binomial ITS on the network's visits in remission.

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
            fit.step("change_package"),
            f"{its_method()}; {len(others)} sites without their own change",
        ),
        fit.fit,
    )


def site_changes(results: pd.DataFrame, truth: PlantedTruth) -> list[Recovery]:
    """Each site's own change, as the second phase of its own interrupted time series."""
    out = []
    for code, (when, ratio) in sorted(truth.site_changes.items()):
        frame = monthly(results, "remission-at-visit", sites=[code])
        _phase(frame, "change_package", truth.change_date)
        _phase(frame, "site_change", when)
        fit = _its(frame, ["change_package", "site_change"])
        out.append(
            _from_effect(
                f"Site {code}'s own change on {when:%b %Y}",
                ratio,
                fit.step("site_change"),
                f"{its_method(2)}: the network change, then the site's",
            )
        )
    return out


def excursion(results: pd.DataFrame, truth: PlantedTruth) -> tuple[Recovery, spc.SpcChart]:
    """The special-cause excursion: does the P chart of that site flag that month below its limits?

    Reported as detected or not (with how many other months were flagged), never
    as an estimate with an interval.
    """
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
            None,
            None,
            None,
            "detection",
            f"P chart (Anhøj rules and 3-sigma limits): {'detected' if hit else 'not detected'}; "
            f"{others} other month(s) below the limits",
            detected=hit,
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
            fit.step("knowledge_object"),
            f"{its_method()} at the {len(truth.ko_sites)} deployed sites",
        ),
        fit.fit,
    )


def card_acceptance(by_clinician: Mapping[str, tuple[int, int]], truth: PlantedTruth) -> Recovery:
    """The share of cards clinicians accepted, from the CDS feedback.

    ``by_clinician`` is clinician → (cards shown, accepted), from the stored card
    events. A clinician's answers are correlated (habits, their patients), so
    the interval is cluster-robust by clinician, not a binomial one over cards.
    """
    shown = [s for s, _ in by_clinician.values()]
    accepted = [a for _, a in by_clinician.values()]
    effect, how = clustered_proportion(accepted, shown, what="clinicians")
    return Recovery(
        "Decision-support cards accepted",
        truth.card_acceptance,
        effect.estimate,
        effect.ci_low,
        effect.ci_high,
        "proportion",
        f"CDS Hooks feedback on {sum(shown)} cards: {how}",
    )
