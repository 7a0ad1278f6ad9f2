"""Render Vega-Lite specifications to SVG and PNG without a browser.

Plotly's static export (kaleido) needs a Chrome build; vl-convert renders
Vega-Lite with an embedded JavaScript engine and resvg, so charts can be
written to files on a server, in CI and from the command line. The figures'
interactive versions stay Plotly; their static versions are equivalent
Vega-Lite specifications built by each chart family's module. The data in a
specification are JSON-safe records (:func:`careloop.analysis._frames.records`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

VEGA_LITE_VERSION = "5.20"
"""The Vega-Lite version every static chart is compiled with (pinned for stable output)."""

SCHEMA = f"https://vega.github.io/schema/vega-lite/v{VEGA_LITE_VERSION.split('.')[0]}.json"

FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"

BASE_CONFIG: dict[str, Any] = {
    "font": FONT,
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "gridColor": "#e8e8e8"},
    "title": {"fontSize": 14, "anchor": "start"},
    "background": "white",
}


def to_svg(spec: Mapping[str, Any]) -> str:
    """Render a Vega-Lite specification to an SVG document."""
    import vl_convert

    return str(vl_convert.vegalite_to_svg(dict(spec), vl_version=VEGA_LITE_VERSION))


def to_png(spec: Mapping[str, Any], *, scale: float = 2.0) -> bytes:
    """Render a Vega-Lite specification to PNG bytes (``scale`` × the spec's size)."""
    import vl_convert

    return bytes(vl_convert.vegalite_to_png(dict(spec), vl_version=VEGA_LITE_VERSION, scale=scale))


def write_text(path: str | Path | None, text: str) -> str:
    """Write ``text`` to ``path`` when given; return it either way."""
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def write_bytes(path: str | Path | None, data: bytes) -> bytes:
    """Write ``data`` to ``path`` when given; return it either way."""
    if path is not None:
        Path(path).write_bytes(data)
    return data
