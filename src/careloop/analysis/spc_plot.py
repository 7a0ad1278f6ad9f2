"""Rendering of SPC charts: Plotly figures, and SVG/PNG without a browser.

A chart drawn here reads as qicharts2's do: the data as points joined by a
thin line; per part (phase) a solid centre line and dotted control limits,
broken where a new part starts; points outside the limits in red; the centre
line of a part with a runs signal (Anhøj rules) dashed and red; a target line;
and the values of the last part's limits at the right. Points flagged by the
other rule sets (Western Electric, Nelson) are orange; with the NHS Making
Data Count rules the points take that scheme's colours (improvement blue,
concern orange). Excluded points are hollow.

:class:`Annotation` marks what the learning community did and when — a PDSA
cycle, the deployment of a knowledge object, a note — as a labelled vertical
line.

:func:`chart_figure` returns an interactive Plotly figure. :func:`chart_to_svg`
and :func:`chart_to_png` draw the same picture from a Vega-Lite specification
(:func:`chart_vegalite`) with vl-convert, which needs no browser (Plotly's
static export needs Chrome). :func:`facets_figure`, :func:`facets_to_svg` and
:func:`facets_to_png` draw small multiples, one chart per site or measure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from careloop.analysis import _vegalite
from careloop.analysis.spc.annotations import Annotation
from careloop.core.errors import InputError

if TYPE_CHECKING:
    from careloop.analysis.spc import SpcChart


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


def _status(points: pd.DataFrame) -> pd.Series:
    """One drawing class per point: excluded, outside limits, rule signal, MDC class, common."""
    status = pd.Series("common cause", index=points.index, dtype=object)
    rule_cols = [
        c
        for c in points.columns
        if c.endswith("_signal") and c not in ("sigma_signal", "runs_signal", "mdc_signal")
    ]
    if "variation" in points.columns:
        mapped = points["variation"].map(_MDC_STATUS)
        status = mapped.where(mapped.notna(), status)
    else:
        for c in rule_cols:
            status[points[c].fillna(False).astype(bool)] = "rule signal"
        status[points["sigma_signal"].fillna(False).astype(bool)] = "outside limits"
    excluded = ~points["include"].astype(bool)
    outside = points["sigma_signal"].fillna(False).astype(bool)
    status[excluded] = "excluded"
    # excluded points are still tested against the limits (as qicharts2 counts them)
    status[excluded & outside] = "excluded, outside limits"
    return status


def _x_kind(x: pd.Series) -> Literal["temporal", "quantitative", "ordinal"]:
    if pd.api.types.is_datetime64_any_dtype(x):
        return "temporal"
    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
        return "quantitative"
    return "ordinal"


def _x_value(value: Any, kind: str) -> Any:
    if kind == "temporal":
        return pd.Timestamp(value)
    return value


def _check_chart(chart: SpcChart) -> pd.DataFrame:
    required = ("x", "y", "cl", "ucl", "lcl", "part", "include", "sigma_signal", "runs_signal")
    missing = [c for c in required if c not in chart.points.columns]
    if missing:
        raise InputError(f"The chart's points lack the column(s) {missing}; is it an SpcChart?")
    pts = chart.points.reset_index(drop=True).copy()
    pts["status"] = _status(pts)
    return pts


def _title(chart: SpcChart) -> str:
    if chart.title:
        return chart.title
    name = {"run": "Run chart", "pp": "P′ chart", "up": "U′ chart", "xbar": "Xbar chart"}
    return name.get(chart.chart_type, f"{chart.chart_type.upper()} chart")


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return ""
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def _limit_labels(pts: pd.DataFrame) -> list[dict[str, Any]]:
    """Values of the last part's centre line and limits, to print at the right edge."""
    last = pts.iloc[-1]
    labels = []
    keys = [("ucl", "UCL"), ("cl", "CL"), ("lcl", "LCL")]
    if "target" in pts.columns:
        keys.append(("target", "target"))
    for key, name in keys:
        value = float(last[key]) if pd.notna(last[key]) else float("nan")
        if np.isfinite(value):
            labels.append({"x": last["x"], "y": value, "label": f"{name} {_fmt(value)}"})
    return labels


def _part_labels(pts: pd.DataFrame) -> list[dict[str, Any]]:
    if pts["part"].nunique() < 2:
        return []
    return [
        {"x": grp["x"].iloc[0], "label": f"Part {int(grp['part'].iloc[0])}"}
        for _, grp in pts.groupby("part", sort=True)
    ]


def _annotations(annotations: AnnotationsArg) -> list[Annotation]:
    if annotations is None:
        return []
    out = list(annotations)
    for a in out:
        if not isinstance(a, Annotation):
            raise InputError(
                f"Annotations must be careloop.analysis.spc.Annotation objects; got {a!r}."
            )
    return out


# --- Plotly ---------------------------------------------------------------------


def _plotly_traces(
    chart: SpcChart, pts: pd.DataFrame, *, legend: bool, group: str = ""
) -> list[Any]:
    import plotly.graph_objects as go

    traces: list[Any] = []
    shown: set[str] = set()

    def show(name: str) -> bool:
        if not legend or name in shown:
            return False
        shown.add(name)
        return True

    for part, grp in pts.groupby("part", sort=True):
        signal = bool(grp["runs_signal"].any())
        for key, name in (("ucl", "limits"), ("lcl", "limits")):
            if grp[key].notna().any():
                traces.append(
                    go.Scatter(
                        x=grp["x"],
                        y=grp[key],
                        mode="lines",
                        name=name,
                        line={"color": LIMIT, "width": 1.2, "dash": "dot"},
                        legendgroup=group + name,
                        showlegend=show(name),
                        hovertemplate=f"{key.upper()} %{{y:.4g}}<extra>part {part}</extra>",
                    )
                )
        cl_name = "centre line (runs signal)" if signal else "centre line"
        traces.append(
            go.Scatter(
                x=grp["x"],
                y=grp["cl"],
                mode="lines",
                name=cl_name,
                line={
                    "color": RUNS_SIGNAL if signal else CENTRE,
                    "width": 1.8,
                    "dash": "dash" if signal else "solid",
                },
                legendgroup=group + cl_name,
                showlegend=show(cl_name),
                hovertemplate=f"CL %{{y:.4g}}<extra>part {part}</extra>",
            )
        )
        traces.append(
            go.Scatter(
                x=grp["x"],
                y=grp["y"],
                mode="lines",
                name="data",
                line={"color": DATA_LINE, "width": 1},
                showlegend=False,
                hoverinfo="skip",
                connectgaps=False,
            )
        )
    if "target" in pts.columns and pts["target"].notna().any():
        traces.append(
            go.Scatter(
                x=pts["x"],
                y=pts["target"],
                mode="lines",
                name="target",
                line={"color": TARGET, "width": 1.5, "dash": "longdash"},
                legendgroup=group + "target",
                showlegend=show("target"),
            )
        )
    for status, colour in STATUS_COLOURS.items():
        sel = pts[pts["status"] == status]
        if sel.empty:
            continue
        hollow = status.startswith("excluded")
        traces.append(
            go.Scatter(
                x=sel["x"],
                y=sel["y"],
                mode="markers",
                name=status,
                marker={
                    "color": "white" if hollow else colour,
                    "size": 7,
                    "line": {"color": colour, "width": 1.5},
                },
                legendgroup=group + status,
                showlegend=show(status),
                hovertemplate="%{x}: %{y:.4g}<extra>" + status + "</extra>",
            )
        )
    return traces


def chart_figure(
    chart: SpcChart,
    *,
    annotations: AnnotationsArg = None,
    width: int | None = None,
    height: int | None = None,
) -> Any:
    """An interactive Plotly figure of an SPC chart.

    Args:
        chart: The chart, as :func:`careloop.analysis.spc.qic` returns it.
        annotations: PDSA cycles, deployments and notes to mark.
        width: Figure width in pixels (default: responsive).
        height: Figure height in pixels (default: 420).

    Returns:
        A ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    pts = _check_chart(chart)
    kind = _x_kind(pts["x"])
    fig = go.Figure(_plotly_traces(chart, pts, legend=True))
    for lab in _limit_labels(pts):
        fig.add_annotation(
            x=lab["x"],
            y=lab["y"],
            text=lab["label"],
            showarrow=False,
            xanchor="left",
            xshift=6,
            font={"size": 10, "color": LIMIT},
        )
    for lab in _part_labels(pts):
        fig.add_annotation(
            x=lab["x"],
            y=1.0,
            yref="paper",
            text=lab["label"],
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"size": 11, "color": CENTRE},
        )
    _plotly_annotations(fig, _annotations(annotations), kind)
    fig.update_layout(
        title=_title(chart),
        xaxis_title=chart.xlab or "",
        yaxis_title=chart.ylab or "",
        template="plotly_white",
        height=height or 420,
        width=width,
        legend={"orientation": "h", "y": -0.18},
        margin={"r": 80},
    )
    if kind == "ordinal":
        fig.update_xaxes(type="category")
    return fig


def _plotly_annotations(
    fig: Any,
    annotations: list[Annotation],
    kind: str,
    *,
    row: int | None = None,
    col: int | None = None,
) -> None:
    for i, a in enumerate(annotations):
        colour, _, dash = ANNOTATION_STYLES[a.kind]
        x = _x_value(a.x, kind)
        kwargs: dict[str, Any] = {} if row is None else {"row": row, "col": col}
        fig.add_vline(x=x, line={"color": colour, "width": 1.2, "dash": dash}, **kwargs)
        fig.add_annotation(
            x=x,
            y=0.97 - 0.07 * (i % 3),
            yref="paper" if row is None else "y domain",
            text=a.label,
            showarrow=False,
            xanchor="left",
            xshift=3,
            font={"size": 10, "color": colour},
            bgcolor="rgba(255,255,255,0.7)",
            **({} if row is None else {"row": row, "col": col}),
        )


def facets_figure(
    charts: Mapping[str, SpcChart],
    *,
    columns: int = 3,
    annotations: FacetAnnotations = None,
    shared_y: bool = False,
    title: str | None = None,
) -> Any:
    """Small multiples: one Plotly subplot per chart (site, measure…).

    Args:
        charts: Charts by label, e.g. :func:`careloop.analysis.spc.qic_by`'s result.
        columns: Subplots per row.
        annotations: One list for every chart, or a list per label.
        shared_y: Give every subplot the same y axis.
        title: Overall title.

    Returns:
        A ``plotly.graph_objects.Figure``.
    """
    from plotly.subplots import make_subplots

    labels = _facet_labels(charts, columns)
    rows = -(-len(labels) // columns)
    fig = make_subplots(
        rows=rows,
        cols=min(columns, len(labels)),
        subplot_titles=labels,
        shared_yaxes=shared_y,
        vertical_spacing=min(0.12, 0.5 / rows),
        horizontal_spacing=0.06,
    )
    for i, label in enumerate(labels):
        r, c = i // columns + 1, i % columns + 1
        pts = _check_chart(charts[label])
        for trace in _plotly_traces(charts[label], pts, legend=(i == 0)):
            fig.add_trace(trace, row=r, col=c)
        _plotly_annotations(
            fig,
            _annotations(_facet_annotations(annotations, label)),
            _x_kind(pts["x"]),
            row=r,
            col=c,
        )
    fig.update_layout(
        title=title or "",
        template="plotly_white",
        height=260 * rows + 120,
        legend={"orientation": "h", "y": -0.06},
    )
    return fig


def _facet_labels(charts: Mapping[str, SpcChart], columns: int) -> list[str]:
    if not charts:
        raise InputError("No charts to draw: give at least one.")
    if columns < 1:
        raise InputError(f"columns must be at least 1; got {columns}.")
    return list(charts)


def _facet_annotations(annotations: FacetAnnotations, label: str) -> AnnotationsArg:
    if annotations is None:
        return None
    if isinstance(annotations, Mapping):
        return annotations.get(label)
    return annotations


# --- Vega-Lite ------------------------------------------------------------------


def chart_vegalite(
    chart: SpcChart,
    *,
    annotations: AnnotationsArg = None,
    width: int = 640,
    height: int = 300,
    title: str | None = None,
) -> dict[str, Any]:
    """The chart as a Vega-Lite specification (what :func:`chart_to_svg` renders).

    Layers are named, so a rendered SVG can be checked mark by mark:
    ``limits_upper``, ``limits_lower``, ``centre``, ``centre_runs_signal``, ``target``, ``data``,
    ``points``, ``limit_labels``, ``part_labels``, ``annotations`` and
    ``annotation_labels``.
    """
    spec = _layers(
        chart,
        _annotations(annotations),
        width=width,
        height=height,
        title=title if title is not None else _title(chart),
    )
    return {"$schema": _vegalite.SCHEMA, "config": _vegalite.BASE_CONFIG, **spec}


def _layers(
    chart: SpcChart,
    annotations: list[Annotation],
    *,
    width: int,
    height: int,
    title: str,
    legend: bool = True,
    prefix: str = "",
) -> dict[str, Any]:
    pts = _check_chart(chart)
    kind = _x_kind(pts["x"])
    x_enc: dict[str, Any] = {"field": "x", "type": kind, "title": chart.xlab or None}
    if kind != "ordinal":
        x_enc["scale"] = {"nice": False, "zero": False, "padding": 8}
    if kind == "ordinal":
        x_enc["sort"] = None
        x_enc["axis"] = {"labelAngle": -45}
    rows = []
    for _, r in pts.iterrows():
        rows.append(
            {
                "x": r["x"],
                "y": r["y"],
                "cl": r["cl"],
                "ucl": r["ucl"],
                "lcl": r["lcl"],
                "part": int(r["part"]),
                "runs_signal": bool(r["runs_signal"]),
                "status": r["status"],
                "target": r["target"] if "target" in pts else None,
            }
        )
    values = _vegalite.records(rows)
    finite = pd.concat(
        [pts[c] for c in ("y", "cl", "ucl", "lcl")] + ([pts["target"]] if "target" in pts else [])
    ).astype(float)
    finite = finite[np.isfinite(finite)]
    if finite.empty:
        raise InputError("The chart has no finite values to draw.")
    lo, hi = float(finite.min()), float(finite.max())
    pad = (hi - lo) * 0.06 or abs(hi) * 0.1 or 1.0
    y_enc = {
        "field": "y",
        "type": "quantitative",
        "title": chart.ylab or None,
        "scale": {"domain": [lo - pad, hi + pad], "zero": False, "nice": False},
    }

    def line(
        name: str, field: str, colour: str, dash: list[int], width_: float, where: str | None = None
    ) -> dict[str, Any]:
        layer: dict[str, Any] = {
            "name": name,
            "mark": {"type": "line", "color": colour, "strokeDash": dash, "strokeWidth": width_},
            "encoding": {
                "x": x_enc,
                "y": {"field": field, "type": "quantitative"},
                "detail": {"field": "part", "type": "nominal"},
            },
        }
        filters = [f"isValid(datum.{field})"] + ([where] if where else [])
        layer["transform"] = [{"filter": " && ".join(filters)}]
        return layer

    status_domain = [s for s in STATUS_COLOURS if (pts["status"] == s).any()]
    layers: list[dict[str, Any]] = [
        line("limits_upper", "ucl", LIMIT, [2, 2], 1.2),
        line("limits_lower", "lcl", LIMIT, [2, 2], 1.2),
        line("centre", "cl", CENTRE, [1, 0], 1.8, "!datum.runs_signal"),
        line("centre_runs_signal", "cl", RUNS_SIGNAL, [6, 4], 1.8, "datum.runs_signal"),
        line("data", "y", DATA_LINE, [1, 0], 1.0),
    ]
    if "target" in pts.columns and pts["target"].notna().any():
        target = line("target", "target", TARGET, [8, 4], 1.5)
        target["encoding"].pop("detail")
        layers.append(target)
    layers.append(
        {
            "name": "points",
            "mark": {
                "type": "point",
                "filled": False,
                "size": 36,
                "strokeWidth": 1.5,
                "opacity": 1,
            },
            "transform": [{"filter": "isValid(datum.y)"}],
            "encoding": {
                "x": x_enc,
                "y": y_enc,
                "color": {
                    "field": "status",
                    "type": "nominal",
                    "scale": {
                        "domain": status_domain,
                        "range": [STATUS_COLOURS[s] for s in status_domain],
                    },
                    "legend": {"title": None, "orient": "bottom"} if legend else None,
                },
                "fill": {
                    "condition": {
                        "test": "indexof(datum.status, 'excluded') === 0",
                        "value": "white",
                    },
                    "field": "status",
                    "type": "nominal",
                    "scale": {
                        "domain": status_domain,
                        "range": [STATUS_COLOURS[s] for s in status_domain],
                    },
                    "legend": None,
                },
            },
        }
    )
    limit_labels = _limit_labels(pts)
    if limit_labels:
        layers.append(
            {
                "name": "limit_labels",
                "data": {"values": _vegalite.records(limit_labels)},
                "mark": {"type": "text", "align": "left", "dx": 6, "fontSize": 10, "color": LIMIT},
                "encoding": {
                    "x": x_enc,
                    "y": {"field": "y", "type": "quantitative"},
                    "text": {"field": "label"},
                },
            }
        )
    part_labels = _part_labels(pts)
    if part_labels:
        layers.append(
            {
                "name": "part_labels",
                "data": {"values": _vegalite.records(part_labels)},
                "mark": {
                    "type": "text",
                    "align": "left",
                    "baseline": "top",
                    "dx": 2,
                    "dy": 2,
                    "fontSize": 11,
                    "color": CENTRE,
                    "fontWeight": "bold",
                },
                "encoding": {"x": x_enc, "y": {"value": 0}, "text": {"field": "label"}},
            }
        )
    if annotations:
        marks = []
        for i, a in enumerate(annotations):
            colour, dash, _ = ANNOTATION_STYLES[a.kind]
            marks.append(
                {
                    "x": _x_value(a.x, kind),
                    "label": a.label,
                    "kind": a.kind,
                    "colour": colour,
                    "dash": dash,
                    "row": i % 3,
                }
            )
        kinds = [k for k in ANNOTATION_STYLES if any(m["kind"] == k for m in marks)]
        layers.append(
            {
                "name": "annotations",
                "data": {
                    "values": _vegalite.records(
                        [{k: v for k, v in m.items() if k != "dash"} for m in marks]
                    )
                },
                "mark": {"type": "rule", "strokeWidth": 1.3},
                "encoding": {
                    "x": x_enc,
                    "color": {"field": "colour", "type": "nominal", "scale": None},
                    "strokeDash": {
                        "field": "kind",
                        "type": "nominal",
                        "legend": None,
                        "scale": {
                            "domain": kinds,
                            "range": [ANNOTATION_STYLES[k][1] for k in kinds],
                        },
                    },
                },
            }
        )
        layers.append(
            {
                "name": "annotation_labels",
                "data": {
                    "values": _vegalite.records(
                        [{k: v for k, v in m.items() if k != "dash"} for m in marks]
                    )
                },
                "transform": [
                    {"calculate": f"{30 if part_labels else 12} + 13 * datum.row", "as": "ypix"}
                ],
                "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 10},
                "encoding": {
                    "x": x_enc,
                    "y": {"field": "ypix", "type": "quantitative", "scale": None},
                    "text": {"field": "label"},
                    "color": {"field": "colour", "type": "nominal", "scale": None},
                },
            }
        )
    if prefix:
        # layer names must be unique in a whole specification (small multiples)
        for layer in layers:
            layer["name"] = prefix + layer["name"]
    return {
        "title": {"text": title, "subtitle": _subtitle(chart, pts)},
        "width": width,
        "height": height,
        "data": {"values": values},
        "layer": layers,
        "resolve": {"scale": {"color": "independent", "y": "shared"}},
    }


def _subtitle(chart: SpcChart, pts: pd.DataFrame) -> str:
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


def chart_to_svg(
    chart: SpcChart,
    *,
    path: str | Path | None = None,
    annotations: AnnotationsArg = None,
    width: int = 640,
    height: int = 300,
) -> str:
    """Render an SPC chart as SVG without a browser; also write it to ``path`` if given."""
    svg = _vegalite.to_svg(
        chart_vegalite(chart, annotations=annotations, width=width, height=height)
    )
    return _vegalite.write_text(path, svg)


def chart_to_png(
    chart: SpcChart,
    *,
    path: str | Path | None = None,
    annotations: AnnotationsArg = None,
    width: int = 640,
    height: int = 300,
    scale: float = 2.0,
) -> bytes:
    """Render an SPC chart as PNG without a browser; also write it to ``path`` if given.

    The image is about ``scale`` × (``width`` + margins) pixels wide.
    """
    spec = chart_vegalite(chart, annotations=annotations, width=width, height=height)
    return _vegalite.write_bytes(path, _vegalite.to_png(spec, scale=scale))


def facets_vegalite(
    charts: Mapping[str, SpcChart],
    *,
    columns: int = 3,
    annotations: FacetAnnotations = None,
    width: int = 260,
    height: int = 150,
    title: str | None = None,
) -> dict[str, Any]:
    """Small multiples as one Vega-Lite specification (a wrapped concatenation)."""
    labels = _facet_labels(charts, columns)
    panels = []
    for i, label in enumerate(labels):
        panel = _layers(
            charts[label],
            _annotations(_facet_annotations(annotations, label)),
            width=width,
            height=height,
            title=label,
            legend=(i == 0),
            prefix=f"facet{i + 1}_",
        )
        panel["title"] = {"text": label, "fontSize": 12}
        panels.append(panel)
    spec: dict[str, Any] = {
        "$schema": _vegalite.SCHEMA,
        "config": _vegalite.BASE_CONFIG,
        "columns": columns,
        "concat": panels,
    }
    if title:
        spec["title"] = title
    return spec


def facets_to_svg(
    charts: Mapping[str, SpcChart],
    *,
    path: str | Path | None = None,
    columns: int = 3,
    annotations: FacetAnnotations = None,
    title: str | None = None,
) -> str:
    """Render small multiples as SVG without a browser; also write to ``path`` if given."""
    spec = facets_vegalite(charts, columns=columns, annotations=annotations, title=title)
    return _vegalite.write_text(path, _vegalite.to_svg(spec))


def facets_to_png(
    charts: Mapping[str, SpcChart],
    *,
    path: str | Path | None = None,
    columns: int = 3,
    annotations: FacetAnnotations = None,
    title: str | None = None,
    scale: float = 2.0,
) -> bytes:
    """Render small multiples as PNG without a browser; also write to ``path`` if given."""
    spec = facets_vegalite(charts, columns=columns, annotations=annotations, title=title)
    return _vegalite.write_bytes(path, _vegalite.to_png(spec, scale=scale))
