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

from careloop.capture.validation.validator import (
    FormValidator,
    validate_response,
)
from careloop.capture.validation.values import (
    FieldError,
    StoredValue,
    ValidationResult,
)

__all__ = [
    "FieldError",
    "FormValidator",
    "StoredValue",
    "ValidationResult",
    "validate_response",
]
