"""A measure definition in plain language, for the pages and reports that show it."""

from __future__ import annotations

from collections.abc import Mapping

from careloop.measures import concepts as c
from careloop.measures.definition import Criteria, CriteriaGroup, Criterion, MeasureDefinition

STANDARD_NAMES: Mapping[int, str] = {
    c.OUTPATIENT_VISIT: "outpatient visit",
    c.INPATIENT_VISIT: "inpatient visit",
    c.EMERGENCY_ROOM_VISIT: "emergency room visit",
    c.EMERGENCY_AND_INPATIENT_VISIT: "emergency and inpatient visit",
    c.TELEHEALTH_VISIT: "telehealth visit",
    c.BODY_HEIGHT: "body height",
    c.BODY_WEIGHT: "body weight",
    c.BODY_MASS_INDEX: "body mass index",
}
"""Names of the standard concepts the built-in measures use."""

_NOUN = {
    "condition": "condition",
    "drug": "drug exposure",
    "procedure": "procedure",
    "measurement": "measurement",
    "observation": "observation",
    "visit": "visit",
    "death": "death",
}
_OPS = {"all_of": "all of", "any_of": "any of", "none_of": "none of"}


def _names(crit: Criterion, names: Mapping[int, str]) -> str:
    if not crit.concepts:
        return ""
    listed = ", ".join(names.get(i, f"concept {i}") for i in crit.concepts)
    more = " or a descendant" if crit.descendants else ""
    return f" ({listed}{more})"


def _value(crit: Criterion) -> str:
    if crit.value is None:
        return ""
    op, x = crit.value.op, crit.value.operand
    if op == "is_null":
        return " without a value" if x else " with a value"
    if op == "in" and isinstance(x, tuple):
        text = "in " + ", ".join(str(v) for v in x)
    elif op == "between" and isinstance(x, tuple):
        text = f"between {x[0]} and {x[1]}"
    elif op == "gt":
        text = f"above {x}"
    elif op == "lt":
        text = f"below {x}"
    else:
        text = f"equal to {x}"
    return f" with a value {text}"


def describe_criteria(node: Criteria, names: Mapping[int, str] | None = None) -> str:
    """One criterion or group in words."""
    known = names if names is not None else {**STANDARD_NAMES, **c.local_concepts()}
    if isinstance(node, CriteriaGroup):
        parts = "; ".join(describe_criteria(i, known) for i in node.items)
        if len(node.items) > 1:
            return f"{_OPS[node.op]} ({parts})"
        return f"not ({parts})" if node.op == "none_of" else parts
    noun = _NOUN[node.domain]
    if node.at == "any":
        article = "an" if noun[0] in "aeiou" else "a"
        return f"{article} {noun}{_names(node, known)}{_value(node)}"
    return f"the {node.at} {noun}{_names(node, known)} in the window{_value(node)}"


def describe_definition(
    definition: MeasureDefinition, names: Mapping[int, str] | None = None
) -> str:
    """The measure in a few sentences: who is counted, over which window, what is better."""
    d = definition
    subjects = "persons" if d.subject == "person" else "visits"
    window = (
        f"in the {d.lookback} up to the end of each {d.period}"
        if d.lookback is not None
        else f"in each {d.period}"
    )
    den = describe_criteria(d.denominator, names)
    lines = [f"{d.title}.", f"Denominator: {subjects} with {den}, {window}."]
    if d.exclusions is not None:
        lines.append(f"Excluded: {subjects} with {describe_criteria(d.exclusions, names)}.")
    if d.type == "continuous" and d.value is not None:
        lines.append(
            f"Value: the {d.aggregate} of the value of {describe_criteria(d.value, names)}."
        )
    elif d.numerator is not None:
        within = "of those, " if d.type in ("proportion", "count") else ""
        lines.append(f"Numerator: {within}{subjects} with {describe_criteria(d.numerator, names)}.")
    kind = {
        "proportion": "the share of the denominator in the numerator",
        "ratio": "numerator divided by denominator",
        "count": "a count",
        "continuous": f"the {d.aggregate}",
    }[d.type]
    better = "higher" if d.improvement == "up" else "lower"
    target = f"; target {d.target:g}" if d.target is not None else ""
    lines.append(f"The value is {kind}; {better} is better{target}.")
    return " ".join(lines)
