"""NHS Making Data Count icons, drawn as small inline SVGs with their text alternatives.

One **variation** icon says what the latest point of a chart's latest phase
shows: common cause (grey), or a special cause of improvement (blue), of
concern (orange) or of neither (purple, when the measure has no better
direction), with H or L for the high or low side of the centre line. One
**assurance** icon says whether the process will meet its target: P
(consistently passing: the target lies beyond the limits on the bad side),
F (consistently failing: beyond the limits on the good side), or ? (hit and
miss: the target lies between the limits). The shapes follow NHS England's
*Making Data Count* (2019) guide: a circle holding the letter, the series'
recent shape drawn as dots for variation. Hand-drawn because the icons are
three dozen SVG elements; no icon font or image request is needed.
"""

from __future__ import annotations

from html import escape

from careloop.charts._spc_look import STATUS_COLOURS

__all__ = ["ASSURANCE_TEXT", "VARIATION_TEXT", "assurance_svg", "variation_svg"]

VARIATION_TEXT: dict[str, str] = {
    "common_cause": "Common cause variation: no sign of change",
    "improvement_high": "Special cause variation: improvement, higher values",
    "improvement_low": "Special cause variation: improvement, lower values",
    "concern_high": "Special cause variation: concern, higher values",
    "concern_low": "Special cause variation: concern, lower values",
    "neither_high": "Special cause variation: higher values",
    "neither_low": "Special cause variation: lower values",
}
"""The text alternative of each variation icon."""

ASSURANCE_TEXT: dict[str, str] = {
    "pass": "Assurance: the target will be met consistently",
    "fail": "Assurance: the target will be missed consistently unless something changes",
    "hit_or_miss": "Assurance: hit and miss; the target lies within the limits",
    "none": "No assurance: the measure has no target, or the chart no limits",
}
"""The text alternative of each assurance icon."""

_GREY = "#7f7f7f"
_COLOUR = {
    "common": _GREY,
    "improvement": STATUS_COLOURS["improvement"],
    "concern": STATUS_COLOURS["concern"],
    "neither": STATUS_COLOURS["special cause"],
}
_ASSURANCE_COLOUR = {
    "pass": STATUS_COLOURS["improvement"],
    "fail": STATUS_COLOURS["concern"],
    "hit_or_miss": _GREY,
    "none": "#c8c8c8",
}
_ASSURANCE_LETTER = {"pass": "P", "fail": "F", "hit_or_miss": "?", "none": "–"}
# The recent run of points inside a variation icon: flat, rising to high, falling to low.
_DOTS = {
    "common": ((9, 22), (13, 20), (17, 23), (21, 21), (25, 22)),
    "high": ((9, 25), (13, 24), (17, 20), (21, 17), (25, 16)),
    "low": ((9, 18), (13, 19), (17, 23), (21, 26), (25, 27)),
}


def _frame(colour: str, label: str, inner: str, css: str) -> str:
    text = escape(label)
    return (
        f'<svg class="mdc-icon {css}" width="34" height="34" viewBox="0 0 34 34" role="img" '
        f'aria-label="{text}" focusable="false"><title>{text}</title>'
        f'<circle cx="17" cy="17" r="15" fill="#ffffff" stroke="{colour}" stroke-width="3"/>'
        f"{inner}</svg>"
    )


def variation_svg(icon: str) -> str:
    """The variation icon ``icon`` (a key of :data:`VARIATION_TEXT`) as an inline SVG."""
    if icon not in VARIATION_TEXT:
        raise KeyError(f"unknown variation icon {icon!r}; expected one of {sorted(VARIATION_TEXT)}")
    kind, _, side = icon.partition("_")
    if icon == "common_cause":
        kind, side = "common", ""
    colour = _COLOUR[kind]
    dots = _DOTS[side or "common"]
    inner = "".join(
        f'<circle cx="{x}" cy="{y}" r="1.8" fill="{colour if i >= 3 and side else _GREY}"/>'
        for i, (x, y) in enumerate(dots)
    )
    if side:
        inner += (
            f'<text x="17" y="14" text-anchor="middle" font-family="sans-serif" '
            f'font-size="10" font-weight="bold" fill="#1f2328">{side[0].upper()}</text>'
        )
    return _frame(colour, VARIATION_TEXT[icon], inner, f"variation-{icon}")


def assurance_svg(assurance: str | None) -> str:
    """The assurance icon (``pass``, ``fail``, ``hit_or_miss``; None: no assurance)."""
    key = assurance or "none"
    if key not in ASSURANCE_TEXT:
        raise KeyError(f"unknown assurance {assurance!r}; expected pass, fail or hit_or_miss")
    inner = (
        f'<text x="17" y="22" text-anchor="middle" font-family="sans-serif" font-size="15" '
        f'font-weight="bold" fill="#1f2328">{_ASSURANCE_LETTER[key]}</text>'
    )
    return _frame(_ASSURANCE_COLOUR[key], ASSURANCE_TEXT[key], inner, f"assurance-{key}")
