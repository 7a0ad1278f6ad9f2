"""Data frames at the edges of analysis: the columns going in, JSON-safe records coming out.

Every method that takes a data frame and column names starts by checking that
the columns are there. :func:`require_columns` is that check, written once so
that every method refuses a missing column with the same message: which
column, for what, and which columns the data has. :func:`numeric_column`
likewise refuses, with one message, a value that is not a number.

Results go out as JSON (``to_dict``, the CLI's ``--format json``, the data of
a Vega-Lite chart): :func:`records` and :func:`json_value` turn rows and
values of a frame into JSON-safe ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import pandas as pd

from careloop.core.errors import ErrorDetail, InputError

__all__ = ["json_value", "numeric_column", "records", "require_columns"]

Columns: TypeAlias = "Mapping[str, str | None] | Iterable[str | tuple[str, str | None]]"
"""The columns a method needs: ``{role: name}``, ``[(role, name), …]`` (a role may
repeat: several covariates) or bare names; a name of None was not asked for."""

_SHOWN = 30
"""How many of the data's columns a message lists (a wide extract has hundreds)."""


def require_columns(
    df: pd.DataFrame,
    columns: Columns,
    *,
    what: str = "the data",
) -> None:
    """Refuse, in one error, every column that ``df`` lacks.

    Args:
        df: The data.
        columns: The columns needed, each with what it is for (its role, e.g.
            ``"numerator"``) where that helps the reader: see :data:`Columns`.
        what: What ``df`` is called in the message.

    Raises:
        InputError: Naming each missing column with its role, and the columns
            the data has; one detail per missing column.
    """
    pairs = columns.items() if isinstance(columns, Mapping) else columns
    missing: list[tuple[str, str]] = []
    for pair in pairs:
        role, name = (pair, pair) if isinstance(pair, str) else pair
        if name is not None and name not in df.columns and (role, name) not in missing:
            missing.append((role, name))
    if not missing:
        return
    named = ", ".join(
        repr(name) if role == name else f"{name!r} ({role})" for role, name in missing
    )
    have = [str(c) for c in df.columns]
    listed = ", ".join(have[:_SHOWN]) + (
        f" and {len(have) - _SHOWN} more" if len(have) > _SHOWN else ""
    )
    column, they_are = ("Column", "it is") if len(missing) == 1 else ("Columns", "they are")
    raise InputError(
        f"{column} {named} not found: {they_are} not in {what}, "
        f"whose columns are {listed or '(none)'}. Check the spelling, or rename the column.",
        [ErrorDetail(role, f"column {name!r} is not in {what}", name) for role, name in missing],
    )


def numeric_column(data: pd.DataFrame, column: str, *, allow_missing: bool) -> pd.Series:
    """``data[column]`` as floats, refusing the first value that is not a number.

    Args:
        data: The data.
        column: The column's name.
        allow_missing: Keep a missing value as NaN (the method leaves the row
            out itself); otherwise a missing value is refused as well.

    Raises:
        InputError: Naming the column, the row and its value.
    """
    converted = pd.to_numeric(data[column], errors="coerce")
    bad = converted.isna() & data[column].notna() if allow_missing else converted.isna()
    if bad.any():
        first = data.index[bad][0]
        value = data.at[first, column]
        raise InputError(
            f"Column {column!r} must be numeric; row {first} has {value!r}.",
            details=[ErrorDetail(f"row {first}:{column}", "expected a number", str(value))],
        )
    return converted.astype(float)


def records(rows: Iterable[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """JSON-safe records: NaN and infinities become null, numpy scalars Python ones."""
    out: list[dict[str, Any]] = []
    for row in rows:
        clean: dict[str, Any] = {}
        for key, value in row.items():
            clean[str(key)] = json_value(value)
        out.append(clean)
    return out


def json_value(value: Any) -> Any:
    """One value made JSON-safe (see :func:`records`)."""
    if value is None:
        return None
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
