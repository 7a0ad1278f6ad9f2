"""SPC charts drawn: a Plotly figure, or SVG and PNG without a browser.

One calling convention for every chart family in :mod:`careloop.charts`:

- :func:`figure` — an interactive Plotly figure (web pages, notebooks);
- :func:`vegalite` — the same picture as a Vega-Lite specification;
- :func:`svg` and :func:`png` — that specification rendered by vl-convert,
  which needs no browser (Plotly's static export needs Chrome), returned and
  written to ``path`` when one is given.

:func:`facets_figure`, :func:`facets_vegalite`, :func:`facets_svg` and
:func:`facets_png` draw small multiples, one chart per site or measure (what
:func:`careloop.analysis.spc.qic_by` returns). The look is described in
:mod:`careloop.charts._spc_look`; annotations are
:class:`careloop.analysis.spc.Annotation` objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careloop.analysis._frames import records
from careloop.analysis.spc import Annotation, SpcChart
from careloop.charts import _vegalite
from careloop.charts._spc_look import (
    ANNOTATION_STYLES,
    CENTRE,
    DATA_LINE,
    LIMIT,
    RUNS_SIGNAL,
    SIGMA_SIGNAL,
    STATUS_COLOURS,
    TARGET,
    AnnotationsArg,
    FacetAnnotations,
    annotation_list,
    chart_title,
    checked_points,
    facet_annotations,
    facet_labels,
    is_percent,
    label_shifts,
    limit_labels,
    part_labels,
    subtitle,
    x_kind,
    x_value,
)
from careloop.core.errors import InputError

__all__ = [
    "ANNOTATION_STYLES",
    "SIGMA_SIGNAL",
    "STATUS_COLOURS",
    "facets_figure",
    "facets_png",
    "facets_svg",
    "facets_vegalite",
    "figure",
    "png",
    "svg",
    "vegalite",
]


# --- Plotly ---------------------------------------------------------------------


class _Legend:
    """Shows each legend entry once, and none at all in the panels after the first."""

    def __init__(self, shown: bool) -> None:
        self.shown = shown
        self.seen: set[str] = set()

    def __call__(self, name: str) -> bool:
        if not self.shown or name in self.seen:
            return False
        self.seen.add(name)
        return True


def _plotly_traces(
    pts: pd.DataFrame, *, legend: bool, group: str = "", percent: bool = False
) -> list[Any]:
    show = _Legend(legend)
    traces: list[Any] = []
    for part, grp in pts.groupby("part", sort=True):
        traces.extend(_plotly_part(part, grp, show, group, percent))
    if "target" in pts.columns and pts["target"].notna().any():
        import plotly.graph_objects as go

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
    traces.extend(_plotly_points(pts, show, group, percent))
    return traces


def _plotly_part(
    part: Any, grp: pd.DataFrame, show: _Legend, group: str, percent: bool
) -> list[Any]:
    """One part's limits, centre line (dashed red with a runs signal) and data line."""
    import plotly.graph_objects as go

    y_format = _hover_y(percent)

    traces: list[Any] = []
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
                    hovertemplate=f"{key.upper()} {y_format}<extra>part {part}</extra>",
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
            hovertemplate=f"CL {y_format}<extra>part {part}</extra>",
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
    return traces


def _hover_y(percent: bool) -> str:
    return "%{y:.1f}%" if percent else "%{y:.4g}"


def _plotly_points(pts: pd.DataFrame, show: _Legend, group: str, percent: bool) -> list[Any]:
    """The points, one trace per drawing class (excluded points hollow)."""
    import plotly.graph_objects as go

    traces: list[Any] = []
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
                hovertemplate="%{x|%b %Y}: " + _hover_y(percent) + "<extra>" + status + "</extra>"
                if x_kind(sel["x"]) == "temporal"
                else "%{x}: " + _hover_y(percent) + "<extra>" + status + "</extra>",
            )
        )
    return traces


def figure(
    chart: SpcChart,
    *,
    annotations: AnnotationsArg = None,
    width: int | None = None,
    height: int | None = None,
    numbered: bool = False,
) -> Any:
    """An interactive Plotly figure of an SPC chart.

    Args:
        chart: The chart, as :func:`careloop.analysis.spc.qic` returns it.
        annotations: PDSA cycles, deployments and notes to mark.
        width: Figure width in pixels (default: responsive).
        height: Figure height in pixels (default: 420).
        numbered: Label each annotation's line with its number (1, 2…) and show its
            text on hover, for a page that lists them beside the chart: long labels
            of changes a few months apart would print over each other.

    Returns:
        A ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    pts = checked_points(chart)
    kind = x_kind(pts["x"])
    percent = is_percent(chart)
    fig = go.Figure(_plotly_traces(pts, legend=True, percent=percent))
    _plotly_limit_labels(fig, pts, percent, height or 420)
    for lab in part_labels(pts):
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
    _plotly_annotations(fig, annotation_list(annotations), kind, numbered=numbered)
    if percent:
        fig.update_yaxes(ticksuffix="%")
    fig.update_layout(
        title=chart_title(chart),
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
    elif kind == "temporal":
        # The axis spans the data, not the labels: Plotly would otherwise stretch it
        # to fit every annotation's text, leaving years of empty chart.
        first, last = pd.Timestamp(pts["x"].min()), pd.Timestamp(pts["x"].max())
        pad = max((last - first) * 0.02, pd.Timedelta(days=1))
        fig.update_xaxes(range=[first - pad, last + pad])
    return fig


def _plotly_limit_labels(fig: Any, pts: pd.DataFrame, percent: bool, height: int) -> None:
    """The last part's CL, limits and target at the right, nudged apart where close."""
    labels = limit_labels(pts, percent=percent)
    shown = pd.concat([pts["y"], pts["ucl"], pts["lcl"]]).astype(float)
    shown = shown[np.isfinite(shown)]
    span = float(shown.max() - shown.min()) if len(shown) else 1.0
    # About 55% of the figure's height is the plot area (title, legend and axes take the rest).
    shifts = label_shifts([lab["y"] for lab in labels], span, plot_px=height * 0.55)
    for lab, shift in zip(labels, shifts, strict=True):
        fig.add_annotation(
            x=lab["x"],
            y=lab["y"],
            yshift=shift,
            text=lab["label"],
            showarrow=False,
            xanchor="left",
            xshift=6,
            font={"size": 10, "color": LIMIT},
        )


def _plotly_annotations(
    fig: Any,
    annotations: list[Annotation],
    kind: str,
    *,
    row: int | None = None,
    col: int | None = None,
    numbered: bool = False,
) -> None:
    for i, a in enumerate(annotations):
        colour, _, dash = ANNOTATION_STYLES[a.kind]
        x = x_value(a.x, kind)
        kwargs: dict[str, Any] = {} if row is None else {"row": row, "col": col}
        fig.add_vline(x=x, line={"color": colour, "width": 1.2, "dash": dash}, **kwargs)
        fig.add_annotation(
            x=x,
            y=(0.97 - 0.07 * (i % 2)) if numbered else (0.97 - 0.07 * (i % 3)),
            yref="paper" if row is None else "y domain",
            text=str(i + 1) if numbered else a.label,
            hovertext=a.label if numbered else None,
            showarrow=False,
            xanchor="left",
            xshift=3,
            font={"size": 10, "color": colour},
            bgcolor="rgba(255,255,255,0.7)",
            **kwargs,
        )


def facets_figure(
    charts: Mapping[str, SpcChart],
    *,
    columns: int = 3,
    annotations: FacetAnnotations = None,
    shared_y: bool = False,
    title: str | None = None,
    numbered: bool = False,
) -> Any:
    """Small multiples: one Plotly subplot per chart (site, measure…).

    Args:
        charts: Charts by label, e.g. :func:`careloop.analysis.spc.qic_by`'s result.
        columns: Subplots per row.
        annotations: One list for every chart, or a list per label.
        shared_y: Give every subplot the same y axis.
        title: Overall title.
        numbered: Label annotations with numbers, their text on hover (see :func:`figure`).

    Returns:
        A ``plotly.graph_objects.Figure``.
    """
    from plotly.subplots import make_subplots

    labels = facet_labels(charts, columns)
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
        pts = checked_points(charts[label])
        percent = is_percent(charts[label])
        for trace in _plotly_traces(pts, legend=(i == 0), percent=percent):
            fig.add_trace(trace, row=r, col=c)
        if percent:
            fig.update_yaxes(ticksuffix="%", row=r, col=c)
        _plotly_annotations(
            fig,
            annotation_list(facet_annotations(annotations, label)),
            x_kind(pts["x"]),
            row=r,
            col=c,
            numbered=numbered,
        )
    fig.update_layout(
        title=title or "",
        template="plotly_white",
        height=260 * rows + 120,
        legend={"orientation": "h", "y": -0.06},
    )
    return fig


# --- Vega-Lite ------------------------------------------------------------------


def vegalite(
    chart: SpcChart,
    *,
    annotations: AnnotationsArg = None,
    width: int = 640,
    height: int = 300,
    title: str | None = None,
    source: str | None = None,
    numbered: bool = False,
) -> dict[str, Any]:
    """The chart as a Vega-Lite specification (what :func:`svg` renders).

    Layers are named, so a rendered SVG can be checked mark by mark:
    ``limits_upper``, ``limits_lower``, ``centre``, ``centre_runs_signal``, ``target``, ``data``,
    ``points``, ``limit_labels``, ``part_labels``, ``annotations`` and
    ``annotation_labels``. ``source`` (where the data come from and when they were
    extracted) is printed under the title, so an image keeps it wherever it goes.
    ``numbered`` labels each annotation's line with its number and lists the
    annotations under the title instead: long labels a few months apart would
    print over each other.
    """
    notes = annotation_list(annotations)
    spec = _layers(
        chart,
        notes,
        width=width,
        height=height,
        title=title if title is not None else chart_title(chart),
        numbered=numbered,
    )
    lines = [spec["title"]["subtitle"]]
    if numbered:
        lines += [f"{i + 1}: {_when(a.x)}{a.label}" for i, a in enumerate(notes)]
    if source:
        lines.append(source)
    if len(lines) > 1:
        spec["title"]["subtitle"] = lines
    return {"$schema": _vegalite.SCHEMA, "config": _vegalite.BASE_CONFIG, **spec}


def _when(x: Any) -> str:
    """An annotation's x as a month (dates) or nothing, to prefix its label in a list."""
    try:
        return pd.Timestamp(x).strftime("%b %Y") + " "
    except (TypeError, ValueError):
        return ""


def _layers(
    chart: SpcChart,
    annotations: list[Annotation],
    *,
    width: int,
    height: int,
    title: str,
    legend: bool = True,
    prefix: str = "",
    numbered: bool = False,
) -> dict[str, Any]:
    pts = checked_points(chart)
    x_enc = _x_encoding(pts["x"], chart.xlab)
    layers = [
        _line("limits_upper", "ucl", LIMIT, [2, 2], 1.2, x_enc),
        _line("limits_lower", "lcl", LIMIT, [2, 2], 1.2, x_enc),
        _line("centre", "cl", CENTRE, [1, 0], 1.8, x_enc, "!datum.runs_signal"),
        _line("centre_runs_signal", "cl", RUNS_SIGNAL, [6, 4], 1.8, x_enc, "datum.runs_signal"),
        _line("data", "y", DATA_LINE, [1, 0], 1.0, x_enc),
    ]
    if "target" in pts.columns and pts["target"].notna().any():
        target = _line("target", "target", TARGET, [8, 4], 1.5, x_enc)
        target["encoding"].pop("detail")
        layers.append(target)
    layers.append(_points_layer(pts, x_enc, _y_encoding(pts, chart.ylab), legend=legend))
    layers.extend(_label_layers(pts, x_enc, percent=is_percent(chart), height=height))
    layers.extend(
        _annotation_layers(
            annotations,
            x_enc,
            x_kind(pts["x"]),
            below=bool(part_labels(pts)),
            numbered=numbered,
        )
    )
    if prefix:
        # layer names must be unique in a whole specification (small multiples)
        for layer in layers:
            layer["name"] = prefix + layer["name"]
    return {
        "title": {"text": title, "subtitle": subtitle(chart, pts)},
        "width": width,
        "height": height,
        "data": {"values": _point_records(pts)},
        "layer": layers,
        "resolve": {"scale": {"color": "independent", "y": "shared"}},
    }


def _point_records(pts: pd.DataFrame) -> list[dict[str, Any]]:
    columns = ["x", "y", "cl", "ucl", "lcl", "part", "runs_signal", "status"]
    rows = []
    for _, r in pts.iterrows():
        row = {c: r[c] for c in columns}
        row["part"] = int(r["part"])
        row["runs_signal"] = bool(r["runs_signal"])
        row["target"] = r["target"] if "target" in pts else None
        rows.append(row)
    return records(rows)


def _x_encoding(x: pd.Series, xlab: str | None) -> dict[str, Any]:
    kind = x_kind(x)
    x_enc: dict[str, Any] = {"field": "x", "type": kind, "title": xlab or None}
    if kind == "ordinal":
        x_enc["sort"] = None
        x_enc["axis"] = {"labelAngle": -45}
    else:
        x_enc["scale"] = {"nice": False, "zero": False, "padding": 8}
    return x_enc


def _y_encoding(pts: pd.DataFrame, ylab: str | None) -> dict[str, Any]:
    """The y axis, padded around every finite value, line and limit drawn."""
    finite = pd.concat(
        [pts[c] for c in ("y", "cl", "ucl", "lcl")] + ([pts["target"]] if "target" in pts else [])
    ).astype(float)
    finite = finite[np.isfinite(finite)]
    if finite.empty:
        raise InputError("The chart has no finite values to draw.")
    lo, hi = float(finite.min()), float(finite.max())
    pad = (hi - lo) * 0.06 or abs(hi) * 0.1 or 1.0
    return {
        "field": "y",
        "type": "quantitative",
        "title": ylab or None,
        "scale": {"domain": [lo - pad, hi + pad], "zero": False, "nice": False},
    }


def _line(
    name: str,
    field: str,
    colour: str,
    dash: list[int],
    width: float,
    x_enc: dict[str, Any],
    where: str | None = None,
) -> dict[str, Any]:
    """A line per part (``detail``), drawn only where ``field`` has a value."""
    filters = [f"isValid(datum.{field})"] + ([where] if where else [])
    return {
        "name": name,
        "mark": {"type": "line", "color": colour, "strokeDash": dash, "strokeWidth": width},
        "encoding": {
            "x": x_enc,
            "y": {"field": field, "type": "quantitative"},
            "detail": {"field": "part", "type": "nominal"},
        },
        "transform": [{"filter": " && ".join(filters)}],
    }


def _points_layer(
    pts: pd.DataFrame, x_enc: dict[str, Any], y_enc: dict[str, Any], *, legend: bool
) -> dict[str, Any]:
    domain = [s for s in STATUS_COLOURS if (pts["status"] == s).any()]
    scale = {"domain": domain, "range": [STATUS_COLOURS[s] for s in domain]}
    return {
        "name": "points",
        "mark": {"type": "point", "filled": False, "size": 36, "strokeWidth": 1.5, "opacity": 1},
        "transform": [{"filter": "isValid(datum.y)"}],
        "encoding": {
            "x": x_enc,
            "y": y_enc,
            "color": {
                "field": "status",
                "type": "nominal",
                "scale": scale,
                "legend": {"title": None, "orient": "bottom"} if legend else None,
            },
            "fill": {
                "condition": {
                    "test": "indexof(datum.status, 'excluded') === 0",
                    "value": "white",
                },
                "field": "status",
                "type": "nominal",
                "scale": scale,
                "legend": None,
            },
        },
    }


def _label_layers(
    pts: pd.DataFrame, x_enc: dict[str, Any], *, percent: bool = False, height: int = 300
) -> list[dict[str, Any]]:
    """The last part's limit values at the right (nudged apart where close), and "Part k"
    at each part's start."""
    layers: list[dict[str, Any]] = []
    limits = limit_labels(pts, percent=percent)
    domain = _y_encoding(pts, None)["scale"]["domain"]
    span = float(domain[1] - domain[0])
    shifts = label_shifts([lab["y"] for lab in limits], span, plot_px=float(height))
    for lab, shift in zip(limits, shifts, strict=True):
        lab["y"] = lab["y"] + shift * span / height  # pixels to the axis' units
    if limits:
        layers.append(
            {
                "name": "limit_labels",
                "data": {"values": records(limits)},
                "mark": {"type": "text", "align": "left", "dx": 6, "fontSize": 10, "color": LIMIT},
                "encoding": {
                    "x": x_enc,
                    "y": {"field": "y", "type": "quantitative"},
                    "text": {"field": "label"},
                },
            }
        )
    parts = part_labels(pts)
    if parts:
        layers.append(
            {
                "name": "part_labels",
                "data": {"values": records(parts)},
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
    return layers


def _annotation_layers(
    annotations: list[Annotation],
    x_enc: dict[str, Any],
    kind: str,
    *,
    below: bool,
    numbered: bool = False,
) -> list[dict[str, Any]]:
    """Vertical lines and their labels (in three rows; below the part labels if any), or
    their numbers when ``numbered``."""
    if not annotations:
        return []
    marks = [
        {
            "x": x_value(a.x, kind),
            "label": str(i + 1) if numbered else a.label,
            "kind": a.kind,
            "colour": ANNOTATION_STYLES[a.kind][0],
            "row": i % 3,
        }
        for i, a in enumerate(annotations)
    ]
    kinds = [k for k in ANNOTATION_STYLES if any(m["kind"] == k for m in marks)]
    colour = {"field": "colour", "type": "nominal", "scale": None}
    lines = {
        "name": "annotations",
        "data": {"values": records(marks)},
        "mark": {"type": "rule", "strokeWidth": 1.3},
        "encoding": {
            "x": x_enc,
            "color": colour,
            "strokeDash": {
                "field": "kind",
                "type": "nominal",
                "legend": None,
                "scale": {"domain": kinds, "range": [ANNOTATION_STYLES[k][1] for k in kinds]},
            },
        },
    }
    labels = {
        "name": "annotation_labels",
        "data": {"values": records(marks)},
        "transform": [{"calculate": f"{30 if below else 12} + 13 * datum.row", "as": "ypix"}],
        "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 10},
        "encoding": {
            "x": x_enc,
            "y": {"field": "ypix", "type": "quantitative", "scale": None},
            "text": {"field": "label"},
            "color": colour,
        },
    }
    return [lines, labels]


def svg(
    chart: SpcChart,
    path: str | Path | None = None,
    *,
    annotations: AnnotationsArg = None,
    width: int = 640,
    height: int = 300,
    source: str | None = None,
    numbered: bool = False,
) -> str:
    """Render an SPC chart as SVG without a browser; also write it to ``path`` if given."""
    spec = vegalite(
        chart,
        annotations=annotations,
        width=width,
        height=height,
        source=source,
        numbered=numbered,
    )
    return _vegalite.write_text(path, _vegalite.to_svg(spec))


def png(
    chart: SpcChart,
    path: str | Path | None = None,
    *,
    annotations: AnnotationsArg = None,
    width: int = 640,
    height: int = 300,
    scale: float = 2.0,
    source: str | None = None,
    numbered: bool = False,
) -> bytes:
    """Render an SPC chart as PNG without a browser; also write it to ``path`` if given.

    The image is about ``scale`` × (``width`` + margins) pixels wide.
    """
    spec = vegalite(
        chart,
        annotations=annotations,
        width=width,
        height=height,
        source=source,
        numbered=numbered,
    )
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
    labels = facet_labels(charts, columns)
    panels = []
    for i, label in enumerate(labels):
        panel = _layers(
            charts[label],
            annotation_list(facet_annotations(annotations, label)),
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


def facets_svg(
    charts: Mapping[str, SpcChart],
    path: str | Path | None = None,
    *,
    columns: int = 3,
    annotations: FacetAnnotations = None,
    title: str | None = None,
) -> str:
    """Render small multiples as SVG without a browser; also write to ``path`` if given."""
    spec = facets_vegalite(charts, columns=columns, annotations=annotations, title=title)
    return _vegalite.write_text(path, _vegalite.to_svg(spec))


def facets_png(
    charts: Mapping[str, SpcChart],
    path: str | Path | None = None,
    *,
    columns: int = 3,
    annotations: FacetAnnotations = None,
    title: str | None = None,
    scale: float = 2.0,
) -> bytes:
    """Render small multiples as PNG without a browser; also write to ``path`` if given."""
    spec = facets_vegalite(charts, columns=columns, annotations=annotations, title=title)
    return _vegalite.write_bytes(path, _vegalite.to_png(spec, scale=scale))
