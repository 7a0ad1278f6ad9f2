"""One measure's series and SPC chart, network or site, from its stored rows."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.spc import Annotation, SpcChart, qic
from careloop.core.errors import InputError
from careloop.measures.catalog import MeasureCatalog
from careloop.measures.plain_language import describe
from careloop.measures.runner import NETWORK
from careloop.practice.feedback.dashboards.model import (
    Deployed,
    MeasureInfo,
    Point,
    Series,
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


_CHART: dict[str, str] = {"proportion": "p", "ratio": "u", "count": "c", "continuous": "i"}


def spc_chart(
    info: MeasureInfo,
    points: Sequence[Point],
    *,
    phase_starts: Sequence[date] = (),
    title: str | None = None,
) -> tuple[SpcChart | None, Signals | None]:
    """The SPC chart of a series (P chart for proportions, U, C or I otherwise) and its signals.

    Periods without data are left out. A new phase starts at each of
    ``phase_starts`` that falls inside the series. Statistical caveats are
    collected in :attr:`Signals.caveats` instead of being raised as warnings.
    """
    kind = _CHART.get(info.type, "i")
    usable = [
        p
        for p in points
        if (p.denominator > 0 if kind in ("p", "u") else True)
        and (p.value is not None or kind == "c")
    ]
    if len(usable) < 3:
        return None, None
    frame = pd.DataFrame(
        {
            "x": [pd.Timestamp(p.period_start) for p in usable],
            "y": [
                float(p.numerator) if kind in ("p", "u", "c") else float(p.value or 0.0)
                for p in usable
            ],
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
                n="n" if kind in ("p", "u") else None,
                data=frame,
                chart=kind,  # type: ignore[arg-type]
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
    return chart, _signals(chart, caveats)


def _signals(chart: SpcChart, caveats: tuple[str, ...]) -> Signals:
    pts = chart.points
    last_part = pts[pts["part"] == pts["part"].max()]
    outside = int(last_part["sigma_signal"].fillna(False).astype(bool).sum())
    runs = bool(last_part["runs_signal"].fillna(False).astype(bool).any())
    variation: Variation = "common_cause"
    if "variation" in pts.columns:
        analysed = last_part["variation"].dropna()
        if len(analysed) and str(analysed.iloc[-1]) in (
            "special_cause_improvement",
            "special_cause_concern",
            "special_cause_neither",
        ):
            variation = str(analysed.iloc[-1])  # type: ignore[assignment]
    return Signals(outside, runs, variation, caveats)


def _series(
    info: MeasureInfo,
    stored: StoredResults,
    site: str,
    *,
    chart: bool = True,
    deployments: Sequence[Deployed] = (),
) -> Series:
    points = _points(stored.rows(info.id, site))
    mine = [d for d in deployments if not d.sites or site == NETWORK or site in d.sites]
    # A phase starts where the whole unit changed practice: a change at every site
    # for the network chart, any change at the site for the site's chart.
    phases = sorted({d.started for d in mine if not d.sites or site != NETWORK})
    annotations = tuple(
        Annotation(pd.Timestamp(_month(d.started)), d.label, kind=d.kind) for d in mine
    )
    if not chart:
        return Series(site, points, None, None, annotations)
    spc, signals = spc_chart(info, points, phase_starts=[_month(s) for s in phases], title=None)
    return Series(site, points, spc, signals, annotations)


def _month(day: date) -> date:
    return day.replace(day=1)
