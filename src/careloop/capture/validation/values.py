"""What one field's text may be: results, the parsers of each validation type, bounds, specs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from careloop.capture.expressions import format_number, truthy
from careloop.capture.forms import Field, FieldType, number_text
from careloop.core.errors import ErrorDetail, ValidationFailed

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
    """(check-and-normalise, key for range comparison) of a text validation type.

    Long because it is one branch per text validation type, each returning that type's
    parser and ordering.
    """
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
