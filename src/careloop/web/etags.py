"""Optimistic concurrency over HTTP: a record's version as its ETag, If-Match back."""

from __future__ import annotations

from careloop.core.errors import InputError


def etag(version: int) -> str:
    """The ETag of a record at ``version``."""
    return f'"{version}"'


def version_from(if_match: str | None, *, what: str = "record") -> int | None:
    """The version an If-Match header names (None when absent)."""
    if if_match is None:
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise InputError(
            f'If-Match must be the ETag of the {what} you read, e.g. "3"; got {if_match!r}.'
        ) from exc
