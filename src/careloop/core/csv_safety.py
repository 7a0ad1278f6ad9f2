"""Spreadsheet-safe CSV: no cell careloop writes runs as a formula when opened.

Excel, LibreOffice Calc and Google Sheets run a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return as a formula: a failed login
with the e-mail ``=HYPERLINK(…)``, or a record value ``=cmd|…``, would run
on the auditor's or data manager's computer. Following OWASP's CSV injection
guidance (and ASVS 1.2.10, which adds NUL), every CSV careloop writes for
people goes through this module, which prefixes such a cell with a single
quote: spreadsheets show the text without the quote and run nothing.

Choices made:

- A cell that is a plain decimal number (``-5``, ``+3.2``, ``-1e-3``) is left
  as it is: a number is not a formula, and a negative number in a numeric
  column must stay a number for whoever analyses the file.
- The escape is reversible, so careloop's own exports re-import to the same
  values (:func:`restore_cell`, used by the records and data-dictionary
  importers): a cell that already starts with quotes in front of a formula
  character gets one more quote, and the importer removes exactly one.
- Header cells are treated like any other cell (a column can be named by a
  query or a form).
- Only text is touched; numbers, dates and empty cells are written as before.

Machine-to-machine CSV (the COPY stream into a PostgreSQL warehouse, hashes
of canonical data, demo input files) does not go through here: it is never
opened in a spreadsheet and must carry the values exactly.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import pandas as pd

FORMULA_TRIGGERS = frozenset("=+-@\t\r\0")
"""First characters that make a spreadsheet treat a cell as a formula."""

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _risky(text: str) -> bool:
    """Whether ``text``, without leading quotes, would run as a formula."""
    core = text.lstrip("'")
    return bool(core) and core[0] in FORMULA_TRIGGERS and _NUMBER.fullmatch(core) is None


def neutralise_cell(value: Any) -> Any:
    """``value`` as a spreadsheet shows but never runs: text that would be a formula gets
    a leading single quote; everything else is returned unchanged."""
    if isinstance(value, str) and _risky(value):
        return "'" + value
    return value


def restore_cell(text: str) -> str:
    """Undo :func:`neutralise_cell` (for careloop's importers of its own exports)."""
    if text.startswith("'") and _risky(text):
        return text[1:]
    return text


def neutralise_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of ``row`` through :func:`neutralise_cell`."""
    return [neutralise_cell(v) for v in row]


def restore_row(row: Sequence[str]) -> list[str]:
    """Every cell of a read row through :func:`restore_cell`."""
    return [restore_cell(c) for c in row]


def _has_carriage_return(cells: Iterable[Any]) -> bool:
    return any(isinstance(c, str) and "\r" in c for c in cells)


class SafeWriter:
    """A :func:`csv.writer` whose every cell is made spreadsheet-safe.

    A row with a carriage return in a cell is written with every cell quoted:
    Python's writer does not quote a lone CR when the line terminator is
    ``\n``, and a reader would take it for the end of the row (a forged row).
    """

    def __init__(
        self, out: TextIO, *, keep: Callable[[int, Any], bool] | None = None, **options: Any
    ) -> None:
        self._writer = csv.writer(out, **options)
        self._quoting_all = csv.writer(out, **{**options, "quoting": csv.QUOTE_ALL})
        self._keep = keep
        self.neutralised = 0
        """How many cells were prefixed so far."""

    def writerow(self, row: Iterable[Any]) -> None:
        cells = list(row)
        keep = self._keep
        safe = [
            v if keep is not None and keep(i, v) else neutralise_cell(v)
            for i, v in enumerate(cells)
        ]
        self.neutralised += sum(a is not b for a, b in zip(cells, safe, strict=True))
        writer = self._quoting_all if _has_carriage_return(safe) else self._writer
        writer.writerow(safe)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_writer(
    out: TextIO, *, keep: Callable[[int, Any], bool] | None = None, **options: Any
) -> SafeWriter:
    """A CSV writer like :func:`csv.writer` (same options) that neutralises formulas.

    ``keep(column_index, value)`` may exempt cells a format needs as written
    (REDCap action tags); it should exempt nothing a spreadsheet could misuse.
    """
    return SafeWriter(out, keep=keep, **options)


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with its text cells and column names made spreadsheet-safe.

    Numeric, date and boolean columns are left alone (they hold no text).
    """
    out = frame.copy()
    for column in _text_columns(out):
        out[column] = out[column].astype(object).map(neutralise_cell)
    out.columns = [neutralise_cell(c) for c in out.columns]
    return out


def _text_columns(frame: pd.DataFrame) -> list[Any]:
    import pandas as pd

    return [
        c
        for c in frame.columns
        if pd.api.types.is_object_dtype(frame[c])
        or pd.api.types.is_string_dtype(frame[c])
        or isinstance(frame[c].dtype, pd.CategoricalDtype)
    ]


def frame_to_csv(frame: pd.DataFrame, target: Any = None, **options: Any) -> str | None:
    """``frame.to_csv(target, index=False, **options)`` with formulas neutralised.

    As :class:`SafeWriter`, a frame with a carriage return in a text cell is
    written with every cell quoted.
    """
    safe = neutralise_frame(frame)
    if any(_has_carriage_return(safe[c]) for c in _text_columns(safe)) or _has_carriage_return(
        safe.columns
    ):
        options = {**options, "quoting": csv.QUOTE_ALL}
    text: str | None = safe.to_csv(target, index=False, **options)
    return text
