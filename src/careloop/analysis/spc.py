"""Statistical process control: run and control charts modelled on qicharts2.

``qic`` follows Jacob Anhøj's R package qicharts2 (``qicharts2::qic``) so that
an analyst moving from R gets the same numbers from the same call. The result
is an :class:`SpcChart`: one row per point in :attr:`SpcChart.points` and one
row per part (phase) in :meth:`SpcChart.summary`.

Rendering lives in :mod:`careloop.analysis.spc_plot`; the chart's
``figure``/``to_svg``/``to_png`` methods import it lazily so that computing a
chart never needs a plotting library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

Annotations: TypeAlias = "Sequence[Any] | None"
"""Annotations passed through to the renderer (PDSA cycles, deployments…)."""

ChartType = Literal["run", "i", "mr", "xbar", "s", "t", "p", "pp", "c", "u", "up", "g"]
"""The chart types of ``qicharts2::qic`` (``pp``/``up`` are Laney's P′/U′)."""

CHART_TYPES: tuple[str, ...] = ("run", "i", "mr", "xbar", "s", "t", "p", "pp", "c", "u", "up", "g")

POINT_COLUMNS: tuple[str, ...] = (
    "x",
    "y",
    "n",
    "cl",
    "ucl",
    "lcl",
    "part",
    "include",
    "sigma_signal",
    "runs_signal",
    "longest_run",
    "longest_run_max",
    "n_crossings",
    "n_crossings_min",
)
"""Columns every :attr:`SpcChart.points` frame has, in this order (more may follow)."""


@dataclass(frozen=True)
class SpcChart:
    """A run or control chart: its points, limits, phases and signals.

    Frozen: derive a new chart with :func:`qic` rather than editing one.
    """

    chart_type: str
    """One of :data:`CHART_TYPES`."""
    points: pd.DataFrame
    """One row per point, sorted by x; the columns of :data:`POINT_COLUMNS`
    (``part`` is 1-based, ``include`` is False for excluded points, the run
    statistics are those of the point's part), plus ``target`` when a target
    was given and the rule-set columns when other rule sets are on."""
    title: str | None = None
    """Chart title (as ``qic(title=...)``)."""
    ylab: str | None = None
    """Label of the y axis."""
    xlab: str | None = None
    """Label of the x axis."""
    multiply: float = 1
    """Factor the y values, centre lines and limits were multiplied by (e.g. 100 for percent)."""
    method: str = "anhoej"
    """Runs analysis method: ``"anhoej"`` (qicharts2's default) or ``"bestbox"``/``"cutbox"``."""
    target: float | None = None
    """Target value (already multiplied), if one was given."""
    options: dict[str, Any] = field(default_factory=dict)
    """The options the chart was made with (freeze, exclude, rules, improvement, …)."""

    def summary(self) -> pd.DataFrame:
        """One row per part: its size, runs analysis, limits and signals.

        Columns: part, n_obs, n_useful, longest_run, longest_run_max,
        n_crossings, n_crossings_min, runs_signal, lcl, cl, ucl (those of the
        last point of the part), sigma_signal (any point of the part), and
        ``variation``/``assurance`` when the Making Data Count rules are on.
        """
        pts = self.points
        extra = [c for c in ("variation", "assurance") if c in pts.columns]
        rows = []
        for _, grp in pts.groupby("part", sort=True):
            last = grp.iloc[-1]
            row: dict[str, Any] = {
                "part": int(last["part"]),
                "n_obs": int(grp["n_obs"].iloc[-1]) if "n_obs" in grp else len(grp),
                "n_useful": int(grp["n_useful"].iloc[-1]) if "n_useful" in grp else len(grp),
                "longest_run": last["longest_run"],
                "longest_run_max": last["longest_run_max"],
                "n_crossings": last["n_crossings"],
                "n_crossings_min": last["n_crossings_min"],
                "runs_signal": bool(last["runs_signal"]),
                "lcl": last["lcl"],
                "cl": last["cl"],
                "ucl": last["ucl"],
                "sigma_signal": bool(grp["sigma_signal"].any()),
            }
            for column in extra:
                row[column] = last[column]
            rows.append(row)
        return pd.DataFrame(rows)

    # --- rendering: delegated to careloop.analysis.spc_plot -------------------

    def figure(self, annotations: Annotations = None) -> Any:
        """A Plotly figure of the chart (see :mod:`careloop.analysis.spc_plot`)."""
        return _renderer().chart_figure(self, annotations=annotations)

    def to_svg(self, path: str | Path | None = None, annotations: Annotations = None) -> Any:
        """Render the chart as SVG; write it to ``path`` if given, else return it."""
        return _renderer().chart_to_svg(self, path=path, annotations=annotations)

    def to_png(self, path: str | Path | None = None, annotations: Annotations = None) -> Any:
        """Render the chart as PNG; write it to ``path`` if given, else return the bytes."""
        return _renderer().chart_to_png(self, path=path, annotations=annotations)


def _renderer() -> Any:
    """careloop.analysis.spc_plot, imported on first use (it needs Plotly)."""
    import importlib

    return importlib.import_module("careloop.analysis.spc_plot")
