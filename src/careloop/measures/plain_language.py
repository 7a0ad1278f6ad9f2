"""A measure's definition in plain language, for the people who act on its number.

:func:`describe` turns the YAML criteria into sentences such as "Counted: clinic
visits (outpatient visit, telehealth visit or inpatient visit) where the
physician global assessment of IBD activity has the value 1." Concept ids are
named from the active content packages' concept maps and answer labels
(:func:`careloop.core.content.active_content`), then from ``names`` (e.g. the
warehouse vocabulary), else shown as ``concept 123``.
"""

from __future__ import annotations

from collections.abc import Mapping

from careloop.core.content import active_content
from careloop.measures.definition import Criteria, CriteriaGroup, Criterion, MeasureDefinition

STANDARD_NAMES: dict[int, str] = {
    # OMOP Visit vocabulary and CMS Place of Service
    9202: "outpatient visit",
    9201: "inpatient visit",
    9203: "emergency room visit",
    262: "emergency room and inpatient visit",
    5083: "telehealth visit",
    # LOINC 8302-2, 29463-7, 39156-5
    3036277: "body height",
    3025315: "body weight",
    3038553: "body mass index",
}
"""Names of common standard OMOP concepts, when no vocabulary is loaded."""

_DOMAIN_WORDS = {
    "condition": "a diagnosis of",
    "drug": "a prescription of",
    "procedure": "a procedure:",
    "measurement": "a measurement of",
    "observation": "a recorded",
    "visit": "a visit:",
    "death": "death",
}
_AT = {"any": "", "first": "the first ", "last": "the last "}
_OPS = {"all_of": "all of", "any_of": "at least one of", "none_of": "none of"}


def concept_name(concept_id: int, names: Mapping[int, str] | None = None) -> str:
    """A readable name of one concept id."""
    local = active_content().concept_names()
    if concept_id in local:
        name = local[concept_id]
        # "Physician global…" → "physician global…"; "PUCAI…" and "Crohn's…" stay
        first = name.split(" ", 1)[0]
        return name[0].lower() + name[1:] if first[1:].islower() and "'" not in first else name
    if concept_id in STANDARD_NAMES:
        return STANDARD_NAMES[concept_id]
    if names and concept_id in names:
        return names[concept_id]
    return f"concept {concept_id}"


def _join(words: list[str], last: str = "or") -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" {last} " + words[-1]


def _answer(criterion: Criterion, value: object) -> str:
    known = active_content().answer_labels()
    labels = {k: v for i in criterion.concepts for k, v in known.get(i, {}).items()}
    if isinstance(value, int | float) and int(value) == value and int(value) in labels:
        return f"{labels[int(value)]} ({value})"
    return str(value)


def _value(criterion: Criterion) -> str:
    v = criterion.value
    if v is None:
        return ""
    operand = v.operand
    if v.op == "eq":
        return f": {_answer(criterion, operand)}"
    if v.op == "in":
        values = [_answer(criterion, x) for x in operand]
        return f": {_join(values)}"
    if v.op == "between":
        return f" with a value from {operand[0]} to {operand[1]}"
    if v.op == "gt":
        return f" with a value above {operand}"
    if v.op == "lt":
        return f" with a value below {operand}"
    return " with no value recorded" if operand else " with a value recorded"


def criterion_text(criterion: Criterion, names: Mapping[int, str] | None = None) -> str:
    """One criterion as a phrase, e.g. "the last recorded physician global assessment … 1"."""
    concepts = [concept_name(i, names) for i in criterion.concepts]
    what = _join(concepts)
    if criterion.descendants and concepts:
        what += " (or a more specific kind)"
    if criterion.domain == "death":
        return "death" + (f" from {what}" if concepts else "")
    prefix = _AT[criterion.at]
    words = _DOMAIN_WORDS[criterion.domain]
    if prefix:
        words = words.replace("a ", "", 1)
        return f"{prefix}{words} {what}{_value(criterion)}".replace("  ", " ")
    return f"{words} {what}{_value(criterion)}"


def criteria_text(node: Criteria, names: Mapping[int, str] | None = None) -> str:
    """A criterion or a group as a phrase; nested groups in brackets."""
    if isinstance(node, Criterion):
        return criterion_text(node, names)
    parts = [criteria_text(i, names) for i in node.items]
    if len(parts) == 1 and node.op != "none_of":
        return parts[0]
    if node.op == "all_of":
        return _join(parts, "and")
    inner = "; ".join(
        f"({p})" if isinstance(i, CriteriaGroup) else p
        for p, i in zip(parts, node.items, strict=True)
    )
    return f"{_OPS[node.op]}: {inner}"


def _window(definition: MeasureDefinition) -> str:
    period = {"month": "month", "quarter": "quarter", "year": "year"}[definition.period]
    if definition.lookback is not None:
        return f"in the {definition.lookback} up to the end of each {period}"
    return f"in each {period}"


def describe(
    definition: MeasureDefinition, names: Mapping[int, str] | None = None
) -> tuple[str, ...]:
    """The definition as a few sentences: who is counted, who meets it, who is left out."""
    subjects = "patients" if definition.subject == "person" else "visits"
    sentences = [
        f"Counted: {subjects} with {criteria_text(definition.denominator, names)}, "
        f"{_window(definition)}."
    ]
    if definition.numerator is not None:
        verb = (
            "Of those, meeting the measure" if definition.type == "proportion" else "Counted on top"
        )
        sentences.append(f"{verb}: {subjects} with {criteria_text(definition.numerator, names)}.")
    if definition.value is not None:
        agg = definition.aggregate or "mean"
        sentences.append(
            f"The number shown is the {agg} over those {subjects} of "
            f"{criterion_text(definition.value, names)}."
        )
    if definition.exclusions is not None:
        sentences.append(
            f"Left out: {subjects} with {criteria_text(definition.exclusions, names)}."
        )
    shown = {
        "proportion": "The number shown is the share of counted "
        + subjects
        + " that meet the measure.",
        "ratio": "The number shown is the first count divided by the second.",
        "count": "The number shown is how many there were.",
        "continuous": "",
    }[definition.type]
    if shown:
        sentences.append(shown)
    better = "Higher is better." if definition.improvement == "up" else "Lower is better."
    if definition.target is not None:
        target = (
            f"{definition.target:.0%}"
            if definition.type == "proportion"
            else f"{definition.target:g}"
        )
        better += f" The target is {target}."
    sentences.append(better)
    return tuple(sentences)


def describe_definition(
    definition: MeasureDefinition, names: Mapping[int, str] | None = None
) -> str:
    """The measure's title and :func:`describe`'s sentences as one paragraph."""
    return " ".join((definition.title.rstrip(".") + ".", *describe(definition, names)))
