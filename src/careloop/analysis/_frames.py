"""Data frames at the edges of analysis: the columns a method needs, checked once.

Every method that takes a data frame and column names starts by checking that
the columns are there. :func:`require_columns` is that check, written once so
that every method refuses a missing column with the same message: which
column, for what, and which columns the data has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

import pandas as pd

from careloop.core.errors import ErrorDetail, InputError

__all__ = ["require_columns"]

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
