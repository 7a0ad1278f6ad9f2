"""careloop.charts.spc: what the rendered SPC charts actually contain.

The SVGs are rendered for real with vl-convert and read back mark by mark
(tests/charts/_svg_marks.py); the PNGs are decoded with Pillow. Charts come
from careloop.analysis.spc.qic on qicharts2's data (../shared/data/qicharts2
and qicharts2_cases: anhoej/qicharts2 commit 1b9487ec, see that folder's
README) and from hand-made points whose signals are known.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from careloop.analysis import spc
from careloop.analysis.spc import Annotation, SpcChart
from careloop.charts import spc as spc_charts
from careloop.charts.spc import SIGMA_SIGNAL, STATUS_COLOURS
from careloop.core.errors import InputError
from tests.charts._svg_marks import count_items, mark_groups, texts


@pytest.fixture(scope="module")
def montgomery_p(shared_data: Path) -> SpcChart:
    """Montgomery Example 7.1 as in the issue: p chart, exclude 15 and 23, part after 30."""
    d = pd.read_csv(shared_data / "qicharts2" / "tbl_07.03.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spc.SpcWarning)
        return spc.qic(
            "count", n="size", x="sample", data=d, chart="p", exclude=[15, 23], part=[30],
            title="Montgomery Example 7.1", ylab="proportion", xlab="sample",
        )  # fmt: skip


def hand_chart(
    y: list[float], *, runs_signal: bool = False, target: float | None = None
) -> SpcChart:
    """A one-part I-like chart with CL 10 and limits 7 and 13, signals as the values say."""
    n = len(y)
    yy = np.array(y, dtype=float)
    points = pd.DataFrame(
        {
            "x": np.arange(1, n + 1), "y": yy, "n": np.nan, "cl": 10.0, "ucl": 13.0, "lcl": 7.0,
            "part": 1, "include": True, "sigma_signal": (yy > 13) | (yy < 7),
            "runs_signal": runs_signal, "longest_run": 3.0, "longest_run_max": 6.0,
            "n_crossings": 4.0, "n_crossings_min": 2.0,
        }
    )  # fmt: skip
    if target is not None:
        points["target"] = target
    return SpcChart(chart_type="i", points=points, title="hand", target=target)


ANNOTATIONS = [
    Annotation(12, "PDSA 1: checklist", "pdsa"),
    Annotation(30.5, "Deployed: new protocol", "deployment"),
    Annotation(45, "Audit", "note"),
]


# --------------------------------------------------------------------------
# SVG
# --------------------------------------------------------------------------


def test_svg_of_a_p_chart_with_parts_has_every_point_line_and_label(montgomery_p):
    svg = spc_charts.svg(montgomery_p, annotations=ANNOTATIONS)
    assert svg.startswith("<svg")
    # 94 subgroups (Montgomery table 7.3), each a point symbol
    assert count_items(svg, "points", "path") == 94
    # two parts: the centre line and both limits are broken at the phase change
    assert len(mark_groups(svg, "centre")) == 2
    assert len(mark_groups(svg, "limits_upper")) == 2
    assert len(mark_groups(svg, "limits_lower")) == 2
    assert mark_groups(svg, "centre_runs_signal") == []  # no runs signal in either part
    assert all('stroke-dasharray="2,2"' in g for g in mark_groups(svg, "limits_upper"))
    assert texts(svg, "part_labels") == ["Part 1", "Part 2"]
    # the last part's limits as qicharts2 computes them for Example 7.1
    # (issue 6: part 2 CL 0.109687, UCL 0.242270, LCL 0)
    assert texts(svg, "limit_labels") == ["UCL 0.2423", "CL 0.1097", "LCL 0"]
    assert count_items(svg, "annotations", "line") == 3
    assert texts(svg, "annotation_labels") == [a.label for a in ANNOTATIONS]


def test_points_outside_the_limits_are_red_and_excluded_ones_hollow(montgomery_p):
    svg = spc_charts.svg(montgomery_p)
    group = mark_groups(svg, "points")[0]
    items = re.findall(r"<path\b[^>]*>", group)
    red = [p for p in items if f'stroke="{SIGMA_SIGNAL}"' in p]
    # qicharts2 counts 3 points outside the limits in part 1 (samples 15, 21, 23);
    # 15 and 23 are excluded, so drawn hollow (white fill)
    assert montgomery_p.summary()["sigma_signal"].tolist() == [3, 0]
    assert len(red) == 3
    assert sum('fill="white"' in p for p in red) == 2


def test_runs_signal_makes_the_centre_line_dashed_and_red():
    chart = hand_chart([11, 11.5, 12, 11, 12.5, 11, 11.2, 12.1, 11.7, 11.3], runs_signal=True)
    svg = spc_charts.svg(chart)
    assert mark_groups(svg, "centre") == []
    (signal,) = mark_groups(svg, "centre_runs_signal")
    assert 'stroke-dasharray="6,4"' in signal and 'stroke="#d7301f"' in signal
    assert "runs signal" in svg  # the subtitle says why the line is dashed


def test_target_line_and_label_are_drawn():
    chart = hand_chart([9, 10, 11, 10, 9, 14], target=8.5)
    svg = spc_charts.svg(chart)
    assert len(mark_groups(svg, "target")) == 1
    assert "target 8.5" in texts(svg, "limit_labels")
    # one point beyond UCL 13
    group = mark_groups(svg, "points")[0]
    assert group.count(f'stroke="{SIGMA_SIGNAL}"') == 1


def test_run_chart_has_no_limits():
    d = pd.DataFrame({"y": [3, 5, 4, 6, 5, 7, 6, 8, 7, 9, 8, 10]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spc.SpcWarning)
        chart = spc.qic("y", data=d, chart="run")
    svg = spc_charts.svg(chart)
    assert mark_groups(svg, "limits_upper") == [] and mark_groups(svg, "limits_lower") == []
    assert count_items(svg, "points", "path") == 12
    assert "no control limits" in svg


def test_dates_and_categories_on_the_x_axis(shared_data):
    h = pd.read_csv(shared_data / "qicharts2_cases" / "hospital_infections.csv")
    one = h[(h["hospital"] == "AHH") & (h["infection"] == "BAC")]
    chart = spc.qic("n", n="days", x="month", data=one, chart="u", multiply=10_000)
    svg = spc_charts.svg(chart, annotations=[Annotation("2015-06-01", "PDSA 1", "pdsa")])
    assert count_items(svg, "points", "path") == 24
    assert texts(svg, "annotation_labels") == ["PDSA 1"]
    cats = pd.DataFrame({"ward": list("ABCDEFGHIJ"), "y": [5, 6, 5, 7, 6, 5, 8, 6, 5, 6]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spc.SpcWarning)
        cat_chart = spc.qic("y", x="ward", data=cats, chart="i")
    cat_svg = spc_charts.svg(cat_chart, annotations=[Annotation("D", "change", "note")])
    assert count_items(cat_svg, "points", "path") == 10
    assert count_items(cat_svg, "annotations", "line") == 1


def test_making_data_count_colours(shared_data):
    d = pd.read_csv(shared_data / "qicharts2" / "tbl_06.07.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spc.SpcWarning)
        chart = spc.qic("cost", x="weeks", data=d, chart="i", rules=("anhoej", "nhs"),
                        improvement="down")  # fmt: skip
    spec = spc_charts.vegalite(chart)
    points_layer = next(layer for layer in spec["layer"] if layer["name"] == "points")
    domain = points_layer["encoding"]["color"]["scale"]["domain"]
    expected = {
        {"common_cause": "common cause", "special_cause_improvement": "improvement",
         "special_cause_concern": "concern", "special_cause_neither": "special cause"}[v]
        for v in chart.points["variation"].dropna()
    }  # fmt: skip
    assert set(domain) == expected
    svg = spc_charts.svg(chart)
    group = mark_groups(svg, "points")[0]
    n_improvement = int((chart.points["variation"] == "special_cause_improvement").sum())
    assert group.count(f'stroke="{STATUS_COLOURS["improvement"]}"') == n_improvement


# --------------------------------------------------------------------------
# PNG
# --------------------------------------------------------------------------


def test_png_decodes_with_the_expected_size_and_ink(montgomery_p, tmp_path):
    out = tmp_path / "p.png"
    png = spc_charts.png(montgomery_p, path=out, annotations=ANNOTATIONS, width=640, height=300)
    assert out.read_bytes() == png
    image = Image.open(io.BytesIO(png)).convert("RGB")
    # scale 2 of a 640 × 300 plot plus axes, title and legend
    assert 1280 < image.width < 1700 and 600 < image.height < 1000
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    white = (pixels > 245).all(axis=1)
    assert 0.02 < 1 - white.mean() < 0.5  # ink, but mostly paper
    # some pixels in the signal red (#d7301f = 215, 48, 31)
    red = (np.abs(pixels - [215, 48, 31]) < 25).all(axis=1)
    assert red.sum() > 20


def test_a_chart_is_drawn_with_one_call_per_form_and_the_png_written_to_its_path(
    montgomery_p, tmp_path
):
    svg = spc_charts.svg(montgomery_p, annotations=ANNOTATIONS)
    assert count_items(svg, "points", "path") == 94
    png = spc_charts.png(montgomery_p, tmp_path / "m.png")
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert (tmp_path / "m.png").read_bytes() == png
    fig = spc_charts.figure(montgomery_p, annotations=ANNOTATIONS)
    assert fig.layout.title.text == "Montgomery Example 7.1"


# --------------------------------------------------------------------------
# Plotly
# --------------------------------------------------------------------------


def test_plotly_figure_breaks_lines_at_parts_and_colours_signals(montgomery_p):
    fig = spc_charts.figure(montgomery_p, annotations=ANNOTATIONS)
    centre = [t for t in fig.data if t.name == "centre line"]
    assert len(centre) == 2
    assert [t.line.dash for t in centre] == ["solid", "solid"]
    limits = [t for t in fig.data if t.name == "limits"]
    assert len(limits) == 4 and all(t.line.dash == "dot" for t in limits)
    outside = next(t for t in fig.data if t.name == "outside limits")
    assert list(outside.x) == [21.0]
    excluded = next(t for t in fig.data if t.name == "excluded, outside limits")
    assert sorted(excluded.x) == [15.0, 23.0] and excluded.marker.color == "white"
    assert len(fig.layout.shapes) == 3  # one vertical line per annotation
    labels = {a.text for a in fig.layout.annotations}
    assert {"PDSA 1: checklist", "Deployed: new protocol", "Audit", "Part 1", "Part 2"} <= labels
    dashes = {s.line.dash for s in fig.layout.shapes}
    assert dashes == {"dash", "solid", "dot"}


def test_plotly_runs_signal_centre_line_is_dashed():
    fig = spc_charts.figure(hand_chart([11, 12, 11, 12, 11, 12], runs_signal=True, target=9))
    (centre,) = [t for t in fig.data if t.name == "centre line (runs signal)"]
    assert centre.line.dash == "dash" and centre.line.color == "#d7301f"
    assert any(t.name == "target" for t in fig.data)


# --------------------------------------------------------------------------
# Small multiples
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hospitals(shared_data: Path) -> spc.SpcFacets:
    h = pd.read_csv(shared_data / "qicharts2_cases" / "hospital_infections.csv")
    return spc.qic_by(h[h["infection"] == "BAC"], by="hospital", y="n", n="days", x="month",
                      chart="u", multiply=10_000)  # fmt: skip


def test_facets_svg_has_one_panel_per_site(hospitals, tmp_path):
    per_site = {"AHH": [Annotation("2015-06-01", "PDSA 1", "pdsa")]}
    svg = spc_charts.facets_svg(hospitals, annotations=per_site, columns=3, title="Bacteraemia",
                        path=tmp_path / "f.svg")  # fmt: skip
    assert (tmp_path / "f.svg").read_text() == svg
    assert len(hospitals) == 6
    for i in range(1, 7):
        assert count_items(svg, f"facet{i}_points", "path") == 24
    assert texts(svg, "facet1_annotation_labels") == ["PDSA 1"]
    assert mark_groups(svg, "facet2_annotations") == []
    for label in hospitals:
        assert f">{label}<" in svg


def test_facets_png_and_plotly(hospitals):
    png = spc_charts.facets_png(hospitals, columns=3)
    image = Image.open(io.BytesIO(png))
    assert image.width > image.height > 400  # two rows of three
    fig = spc_charts.facets_figure(
        hospitals, columns=3, annotations=[Annotation("2016-01-01", "note")]
    )
    assert [a.text for a in fig.layout.annotations][:6] == list(hospitals)
    assert len(fig.layout.shapes) == 6  # the shared annotation in every panel


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_bad_annotations_and_empty_facets_raise_input_errors(montgomery_p):
    with pytest.raises(InputError, match="kind"):
        Annotation(3, "x", "meeting")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Annotation objects"):
        spc_charts.svg(montgomery_p, annotations=[(3, "x")])  # type: ignore[list-item]
    with pytest.raises(InputError, match="No charts"):
        spc_charts.facets_svg({})
    with pytest.raises(InputError, match="lack the column"):
        spc_charts.svg(SpcChart(chart_type="i", points=pd.DataFrame({"x": [1], "y": [2]})))
