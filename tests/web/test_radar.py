"""The maturity page's radar chart: where each vertex lands, and that labels are escaped."""

from __future__ import annotations

import math
import re

import pytest

from careloop.web.pages.radar import CENTRE, RADIUS, RadarSeries, radar_svg


def _polygons(svg: str) -> list[list[tuple[float, float]]]:
    return [
        [tuple(float(v) for v in p.split(",")) for p in points.split()]  # type: ignore[misc]
        for points in re.findall(r'<polygon points="([^"]+)"', svg)
    ]


def test_a_vertex_lies_at_its_share_of_the_radius_along_its_spoke():
    svg = str(
        radar_svg(
            ["A", "B", "C", "D"],
            [RadarSeries("now", [5, 2.5, None, 1])],
            title="t",
            description="d",
        )
    )
    *rings, series = _polygons(svg)
    assert len(rings) == 5  # one per level
    cx, cy = CENTRE
    # Four axes: up, right, down, left (clockwise from the top), worked out by hand; the
    # unscored third axis has no vertex rather than one at the centre.
    expected = [(cx, cy - RADIUS), (cx + RADIUS / 2, cy), (cx - RADIUS / 5, cy)]
    for (x, y), (ex, ey) in zip(series, expected, strict=True):
        assert math.isclose(x, ex, abs_tol=0.06) and math.isclose(y, ey, abs_tol=0.06)
    # A dot on each scored vertex, none for the unscored one.
    assert svg.count("<circle") == 3


def test_labels_title_and_description_are_escaped_and_an_earlier_round_is_dashed():
    svg = str(
        radar_svg(
            ["<b>x</b>", "B & C", "D"],
            [
                RadarSeries("first", [1, 1, 1], latest=False),
                RadarSeries("<now>", [2, 2, 2]),
            ],
            title="A <title>",
            description="x & y",
        )
    )
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg and "B &amp; C" in svg
    assert "A &lt;title&gt;" in svg and "x &amp; y" in svg and "&lt;now&gt;" in svg
    assert svg.count('stroke-dasharray="6 4"') == 2  # the earlier outline and its legend
    assert 'role="img"' in svg and 'aria-labelledby="radar-title radar-desc"' in svg


def test_a_radar_needs_three_axes_and_one_value_per_axis():
    with pytest.raises(ValueError, match="three or more axes"):
        radar_svg(["A", "B"], [], title="t", description="d")
    with pytest.raises(ValueError, match="has 2 values for 3 axes"):
        radar_svg(["A", "B", "C"], [RadarSeries("s", [1, 2])], title="t", description="d")
