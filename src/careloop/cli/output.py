"""How CLI commands print results: table, CSV or JSON, and errors."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from careloop.core.csv_safety import frame_to_csv

OutputFormat = Literal["table", "csv", "json"]

console = Console()
err_console = Console(stderr=True)


def print_frame(
    frame: pd.DataFrame, *, fmt: OutputFormat = "table", title: str | None = None
) -> None:
    """Print a data frame as a Rich table, CSV or JSON records."""
    if fmt == "csv":
        frame_to_csv(frame, sys.stdout)
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=2) + "\n")
    else:
        print_rows(list(frame.columns), frame.astype(object).values.tolist(), title=title)


def print_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    """Print rows as a Rich table."""
    table = Table(title=title)
    for column in columns:
        table.add_column(str(column))
    for row in rows:
        # Text, not markup: a cell such as REDCap logic "[sex] = '1'" must print as written.
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    console.print(table)


def print_json(data: Any) -> None:
    """Print a JSON document to standard output (a missing or infinite number is null:
    NaN is not JSON, and strict parsers refuse it)."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
