"""Checking measure files before they are used (``careloop measures validate``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from careloop.core.errors import CareloopError, ErrorDetail
from careloop.measures.definition import MeasureDefinition, load_definition
from careloop.measures.runner import resolve_concepts
from careloop.warehouse.connection import Warehouse


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking one measure file."""

    path: Path
    """The file."""
    definition: MeasureDefinition | None
    """The parsed measure, when the file is valid."""
    problems: tuple[ErrorDetail, ...] = ()
    """Errors, each at ``file: $.json.path``; the file is unusable when there are any."""
    warnings: tuple[str, ...] = ()
    """Caveats that do not stop the measure, e.g. concept ids not in the vocabulary."""

    @property
    def ok(self) -> bool:
        """True when the file holds a valid measure."""
        return not self.problems


def validate_files(
    paths: Sequence[Path | str], *, warehouse: Warehouse | None = None
) -> list[FileCheck]:
    """Parse and check each measure file; with a warehouse, also its concept ids."""
    checks: list[FileCheck] = []
    for raw in paths:
        path = Path(raw)
        try:
            definition = replace(load_definition(path), source=path.name)
        except CareloopError as exc:
            checks.append(
                FileCheck(path, None, tuple(exc.details or [ErrorDetail(path.name, exc.message)]))
            )
            continue
        warnings: list[str] = []
        if warehouse is not None:
            _, warnings = resolve_concepts(warehouse, [definition])
        checks.append(FileCheck(path, definition, (), tuple(warnings)))
    seen: dict[str, Path] = {}
    out = []
    for check in checks:
        if check.definition is not None:
            first = seen.setdefault(check.definition.id, check.path)
            if first != check.path:
                check = replace(
                    check,
                    problems=(
                        ErrorDetail(
                            f"{check.path.name}: $.id",
                            f"the id is also used by {first.name}",
                            check.definition.id,
                        ),
                    ),
                )
        out.append(check)
    return out
