"""A FHIR R4 Questionnaire as a form: items read back, types and validations guessed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fhir.resources.R4B.questionnaire import Questionnaire
from pydantic import ValidationError

from careloop.capture.forms import (
    CODE_SYSTEMS,
    OMOP_DOMAINS,
    Choice,
    Field,
    FieldType,
    Form,
    OtherFormField,
    StandardCode,
    check_forms,
    expression_or_problem,
    link_other_forms,
    parse_field_type,
    parse_validation_type,
    raise_problems,
)
from careloop.capture.questionnaire.exporting import (
    _ITEM_CONTROL,
    _MAX,
    _MIN,
    _UNIT,
    EXTENSION,
    SYSTEMS,
    _logic_from_enable_when,
)
from careloop.capture.text_files import read_source
from careloop.core.errors import ErrorDetail, InputError, ValidationFailed
from careloop.core.limits import loads_json, nesting_error, too_deep

# --------------------------------------------------------------------------- import


def _extensions(item: Mapping[str, Any]) -> dict[str, Any]:
    """URL → the value of each extension (the first ``value…`` key)."""
    out: dict[str, Any] = {}
    for ext in item.get("extension") or ():
        value = next((v for k, v in ext.items() if k.startswith("value")), None)
        out[ext.get("url", "")] = value
    return out


def _own(exts: Mapping[str, Any], name: str) -> Any:
    return exts.get(EXTENSION + name)


def _safe_name(link_id: str, used: set[str]) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", link_id.lower())
    if not re.match(r"^[a-z]", name):
        name = f"q_{name}"
    base, n = name, 2
    while name in used:
        name = f"{base}_{n}"
        n += 1
    used.add(name)
    return name


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str) and "T" in value and re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T", value):
        date, _, time = value.partition("T")
        return f"{date} {time[:5]}"
    if isinstance(value, str) and re.match(r"^[0-9]{2}:[0-9]{2}:[0-9]{2}", value):
        return value[:5]
    return str(value)


def read_questionnaire(
    source: Questionnaire | Mapping[str, Any] | str | Path | bytes,
    *,
    name: str | None = None,
    other_fields: Mapping[str, OtherFormField] | None = None,
) -> Form:
    """Read a FHIR R4 Questionnaire (a model, a dict, or JSON text/bytes/path) as a form.

    Raises:
        ValidationFailed: The JSON is not a valid R4 Questionnaire, or an item
            has a type careloop cannot hold (``reference``,
            ``quantity``, ``url``, ``open-choice``); each problem is located
            as ``file:item path (linkId)``.
    """
    label = name or "questionnaire.json"
    if isinstance(source, Questionnaire):
        q = source
    else:
        if isinstance(source, Mapping):
            data: Any = dict(source)
            deep = too_deep(data)
            if deep is not None:
                raise nesting_error(label, deep)
        else:
            label, text = read_source(source, name=name, default="questionnaire.json")
            try:
                data = loads_json(text, where=label)
            except json.JSONDecodeError as exc:
                raise ValidationFailed(
                    f"{label} is not valid JSON: {exc.msg}.",
                    details=[ErrorDetail(f"{label}:{exc.lineno}", f"JSON syntax error: {exc.msg}")],
                ) from None
        if not isinstance(data, dict) or data.get("resourceType") != "Questionnaire":
            found = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
            raise ValidationFailed(f"{label}: expected a FHIR Questionnaire, found {found!r}.")
        try:
            q = Questionnaire.model_validate(data)
        except ValidationError as exc:
            details = [
                ErrorDetail(f"{label}:{'.'.join(map(str, e['loc']))}", e["msg"])
                for e in exc.errors()[:50]
            ]
            raise ValidationFailed(
                f"{label} is not a valid FHIR R4 Questionnaire.", details=details
            ) from None
    return questionnaire_to_form(
        json.loads(q.model_dump_json(exclude_none=True)), source=label, other_fields=other_fields
    )


def questionnaire_to_form(
    data: Mapping[str, Any],
    *,
    source: str = "questionnaire.json",
    other_fields: Mapping[str, OtherFormField] | None = None,
) -> Form:
    """Build a form from a Questionnaire's JSON (see :func:`read_questionnaire`).

    ``other_fields`` are fields of other forms (the registry's) that the
    branching logic and calculations may name, as REDCap allows.
    """
    problems: list[ErrorDetail] = []
    flat = _flat_items(data)
    names = _field_names(flat)
    types: dict[str, str] = {}
    for _path, item, _h in flat:
        exts = _extensions(item)
        t = _own(exts, "field-type") or _guess_type(item, exts)
        types[names[str(item.get("linkId", ""))]] = (
            "checkbox" if t == "checkbox" else str(_own(exts, "validation-type") or "")
        )
    fields: list[Field] = []
    locations: dict[str, str] = {}
    for path, item, header in flat:
        link = str(item.get("linkId", ""))
        here = f"{source}:{path} (linkId {link!r})"
        field = _read_item(item, names[link], header, names, types, here, problems)
        if field is not None:
            fields.append(field)
            locations[field.name] = here
    exts = _extensions(data)
    # linkIds renamed to be field names, and those a careloop export records as renamed.
    link_ids = {link: name for link, name in names.items() if link != name}
    for _path, item, _h in flat:
        original = _own(_extensions(item), "link-id")
        if isinstance(original, str) and original:
            link_ids[original] = names[str(item.get("linkId", ""))]
    url = str(data.get("url") or "")
    version = str(data.get("version") or "")
    if url.startswith("urn:careloop:form:"):
        # careloop's own export: its version is a content hash, the source is in extensions.
        url = str(_own(exts, "source-url") or "")
        version = str(_own(exts, "source-version") or "")
    raw_name = str(data.get("name") or data.get("id") or "questionnaire")
    form_name = re.sub(r"[^a-z0-9_]", "_", raw_name.lower())
    if not re.match(r"^[a-z]", form_name):
        form_name = f"q_{form_name}"
    form = Form(
        name=form_name,
        fields=tuple(fields),
        title=str(data.get("title") or ""),
        patient_reported=bool(_own(exts, "patient-reported")),
        description=str(data.get("description") or ""),
        questionnaire_url=url,
        questionnaire_version=version,
        link_ids=tuple(link_ids.items()),
    )
    problems.extend(
        check_forms(
            [form],
            locate=lambda _f, field: locations.get(field, source),
            other_fields=other_fields,
        )
    )
    raise_problems(problems, source=source)
    return link_other_forms([form], other_fields=other_fields)[0]


def _flat_items(data: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(path, item, pending section header) of every non-group item, in order."""
    flat: list[tuple[str, dict[str, Any], str]] = []

    def visit(items: list[dict[str, Any]], path: str, header: str) -> None:
        pending = header
        for i, item in enumerate(items):
            here = f"{path}item[{i}]"
            if item.get("type") == "group":
                visit(item.get("item") or [], f"{here}/", item.get("text", "") or pending)
                pending = ""
                continue
            flat.append((here, item, pending))
            pending = ""
            if item.get("item"):
                visit(item["item"], f"{here}/", "")

    visit(list(data.get("item") or []), "", "")
    return flat


def _field_names(flat: list[tuple[str, dict[str, Any], str]]) -> dict[str, str]:
    """linkId → field name: the linkId itself when it is a valid, unused field name."""
    used: set[str] = set()
    names: dict[str, str] = {}
    for _path, item, _h in flat:
        link = str(item.get("linkId", ""))
        names[link] = (
            _safe_name(link, used)
            if not re.match(r"^[a-z][a-z0-9_]*$", link) or link in used
            else link
        )
        used.add(names[link])
    return names


def _guess_type(item: Mapping[str, Any], exts: Mapping[str, Any]) -> str:
    t = item.get("type")
    control = ""
    cc = exts.get(_ITEM_CONTROL)
    if isinstance(cc, dict):
        control = next((c.get("code", "") for c in cc.get("coding", ())), "")
    if t == "choice":
        if item.get("repeats"):
            return "checkbox"
        return "dropdown" if control == "drop-down" else "radio"
    if t == "integer" and control == "slider":
        return "slider"
    if item.get("readOnly") and t in ("decimal", "integer") and _own(exts, "calculation"):
        return "calc"
    if t == "attachment":
        return "file"  # reference-only: careloop keeps the item, never the file
    return {
        "string": "text",
        "text": "notes",
        "boolean": "yesno",
        "display": "descriptive",
        "integer": "text",
        "decimal": "text",
        "date": "text",
        "dateTime": "text",
        "time": "text",
    }.get(str(t), f"(FHIR type {t})")


def _guess_validation(item: Mapping[str, Any]) -> str | None:
    return {
        "integer": "integer",
        "decimal": "number",
        "date": "date_ymd",
        "dateTime": "datetime_ymd",
        "time": "time",
    }.get(str(item.get("type")))


def _read_item(
    item: Mapping[str, Any],
    name: str,
    header: str,
    names: Mapping[str, str],
    types: Mapping[str, str],
    here: str,
    problems: list[ErrorDetail],
) -> Field | None:
    """Read one Questionnaire item as a field, adding each problem found to problems; None if any.

    Long because it reads the item's elements and extensions one after another, each
    with its own check, so that every problem in the item is reported at once.
    """
    exts = _extensions(item)
    own_type = _own(exts, "field-type")
    try:
        ftype = parse_field_type(str(own_type or _guess_type(item, exts)))
    except InputError:
        problems.append(
            ErrorDetail(
                here,
                f"item type {item.get('type')!r} cannot be held by a careloop "
                "form (supported: string, text, integer, decimal, date, dateTime, "
                "time, boolean, choice, display, group, attachment as a reference-only file field)",
                item.get("type"),
            )
        )
        return None
    before = len(problems)
    validation = _own(exts, "validation-type")
    if validation is None and own_type is None and ftype is FieldType.TEXT:
        validation = _guess_validation(item)
    if validation is not None:
        try:
            validation = parse_validation_type(str(validation))
        except InputError as exc:
            problems.append(ErrorDetail(here, exc.message, validation))
    choices = []
    for option in item.get("answerOption") or ():
        coding = option.get("valueCoding")
        if coding is not None:
            # careloop's own export leaves out the display of a choice with no label;
            # another tool's coding without one is labelled by its code.
            fallback = "" if own_type is not None else coding.get("code", "")
            choices.append(
                Choice(str(coding.get("code", "")), str(coding.get("display", fallback)))
            )
        else:
            value = next((v for k, v in option.items() if k.startswith("value")), None)
            choices.append(Choice(_plain(value), _plain(value)))
    if item.get("answerValueSet") and not choices:
        problems.append(
            ErrorDetail(
                here,
                "answerValueSet is not supported; list the answers as answerOption",
                item["answerValueSet"],
            )
        )

    def bound(name_: str, url: str) -> str | None:
        own = _own(exts, name_)
        if own is not None:
            return str(own)
        return _plain(exts[url]) if url in exts else None

    calc = expression_or_problem(
        str(_own(exts, "calculation") or ""), where=here, problems=problems, what="calculation"
    )
    logic_text = _own(exts, "branching-logic")
    if logic_text is None and item.get("enableWhen"):
        conditions = []
        for cond in item["enableWhen"]:
            q = str(cond.get("question", ""))
            if q not in names:
                problems.append(
                    ErrorDetail(
                        here,
                        f"enableWhen refers to question {q!r}, which is not an "
                        "item of this Questionnaire",
                        q,
                    )
                )
                continue
            conditions.append({**cond, "question": names[q]})
        try:
            logic_text = _logic_from_enable_when(conditions, item.get("enableBehavior"), types)
        except InputError as exc:
            problems.append(ErrorDetail(here, exc.message))
            logic_text = ""
    logic = expression_or_problem(
        str(logic_text or ""), where=here, problems=problems, what="branching logic"
    )
    code = None
    for coding in item.get("code") or ():
        system = next((k for k, v in SYSTEMS.items() if v == coding.get("system")), None)
        if system is not None and coding.get("code"):
            code = StandardCode(system, str(coding["code"]), str(coding.get("display", "")))  # type: ignore[arg-type]
            break
    unit = exts.get(_UNIT)
    domain = _own(exts, "omop-domain")
    if domain is not None and domain not in OMOP_DOMAINS:
        problems.append(
            ErrorDetail(here, f"omop-domain must be one of {', '.join(OMOP_DOMAINS)}", domain)
        )
    annotation = str(_own(exts, "annotation") or "")
    if not annotation and item.get("initial"):
        value = next((v for k, v in item["initial"][0].items() if k.startswith("value")), None)
        if isinstance(value, dict):
            value = value.get("code")
        if value is not None:
            annotation = f'@DEFAULT="{_plain(value)}"'
    if len(problems) > before:
        return None
    slider_labels = str(_own(exts, "slider-labels") or "")
    assert code is None or code.system in CODE_SYSTEMS
    return Field(
        name=name,
        type=ftype,
        label=str(item.get("text", "")),
        note=str(_own(exts, "field-note") or ""),
        section_header=header,
        choices=tuple(choices),
        validation=validation if ftype is not FieldType.SLIDER else None,
        min_value=bound("min-value", _MIN),
        max_value=bound("max-value", _MAX),
        calculation=calc,
        branching_logic=logic,
        required=bool(item.get("required", False)),
        identifier=bool(_own(exts, "identifier")),
        slider_labels=tuple(p.strip() for p in slider_labels.split("|")) if slider_labels else (),
        slider_show_number=bool(_own(exts, "slider-show-number")),
        alignment=str(_own(exts, "alignment") or ""),
        question_number=str(_own(exts, "question-number") or ""),
        matrix_group=str(_own(exts, "matrix-group") or ""),
        matrix_ranking=bool(_own(exts, "matrix-ranking")),
        annotation=annotation,
        code=code,
        omop_domain=domain,
        unit=unit.get("code") if isinstance(unit, dict) else None,
        ontology=str(_own(exts, "ontology") or ""),
    )
