"""Funnel plots drawn: a Plotly figure, or SVG and PNG without a browser.

Units are points (x: denominator, y: value), coloured by flag; the target is a
solid line; the inner limits (95%) dashed and the outer (99.8%) dotted, drawn
as smooth curves over the range of denominators; units beyond the limits are
labelled. The calling convention is that of every family in
:mod:`careloop.charts`: :func:`figure`, :func:`vegalite`, :func:`svg`, :func:`png`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from careloop.analysis._frames import records
from careloop.analysis.funnel import FunnelResult, level_suffix
from careloop.charts import _vegalite

__all__ = ["figure", "png", "svg", "vegalite"]

TARGET = "#4d4d4d"
LIMIT_COLOURS = ("#3a6fb0", "#7b3294", "#555555", "#999999")
LIMIT_DASHES_VL = ([6, 4], [2, 2], [8, 2, 2, 2], [1, 3])
LIMIT_DASHES_PLOTLY = ("dash", "dot", "dashdot", "longdashdot")
WITHIN = "#3b4a5a"
ABOVE = ("#ef8a62", "#b2182b")  # inner limit, outer limit
BELOW = ("#67a9cf", "#2166ac")


def _flag_colour(flag: str, levels: tuple[float, ...]) -> str:
    """Within: slate; beyond the outermost limit: strong red/blue; inner limits: lighter."""
    if flag == "within":
        return WITHIN
    side, name = flag.split(" ", 1)
    outer = name == _level_name(levels[-1])
    return (ABOVE if side == "above" else BELOW)[1 if outer else 0]


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


def figure(result: FunnelResult, *, title: str | None = None, label_flagged: bool = True) -> Any:
    """A Plotly figure of a :class:`~careloop.analysis.funnel.FunnelResult`: units as
    points, the target, and the funnels."""
    import plotly.graph_objects as go

    xt, yt = _axis_titles(result)
    fig = go.Figure()
    curve = result.curve
    for i, level in enumerate(result.levels):
        suffix = level_suffix(level)
        for side in ("lower", "upper"):
            fig.add_trace(
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
    fig.add_trace(
        go.Scatter(
            x=x_range,
            y=[result.target * result.multiply] * 2,
            mode="lines",
            name=f"target {result.target * result.multiply:.4g}",
            line={"color": TARGET, "width": 1.5},
        )
    )
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
                marker={"color": _flag_colour(flag, result.levels), "size": 8},
                customdata=np.stack([grp["unit"].astype(str), grp["z_adjusted"]], axis=1),
                hovertemplate="%{customdata[0]}: %{y:.4g} from %{x:g} (z %{customdata[1]:.2f})"
                "<extra></extra>",
            )
        )
    fig.update_layout(
        title=title or _title(result),
        xaxis_title=xt,
        yaxis_title=yt,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


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
) -> dict[str, Any]:
    """A Vega-Lite specification equivalent to :func:`figure`.

    Named layers: ``limits`` (one line per limit), ``target``, ``units``,
    ``unit_labels``.
    """
    xt, yt = _axis_titles(result)
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
        _units_layer(result, unit_rows, x_enc),
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
        f"target {result.target * result.multiply:.4g} (solid) · {limit_text} limits "
        f"(dashed, dotted) · φ = {result.phi:.3g}"
    )
    return {
        "$schema": _vegalite.SCHEMA,
        "config": _vegalite.BASE_CONFIG,
        "title": {"text": title or _title(result), "subtitle": subtitle},
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
    result: FunnelResult, unit_rows: list[dict[str, Any]], x_enc: dict[str, Any]
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
                    "range": [_flag_colour(f, result.levels) for f in flags],
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


def svg(result: FunnelResult, path: str | Path | None = None, *, title: str | None = None) -> str:
    """Render as SVG without a browser; also write it to ``path`` if given."""
    return _vegalite.write_text(path, _vegalite.to_svg(vegalite(result, title=title)))


def png(
    result: FunnelResult,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    scale: float = 2.0,
) -> bytes:
    """Render as PNG without a browser; also write it to ``path`` if given."""
    png_bytes = _vegalite.to_png(vegalite(result, title=title), scale=scale)
    return _vegalite.write_bytes(path, png_bytes)
