"""Stored answers in words: a choice's label rather than its code, a category's name.

The care team reads answers on the timeline and on the read-only view of a
form; they should see "Ulcerative colitis", not ``2``. Codes stay what is
stored and exported; these functions only say them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from careloop.capture.forms import Field, FieldType, Form

_YES_NO = {"1": "Yes", "0": "No"}
_TRUE_FALSE = {"1": "True", "0": "False"}
# REDCap projects name a calculated category's codes in its label, e.g.
# "PUCAI activity (0 remission, 1 mild, 2 moderate, 3 severe)": a calc field has no choices.
_LEGEND = re.compile(r"\(((?:-?\d+(?:\.\d+)?\s+[^,()]+,\s*)+-?\d+(?:\.\d+)?\s+[^,()]+)\)")
_LEGEND_ITEM = re.compile(r"^(-?\d+(?:\.\d+)?)\s+(.+)$")


def calc_legend(field: Field) -> dict[str, str]:
    """Code → words of a calculated category whose label lists them; empty otherwise."""
    if field.type is not FieldType.CALC:
        return {}
    found = _LEGEND.search(field.label or "")
    if found is None:
        return {}
    legend: dict[str, str] = {}
    for item in found.group(1).split(","):
        match = _LEGEND_ITEM.match(item.strip())
        if match:
            legend[match.group(1)] = match.group(2).strip()
    return legend


def _codes(field: Field) -> dict[str, str]:
    if field.type is FieldType.YESNO:
        return _YES_NO
    if field.type is FieldType.TRUEFALSE:
        return _TRUE_FALSE
    return {c.code: c.label for c in field.choices}


def answer_text(field: Field, value: object) -> str:
    """``value`` of ``field`` in words: choices by label, a category as "mild (1)".

    Empty for no answer; a code that is not among the choices is shown as it is.
    """
    if value is None or value == "" or value == [] or value == ():
        return ""
    if field.type is FieldType.CALC:
        text = str(value)
        words = calc_legend(field).get(text)
        return f"{words} ({text})" if words else text
    codes = _codes(field)
    if isinstance(value, (list, tuple)):
        return "; ".join(codes.get(str(v), str(v)) for v in value)
    if codes:
        return codes.get(str(value), str(value))
    return str(value)


KEY_VALUES = 5
"""How many answers the timeline shows for each response."""


def key_values(
    form: Form, values: Mapping[str, object], *, limit: int = KEY_VALUES
) -> tuple[tuple[str, str], ...]:
    """The answers that say most about a response, as (label, words), at most ``limit``.

    Calculated results first (scores, categories, BMI: what the answers add up
    to), then answers with a standard code (what the registry measures), in form
    order; only answers that were given.
    """
    calcs = [f for f in form.fields if f.type is FieldType.CALC]
    coded = [f for f in form.fields if f.code is not None and f.type is not FieldType.CALC]
    out: list[tuple[str, str]] = []
    for f in (*calcs, *coded):
        text = answer_text(f, values.get(f.name))
        if text and len(out) < limit:
            out.append((f.label or f.name, text))
    return tuple(out)
