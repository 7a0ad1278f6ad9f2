"""Funnel plots drawn: a Plotly figure, or SVG and PNG without a browser.

Units are points (x: denominator, y: value), coloured by flag; the target is a
solid line; the inner limits (95%) dashed and the outer (99.8%) dotted, drawn
as smooth curves over the range of denominators; units beyond the limits are
labelled. The calling convention is that of every family in
:mod:`careloop.charts`: :func:`figure`, :func:`vegalite`, :func:`svg`, :func:`png`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from careloop.analysis._frames import records
from careloop.analysis.funnel import FunnelResult, level_suffix
from careloop.charts import _vegalite
from careloop.charts._spc_look import STATUS_COLOURS
from careloop.charts._spc_look import TARGET as SPC_TARGET

__all__ = ["figure", "png", "svg", "vegalite"]

TARGET = "#4d4d4d"
GOAL = SPC_TARGET
LIMIT_COLOURS = ("#3a6fb0", "#7b3294", "#555555", "#999999")
LIMIT_DASHES_VL = ([6, 4], [2, 2], [8, 2, 2, 2], [1, 3])
LIMIT_DASHES_PLOTLY = ("dash", "dot", "dashdot", "longdashdot")
WITHIN = STATUS_COLOURS["common cause"]
# The SPC charts' Making Data Count colours (careloop.charts._spc_look): improvement
# blue, concern orange, purple when the measure has no better direction. A unit
# beyond the outer limit takes the colour; beyond only the inner one, a lighter tint.
IMPROVEMENT = ("#93cdef", STATUS_COLOURS["improvement"])  # inner limit, outer limit
CONCERN = ("#fcd68e", STATUS_COLOURS["concern"])
NEITHER = ("#9a8ab8", STATUS_COLOURS["special cause"])
Improvement = Literal["up", "down"]


def _flag_colour(flag: str, levels: tuple[float, ...], improvement: Improvement | None) -> str:
    """Within: slate; beyond a limit: the SPC colour of the side it lies on (improvement
    blue, concern orange, purple without a better direction), lighter for the inner limit."""
    if flag == "within":
        return WITHIN
    side, name = flag.split(" ", 1)
    outer = name == _level_name(levels[-1])
    if improvement is None:
        shades = NEITHER
    else:
        shades = IMPROVEMENT if (side == "above") == (improvement == "up") else CONCERN
    return shades[1 if outer else 0]


def centre_name(result: FunnelResult) -> str:
    """What the line the limits are centred on is: the network's (pooled) value, or the
    target the caller centred the funnel on."""
    shown = _shown(result.target, result)
    return f"network mean {shown}" if result.target_source == "pooled" else f"target {shown}"


def _flag_order(result: FunnelResult) -> list[str]:
    """Flags present, from the highest above to the lowest below."""
    names = [_level_name(lv) for lv in result.levels]
    order = [f"above {n}" for n in reversed(names)] + ["within"] + [f"below {n}" for n in names]
    present = set(result.units["flag"])
    return [f for f in order if f in present]


def _axis_titles(result: FunnelResult) -> tuple[str, str]:
    scale = f" × {result.multiply:g}" if result.multiply != 1 else ""
    kind = "proportion" if result.kind == "proportion" else "rate"
    return result.denominator_label, f"{result.numerator_label} {kind}{scale}"


def _level_name(level: float) -> str:
    return f"{level * 100:.10g}%"


def _plotly_lines(result: FunnelResult, goal: float | None) -> list[Any]:
    """The funnels (one pair of curves per level), the centre line and the goal."""
    import plotly.graph_objects as go

    traces: list[Any] = []
    curve = result.curve
    for i, level in enumerate(result.levels):
        suffix = level_suffix(level)
        for side in ("lower", "upper"):
            traces.append(
                go.Scatter(
                    x=curve["denominator"],
                    y=curve[f"{side}_{suffix}"],
                    mode="lines",
                    name=f"{_level_name(level)} limits",
                    legendgroup=suffix,
                    showlegend=side == "upper",
                    line={
                        "color": LIMIT_COLOURS[i % 4],
                        "dash": LIMIT_DASHES_PLOTLY[i % 4],
                        "width": 1.4,
                    },
                )
            )
    x_range = [float(curve["denominator"].min()), float(curve["denominator"].max())]
    lines = [(result.target, centre_name(result), TARGET, "solid")]
    if goal is not None:
        lines.append((goal, f"target {_shown(goal, result)}", GOAL, "longdash"))
    for value, name, colour, dash in lines:
        traces.append(
            go.Scatter(
                x=x_range,
                y=[value * result.multiply] * 2,
                mode="lines",
                name=name,
                line={"color": colour, "width": 1.5, "dash": dash},
            )
        )
    return traces


def figure(
    result: FunnelResult,
    *,
    title: str | None = None,
    label_flagged: bool = True,
    improvement: Improvement | None = None,
    goal: float | None = None,
) -> Any:
    """A Plotly figure of a :class:`~careloop.analysis.funnel.FunnelResult`: units as
    points, the centre line (the network mean), and the funnels.

    ``improvement`` (the better direction) colours units beyond the limits as the
    SPC charts do; ``goal`` (on the values' scale, before ``multiply``) draws the
    measure's target as a separate dashed line.
    """
    import plotly.graph_objects as go

    xt, yt = _axis_titles(result)
    fig = go.Figure(_plotly_lines(result, goal))
    percent = result.multiply == 100
    units = result.units
    for flag in _flag_order(result):
        grp = units[units["flag"] == flag]
        fig.add_trace(
            go.Scatter(
                x=grp["denominator"],
                y=grp["value"],
                mode="markers+text" if (label_flagged and flag != "within") else "markers",
                text=grp["unit"].astype(str) if flag != "within" else None,
                textposition="top center",
                name=str(flag),
                marker={"color": _flag_colour(flag, result.levels, improvement), "size": 8},
                customdata=np.stack([grp["unit"].astype(str), grp["z_adjusted"]], axis=1),
                hovertemplate="%{customdata[0]}: "
                + ("%{y:.1f}%" if percent else "%{y:.4g}")
                + " from %{x:g} (z %{customdata[1]:.2f})<extra></extra>",
            )
        )
    if percent:
        fig.update_yaxes(ticksuffix="%")
    fig.update_layout(
        title=title or _title(result),
        xaxis_title=xt,
        yaxis_title=yt,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


def _shown(value: float, result: FunnelResult) -> str:
    scaled = value * result.multiply
    return f"{scaled:.1f}%" if result.multiply == 100 else f"{scaled:.4g}"


def _title(result: FunnelResult) -> str:
    adj = {
        None: "",
        "multiplicative": " (limits adjusted for over-dispersion, multiplicative)",
        "additive": " (limits adjusted for over-dispersion, additive)",
    }[result.overdispersion]
    return f"Funnel plot: {result.numerator_label} per {result.denominator_label}{adj}"


def vegalite(
    result: FunnelResult,
    *,
    title: str | None = None,
    label_flagged: bool = True,
    width: int = 560,
    height: int = 360,
    improvement: Improvement | None = None,
    source: str | None = None,
    y_title: str | None = None,
) -> dict[str, Any]:
    """A Vega-Lite specification equivalent to :func:`figure`.

    Named layers: ``limits`` (one line per limit), ``target`` (the centre line),
    ``units``, ``unit_labels``. ``source`` is printed under the title; ``y_title``
    replaces the y axis' title.
    """
    xt, yt = _axis_titles(result)
    yt = y_title or yt
    unit_rows = [
        {
            "unit": str(r["unit"]),
            "denominator": r["denominator"],
            "value": r["value"],
            "flag": r["flag"],
            "z": r["z_adjusted"],
        }
        for _, r in result.units.iterrows()
    ]
    x_enc = {
        "field": "denominator",
        "type": "quantitative",
        "title": xt,
        "scale": {"zero": False, "nice": False, "padding": 10},
    }
    layers = [
        _limits_layer(result, x_enc, yt),
        _target_layer(result, x_enc),
        _units_layer(result, unit_rows, x_enc, improvement),
    ]
    flagged = [r for r in unit_rows if r["flag"] != "within"]
    if label_flagged and flagged:
        layers.append(
            {
                "name": "unit_labels",
                "data": {"values": records(flagged)},
                "mark": {"type": "text", "dy": -9, "fontSize": 10, "color": "#333333"},
                "encoding": {
                    "x": x_enc,
                    "y": {"field": "value", "type": "quantitative"},
                    "text": {"field": "unit"},
                },
            }
        )
    limit_text = " and ".join(_level_name(lv) for lv in result.levels)
    subtitle = (
        f"{centre_name(result)} (solid) · {limit_text} limits "
        f"(dashed, dotted) · φ = {result.phi:.3g}"
    )
    return {
        "$schema": _vegalite.SCHEMA,
        "config": _vegalite.BASE_CONFIG,
        "title": {
            "text": title or _title(result),
            "subtitle": [subtitle, source] if source else subtitle,
        },
        "width": width,
        "height": height,
        "layer": layers,
        "resolve": {"scale": {"color": "independent", "strokeDash": "independent"}},
    }


def _limits_layer(result: FunnelResult, x_enc: dict[str, Any], y_title: str) -> dict[str, Any]:
    """One smooth line per limit (lower and upper of each level), on a y axis that fits all."""
    curve_rows: list[dict[str, Any]] = []
    for i, level in enumerate(result.levels):
        suffix = level_suffix(level)
        for side in ("lower", "upper"):
            for d, v in zip(
                result.curve["denominator"], result.curve[f"{side}_{suffix}"], strict=True
            ):
                curve_rows.append(
                    {
                        "denominator": d,
                        "limit": v,
                        "line": f"{side} {_level_name(level)}",
                        "level": i,
                    }
                )
    level_names = [_level_name(lv) for lv in result.levels]
    line_domain = [f"{side} {name}" for name in level_names for side in ("lower", "upper")]
    line_dash = [LIMIT_DASHES_VL[i % 4] for i in range(len(level_names)) for _ in (0, 1)]
    line_colour = [LIMIT_COLOURS[i % 4] for i in range(len(level_names)) for _ in (0, 1)]
    curve_values = result.curve.drop(columns="denominator").to_numpy(dtype=float).ravel()
    values = np.concatenate([result.units["value"].to_numpy(dtype=float), curve_values])
    values = values[np.isfinite(values)]
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or 1.0
    y_scale = {"domain": [max(lo - pad, 0.0), hi + pad], "zero": False, "nice": False}
    return {
        "name": "limits",
        "data": {"values": records(curve_rows)},
        "mark": {"type": "line", "strokeWidth": 1.4, "clip": True},
        "encoding": {
            "x": x_enc,
            "y": {"field": "limit", "type": "quantitative", "title": y_title, "scale": y_scale},
            "detail": {"field": "line", "type": "nominal"},
            "strokeDash": {
                "field": "line",
                "type": "nominal",
                "scale": {"domain": line_domain, "range": line_dash},
                "legend": None,
            },
            "color": {
                "field": "line",
                "type": "nominal",
                "scale": {"domain": line_domain, "range": line_colour},
                "legend": None,
            },
        },
    }


def _target_layer(result: FunnelResult, x_enc: dict[str, Any]) -> dict[str, Any]:
    target = result.target * result.multiply
    ends = (float(result.curve["denominator"].min()), float(result.curve["denominator"].max()))
    return {
        "name": "target",
        "data": {"values": [{"denominator": d, "t": target} for d in ends]},
        "mark": {"type": "line", "color": TARGET, "strokeWidth": 1.5},
        "encoding": {"x": x_enc, "y": {"field": "t", "type": "quantitative"}},
    }


def _units_layer(
    result: FunnelResult,
    unit_rows: list[dict[str, Any]],
    x_enc: dict[str, Any],
    improvement: Improvement | None,
) -> dict[str, Any]:
    flags = _flag_order(result)
    return {
        "name": "units",
        "data": {"values": records(unit_rows)},
        "mark": {"type": "point", "filled": True, "size": 50, "opacity": 1},
        "encoding": {
            "x": x_enc,
            "y": {"field": "value", "type": "quantitative"},
            "color": {
                "field": "flag",
                "type": "nominal",
                "scale": {
                    "domain": flags,
                    "range": [_flag_colour(f, result.levels, improvement) for f in flags],
                },
                "legend": {"title": None, "orient": "bottom"},
            },
            "tooltip": [
                {"field": "unit"},
                {"field": "value", "format": ".4g"},
                {"field": "denominator"},
                {"field": "z", "format": ".2f"},
            ],
        },
    }


def svg(
    result: FunnelResult,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    improvement: Improvement | None = None,
    source: str | None = None,
    y_title: str | None = None,
) -> str:
    """Render as SVG without a browser; also write it to ``path`` if given."""
    spec = vegalite(result, title=title, improvement=improvement, source=source, y_title=y_title)
    return _vegalite.write_text(path, _vegalite.to_svg(spec))


def png(
    result: FunnelResult,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    scale: float = 2.0,
    improvement: Improvement | None = None,
    source: str | None = None,
    y_title: str | None = None,
) -> bytes:
    """Render as PNG without a browser; also write it to ``path`` if given."""
    spec = vegalite(result, title=title, improvement=improvement, source=source, y_title=y_title)
    return _vegalite.write_bytes(path, _vegalite.to_png(spec, scale=scale))
