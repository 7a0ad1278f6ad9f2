"""Coarsened exact matching drawn: each covariate's imbalance before and after matching."""

from __future__ import annotations

from typing import Any

from careloop.analysis.matching import CemResult

__all__ = ["figure"]


def figure(result: CemResult) -> Any:
    """A Plotly bar chart of each covariate's L1 imbalance before and after matching."""
    import plotly.graph_objects as go

    before = result.imbalance_before.table["L1"]
    after = result.imbalance_after.table["L1"]
    fig = go.Figure()
    fig.add_bar(name="before matching", y=list(before.index), x=list(before), orientation="h")
    fig.add_bar(name="after matching", y=list(after.index), x=list(after), orientation="h")
    fig.update_layout(
        title=(
            f"Imbalance by covariate (multivariate L1 {result.l1_before:.3f} → "
            f"{result.l1_after:.3f})"
        ),
        xaxis_title="L1 imbalance (0 = balanced)",
        barmode="group",
    )
    return fig
