"""Measure definitions: the model, the YAML parser and its validation.

A measure is one YAML file (see docs/measures.md for the grammar). Parsing
collects every problem before failing, and each problem names the file and
the JSON path of the bad key, e.g.
``remission.yaml: $.numerator.all_of[0].measurement.value: expected one of
eq, in, between, gt, lt, is_null``.

The parser is written by hand rather than with a JSON-Schema library so the
messages say what the grammar expects in the measure's own words.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast, get_args

import yaml

from careloop.core.errors import ErrorDetail, InputTooLarge, ValidationFailed
from careloop.core.limits import YamlLimitExceeded, read_file, safe_load

MeasureType = Literal["proportion", "ratio", "continuous", "count"]
Subject = Literal["person", "visit"]
PeriodUnit = Literal["month", "quarter", "year"]
Improvement = Literal["up", "down"]
Aggregate = Literal["mean", "median"]
Domain = Literal["condition", "drug", "procedure", "measurement", "observation", "visit", "death"]
At = Literal["any", "first", "last"]
GroupOp = Literal["all_of", "any_of", "none_of"]
ValueOp = Literal["eq", "in", "between", "gt", "lt", "is_null"]
LookbackUnit = Literal["day", "week", "month", "year"]

DOMAINS: tuple[str, ...] = get_args(Domain)
GROUP_OPS: tuple[str, ...] = get_args(GroupOp)
VALUE_OPS: tuple[str, ...] = get_args(ValueOp)
STRATIFIERS: tuple[str, ...] = ("site", "sex", "age_band", "race", "ethnicity", "visit_type")
"""What a measure may be stratified by; ``visit_type`` only for visit measures."""

VALUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "measurement": ("value_as_number", "value_as_concept_id"),
    "observation": ("value_as_number", "value_as_concept_id", "value_as_string"),
    "drug": ("quantity", "days_supply"),
    "procedure": ("quantity",),
    "condition": (),
    "visit": (),
    "death": (),
}
"""Columns a value condition may test, per domain; the first is the default."""

MAX_DEPTH = 8
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_LOOKBACK = re.compile(r"^\s*(\d+)\s*(day|week|month|year)s?\s*$")
_TOP_KEYS = (
    "id",
    "title",
    "description",
    "version",
    "type",
    "subject",
    "period",
    "lookback",
    "improvement",
    "target",
    "aggregate",
    "value",
    "denominator",
    "numerator",
    "exclusions",
    "stratify",
)
_CRITERION_KEYS = ("concepts", "descendants", "value", "value_column", "at")


@dataclass(frozen=True)
class ValueCondition:
    """A test on an event's value, e.g. ``{in: [1]}`` or ``{between: [0, 10]}``."""

    op: ValueOp
    """Which test: eq, in, between, gt, lt or is_null."""
    operand: Any
    """The number, text, list or pair the test compares with (a bool for is_null)."""


@dataclass(frozen=True)
class Criterion:
    """Rows of one OMOP domain whose concept is in a concept set."""

    domain: Domain
    """condition, drug, procedure, measurement, observation, visit or death."""
    concepts: tuple[int, ...]
    """Concept ids (for death: causes; empty means any death)."""
    descendants: bool = False
    """Also match every descendant through ``concept_ancestor``."""
    value: ValueCondition | None = None
    """An optional test on the row's value."""
    value_column: str | None = None
    """The column the value test reads (default: the domain's first value column)."""
    at: At = "any"
    """Which row counts: any row in the window, or only the first or last one."""

    @property
    def column_for_value(self) -> str | None:
        """The column the value test reads, with the domain default resolved."""
        if self.value_column:
            return self.value_column
        cols = VALUE_COLUMNS[self.domain]
        return cols[0] if cols else None


@dataclass(frozen=True)
class CriteriaGroup:
    """``all_of``, ``any_of`` or ``none_of`` a list of criteria and groups."""

    op: GroupOp
    """How the items combine."""
    items: tuple[Criterion | CriteriaGroup, ...]
    """The criteria and nested groups (never empty)."""


Criteria: TypeAlias = Criterion | CriteriaGroup


@dataclass(frozen=True)
class Lookback:
    """How far back from the period end an event may lie, e.g. 12 months."""

    amount: int
    """How many units."""
    unit: LookbackUnit
    """day, week, month or year."""

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}{'s' if self.amount != 1 else ''}"


@dataclass(frozen=True)
class MeasureDefinition:
    """One quality measure, parsed and validated."""

    id: str
    """Stable lower-kebab id, e.g. ``remission-prevalence``."""
    title: str
    """One line for people."""
    type: MeasureType
    """proportion, ratio, continuous or count."""
    denominator: Criteria
    """Who (or which visits) the measure is about."""
    subject: Subject = "person"
    """What is counted: persons or visits."""
    period: PeriodUnit = "month"
    """Reporting period."""
    lookback: Lookback | None = None
    """Window before the period end (default: the period itself)."""
    improvement: Improvement = "up"
    """Whether a higher value is better (up) or worse (down)."""
    target: float | None = None
    """Optional goal for the value."""
    numerator: Criteria | None = None
    """Who of the denominator meets the measure (required for proportion and ratio)."""
    exclusions: Criteria | None = None
    """Who is taken out of the denominator (counted as ``excluded``)."""
    stratify: tuple[str, ...] = ()
    """Default strata: site, sex, age_band, race, ethnicity, visit_type."""
    aggregate: Aggregate | None = None
    """Continuous measures: mean or median of ``value``."""
    value: Criterion | None = None
    """Continuous measures: the row whose value is aggregated."""
    description: str = ""
    """Longer text for people."""
    version: str = ""
    """Optional version label of the definition."""
    source: str = field(default="<memory>", compare=False)
    """Where the definition came from (file path, ``builtin:…``, entry point)."""

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data (the canonical form the hash is taken of)."""
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "subject": self.subject,
            "period": self.period,
            "improvement": self.improvement,
            "denominator": _criteria_dict(self.denominator),
        }
        if self.description:
            out["description"] = self.description
        if self.version:
            out["version"] = self.version
        if self.lookback is not None:
            out["lookback"] = str(self.lookback)
        if self.target is not None:
            out["target"] = self.target
        if self.numerator is not None:
            out["numerator"] = _criteria_dict(self.numerator)
        if self.exclusions is not None:
            out["exclusions"] = _criteria_dict(self.exclusions)
        if self.stratify:
            out["stratify"] = list(self.stratify)
        if self.aggregate is not None:
            out["aggregate"] = self.aggregate
        if self.value is not None:
            out["value"] = _criteria_dict(self.value)
        return out

    @property
    def definition_hash(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict` (first 16 hex digits)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def criteria(self) -> list[Criterion]:
        """Every criterion of the definition (denominator, numerator, exclusions, value)."""
        found: list[Criterion] = []
        for part in (self.denominator, self.numerator, self.exclusions, self.value):
            if part is not None:
                _walk(part, found)
        return found


def _walk(node: Criteria, out: list[Criterion]) -> None:
    if isinstance(node, Criterion):
        out.append(node)
        return
    for item in node.items:
        _walk(item, out)


def _criteria_dict(node: Criteria) -> dict[str, Any]:
    if isinstance(node, CriteriaGroup):
        return {node.op: [_criteria_dict(i) for i in node.items]}
    body: dict[str, Any] = {"concepts": list(node.concepts)}
    if node.descendants:
        body["descendants"] = True
    if node.value is not None:
        operand = node.value.operand
        body["value"] = {node.value.op: list(operand) if isinstance(operand, tuple) else operand}
    if node.value_column:
        body["value_column"] = node.value_column
    if node.at != "any":
        body["at"] = node.at
    return {node.domain: body}


# ------------------------------------------------------------------- parsing


class _Problems:
    """Problems found while parsing one file, each at a JSON path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.details: list[ErrorDetail] = []

    def add(self, path: str, message: str, value: Any = None) -> None:
        safe = value if isinstance(value, str | int | float | bool) else None
        self.details.append(ErrorDetail(f"{self.source}: {path}", message, safe))


def _one_of(options: tuple[str, ...] | list[str]) -> str:
    return "expected one of " + ", ".join(options)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_definition(data: Any, *, source: str = "<memory>") -> MeasureDefinition:
    """Validate plain data (as loaded from YAML) and build a :class:`MeasureDefinition`.

    Long because it reads the definition's keys one after another, each with its own
    check, so that every problem in the document is reported at once.

    Args:
        data: The mapping of one measure.
        source: Name used in error locations, usually the file name.

    Raises:
        ValidationFailed: with one :class:`ErrorDetail` per problem, located as
            ``<source>: <JSON path>``.
    """
    p = _Problems(source)
    if not isinstance(data, Mapping):
        p.add("$", f"expected a mapping of measure keys, got {type(data).__name__}")
        _raise(p)
    for key in data:
        if key not in _TOP_KEYS:
            p.add(f"$.{key}", "unknown key; " + _one_of(_TOP_KEYS), str(key))

    def text(key: str, *, required: bool) -> str:
        value = data.get(key)
        if value is None:
            if required:
                p.add(f"$.{key}", "required key is missing")
            return ""
        if not isinstance(value, str) or not value.strip():
            p.add(f"$.{key}", "expected a non-empty string", value)
            return ""
        return value.strip()

    def choice(key: str, options: tuple[str, ...], default: str | None) -> str:
        value = data.get(key, default)
        if value is None:
            p.add(f"$.{key}", "required key is missing; " + _one_of(options))
            return options[0]
        if value not in options:
            p.add(f"$.{key}", _one_of(options), value)
            return options[0]
        return str(value)

    measure_id = text("id", required=True)
    if measure_id and not _ID.match(measure_id):
        p.add("$.id", "expected a lower-kebab id such as remission-prevalence", measure_id)
    title = text("title", required=True)
    description = text("description", required=False)
    version = data.get("version")
    if version is not None and not isinstance(version, str | int | float):
        p.add("$.version", "expected a string", None)
    mtype = choice("type", get_args(MeasureType), None)
    subject = choice("subject", get_args(Subject), "person")
    period = choice("period", get_args(PeriodUnit), "month")
    improvement = choice("improvement", get_args(Improvement), "up")

    lookback: Lookback | None = None
    if data.get("lookback") is not None:
        raw = data["lookback"]
        match = _LOOKBACK.match(raw) if isinstance(raw, str) else None
        if match is None or int(match.group(1)) < 1:
            p.add("$.lookback", "expected an amount and unit such as '12 months' or '90 days'", raw)
        else:
            lookback = Lookback(int(match.group(1)), cast(LookbackUnit, match.group(2)))
            if subject == "visit":
                p.add(
                    "$.lookback",
                    "visit measures look at rows of the visit itself; "
                    "remove lookback or use subject: person",
                    raw,
                )

    target: float | None = None
    if data.get("target") is not None:
        if _is_number(data["target"]):
            target = float(data["target"])
        else:
            p.add("$.target", "expected a number", data["target"])

    stratify: list[str] = []
    raw_strata = data.get("stratify")
    if raw_strata is not None:
        if not isinstance(raw_strata, list):
            p.add("$.stratify", "expected a list such as [site, sex]", None)
        else:
            for i, item in enumerate(raw_strata):
                if item not in STRATIFIERS:
                    p.add(f"$.stratify[{i}]", _one_of(STRATIFIERS), item)
                elif item == "visit_type" and subject != "visit":
                    p.add(f"$.stratify[{i}]", "visit_type needs subject: visit", item)
                elif item in stratify:
                    p.add(f"$.stratify[{i}]", "listed twice", item)
                else:
                    stratify.append(item)

    denominator = _criteria(data.get("denominator"), "$.denominator", p, required=True)
    numerator = _criteria(
        data.get("numerator"), "$.numerator", p, required=mtype in ("proportion", "ratio")
    )
    exclusions = _criteria(data.get("exclusions"), "$.exclusions", p, required=False)

    aggregate: str | None = None
    value: Criterion | None = None
    if mtype == "continuous":
        aggregate = choice("aggregate", get_args(Aggregate), None)
        raw_value = data.get("value")
        if raw_value is None:
            p.add(
                "$.value",
                "continuous measures need the row whose value is aggregated, "
                "e.g. value: {measurement: {concepts: [3036277], at: last}}",
            )
        else:
            node = _criteria(raw_value, "$.value", p, required=True)
            if isinstance(node, CriteriaGroup):
                p.add("$.value", "expected one criterion, not a group")
            elif node is not None:
                if node.column_for_value is None:
                    p.add("$.value", f"{node.domain} rows have no value to aggregate")
                value = node
    else:
        for key in ("aggregate", "value"):
            if data.get(key) is not None:
                p.add(f"$.{key}", "only continuous measures take this key")

    if p.details:
        _raise(p)
    assert denominator is not None
    return MeasureDefinition(
        id=measure_id,
        title=title,
        description=description,
        version=str(version) if version is not None else "",
        type=cast(MeasureType, mtype),
        subject=cast(Subject, subject),
        period=cast(PeriodUnit, period),
        lookback=lookback,
        improvement=cast(Improvement, improvement),
        target=target,
        denominator=denominator,
        numerator=numerator,
        exclusions=exclusions,
        stratify=tuple(stratify),
        aggregate=cast("Aggregate | None", aggregate),
        value=value,
        source=source,
    )


def _raise(p: _Problems) -> None:
    n = len(p.details)
    raise ValidationFailed(
        f"The measure definition {p.source} is not valid ({n} problem{'s' if n != 1 else ''}).",
        details=p.details,
    )


def _criteria(
    raw: Any, path: str, p: _Problems, *, required: bool, depth: int = 0
) -> Criteria | None:
    if raw is None:
        if required:
            p.add(
                path,
                "required key is missing; expected all_of, any_of, none_of or a "
                "criterion such as visit: {concepts: [9202]}",
            )
        return None
    if depth > MAX_DEPTH:
        # yaml.safe_load builds self-referencing lists from anchors (&a [*a]).
        p.add(path, f"criteria nested deeper than {MAX_DEPTH} levels (circular?)")
        return None
    if not isinstance(raw, Mapping) or len(raw) != 1:
        p.add(
            path,
            "expected a mapping with exactly one key: all_of, any_of, none_of or "
            "one of " + ", ".join(DOMAINS),
        )
        return None
    ((key, body),) = raw.items()
    if key in GROUP_OPS:
        sub = f"{path}.{key}"
        if not isinstance(body, list):
            p.add(sub, "expected a list of criteria")
            return None
        if not body:
            p.add(sub, "empty criteria: list at least one criterion")
            return None
        items = [
            _criteria(item, f"{sub}[{i}]", p, required=True, depth=depth + 1)
            for i, item in enumerate(body)
        ]
        if any(i is None for i in items):
            return None
        return CriteriaGroup(cast(GroupOp, key), tuple(i for i in items if i is not None))
    if key in DOMAINS:
        return _criterion(cast(Domain, key), body, f"{path}.{key}", p)
    p.add(f"{path}.{key}", "unknown key; " + _one_of([*GROUP_OPS, *DOMAINS]), str(key))
    return None


def _criterion(domain: Domain, body: Any, path: str, p: _Problems) -> Criterion | None:
    if body is None and domain == "death":
        body = {}
    if not isinstance(body, Mapping):
        p.add(path, "expected a mapping such as {concepts: [9202], descendants: true}")
        return None
    ok = True
    for key in body:
        if key not in _CRITERION_KEYS:
            p.add(f"{path}.{key}", "unknown key; " + _one_of(_CRITERION_KEYS), str(key))
            ok = False
    concepts = body.get("concepts")
    ids: list[int] = []
    if concepts is None:
        if domain != "death":
            p.add(f"{path}.concepts", "required key is missing; list concept ids")
            ok = False
    elif not isinstance(concepts, list) or (not concepts and domain != "death"):
        p.add(f"{path}.concepts", "expected a non-empty list of concept ids")
        ok = False
    else:
        for i, c in enumerate(concepts):
            if isinstance(c, bool) or not isinstance(c, int) or c < 0:
                p.add(f"{path}.concepts[{i}]", "expected a concept id (a whole number)", c)
                ok = False
            else:
                ids.append(c)
    descendants = body.get("descendants", False)
    if not isinstance(descendants, bool):
        p.add(f"{path}.descendants", "expected true or false", descendants)
        ok = False
    at = body.get("at", "any")
    if at not in get_args(At):
        p.add(f"{path}.at", _one_of(get_args(At)), at)
        ok = False
    value_column = body.get("value_column")
    allowed = VALUE_COLUMNS[domain]
    if value_column is not None and value_column not in allowed:
        msg = _one_of(allowed) if allowed else f"{domain} rows have no value column"
        p.add(f"{path}.value_column", msg, value_column)
        ok = False
    value: ValueCondition | None = None
    if body.get("value") is not None:
        if not allowed:
            p.add(f"{path}.value", f"{domain} rows have no value to test")
            ok = False
        else:
            value = _value_condition(body["value"], f"{path}.value", p)
            ok = ok and value is not None
            column = value_column or allowed[0]
            operands = value.operand if value is not None else ()
            texts = [v for v in (operands if isinstance(operands, tuple) else (operands,))]
            if column != "value_as_string" and any(isinstance(v, str) for v in texts):
                p.add(
                    f"{path}.value",
                    f"{column} holds numbers; compare text with value_column: value_as_string",
                )
                ok = False
    if not ok:
        return None
    return Criterion(
        domain=domain,
        concepts=tuple(ids),
        descendants=bool(descendants),
        value=value,
        value_column=value_column,
        at=cast(At, at),
    )


def _value_condition(raw: Any, path: str, p: _Problems) -> ValueCondition | None:
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in VALUE_OPS:
        p.add(path, _one_of(VALUE_OPS))
        return None
    ((op, operand),) = raw.items()
    sub = f"{path}.{op}"
    scalar = (int, float, str)
    if op == "eq":
        if isinstance(operand, bool) or not isinstance(operand, scalar):
            p.add(sub, "expected a number or text", None)
            return None
    elif op == "in":
        if (
            not isinstance(operand, list)
            or not operand
            or any(isinstance(v, bool) or not isinstance(v, scalar) for v in operand)
        ):
            p.add(sub, "expected a non-empty list of numbers or texts")
            return None
        if len({type(v) is str for v in operand}) > 1:
            p.add(sub, "expected numbers only or texts only, not a mix")
            return None
        operand = tuple(operand)
    elif op == "between":
        if (
            not isinstance(operand, list)
            or len(operand) != 2
            or not all(_is_number(v) for v in operand)
        ):
            p.add(sub, "expected [low, high], two numbers (both included)")
            return None
        if operand[0] > operand[1]:
            p.add(sub, "low is above high")
            return None
        operand = (operand[0], operand[1])
    elif op in ("gt", "lt"):
        if not _is_number(operand):
            p.add(sub, "expected a number", None)
            return None
    elif op == "is_null" and not isinstance(operand, bool):
        p.add(sub, "expected true or false", None)
        return None
    return ValueCondition(cast(ValueOp, op), operand)


MAX_MEASURE_FILE_BYTES = 1024 * 1024
"""The largest measure file read: a definition is a few kilobytes."""


def load_definition(path: Path | str) -> MeasureDefinition:
    """Read and validate one measure YAML file.

    Raises:
        ValidationFailed: the YAML is malformed or the definition is not valid.
        InputError: the file cannot be read, is not UTF-8 or is larger than 1 MB.
    """
    path = Path(path)
    try:
        data = read_file(path, max_bytes=MAX_MEASURE_FILE_BYTES)
    except InputTooLarge:
        raise InputTooLarge(
            f"The measure file {path} is larger than 1 MB; a measure definition is a few "
            "kilobytes of YAML. Check that it is the file you meant.",
            details=[ErrorDetail(path.name, "larger than 1 MB")],
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationFailed(
            f"The measure file {path.name} is not UTF-8 text.",
            details=[
                ErrorDetail(
                    f"{path.name}: line {line}",
                    f"byte 0x{data[exc.start]:02X} is not UTF-8; save the file as UTF-8",
                )
            ],
        ) from None
    return parse_yaml(text, source=path.name)


def parse_yaml(text: str, *, source: str = "<memory>") -> MeasureDefinition:
    """Parse one measure from YAML text (errors are located in ``source``)."""
    try:
        data = safe_load(text)
    except YamlLimitExceeded as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}" if mark is not None else "$"
        raise ValidationFailed(
            f"The measure file {source} cannot be read: {exc.problem}.",
            details=[ErrorDetail(f"{source}: {where}", str(exc.problem))],
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "$"
        raise ValidationFailed(
            f"The measure file {source} is not valid YAML.",
            details=[ErrorDetail(f"{source}: {where}", str(exc).splitlines()[0])],
        ) from exc
    return parse_definition(data, source=source)
