"""One measure's series and SPC chart, network or site, from its stored rows."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import pandas as pd

from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.spc import Annotation, SpcChart, qic
from careloop.analysis.spc.rules import assurance_class
from careloop.core.errors import InputError
from careloop.measures.catalog import MeasureCatalog
from careloop.measures.plain_language import describe
from careloop.measures.runner import NETWORK
from careloop.practice.feedback.dashboards.model import (
    Assurance,
    Deployed,
    MeasureInfo,
    Point,
    Series,
    Side,
    Signals,
    Variation,
)
from careloop.practice.feedback.dashboards.results import StoredResults


def measure_info(
    catalog: MeasureCatalog, measure_id: str, definition_hash: str = ""
) -> MeasureInfo:
    """The catalog's description of a measure (a bare one when the catalog lacks it)."""
    definition = next((m for m in catalog.measures if m.id == measure_id), None)
    if definition is None:
        return MeasureInfo(
            measure_id,
            measure_id,
            "",
            "",
            None,
            None,
            ("This installation's measure catalog does not hold this measure's definition.",),
        )
    return MeasureInfo(
        definition.id,
        definition.title,
        definition.description.strip(),
        definition.type,
        definition.improvement,
        definition.target,
        describe(definition),
        definition,
        changed_since_run=bool(definition_hash) and definition_hash != definition.definition_hash,
    )


def _points(rows: pd.DataFrame) -> tuple[Point, ...]:
    out = []
    for r in rows.to_dict("records"):
        raw: Any = r["value"]
        value = float(raw) if raw is not None and not pd.isna(raw) else None
        out.append(
            Point(
                r["period_start"],
                r["period_end"],
                int(r["numerator"]),
                int(r["denominator"]),
                value,
                bool(r["small_denominator"]),
            )
        )
    return tuple(out)


ChartKind = Literal["p", "u", "c", "i", "run"]


@dataclass(frozen=True)
class ChartChoice:
    """Which chart a series is drawn on, and why there are no limits when there are none."""

    kind: ChartKind
    """P chart (proportions), U (rates), C (counts), I (continuous values) or a run chart."""
    reason: str = ""
    """For a run chart: why control limits would not mean anything here (plain words)."""


_CHART: dict[str, ChartKind] = {"proportion": "p", "ratio": "u", "count": "c", "continuous": "i"}
MIN_LEVELS = 5
"""An I chart needs values at this many different levels at least."""
MAX_MODE_SHARE = 0.5
"""An I chart is refused when more than this share of the values are one same value."""


def choose_chart(info: MeasureInfo, points: Sequence[Point]) -> ChartChoice:
    """The chart a measure's series is drawn on, from the measure's kind and its data.

    Proportions go on a P chart and rates on a U chart (limits from the binomial
    and Poisson models, which hold whatever the values), counts on a C chart. An
    I chart estimates its limits from the moving ranges, which collapse when the
    values are discrete or mostly one value (a median of a score that is 0 in
    most months flags nearly every point), so a continuous measure whose values
    take few levels, or one level most of the time, gets a run chart instead,
    with the reason. So does a proportion that never varies (always 0% or
    100%), whose limits are the centre line itself.
    """
    kind = _CHART.get(info.type)
    if kind is None:
        return ChartChoice(
            "run", "the measure's kind (proportion, rate, count or value) is unknown"
        )
    values = [p.value for p in points if p.value is not None]
    if kind == "p" and values and (max(values) <= 0.0 or min(values) >= 1.0):
        level = "0%" if max(values) <= 0.0 else "100%"
        return ChartChoice("run", f"every value is {level}, so there is no variation to measure")
    if kind != "i" or not values:
        return ChartChoice(kind)
    counts = pd.Series(values).round(9).value_counts()
    if len(counts) < MIN_LEVELS:
        return ChartChoice(
            "run",
            f"the values take only {len(counts)} different level{'s' if len(counts) != 1 else ''}",
        )
    share = float(counts.iloc[0]) / len(values)
    if share > MAX_MODE_SHARE:
        mode = _number(float(counts.index[0]))
        return ChartChoice(
            "run",
            f"{round(share * 100)}% of the values are the same ({mode}), "
            "so the month-to-month ranges the limits come from are mostly zero",
        )
    return ChartChoice("i")


def _number(value: float) -> str:
    return f"{value:g}"


def spc_chart(
    info: MeasureInfo,
    points: Sequence[Point],
    *,
    phase_starts: Sequence[date] = (),
    title: str | None = None,
) -> tuple[SpcChart | None, Signals | None]:
    """The SPC chart of a series (see :func:`choose_chart`) and its signals.

    Periods without data are left out. A new phase starts at each of
    ``phase_starts`` that falls inside the series. Statistical caveats are
    collected in :attr:`Signals.caveats` instead of being raised as warnings.
    """
    choice = choose_chart(info, points)
    kind = choice.kind
    with_n = kind in ("p", "u") or (kind == "run" and info.type in ("proportion", "ratio"))
    usable = [
        p
        for p in points
        if (p.denominator > 0 if with_n else True) and (p.value is not None or kind == "c")
    ]
    if len(usable) < 3:
        return None, None
    counted = info.type in ("proportion", "ratio", "count")
    frame = pd.DataFrame(
        {
            "x": [pd.Timestamp(p.period_start) for p in usable],
            "y": [float(p.numerator) if counted else float(p.value or 0.0) for p in usable],
            "n": [float(p.denominator) for p in usable],
        }
    )
    xs = list(frame["x"])
    parts = [
        pd.Timestamp(s) for s in sorted(set(phase_starts)) if xs[0] < pd.Timestamp(s) <= xs[-1]
    ]
    multiply = 100.0 if info.type == "proportion" else 1.0
    target = info.target * multiply if info.target is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        try:
            chart = qic(
                "y",
                x="x",
                n="n" if with_n else None,
                data=frame,
                chart=kind,
                part_at=parts or None,
                multiply=multiply,
                target=target,
                rules=("anhoej", "nhs"),
                improvement=info.improvement,
                title=title,
                ylab="%" if info.type == "proportion" else "",
            )
        except InputError:
            return None, None
    caveats = tuple(dict.fromkeys(str(w.message) for w in caught))
    return chart, _signals(chart, caveats, choice)


def _signals(chart: SpcChart, caveats: tuple[str, ...], choice: ChartChoice) -> Signals:
    pts = chart.points
    last_part = pts[pts["part"] == pts["part"].max()]
    outside = int(last_part["sigma_signal"].fillna(False).astype(bool).sum())
    runs = bool(last_part["runs_signal"].fillna(False).astype(bool).any())
    variation: Variation = "common_cause"
    side: Side | None = None
    if "variation" in pts.columns:
        analysed = last_part[last_part["variation"].notna()]
        if len(analysed) and str(analysed["variation"].iloc[-1]) in (
            "special_cause_improvement",
            "special_cause_concern",
            "special_cause_neither",
        ):
            variation = str(analysed["variation"].iloc[-1])  # type: ignore[assignment]
            last = analysed.iloc[-1]
            side = "high" if float(last["y"]) >= float(last["cl"]) else "low"
    return Signals(
        outside,
        runs,
        variation,
        caveats,
        side=side,
        assurance=_assurance(chart, last_part),
        chart_kind=choice.kind,
        limits_note=choice.reason,
    )


def _assurance(chart: SpcChart, last_part: pd.DataFrame) -> Assurance | None:
    """Making Data Count assurance from the latest phase's limits at its latest point."""
    improvement = chart.options.get("improvement")
    if chart.target is None or improvement is None or chart.chart_type == "run":
        return None
    last = last_part.iloc[-1]
    found = assurance_class(
        float(last["lcl"]), float(last["ucl"]), float(chart.target), improvement
    )
    return found  # type: ignore[return-value]


def _series(
    info: MeasureInfo,
    stored: StoredResults,
    site: str,
    *,
    chart: bool = True,
    deployments: Sequence[Deployed] = (),
) -> Series:
    points = _points(stored.rows(info.id, site))
    mine = drawn_changes(deployments, site)
    annotations = tuple(
        Annotation(pd.Timestamp(_month(d.started)), d.label, kind=d.kind) for d in mine
    )
    if not chart:
        return Series(site, points, None, None, annotations)
    spc, signals = spc_chart(info, points, phase_starts=phase_starts(deployments, site))
    return Series(site, points, spc, signals, annotations)


def drawn_changes(changes: Sequence[Deployed], site: str) -> list[Deployed]:
    """The changes drawn on the chart of ``site`` (``""``: the network): the network's
    chart shows every change but a note on one site's chart; a site's chart shows the
    changes at that site or at every site."""
    if site == NETWORK:
        return [d for d in changes if not (d.kind == "note" and d.sites)]
    return [d for d in changes if not d.sites or site in d.sites]


def phase_starts(changes: Sequence[Deployed], site: str) -> list[date]:
    """The months where the chart of ``site`` starts a new phase.

    A phase starts where the whole unit changed practice: a change at every site
    for the network chart, any change at the site for the site's chart; a note
    starts one only when its author asked for it.
    """
    starting = [
        d
        for d in drawn_changes(changes, site)
        if d.starts_phase and (not d.sites or site != NETWORK)
    ]
    return sorted({_month(d.started) for d in starting})


def _month(day: date) -> date:
    return day.replace(day=1)
