"""The import mode option, spelt one way in help and docs and read either way.

``careloop records import`` and ``careloop fhir import`` both take
``--mode all-or-nothing|row-level``. Earlier releases of ``fhir import``
documented ``all_or_nothing|row_level``; scripts written for either spelling
keep working, so both are accepted on every command.
"""

from __future__ import annotations

from typing import Literal

from careloop.core.errors import InputError

__all__ = ["IMPORT_MODE_HELP", "CliImportMode", "import_mode"]

CliImportMode = Literal["all-or-nothing", "row-level"]
IMPORT_MODE_HELP = (
    "all-or-nothing (default): any problem and nothing is written; "
    "row-level: write the good rows, report the rejected ones."
)


def import_mode(value: str) -> CliImportMode:
    """``all-or-nothing`` or ``row-level`` from either spelling (``_`` or ``-``, any case).

    Raises:
        InputError: Neither mode; the message lists both.
    """
    normal = value.strip().lower().replace("_", "-")
    if normal == "all-or-nothing":
        return "all-or-nothing"
    if normal == "row-level":
        return "row-level"
    raise InputError(f"--mode must be all-or-nothing or row-level, not {value!r}.")
