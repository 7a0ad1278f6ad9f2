"""Reading the text of an uploaded or named file, with a clear word on encodings.

Dictionaries and record files come from Excel, REDCap and editors on every
platform. careloop reads UTF-8 (with or without the byte-order mark Excel
writes); anything else gets an error that says where the first bad byte is
and how to re-save the file, rather than silently garbled text.
"""

from __future__ import annotations

from pathlib import Path

from careloop.core.errors import ErrorDetail, ValidationFailed

__all__ = ["decode_text", "read_source"]


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


def read_source(source: str | Path | bytes, *, name: str | None, default: str) -> tuple[str, str]:
    """(label for messages, decoded text) of a path, bytes or already-decoded text.

    A ``str`` is taken as the file's text, never as a path: pass a
    :class:`~pathlib.Path` to read a file.
    """
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise ValidationFailed(
                f"Cannot read {source}: {exc.strerror or exc}.",
                details=[ErrorDetail(str(source), "check the path and that the file is readable")],
            ) from None
        label = name or source.name
        return label, decode_text(data, name=label)
    label = name or default
    if isinstance(source, bytes):
        return label, decode_text(source, name=label)
    return label, source.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
