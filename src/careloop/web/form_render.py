"""Turning a capture form into what the entry page shows: inputs, values, errors.

Only presentation lives here (which HTML input a field becomes, how posted
form data maps back to values); validation, branching and calculations are
the capture layer's (:func:`careloop.capture.validate_response`), run again on
the server whatever the page did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from careloop.capture import FieldType, Form, read_forms_yaml, validate_response
from careloop.capture.answers import answer_text
from careloop.capture.native_yaml import FORMAT
from careloop.core.errors import ErrorDetail
from careloop.core.i18n import N_, Translator
from careloop.web.entry_words import field_problem, range_hint

TEXT_INPUTS = {
    "integer": ("text", "numeric"),
    "number": ("text", "decimal"),
    "date_ymd": ("date", None),
    "date_dmy": ("date", None),
    "date_mdy": ("date", None),
    "time": ("time", None),
    # A browser's time input has no MM:SS and drops seconds unless stepped: plain text.
    "time_hh_mm_ss": ("text", None),
    "time_mm_ss": ("text", None),
    "email": ("email", None),
    "phone": ("tel", None),
}


@dataclass(frozen=True)
class Option:
    code: str
    label: str
    selected: bool


@dataclass(frozen=True)
class InputView:
    """One field as the page renders it."""

    name: str
    kind: str
    """text, textarea, select, radio, checkbox, yesno, calc, descriptive, slider."""
    label: str
    note: str
    section_header: str
    required: bool
    value: str
    options: tuple[Option, ...]
    html_type: str
    inputmode: str | None
    min_value: str | None
    max_value: str | None
    hidden: bool
    error: str | None
    has_logic: bool
    slider_labels: tuple[str, ...] = ()
    """A slider's left, middle and right labels."""
    hint: str = ""
    """The range an answer must lie in, said before it is broken (staff pages)."""
    read_value: str = ""
    """The answer in words (a choice's label, not its code), for the read-only view."""

    @property
    def target(self) -> str:
        """The id an error summary links to: the input, or a group's first choice."""
        if self.kind in ("radio", "checkbox") and self.options:
            return f"f-{self.name}-0"
        return f"f-{self.name}"


@dataclass(frozen=True)
class SectionView:
    """A heading and the fields under it, hidden together when every field is."""

    heading: str
    inputs: tuple[InputView, ...]

    @property
    def hidden(self) -> bool:
        """Every field of the section is hidden by branching logic."""
        return all(i.hidden for i in self.inputs)


@dataclass(frozen=True)
class FormView:
    """A whole form for the entry page."""

    name: str
    title: str
    inputs: tuple[InputView, ...]
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sections(self) -> tuple[SectionView, ...]:
        """The inputs grouped under their section headings (the first may have none)."""
        out: list[SectionView] = []
        for i in self.inputs:
            if i.section_header or not out:
                out.append(SectionView(i.section_header, (i,)))
            else:
                out[-1] = SectionView(out[-1].heading, (*out[-1].inputs, i))
        return tuple(out)

    @property
    def problems(self) -> tuple[tuple[str, str], ...]:
        """(link target, message) of each shown field with an error, in form order."""
        return tuple((i.target, i.error) for i in self.inputs if i.error and not i.hidden)


def form_from_definition(definition: Mapping[str, Any]) -> Form:
    """A Form from its native definition (what a PROM invitation carries)."""
    text = json.dumps({"format": FORMAT, "forms": [dict(definition)]})
    return read_forms_yaml(text, name="form definition").forms[0]


def values_from_post(form: Form, data: Mapping[str, list[str]]) -> dict[str, object]:
    """The values of a posted entry form (checkboxes give lists of codes)."""
    values: dict[str, object] = {}
    for f in form.fields:
        if f.type in (FieldType.DESCRIPTIVE, FieldType.CALC, FieldType.FILE):
            continue
        posted = [v for v in data.get(f.name, []) if v != ""]
        if f.type is FieldType.CHECKBOX:
            values[f.name] = posted
        elif posted:
            values[f.name] = posted[-1]
    return values


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


_KINDS = {
    FieldType.TEXT: "text",
    FieldType.NOTES: "textarea",
    FieldType.DROPDOWN: "select",
    FieldType.RADIO: "radio",
    FieldType.CHECKBOX: "checkbox",
    FieldType.YESNO: "radio",
    FieldType.TRUEFALSE: "radio",
    FieldType.CALC: "calc",
    FieldType.DESCRIPTIVE: "descriptive",
    FieldType.SLIDER: "slider",
    # careloop keeps no files: the field shows as text, as a reminder.
    FieldType.FILE: "descriptive",
}
"""Which input each field type becomes."""


def build_view(
    form: Form,
    values: Mapping[str, object],
    *,
    errors: list[ErrorDetail] | None = None,
    title: str | None = None,
    hints: bool = False,
) -> FormView:
    """The page model of ``form`` filled with ``values``, showing ``errors`` by field.

    With ``hints`` (the care team's pages), each field with a range says it
    under its label, and a calculated category shows its words beside its code.
    """
    result = validate_response(form, values)
    shown_values = {**values, **dict(result.values)}
    by_field = {e.location.rsplit(":", 1)[-1]: e.message for e in (errors or [])}
    loose = tuple(
        e.message for e in (errors or []) if e.location not in {f.name for f in form.fields}
    )
    inputs = []
    for f in form.fields:
        raw = shown_values.get(f.name)
        chosen = {str(v) for v in raw} if isinstance(raw, (list, tuple)) else {_text(raw)}
        kind = _KINDS[f.type]
        options: tuple[Option, ...]
        if f.type in (FieldType.YESNO, FieldType.TRUEFALSE):
            labels = (
                (N_("Yes"), N_("No")) if f.type is FieldType.YESNO else (N_("True"), N_("False"))
            )
            options = (Option("1", labels[0], "1" in chosen), Option("0", labels[1], "0" in chosen))
        else:
            options = tuple(Option(c.code, c.label, c.code in chosen) for c in f.choices)
        base = (f.validation or "").split("_")[0] if f.validation else ""
        html_type, inputmode = TEXT_INPUTS.get(
            f.validation or "", TEXT_INPUTS.get(base, ("text", None))
        )
        if (f.validation or "").startswith("number_"):
            html_type, inputmode = "text", "decimal"
        low, high = f.min_value, f.max_value
        if f.type is FieldType.SLIDER:
            # No default position: an untouched slider is an unanswered question, so the
            # page shows an empty number box (and, with JavaScript, a slider beside it).
            html_type, inputmode = "number", "numeric"
            low, high = low or "0", high or "100"
        value = _text(raw) if kind != "checkbox" else ""
        inputs.append(
            InputView(
                name=f.name,
                kind=kind,
                label=(f.label or f.name)
                + (
                    " (a file upload: careloop does not store files)"
                    if f.type is FieldType.FILE
                    else ""
                ),
                note=f.note,
                section_header=f.section_header,
                required=f.required,
                value=answer_text(f, value) if hints and kind == "calc" else value,
                options=options,
                html_type=html_type,
                inputmode=inputmode,
                min_value=low if html_type != "text" else None,
                max_value=high if html_type != "text" else None,
                hidden=f.name in result.hidden,
                error=by_field.get(f.name),
                has_logic=f.branching_logic is not None,
                slider_labels=f.slider_labels,
                hint=range_hint(f) if hints else "",
                read_value=answer_text(f, raw),
            )
        )
    return FormView(form.name, title or form.title or form.name, tuple(inputs), loose)


def live_check(
    form: Form, values: Mapping[str, object], *, words: Translator | None = None
) -> dict[str, Any]:
    """What the page updates as someone types: hidden fields, calculated values, errors.

    With ``words`` (a patient's page), each error is a plain sentence in their language
    that names the question (:func:`patient_problems`); without, a plain sentence for the
    care team (:func:`~careloop.web.entry_words.field_problem`), and a calculated category
    shows its words beside its code.
    """
    result = validate_response(form, values)
    fields = {f.name: f for f in form.fields}
    calcs = {f.name: result.values.get(f.name) for f in form.fields if f.type is FieldType.CALC}
    if words is None:
        errors = {
            e.field: field_problem(fields[e.field], e.rule, e.message)
            if e.field in fields
            else e.message
            for e in result.errors
            if e.rule != "required"
        }
        return {
            "hidden": sorted(result.hidden),
            "calc": {k: answer_text(fields[k], v) for k, v in calcs.items()},
            "errors": errors,
        }
    errors = {
        e.field: _patient_words(form, e.field, e.rule, words)
        for e in result.errors
        if e.rule != "required"
    }
    return {
        "hidden": sorted(result.hidden),
        "calc": {k: _text(v) for k, v in calcs.items()},
        "errors": errors,
    }


PLEASE_ANSWER = N_("Please answer: {question}")
PLEASE_CHOOSE = N_("Please choose one of the answers to: {question}")
PLEASE_NUMBER_BETWEEN = N_("Please give a number from {low} to {high} for: {question}")
PLEASE_NUMBER = N_("Please give a whole number for: {question}")
PLEASE_DATE = N_("Please give a date that is not in the future for: {question}")
PLEASE_CHECK = N_("Please check your answer to: {question}")
SOME_ANSWERS = N_("Some answers need a look. Nothing has been sent yet.")


def _patient_words(form: Form, name: str, rule: str, words: Translator) -> str:
    """One problem with one answer, said to a patient: what to do and which question,
    never a rule name or a field's id."""
    known = {f.name: f for f in form.fields}
    field = known.get(name)
    question = words.gettext(field.label or field.name) if field else ""
    if field is None:
        return words.gettext(PLEASE_CHECK).format(question=words.gettext(form.title or form.name))
    if rule == "required":
        return words.gettext(PLEASE_ANSWER).format(question=question)
    if rule == "choice":
        return words.gettext(PLEASE_CHOOSE).format(question=question)
    validation = field.validation or ""
    if field.type is FieldType.SLIDER or validation.startswith(("integer", "number")):
        low = field.min_value or ("0" if field.type is FieldType.SLIDER else None)
        high = field.max_value or ("100" if field.type is FieldType.SLIDER else None)
        if low is not None and high is not None and not _is_date(low) and not _is_date(high):
            return words.gettext(PLEASE_NUMBER_BETWEEN).format(
                low=low, high=high, question=question
            )
        return words.gettext(PLEASE_NUMBER).format(question=question)
    if validation.startswith("date"):
        return words.gettext(PLEASE_DATE).format(question=question)
    return words.gettext(PLEASE_CHECK).format(question=question)


def _is_date(bound: str) -> bool:
    return bound == "today" or bound.count("-") == 2


def patient_problems(
    form: Form,
    values: Mapping[str, object],
    words: Translator,
    *,
    refused: list[ErrorDetail] | None = None,
) -> list[ErrorDetail]:
    """Every problem with a patient's answers, one per question, in their words.

    Checked again here (the server's refusal says which rule failed, in staff words);
    a field the server refused for a reason this check cannot see (an answer on another
    form) still gets a plain "please check" line, so nothing the server refused is lost.
    """
    result = validate_response(form, values)
    said = {e.field: _patient_words(form, e.field, e.rule, words) for e in result.errors}
    for detail in refused or []:
        name = detail.location.rsplit(":", 1)[-1]
        said.setdefault(name, _patient_words(form, name, "", words))
    order = {f.name: i for i, f in enumerate(form.fields)}
    return [
        ErrorDetail(name, message)
        for name, message in sorted(said.items(), key=lambda kv: order.get(kv[0], len(order)))
    ]
