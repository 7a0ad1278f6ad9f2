"""A learning cycle's Study, computed from the measure results.

:func:`study_change` takes the measure results careloop stores (the
``careloop.measures`` result frame: ``measure_id``, ``site``,
``period_start``, ``numerator``, ``denominator``, optionally ``stratum``) and
a :class:`Change` (its date, sites, and its family of measures with their
roles), and returns a :class:`CycleStudy`:

- per measure, the P chart with a **new phase at the change date** and the
  change as an annotation, as the dashboards draw them;
- whether the chart shows a **signal** after the change — against the
  baseline's centre line and limits, frozen at the change (Anhøj runs rules,
  points beyond the 3-sigma limits) — and in which direction; special-cause
  months are reported as *detected*, never as an estimate with an interval;
- the **effect** of the change as an odds ratio with its 95% interval from an
  interrupted time series whose standard errors allow for visits clustered
  by patient and site (:mod:`careloop.community.study.effects`);
- **balancing** measures flagged when they moved the wrong way;
- a **progress score** on the IHI scale (0.5–5) computed from that evidence,
  each step with the reason it was or was not reached.

Pure functions: no database, no web. Results are frozen dataclasses with
``to_dict()`` (JSON-ready; NaN becomes null).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from careloop.analysis import Effect
from careloop.analysis._frames import json_value, records, require_columns
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.spc import Annotation, SpcChart, qic
from careloop.community.study.effects import its_effect, its_method
from careloop.core.errors import ErrorDetail, InputError

__all__ = [
    "BASELINE_POINTS",
    "SHIFT_POINTS",
    "SUSTAIN_POINTS",
    "Change",
    "CycleStudy",
    "Direction",
    "MeasureStudy",
    "ProgressScore",
    "ProgressStep",
    "Role",
    "Signal",
    "StudyMeasure",
    "monthly_counts",
    "study_change",
]

Role: TypeAlias = Literal["outcome", "process", "balancing"]
Direction: TypeAlias = Literal["up", "down"]

BASELINE_POINTS = 10
"""Points before the change a baseline needs (IHI progress scale; SPC limits
from fewer are unreliable)."""
SUSTAIN_POINTS = 10
"""Points after the change before an improvement can count as sustained."""
SHIFT_POINTS = 6
"""The last this-many points must all lie on the better side of the baseline's
centre line for a sustained improvement (the run-chart shift rule)."""

_ROLES = ("outcome", "process", "balancing")


@dataclass(frozen=True)
class StudyMeasure:
    """One measure of a change's family of measures."""

    measure_id: str
    role: Role
    """``outcome``, ``process`` or ``balancing``."""
    improvement: Direction
    """Which way is better for this measure (the measure's ``improvement``). The
    change is meant to move outcome and process measures that way; a balancing
    measure is flagged when it moves the other way."""
    target: float | None = None
    """The aim's target for this measure (a proportion, 0–1), if one was set."""

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise InputError(
                f"Measure {self.measure_id!r}: role must be outcome, process or balancing, "
                f"not {self.role!r}."
            )
        if self.improvement not in ("up", "down"):
            raise InputError(
                f"Measure {self.measure_id!r}: improvement must be 'up' or 'down', "
                f"not {self.improvement!r}."
            )
        if self.target is not None and not 0 <= self.target <= 1:
            raise InputError(
                f"Measure {self.measure_id!r}: a target is a proportion between 0 and 1; "
                f"got {self.target}."
            )


@dataclass(frozen=True)
class Change:
    """What a learning cycle changed, where and when, and how it is measured."""

    label: str
    """Short name, shown on the charts (e.g. ``"PDSA 3: pre-visit planning"``)."""
    started: date
    """When the change started (the Do); its month starts the new phase."""
    measures: tuple[StudyMeasure, ...]
    sites: tuple[str, ...] = ()
    """The sites that made the change; empty for the whole network (the
    network rows of the results)."""
    aim: str | None = None
    """The aim the change serves (what, how much, by when); None if none is set."""
    earlier: tuple[date, ...] = ()
    """Earlier changes on the same measures at these sites: each its own phase in
    the model, so their effect is not credited to this change."""
    cycles_recorded: int = 1
    """Learning cycles its community has recorded, planned ones included (shown, not
    scored)."""
    cycles_tested: int = 1
    """Learning cycles that tested a change for the same aim, a Do recorded (this one
    included: a change with a start date is a tested cycle). The progress score's
    "cycles" step counts these."""

    def __post_init__(self) -> None:
        if not self.measures:
            raise InputError(f"Change {self.label!r} names no measures to study.")
        ids = [m.measure_id for m in self.measures]
        if len(set(ids)) != len(ids):
            raise InputError(f"Change {self.label!r} names a measure twice: {ids}.")
        if self.cycles_tested < 1:
            raise InputError(
                f"Change {self.label!r}: cycles_tested is {self.cycles_tested}, but a change "
                "with a start date is itself a tested cycle; count it (1 or more)."
            )
        later = [d for d in self.earlier if d >= self.started]
        if later:
            raise InputError(
                f"Change {self.label!r}: an earlier change ({later[0].isoformat()}) is not "
                f"before this one ({self.started.isoformat()})."
            )


@dataclass(frozen=True)
class Signal:
    """What the chart shows after the change, against the baseline frozen at it."""

    detected: bool
    """A runs signal (Anhøj: a shift or too few crossings) or points beyond the limits."""
    direction: Literal["up", "down", "none"]
    """Which side of the baseline's centre line the points after the change lie on
    (by their mean); ``none`` when nothing was detected."""
    runs: bool
    """The Anhøj runs rules signalled."""
    beyond_limits: tuple[date, ...]
    """Months after the change beyond the baseline's 3-sigma limits (special causes)."""
    baseline_centre: float
    """The baseline's centre line (proportion)."""


@dataclass(frozen=True)
class MeasureStudy:
    """The Study of one measure."""

    measure: StudyMeasure
    points: int
    baseline_points: int
    """Months in the baseline: before the change, since any earlier change."""
    after_points: int
    chart: SpcChart | None
    """The P chart with a new phase at the change (None without data)."""
    annotation: Annotation
    signal: Signal | None
    effect: Effect | None
    """Odds ratio of the change (step at its date) with its 95% interval."""
    effect_method: str
    moved: Literal["better", "worse", "no signal"]
    flagged: bool
    """A balancing measure that moved the wrong way."""
    sustained: bool
    target_met: bool | None
    """The new phase's centre line reaches the target (None without a target)."""
    special_cause_months: tuple[date, ...]
    """Months beyond their own phase's limits: special causes, detected."""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN → null); the chart as its points."""
        m = self.measure
        return {
            "measure_id": m.measure_id,
            "role": m.role,
            "improvement": m.improvement,
            "target": json_value(m.target),
            "points": self.points,
            "baseline_points": self.baseline_points,
            "after_points": self.after_points,
            "phase": {
                "starts": json_value(self.annotation.x),
                "label": self.annotation.label,
                "kind": self.annotation.kind,
            },
            "chart": _chart_dict(self.chart),
            "signal": _signal_dict(self.signal),
            "effect": _effect_dict(self.effect),
            "effect_scale": "odds ratio",
            "effect_method": self.effect_method,
            "moved": self.moved,
            "flagged": self.flagged,
            "sustained": self.sustained,
            "target_met": self.target_met,
            "special_causes": [
                {"month": d.isoformat(), "detected": True} for d in self.special_cause_months
            ],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ProgressStep:
    """One step of the IHI progress scale and whether the evidence reaches it."""

    score: float
    title: str
    met: bool
    reason: str


@dataclass(frozen=True)
class ProgressScore:
    """The IHI progress score: the highest step reached with every step below it."""

    score: float
    steps: tuple[ProgressStep, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "steps": [
                {"score": s.score, "title": s.title, "met": s.met, "reason": s.reason}
                for s in self.steps
            ],
        }


@dataclass(frozen=True)
class CycleStudy:
    """A learning cycle's automatic Study."""

    change: Change
    measures: tuple[MeasureStudy, ...]
    progress: ProgressScore
    caveats: tuple[str, ...] = field(default=())

    def measure(self, measure_id: str) -> MeasureStudy:
        """The Study of one measure."""
        for m in self.measures:
            if m.measure.measure_id == measure_id:
                return m
        raise KeyError(measure_id)

    def to_dict(self) -> dict[str, Any]:
        c = self.change
        return {
            "change": {
                "label": c.label,
                "started": c.started.isoformat(),
                "sites": list(c.sites),
                "aim": c.aim,
                "earlier": [d.isoformat() for d in c.earlier],
                "cycles_recorded": c.cycles_recorded,
                "cycles_tested": c.cycles_tested,
            },
            "measures": [m.to_dict() for m in self.measures],
            "balancing_flagged": [m.measure.measure_id for m in self.measures if m.flagged],
            "progress": self.progress.to_dict(),
            "caveats": list(self.caveats),
        }


# --- the data --------------------------------------------------------------------


def monthly_counts(
    results: pd.DataFrame, measure_id: str, sites: Sequence[str] = ()
) -> pd.DataFrame:
    """Numerator and denominator per month of one measure, summed over ``sites``.

    With no sites, the network rows (``site`` empty or null). Months with no
    denominator are left out. Columns: period_start (date), numerator,
    denominator, t (1, 2, …).
    """
    require_columns(
        results,
        ["measure_id", "site", "period_start", "numerator", "denominator"],
        what="the measure results",
    )
    rows = results[results.measure_id == measure_id]
    if "stratum" in rows.columns:
        rows = rows[rows.stratum.fillna("") == ""]
    site = rows.site.fillna("").astype(str)
    rows = rows[site == ""] if not sites else rows[site.isin(list(sites))]
    out = rows.groupby("period_start", as_index=False)[["numerator", "denominator"]].sum()
    out = out[out.denominator > 0].copy()
    out["period_start"] = pd.to_datetime(out.period_start).dt.date
    out = out.sort_values("period_start").reset_index(drop=True)
    out["t"] = np.arange(1, len(out) + 1)
    return out


def _month(day: date) -> date:
    return day.replace(day=1)


# --- the Study -------------------------------------------------------------------


def study_change(results: pd.DataFrame, change: Change) -> CycleStudy:
    """Study a change from the measure results (see the module's description).

    Raises:
        InputError: Missing columns, or a measure of the change with no results
            at its sites (says which, and which measures the results hold).
    """
    require_columns(
        results,
        ["measure_id", "site", "period_start", "numerator", "denominator"],
        what="the measure results",
    )
    have = set(results.measure_id.dropna().astype(str))
    missing = [m.measure_id for m in change.measures if m.measure_id not in have]
    if missing:
        raise InputError(
            f"No results for measure(s) {', '.join(missing)}: run the measures first, or check "
            f"the measure ids (the results hold {', '.join(sorted(have)) or 'none'}).",
            [ErrorDetail(f"measures.{m}", "no results for this measure", m) for m in missing],
        )
    studies = tuple(_study_measure(results, change, m) for m in change.measures)
    caveats = tuple(dict.fromkeys(n for s in studies for n in s.notes))
    return CycleStudy(change, studies, _progress(change, studies), caveats)


def _study_measure(results: pd.DataFrame, change: Change, m: StudyMeasure) -> MeasureStudy:
    frame = monthly_counts(results, m.measure_id, change.sites)
    start = _month(change.started)
    annotation = Annotation(pd.Timestamp(start), change.label, kind="pdsa")
    before = int((frame.period_start < start).sum()) if len(frame) else 0
    after = len(frame) - before
    notes: list[str] = []
    where = ", ".join(change.sites) if change.sites else "the network"
    if len(frame) == 0:
        notes.append(f"{m.measure_id}: no results at {where}.")
        return MeasureStudy(
            m,
            0,
            0,
            0,
            None,
            annotation,
            None,
            None,
            "",
            "no signal",
            False,
            False,
            None,
            (),
            tuple(notes),
        )
    chart = _phased_chart(frame, start, change)
    # The baseline is the phase just before the change: from the latest earlier change on.
    earlier = [_month(d) for d in change.earlier if _month(d) < start]
    window = frame[frame.period_start >= max(earlier)] if earlier else frame
    window = window.reset_index(drop=True)
    before = int((window.period_start < start).sum())
    signal = _signal(window, before) if before >= 2 and after >= 1 else None
    if before < BASELINE_POINTS:
        notes.append(
            f"{m.measure_id}: {before} month(s) before the change at {where}; a baseline needs "
            f"{BASELINE_POINTS}."
        )
    effect, method = _effect(frame, change, m, notes)
    moved: Literal["better", "worse", "no signal"] = "no signal"
    if signal is not None and signal.detected and signal.direction != "none":
        moved = "better" if signal.direction == m.improvement else "worse"
    sustained = moved == "better" and _sustained(window, before, signal, m)
    target_met = _target_met(chart, m)
    return MeasureStudy(
        measure=m,
        points=len(frame),
        baseline_points=before,
        after_points=after,
        chart=chart,
        annotation=annotation,
        signal=signal,
        effect=effect,
        effect_method=method,
        moved=moved,
        flagged=m.role == "balancing" and moved == "worse",
        sustained=sustained,
        target_met=target_met,
        special_cause_months=_special_causes(chart),
        notes=tuple(notes),
    )


def _qic(frame: pd.DataFrame, **options: Any) -> SpcChart:
    with warnings.catch_warnings():
        # Few points or no variation are reported in the notes and the progress reasons.
        warnings.simplefilter("ignore", StatisticalWarning)
        return qic(
            frame.numerator.to_numpy(dtype=float),
            x=[pd.Timestamp(d) for d in frame.period_start],
            n=frame.denominator.to_numpy(dtype=float),
            chart="p",
            **options,
        )


def _phased_chart(frame: pd.DataFrame, start: date, change: Change) -> SpcChart:
    """The chart as the dashboards draw it: a new part at each change inside the series."""
    first, last = frame.period_start.iloc[0], frame.period_start.iloc[-1]
    starts = sorted({_month(d) for d in (*change.earlier, change.started)})
    parts = [pd.Timestamp(s) for s in starts if first < s <= last]
    return _qic(frame, part_at=parts or None, title=change.label)


def _signal(frame: pd.DataFrame, before: int) -> Signal:
    """Signals after the change against the baseline frozen at it (qicharts2's freeze)."""
    chart = _qic(frame, freeze=before)
    pts = chart.points
    post = pts.iloc[before:]
    cl = float(pts.cl.iloc[0])
    runs = bool(pts.runs_signal.fillna(False).astype(bool).any())
    beyond = post[post.sigma_signal.fillna(False).astype(bool)]
    detected = runs or len(beyond) > 0
    mean_after = float(post.y.mean())
    direction: Literal["up", "down", "none"] = "none"
    if detected and mean_after != cl:
        direction = "up" if mean_after > cl else "down"
    return Signal(
        detected=detected,
        direction=direction,
        runs=runs,
        beyond_limits=tuple(pd.Timestamp(x).date() for x in beyond.x),
        baseline_centre=cl,
    )


def _sustained(frame: pd.DataFrame, before: int, signal: Signal | None, m: StudyMeasure) -> bool:
    after = frame.iloc[before:]
    if signal is None or len(after) < SUSTAIN_POINTS:
        return False
    last = (after.numerator / after.denominator).to_numpy()[-SHIFT_POINTS:]
    cl = signal.baseline_centre
    return bool(np.all(last > cl) if m.improvement == "up" else np.all(last < cl))


def _target_met(chart: SpcChart, m: StudyMeasure) -> bool | None:
    if m.target is None:
        return None
    pts = chart.points
    cl = float(pts[pts.part == pts.part.max()].cl.iloc[-1])
    return cl >= m.target if m.improvement == "up" else cl <= m.target


def _special_causes(chart: SpcChart) -> tuple[date, ...]:
    pts = chart.points
    flagged = pts[pts.sigma_signal.fillna(False).astype(bool)]
    return tuple(pd.Timestamp(x).date() for x in flagged.x)


def _effect(
    frame: pd.DataFrame, change: Change, m: StudyMeasure, notes: list[str]
) -> tuple[Effect | None, str]:
    data = frame.copy()
    first, last = data.period_start.iloc[0], data.period_start.iloc[-1]
    phases: list[str] = []
    for i, when in enumerate(sorted({_month(d) for d in change.earlier})):
        if first < when <= last:
            name = f"earlier_{i + 1}"
            data[name] = (data.period_start >= when).astype(int)
            phases.append(name)
    start = _month(change.started)
    if not first < start <= last:
        notes.append(
            f"{m.measure_id}: the change ({start:%b %Y}) is not inside the months with results "
            f"({first:%b %Y} to {last:%b %Y}); no effect can be estimated."
        )
        return None, ""
    data["change"] = (data.period_start >= start).astype(int)
    phases.append("change")
    try:
        fit = its_effect(data, phases)
    except InputError as exc:
        notes.append(f"{m.measure_id}: the interrupted time series could not be fitted: {exc}")
        return None, ""
    effect = fit.step("change")
    if not all(math.isfinite(v) for v in (effect.estimate, effect.ci_low, effect.ci_high)):
        notes.append(f"{m.measure_id}: the effect could not be estimated (no variation).")
    return effect, its_method(len(phases))


# --- the progress score ------------------------------------------------------------

_TITLES = {
    0.5: "Intent to participate",
    1.0: "Aim set",
    1.5: "Baseline measured",
    2.0: "Activity: cycles tested",
    2.5: "Changes tested",
    3.0: "Modest improvement",
    3.5: "Improvement in outcomes",
    4.0: "Significant improvement",
    4.5: "Sustainable improvement",
    5.0: "Outstanding sustainable results",
}


def _better(effect: Effect | None, improvement: Direction) -> bool:
    if effect is None or not math.isfinite(effect.ci_low) or not math.isfinite(effect.ci_high):
        return False
    return effect.ci_low > 1 if improvement == "up" else effect.ci_high < 1


def _names(studies: Sequence[MeasureStudy]) -> str:
    return ", ".join(s.measure.measure_id for s in studies) or "none"


def _progress(change: Change, studies: Sequence[MeasureStudy]) -> ProgressScore:
    """The IHI progress scale, each step from evidence, in order; a step needs those below it.

    Long because the IHI scale is one ladder of steps, each needing those below it; kept
    as one function it can be read against the published scale step by step.
    """
    outcomes = [s for s in studies if s.measure.role == "outcome"]
    measured = [s for s in studies if s.measure.role in ("outcome", "process")]
    balancing = [s for s in studies if s.measure.role == "balancing"]
    checks: list[tuple[float, bool, str]] = []
    checks.append((0.5, True, f"The change “{change.label}” is recorded as a learning cycle."))
    aim_ok = bool(change.aim and change.aim.strip()) and bool(outcomes)
    checks.append(
        (
            1.0,
            aim_ok,
            "An aim is set and measured by outcome measure(s) " + _names(outcomes) + "."
            if aim_ok
            else "No aim with an outcome measure is recorded for this change.",
        )
    )
    short = [s for s in measured if s.baseline_points < BASELINE_POINTS]
    base_ok = bool(measured) and not short
    checks.append(
        (
            1.5,
            base_ok,
            f"Every outcome and process measure has at least {BASELINE_POINTS} months before "
            "the change."
            if base_ok
            else "Too short a baseline (fewer than "
            f"{BASELINE_POINTS} months before the change): " + _names(short) + ".",
        )
    )
    # Cycles tested (a Do recorded), not cycles only planned: the "cycles recorded"
    # step is activity on the aim, and a plan alone is no test of a change.
    checks.append(
        (
            2.0,
            change.cycles_tested >= 1,
            f"{change.cycles_tested} learning cycle(s) tested a change for this aim (a Do "
            f"recorded); {change.cycles_recorded} recorded in all, planned ones included.",
        )
    )
    untested = [s for s in measured if s.after_points < 1]
    tested = bool(measured) and not untested
    checks.append(
        (
            2.5,
            tested,
            "Results exist after the change for every outcome and process measure."
            if tested
            else "No results yet after the change for " + _names(untested) + ".",
        )
    )
    better = [s for s in measured if s.moved == "better"]
    checks.append(
        (
            3.0,
            bool(better),
            "A signal in the intended direction (SPC rules against the baseline) on "
            + _names(better)
            + "."
            if better
            else "No outcome or process measure shows a signal in the intended direction.",
        )
    )
    better_outcomes = [s for s in outcomes if s.moved == "better"]
    checks.append(
        (
            3.5,
            bool(better_outcomes),
            "Outcome measure(s) improved by the SPC rules: " + _names(better_outcomes) + "."
            if better_outcomes
            else "No outcome measure shows a signal in the intended direction.",
        )
    )
    significant = [s for s in better_outcomes if _better(s.effect, s.measure.improvement)]
    flagged = [s for s in balancing if s.flagged]
    sig_ok = bool(significant) and not flagged
    checks.append(
        (
            4.0,
            sig_ok,
            "The interrupted time series puts the whole 95% interval on the better side for "
            + _names(significant)
            + ", and no balancing measure moved the wrong way."
            if sig_ok
            else (
                "Balancing measure(s) moved the wrong way: " + _names(flagged) + "."
                if flagged
                else "No outcome effect whose 95% interval lies wholly on the better side."
            ),
        )
    )
    sustained = [s for s in significant if s.sustained]
    checks.append(
        (
            4.5,
            bool(sustained),
            f"Sustained: at least {SUSTAIN_POINTS} months after the change and the last "
            f"{SHIFT_POINTS} all better than the baseline for " + _names(sustained) + "."
            if sustained
            else f"Not yet sustained (needs {SUSTAIN_POINTS} months after the change with the "
            f"last {SHIFT_POINTS} all better than the baseline).",
        )
    )
    targeted = [s for s in outcomes if s.measure.target is not None]
    met = bool(targeted) and all(s.target_met for s in targeted) and bool(sustained)
    checks.append(
        (
            5.0,
            met,
            "Every outcome target is reached by the new phase's centre line, and sustained."
            if met
            else (
                "No target is set for the outcome measures."
                if not targeted
                else "Not every outcome target is reached and sustained: "
                + _names([s for s in targeted if not s.target_met])
                + "."
            ),
        )
    )
    steps: list[ProgressStep] = []
    score = 0.0
    reached = True
    for value, ok, reason in checks:
        reached = reached and ok
        if reached:
            score = value
        steps.append(ProgressStep(value, _TITLES[value], ok, reason))
    return ProgressScore(score, tuple(steps))


# --- JSON -------------------------------------------------------------------------


def _effect_dict(e: Effect | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {k: json_value(getattr(e, k)) for k in ("estimate", "ci_low", "ci_high", "p")}


def _signal_dict(s: Signal | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "detected": s.detected,
        "direction": s.direction,
        "runs": s.runs,
        "beyond_limits": [d.isoformat() for d in s.beyond_limits],
        "baseline_centre": json_value(s.baseline_centre),
    }


def _chart_dict(chart: SpcChart | None) -> dict[str, Any] | None:
    if chart is None:
        return None
    cols = ("x", "y", "n", "cl", "lcl", "ucl", "part", "sigma_signal", "runs_signal")
    pts = chart.points[[c for c in cols if c in chart.points.columns]]
    return {"type": chart.chart_type, "points": records(pts.to_dict("records"))}
