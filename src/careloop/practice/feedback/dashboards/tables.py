"""What a measure's charts say, as numbers and words: the CSV download's chart columns,
each phase's centre line and limits in a sentence, and how old the data are."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from careloop.measures.runner import NETWORK
from careloop.practice.feedback.dashboards.model import MeasureDetail, MeasureInfo, Series

STALE_MONTHS = 3
"""Data whose latest period ended more than this many months ago are flagged as old."""

CHART_COLUMNS = ("chart", "phase", "cl", "ucl", "lcl", "signal")
"""Columns the CSV download adds to the stored numbers, from each series' SPC chart."""


def _signal(row: pd.Series) -> str:
    """One word for a point: what the chart flags it as."""
    variation = row.get("variation")
    if isinstance(variation, str) and variation != "common_cause":
        return variation.removeprefix("special_cause_")
    if bool(row.get("sigma_signal")):
        return "outside limits"
    return "common cause"


def chart_columns(series: Series) -> pd.DataFrame:
    """One row per charted period of ``series``: period_start and :data:`CHART_COLUMNS`,
    the centre line and limits on the values' scale (fractions for proportions)."""
    if series.chart is None:
        return pd.DataFrame(columns=["period_start", *CHART_COLUMNS])
    pts = series.chart.points
    scale = series.chart.multiply or 1.0
    limits = {k: pd.to_numeric(pts[k], errors="coerce") / scale for k in ("cl", "ucl", "lcl")}
    return pd.DataFrame(
        {
            "period_start": [pd.Timestamp(x).date() for x in pts["x"]],
            "chart": series.chart.chart_type,
            "phase": pts["part"].astype(int).to_numpy(),
            **{k: v.round(6).to_numpy() for k, v in limits.items()},
            "signal": [_signal(r) for _, r in pts.iterrows()],
        }
    )


def measure_table(detail: MeasureDetail, numbers: pd.DataFrame) -> pd.DataFrame:
    """The stored numbers of a measure (network and sites) with each row's chart columns
    (empty where a period has no chart point, e.g. a denominator of 0)."""
    parts = []
    for series in (detail.network, *detail.sites):
        cols = chart_columns(series)
        cols.insert(0, "site", series.site)
        parts.append(cols)
    charted = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if charted.empty:
        return numbers.assign(**{c: None for c in CHART_COLUMNS})
    merged = numbers.merge(charted, on=["site", "period_start"], how="left")
    merged["phase"] = merged["phase"].astype("Int64")
    return merged


@dataclass(frozen=True)
class PhaseSummary:
    """One phase of a chart, in numbers for a sentence."""

    number: int
    """1 for the first phase."""
    first: date
    """Its first period."""
    last: date
    """Its last period."""
    cl: float | None
    """Centre line (on the values' scale)."""
    lcl: float | None
    """Lower limit at its last period (None: none)."""
    ucl: float | None
    """Upper limit at its last period (None: none)."""


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def phases(series: Series) -> tuple[PhaseSummary, ...]:
    """Each phase of the series' chart with its centre line and latest limits."""
    if series.chart is None:
        return ()
    pts = series.chart.points
    scale = series.chart.multiply or 1.0
    out = []
    for _, grp in pts.groupby("part", sort=True):
        last = grp.iloc[-1]
        values = [_finite(last[k]) for k in ("cl", "lcl", "ucl")]
        cl, lcl, ucl = (v / scale if v is not None else None for v in values)
        out.append(
            PhaseSummary(
                int(last["part"]),
                pd.Timestamp(grp["x"].iloc[0]).date(),
                pd.Timestamp(grp["x"].iloc[-1]).date(),
                cl,
                lcl,
                ucl,
            )
        )
    return tuple(out)


def _value(value: float | None, info: MeasureInfo) -> str:
    if value is None:
        return "none"
    return f"{value * 100:.1f}%" if info.percent else f"{value:.3g}"


def chart_summary(series: Series, info: MeasureInfo) -> str:
    """The chart in words, for people who cannot see it: each phase's centre line and
    limits, and what the latest point shows."""
    where = "the network" if series.site == NETWORK else f"site {series.site}"
    found = phases(series)
    if not found:
        return f"There are too few periods with data to chart {where}."
    bits = []
    for p in found:
        span = f"{p.first.strftime('%b %Y')} to {p.last.strftime('%b %Y')}"
        limits = (
            f", limits {_value(p.lcl, info)} to {_value(p.ucl, info)}"
            if p.ucl is not None
            else ", no control limits"
        )
        bits.append(f"phase {p.number} ({span}): centre line {_value(p.cl, info)}{limits}")
    kind = series.chart.chart_type.upper() if series.chart is not None else ""
    name = "Run chart" if kind == "RUN" else f"{kind} chart"
    return (
        f"{name} of {where}, {len(found)} phase{'s' if len(found) > 1 else ''}: "
        + "; ".join(bits)
        + "."
    )


def months_between(earlier: date, later: date) -> int:
    """Whole calendar months from ``earlier``'s month to ``later``'s."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def staleness(latest_end: date | None, today: date) -> str:
    """A warning when the data end more than :data:`STALE_MONTHS` months before today
    (``""`` when they are recent)."""
    if latest_end is None:
        return ""
    age = months_between(latest_end, today)
    if age <= STALE_MONTHS:
        return ""
    return (
        f"These data end in {latest_end.strftime('%B %Y')}; the newest results are "
        f"{age} months old. Run the measures again on fresh data before acting on them."
    )
