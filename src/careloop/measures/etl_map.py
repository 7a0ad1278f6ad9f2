"""The concept map the registry → OMOP ETL uses: the active content packages'.

The forms, and the concept ids their fields become, belong to content packages
(:mod:`careloop.core.content`); the measures of those packages count exactly
these ids, so a refresh for the measures uses the active packages' merged map.
"""

from __future__ import annotations

from collections.abc import Sequence

from careloop.core.content import ConceptMap, ContentRegistry, active_content
from careloop.core.settings import Settings
from careloop.store.database import Registry
from careloop.trust.principal import Principal
from careloop.warehouse.refresh import RefreshReport, RegistryTables, refresh_warehouse


def content_concept_map(content: ContentRegistry | None = None) -> ConceptMap:
    """The ETL's concept map: every active content package's, merged."""
    return (content or active_content()).concept_map()


def refresh_for_builtin_measures(
    settings: Settings,
    registry: Registry,
    principal: Principal,
    *,
    full: bool = False,
    extra: Sequence[RegistryTables] = (),
    content: ContentRegistry | None = None,
) -> RefreshReport:
    """Refresh the warehouse from the registry with the concepts the measures count.

    Args:
        content: The content packages whose concept map to use (default: the active ones).
    """
    return refresh_warehouse(
        settings,
        registry,
        principal,
        concept_map=content_concept_map(content),
        full=full,
        extra=extra,
    )
