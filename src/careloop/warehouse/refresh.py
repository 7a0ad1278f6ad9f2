"""The registry → OMOP ETL: `careloop warehouse refresh`.

What goes in:

- Sites become ``care_site`` rows (``care_site_source_value`` = site code).
- Patients who agree to quality improvement (consent purpose
  ``quality_improvement``, :mod:`careloop.trust.consent`) become ``person``
  rows keyed by their internal id, with the pseudonymous id as
  ``person_source_value`` and only the year and month of birth: no names,
  no local ids (MRNs), no exact dates of birth. Other patients are not
  loaded, and withdrawing that purpose removes a patient on the next
  refresh (research consent plays no part here). What consent kept out and
  removed is audited (``consent``/``apply``).
- Each *complete* form response of a form that is not patient-reported is a
  ``visit_occurrence``; every answered field with an OMOP domain becomes a
  row of that domain (measurement, observation, condition_occurrence,
  drug_exposure, procedure_occurrence), by the concept its dictionary
  declares or the :class:`ConceptMap` gives. Local codes get careloop-local
  concept ids (≥ 2,000,000,000) registered in ``concept``.
- A form version that cannot be read is reported and its responses left
  out (:attr:`RefreshReport.skipped_forms`); the other forms are loaded.

These rows are the ``registry`` source's (:mod:`careloop.warehouse.sources`):
they go to its store, and the CDM tables are then assembled from every
source's store — FHIR imports and loaded OMOP files keep their rows, consent
now in force removes a patient's rows from every source, and
``observation_period`` spans each person's first to last event across
sources. Further registry tables (the CDS card events) can be refreshed in
the same run (``extra``).

Incremental: a content hash per person (``careloop_etl_state``) tells which
persons changed since the last refresh; only their rows are rebuilt from the
registry, the others are copied inside the warehouse. Atomic: all tables are
swapped in one transaction (:meth:`Warehouse.replacing`), so readers see the
old or the new warehouse, never half of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

import ibis
import pandas as pd

from careloop.core.clock import utcnow
from careloop.core.content import LOCAL_CONCEPT_BASE, ConceptMap, active_content
from careloop.core.errors import ErrorDetail
from careloop.store.database import Registry
from careloop.trust.consent import record_consent_effect
from careloop.trust.principal import Principal
from careloop.trust.provenance import (
    InputRecord,
    Provenance,
    find_provenance,
    record_provenance,
)
from careloop.warehouse.connection import TableSwap, Warehouse, quiet_engine_warnings
from careloop.warehouse.registry_rows import (
    CONSENT_FOR_IMPROVEMENT,
    PERSON_TABLES,
    STANDARD_CONCEPTS,
    RowBuilder,
    read_registry,
    read_values,
    standard_concepts,
)
from careloop.warehouse.sources import (
    SOURCES,
    assemble,
    persons_of,
    source_summaries,
    store_name,
    store_schemas,
    store_tables,
    withhold_persons,
    withholding,
)

__all__ = [
    "LOAD_ACTIVITIES",
    "ConceptMap",
    "RefreshReport",
    "RegistryTables",
    "TablesRefresh",
    "refresh_registry_tables",
    "refresh_warehouse",
    "source_provenance",
    "warehouse_provenance",
]

STATE_TABLE = "careloop_etl_state"
STATE_SCHEMA = ibis.schema(
    {"person_id": "int64", "content_hash": "string", "refreshed_at": "timestamp"}
)
PERSONS_PER_BATCH = 2_000
REGISTRY_TABLES = (*PERSON_TABLES, "care_site", "cdm_source")
"""Every table of the registry source's store."""


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did."""

    persons: int
    """Persons in the warehouse after the refresh."""
    persons_rebuilt: int
    """Persons whose rows were rebuilt from the registry (new or changed)."""
    persons_removed: int
    """Persons removed (consent withdrawn, or deleted from the registry)."""
    patients_excluded: int
    """Registry patients not loaded because their consent does not allow it."""
    rows: Mapping[str, int]
    """Rows per warehouse table after the refresh."""
    provenance_id: int
    """The provenance record of this refresh."""
    skipped_forms: tuple[ErrorDetail, ...] = ()
    """Form versions that could not be read: their responses were left out (and why)."""
    withheld: Mapping[str, int] = field(default_factory=dict)
    """Other sources (e.g. ``fhir``) → persons whose rows were removed there because their
    consent no longer allows improvement use."""
    sources: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Every source in the warehouse after the refresh → its rows per table."""
    extra: Mapping[str, int] = field(default_factory=dict)
    """Further registry tables refreshed in the same run (``extra``) → rows written."""
    extra_provenance_ids: Mapping[str, int] = field(default_factory=dict)
    """Their provenance records, by name."""


class RegistryTables(Protocol):
    """Further tables a refresh copies from the registry in the same transaction.

    The CDS card events are one (:mod:`careloop.practice.events`); each gets a
    provenance record of its own.
    """

    @property
    def name(self) -> str:
        """Short name, for reports and provenance."""

    @property
    def schemas(self) -> Mapping[str, ibis.Schema]:
        """Warehouse table → its schema."""

    def read(self, registry: Registry) -> Mapping[str, pd.DataFrame]:
        """The rows of each table, as the registry holds them now."""


def _previous_state(warehouse: Warehouse) -> dict[int, str]:
    # Without the registry's store (a new warehouse) every person is built afresh.
    if not warehouse.has_table(STATE_TABLE) or not warehouse.has_table(
        store_name("registry", "person")
    ):
        return {}
    with quiet_engine_warnings():
        frame = warehouse.table(STATE_TABLE).execute()
    return {int(r.person_id): str(r.content_hash) for r in frame.itertuples()}


def refresh_warehouse(
    registry: Registry,
    warehouse: Warehouse,
    principal: Principal,
    *,
    concept_map: ConceptMap | None = None,
    full: bool = False,
    sources: Sequence[RegistryTables] = (),
) -> RefreshReport:
    """Bring the warehouse up to date with the registry (see the module docstring).

    Long because it documents its options and runs the refresh's steps in order, sharing
    the registry snapshot and the lists of tables between the swap, the provenance
    record and the report.

    The sources loaded from files (FHIR imports, OMOP files) keep their rows and
    join the assembled tables; the registry's forms are rebuilt; ``sources``
    (e.g. the CDS card events) are copied after, each with its own provenance.

    Args:
        registry: The registry to read.
        warehouse: The warehouse to write (opened for writing).
        principal: Who refreshes; needs ``warehouse.manage``.
        concept_map: Concepts of the registry's forms (what its measures count);
            default: the active content packages' (``careloop.core.content``).
        full: Rebuild every registry person, not only those that changed.
        sources: Further registry tables to copy in the same run.
    """
    started = utcnow()
    cmap = concept_map if concept_map is not None else active_content().concept_map()
    warehouse.create_schema()
    warehouse.ensure_table(STATE_TABLE, STATE_SCHEMA)
    previous = {} if full else _previous_state(warehouse)
    snapshot = read_registry(registry, principal, previous)
    hashes = snapshot.hashes
    changed = [pid for pid, h in hashes.items() if previous.get(pid) != h]
    removed = [pid for pid in previous if pid not in hashes]
    builder = RowBuilder(snapshot, cmap, standard_concepts(warehouse, snapshot))
    stores = store_tables(warehouse)
    stores["registry"] = set(REGISTRY_TABLES)
    withheld = _withheld_elsewhere(warehouse, stores, set(hashes))
    public = sorted({t for tables in stores.values() for t in tables} | {"observation_period"})
    names = _replaced_tables(warehouse, withheld, public)
    with warehouse.replacing(names, schemas=store_schemas("registry", REGISTRY_TABLES)) as swap:
        _write_registry_store(
            warehouse, swap, registry, builder, changed, set(changed) | set(removed), previous
        )
        _write_concepts(warehouse, swap, builder)
        _write_state(swap, hashes, started)
        for source, (tables, gone) in withheld.items():
            withhold_persons(warehouse, swap, source, tables, gone)
        assemble(warehouse, swap, public, stores)
    rows = warehouse.row_counts(PUBLIC_PERSON_TABLES)
    summaries = {s.name: dict(s.rows) for s in source_summaries(warehouse)}
    target = warehouse.url
    provenance: Provenance = record_provenance(
        registry,
        principal,
        activity="warehouse.refresh",
        target=target,
        started_at=started,
        parameters={"full": full, "concept_map_fields": sorted(cmap.fields)},
        inputs=[
            InputRecord(
                "registry snapshot",
                hashlib.sha256("".join(sorted(hashes.values())).encode()).hexdigest(),
                len(snapshot.responses),
            )
        ],
        outputs={
            "rows": rows,
            "rebuilt": len(changed),
            "removed": len(removed),
            "skipped_forms": [d.location for d in snapshot.skipped],
            "withheld_elsewhere": {k: len(v[1]) for k, v in withheld.items()},
            "sources": summaries,
        },
        rows_in=len(snapshot.patients) + snapshot.excluded,
        rows_out=rows.get("person", 0),
        rows_rejected=snapshot.excluded,
        # The loads whose rows this refresh assembled with the registry's.
        parent_ids=source_provenance(registry, [s for s in summaries if s != "registry"]),
    )
    record_consent_effect(
        registry,
        principal,
        activity="warehouse.refresh",
        purpose=CONSENT_FOR_IMPROVEMENT,
        kept_out=snapshot.excluded,
        removed=[int(pid) for pid in removed],
    )
    extra_runs = refresh_registry_tables(
        registry, warehouse, principal, sources, parent=provenance.id
    )
    return RefreshReport(
        persons=rows.get("person", 0),
        persons_rebuilt=len(changed),
        persons_removed=len(removed),
        patients_excluded=snapshot.excluded,
        rows=rows,
        provenance_id=provenance.id,
        skipped_forms=tuple(snapshot.skipped),
        withheld={k: len(v[1]) for k, v in withheld.items()},
        sources=summaries,
        extra={k: sum(r.rows.values()) for k, r in extra_runs.items()},
        extra_provenance_ids={k: r.provenance_id for k, r in extra_runs.items()},
    )


def _replaced_tables(
    warehouse: Warehouse, withheld: Mapping[str, tuple[list[str], list[int]]], public: list[str]
) -> list[str]:
    """Every table the refresh replaces in one swap."""
    return [
        *store_schemas("registry", REGISTRY_TABLES),
        *(
            n
            for source, (tables, _) in withheld.items()
            for n in withholding(warehouse, source, tables)
        ),
        *public,
        "concept",
        STATE_TABLE,
    ]


def _write_state(swap: TableSwap, hashes: Mapping[int, str], started: datetime) -> None:
    """Record each person's content hash, for the next refresh to skip the unchanged."""
    swap.insert(
        STATE_TABLE,
        pd.DataFrame(
            [
                {"person_id": pid, "content_hash": h, "refreshed_at": started}
                for pid, h in hashes.items()
            ],
            columns=["person_id", "content_hash", "refreshed_at"],
        ),
    )


LOAD_ACTIVITIES: Mapping[str, str] = {"fhir": "fhir.import", "omop": "warehouse.load_omop"}
"""Each source loaded from files → the provenance activity of its loads."""


def source_provenance(registry: Registry, sources: Sequence[str]) -> list[int]:
    """The provenance entries of the loads that put these sources' rows in the warehouse.

    Every load of a source since it was last dropped (``warehouse drop-source``)
    still has rows there: FHIR imports add to one another, OMOP loads replace
    their tables but keep their files' lineage.
    """
    entries = find_provenance(
        registry, activities=[*LOAD_ACTIVITIES.values(), "warehouse.drop_source"]
    )
    out: list[int] = []
    for source in sources:
        activity = LOAD_ACTIVITIES.get(source)
        if activity is None:
            continue
        dropped = max(
            (
                e.id
                for e in entries
                if e.activity == "warehouse.drop_source" and e.parameters.get("source") == source
            ),
            default=0,
        )
        out += [e.id for e in entries if e.activity == activity and e.id > dropped]
    return sorted(out)


def warehouse_provenance(registry: Registry) -> list[int]:
    """The provenance entries behind what the warehouse holds now.

    The latest refresh (whose parents are the loads before it) and every load
    since; a measure run or an analysis of the warehouse names these as its
    parents, so its chain reaches the source files.
    """
    entries = find_provenance(registry, activities=["warehouse.refresh", *LOAD_ACTIVITIES.values()])
    refreshes = [
        e for e in entries if e.activity == "warehouse.refresh" and "source" not in e.parameters
    ]
    last = refreshes[-1].id if refreshes else 0
    later = [e.id for e in entries if e.activity in LOAD_ACTIVITIES.values() and e.id > last]
    return ([last] if last else []) + later


@dataclass(frozen=True)
class TablesRefresh:
    """What :func:`refresh_registry_tables` wrote for one :class:`RegistryTables`."""

    rows: Mapping[str, int]
    """Rows per table."""
    provenance_id: int
    """Its provenance record."""


def refresh_registry_tables(
    registry: Registry,
    warehouse: Warehouse,
    principal: Principal,
    sources: Sequence[RegistryTables],
    *,
    parent: int | None = None,
) -> dict[str, TablesRefresh]:
    """Copy further registry tables (e.g. the CDS card events) into the warehouse.

    Each source's tables are replaced in one transaction and get one provenance
    record (with ``parent``, the refresh it belongs to, when given).
    """
    principal.require("warehouse.manage")
    out: dict[str, TablesRefresh] = {}
    for source in sources:
        started = utcnow()
        frames = source.read(registry)
        with warehouse.replacing(list(source.schemas), schemas=source.schemas) as swap:
            rows = {t: swap.insert(t, frames[t]) for t in source.schemas}
        target = warehouse.url
        total = sum(rows.values())
        provenance = record_provenance(
            registry,
            principal,
            activity="warehouse.refresh",
            target=target,
            started_at=started,
            parameters={"source": source.name},
            inputs=[InputRecord(f"registry {source.name}", _frames_hash(frames), total)],
            outputs={"rows": rows},
            rows_in=total,
            rows_out=total,
            parent_ids=[parent] if parent is not None else [],
        )
        out[source.name] = TablesRefresh(rows, provenance.id)
    return out


PUBLIC_PERSON_TABLES = ("person", "observation_period", *PERSON_TABLES[1:])
"""The CDM tables a refresh reports rows of."""


def _frames_hash(frames: Mapping[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in sorted(frames):
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(frames[name], index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _withheld_elsewhere(
    warehouse: Warehouse, stores: Mapping[str, set[str]], allowed: set[int]
) -> dict[str, tuple[list[str], list[int]]]:
    """Other sources of registry patients → (their tables, persons consent now keeps out)."""
    out: dict[str, tuple[list[str], list[int]]] = {}
    for name, kind in SOURCES.items():
        if name == "registry" or not kind.registry_patients or not stores[name]:
            continue
        gone = sorted(persons_of(warehouse, name) - allowed)
        if gone:
            out[name] = (sorted(stores[name]), gone)
    return out


def _write_registry_store(
    warehouse: Warehouse,
    swap: TableSwap,
    registry: Registry,
    builder: RowBuilder,
    changed: list[int],
    stale: set[int],
    previous: Mapping[int, str],
) -> None:
    """The registry source's rows: unchanged persons copied, changed persons rebuilt."""
    snapshot = builder.snapshot
    for name in PERSON_TABLES:
        if previous:
            kept = warehouse.table(store_name("registry", name))
            if stale:
                kept = kept.filter(~kept.person_id.isin(sorted(stale)))
            swap.insert(store_name("registry", name), kept)
    # Persons in batches: only one batch's response values are in memory at a time.
    ordered = sorted(changed)
    for start in range(0, len(ordered), PERSONS_PER_BATCH):
        batch = ordered[start : start + PERSONS_PER_BATCH]
        responses = snapshot.responses
        snapshot.values = read_values(
            registry, responses.id[responses.patient_id.isin(batch)].tolist()
        )
        for name, frame in builder.build(set(batch)).items():
            if not frame.empty:
                swap.insert(store_name("registry", name), frame)
    snapshot.values = {}
    swap.insert(
        store_name("registry", "care_site"),
        pd.DataFrame(
            [
                {
                    "care_site_id": s.id,
                    "care_site_name": s.name,
                    "place_of_service_concept_id": 0,
                    "care_site_source_value": s.code,
                }
                for s in snapshot.sites.itertuples(index=False)
            ],
            # Named, so that an installation with no site yet still has the columns.
            columns=[
                "care_site_id",
                "care_site_name",
                "place_of_service_concept_id",
                "care_site_source_value",
            ],
        ),
    )
    today = utcnow().date()
    swap.insert(
        store_name("registry", "cdm_source"),
        pd.DataFrame(
            [
                {
                    "cdm_source_name": "careloop registry",
                    "cdm_source_abbreviation": "careloop",
                    "cdm_holder": "careloop",
                    "source_release_date": today,
                    "cdm_release_date": today,
                    "cdm_version": "5.4",
                    "cdm_version_concept_id": 756265,
                    "vocabulary_version": "careloop local",
                }
            ]
        ),
    )


def _write_concepts(warehouse: Warehouse, swap: TableSwap, builder: RowBuilder) -> None:
    """``concept``: the registry's local concepts replaced, standard ones it needs added."""
    local = {**builder.local_names}
    concept = warehouse.table("concept")
    with quiet_engine_warnings():
        before = concept.filter(concept.concept_id >= LOCAL_CONCEPT_BASE).execute()
    # Concepts of persons not rebuilt this time keep the domain they were given.
    domains = {
        **dict(zip(before.concept_id, before.domain_id, strict=True)),
        **builder.local_domains,
    }
    others = concept.filter(~concept.concept_id.isin(sorted(local))) if local else concept
    swap.insert("concept", others)
    with quiet_engine_warnings():
        known = set(
            concept.filter(concept.concept_id.isin(list(STANDARD_CONCEPTS)))
            .concept_id.execute()
            .tolist()
        )
    missing = {k: v for k, v in STANDARD_CONCEPTS.items() if k not in known}
    if missing:
        swap.insert(
            "concept",
            pd.DataFrame(
                [
                    {
                        "concept_id": cid,
                        "concept_name": name,
                        "domain_id": domain,
                        "vocabulary_id": vocabulary,
                        "concept_class_id": concept_class,
                        "standard_concept": "S",
                        "concept_code": code,
                        "valid_start_date": date(1970, 1, 1),
                        "valid_end_date": date(2099, 12, 31),
                    }
                    for cid, (name, domain, vocabulary, concept_class, code) in missing.items()
                ]
            ),
        )
    if local:
        swap.insert(
            "concept",
            pd.DataFrame(
                [
                    {
                        "concept_id": cid,
                        "concept_name": name[:255],
                        "domain_id": domains.get(cid, "Observation"),
                        "vocabulary_id": "careloop",
                        "concept_class_id": "Registry field",
                        # Custom concepts (ids of 2 billion and up) stand in the
                        # *_concept_id columns, so they are this warehouse's standard.
                        "standard_concept": "S",
                        "concept_code": str(cid),
                        "valid_start_date": date(2000, 1, 1),
                        "valid_end_date": date(2099, 12, 31),
                    }
                    for cid, name in sorted(local.items())
                ]
            ),
        )
