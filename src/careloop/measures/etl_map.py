"""The concept map the registry → OMOP ETL uses for the built-in IBD registry forms.

It is :mod:`careloop.measures.concepts` in the shape the ETL takes, so the
warehouse holds exactly the concept ids the built-in measures count.
"""

from __future__ import annotations

from collections.abc import Sequence

from careloop.core.settings import Settings
from careloop.measures import concepts
from careloop.store.database import Registry
from careloop.trust.principal import Principal
from careloop.warehouse.refresh import ConceptMap, RefreshReport, RegistryTables, refresh_warehouse


def ibd_concept_map() -> ConceptMap:
    """The ETL's concept map for the example IBD registry."""
    return ConceptMap(
        fields=dict(concepts.FIELD_CONCEPTS),
        choices=dict(concepts.CHOICE_CONCEPTS),
        visit_types=dict(concepts.VISIT_TYPES),
        visit_type_field="visit_type",
        drug_start_fields={"steroid_use": "steroid_start"},
        names=concepts.local_concepts(),
    )


def refresh_for_builtin_measures(
    settings: Settings,
    registry: Registry,
    principal: Principal,
    *,
    full: bool = False,
    extra: Sequence[RegistryTables] = (),
) -> RefreshReport:
    """Refresh the warehouse from the registry with the built-in measures' concepts."""
    return refresh_warehouse(
        settings, registry, principal, concept_map=ibd_concept_map(), full=full, extra=extra
    )
