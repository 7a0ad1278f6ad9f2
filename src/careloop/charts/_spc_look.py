"""The look of an SPC chart and the data it draws, shared by its Plotly and Vega-Lite forms.

A chart drawn by :mod:`careloop.charts.spc` reads as qicharts2's do: the data
as points joined by a thin line; per part (phase) a solid centre line and
dotted control limits, broken where a new part starts; points outside the
limits in red; the centre line of a part with a runs signal (Anhøj rules)
dashed and red; a target line; and the values of the last part's limits at
the right. Points flagged by the other rule sets (Western Electric, Nelson)
are orange; with the NHS Making Data Count rules the points take that
scheme's colours (improvement blue, concern orange). Excluded points are
hollow. Annotations (:class:`careloop.analysis.spc.Annotation`) are vertical
lines, coloured and dashed by their kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from careloop.analysis.spc import Annotation, SpcChart
from careloop.core.errors import InputError

AnnotationsArg: TypeAlias = Sequence[Annotation] | None
FacetAnnotations: TypeAlias = Sequence[Annotation] | Mapping[str, Sequence[Annotation]] | None

# --- the look -------------------------------------------------------------------

DATA_LINE = "#9e9e9e"
POINT = "#3b4a5a"
SIGMA_SIGNAL = "#d7301f"
RULE_SIGNAL = "#f28e2b"
CENTRE = "#4d4d4d"
RUNS_SIGNAL = "#d7301f"
LIMIT = "#7f7f7f"
TARGET = "#2ca25f"

STATUS_COLOURS: dict[str, str] = {
    "common cause": POINT,
    "outside limits": SIGMA_SIGNAL,
    "rule signal": RULE_SIGNAL,
    "excluded": "#bdbdbd",
    "excluded, outside limits": SIGMA_SIGNAL,
    # NHS Making Data Count (the scheme's blue, orange and purple)
    "improvement": "#289de0",
    "concern": "#fab428",
    "special cause": "#361475",
}

ANNOTATION_STYLES: dict[str, tuple[str, list[int], str]] = {
    # kind: (colour, Vega-Lite strokeDash, Plotly dash)
    "pdsa": ("#3a6fb0", [5, 3], "dash"),
    "deployment": ("#7b3294", [1, 0], "solid"),
    "note": ("#7f7f7f", [2, 2], "dot"),
}

_MDC_STATUS = {
    "common_cause": "common cause",
    "special_cause_improvement": "improvement",
    "special_cause_concern": "concern",
    "special_cause_neither": "special cause",
}


# --- the data drawn -------------------------------------------------------------


def status(points: pd.DataFrame) -> pd.Series:
    """One drawing class per point: excluded, outside limits, rule signal, MDC class, common."""
    drawn = pd.Series("common cause", index=points.index, dtype=object)
    rule_cols = [
        c
        for c in points.columns
        if c.endswith("_signal") and c not in ("sigma_signal", "runs_signal", "mdc_signal")
    ]
    if "variation" in points.columns:
        mapped = points["variation"].map(_MDC_STATUS)
        drawn = mapped.where(mapped.notna(), drawn)
    else:
        for c in rule_cols:
            drawn[points[c].fillna(False).astype(bool)] = "rule signal"
        drawn[points["sigma_signal"].fillna(False).astype(bool)] = "outside limits"
    excluded = ~points["include"].astype(bool)
    outside = points["sigma_signal"].fillna(False).astype(bool)
    drawn[excluded] = "excluded"
    # excluded points are still tested against the limits (as qicharts2 counts them)
    drawn[excluded & outside] = "excluded, outside limits"
    return drawn


def x_kind(x: pd.Series) -> Literal["temporal", "quantitative", "ordinal"]:
    """How the x axis is drawn: as time, as numbers, or as categories in the data's order."""
    if pd.api.types.is_datetime64_any_dtype(x):
        return "temporal"
    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
        return "quantitative"
    return "ordinal"


def x_value(value: Any, kind: str) -> Any:
    """An annotation's x as the axis reads it (a date given as text is a time)."""
    if kind == "temporal":
        return pd.Timestamp(value)
    return value


def checked_points(chart: SpcChart) -> pd.DataFrame:
    """The chart's points with a ``status`` column, refused if a column to draw is missing."""
    required = ("x", "y", "cl", "ucl", "lcl", "part", "include", "sigma_signal", "runs_signal")
    missing = [c for c in required if c not in chart.points.columns]
    if missing:
        raise InputError(f"The chart's points lack the column(s) {missing}; is it an SpcChart?")
    pts = chart.points.reset_index(drop=True).copy()
    pts["status"] = status(pts)
    return pts


def chart_title(chart: SpcChart) -> str:
    """The chart's own title, or its type's name."""
    if chart.title:
        return chart.title
    name = {"run": "Run chart", "pp": "P′ chart", "up": "U′ chart", "xbar": "Xbar chart"}
    return name.get(chart.chart_type, f"{chart.chart_type.upper()} chart")


def number(value: float, *, percent: bool = False) -> str:
    """A value as the chart prints it: percentages with one decimal and a % sign."""
    if not np.isfinite(value):
        return ""
    if percent:
        return f"{value:.1f}%"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def is_percent(chart: SpcChart) -> bool:
    """Whether the chart's values are percentages (proportions multiplied by 100)."""
    return chart.multiply == 100


def limit_labels(pts: pd.DataFrame, *, percent: bool = False) -> list[dict[str, Any]]:
    """Values of the last part's centre line and limits, to print at the right edge."""
    last = pts.iloc[-1]
    labels = []
    keys = [("ucl", "UCL"), ("cl", "CL"), ("lcl", "LCL")]
    if "target" in pts.columns:
        keys.append(("target", "target"))
    for key, name in keys:
        value = float(last[key]) if pd.notna(last[key]) else float("nan")
        if np.isfinite(value):
            labels.append(
                {"x": last["x"], "y": value, "label": f"{name} {number(value, percent=percent)}"}
            )
    return labels


def label_shifts(
    values: Sequence[float], span: float, *, plot_px: float, gap_px: float = 12.0
) -> list[float]:
    """Vertical shifts (pixels, up is positive) that keep labels at ``values`` at least
    ``gap_px`` apart on a plot ``plot_px`` high showing ``span`` units: the target and a
    limit a point apart would otherwise print over each other."""
    if not values:
        return []
    per_px = (span / plot_px) if span > 0 else 1.0
    order = sorted(range(len(values)), key=lambda i: -values[i])
    shifts = [0.0] * len(values)
    previous: float | None = None  # pixel position of the label above, after its shift
    for i in order:
        position = values[i] / per_px
        if previous is not None and previous - position < gap_px:
            shifts[i] = (previous - gap_px) - position
            position = previous - gap_px
        previous = position
    return shifts


def part_labels(pts: pd.DataFrame) -> list[dict[str, Any]]:
    """ "Part k" at the start of each part, when there are several."""
    if pts["part"].nunique() < 2:
        return []
    return [
        {"x": grp["x"].iloc[0], "label": f"Part {int(grp['part'].iloc[0])}"}
        for _, grp in pts.groupby("part", sort=True)
    ]


def annotation_list(annotations: AnnotationsArg) -> list[Annotation]:
    """The annotations as a list, refused unless each is an :class:`Annotation`."""
    if annotations is None:
        return []
    out = list(annotations)
    for a in out:
        if not isinstance(a, Annotation):
            raise InputError(
                f"Annotations must be careloop.analysis.spc.Annotation objects; got {a!r}."
            )
    return out


def subtitle(chart: SpcChart, pts: pd.DataFrame) -> str:
    """What the chart shows in a line: points, parts, signals, missing limits."""
    last = pts[pts["part"] == pts["part"].max()]
    bits = [f"{len(pts)} points"]
    if pts["part"].nunique() > 1:
        bits.append(f"{pts['part'].nunique()} parts")
    if pts["runs_signal"].any():
        bits.append("runs signal (dashed centre line)")
    n_out = int(pts["sigma_signal"].fillna(False).astype(bool).sum())
    if n_out:
        bits.append(f"{n_out} point{'s' if n_out != 1 else ''} outside the limits")
    if not np.isfinite(last["ucl"].astype(float)).any():
        bits.append("no control limits")
    return " · ".join(bits)


def facet_labels(charts: Mapping[str, SpcChart], columns: int) -> list[str]:
    """The panels' labels, in order; refused when there is nothing to draw."""
    if not charts:
        raise InputError("No charts to draw: give at least one.")
    if columns < 1:
        raise InputError(f"columns must be at least 1; got {columns}.")
    return list(charts)


def facet_annotations(annotations: FacetAnnotations, label: str) -> AnnotationsArg:
    """One panel's annotations: the shared list, or the panel's own from a mapping."""
    if annotations is None:
        return None
    if isinstance(annotations, Mapping):
        return annotations.get(label)
    return annotations
