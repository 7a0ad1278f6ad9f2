"""Rules for the short texts that identify and name things: ids, names, e-mails.

A NUL byte in a record id once created a patient, and a FHIR import stored a
50 MB family name. Every path by which an id or a name enters careloop
applies these rules, so the same value is refused the same way by the API,
the bulk imports and the FHIR import.
"""

from __future__ import annotations

import unicodedata

_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
"""Control characters (NUL, tab, newline, escape…), lone surrogates, line and
paragraph separators: never part of an id or a name. (Format characters such
as the zero-width non-joiner stay: some scripts need them in names.)"""


def control_characters(text: str) -> list[str]:
    """The refused characters in ``text``, as ``U+0000`` codes (empty when none)."""
    return sorted(
        {f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in _REFUSED_CATEGORIES}
    )


def shown(value: str, limit: int = 60) -> str:
    """``value`` cut for an error message (a 50 MB value is not echoed back)."""
    return value if len(value) <= limit else value[:limit] + f"… ({len(value)} characters)"


def text_problem(value: str, *, what: str, max_length: int, required: bool = True) -> str | None:
    """Why ``value`` is not an acceptable id or name, or None.

    Args:
        value: The text, as given (not stripped).
        what: How to call it in the message ("a local id", "a family name").
        max_length: Most characters allowed.
        required: Whether an empty (or blank) value is a problem.
    """
    if required and not value.strip():
        return f"{what} must not be empty"
    if len(value) > max_length:
        return f"{what} is at most {max_length} characters (this one has {len(value)})"
    bad = control_characters(value)
    if bad:
        return (
            f"{what} must not contain control characters ({', '.join(bad[:5])}); "
            "remove them and try again"
        )
    return None
