"""Validating one response against its form: every field error at once.

:func:`validate_response` takes a form and the values someone entered (as
text, the way a web form or a CSV cell gives them) and returns a
:class:`ValidationResult`: the cleaned values in REDCap's stored form, the
calculated fields computed, the fields that branching logic hides, and every
error with the field, the value and the rule that failed. The entry API, the
pages and the bulk importer all call it, so a value is judged the same way
whichever door it came in by.

Stored forms of values: integers without a sign or leading zeros, numbers as
written (a decimal comma, which the ``…comma_decimal`` types take, becomes a
point), dates ``YYYY-MM-DD`` (``date_dmy`` and ``date_mdy`` also take their own
order, ``31-03-2024`` / ``03-31-2024``), datetimes ``YYYY-MM-DD HH:MM[:SS]``,
times ``HH:MM``, ``HH:MM:SS`` or ``MM:SS`` as their type says, yes/no and
true/false ``1``/``0``, a choice its code, a checkbox the tuple of checked
codes in the form's order. File-upload and signature fields store nothing: a
value given for one (a REDCap export holds the file's name) is ignored and
listed in :attr:`ValidationResult.ignored`.

Logic that names a field of another form (REDCap allows this within a record)
reads that form's answer from ``context``. When the caller has none for it,
careloop cannot tell whether the field is shown: it keeps the field shown
(its value is kept, never cleared) and does not require it; a calculation
takes the missing answer as empty, as REDCap does. Logic careloop cannot
evaluate at all (another event's value, a smart variable: see
:attr:`~careloop.capture.expressions.Expression.evaluable`) is treated the
same way, and such a calculation is left blank.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from careloop.capture.expressions import Expression, format_number, truthy
from careloop.capture.forms import Field, FieldType, Form, checkbox_column, number_text
from careloop.core.errors import ErrorDetail, ValidationFailed

__all__ = ["FieldError", "FormValidator", "ValidationResult", "validate_response"]

StoredValue = str | tuple[str, ...]

HiddenPolicy = Literal["clear", "flag"]


@dataclass(frozen=True)
class FieldError:
    """One field's value broke one rule."""

    field: str
    """The field's variable name."""
    value: object
    """The value as given (``None`` when missing)."""
    rule: str
    """Which rule: ``unknown_field``, ``type``, ``choice``, ``min``, ``max``,
    ``required``, ``hidden`` or ``no_value``."""
    message: str
    """What was wrong, what was expected and how to fix it."""

    def as_detail(self, prefix: str = "") -> ErrorDetail:
        """As an :class:`ErrorDetail` located at ``prefix:field`` (or just the field)."""
        location = f"{prefix}:{self.field}" if prefix else self.field
        value = self.value if self.value not in (None, "") else None
        return ErrorDetail(location, f"{self.message} [rule: {self.rule}]", value)


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one response."""

    values: Mapping[str, StoredValue]
    """Clean stored values of the fields that are shown and filled, calculated fields included."""
    errors: tuple[FieldError, ...]
    """Every problem found, in form order."""
    hidden: frozenset[str]
    """Fields that branching logic hides for these values."""
    cleared: tuple[str, ...]
    """Hidden fields whose given values were dropped (``hidden="clear"``)."""
    ignored: tuple[str, ...] = ()
    """File-upload and signature fields whose given value was not stored
    (careloop keeps no files)."""
    missing_context: tuple[str, ...] = ()
    """Fields of other forms that this form's logic reads but ``context`` did not give."""

    @property
    def ok(self) -> bool:
        """No errors."""
        return not self.errors

    def raise_for_errors(self, *, location: str = "", form: str = "") -> None:
        """Raise :class:`ValidationFailed` listing every error, if there is any.

        Args:
            location: Prefix of each detail's location, e.g. ``visits.csv:12``.
            form: The form's name, for the message.
        """
        if self.errors:
            what = f"form {form!r}" if form else "the response"
            n = len(self.errors)
            raise ValidationFailed(
                f"{n} {'value' if n == 1 else 'values'} in {what} failed validation; "
                "nothing was saved.",
                details=[e.as_detail(location) for e in self.errors],
            )


class _Reject(Exception):
    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        self.message = message


_INTEGER = re.compile(r"^[-+]?[0-9]+$")
_NUMBER = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATETIME = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]([0-9]{2}:[0-9]{2})$")
_DATETIME_S = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]([0-9]{2}:[0-9]{2}:[0-9]{2})$")
_NDP = re.compile(r"^number_([1-9])dp(_comma_decimal)?$")
_NUMBER_COMMA = re.compile(r"^[-+]?(?:[0-9]+[.,]?[0-9]*|[.,][0-9]+)$")
_DMY = re.compile(r"^([0-9]{1,2})[-/.]([0-9]{1,2})[-/.]([0-9]{4})(?:[ T](.*))?$")
# REDCap's own patterns (its redcap_validation_types table), for the types whose
# rule is a pattern alone.
_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "time": (
        re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
        "a time as HH:MM (24-hour), e.g. 14:30",
    ),
    "time_hh_mm_ss": (
        re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"),
        "a time as HH:MM:SS (24-hour), e.g. 14:30:05",
    ),
    "time_mm_ss": (
        re.compile(r"^[0-5][0-9]:[0-5][0-9]$"),
        "minutes and seconds as MM:SS, e.g. 04:30",
    ),
    "email": (
        re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"),
        "an e-mail address, e.g. name@example.org",
    ),
    "phone": (
        re.compile(r"^\+?[0-9 ().\-]{7,25}$"),
        "a phone number: digits, spaces, ( ) - . and a leading +",
    ),
    "phone_australia": (
        re.compile(r"^(\(0[2-8]\)|0[2-8])\s*[0-9]{4}\s*[0-9]{4}$"),
        "an Australian phone number, e.g. (02) 1234 5678",
    ),
    "phone_uk": (
        re.compile(
            r"^((((\+44|0044)\s?[0-9]{4}|\(?0[0-9]{4}\)?)\s?[0-9]{3}\s?[0-9]{3})"
            r"|(((\+44|0044)\s?[0-9]{3}|\(?0[0-9]{3}\)?)\s?[0-9]{3}\s?[0-9]{4})"
            r"|(((\+44|0044)\s?[0-9]{2}|\(?0[0-9]{2}\)?)\s?[0-9]{4}\s?[0-9]{4}))"
            r"(\s?#([0-9]{4}|[0-9]{3}))?$"
        ),
        "a UK phone number, e.g. +44 7911 123456 or 020 7946 0018",
    ),
    "zipcode": (re.compile(r"^[0-9]{5}(?:-[0-9]{4})?$"), "a US ZIP code: 12345 or 12345-6789"),
    "postalcode_australia": (re.compile(r"^[0-9]{4}$"), "an Australian postcode: 4 digits"),
    "postalcode_canada": (
        re.compile(r"^[ABCEGHJKLMNPRSTVXY][0-9][A-Z]\s*[0-9][A-Z][0-9]$", re.IGNORECASE),
        "a Canadian postal code, e.g. K1A 0B1",
    ),
    "postalcode_french": (
        re.compile(r"^((0?[1-9])|([1-8][0-9])|(9[0-8]))[0-9]{3}$"),
        "a French postal code: 5 digits, e.g. 69008",
    ),
    "postalcode_germany": (
        re.compile(r"^(0[1-9]|[1-9][0-9])[0-9]{3}$"),
        "a German postal code: 5 digits, e.g. 10115",
    ),
    "postalcode_uk": (
        re.compile(r"^(([A-Z]{1,2}[0-9]{1,2})|([A-Z]{1,2}[0-9][A-Z])) [0-9][ABD-HJLNP-Z]{2}$"),
        "a UK postcode in capitals with its space, e.g. SW1A 1AA",
    ),
    "ssn": (
        re.compile(r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$"),
        "a US Social Security number: 123-45-6789",
    ),
    "alpha_only": (re.compile(r"^[A-Za-z]+$"), "letters only (A to Z), no spaces or digits"),
    "mrn_10d": (re.compile(r"^[0-9]{10}$"), "a medical record number of 10 digits"),
    "mrn_generic": (
        re.compile(r"^[A-Za-z0-9_-]+$"),
        "a medical record number: letters, digits, '-' and '_'",
    ),
    "vmrn": (re.compile(r"^[0-9]{4,9}$"), "a Vanderbilt medical record number: 4 to 9 digits"),
}

Parser = Callable[[str], str]
Comparable = int | float | Decimal | str


def _as_text(raw: object) -> str:
    """Accept what an API client may send: numbers, dates, booleans as well as text."""
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, bool):
        return "1" if raw else "0"
    if isinstance(raw, int | Decimal):
        return str(raw)
    if isinstance(raw, float):
        return format_number(raw)
    if isinstance(raw, dt.datetime):
        return raw.strftime("%Y-%m-%d %H:%M:%S" if raw.second else "%Y-%m-%d %H:%M")
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if isinstance(raw, dt.time):
        return raw.strftime("%H:%M")
    return str(raw).strip()


def _comma_number(validation: str) -> Callable[[str], float]:
    return lambda t: float(number_text(t.strip(), validation))


def _date_in_order(s: str, order: str) -> str:
    """``31-03-2024`` (dmy) or ``03-31-2024`` (mdy), with any time after it, as ISO."""
    m = _DMY.match(s)
    if m is None:
        return s
    a, b, year = m.group(1), m.group(2), m.group(3)
    day, month = (a, b) if order == "dmy" else (b, a)
    rest = f" {m.group(4)}" if m.group(4) else ""
    return f"{year}-{int(month):02d}-{int(day):02d}{rest}"


def _text_parser(validation: str | None) -> tuple[Parser, Callable[[str], Comparable] | None]:
    """(check-and-normalise, key for range comparison) of a text validation type."""
    if validation is None or validation == "autocomplete":
        return (lambda s: s), None
    if validation == "integer":

        def integer(s: str) -> str:
            if not _INTEGER.match(s):
                raise _Reject("type", "expected a whole number (integer), e.g. 42")
            return str(int(s))

        return integer, int
    if validation == "number":

        def number(s: str) -> str:
            if not _NUMBER.match(s):
                raise _Reject("type", "expected a number, e.g. 12.5")
            return s.lstrip("+")

        return number, float
    if validation == "number_comma_decimal":

        def comma_number(s: str) -> str:
            if not _NUMBER_COMMA.match(s):
                raise _Reject("type", "expected a number with a decimal comma, e.g. 12,5")
            return s.replace(",", ".").lstrip("+")

        return comma_number, _comma_number(validation)
    m = _NDP.match(validation)
    if m:
        places = int(m.group(1))
        comma = m.group(2) is not None
        sep = "[.,]" if comma else r"\."
        pattern = re.compile(rf"^[-+]?[0-9]+{sep}[0-9]{{{places}}}$")
        example = ("1," if comma else "1.") + "5" * places

        def fixed(s: str) -> str:
            if not pattern.match(s):
                raise _Reject(
                    "type",
                    f"expected a number with exactly {places} decimal "
                    f"place{'s' if places > 1 else ''}, e.g. {example}",
                )
            return s.replace(",", ".").lstrip("+")

        return fixed, (_comma_number(validation) if comma else float)
    order = validation.rsplit("_", 1)[-1]
    if validation.startswith("date_"):
        shown = {"dmy": ", or DD-MM-YYYY", "mdy": ", or MM-DD-YYYY"}.get(order, "")

        def date(s: str) -> str:
            s = _date_in_order(s, order) if order in ("dmy", "mdy") else s
            if not _DATE.match(s):
                raise _Reject("type", f"expected a date as YYYY-MM-DD{shown}, e.g. 2024-03-31")
            try:
                dt.date.fromisoformat(s)
            except ValueError:
                raise _Reject("type", f"{s} is not a real date") from None
            return s

        return date, str
    if validation.startswith("datetime"):
        seconds = validation.startswith("datetime_seconds")
        shape = _DATETIME_S if seconds else _DATETIME
        wanted = "YYYY-MM-DD HH:MM:SS" if seconds else "YYYY-MM-DD HH:MM"

        def datetime_(s: str) -> str:
            s = _date_in_order(s, order) if order in ("dmy", "mdy") else s
            m = shape.match(s)
            if not m:
                raise _Reject("type", f"expected a date and time as {wanted}")
            try:
                dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
            except ValueError:
                raise _Reject("type", f"{s} is not a real date and time") from None
            return f"{m.group(1)} {m.group(2)}"

        return datetime_, str
    pattern_, wanted_ = _PATTERNS[validation]

    def matches(s: str) -> str:
        if not pattern_.match(s):
            raise _Reject("type", f"expected {wanted_}")
        if validation == "phone" and sum(c.isdigit() for c in s) < 7:
            raise _Reject("type", "a phone number has at least 7 digits")
        return s

    return matches, (str if validation.startswith("time") else None)


@dataclass(frozen=True)
class _Bound:
    text: str
    value: Comparable | None  # None: resolved per call ("today"/"now")


def _bound(
    text: str | None, key: Callable[[str], Comparable] | None, validation: str
) -> _Bound | None:
    if text is None or key is None:
        return None
    low = text.strip().lower()
    if low in ("today", "now"):
        return _Bound(low, None)
    if validation.startswith("datetime"):
        return _Bound(text, text if len(text) > 10 else f"{text} 00:00")
    return _Bound(text, key(text.strip()))


def _resolve(bound: _Bound, now: dt.datetime, validation: str) -> Comparable:
    if bound.value is not None:
        return bound.value
    if validation.startswith("datetime"):
        fmt = "%Y-%m-%d %H:%M:%S" if validation.startswith("datetime_seconds") else "%Y-%m-%d %H:%M"
        return now.strftime(fmt) if bound.text == "now" else now.strftime("%Y-%m-%d 00:00")
    if validation == "time":
        return now.strftime("%H:%M")
    if validation == "time_hh_mm_ss":
        return now.strftime("%H:%M:%S")
    return now.date().isoformat()


@dataclass(frozen=True)
class _Spec:
    field: Field
    parse: Parser
    key: Callable[[str], Comparable] | None
    low: _Bound | None
    high: _Bound | None
    validation: str


def _spec(field: Field) -> _Spec:
    t = field.type
    validation = field.validation or ""
    key: Callable[[str], Comparable] | None
    if t in (FieldType.DROPDOWN, FieldType.RADIO):
        codes = frozenset(field.choice_codes)
        listed = ", ".join(f"{c.code} ({c.label})" for c in field.choices)

        def choice(s: str) -> str:
            if s not in codes:
                raise _Reject("choice", f"not one of the choices: {listed}")
            return s

        parse: Parser = choice
        key = None
    elif t in (FieldType.YESNO, FieldType.TRUEFALSE):
        words = "1 (yes) or 0 (no)" if t is FieldType.YESNO else "1 (true) or 0 (false)"

        def flag(s: str) -> str:
            if s not in ("0", "1"):
                raise _Reject("choice", f"expected {words}")
            return s

        parse, key = flag, None
    elif t is FieldType.SLIDER:

        def slider(s: str) -> str:
            if not _INTEGER.match(s):
                raise _Reject("type", "expected a whole number for the slider")
            return str(int(s))

        parse, key = slider, int
        validation = "integer"
    elif t in (FieldType.TEXT, FieldType.NOTES):
        parse, key = _text_parser(field.validation)
    else:
        parse, key = (lambda s: s), None
    low = _bound(field.min_value, key, validation)
    high = _bound(field.max_value, key, validation)
    if t is FieldType.SLIDER:
        low = low or _Bound("0", 0)
        high = high or _Bound("100", 100)
    return _Spec(field, parse, key, low, high, validation)


def _shown(result: object) -> bool:
    return result if result.__class__ is bool else truthy(result)  # type: ignore[arg-type]


class FormValidator:
    """A form compiled for validating many responses quickly.

    Build one per form (or let :func:`validate_response` cache it on the form)
    and call :meth:`validate` for each response.
    """

    def __init__(self, form: Form) -> None:
        self.form = form
        self._specs = {
            f.name: _spec(f)
            for f in form.fields
            if f.type
            not in (FieldType.CHECKBOX, FieldType.CALC, FieldType.DESCRIPTIVE, FieldType.FILE)
        }
        self._files = frozenset(f.name for f in form.fields if f.type is FieldType.FILE)
        self._checkboxes = {f.name: f for f in form.fields if f.type is FieldType.CHECKBOX}
        self._checkbox_columns: dict[str, tuple[str, str]] = {}
        for f in self._checkboxes.values():
            for c in f.choices:
                self._checkbox_columns[checkbox_column(f.name, c.code)] = (f.name, c.code)
        self._names = frozenset(form.field_names)
        # Fields of other forms each field's branching logic reads.
        self._outside = {
            f.name: frozenset(f.branching_logic.referenced_fields() - self._names)
            for f in form.fields
            if f.branching_logic is not None and f.branching_logic.referenced_fields() - self._names
        }
        # Logic careloop cannot evaluate within one response (events, smart variables …).
        self._undecidable = frozenset(
            f.name
            for f in form.fields
            if f.branching_logic is not None and not f.branching_logic.evaluable
        )
        self._outside_all = frozenset(
            name
            for f in form.fields
            for expr in (f.branching_logic, f.calculation)
            if expr is not None
            for name in expr.referenced_fields() - self._names
        )
        self._calcs = frozenset(f.name for f in form.fields if f.type is FieldType.CALC)
        # A file field stores nothing here, so careloop cannot require it.
        self._required = tuple(f.name for f in form.fields if f.required and f.stores_value)
        self._descriptive = frozenset(
            f.name for f in form.fields if f.type is FieldType.DESCRIPTIVE
        )
        # The walk below evaluates logic in form order. That is exact when every
        # expression looks only at earlier fields (the usual case); otherwise
        # repeat until the hidden set stops changing.
        self._steps: list[tuple[Field, Expression | None, Expression | None]] = [
            (f, f.branching_logic, f.calculation) for f in form.fields
        ]
        position = {f.name: i for i, f in enumerate(form.fields)}
        self._iterate = False
        for i, f in enumerate(form.fields):
            for expr in (f.branching_logic, f.calculation):
                if expr is None:
                    continue
                for name in expr.referenced_fields():
                    j = position.get(name)
                    if j is not None and j >= i:
                        target = form.fields[j]
                        if target.branching_logic is not None or target.type is FieldType.CALC:
                            self._iterate = True

    def validate(
        self,
        values: Mapping[str, object],
        *,
        now: dt.datetime | None = None,
        hidden: HiddenPolicy = "clear",
        context: Mapping[str, object] | None = None,
    ) -> ValidationResult:
        """Validate one response (see :func:`validate_response`)."""
        now = now or dt.datetime.now()
        errors: list[FieldError] = []
        clean: dict[str, StoredValue | frozenset[str]] = {}
        given: dict[str, object] = {}
        bad: set[str] = set()
        boxes: dict[str, set[str]] = {}
        ignored: list[str] = []
        for name, raw in values.items():
            spec = self._specs.get(name)
            if spec is not None:
                text = raw.strip() if type(raw) is str else _as_text(raw) if raw is not None else ""
                if text == "":
                    continue
                given[name] = raw
                try:
                    stored = spec.parse(text)
                    if spec.key is not None and (spec.low is not None or spec.high is not None):
                        self._check_range(spec, stored, now)
                except _Reject as exc:
                    errors.append(FieldError(name, raw, exc.rule, exc.message))
                    bad.add(name)
                    continue
                clean[name] = stored
            elif name in self._checkboxes:
                self._read_checkbox(name, raw, boxes, errors, bad)
                if boxes.get(name):
                    given[name] = raw
            elif name in self._checkbox_columns:
                field_name, code = self._checkbox_columns[name]
                text = _as_text(raw) if raw is not None else ""
                if text in ("1", "checked", "Checked"):
                    boxes.setdefault(field_name, set()).add(code)
                    given[field_name] = boxes[field_name]
                elif text not in ("", "0", "unchecked", "Unchecked"):
                    errors.append(
                        FieldError(
                            field_name,
                            raw,
                            "type",
                            f"column {name} must be 1 (checked), 0 or empty",
                        )
                    )
                    bad.add(field_name)
            elif name in self._calcs:
                continue  # calculated here; a given value (e.g. from an export) is ignored
            elif name in self._files:
                if raw not in (None, ""):
                    ignored.append(name)
            elif name in self._descriptive:
                if raw not in (None, ""):
                    errors.append(
                        FieldError(
                            name,
                            raw,
                            "no_value",
                            "a descriptive field holds no value; leave it empty",
                        )
                    )
            else:
                errors.append(
                    FieldError(
                        name, raw, "unknown_field", f"form {self.form.name!r} has no field {name!r}"
                    )
                )
        for name, codes in boxes.items():
            if codes and name not in bad:
                order = self._checkboxes[name].choice_codes
                clean[name] = tuple(c for c in order if c in codes)

        known = frozenset(context) if context else frozenset()
        env, hidden_now = self._walk(clean, frozenset(), now, context, known)
        if self._iterate:
            for _ in range(len(self.form.fields)):
                env_next, hidden_next = self._walk(clean, hidden_now, now, context, known)
                settled = hidden_next == hidden_now
                env, hidden_now = env_next, hidden_next
                if settled:
                    break
        # Shown because their logic needs another form's answer that was not given.
        undecided = {name for name, outside in self._outside.items() if outside - known}
        undecided |= self._undecidable

        if hidden == "clear" and bad & hidden_now:
            # A hidden field's value is dropped, so whether it was valid does not matter.
            errors = [e for e in errors if e.field not in hidden_now]
        cleared: list[str] = []
        for name in given:
            if name in hidden_now:
                if hidden == "flag":
                    logic = self.form.field(name).branching_logic
                    errors.append(
                        FieldError(
                            name,
                            given[name],
                            "hidden",
                            "a value was given but the "
                            f"field is hidden by its branching logic "
                            f"({logic.source if logic else ''}); leave it empty",
                        )
                    )
                else:
                    cleared.append(name)
        exempt = hidden_now | bad | undecided
        for name in self._required:
            if name not in exempt:
                v = env.get(name)
                if v is None or v == "" or v == ():
                    errors.append(
                        FieldError(
                            name,
                            None,
                            "required",
                            "this field is required when shown; give a value",
                        )
                    )
        if len(errors) > 1:
            rank = {n: i for i, n in enumerate(self.form.field_names)}
            errors.sort(key=lambda e: rank.get(e.field, len(rank)))
        out: dict[str, StoredValue] = {}
        for k, v in env.items():
            if isinstance(v, frozenset):
                continue
            out[k] = v  # type: ignore[assignment]
        return ValidationResult(
            out,
            tuple(errors),
            hidden_now,
            tuple(cleared),
            tuple(ignored),
            tuple(sorted(self._outside_all - known)),
        )

    def _walk(
        self,
        clean: Mapping[str, StoredValue | frozenset[str]],
        hidden_before: frozenset[str],
        now: dt.datetime,
        context: Mapping[str, object] | None,
        known: frozenset[str],
    ) -> tuple[dict[str, object], frozenset[str]]:
        env: dict[str, object] = dict(context) if context else {}
        for name, v in clean.items():
            if name not in hidden_before:
                env[name] = frozenset(v) if isinstance(v, tuple) else v
        hidden: set[str] = set()
        for field, logic, calc in self._steps:
            name = field.name
            if (
                logic is not None
                and name not in self._undecidable
                and not self._outside.get(name, known) - known
                and not _shown(logic.compiled(env, now))
            ):
                hidden.add(name)
                env.pop(name, None)
                continue
            if calc is not None:
                result = calc.compiled(env, now) if calc.evaluable else None
                if result is None or result == "":
                    env.pop(name, None)
                elif isinstance(result, float):
                    env[name] = format_number(result)
                elif isinstance(result, bool):
                    env[name] = "1" if result else "0"
                else:
                    env[name] = result
        for name in self._checkboxes:
            ticked = env.get(name)
            if isinstance(ticked, frozenset):
                order = self._checkboxes[name].choice_codes
                env[name] = tuple(c for c in order if c in ticked)
        if context:
            for k in context:
                if k not in self._names:
                    env.pop(k, None)
        return env, frozenset(hidden)

    def _read_checkbox(
        self,
        name: str,
        raw: object,
        boxes: dict[str, set[str]],
        errors: list[FieldError],
        bad: set[str],
    ) -> None:
        field = self._checkboxes[name]
        if raw is None or raw == "":
            return
        if isinstance(raw, str):
            items = [p.strip() for p in raw.split(",") if p.strip()]
        elif isinstance(raw, Collection):
            items = [_as_text(p) for p in raw]
        else:
            items = [_as_text(raw)]
        wrong = [c for c in items if c not in field.choice_codes]
        if wrong:
            listed = ", ".join(f"{c.code} ({c.label})" for c in field.choices)
            errors.append(
                FieldError(
                    name,
                    raw,
                    "choice",
                    f"{', '.join(map(repr, wrong))} not among the options: {listed}",
                )
            )
            bad.add(name)
            return
        boxes.setdefault(name, set()).update(items)

    @staticmethod
    def _check_range(spec: _Spec, stored: str, now: dt.datetime) -> None:
        assert spec.key is not None
        value = spec.key(stored)
        low, high = spec.low, spec.high
        if low is not None:
            bound = low.value if low.value is not None else _resolve(low, now, spec.validation)
            if value < bound:  # type: ignore[operator]
                raise _Reject("min", f"must be at least {low.text}")
        if high is not None:
            bound = high.value if high.value is not None else _resolve(high, now, spec.validation)
            if value > bound:  # type: ignore[operator]
                raise _Reject("max", f"must be at most {high.text}")


def validate_response(
    form: Form,
    values: Mapping[str, object],
    *,
    now: dt.datetime | None = None,
    hidden: HiddenPolicy = "clear",
    context: Mapping[str, object] | None = None,
) -> ValidationResult:
    """Validate one response to ``form`` and compute its calculated fields.

    Args:
        form: The form the response was entered against.
        values: Field name → value. Text is the normal case; numbers, dates,
            datetimes and booleans are accepted too. A checkbox takes a list
            of codes (or ``"1,3"``), or REDCap's columns ``field___code``
            with ``1``/``0``. Values of calc fields are ignored and computed.
        now: The moment ``today``/``now`` in ranges and logic stand for.
        hidden: What to do with a value given for a field its branching logic
            hides: ``"clear"`` drops it (listed in ``cleared``), ``"flag"``
            reports it as an error.
        context: Values of fields on other forms that this form's logic reads
            (REDCap logic may look across the instruments of a record).

    Returns:
        Clean values, errors (all of them, in form order), hidden fields.
    """
    validator = form._cache.get("validator")
    if validator is None:
        validator = FormValidator(form)
        form._cache["validator"] = validator
    assert isinstance(validator, FormValidator)
    return validator.validate(values, now=now, hidden=hidden, context=context)
