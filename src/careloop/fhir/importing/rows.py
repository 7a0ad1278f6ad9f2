"""The warehouse side of a FHIR import: concepts looked up, rows written and replaced."""

from __future__ import annotations

from typing import Any

import ibis
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from careloop.core.clock import utcnow
from careloop.fhir.codes import CODE_SYSTEMS
from careloop.fhir.importing.plan import (
    _Plan,
)
from careloop.fhir.importing.registry import (
    _Person,
)
from careloop.fhir.mapping import (
    CLINICAL_TABLES,
    EHR_TYPE_CONCEPT,
    FIELD_CONCEPT_NAMES,
    GENDER_CONCEPTS,
    ID_COLUMNS,
    LINK_SCHEMA,
    LINK_TABLE,
    PRESCRIPTION_TYPE_CONCEPT,
    VISIT_CONCEPTS,
    Coded,
    MappedRow,
    clinical_rows,
    person_row,
    reference_key,
    reference_keys,
    stable_id,
)
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings
from careloop.warehouse.sources import assemble, store_name, store_schemas, store_tables

# ---------------------------------------------------------------- the warehouse


def _lookup_concepts(
    warehouse: Warehouse, plan: _Plan, units: set[str]
) -> tuple[dict[tuple[str, str], int], dict[int, int]]:
    """(vocabulary, code) → concept id, and which standard concepts exist."""
    wanted: set[tuple[str, str]] = {("UCUM", u) for u in units}
    for entry in plan.clinical:
        for coded in entry.codes.values():
            if coded.vocabulary_id is not None:
                wanted.add((coded.vocabulary_id, coded.code))
        for component in entry.item.resource.get("component") or []:
            unit = (component.get("valueQuantity") or {}).get("code")
            if isinstance(unit, str) and unit:
                wanted.add(("UCUM", unit))
    fixed = {*GENDER_CONCEPTS.values(), *VISIT_CONCEPTS.values()}
    fixed |= {EHR_TYPE_CONCEPT, PRESCRIPTION_TYPE_CONCEPT}
    concept = warehouse.table("concept")
    found: dict[tuple[str, str], int] = {}
    with quiet_engine_warnings():
        if wanted:
            vocabularies = sorted({v for v, _ in wanted})
            codes = sorted({c for _, c in wanted})
            frame = (
                concept.filter(
                    concept.vocabulary_id.isin(vocabularies) & concept.concept_code.isin(codes)
                )
                .select("concept_id", "vocabulary_id", "concept_code")
                .execute()
            )
            for cid, vocabulary, code in frame.itertuples(index=False):
                if (vocabulary, code) in wanted:
                    found[(vocabulary, code)] = int(cid)
        if plan.components:
            # The CDM field concepts a component row names its panel row with: looked
            # up by name, as the vocabulary's own codes for them are not fixed.
            names = sorted(FIELD_CONCEPT_NAMES.values())
            fields = (
                concept.filter(
                    concept.vocabulary_id.isin(["CDM"]) & concept.concept_name.isin(names)
                )
                .select("concept_id", "concept_name")
                .execute()
            )
            for cid, name in fields.itertuples(index=False):
                found[("CDM", name)] = int(cid)
        present = concept.filter(concept.concept_id.isin(sorted(fixed))).concept_id.execute()
    standard = {int(c): int(c) for c in present}
    return found, standard


def _write_warehouse(
    warehouse: Warehouse, site_code: str, plan: _Plan, persons: dict[str, _Person]
) -> tuple[dict[str, int], int]:
    """Put the persons and clinical rows into the warehouse in one transaction."""
    loaded_at = utcnow().replace(tzinfo=None)
    allowed = {
        key
        for key, person in persons.items()
        if person.quality_improvement and person.birth_date is not None
    }
    withheld_persons = {p.person_id for k, p in persons.items() if k not in allowed}
    units = {
        str(u)
        for e in plan.clinical
        for u in [(e.item.resource.get("valueQuantity") or {}).get("code")]
        if u
    }
    warehouse.create_schema(tables=["person", *CLINICAL_TABLES, "concept"])
    warehouse.ensure_table(LINK_TABLE, LINK_SCHEMA)
    concepts, standard = _lookup_concepts(warehouse, plan, units)

    def concept(coded: Coded | None) -> int:
        if coded is None or coded.vocabulary_id is None:
            return 0
        return concepts.get((coded.vocabulary_id, coded.code), 0)

    def unit_concept(unit: str | None) -> int:
        return concepts.get(("UCUM", unit), 0) if unit else 0

    gender = {("Gender", s): standard.get(c, 0) for s, c in GENDER_CONCEPTS.items()}
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("person", *CLINICAL_TABLES)}
    links: list[dict[str, Any]] = []
    for key in sorted(allowed):
        p = persons[key]
        assert p.birth_date is not None
        rows["person"].append(person_row(p.person_id, p.pseudo_id, p.birth_date, p.sex, gender))
    visits: dict[str, int] = {}
    for entry in plan.clinical:
        resource = entry.item.resource
        if resource["resourceType"] == "Encounter":
            vid = stable_id(site_code, "Encounter", str(resource["id"]))
            for ref in reference_keys(resource, entry.item.full_url):
                visits[ref] = vid
    withheld = 0
    for entry in plan.clinical:
        if entry.patient_key not in allowed:
            withheld += 1
            continue
        resource = entry.item.resource
        mapped: MappedRow
        for mapped in clinical_rows(
            resource,
            site_code=site_code,
            person_id=persons[entry.patient_key].person_id,
            visit_id=visits.get(reference_key(resource.get("encounter")) or ""),
            codes={k: v for k, v in entry.codes.items()},
            concept=concept,
            unit_concept=unit_concept,
            standard=standard,
            loaded_at=loaded_at,
            zone=plan.zone,
        ):
            rows[mapped.table].append(mapped.row)
            links.append(mapped.link)
    counts = _replace_rows(warehouse, rows, links, withheld_persons)
    return counts, withheld


def _replace_rows(
    warehouse: Warehouse,
    rows: dict[str, list[dict[str, Any]]],
    links: list[dict[str, Any]],
    withheld_persons: set[int],
) -> dict[str, int]:
    """Upsert by resource into the FHIR source's store, then assemble the CDM tables; one swap.

    A resource imported again replaces every row it gave before (a panel sent
    again with fewer components keeps no stale component row); rows of
    ``withheld_persons`` (consent no longer allows the warehouse) go. The rows
    other sources hold (the registry's, loaded OMOP files') are left as they
    are (:mod:`careloop.warehouse.sources`).
    """
    stores = store_tables(warehouse)
    mine = sorted(stores["fhir"] | set(rows))
    stores["fhir"] = set(mine)
    public = sorted({t for tables in stores.values() for t in tables} | {"observation_period"})
    names = [*(store_name("fhir", t) for t in mine), LINK_TABLE, *public]
    counts: dict[str, int] = {}
    gone = sorted(withheld_persons)
    with warehouse.replacing(names, schemas=store_schemas("fhir", mine)) as swap:
        # The links first: the resources imported now, and the rows they gave before
        # (read now: the staged link table is filled further below).
        replaced: dict[str, list[int]] = {}
        if links:
            swap.insert(LINK_TABLE, pa.Table.from_pylist(links))
        if warehouse.has_table(LINK_TABLE):
            old_links = warehouse.table(LINK_TABLE)
            keep_links = old_links
            if links:
                again = _resources(warehouse.table(swap.stage(LINK_TABLE))).distinct()
                old = _resources(old_links)
                with quiet_engine_warnings():
                    stale = old.semi_join(again, RESOURCE_KEY).select("cdm_table", "cdm_id")
                    for table, cdm_id in stale.execute().itertuples(index=False):
                        replaced.setdefault(str(table), []).append(int(cdm_id))
                keep_links = old.anti_join(again, RESOURCE_KEY).drop(*_RESOURCE_PARTS)
            if gone:
                keep_links = keep_links.filter(~keep_links.person_id.isin(gone))
            swap.insert(LINK_TABLE, keep_links)
        for name in mine:
            data = rows.get(name, [])
            key = ID_COLUMNS.get(name)
            target = store_name("fhir", name)
            if data:
                swap.insert(target, pa.Table.from_pylist(data))
            counts[name] = len(data)
            if not warehouse.has_table(target):
                continue
            keep = warehouse.table(target)
            if data and key:
                keep = keep.anti_join(warehouse.table(swap.stage(target)), key)
            if replaced.get(name) and key:
                keep = keep.filter(~keep[key].isin(replaced[name]))
            if gone:
                keep = keep.filter(~keep.person_id.isin(gone))
            swap.insert(target, keep)
        assemble(warehouse, swap, public, stores)
    return counts


_RESOURCE_PARTS = ("careloop_resource_type", "careloop_resource_id")
RESOURCE_KEY = [*_RESOURCE_PARTS, "person_id"]
"""A resource within one patient (resource ids are per site, and so are person ids)."""


def _resources(links: ibis.Table) -> ibis.Table:
    """Links with the resource each row came from: an Observation's components
    (``Observation.component``, ``<id>/<n>``) belong to the Observation itself."""
    return links.mutate(
        careloop_resource_type=links.resource_type.re_extract(r"^([^.]*)", 1),
        careloop_resource_id=links.resource_id.re_extract(r"^([^/]*)", 1),
    )


def known_code_systems() -> list[str]:
    """The code systems careloop maps to OMOP vocabularies (for docs and errors)."""
    return sorted(CODE_SYSTEMS)
