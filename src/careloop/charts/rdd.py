"""Regression discontinuity drawn: an rdplot of binned means and the fits either side."""

from __future__ import annotations

from typing import Any

from careloop.analysis.rdd import RddResult

__all__ = ["figure"]


def figure(result: RddResult, *, nbins: int | tuple[int, int] | None = None, order: int = 4) -> Any:
    """An rdplot-style Plotly figure: binned means, global polynomial fits, the cut-off.

    Bins are rdplot's default (evenly spaced, mimicking the variance,
    ``binselect="esmv"``); the curves are global polynomials of ``order``
    fitted on each side, as in ``rdrobust.rdplot`` (:meth:`RddResult.binned`).
    """
    import plotly.graph_objects as go

    out = result.binned(nbins=nbins, order=order)
    bins = out.vars_bins
    poly = out.vars_poly
    fig = go.Figure()
    fig.add_scatter(
        x=bins["rdplot_mean_x"],
        y=bins["rdplot_mean_y"],
        mode="markers",
        name="bin mean",
        marker={"color": "#1f4e79", "size": 7},
    )
    for side, mask in (
        ("left", poly["rdplot_x"] < result.cutoff),
        ("right", poly["rdplot_x"] >= result.cutoff),
    ):
        part = poly[mask]
        fig.add_scatter(
            x=part["rdplot_x"],
            y=part["rdplot_y"],
            mode="lines",
            name=f"order-{order} fit ({side})",
            line={"color": "#c0392b"},
            showlegend=side == "left",
        )
    fig.add_vline(x=result.cutoff, line_dash="dash", line_color="grey")
    fig.update_layout(
        title=(
            f"{result.outcome} by {result.running}: jump {result.conventional.estimate:.3g} "
            f"(robust 95% CI {result.robust.ci_low:.3g} to {result.robust.ci_high:.3g})"
        ),
        xaxis_title=result.running,
        yaxis_title=result.outcome,
        template="plotly_white",
    )
    return fig
