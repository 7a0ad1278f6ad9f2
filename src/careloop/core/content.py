"""Content packages: what a condition's registry adds to the engine, and which are active.

A content package describes one registry — its forms, the concepts its form
fields become in the warehouse, the labels of coded answers, its measures and
its knowledge objects — as data the engine reads. The engine never imports a
content package: it asks the active :class:`ContentRegistry` (this module, in
the lowest layer) for what the packages registered. A new condition is a new
content package and no edit to the engine (docs/content.md).

Packages are found the way datasette finds plugins: the modules named in
:data:`DEFAULT_PLUGINS` (careloop's own example, the paediatric IBD registry)
and the objects of the entry-point group ``careloop.content`` of installed
distributions::

    [project.entry-points."careloop.content"]
    asthma = "my_registry.content:PACKAGE"

Which of the packages found are active is a setting (``CARELOOP_CONTENT``,
default ``ibd``); the CLI and the web app call :func:`activate` once with it.
Code that never calls it (a library user, a test) gets the default.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from careloop.core.errors import ConfigurationError, ErrorDetail, NotFound

__all__ = [
    "DEFAULT_CONTENT",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LOCAL_CONCEPT_BASE",
    "ConceptMap",
    "ContentPackage",
    "ContentRegistry",
    "activate",
    "active_content",
    "available_packages",
    "content_in_use",
    "parse_content_names",
    "select_content",
]

LOCAL_CONCEPT_BASE: Final = 2_000_000_000
"""Local concept ids start here (OMOP reserves ids above 2 billion for sites)."""

ENTRY_POINT_GROUP: Final = "careloop.content"
"""Entry-point group of installed content packages."""

DEFAULT_PLUGINS: Final = ("careloop.content.ibd",)
"""Modules always searched for a content package (their ``PACKAGE``), as datasette's
``DEFAULT_PLUGINS``: careloop's own example registry."""

DEFAULT_CONTENT: Final = ("ibd",)
"""The content packages active when nothing else is chosen."""


@dataclass(frozen=True)
class ConceptMap:
    """Explicit concepts for a registry's forms (what its measures expect).

    Fields not listed fall back to the code their dictionary declares
    (standard concepts looked up in the warehouse's ``concept`` table) or to
    a careloop-local concept id derived from the form and field names.
    """

    fields: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    """Field name → (OMOP domain, concept id) for measurement/observation fields."""
    choices: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(field name, answer code) → concept id for condition/drug/procedure fields."""
    visit_types: Mapping[str, int] = field(default_factory=dict)
    """Answer code of ``visit_type_field`` → the visit's ``visit_concept_id``."""
    visit_type_field: str | None = None
    """The field saying what kind of visit it was."""
    drug_start_fields: Mapping[str, str] = field(default_factory=dict)
    """Drug field → the date field giving the exposure's start (else the visit date)."""
    names: Mapping[int, str] = field(default_factory=dict)
    """Names of local concepts, for the ``concept`` table."""


@dataclass(frozen=True, eq=False)  # one package is one object: hashable, cacheable
class ContentPackage:
    """One registry's content: files under ``root`` and the data that maps them.

    Every path is relative to ``root``, the package's folder on disk.
    """

    name: str
    """Short name used to select it (``CARELOOP_CONTENT=ibd,asthma``)."""
    title: str
    """What it is, for people: "Paediatric IBD registry (ImproveCareNow-style)"."""
    root: Path
    """The folder holding the package's files."""
    forms: Mapping[str, str] = field(default_factory=dict)
    """Dictionary format (``yaml``, ``redcap``) → file of the registry's forms."""
    concept_map: ConceptMap = field(default_factory=ConceptMap)
    """The concepts the forms' fields become in the warehouse."""
    answer_labels: Mapping[int, Mapping[int, str]] = field(default_factory=dict)
    """Concept id → answer code → label, to say measure criteria in words."""
    measures: str | None = None
    """Folder of the package's measure definitions (YAML)."""
    knowledge: str | None = None
    """Folder whose sub-folders are the package's knowledge objects."""
    description: str = ""

    def form_file(self, fmt: str = "yaml") -> Path:
        """The file of the registry's forms in one format.

        Raises:
            NotFound: the package has no forms in that format.
        """
        if fmt not in self.forms:
            raise NotFound(
                f"The content package {self.name!r} has no forms as {fmt!r}; "
                f"it has: {', '.join(self.forms) or 'none'}."
            )
        return self.root / self.forms[fmt]

    def measure_files(self) -> list[Path]:
        """The package's measure YAML files, by name."""
        if self.measures is None:
            return []
        folder = self.root / self.measures
        return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))

    def knowledge_objects(self) -> list[Path]:
        """The folders of the package's knowledge objects, by name."""
        if self.knowledge is None:
            return []
        folder = self.root / self.knowledge
        return sorted(p for p in folder.iterdir() if (p / "metadata.json").is_file())

    def knowledge_object(self, name: str) -> Path:
        """One knowledge object's folder.

        Raises:
            NotFound: the package has no knowledge object of that name.
        """
        for path in self.knowledge_objects():
            if path.name == name:
                return path
        known = ", ".join(p.name for p in self.knowledge_objects()) or "none"
        raise NotFound(
            f"The content package {self.name!r} has no knowledge object {name!r}; it has: {known}."
        )


def _merge(
    kind: str, into: dict[Any, Any], items: Mapping[Any, Any], owner: dict[Any, str], name: str
) -> list[ErrorDetail]:
    problems = []
    for key, value in items.items():
        if key in into and into[key] != value:
            problems.append(
                ErrorDetail(
                    f"content package {name!r}: {kind} {key!r}",
                    f"the content package {owner[key]!r} maps it to {into[key]!r}, this one "
                    f"to {value!r}; rename the field or give the concept one meaning",
                )
            )
            continue
        into[key] = value
        owner.setdefault(key, name)
    return problems


@dataclass(frozen=True)
class ContentRegistry:
    """The active content packages, and what they give the engine, merged."""

    packages: tuple[ContentPackage, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for package in self.packages:
            if package.name in seen:
                raise ConfigurationError(
                    f"The content package {package.name!r} is registered twice; "
                    "each content package name may be active once."
                )
            seen.add(package.name)
        self.concept_map()  # two packages giving one field two meanings fail here, early

    @property
    def names(self) -> list[str]:
        """Names of the packages, in order."""
        return [p.name for p in self.packages]

    def get(self, name: str) -> ContentPackage:
        """The active package of this name.

        Raises:
            NotFound: no active package has it (the message lists the active ones).
        """
        for package in self.packages:
            if package.name == name:
                return package
        raise NotFound(
            f"There is no active content package {name!r}. "
            f"Active: {', '.join(self.names) or 'none'}."
        )

    def default(self) -> ContentPackage:
        """The first active package (the one whose forms are "the example forms").

        Raises:
            NotFound: no content package is active.
        """
        if not self.packages:
            raise NotFound("No content package is active; set CARELOOP_CONTENT (e.g. ibd).")
        return self.packages[0]

    def concept_map(self) -> ConceptMap:
        """Every package's concept map as one (a field keeps one meaning across packages).

        Raises:
            ConfigurationError: two packages map one field, answer or concept id differently.
        """
        return self._merged

    @cached_property
    def _merged(self) -> ConceptMap:
        # Computed once: plain-language descriptions ask for names concept by concept.
        fields: dict[str, tuple[str, int]] = {}
        choices: dict[tuple[str, str], int] = {}
        visit_types: dict[str, int] = {}
        drug_start: dict[str, str] = {}
        names: dict[int, str] = {}
        visit_field: str | None = None
        problems: list[ErrorDetail] = []
        owners: dict[str, dict[Any, str]] = {k: {} for k in ("f", "c", "v", "d", "n")}
        for p in self.packages:
            cmap = p.concept_map
            problems += _merge("field", fields, cmap.fields, owners["f"], p.name)
            problems += _merge("answer", choices, cmap.choices, owners["c"], p.name)
            problems += _merge("visit type", visit_types, cmap.visit_types, owners["v"], p.name)
            problems += _merge(
                "drug field", drug_start, cmap.drug_start_fields, owners["d"], p.name
            )
            problems += _merge("concept", names, cmap.names, owners["n"], p.name)
            if cmap.visit_type_field is not None:
                if visit_field not in (None, cmap.visit_type_field):
                    problems.append(
                        ErrorDetail(
                            f"content package {p.name!r}: visit_type_field",
                            f"another active package names {visit_field!r} as the field that "
                            f"says the kind of visit, this one {cmap.visit_type_field!r}",
                        )
                    )
                visit_field = visit_field or cmap.visit_type_field
        if problems:
            raise ConfigurationError(
                "The active content packages disagree about what their forms mean; "
                "activate them separately or align their concept maps.",
                problems,
            )
        return ConceptMap(
            fields=MappingProxyType(fields),
            choices=MappingProxyType(choices),
            visit_types=MappingProxyType(visit_types),
            visit_type_field=visit_field,
            drug_start_fields=MappingProxyType(drug_start),
            names=MappingProxyType(dict(sorted(names.items()))),
        )

    def concept_names(self) -> Mapping[int, str]:
        """Every careloop-local concept id the active packages name, with its name."""
        return self.concept_map().names

    @cached_property
    def _labels(self) -> Mapping[int, Mapping[int, str]]:
        out: dict[int, Mapping[int, str]] = {}
        for package in self.packages:
            out.update(package.answer_labels)
        return MappingProxyType(out)

    def answer_labels(self) -> Mapping[int, Mapping[int, str]]:
        """Concept id → answer code → label, over the active packages."""
        return self._labels

    def measure_files(self) -> Iterator[tuple[ContentPackage, Path]]:
        """Each package's measure files, with the package."""
        for package in self.packages:
            for path in package.measure_files():
                yield package, path

    def knowledge_objects(self) -> list[Path]:
        """The folders of every active package's knowledge objects."""
        return [path for package in self.packages for path in package.knowledge_objects()]


def _as_package(obj: object, origin: str) -> ContentPackage:
    if callable(obj) and not isinstance(obj, ContentPackage):
        obj = obj()
    if not isinstance(obj, ContentPackage):
        raise ConfigurationError(
            f"{origin} is not a content package: expected a ContentPackage (or a function "
            f"returning one), got {type(obj).__name__}."
        )
    return obj


def _module_package(module: str) -> object:
    # By name, not by import statement: the engine must not import careloop.content.
    return importlib.import_module(module).PACKAGE


def available_packages(*, entry_points: bool = True) -> dict[str, ContentPackage]:
    """Every content package careloop can find: :data:`DEFAULT_PLUGINS`, then entry points.

    Raises:
        ConfigurationError: a plugin does not load or is not a content package.
    """
    found: dict[str, ContentPackage] = {}
    origins: list[tuple[str, Callable[[], object]]] = [
        (f"module {m}", partial(_module_package, m)) for m in DEFAULT_PLUGINS
    ]
    if entry_points:
        origins += [
            (f"entry point {ep.name} ({ep.value})", ep.load)
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
        ]
    for origin, load in origins:
        try:
            package = _as_package(load(), origin)
        except ConfigurationError:
            raise
        except Exception as exc:
            raise ConfigurationError(
                f"The content plugin {origin} did not load: {type(exc).__name__}: {exc}. "
                "Fix or uninstall it."
            ) from exc
        found.setdefault(package.name, package)
    return found


def parse_content_names(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"ibd, asthma"`` (the setting) → ``("ibd", "asthma")``, duplicates dropped."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(dict.fromkeys(n.strip() for n in items if n.strip()))


def select_content(
    names: str | Iterable[str],
    *,
    packages: Sequence[ContentPackage] = (),
    entry_points: bool = True,
) -> ContentRegistry:
    """The registry of these content packages, without making it the active one.

    Args:
        names: Names, in order (a list or the setting's comma-separated text).
        packages: Packages given directly (not installed), e.g. in tests.
        entry_points: Also search installed distributions' entry points.

    Raises:
        ConfigurationError: a name is unknown, or two packages disagree.
    """
    names = parse_content_names(names)
    extra = packages
    known = {p.name: p for p in extra}
    if any(n not in known for n in names):
        known = {**available_packages(entry_points=entry_points), **known}
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigurationError(
            f"No content package is called {', '.join(map(repr, missing))}. "
            f"Installed: {', '.join(sorted(known)) or 'none'}. "
            "Fix CARELOOP_CONTENT (a comma-separated list of names)."
        )
    return ContentRegistry(tuple(known[n] for n in names))


_active: list[ContentRegistry] = []


def activate(
    names: str | Iterable[str] = DEFAULT_CONTENT,
    *,
    packages: Sequence[ContentPackage] = (),
    entry_points: bool = True,
) -> ContentRegistry:
    """Make these content packages the active ones for this process, and return them.

    Args:
        names: Names to activate, in order (a list or the setting's comma-separated
            text). Each is one of ``packages``, a default plugin or an entry point.
        packages: Packages given directly (not installed), e.g. in tests.
        entry_points: Also search installed distributions' entry points.

    Raises:
        ConfigurationError: a name is unknown, or two packages disagree.
    """
    registry = select_content(names, packages=packages, entry_points=entry_points)
    _active[:] = [registry]
    return registry


def active_content() -> ContentRegistry:
    """The active content packages (:data:`DEFAULT_CONTENT` until :func:`activate`)."""
    if not _active:
        _active.append(select_content(DEFAULT_CONTENT, entry_points=False))
    return _active[0]


@contextmanager
def content_in_use(registry: ContentRegistry) -> Iterator[ContentRegistry]:
    """Make ``registry`` the active content inside a ``with`` block (tests, one-off runs)."""
    before = list(_active)
    _active[:] = [registry]
    try:
        yield registry
    finally:
        _active[:] = before
