"""Reading the text of an uploaded or named file, with a clear word on encodings.

Dictionaries and record files come from Excel, REDCap and editors on every
platform. careloop reads UTF-8 (with or without the byte-order mark Excel
writes); anything else gets an error that says where the first bad byte is
and how to re-save the file, rather than silently garbled text.

A data dictionary may also be Windows-1252, what Excel on Windows writes for
"CSV (Comma delimited)" (:func:`read_dictionary_source`): that is read, with a
note quoting the first accented text so the person can check it. Bytes that
are neither (a UTF-16 file, a byte Windows-1252 leaves undefined) are refused.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from careloop.core.errors import ErrorDetail, ValidationFailed
from careloop.core.limits import DEFAULT_MAX_INPUT_BYTES, read_file

_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")

__all__ = ["csv_rows", "decode_text", "read_dictionary_source", "read_source"]


def decode_text(data: bytes, *, name: str) -> str:
    """Decode UTF-8 bytes (a leading BOM is dropped; CRLF and CR become LF).

    Raises:
        ValidationFailed: The bytes are not UTF-8; the detail names the row
            and byte and says how to convert the file.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValidationFailed(
            f"{name} is UTF-16 encoded; careloop reads UTF-8.",
            details=[
                ErrorDetail(
                    f"{name}:1",
                    "the file starts with a UTF-16 byte-order mark; in "
                    "Excel use 'Save As' → 'CSV UTF-8 (Comma delimited)', or convert "
                    f"with: iconv -f UTF-16 -t UTF-8 {name} > fixed.csv",
                )
            ],
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex().upper()
        guess = "Windows-1252 (Excel on Windows) or Latin-1"
        raise ValidationFailed(
            f"{name} is not UTF-8 encoded (byte 0x{bad} on row {row}).",
            details=[
                ErrorDetail(
                    f"{name}:{row}",
                    f"byte 0x{bad} at offset {exc.start} is not valid UTF-8; the file is probably "
                    f"{guess}. Re-save it as 'CSV UTF-8' (Excel: Save As → 'CSV UTF-8 (Comma "
                    "delimited)') or convert it: "
                    f"iconv -f WINDOWS-1252 -t UTF-8 {name} > fixed.csv",
                    f"0x{bad}",
                )
            ],
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_source(
    source: str | Path | bytes,
    *,
    name: str | None,
    default: str,
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> tuple[str, str]:
    """(label for messages, decoded text) of a path, bytes or already-decoded text.

    A ``str`` is taken as the file's text, never as a path: pass a
    :class:`~pathlib.Path` to read a file (at most ``max_bytes`` of it:
    :class:`~careloop.core.errors.InputTooLarge` beyond).
    """
    if isinstance(source, Path):
        data = read_file(source, max_bytes=max_bytes)
        label = name or source.name
        return label, decode_text(data, name=label)
    label = name or default
    if isinstance(source, bytes):
        return label, decode_text(source, name=label)
    return label, source.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _windows_1252(data: bytes, *, name: str) -> tuple[str, ErrorDetail] | None:
    """The text and a note, if ``data`` (not UTF-8) reads as Windows-1252; else None."""
    if _CP1252_UNDEFINED & set(data) or data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    text = data.decode("cp1252").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    row, line = next(((i, t) for i, t in enumerate(lines, start=1) if not t.isascii()), (1, ""))
    at = next((i for i, c in enumerate(line) if not c.isascii()), 0)
    sample = line[max(0, at - 20) : at + 20].strip()
    return text, ErrorDetail(
        f"{name}:{row}",
        f"the file is not UTF-8; it was read as Windows-1252 (what Excel on Windows saves as "
        f"'CSV'). Check that accented text reads right, e.g. row {row}: {sample!r}. To be sure, "
        "save it as 'CSV UTF-8 (Comma delimited)' and import it again.",
        sample,
    )


def read_dictionary_source(
    source: str | Path | bytes,
    *,
    name: str | None,
    default: str,
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> tuple[str, str, tuple[ErrorDetail, ...]]:
    """Like :func:`read_source`, also reading a Windows-1252 file (with a note).

    Returns:
        (label for messages, decoded text, notes): one note when the file was
        read as Windows-1252, none for UTF-8.

    Raises:
        ValidationFailed: Neither UTF-8 nor Windows-1252 (e.g. UTF-16), or unreadable.
    """
    if isinstance(source, str):
        label, text = read_source(source, name=name, default=default)
        return label, text, ()
    if isinstance(source, Path):
        data = read_file(source, max_bytes=max_bytes)
        label = name or source.name
    else:
        data, label = source, name or default
    try:
        return label, decode_text(data, name=label), ()
    except ValidationFailed:
        legacy = _windows_1252(data, name=label)
        if legacy is None:
            raise
        return label, legacy[0], (legacy[1],)


def csv_rows(text: str, *, name: str) -> Iterator[list[str]]:
    """The rows of CSV text, with a located error where it cannot be read as CSV.

    Python's csv module refuses a cell longer than 131,072 characters (and
    a few malformed quotings) with a bare ``_csv.Error``; here that is a
    :class:`ValidationFailed` naming the row, what is wrong and how to fix it.
    """
    reader = csv.reader(io.StringIO(text))
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            where = f"{name}:{row + 1}"
            if "field larger than field limit" in str(exc):
                limit = csv.field_size_limit()
                message = (
                    f"a cell is longer than {limit:,} characters, the most careloop reads in "
                    'one cell; often a quote (") that is never closed makes the rest of the '
                    "file one cell: check the quotes in this row"
                )
            else:
                message = f"not valid CSV: {exc}; check the quotes in this row"
            raise ValidationFailed(
                f"{name} cannot be read as CSV (row {row + 1}).",
                details=[ErrorDetail(where, message)],
            ) from None
        row += 1
        yield cells
