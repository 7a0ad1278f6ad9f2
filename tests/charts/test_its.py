"""careloop.charts.its: what the rendered interrupted time series actually contain.

The Sicily smoking-ban series (tests/data/its_sicily), fitted as in
tests/analysis/its/test_segmented_regression.py whose numbers are checked
there against R; the SVG is rendered with vl-convert and read mark by mark.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from careloop import charts
from tests.analysis.its.test_segmented_regression import SEASON, TUTORIAL, fit
from tests.charts._svg_marks import count_items, mark_groups, texts


@pytest.fixture(scope="module")
def sicily(test_data: Path) -> pd.DataFrame:
    return pd.read_csv(test_data / "its_sicily" / "sicily.csv")


def test_plotly_figure_has_observed_fitted_and_dashed_counterfactual(sicily):
    result, _ = fit(sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    fig = charts.its.figure(result, per=100_000)
    names = [t.name for t in fig.data]
    assert "observed" in names and "fitted" in names and "counterfactual" in names
    observed = next(t for t in fig.data if t.name == "observed")
    assert len(observed.x) == 59
    assert observed.y[0] == pytest.approx(728 / 379875.3 * 1e5)
    cf = next(t for t in fig.data if t.name == "counterfactual")
    assert cf.line.dash == "dash"
    assert len(cf.x) == 24  # the last pre-intervention point and the 23 after
    fitted = [t for t in fig.data if t.name == "fitted"]
    assert len(fitted) == 2  # broken at the intervention
    assert "per 100,000 stdpop" in fig.layout.yaxis.title.text


def test_svg_and_png_render_without_a_browser(sicily, tmp_path):
    result, _ = fit(sicily, **TUTORIAL, family="quasipoisson", seasonality=SEASON)
    svg = charts.its.svg(result, tmp_path / "its.svg", per=100_000)
    assert svg.startswith("<svg") and (tmp_path / "its.svg").read_text() == svg
    # 59 observed points, 2 fitted segments, 1 dashed counterfactual, 1 intervention rule
    assert count_items(svg, "observed", "path") == 59
    assert len(mark_groups(svg, "fitted")) == 2
    assert len(mark_groups(svg, "counterfactual")) == 1
    assert 'stroke-dasharray="6,4"' in mark_groups(svg, "counterfactual")[0]
    assert count_items(svg, "intervention", "line") == 1
    assert texts(svg, "intervention_label") == ["smokban"]
    assert "counterfactual" in svg  # the subtitle explains the lines
    png = charts.its.png(result, tmp_path / "its.png", per=100_000)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.width > 1000 and image.height > 500
    pixels = np.asarray(image.convert("L"))
    assert pixels.min() < 100 and pixels.max() > 240  # ink on paper
