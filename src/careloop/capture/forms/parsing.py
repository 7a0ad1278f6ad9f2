"""Reading the text of a data dictionary's cells: field types, validations, choices."""

from __future__ import annotations

from collections.abc import Iterable

from careloop.capture.forms.model import (
    _CODE,
    _NUMBER_DP,
    VALIDATION_ALIASES,
    VALIDATION_TYPES,
    Choice,
    FieldType,
)
from careloop.core.errors import InputError

# --------------------------------------------------------------------------- parsing helpers


def parse_field_type(text: str) -> FieldType:
    """REDCap's Field Type column → :class:`FieldType`.

    Raises:
        InputError: Not a supported type; the message lists the supported ones.
    """
    value = text.strip().lower()
    try:
        return FieldType(value)
    except ValueError:
        supported = ", ".join(t.value for t in FieldType)
        hint = ""
        if value in ("select", "textarea"):
            hint = f" (REDCap's dictionary calls it {'dropdown' if value == 'select' else 'notes'})"
        raise InputError(
            f"unknown field type {text!r}{hint}; supported types are {supported}"
        ) from None


def parse_validation_type(text: str) -> str:
    """REDCap's Text Validation Type → the canonical type name.

    Raises:
        InputError: Not a supported validation type.
    """
    value = text.strip().lower()
    value = VALIDATION_ALIASES.get(value, value)
    if value in VALIDATION_TYPES or _NUMBER_DP.match(value):
        return value
    supported = ", ".join(
        sorted(VALIDATION_TYPES | {"number_Ndp (N = 1–9)", "number_Ndp_comma_decimal"})
    )
    raise InputError(f"unknown validation type {text!r}; supported types are {supported}")


def parse_choices(text: str) -> tuple[Choice, ...]:
    """REDCap's choices string, e.g. ``"1, Yes | 2, No"``, → choices.

    Raises:
        InputError: An item has no code, a code is malformed or repeated.
    """
    choices: list[Choice] = []
    seen: set[str] = set()
    for raw in text.split("|"):
        item = raw.strip()
        if not item:
            raise InputError(
                f"empty choice in {text!r}; separate choices with ' | ' and none empty"
            )
        code, comma, label = item.partition(",")
        code, label = code.strip(), label.strip()
        if not comma:
            raise InputError(
                f"choice {item!r} has no code; write each choice as 'code, label', e.g. '1, {item}'"
            )
        if not _CODE.match(code):
            raise InputError(
                f"choice code {code!r} is not valid; codes are letters, digits, '_', '.' and "
                "inner '-', optionally with a leading '-'"
            )
        if code in seen:
            raise InputError(f"choice code {code!r} is used twice")
        seen.add(code)
        choices.append(Choice(code, label))
    return tuple(choices)


def format_choices(choices: Iterable[Choice]) -> str:
    """Choices → REDCap's ``"1, Yes | 2, No"``."""
    return " | ".join(f"{c.code}, {c.label}" for c in choices)


def checkbox_column(field_name: str, code: str) -> str:
    """The export column of one checkbox option, as REDCap names it (``cb___2``).

    REDCap writes ``-`` and ``.`` in codes as ``_`` and lower-cases letters.
    """
    return f"{field_name}___{code.replace('-', '_').replace('.', '_').lower()}"
