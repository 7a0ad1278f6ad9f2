"""A radar chart drawn as inline SVG on the server, for the maturity page.

Written here rather than with Vega-Lite (as careloop's other charts are)
because Vega-Lite has no radar mark; the chart is a few polygons and labels.
No script and no style attribute, so it shows under the strict CSP and on a
phone. The SVG has a title and a description for screen readers, and the
page beside it gives the same numbers as a table.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 500
CENTRE = (WIDTH / 2, 240.0)
RADIUS = 150.0
ACCENT = "#0b5cad"
EARLIER = "#4a5560"
GRID = "#8c959f"


@dataclass(frozen=True)
class RadarSeries:
    """One round's scores, one per axis (None where the round has no score)."""

    label: str
    values: Sequence[float | None]
    latest: bool = True
    """The latest round is filled; an earlier one is a dashed outline."""


def _point(axis: int, axes: int, value: float, maximum: float) -> tuple[float, float]:
    angle = -math.pi / 2 + 2 * math.pi * axis / axes
    r = RADIUS * max(0.0, min(value, maximum)) / maximum
    return CENTRE[0] + r * math.cos(angle), CENTRE[1] + r * math.sin(angle)


def _polygon(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _label(axis: int, axes: int, text: str) -> str:
    x, y = _point(axis, axes, 1.12, 1.0)
    if abs(x - CENTRE[0]) < 20 and y < CENTRE[1]:
        y -= 16  # the top label clears the highest level's number
    anchor = "middle" if abs(x - CENTRE[0]) < 20 else "start" if x > CENTRE[0] else "end"
    lines = textwrap.wrap(text, 13, break_long_words=False) or [""]
    # Labels above the centre grow upwards, those below downwards.
    if y < CENTRE[1] - 20:
        top = y - (len(lines) - 1) * 19
    elif y > CENTRE[1] + 20:
        top = y
    else:
        top = y - (len(lines) - 1) * 9.5
    spans = "".join(
        f'<tspan x="{x:.1f}" y="{top + i * 19 + 6:.1f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text text-anchor="{anchor}" font-size="17">{spans}</text>'


def _series(s: RadarSeries, axes: int, maximum: float) -> str:
    # A domain without a score in this round has no vertex (it is not a score of 0).
    points = [_point(i, axes, v, maximum) for i, v in enumerate(s.values) if v is not None]
    if s.latest:
        shape = (
            f'<polygon points="{_polygon(points)}" fill="{ACCENT}" fill-opacity="0.18" '
            f'stroke="{ACCENT}" stroke-width="3"/>'
        )
        dots = "".join(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{ACCENT}"/>' for x, y in points
        )
        return shape + dots
    return (
        f'<polygon points="{_polygon(points)}" fill="none" stroke="{EARLIER}" '
        'stroke-width="2" stroke-dasharray="6 4"/>'
    )


def _legend(series: Sequence[RadarSeries]) -> str:
    out = []
    y = HEIGHT - 18
    x = 40.0
    for s in series:
        if s.latest:
            mark = (
                f'<rect x="{x}" y="{y - 11}" width="22" height="14" fill="{ACCENT}" '
                f'fill-opacity="0.18" stroke="{ACCENT}" stroke-width="2"/>'
            )
        else:
            mark = (
                f'<line x1="{x}" y1="{y - 4}" x2="{x + 22}" y2="{y - 4}" stroke="{EARLIER}" '
                'stroke-width="2" stroke-dasharray="6 4"/>'
            )
        out.append(mark + f'<text x="{x + 30}" y="{y}" font-size="15">{escape(s.label)}</text>')
        x += 300
    return "".join(out)


def radar_svg(
    axes: Sequence[str],
    series: Sequence[RadarSeries],
    *,
    maximum: int = 5,
    title: str,
    description: str,
    id_prefix: str = "radar",
) -> Markup:
    """The radar chart of ``series`` over ``axes`` (levels 0 to ``maximum``) as SVG markup.

    Raises:
        ValueError: Fewer than three axes, or a series without one value per axis.
    """
    if len(axes) < 3:
        raise ValueError(f"A radar chart needs three or more axes, not {len(axes)}.")
    for s in series:
        if len(s.values) != len(axes):
            raise ValueError(f"Series {s.label!r} has {len(s.values)} values for {len(axes)} axes.")
    n = len(axes)
    rings = "".join(
        f'<polygon points="{_polygon([_point(i, n, level, maximum) for i in range(n)])}" '
        f'fill="none" stroke="{GRID}" stroke-width="1"/>'
        for level in range(1, maximum + 1)
    )
    spokes = "".join(
        f'<line x1="{CENTRE[0]}" y1="{CENTRE[1]}" x2="{x:.1f}" y2="{y:.1f}" stroke="{GRID}" '
        'stroke-width="1"/>'
        for x, y in (_point(i, n, maximum, maximum) for i in range(n))
    )
    # The levels along the top spoke, on its left, clear of the series' line and dots.
    ticks = "".join(
        f'<text x="{CENTRE[0] - 7:.1f}" y="{_point(0, n, level, maximum)[1] + 4:.1f}" '
        f'text-anchor="end" font-size="12" fill="{EARLIER}">{level}</text>'
        for level in range(1, maximum + 1)
    )
    labels = "".join(_label(i, n, a) for i, a in enumerate(axes))
    # Earlier rounds first, so the latest is drawn on top.
    drawn = "".join(_series(s, n, maximum) for s in sorted(series, key=lambda s: s.latest))
    legend = _legend(series) if len(series) > 1 else ""
    return Markup(  # noqa: S704 - every text in it passed through escape()
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{id_prefix}-title {id_prefix}-desc" '
        f'font-family="system-ui, sans-serif" fill="#1b1f23">'
        f'<title id="{id_prefix}-title">{escape(title)}</title>'
        f'<desc id="{id_prefix}-desc">{escape(description)}</desc>'
        f"{rings}{spokes}{ticks}{drawn}{labels}{legend}</svg>"
    )
