"""Declarative decision rules over CDS Hooks context and FHIR prefetch data.

A rule is ``{"id", "when": <condition>, "card": <card>, "variants"?}``. A
condition is one of::

    {"all": [cond, …]}   {"any": [cond, …]}   {"not": cond}
    {"exists": selector}
    {"count": selector, ">=": 2}
    {"age": {"prefetch": "patient"}, "<": 18}
    {"value": {"prefetch": "patient", "path": "gender"}, "==": "female"}
    {"value": {"context": "userId"}, "!=": "Practitioner/1"}
    {"risk": {"features": {"age": {"age": …}, "courses": {"count": …}}}, ">=": 0.2}

and a selector picks FHIR resources::

    {"prefetch": "medications" | "context": "draftOrders",
     "resourceType": "MedicationRequest", "code": ["system|code", "code"],
     "status": ["active"], "within_days": 365,
     "where": [{"path": "dosageInstruction.0.timing.repeat.periodUnit", "==": "d"}]}

A JSON interpreter of our own rather than CQL or FHIRPath: no maintained
Python CQL engine exists, and the few operations registry rules need are
easier to validate (with JSON paths) and to explain to a community.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from careloop.core.errors import ErrorDetail

COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_COMPARED = ("count", "age", "value", "risk")
_SELECTOR_KEYS = frozenset(
    {"prefetch", "context", "resourceType", "code", "status", "within_days", "where"}
)
_CODE_FIELDS = (
    "code",
    "medicationCodeableConcept",
    "valueCodeableConcept",
    "vaccineCode",
    "type",
)
_DATE_FIELDS = (
    "authoredOn",
    "effectiveDateTime",
    "onsetDateTime",
    "recordedDate",
    "occurrenceDateTime",
    "issued",
    "date",
    "performedDateTime",
)
_PERIOD_FIELDS = ("effectivePeriod", "period", "performedPeriod", "onsetPeriod")
TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z0-9_]+)\s*\}\}")

RiskFunction = Callable[[dict[str, float]], float]


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


class Facts:
    """What a rule can look at: the hook context, the prefetch data, the date, a risk model."""

    def __init__(
        self,
        context: Mapping[str, Any],
        prefetch: Mapping[str, Any],
        *,
        today: date,
        risk: RiskFunction | None = None,
    ) -> None:
        self.context = context
        self.prefetch = prefetch
        self.today = today
        self.risk = risk


def resources_of(value: Any) -> list[Mapping[str, Any]]:
    """The FHIR resources in a prefetch or context value (a resource, a Bundle, or null)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    if not isinstance(value, Mapping):
        return []
    if value.get("resourceType") == "Bundle":
        entries = value.get("entry") or []
        return [
            e["resource"]
            for e in entries
            if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
        ]
    return [value]


def _codings(resource: Mapping[str, Any]) -> Iterator[tuple[str | None, str | None]]:
    for name in _CODE_FIELDS:
        concept = resource.get(name)
        concepts = concept if isinstance(concept, list) else [concept]
        for item in concepts:
            if isinstance(item, Mapping):
                for coding in item.get("coding") or []:
                    if isinstance(coding, Mapping):
                        yield coding.get("system"), coding.get("code")


def _code_matches(resource: Mapping[str, Any], wanted: list[str]) -> bool:
    for system, code in _codings(resource):
        for item in wanted:
            want_system, bar, want_code = item.rpartition("|")
            if code == want_code and (not bar or want_system == system):
                return True
    return False


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) <= 10:
            parts = [int(p) for p in value.split("-")]
            while len(parts) < 3:
                parts.append(1)
            return date(parts[0], parts[1], parts[2])
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def resource_date(resource: Mapping[str, Any]) -> date | None:
    """The clinically relevant date of a resource (first of the usual date fields)."""
    for name in _DATE_FIELDS:
        found = _parse_date(resource.get(name))
        if found is not None:
            return found
    for name in _PERIOD_FIELDS:
        period = resource.get(name)
        if isinstance(period, Mapping):
            found = _parse_date(period.get("start"))
            if found is not None:
                return found
    return None


def select(selector: Mapping[str, Any], facts: Facts) -> list[Mapping[str, Any]]:
    """The resources a selector picks."""
    if "prefetch" in selector:
        pool = resources_of(facts.prefetch.get(str(selector["prefetch"])))
    else:
        pool = resources_of(facts.context.get(str(selector["context"])))
    kind = selector.get("resourceType")
    codes = selector.get("code")
    statuses = selector.get("status")
    within = selector.get("within_days")
    out = []
    for resource in pool:
        if kind is not None and resource.get("resourceType") != kind:
            continue
        if codes is not None and not _code_matches(resource, list(codes)):
            continue
        if statuses is not None and resource.get("status") not in statuses:
            continue
        if within is not None:
            when = resource_date(resource)
            if when is None or (facts.today - when).days > int(within) or when > facts.today:
                continue
        if not all(_where_holds(resource, clause) for clause in selector.get("where", ())):
            continue
        out.append(resource)
    return out


def _where_holds(resource: Mapping[str, Any], clause: Mapping[str, Any]) -> bool:
    op = next(k for k in clause if k in COMPARATORS)
    value = _path_value(resource, str(clause["path"]))
    if value is None:
        return False
    try:
        return bool(COMPARATORS[op](value, clause[op]))
    except TypeError:
        return False


def _path_value(value: Any, path: str) -> Any:
    for part in path.split(".") if path else []:
        if isinstance(value, list):
            if not part.isdigit() or int(part) >= len(value):
                return None
            value = value[int(part)]
        elif isinstance(value, Mapping):
            value = value.get(part)
        else:
            return None
    return value


def _reference(ref: Mapping[str, Any], facts: Facts) -> Any:
    if "context" in ref:
        return _path_value(facts.context.get(str(ref["context"])), str(ref.get("path", "")))
    value = facts.prefetch.get(str(ref["prefetch"]))
    return _path_value(value, str(ref.get("path", "")))


def _age(ref: Mapping[str, Any], facts: Facts) -> float | None:
    patient = _reference(ref, facts)
    born = _parse_date(patient.get("birthDate")) if isinstance(patient, Mapping) else None
    if born is None:
        return None
    years = facts.today.year - born.year
    if (facts.today.month, facts.today.day) < (born.month, born.day):
        years -= 1
    return float(years)


def measure(expression: Any, facts: Facts) -> Any:
    """The value of a feature expression: a number, ``count``, ``age`` or ``value``."""
    if isinstance(expression, int | float) and not isinstance(expression, bool):
        return expression
    if "count" in expression:
        return len(select(expression["count"], facts))
    if "age" in expression:
        return _age(expression["age"], facts)
    if "value" in expression:
        return _reference(expression["value"], facts)
    features = {name: measure(sub, facts) for name, sub in expression["risk"]["features"].items()}
    if facts.risk is None or any(v is None for v in features.values()):
        return None
    return facts.risk({k: float(v) for k, v in features.items()})


def holds(condition: Mapping[str, Any], facts: Facts) -> bool:
    """Whether ``condition`` holds for ``facts`` (a missing value makes a comparison false)."""
    if "all" in condition:
        return all(holds(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, facts) for c in condition["any"])
    if "not" in condition:
        return not holds(condition["not"], facts)
    if "exists" in condition:
        return bool(select(condition["exists"], facts))
    op = next(k for k in condition if k in COMPARATORS)
    left = measure({k: v for k, v in condition.items() if k != op}, facts)
    if left is None:
        return False
    try:
        return bool(COMPARATORS[op](left, condition[op]))
    except TypeError:
        return False


def fill_tokens(value: Any, context: Mapping[str, Any]) -> Any:
    """Replace ``{{context.x}}`` in every string of a card by the context's primitive values."""
    if isinstance(value, str):
        return TOKEN.sub(lambda m: str(context.get(m.group(1), "")), value)
    if isinstance(value, Mapping):
        return {k: fill_tokens(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_tokens(v, context) for v in value]
    return value


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def condition_problems(
    condition: Any, where: str, *, prefetch_keys: frozenset[str], has_model: bool
) -> list[ErrorDetail]:
    """Problems of a condition's structure, each at its JSON path."""
    out: list[ErrorDetail] = []
    if not isinstance(condition, Mapping) or not condition:
        return [ErrorDetail(where, "A condition must be a non-empty object.")]
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        items = condition[key]
        if len(condition) != 1 or not isinstance(items, list) or not items:
            return [ErrorDetail(where, f"`{key}` takes a non-empty list and nothing else.")]
        for i, item in enumerate(items):
            out.extend(
                condition_problems(
                    item, f"{where}.{key}[{i}]", prefetch_keys=prefetch_keys, has_model=has_model
                )
            )
        return out
    if "not" in condition:
        if len(condition) != 1:
            return [ErrorDetail(where, "`not` takes one condition and nothing else.")]
        return condition_problems(
            condition["not"], f"{where}.not", prefetch_keys=prefetch_keys, has_model=has_model
        )
    if "exists" in condition:
        if len(condition) != 1:
            return [ErrorDetail(where, "`exists` takes one selector and nothing else.")]
        return selector_problems(condition["exists"], f"{where}.exists", prefetch_keys)
    ops = [k for k in condition if k in COMPARATORS]
    measured = [k for k in condition if k in _COMPARED]
    if len(ops) != 1 or len(measured) != 1 or len(condition) != 2:
        return [
            ErrorDetail(
                where,
                "Expected one of all/any/not/exists, or one of count/age/value/risk with one "
                f"comparison ({', '.join(COMPARATORS)}); found keys {sorted(condition)}.",
            )
        ]
    return _feature_problems(
        {measured[0]: condition[measured[0]]}, where, prefetch_keys, has_model=has_model
    )


def _feature_problems(
    expression: Any, where: str, prefetch_keys: frozenset[str], *, has_model: bool
) -> list[ErrorDetail]:
    if isinstance(expression, int | float) and not isinstance(expression, bool):
        return []
    if not isinstance(expression, Mapping) or len(expression) != 1:
        return [ErrorDetail(where, "A feature is a number or one of count/age/value.")]
    kind, arg = next(iter(expression.items()))
    if kind == "count":
        return selector_problems(arg, f"{where}.count", prefetch_keys)
    if kind in ("age", "value"):
        return _reference_problems(arg, f"{where}.{kind}", prefetch_keys)
    if kind == "risk":
        if not has_model:
            return [ErrorDetail(f"{where}.risk", "A risk condition needs model.json.")]
        features = arg.get("features") if isinstance(arg, Mapping) else None
        if not isinstance(features, Mapping) or not features:
            return [ErrorDetail(f"{where}.risk.features", "Name each model feature here.")]
        out: list[ErrorDetail] = []
        for name, sub in features.items():
            out.extend(
                _feature_problems(
                    sub, f"{where}.risk.features.{name}", prefetch_keys, has_model=False
                )
            )
        return out
    return [ErrorDetail(where, f"Unknown feature {kind!r}: use count, age, value or risk.")]


def _reference_problems(ref: Any, where: str, prefetch_keys: frozenset[str]) -> list[ErrorDetail]:
    if not isinstance(ref, Mapping) or ("prefetch" in ref) == ("context" in ref):
        return [ErrorDetail(where, "Name either a `prefetch` key or a `context` field.")]
    if "prefetch" in ref and ref["prefetch"] not in prefetch_keys:
        return [
            ErrorDetail(
                f"{where}.prefetch",
                f"Prefetch key {ref['prefetch']!r} is not declared in service.json "
                f"(declared: {', '.join(sorted(prefetch_keys)) or 'none'}).",
            )
        ]
    unknown = set(ref) - {"prefetch", "context", "path"}
    if unknown:
        return [ErrorDetail(where, f"Unknown keys {sorted(unknown)}.")]
    return []


def selector_problems(
    selector: Any, where: str, prefetch_keys: frozenset[str]
) -> list[ErrorDetail]:
    """Problems of a resource selector."""
    if not isinstance(selector, Mapping) or ("prefetch" in selector) == ("context" in selector):
        return [
            ErrorDetail(where, "A selector names either a `prefetch` key or a `context` field.")
        ]
    out: list[ErrorDetail] = []
    unknown = set(selector) - _SELECTOR_KEYS
    if unknown:
        out.append(ErrorDetail(where, f"Unknown selector keys {sorted(unknown)}."))
    if "prefetch" in selector and selector["prefetch"] not in prefetch_keys:
        out.append(
            ErrorDetail(
                f"{where}.prefetch",
                f"Prefetch key {selector['prefetch']!r} is not declared in service.json "
                f"(declared: {', '.join(sorted(prefetch_keys)) or 'none'}).",
            )
        )
    for key in ("code", "status"):
        items = selector.get(key)
        if items is not None and (
            not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items)
        ):
            out.append(ErrorDetail(f"{where}.{key}", f"`{key}` must be a list of strings."))
    within = selector.get("within_days")
    if within is not None and (not isinstance(within, int) or within < 0):
        out.append(ErrorDetail(f"{where}.within_days", "`within_days` must be an integer ≥ 0."))
    clauses = selector.get("where", [])
    if not isinstance(clauses, list):
        out.append(ErrorDetail(f"{where}.where", "`where` is a list of {path, comparison}."))
        return out
    for i, clause in enumerate(clauses):
        ops = [k for k in clause if k in COMPARATORS] if isinstance(clause, Mapping) else []
        if (
            not isinstance(clause, Mapping)
            or not isinstance(clause.get("path"), str)
            or len(ops) != 1
            or len(clause) != 2
        ):
            out.append(
                ErrorDetail(
                    f"{where}.where[{i}]",
                    'Each clause is {"path": "a.0.b", "<op>": value} with one comparison.',
                )
            )
    return out
