"""Risk models drawn: the calibration plot and the decision curve (Plotly)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from careloop.analysis.risk import DecisionCurve, RiskModel

__all__ = ["calibration_figure", "decision_curve_figure"]


def calibration_figure(model: RiskModel) -> Any:
    """Calibration plot: observed against predicted risk by decile, with the ideal line."""
    import plotly.graph_objects as go

    table = pd.DataFrame(list(model.calibration))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=table["mean_predicted"],
            y=table["observed"],
            mode="markers+lines",
            name="Deciles of predicted risk",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": table["observed_high"] - table["observed"],
                "arrayminus": table["observed"] - table["observed_low"],
            },
        )
    )
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Ideal", line={"dash": "dash"}))
    slope = model.metric("calibration_slope")
    fig.update_layout(
        title=(f"Calibration (apparent); optimism-corrected slope {slope.corrected:.2f}"),
        xaxis_title="Predicted risk",
        yaxis_title="Observed proportion",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
    )
    return fig


def decision_curve_figure(curve: DecisionCurve | RiskModel) -> Any:
    """Decision curve: net benefit of the model, of treating all and of treating none.

    Given a :class:`RiskModel`, its apparent decision curve is drawn.
    """
    import plotly.graph_objects as go

    if isinstance(curve, RiskModel):
        curve = DecisionCurve.from_dict(curve.decision_curve)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=curve.thresholds, y=curve.net_benefit_model, name="Model"))
    fig.add_trace(
        go.Scatter(
            x=curve.thresholds, y=curve.net_benefit_all, name="Treat all", line={"dash": "dash"}
        )
    )
    fig.add_trace(
        go.Scatter(
            x=curve.thresholds,
            y=[0.0] * len(curve.thresholds),
            name="Treat none",
            line={"dash": "dot"},
        )
    )
    low = min(-0.05, -curve.prevalence / 4)
    fig.update_layout(
        title="Decision curve (Vickers & Elkin 2006)",
        xaxis_title="Threshold risk for acting",
        yaxis_title="Net benefit",
        yaxis_range=[low, max(curve.prevalence, 0.01) * 1.1],
    )
    return fig
