"""Count the marks of a named Vega-Lite layer in an SVG rendered by vl-convert.

Vega writes each mark set as ``<g class="mark-<type> role-mark <name>_marks">``
holding one element per item: a ``<path>`` per point symbol or line, a
``<line>`` per rule, a ``<text>`` per label.
"""

from __future__ import annotations

import re


def mark_groups(svg: str, name: str) -> list[str]:
    """The inner SVG of every mark group of the layer called ``name``."""
    out = []
    for match in re.finditer(rf'<g class="mark-\w+ role-mark {re.escape(name)}_marks"[^>]*>', svg):
        start = match.end()
        depth, i = 1, start
        while depth:
            nxt_open = svg.find("<g", i)
            nxt_close = svg.find("</g>", i)
            if nxt_open != -1 and nxt_open < nxt_close:
                depth += 1
                i = nxt_open + 2
            else:
                depth -= 1
                i = nxt_close + 4
        out.append(svg[start : i - 4])
    return out


def count_items(svg: str, name: str, element: str) -> int:
    """Number of ``element`` items (path, line, text) in the layer's mark groups."""
    return sum(len(re.findall(rf"<{element}\b", g)) for g in mark_groups(svg, name))


def texts(svg: str, name: str) -> list[str]:
    """The text content of the layer's text marks."""
    found = []
    for g in mark_groups(svg, name):
        found.extend(
            re.sub(r"<[^>]+>", "", t) for t in re.findall(r"<text\b[^>]*>(.*?)</text>", g, re.S)
        )
    return found
