"""What the care team's entry page says about a field: its range, and what is wrong with it.

The capture layer's messages name rules (``[rule: required]``) and forms by
their internal names, which is right for an import log and wrong for a page.
Here each problem becomes one short sentence that names the question by its
label and says what to do, in the style of the GOV.UK design system's error
messages ("Enter the weight", "Weight must be between 2 and 250 kg").
"""

from __future__ import annotations

import re
from datetime import date

from careloop.capture.forms import Field, FieldType, Form
from careloop.core.errors import ErrorDetail

_RULE = re.compile(r"\s*\[rule: (\w+)\]$")
_CHOICE_TYPES = (FieldType.RADIO, FieldType.DROPDOWN, FieldType.YESNO, FieldType.TRUEFALSE)


def _day(text: str) -> str:
    """A bound as people write it: ``2000-01-01`` → 1 January 2000, ``today`` → today."""
    if text in ("today", "now"):
        return "today"
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    return f"{day.day} {day:%B %Y}"


def _is_date(field: Field) -> bool:
    return (field.validation or "").startswith(("date", "datetime"))


def _unit(field: Field) -> str:
    return f" {field.unit}" if field.unit and not _is_date(field) else ""


def _bounds(field: Field) -> tuple[str | None, str | None]:
    low, high = field.min_value, field.max_value
    if field.type is FieldType.SLIDER:
        low, high = low or "0", high or "100"
    if _is_date(field):
        return (_day(low) if low else None), (_day(high) if high else None)
    return low, high


def range_hint(field: Field) -> str:
    """The range an answer must lie in, e.g. "Between 2 and 250 kg"; empty without one."""
    low, high = _bounds(field)
    unit = _unit(field)
    if _is_date(field):
        if low and high:
            return f"From {low} to {high}"
        return f"On or after {low}" if low else f"On or before {high}" if high else ""
    if low and high:
        return f"Between {low} and {high}{unit}"
    return f"{low}{unit} or more" if low else f"{high}{unit} or less" if high else ""


def _subject(field: Field) -> str:
    """The question's label as the object of a sentence: "Enter the weight"."""
    label = (field.label or field.name).rstrip(" ?:")
    # Keep capitals that mean something (PUCAI, BMI): lower only a plain first word.
    if len(label) > 1 and label[0].isupper() and not label[1].isupper():
        label = label[0].lower() + label[1:]
    return label


def _out_of_range(field: Field, name: str) -> str:
    low, high = _bounds(field)
    unit = _unit(field)
    if _is_date(field):
        if low and high:
            return f"{name} must be between {low} and {high}"
        return f"{name} must be on or after {low}" if low else f"{name} must be {high} or earlier"
    if low and high:
        return f"{name} must be between {low} and {high}{unit}"
    return f"{name} must be {low}{unit} or more" if low else f"{name} must be {high}{unit} or less"


def field_problem(field: Field, rule: str, message: str) -> str:
    """One problem with one field as a short sentence that says what to do."""
    name = (field.label or field.name).rstrip(" ?:")
    subject = _subject(field)
    if rule == "required":
        if field.type is FieldType.CHECKBOX:
            return f"Choose at least one answer for {subject}"
        if field.type in _CHOICE_TYPES:
            return f"Choose an answer for {subject}"
        return f"Enter {subject}"
    if rule in ("min", "max"):
        return _out_of_range(field, name)
    if rule == "choice":
        return f"Choose one of the answers for {subject}"
    text = _RULE.sub("", message).strip()
    if text.startswith("expected "):
        return f"Enter {subject} as {text.removeprefix('expected ')}"
    if text:
        return f"{name}: {text}"
    return f"Check {subject}"


def staff_problems(form: Form, refused: list[ErrorDetail]) -> list[ErrorDetail]:
    """The server's refusal of a save as plain sentences, located at each field's name.

    Details located elsewhere (not at one of the form's fields) are left out:
    the page says those itself.
    """
    fields = {f.name: f for f in form.fields}
    out: list[ErrorDetail] = []
    for detail in refused:
        name = detail.location.rsplit(":", 1)[-1]
        if name not in fields:
            continue
        found = _RULE.search(detail.message)
        rule = found.group(1) if found else ""
        out.append(ErrorDetail(name, field_problem(fields[name], rule, detail.message)))
    return out
