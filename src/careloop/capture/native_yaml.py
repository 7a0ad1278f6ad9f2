"""careloop's own form format: YAML that reads well and diffs line by line.

The layout is documented in docs/capture/forms.md. In short::

    format: careloop.forms/1
    forms:
      - name: ibd_visit
        title: IBD clinic visit
        patient_reported: false
        fields:
          - name: weight_kg
            type: text
            label: Weight
            validation: number_1dp
            min: "2"
            max: "250"
            code: {system: LOINC, code: 29463-7, display: Body weight}
            omop_domain: Measurement
            unit: kg

Every key is checked: an unknown key, type or value is an error that names
the file, the line and the field — never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from careloop.capture.forms import (
    CODE_SYSTEMS,
    OMOP_DOMAINS,
    Choice,
    Dictionary,
    Field,
    Form,
    OtherFormField,
    StandardCode,
    check_forms,
    expression_or_problem,
    form_list,
    link_other_forms,
    parse_field_type,
    parse_validation_type,
    raise_problems,
)
from careloop.capture.text_files import read_dictionary_source
from careloop.core.errors import ErrorDetail, InputError, ValidationFailed
from careloop.core.limits import SafeLoader, YamlLimitExceeded

__all__ = ["FORMAT", "read_forms_yaml", "write_forms_yaml"]

FORMAT = "careloop.forms/1"
"""The value of the ``format`` key this module reads and writes."""

_FIELD_KEYS = {
    "name", "type", "label", "section", "note", "choices", "validation", "min", "max",
    "slider", "calculation", "show_if", "required", "identifier", "code", "omop_domain",
    "unit", "alignment", "question_number", "matrix_group", "matrix_ranking", "annotation",
    "ontology",
}  # fmt: skip
_FORM_KEYS = {
    "name",
    "title",
    "description",
    "patient_reported",
    "questionnaire",
    "fields",
    "other_form_fields",
}
_QUESTIONNAIRE_KEYS = {"url", "version", "link_ids"}


class _Map(dict[Any, Any]):
    line: int = 0


class _Loader(SafeLoader):
    """careloop's bounded SafeLoader that remembers the line each mapping starts on."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    out = _Map()
    out.line = node.start_mark.line + 1
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)

# YAML 1.1 reads an unquoted Yes, No, On or Off as true/false, which would turn
# the label of a "Yes" choice into a boolean. Only true/false are booleans here.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _scalar_text(value: Any) -> str | None:
    """A scalar as text (YAML may give numbers or dates for unquoted values)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def read_forms_yaml(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    other_fields: Mapping[str, OtherFormField] | None = None,
    stored: bool = False,
) -> Dictionary:
    """Read forms in careloop's YAML format.

    A file holds ``forms:`` (a list), or a single form's keys at the top.

    Args:
        source: A path, the file's bytes, or its text.
        name: How to call the file in error messages.
        other_fields: Fields of forms outside this file (the registry's) that
            its logic and calculations may name.
        stored: The text is a definition careloop stored itself (checked
            when imported): references it cannot resolve are taken as other
            forms' fields rather than errors.

    Raises:
        ValidationFailed: Every problem, located as ``file:line:field``.
    """
    label, text, notes = read_dictionary_source(source, name=name, default="forms.yaml")
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except YamlLimitExceeded as exc:
        mark = exc.problem_mark
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        raise ValidationFailed(
            f"{label} cannot be read: {exc.problem}.",
            details=[ErrorDetail(where, str(exc.problem))],
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed(
            f"{label} is not valid YAML: {problem}.",
            details=[ErrorDetail(where, f"YAML syntax error: {problem}")],
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            f"{label}: expected a mapping with 'forms:' at the top, found {type(data).__name__}."
        )
    problems: list[ErrorDetail] = []
    if "forms" in data:
        fmt = data.get("format")
        if fmt is not None and fmt != FORMAT:
            problems.append(ErrorDetail(f"{label}:1", f"format {fmt!r} is not {FORMAT!r}", fmt))
        extra = set(data) - {"format", "forms"}
        if extra:
            problems.append(
                ErrorDetail(
                    f"{label}:1",
                    f"unknown top-level keys {sorted(extra)}; expected 'format' and 'forms'",
                )
            )
        raw_forms = data["forms"]
        if not isinstance(raw_forms, list):
            raise ValidationFailed(f"{label}: 'forms' must be a list of forms.")
    else:
        raw_forms = [data]
    forms: list[Form] = []
    lines: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(raw_forms):
        form = _read_form(raw, label, i, problems, lines)
        if form is not None:
            forms.append(form)

    def locate(form: str, field: str) -> str:
        return f"{label}:{lines.get((form, field), lines.get((form, ''), '?'))}:{field or form}"

    problems.extend(check_forms(forms, locate=locate, other_fields=other_fields, stored=stored))
    raise_problems(problems, source=label)
    if not forms:
        raise ValidationFailed(f"{label} defines no forms.")
    return Dictionary(link_other_forms(forms, other_fields=other_fields), notes=notes)


def _line(node: Any, default: int = 0) -> int:
    return getattr(node, "line", default)


def _read_form(
    raw: Any, label: str, index: int, problems: list[ErrorDetail], lines: dict[tuple[str, str], int]
) -> Form | None:
    if not isinstance(raw, dict):
        problems.append(
            ErrorDetail(f"{label}:forms[{index}]", "a form must be a mapping with name and fields")
        )
        return None
    line = _line(raw)
    name = _scalar_text(raw.get("name")) or ""
    here = f"{label}:{line}:{name or f'forms[{index}]'}"
    lines[(name, "")] = line
    unknown = set(raw) - _FORM_KEYS
    if unknown:
        problems.append(
            ErrorDetail(
                here,
                f"unknown form keys {sorted(map(str, unknown))}; allowed: "
                f"{', '.join(sorted(_FORM_KEYS))}",
            )
        )
    if not name:
        problems.append(ErrorDetail(here, "the form has no name"))
    patient_reported = raw.get("patient_reported", False)
    if not isinstance(patient_reported, bool):
        problems.append(
            ErrorDetail(here, "patient_reported must be true or false", patient_reported)
        )
        patient_reported = False
    url, version, link_ids = _read_source(raw.get("questionnaire"), here, problems)
    raw_fields = raw.get("fields")
    if not isinstance(raw_fields, list):
        problems.append(ErrorDetail(here, "'fields' must be a list of fields"))
        return None
    fields = []
    for j, rf in enumerate(raw_fields):
        f = _read_field(rf, label, line, j, problems)
        if f is not None:
            fields.append(f)
            lines.setdefault((name, f.name), _line(rf, line))
    links = raw.get("other_form_fields") or {}
    if not isinstance(links, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in links.items()
    ):
        problems.append(
            ErrorDetail(
                here,
                "other_form_fields must map each field of another form to that form's "
                "name, e.g. {sex: demographics}",
                links,
            )
        )
        links = {}
    return Form(
        name=name,
        fields=tuple(fields),
        title=_scalar_text(raw.get("title")) or "",
        patient_reported=patient_reported,
        description=_scalar_text(raw.get("description")) or "",
        questionnaire_url=url,
        questionnaire_version=version,
        link_ids=link_ids,
        other_form_fields=tuple(links.items()),
    )


def _read_source(
    raw: Any, here: str, problems: list[ErrorDetail]
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """The ``questionnaire`` key: the FHIR Questionnaire a form was registered from."""
    if raw is None:
        return "", "", ()
    if not isinstance(raw, dict) or set(raw) - _QUESTIONNAIRE_KEYS:
        problems.append(
            ErrorDetail(
                here,
                "'questionnaire' must be a mapping with url, version and link_ids "
                "(linkId: field name)",
            )
        )
        return "", "", ()
    links = raw.get("link_ids") or {}
    if not isinstance(links, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in links.items()
    ):
        problems.append(ErrorDetail(here, "questionnaire.link_ids must map linkIds to field names"))
        links = {}
    return (
        _scalar_text(raw.get("url")) or "",
        _scalar_text(raw.get("version")) or "",
        tuple(links.items()),
    )


def _read_field(
    raw: Any, label: str, form_line: int, index: int, problems: list[ErrorDetail]
) -> Field | None:
    """Read one field of a native YAML form, adding each problem found to problems; None if any.

    Long because it reads the field's keys one after another, each with its own check,
    so that every problem in the field is reported at once.
    """
    if not isinstance(raw, dict):
        problems.append(
            ErrorDetail(f"{label}:{form_line}:fields[{index}]", "a field must be a mapping")
        )
        return None
    before = len(problems)
    name = _scalar_text(raw.get("name")) or ""
    here = f"{label}:{_line(raw, form_line)}:{name or f'fields[{index}]'}"
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        problems.append(
            ErrorDetail(
                here,
                f"unknown keys {sorted(map(str, unknown))}; allowed: "
                f"{', '.join(sorted(_FIELD_KEYS))}",
            )
        )
    if not name:
        problems.append(ErrorDetail(here, "the field has no name"))
    try:
        ftype = parse_field_type(_scalar_text(raw.get("type")) or "")
    except InputError as exc:
        problems.append(ErrorDetail(here, exc.message, raw.get("type")))
        return None
    choices: list[Choice] = []
    raw_choices = raw.get("choices")
    if raw_choices is not None:
        if not isinstance(raw_choices, dict):
            problems.append(
                ErrorDetail(
                    here,
                    "choices must be a mapping of code: label, e.g. {'1': Yes, '0': No}",
                    raw_choices,
                )
            )
        else:
            for code, choice_label in raw_choices.items():
                if isinstance(code, bool):
                    problems.append(
                        ErrorDetail(
                            here,
                            f"choice code {code} was read as true/false; quote it, e.g. 'yes': Yes",
                            code,
                        )
                    )
                    continue
                choices.append(Choice(str(code), _scalar_text(choice_label) or ""))
    validation = None
    if raw.get("validation") is not None:
        try:
            validation = parse_validation_type(str(raw["validation"]))
        except InputError as exc:
            problems.append(ErrorDetail(here, exc.message, raw["validation"]))
    slider = raw.get("slider") or {}
    if not isinstance(slider, dict) or set(slider) - {"labels", "show_number"}:
        problems.append(
            ErrorDetail(
                here,
                "slider must be {labels: [left, middle, right], show_number: true/false}",
                slider,
            )
        )
        slider = {}
    code = None
    raw_code = raw.get("code")
    if raw_code is not None:
        if (
            not isinstance(raw_code, dict)
            or raw_code.get("system") not in CODE_SYSTEMS
            or not raw_code.get("code")
            or set(raw_code) - {"system", "code", "display"}
        ):
            problems.append(
                ErrorDetail(
                    here, "code must be {system: LOINC|SNOMED|local, code: …, display: …}", raw_code
                )
            )
        else:
            code = StandardCode(
                raw_code["system"],
                str(raw_code["code"]),
                _scalar_text(raw_code.get("display")) or "",
            )
    domain = raw.get("omop_domain")
    if domain is not None and domain not in OMOP_DOMAINS:
        problems.append(
            ErrorDetail(here, f"omop_domain must be one of {', '.join(OMOP_DOMAINS)}", domain)
        )
        domain = None
    flags = {}
    for key in ("required", "identifier", "matrix_ranking"):
        v = raw.get(key, False)
        if not isinstance(v, bool):
            problems.append(ErrorDetail(here, f"{key} must be true or false", v))
            v = False
        flags[key] = v
    calc = expression_or_problem(
        _scalar_text(raw.get("calculation")) or "",
        where=here,
        problems=problems,
        what="calculation",
    )
    logic = expression_or_problem(
        _scalar_text(raw.get("show_if")) or "",
        where=here,
        problems=problems,
        what="show_if (branching logic)",
    )
    if len(problems) > before:
        return None
    return Field(
        name=name,
        type=ftype,
        label=_scalar_text(raw.get("label")) or "",
        note=_scalar_text(raw.get("note")) or "",
        section_header=_scalar_text(raw.get("section")) or "",
        choices=tuple(choices),
        validation=validation,
        min_value=_scalar_text(raw.get("min")),
        max_value=_scalar_text(raw.get("max")),
        calculation=calc,
        branching_logic=logic,
        required=flags["required"],
        identifier=flags["identifier"],
        slider_labels=tuple(_scalar_text(x) or "" for x in slider.get("labels") or ()),
        slider_show_number=bool(slider.get("show_number", False)),
        alignment=(_scalar_text(raw.get("alignment")) or "").upper(),
        question_number=_scalar_text(raw.get("question_number")) or "",
        matrix_group=_scalar_text(raw.get("matrix_group")) or "",
        matrix_ranking=flags["matrix_ranking"],
        annotation=_scalar_text(raw.get("annotation")) or "",
        code=code,
        omop_domain=domain,
        unit=_scalar_text(raw.get("unit")),
        ontology=_scalar_text(raw.get("ontology")) or "",
    )


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line text as ``|`` blocks; lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if "'" in value:  # "[dx] = '1'" reads better than the single-quoted escape
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def write_forms_yaml(forms: Dictionary | Form | Iterable[Form]) -> str:
    """Write forms in careloop's YAML format."""
    forms_given = form_list(forms)
    data = {"format": FORMAT, "forms": [f.to_dict() for f in forms_given]}
    # min/max are text in the model: keep them quoted so "2" stays "2", not 2.
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
