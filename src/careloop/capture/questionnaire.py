"""FHIR R4 Questionnaire import and export (``fhir.resources.R4B`` models).

A :class:`~careloop.capture.forms.Form` becomes a Questionnaire whose items
carry the field names as ``linkId``. Types, choices (``answerOption``),
required, read-only calculated fields, ranges (``minValue``/``maxValue``),
units and codes use the standard elements and extensions; branching logic
becomes ``enableWhen`` wherever REDCap's expression says no more than a list
of comparisons joined by one ``and``/``or``. What FHIR has no element for —
the REDCap field type, validation type, calculations, logic that
``enableWhen`` cannot say — travels in careloop extensions
(``urn:careloop:fhir:extension:…``, listed in docs/capture/forms.md), so a
form exported and imported again is the same form.

Section headers become ``group`` items holding the fields that follow them.

A Questionnaire's canonical ``url`` (and ``version``) is kept with the form
it becomes, and so is each linkId that had to be renamed to be a field name
(``/44250-9`` → ``q__44250_9``): QuestionnaireResponses name their
Questionnaire by that URL and their items by those linkIds
(:mod:`careloop.capture.fhir_responses`). A form exported again keeps both
in careloop extensions (``…source-url``, ``…source-version``, ``…link-id``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from fhir.resources.R4B.questionnaire import Questionnaire
from pydantic import ValidationError

from careloop.capture.expressions import (
    Binary,
    Expression,
    FieldRef,
    Node,
    NumberLiteral,
    StringLiteral,
    Unary,
    parse_expression,
    to_source,
)
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
from careloop.capture.text_files import read_source
from careloop.core.errors import ErrorDetail, InputError, ValidationFailed
from careloop.core.limits import loads_json, nesting_error, too_deep

__all__ = [
    "EXTENSION",
    "SYSTEMS",
    "fhir_item_type",
    "fhir_typed_value",
    "form_to_questionnaire",
    "questionnaire_to_form",
    "read_questionnaire",
    "write_questionnaire",
]

EXTENSION = "urn:careloop:fhir:extension:"
"""Prefix of careloop's extension URLs (``…field-type``, ``…calculation`` …)."""

SYSTEMS = {
    "LOINC": "http://loinc.org",
    "SNOMED": "http://snomed.info/sct",
    "local": "urn:careloop:local",
}
"""Code system URIs of :class:`~careloop.capture.forms.StandardCode` systems."""

_ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
_ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
_MIN = "http://hl7.org/fhir/StructureDefinition/minValue"
_MAX = "http://hl7.org/fhir/StructureDefinition/maxValue"
_UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
_UCUM = "http://unitsofmeasure.org"
_DEFAULT = re.compile(r"@DEFAULT=(?:\"([^\"]*)\"|'([^']*)')")
_OPERATORS = {"=": "=", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_REVERSE_OPERATORS = {v: k for k, v in _OPERATORS.items()}


def _ext(name: str, **value: Any) -> dict[str, Any]:
    return {"url": EXTENSION + name, **value}


def fhir_item_type(field: Field) -> str:
    """The Questionnaire ``item.type`` of a field (``integer``, ``choice``, ``date`` …)."""
    t, v = field.type, field.validation or ""
    if t is FieldType.TEXT:
        if v == "integer":
            return "integer"
        if v == "number" or v.startswith("number_"):
            return "decimal"
        if v.startswith("date_"):
            return "date"
        if v.startswith("datetime"):
            return "dateTime"
        if v == "time":
            return "time"
        return "string"
    return {
        FieldType.NOTES: "text",
        FieldType.DROPDOWN: "choice",
        FieldType.RADIO: "choice",
        FieldType.CHECKBOX: "choice",
        FieldType.YESNO: "boolean",
        FieldType.TRUEFALSE: "boolean",
        FieldType.CALC: "decimal",
        FieldType.DESCRIPTIVE: "display",
        FieldType.SLIDER: "integer",
        FieldType.FILE: "attachment",
    }[t]


def fhir_typed_value(text: str, fhir_type: str, prefix: str) -> dict[str, Any] | None:
    """REDCap text → ``{<prefix>X: …}`` for a FHIR item type; None when it does not fit.

    ``prefix`` is ``value`` (answers, initial values) or ``answer`` (enableWhen).
    """
    try:
        if fhir_type == "integer" and re.match(r"^-?[0-9]+$", text):
            return {f"{prefix}Integer": int(text)}
        if fhir_type == "decimal":
            return {f"{prefix}Decimal": Decimal(text)}
        if fhir_type == "date" and re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", text):
            return {f"{prefix}Date": text}
        # No dateTime: FHIR requires a time zone with a time, and REDCap's
        # datetimes are local wall-clock times, so they travel as text.
        if fhir_type == "time" and re.match(r"^[0-9]{2}:[0-9]{2}$", text):
            return {f"{prefix}Time": f"{text}:00"}
        if fhir_type in ("string", "text"):
            return {f"{prefix}String": text}
    except ArithmeticError:
        return None
    return None


def _comparisons(node: Node) -> tuple[str, list[Binary]] | None:
    """``a and b and c`` → ("all", [a, b, c]); a single comparison → ("all", [it])."""
    if isinstance(node, Binary) and node.op in ("and", "or"):
        joiner = node.op
        parts: list[Node] = []
        stack: list[Node] = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, Binary) and n.op == joiner:
                stack.append(n.right)
                stack.append(n.left)
            else:
                parts.append(n)
        if all(_simple(p) for p in parts):
            return ("all" if joiner == "and" else "any"), parts  # type: ignore[return-value]
        return None
    if _simple(node):
        return "all", [node]  # type: ignore[list-item]
    return None


def _simple(node: Node) -> bool:
    return (
        isinstance(node, Binary)
        and node.op in _OPERATORS
        and isinstance(node.left, FieldRef)
        and node.left.event is None
        and node.left.instance is None
        and node.left.modifier is None
        and isinstance(node.right, NumberLiteral | StringLiteral)
    )


def _enable_when(
    logic: Expression, fields: Mapping[str, Field]
) -> tuple[list[dict[str, Any]], str] | None:
    shape = _comparisons(logic.tree)
    if shape is None:
        return None
    behavior, parts = shape
    out = []
    for part in parts:
        assert isinstance(part, Binary) and isinstance(part.left, FieldRef)
        ref, literal = part.left, part.right
        target = fields.get(ref.name)
        if target is None:
            return None
        text = literal.text if isinstance(literal, NumberLiteral) else literal.value  # type: ignore[union-attr]
        op = _OPERATORS[part.op]
        if text == "" and ref.code is None and op in ("=", "!="):
            out.append({"question": ref.name, "operator": "exists", "answerBoolean": op == "!="})
            continue
        if ref.code is not None:
            if (
                target.type is not FieldType.CHECKBOX
                or text not in ("0", "1")
                or op not in ("=", "!=")
            ):
                return None
            checked = (text == "1") == (op == "=")
            out.append(
                {
                    "question": ref.name,
                    "operator": "=" if checked else "!=",
                    "answerCoding": {"code": ref.code},
                }
            )
            continue
        ftype = fhir_item_type(target)
        if ftype == "choice":
            answer: dict[str, Any] | None = {"answerCoding": {"code": text}}
        elif ftype == "boolean":
            answer = {"answerBoolean": text == "1"} if text in ("0", "1") else None
        else:
            answer = fhir_typed_value(text, ftype, "answer")
        if answer is None:
            return None
        out.append({"question": ref.name, "operator": op, **answer})
    return out, behavior


def _logic_from_enable_when(
    conditions: list[dict[str, Any]], behavior: str | None, types: Mapping[str, str]
) -> str:
    parts = []
    for cond in conditions:
        q, op = cond["question"], cond["operator"]
        if op == "exists":
            parts.append(f"[{q}] {'<>' if cond.get('answerBoolean') else '='} ''")
            continue
        redcap_op = _REVERSE_OPERATORS.get(op)
        if redcap_op is None:
            raise InputError(f"enableWhen operator {op!r} is not supported")
        if "answerCoding" in cond and types.get(q) == "checkbox":
            code = cond["answerCoding"].get("code", "")
            parts.append(f"[{q}({code})] = '{'1' if op == '=' else '0'}'")
            continue
        node: Node
        if "answerCoding" in cond:
            node = StringLiteral(str(cond["answerCoding"].get("code", "")))
        elif "answerBoolean" in cond:
            node = StringLiteral("1" if cond["answerBoolean"] else "0")
        elif "answerInteger" in cond or "answerDecimal" in cond:
            raw = cond.get("answerInteger", cond.get("answerDecimal"))
            text = format(Decimal(str(raw)), "f")
            node = (
                Unary("-", NumberLiteral(text[1:])) if text.startswith("-") else NumberLiteral(text)
            )
        elif "answerDateTime" in cond:
            date, _, time = str(cond["answerDateTime"]).partition("T")
            seconds = types.get(q, "").startswith("datetime_seconds")
            node = StringLiteral(f"{date} {time if seconds else time[:5]}".strip())
        elif "answerTime" in cond:
            node = StringLiteral(str(cond["answerTime"])[:5])
        else:
            value = next((v for k, v in cond.items() if k.startswith("answer")), None)
            if value is None or isinstance(value, dict):
                raise InputError(f"enableWhen on {q!r} has an answer type careloop cannot express")
            node = StringLiteral(str(value))
        parts.append(f"[{q}] {redcap_op} {to_source(node)}")
    joiner = " or " if behavior == "any" else " and "
    return joiner.join(parts)


def _item(
    field: Field,
    fields: Mapping[str, Field],
    types: Mapping[str, str],
    link_id: str | None = None,
) -> dict[str, Any]:
    ftype = fhir_item_type(field)
    item: dict[str, Any] = {"linkId": field.name, "type": ftype}
    if field.label:
        item["text"] = field.label
    ext: list[dict[str, Any]] = [_ext("field-type", valueCode=field.type.value)]
    if link_id is not None:
        ext.append(_ext("link-id", valueString=link_id))
    if field.code is not None:
        coding = {"system": SYSTEMS[field.code.system], "code": field.code.code}
        if field.code.display:
            coding["display"] = field.code.display
        item["code"] = [coding]
    if field.required:
        item["required"] = True
    if field.type is FieldType.CALC or "@READONLY" in field.annotation:
        item["readOnly"] = True
    if field.type is FieldType.CHECKBOX:
        item["repeats"] = True
    if field.choices:
        # FHIR strings may not be empty: a choice REDCap has with no label has no display.
        item["answerOption"] = [
            {"valueCoding": {"code": c.code, "display": c.label} if c.label else {"code": c.code}}
            for c in field.choices
        ]
    control = {
        FieldType.DROPDOWN: "drop-down",
        FieldType.RADIO: "radio-button",
        FieldType.CHECKBOX: "check-box",
        FieldType.SLIDER: "slider",
    }.get(field.type)
    if control:
        ext.append(
            {
                "url": _ITEM_CONTROL,
                "valueCodeableConcept": {
                    "coding": [{"system": _ITEM_CONTROL_SYSTEM, "code": control}]
                },
            }
        )
    if field.validation:
        ext.append(_ext("validation-type", valueString=field.validation))
    for url, name, text in (
        (_MIN, "min-value", field.min_value),
        (_MAX, "max-value", field.max_value),
    ):
        if text is None:
            continue
        ext.append(_ext(name, valueString=text))
        typed = fhir_typed_value(text, ftype, "value")
        if typed is not None and ftype in ("integer", "decimal", "date", "dateTime", "time"):
            ext.append({"url": url, **typed})
    if field.unit:
        ext.append({"url": _UNIT, "valueCoding": {"system": _UCUM, "code": field.unit}})
    if field.calculation is not None:
        ext.append(_ext("calculation", valueString=field.calculation.source))
    if field.branching_logic is not None:
        mapped = _enable_when(field.branching_logic, fields)
        lossless = False
        if mapped is not None:
            conditions, behavior = mapped
            item["enableWhen"] = conditions
            if len(conditions) > 1:
                item["enableBehavior"] = behavior
            try:
                rebuilt = _logic_from_enable_when(conditions, behavior, types)
                lossless = parse_expression(rebuilt) == field.branching_logic
            except InputError:
                lossless = False
        if not lossless:
            ext.append(_ext("branching-logic", valueString=field.branching_logic.source))
    for name, text in (
        ("field-note", field.note),
        ("annotation", field.annotation),
        ("alignment", field.alignment),
        ("question-number", field.question_number),
        ("matrix-group", field.matrix_group),
    ):
        if text:
            ext.append(_ext(name, valueString=text))
    for name, flag in (
        ("identifier", field.identifier),
        ("matrix-ranking", field.matrix_ranking),
        ("slider-show-number", field.slider_show_number),
    ):
        if flag:
            ext.append(_ext(name, valueBoolean=True))
    if field.slider_labels:
        ext.append(_ext("slider-labels", valueString=" | ".join(field.slider_labels)))
    if field.omop_domain:
        ext.append(_ext("omop-domain", valueCode=field.omop_domain))
    if field.ontology:
        ext.append(_ext("ontology", valueString=field.ontology))
    default = _DEFAULT.search(field.annotation)
    if default is not None:
        initial = _initial(
            field, default.group(1) if default.group(1) is not None else default.group(2)
        )
        if initial is not None:
            item["initial"] = [initial]
    item["extension"] = ext
    return item


def _initial(field: Field, text: str) -> dict[str, Any] | None:
    ftype = fhir_item_type(field)
    if ftype == "choice":
        label = next((c.label for c in field.choices if c.code == text), None)
        if label is None:
            return None
        return {"valueCoding": {"code": text, "display": label} if label else {"code": text}}
    if ftype == "boolean":
        return {"valueBoolean": text == "1"} if text in ("0", "1") else None
    if ftype in ("display", "attachment"):
        return None
    return fhir_typed_value(text, "string" if ftype == "text" else ftype, "value")


QuestionnaireStatus = Literal["draft", "active", "retired", "unknown"]


def form_to_questionnaire(form: Form, *, status: QuestionnaireStatus = "active") -> Questionnaire:
    """A form as a FHIR R4 (R4B) Questionnaire, validated by ``fhir.resources``.

    ``version`` is the form's content hash, so a Questionnaire names the
    exact definition it was made from.
    """
    fields = {f.name: f for f in form.fields}
    types = {
        n: f.type.value if f.type is FieldType.CHECKBOX else (f.validation or "")
        for n, f in fields.items()
    }
    items: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None
    original = {name: link for link, name in form.link_ids}
    for field in form.fields:
        if field.section_header:
            group = {
                "linkId": f"{field.name}__section",
                "type": "group",
                "text": field.section_header,
                "item": [],
            }
            items.append(group)
        (group["item"] if group is not None else items).append(
            _item(field, fields, types, original.get(field.name))
        )
    data: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": form.name.replace("_", "-")[:64],
        "url": f"urn:careloop:form:{form.name}",
        "version": form.content_hash(),
        "name": form.name,
        "title": form.title,
        "status": status,
        "subjectType": ["Patient"],
        "item": items,
    }
    if form.description:
        data["description"] = form.description
    root: list[dict[str, Any]] = []
    if form.patient_reported:
        root.append(_ext("patient-reported", valueBoolean=True))
    if form.questionnaire_url:
        root.append(_ext("source-url", valueUri=form.questionnaire_url))
    if form.questionnaire_version:
        root.append(_ext("source-version", valueString=form.questionnaire_version))
    if root:
        data["extension"] = root
    return Questionnaire.model_validate(data)


def write_questionnaire(form: Form, *, indent: int | None = 2) -> str:
    """A form as Questionnaire JSON text."""
    q = form_to_questionnaire(form)
    data = json.loads(q.model_dump_json(exclude_none=True))
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


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
    flat: list[tuple[str, dict[str, Any], str]] = []  # (path, item, pending section header)

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
