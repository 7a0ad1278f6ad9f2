"""Where measures come from: built-ins, a folder of YAML files, Python entry points.

The built-in measures are YAML files in ``careloop/measures/builtin`` and load
exactly like a user's folder (``CARELOOP_MEASURES_DIR`` or ``--measures-dir``).
A package adds measures with an entry point in the group ``careloop.measures``
whose object is a :class:`MeasureDefinition`, a path to a YAML file or folder,
a list of those, or a function returning any of them::

    [project.entry-points."careloop.measures"]
    my_measures = "my_package.measures:definitions"

A file that does not load is reported in :attr:`MeasureCatalog.problems` and
the other measures stay available.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from careloop.core.errors import CareloopError, ErrorDetail, NotFound
from careloop.measures.definition import MeasureDefinition, load_definition, parse_yaml

ENTRY_POINT_GROUP = "careloop.measures"
"""Entry-point group of measure plugins."""
MEASURES_DIR_ENV = "CARELOOP_MEASURES_DIR"
"""Environment variable naming a folder of measure YAML files."""


@dataclass(frozen=True)
class MeasureCatalog:
    """The measures available to a run, and what failed to load."""

    measures: tuple[MeasureDefinition, ...]
    """Loaded definitions, built-ins first, each id once."""
    problems: tuple[ErrorDetail, ...] = ()
    """Files or plugins that did not load, and ids given twice."""

    @property
    def ids(self) -> list[str]:
        """Ids of the loaded measures, in order."""
        return [m.id for m in self.measures]

    def get(self, measure_id: str) -> MeasureDefinition:
        """The measure with this id.

        Raises:
            NotFound: no such measure (the message lists the known ids).
        """
        for m in self.measures:
            if m.id == measure_id:
                return m
        raise NotFound(
            f"There is no measure {measure_id!r}. Known measures: {', '.join(self.ids)}."
        )

    def select(self, ids: Iterable[str] | None) -> list[MeasureDefinition]:
        """The measures with these ids (all of them when ``ids`` is None or empty)."""
        wanted = list(ids or ())
        return [self.get(i) for i in wanted] if wanted else list(self.measures)


def builtin_measures() -> list[MeasureDefinition]:
    """The measures shipped with careloop (``careloop/measures/builtin/*.yaml``)."""
    folder = resources.files("careloop.measures") / "builtin"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            definition = parse_yaml(entry.read_text(encoding="utf-8"), source=entry.name)
            out.append(replace(definition, source=f"builtin:{entry.name}"))
    return out


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_directory(folder: Path | str) -> tuple[list[MeasureDefinition], list[ErrorDetail]]:
    """Every measure YAML file in ``folder``; files that fail are returned as problems."""
    folder = Path(folder)
    if not folder.is_dir():
        return [], [ErrorDetail(str(folder), "the measures folder does not exist")]
    found: list[MeasureDefinition] = []
    problems: list[ErrorDetail] = []
    for path in _yaml_files(folder):
        try:
            found.append(replace(load_definition(path), source=str(path)))
        except CareloopError as exc:
            problems.extend(exc.details or [ErrorDetail(path.name, exc.message)])
        except Exception as exc:
            # One unreadable file must not hide every other measure (as for plugins below).
            problems.append(ErrorDetail(path.name, f"cannot be read: {type(exc).__name__}: {exc}"))
    return found, problems


def _from_object(obj: Any, origin: str) -> Iterator[MeasureDefinition]:
    if callable(obj) and not isinstance(obj, MeasureDefinition):
        obj = obj()
    if isinstance(obj, MeasureDefinition):
        yield replace(obj, source=obj.source if obj.source != "<memory>" else origin)
    elif isinstance(obj, str | Path):
        path = Path(obj)
        if path.is_dir():
            found, problems = load_directory(path)
            if problems:
                raise CareloopError(f"{origin}: measures in {path} did not load", problems)
            yield from found
        else:
            yield replace(load_definition(path), source=str(path))
    elif isinstance(obj, Iterable):
        for item in obj:
            yield from _from_object(item, origin)
    else:
        raise TypeError(f"expected a MeasureDefinition, a path or a list, got {type(obj)}")


def entry_point_measures() -> tuple[list[MeasureDefinition], list[ErrorDetail]]:
    """Measures from installed packages' ``careloop.measures`` entry points."""
    found: list[MeasureDefinition] = []
    problems: list[ErrorDetail] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {ep.name} ({ep.value})"
        try:
            found.extend(_from_object(ep.load(), origin))
        except CareloopError as exc:
            problems.extend(exc.details or [ErrorDetail(origin, exc.message)])
        except Exception as exc:
            problems.append(ErrorDetail(origin, f"{type(exc).__name__}: {exc}"))
    return found, problems


def measures_dir_from(
    measures_dir: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The user's measures folder: the argument, else ``CARELOOP_MEASURES_DIR``."""
    if measures_dir:
        return Path(measures_dir)
    env = os.environ if environ is None else environ
    value = env.get(MEASURES_DIR_ENV, "").strip()
    return Path(value) if value else None


def load_catalog(
    *,
    measures_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    builtins: bool = True,
    entry_points: bool = True,
) -> MeasureCatalog:
    """All measures: built-ins, then the measures folder, then entry points.

    Args:
        measures_dir: A folder of YAML files (default: ``CARELOOP_MEASURES_DIR``
            from ``environ``).
        environ: Environment to read (default: ``os.environ``).
        builtins: Include the built-in measures.
        entry_points: Include measures of installed plugins.
    """
    sources: list[MeasureDefinition] = builtin_measures() if builtins else []
    problems: list[ErrorDetail] = []
    folder = measures_dir_from(measures_dir, environ)
    if folder is not None:
        found, bad = load_directory(folder)
        sources.extend(found)
        problems.extend(bad)
    if entry_points:
        found, bad = entry_point_measures()
        sources.extend(found)
        problems.extend(bad)
    seen: dict[str, MeasureDefinition] = {}
    for m in sources:
        if m.id in seen:
            problems.append(
                ErrorDetail(
                    m.source,
                    f"measure id {m.id!r} is already defined by "
                    f"{seen[m.id].source}; this one is ignored",
                    m.id,
                )
            )
            continue
        seen[m.id] = m
    return MeasureCatalog(tuple(seen.values()), tuple(problems))
