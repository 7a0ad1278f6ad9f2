"""careloop.charts.funnel: what the rendered funnel plots actually contain.

The SVG is rendered for real with vl-convert and read back mark by mark
(tests/charts/_svg_marks.py); the PNG is decoded with Pillow. The units are
the small data sets of tests/analysis/test_funnel.py, whose numbers are
checked there against R.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from careloop import charts
from tests.analysis.test_funnel import PROP_ARGS, PROPORTIONS, RATE_ARGS, RATES, quiet
from tests.charts._svg_marks import count_items, mark_groups, texts


def test_svg_has_every_unit_four_limit_curves_and_the_flagged_labels(tmp_path):
    result = quiet(PROPORTIONS, **PROP_ARGS, multiply=100)
    svg = charts.funnel.svg(result, tmp_path / "f.svg")
    assert (tmp_path / "f.svg").read_text() == svg
    assert count_items(svg, "units", "path") == 12
    assert len(mark_groups(svg, "limits")) == 4  # lower/upper × 95%/99.8%
    assert len(mark_groups(svg, "target")) == 1
    flagged = result.units.loc[result.units["flag"] != "within", "unit"].tolist()
    assert sorted(texts(svg, "unit_labels")) == sorted(flagged)
    limits = "".join(mark_groups(svg, "limits"))
    dashes = {m.group(1) for m in re.finditer(r'stroke-dasharray="([^"]+)"', limits)}
    assert dashes == {"6,4", "2,2"}


def test_png_decodes_and_plotly_figure_has_the_traces(tmp_path):
    result = quiet(RATES, **RATE_ARGS, multiply=1000, overdispersion="additive")
    png = charts.funnel.png(result, tmp_path / "f.png")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width > 1000 and image.height > 700
    pixels = np.asarray(image)
    assert (pixels < 200).any() and (pixels > 250).mean() > 0.5
    fig = charts.funnel.figure(result)
    names = [t.name for t in fig.data]
    assert "95% limits" in names and "99.8% limits" in names
    # Centred on the pooled value: the network mean, not a "target".
    assert any(n.startswith("network mean") for n in names)
    assert not any(n.startswith("target") for n in names)
    units = [t for t in fig.data if t.mode and "markers" in t.mode]
    assert sum(len(t.x) for t in units) == 8


def test_a_goal_is_its_own_line_and_units_take_the_spc_colours_of_the_better_direction():
    from careloop.charts._spc_look import STATUS_COLOURS

    result = quiet(PROPORTIONS, **PROP_ARGS)
    flagged = result.units[result.units["flag"] != "within"]
    assert len(flagged)  # the data set has units beyond the limits
    for improvement in ("up", "down"):
        fig = charts.funnel.figure(result, improvement=improvement, goal=0.9)
        names = [t.name for t in fig.data]
        assert any(n.startswith("network mean") for n in names)
        assert f"target {0.9 * result.multiply:.4g}" in names or "target 90.0%" in names
        checked = 0
        for trace in fig.data:
            if trace.name.startswith(("above", "below")):
                better = trace.name.startswith("above") == (improvement == "up")
                shades = charts.funnel.IMPROVEMENT if better else charts.funnel.CONCERN
                outer = trace.name.endswith("99.8%")
                assert trace.marker.color == shades[1 if outer else 0], (improvement, trace.name)
                checked += 1
        assert checked == 2  # one unit above the 95% limit, one below
    # The full colours are the SPC charts' Making Data Count improvement and concern.
    assert charts.funnel.IMPROVEMENT[1] == STATUS_COLOURS["improvement"]
    assert charts.funnel.CONCERN[1] == STATUS_COLOURS["concern"]
