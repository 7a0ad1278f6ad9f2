"""Checking a dictionary: names, choices, bounds, logic and calculations, other forms' fields."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from careloop.capture.expressions import Expression, FieldRef, parse_expression
from careloop.capture.forms.model import (
    _NAME,
    _NUMBER_DP,
    ALIGNMENTS,
    CHOICE_TYPES,
    CODE_SYSTEMS,
    OMOP_DOMAINS,
    Field,
    FieldType,
    Form,
)
from careloop.core.errors import ErrorDetail, InputError, ValidationFailed

# --------------------------------------------------------------------------- checks

Locate = Callable[[str, str], str]
"""(form name, field name) → a location such as ``dict.csv:12:weight``."""


def _date_bound(text: str, validation: str) -> bool:
    low = text.lower()
    if low in ("today", "now"):
        return True
    if validation.startswith("datetime"):
        return bool(
            re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}(:[0-9]{2})?)?$", text)
        )
    return bool(re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", text))


def number_text(text: str, validation: str) -> str:
    """A number as written for ``validation``, with a decimal comma made a point.

    The comma-decimal types (``number_comma_decimal``, ``number_1dp_comma_decimal`` …)
    take ``1,5``; careloop stores, compares and computes with ``1.5``.
    """
    if validation.endswith("comma_decimal"):
        return text.replace(",", ".", 1)
    return text


def _bound_ok(text: str, field: Field) -> bool:
    v = field.validation or ""
    if field.type is FieldType.SLIDER or v == "integer":
        return bool(re.match(r"^-?[0-9]+$", text))
    if v == "number" or v == "number_comma_decimal" or _NUMBER_DP.match(v):
        try:
            value = float(number_text(text, v))
        except ValueError:
            return False
        return math.isfinite(value)
    if v.startswith("date"):
        return _date_bound(text, v)
    if v == "time":
        return bool(re.match(r"^[0-9]{2}:[0-9]{2}$", text))
    if v == "time_hh_mm_ss":
        return bool(re.match(r"^[0-9]{2}:[0-9]{2}:[0-9]{2}$", text))
    if v == "time_mm_ss":
        return bool(re.match(r"^[0-9]{2}:[0-9]{2}$", text))
    return False


@dataclass(frozen=True)
class OtherFormField:
    """A field that lives outside the forms being read, e.g. on a registered form."""

    form: str
    """The form it belongs to."""
    field: Field | None = None
    """Its definition, when known (to check ``[cb(code)]`` references against it)."""
    also_in: tuple[str, ...] = ()
    """Further forms that have a field of this name: the reference is ambiguous."""


def check_forms(
    forms: Iterable[Form],
    *,
    locate: Locate,
    other_fields: Mapping[str, OtherFormField] | None = None,
    stored: bool = False,
) -> list[ErrorDetail]:
    """Dictionary-level problems: each with the place ``locate`` gives for it.

    Checks names, duplicates across forms, choices present where needed,
    validation types fitting their field type, min/max matching the type,
    calculations on calc fields only, and every ``[field]`` or ``[cb(code)]``
    in branching logic or calculations naming a field (and option) that
    exists. Syntax errors are found earlier, by the reader that parsed them.

    A reference may name a field of another form: of the same dictionary, one
    the form lists in :attr:`Form.other_form_fields`, or one of
    ``other_fields`` (the registry's other forms). ``stored`` is for a form
    careloop stored itself, checked when it was imported: a reference it
    cannot resolve is then taken as another form's field, not an error.
    """
    forms = list(forms)
    outside = other_fields if other_fields is not None else {}
    problems: list[ErrorDetail] = []
    by_name: dict[str, Field] = {}
    for form in forms:
        if not _NAME.match(form.name):
            problems.append(
                ErrorDetail(
                    locate(form.name, form.fields[0].name if form.fields else ""),
                    f"form name {form.name!r} must be lower-case letters, digits and '_', "
                    "starting with a letter",
                    form.name,
                )
            )
        if not form.fields:
            problems.append(ErrorDetail(locate(form.name, ""), f"form {form.name!r} has no fields"))
        for f in form.fields:
            here = locate(form.name, f.name)
            if f.name in by_name:
                problems.append(
                    ErrorDetail(
                        here,
                        f"duplicate field name {f.name!r}; names must be unique "
                        "across the whole dictionary",
                        f.name,
                    )
                )
            else:
                by_name[f.name] = f
            if not _NAME.match(f.name):
                problems.append(
                    ErrorDetail(
                        here,
                        f"field name {f.name!r} must be lower-case letters, digits "
                        "and '_', starting with a letter",
                        f.name,
                    )
                )
            problems.extend(_check_field(f, here))
    for form in forms:
        declared = dict(form.other_form_fields)
        for f in form.fields:
            here = locate(form.name, f.name)
            for what, expr in (
                ("branching logic", f.branching_logic),
                ("calculation", f.calculation),
            ):
                if expr is None:
                    continue
                for ref in expr.references:
                    problems.extend(
                        _check_reference(
                            ref, f, what, expr, here, by_name, declared, outside, stored
                        )
                    )
    return problems


def _check_reference(
    ref: FieldRef,
    f: Field,
    what: str,
    expr: Expression,
    here: str,
    by_name: Mapping[str, Field],
    declared: Mapping[str, str],
    outside: Mapping[str, OtherFormField],
    stored: bool,
) -> list[ErrorDetail]:
    target = by_name.get(ref.name)
    if target is None:
        other = outside.get(ref.name)
        if other is not None and other.also_in:
            forms = ", ".join((other.form, *other.also_in))
            return [
                ErrorDetail(
                    here,
                    f"{what} refers to [{ref.name}], which is a field of several registered "
                    f"forms ({forms}); import the forms that belong together in one dictionary",
                    expr.source,
                )
            ]
        if other is not None and ref.name not in declared:
            target = other.field
        if target is None:
            if ref.name in declared or other is not None or stored:
                return []  # another form's field, known by name only
            return [
                ErrorDetail(
                    here,
                    f"{what} refers to [{ref.name}], which is not a field of this dictionary"
                    + (" nor of another registered form" if outside else ""),
                    expr.source,
                )
            ]
    if ref.code is not None:
        if target.type is not FieldType.CHECKBOX:
            return [
                ErrorDetail(
                    here,
                    f"{what} uses [{ref.name}({ref.code})] but {ref.name} is a "
                    f"{target.type.value} field, not a checkbox; write [{ref.name}]",
                    expr.source,
                )
            ]
        if ref.code not in target.choice_codes:
            return [
                ErrorDetail(
                    here,
                    f"{what} uses [{ref.name}({ref.code})] but {ref.name} has no option "
                    f"{ref.code!r} (it has {', '.join(target.choice_codes)})",
                    expr.source,
                )
            ]
        return []
    if target.type is FieldType.CHECKBOX:
        first = target.choice_codes[0] if target.choice_codes else "1"
        return [
            ErrorDetail(
                here,
                f"{what} uses [{ref.name}] but {ref.name} is a checkbox; name one option, "
                f"e.g. [{ref.name}({first})] = '1'",
                expr.source,
            )
        ]
    if target.name == f.name and what == "calculation":
        return [ErrorDetail(here, "a calculation cannot refer to its own field", expr.source)]
    return []


def link_other_forms(
    forms: Iterable[Form], *, other_fields: Mapping[str, OtherFormField] | None = None
) -> tuple[Form, ...]:
    """The forms with :attr:`Form.other_form_fields` filled in.

    Each reference to a field that is not on the form itself is resolved to
    the form of the same dictionary that has it, else to the form the
    definition already declared, else to ``other_fields``; declarations no
    expression uses are dropped. Call it after :func:`check_forms` found no
    problem.
    """
    forms = list(forms)
    home = {f.name: form.name for form in forms for f in form.fields}
    outside = other_fields if other_fields is not None else {}
    out = []
    for form in forms:
        own = set(form.field_names)
        declared = dict(form.other_form_fields)
        links: dict[str, str] = {}
        for f in form.fields:
            for expr in (f.branching_logic, f.calculation):
                if expr is None:
                    continue
                for name in expr.referenced_fields() - own:
                    if name in home:
                        links[name] = home[name]
                    elif name in declared:
                        links[name] = declared[name]
                    elif name in outside and not outside[name].also_in:
                        links[name] = outside[name].form
        linked = tuple(sorted(links.items()))
        out.append(
            form if linked == form.other_form_fields else replace(form, other_form_fields=linked)
        )
    return tuple(out)


def _check_field(f: Field, here: str) -> list[ErrorDetail]:
    out: list[ErrorDetail] = []
    if f.type in CHOICE_TYPES and not f.choices:
        out.append(
            ErrorDetail(here, f"a {f.type.value} field needs choices, e.g. '1, Yes | 2, No'")
        )
    if f.type not in CHOICE_TYPES and f.choices:
        out.append(ErrorDetail(here, f"a {f.type.value} field cannot have choices"))
    if f.type is FieldType.CALC and f.calculation is None:
        out.append(ErrorDetail(here, "a calc field needs a calculation in the choices column"))
    if f.type is not FieldType.CALC and f.calculation is not None:
        out.append(ErrorDetail(here, f"a {f.type.value} field cannot have a calculation"))
    if f.validation is not None:
        if f.validation == "autocomplete":
            if f.type is not FieldType.DROPDOWN:
                out.append(
                    ErrorDetail(
                        here, "'autocomplete' applies to dropdown fields only", f.validation
                    )
                )
        elif f.validation == "signature":
            if f.type is not FieldType.FILE:
                out.append(
                    ErrorDetail(here, "'signature' applies to file fields only", f.validation)
                )
        elif f.type is not FieldType.TEXT:
            out.append(
                ErrorDetail(
                    here,
                    f"validation type {f.validation!r} applies to text fields, not {f.type.value}",
                    f.validation,
                )
            )
    for bound, text in (("min", f.min_value), ("max", f.max_value)):
        if text is None:
            continue
        if not _bound_ok(text, f):
            kind = f.validation or f.type.value
            out.append(
                ErrorDetail(
                    here,
                    f"{bound} {text!r} does not fit validation {kind!r} "
                    "(numbers for integer/number/slider, YYYY-MM-DD or 'today' "
                    "for dates, HH:MM for time, HH:MM:SS or MM:SS for those times)",
                    text,
                )
            )
    if f.ontology and f.type is not FieldType.TEXT:
        out.append(
            ErrorDetail(here, f"an ontology applies to text fields, not {f.type.value}", f.ontology)
        )
    if f.alignment not in ALIGNMENTS:
        out.append(
            ErrorDetail(
                here, f"custom alignment {f.alignment!r} is not one of RV, RH, LV, LH", f.alignment
            )
        )
    if f.omop_domain is not None and f.omop_domain not in OMOP_DOMAINS:
        out.append(
            ErrorDetail(
                here,
                f"OMOP domain {f.omop_domain!r} is not one of {', '.join(OMOP_DOMAINS)}",
                f.omop_domain,
            )
        )
    if f.code is not None and f.code.system not in CODE_SYSTEMS:
        out.append(
            ErrorDetail(
                here,
                f"code system {f.code.system!r} is not one of {', '.join(CODE_SYSTEMS)}",
                f.code.system,
            )
        )
    return out


def raise_problems(problems: list[ErrorDetail], *, source: str) -> None:
    """Raise one :class:`ValidationFailed` listing every problem, if there are any."""
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise ValidationFailed(
            f"{source}: the data dictionary has {len(problems)} {noun}; nothing was imported.",
            details=problems,
        )


def expression_or_problem(
    text: str, *, where: str, problems: list[ErrorDetail], what: str
) -> Expression | None:
    """Parse ``text``; on a syntax error record a located problem and return None."""
    if not text.strip():
        return None
    try:
        return parse_expression(text, where=where)
    except InputError as exc:
        detail = exc.details[0].message if exc.details else exc.message
        problems.append(ErrorDetail(where, f"{what} syntax error: {detail}", text))
        return None
