"""What a measure reads: its OMOP tables and the concept ids its criteria name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ibis

from careloop.core.content import LOCAL_CONCEPT_BASE, active_content
from careloop.core.errors import NotFound
from careloop.measures.compiler import (
    _TABLES,
)
from careloop.measures.definition import Criterion, MeasureDefinition
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings


class _Tables:
    """The warehouse's tables, listed once per run (Warehouse.table lists them every call)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.names = set(warehouse.list_tables())
        self._cache: dict[str, ibis.Table] = {}

    def __call__(self, name: str) -> ibis.Table:
        if name not in self._cache:
            if name not in self.names:
                raise NotFound(
                    f"The warehouse {self.warehouse.url} has no table {name!r}. Load the OMOP "
                    "data first (the ETL or load_omop_csv) or create the CDM tables."
                )
            with quiet_engine_warnings():
                self._cache[name] = self.warehouse.ibis.table(name)
        return self._cache[name]


def tables_needed(definition: MeasureDefinition, strata: Iterable[str] = ()) -> list[str]:
    """OMOP tables a measure reads."""
    names = {_TABLES[c.domain][0] for c in definition.criteria()}
    if definition.subject == "visit":
        names.add("visit_occurrence")
    if definition.subject == "person" or set(strata) & {"sex", "age_band", "race", "ethnicity"}:
        names.add("person")
    return sorted(names)


def resolve_concepts(
    warehouse: Warehouse, measures: Sequence[MeasureDefinition]
) -> tuple[dict[Criterion, tuple[int, ...]], list[str]]:
    """Each criterion's concept ids with descendants, and warnings for unknown ids.

    Standard ids are checked against the ``concept`` table when it holds a
    vocabulary (any concept below 2,000,000,000); careloop-local ids are known
    when the ``concept`` table or an active content package
    (:func:`careloop.core.content.active_content`) names them.
    Descendants come from ``concept_ancestor``; without that table a criterion
    matches its own ids only (and a warning says so).
    """
    tables = _Tables(warehouse)
    criteria = {c for m in measures for c in m.criteria()}
    ids = sorted({i for c in criteria for i in c.concepts})
    found: set[int] = set()
    has_vocabulary = False
    warnings: list[str] = []
    with quiet_engine_warnings():
        if ids and "concept" in tables.names:
            concept = tables("concept")
            rows = concept.filter(concept.concept_id.isin(ids)).select("concept_id")
            found = {int(i) for i in rows.execute().concept_id}
            # The registry refresh writes only careloop-local concepts; standard ids
            # are checked only when a vocabulary (any standard concept) is loaded.
            standard = concept.filter(concept.concept_id < LOCAL_CONCEPT_BASE)
            has_vocabulary = int(standard.limit(1).count().execute()) > 0
        descendants: dict[int, set[int]] = {}
        wanted = sorted({i for c in criteria if c.descendants for i in c.concepts})
        if wanted and "concept_ancestor" in tables.names:
            ca = tables("concept_ancestor")
            pairs = (
                ca.filter(ca.ancestor_concept_id.isin(wanted))
                .select("ancestor_concept_id", "descendant_concept_id")
                .execute()
            )
            for a, d in zip(pairs.ancestor_concept_id, pairs.descendant_concept_id, strict=True):
                descendants.setdefault(int(a), set()).add(int(d))
        elif wanted:
            warnings.append(
                "The warehouse has no concept_ancestor table: 'descendants: true' matches "
                "the listed concept ids only."
            )
    local = active_content().concept_names()
    for m in measures:
        unknown = sorted(
            {
                i
                for c in m.criteria()
                for i in c.concepts
                if i not in found
                and (i not in local if i >= LOCAL_CONCEPT_BASE else has_vocabulary)
            }
        )
        for i in unknown:
            warnings.append(
                f"{m.source}: concept {i} is not in the vocabulary; criteria with it "
                "match no rows through it."
            )
    resolved = {
        c: tuple(
            sorted(
                set(c.concepts).union(
                    *(descendants.get(i, set()) for i in c.concepts if c.descendants)
                )
            )
        )
        for c in criteria
    }
    return resolved, warnings
