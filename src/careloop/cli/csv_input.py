"""Reading the CSV file an analysis command is given, with errors that say what to do."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from careloop.core.errors import InputError
from careloop.core.limits import read_file
from careloop.core.settings import load_settings


def read_csv_input(path: Path) -> pd.DataFrame:
    """The CSV at ``path`` as a data frame; InputError when missing or unreadable."""
    if not path.is_file():
        raise InputError(f"Input file {str(path)!r} does not exist; give a CSV file with --input.")
    data = read_file(path, max_bytes=load_settings().max_input_bytes)
    try:
        return pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"Could not read {str(path)!r} as CSV: {exc}") from exc
