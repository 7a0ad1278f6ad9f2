"""A form as a FHIR R4 Questionnaire: item types, enableWhen from branching logic, extensions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from fhir.resources.R4B.questionnaire import Questionnaire

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
    Field,
    FieldType,
    Form,
)
from careloop.core.errors import InputError

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
    """The Questionnaire item of field, with careloop's extensions for what FHIR cannot say.

    Long because it writes the field's attributes one after another, each as the FHIR
    element or extension that carries it.
    """
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
