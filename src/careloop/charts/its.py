"""Interrupted time series drawn: observed, fitted and counterfactual.

:func:`figure` draws a Plotly figure (interactive); :func:`vegalite` the same
picture as a Vega-Lite specification, which :func:`svg` and :func:`png`
render without a browser — the calling convention of every family in
:mod:`careloop.charts`.

The picture follows Lopez Bernal et al. (2017, figures 2–4): observed points,
the fitted model as a solid line broken at each intervention (so the step is
visible), and the counterfactual — the pre-intervention model carried on — as
a dashed line over the post-intervention period.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careloop.analysis._frames import records
from careloop.analysis.its import ItsResult
from careloop.charts import _vegalite

__all__ = ["figure", "png", "svg", "vegalite"]

OBSERVED = "#1f4e79"
CONTROL = "#8c8c8c"
FITTED = "#c0392b"
COUNTERFACTUAL = "#c0392b"
MARKER = "#555555"


def _frame(result: ItsResult, per: float | None) -> tuple[pd.DataFrame, str, bool]:
    s = result.series.copy()
    dated = "date" in s.columns
    s["x"] = s["date"] if dated else s["time"]
    factor = float(per) if per else 1.0
    for col in (
        "observed",
        "fitted",
        "counterfactual",
        "fitted_low",
        "fitted_high",
        "counterfactual_low",
        "counterfactual_high",
    ):
        s[col] = s[col] * factor
    if "group" not in s.columns:
        s["group"] = "treated"
    # segment: how many interventions are on (phases are cumulative 0/1 columns)
    s["segment"] = 0
    times_on = [ph for ph in result.interventions]
    for ph in times_on:
        start = ph.start
        if dated:
            s.loc[pd.to_datetime(s["x"]) >= pd.Timestamp(start), "segment"] += 1
        else:
            s.loc[s["x"] >= start, "segment"] += 1
    if result.exposure:
        label = f"{result.outcome} per {_per_text(per)}{result.exposure}"
    elif result.family == "binomial":
        label = f"{result.outcome} (proportion{'' if not per else f' × {per:g}'})"
    else:
        label = result.outcome
    return s, label, dated


def _per_text(per: float | None) -> str:
    if not per or per == 1:
        return ""
    return f"{per:,.0f} " if float(per).is_integer() else f"{per:g} "


def _counterfactual_rows(s: pd.DataFrame) -> pd.DataFrame:
    """Counterfactual over the post period of the treated series, joined to the last pre point."""
    t = s[s["group"] == "treated"].reset_index(drop=True)
    post = t.index[t["post"]]
    if len(post) == 0:
        return t.iloc[0:0]
    first = int(post[0])
    return t.iloc[max(first - 1, 0) :]


def figure(result: ItsResult, *, per: float | None = None, title: str | None = None) -> Any:
    """A Plotly figure of an :class:`~careloop.analysis.its.ItsResult`: observed points,
    the fitted line, the counterfactual dashed.

    ``per`` multiplies rates for display (e.g. ``per=100_000`` for rates per
    100,000 of the exposure).
    """
    import plotly.graph_objects as go

    s, ylabel, dated = _frame(result, per)
    fig = go.Figure()
    for group, colour in (("control", CONTROL), ("treated", OBSERVED)):
        g = s[s["group"] == group]
        if g.empty:
            continue
        name = "observed" if result.control is None else f"observed ({group})"
        fig.add_trace(
            go.Scatter(
                x=g["x"],
                y=g["observed"],
                mode="markers",
                name=name,
                marker={"color": colour, "size": 6},
            )
        )
        for seg, part in g.groupby("segment"):
            fig.add_trace(
                go.Scatter(
                    x=part["x"],
                    y=part["fitted"],
                    mode="lines",
                    name="fitted" if result.control is None else f"fitted ({group})",
                    line={"color": FITTED if group == "treated" else CONTROL, "width": 2},
                    showlegend=bool(seg == 0),
                    legendgroup=f"fitted-{group}",
                )
            )
    cf = _counterfactual_rows(s)
    if not cf.empty:
        fig.add_trace(
            go.Scatter(
                x=cf["x"],
                y=cf["counterfactual"],
                mode="lines",
                name="counterfactual",
                line={"color": COUNTERFACTUAL, "width": 2, "dash": "dash"},
            )
        )
    for ph in result.interventions:
        x0 = pd.Timestamp(ph.start) if dated else ph.start
        fig.add_vline(x=x0, line={"color": MARKER, "width": 1, "dash": "dot"})
        fig.add_annotation(
            x=x0,
            y=1.0,
            yref="paper",
            text=ph.intervention,
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"size": 11, "color": MARKER},
        )
    fig.update_layout(
        title=title or f"Interrupted time series: {result.outcome}",
        xaxis_title=result.time,
        yaxis_title=ylabel,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def vegalite(
    result: ItsResult,
    *,
    per: float | None = None,
    title: str | None = None,
    width: int = 640,
    height: int = 320,
) -> dict[str, Any]:
    """A Vega-Lite specification equivalent to :func:`figure`."""
    s, ylabel, dated = _frame(result, per)
    xtype = "temporal" if dated else "quantitative"
    rows = [
        {
            "x": r["x"],
            "group": r["group"],
            "segment": int(r["segment"]),
            "observed": r["observed"],
            "fitted": r["fitted"],
        }
        for _, r in s.iterrows()
    ]
    cf_rows = [
        {"x": r["x"], "counterfactual": r["counterfactual"]}
        for _, r in _counterfactual_rows(s).iterrows()
    ]
    x_enc = {"field": "x", "type": xtype, "title": result.time}
    layers = [
        *_intervention_layers(result, xtype, dated),
        _observed_layer(rows, x_enc, _y_scale(s), ylabel, legend=result.control is not None),
        {
            "name": "fitted",
            "data": {"values": records(rows)},
            "mark": {"type": "line", "strokeWidth": 2},
            "encoding": {
                "x": x_enc,
                "y": {"field": "fitted", "type": "quantitative"},
                "color": {
                    "field": "group",
                    "type": "nominal",
                    "scale": {"domain": ["treated", "control"], "range": [FITTED, CONTROL]},
                    "legend": None,
                },
                "detail": {"field": "segment", "type": "nominal"},
            },
        },
    ]
    if cf_rows:
        layers.append(
            {
                "name": "counterfactual",
                "data": {"values": records(cf_rows)},
                "mark": {
                    "type": "line",
                    "strokeWidth": 2,
                    "strokeDash": [6, 4],
                    "color": COUNTERFACTUAL,
                },
                "encoding": {"x": x_enc, "y": {"field": "counterfactual", "type": "quantitative"}},
            }
        )
    subtitle = "points: observed · solid: fitted · dashed: counterfactual (no intervention)"
    return {
        "$schema": _vegalite.SCHEMA,
        "title": {
            "text": title or f"Interrupted time series: {result.outcome}",
            "subtitle": subtitle,
        },
        "width": width,
        "height": height,
        "config": _vegalite.BASE_CONFIG,
        "resolve": {"scale": {"color": "independent"}},
        "layer": layers,
    }


def _y_scale(s: pd.DataFrame) -> dict[str, Any]:
    """A y domain padded around every observed, fitted and counterfactual value."""
    ys = pd.concat([s["observed"], s["fitted"], s["counterfactual"]]).astype(float)
    ys = ys[np.isfinite(ys)]
    lo, hi = float(ys.min()), float(ys.max())
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    return {"domain": [lo - pad, hi + pad], "zero": False, "nice": False}


def _intervention_layers(result: ItsResult, xtype: str, dated: bool) -> list[dict[str, Any]]:
    """A dotted rule at each intervention's start, with its name."""
    marks = [
        {"x": pd.Timestamp(ph.start) if dated else ph.start, "label": ph.intervention}
        for ph in result.interventions
    ]
    return [
        {
            "name": "intervention",
            "data": {"values": records(marks)},
            "mark": {"type": "rule", "color": MARKER, "strokeDash": [2, 3]},
            "encoding": {"x": {"field": "x", "type": xtype}},
        },
        {
            "name": "intervention_label",
            "data": {"values": records(marks)},
            "mark": {
                "type": "text",
                "align": "left",
                "dx": 3,
                "dy": -4,
                "baseline": "bottom",
                "color": MARKER,
                "fontSize": 11,
            },
            "encoding": {
                "x": {"field": "x", "type": xtype},
                "y": {"value": 10},
                "text": {"field": "label"},
            },
        },
    ]


def _observed_layer(
    rows: list[dict[str, Any]],
    x_enc: dict[str, Any],
    y_scale: dict[str, Any],
    ylabel: str,
    *,
    legend: bool,
) -> dict[str, Any]:
    return {
        "name": "observed",
        "data": {"values": records(rows)},
        "mark": {"type": "point", "filled": True, "size": 30},
        "encoding": {
            "x": x_enc,
            "y": {"field": "observed", "type": "quantitative", "title": ylabel, "scale": y_scale},
            "color": {
                "field": "group",
                "type": "nominal",
                "scale": {"domain": ["treated", "control"], "range": [OBSERVED, CONTROL]},
                "legend": {"title": None, "orient": "bottom"} if legend else None,
            },
        },
    }


def svg(
    result: ItsResult,
    path: str | Path | None = None,
    *,
    per: float | None = None,
    title: str | None = None,
) -> str:
    """Render the figure as SVG without a browser; write it to ``path`` if given."""
    spec = vegalite(result, per=per, title=title)
    return _vegalite.write_text(path, _vegalite.to_svg(spec))


def png(
    result: ItsResult,
    path: str | Path | None = None,
    *,
    per: float | None = None,
    title: str | None = None,
    scale: float = 2.0,
) -> bytes:
    """Render the figure as PNG without a browser; write it to ``path`` if given."""
    spec = vegalite(result, per=per, title=title)
    return _vegalite.write_bytes(path, _vegalite.to_png(spec, scale=scale))
