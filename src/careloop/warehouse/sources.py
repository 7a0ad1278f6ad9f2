"""Where the warehouse's rows come from, and how the CDM tables are put together.

Several **sources** land person-level rows in the warehouse:

=============  ===========================================  ==============================
source         what writes it                               whose persons
=============  ===========================================  ==============================
``registry``   ``careloop warehouse refresh`` (form answers)  registry patients
``fhir``       ``careloop fhir import``                      registry patients
``omop``       ``careloop warehouse load-omop``              the files' own persons
=============  ===========================================  ==============================

Each source keeps its rows in a **store** of its own: tables named
``careloop_src_<source>__<table>`` with the CDM schema of ``<table>``. A
source is written only by its own loader, so refreshing or loading one never
touches another's rows. The CDM tables that measures, checks and analysts
read (``person``, ``visit_occurrence``, ``measurement`` …, plus
``care_site`` and ``cdm_source``) are then **assembled** from every store in
the same transaction (:func:`assemble`):

- the rows of every store, unioned;
- ``person``: a registry patient has one row even when several sources hold
  one (the first source in :data:`SOURCE_ORDER` wins);
- ``observation_period`` of registry patients spans their first to last event
  across all their sources; loaded OMOP files bring their own;
- ``cdm_source``: one row, the loaded OMOP files' own if there are any;
- two sources that use the same id in one table (loaded OMOP files whose
  ``person_id`` 1 is also a registry patient's id, say) would mix two
  different records under one id: the load or refresh fails with a
  :class:`~careloop.core.errors.Conflict` naming the table and the ids, and
  changes nothing.

Consent: a registry patient's rows are in a store only while their consent
allows improvement use. Each refresh removes, from every store of registry
patients, the persons whose consent no longer allows it
(:func:`withhold_persons`), so withdrawal takes effect on the next refresh
whichever source the rows came from.

Tables no store holds (the vocabularies, ``location``, ``provider`` …) are
written by their one loader in place. ``concept`` is shared: rows of the
``careloop`` vocabulary (local concepts, ids of 2 billion and up) belong to
the registry refresh, the rest to the loaded vocabularies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import ibis

from careloop.core.errors import Conflict, ErrorDetail, InputError
from careloop.warehouse.connection import TableSwap, Warehouse, quiet_engine_warnings
from careloop.warehouse.omop_schema import CLINICAL_EVENT_TABLES, TABLES

__all__ = [
    "ASSEMBLED_TABLES",
    "SOURCES",
    "SOURCE_ORDER",
    "SourceKind",
    "SourceSummary",
    "adopt_unsourced_rows",
    "assemble",
    "drop_source",
    "persons_of",
    "source_summaries",
    "store_name",
    "store_schemas",
    "store_tables",
    "withhold_persons",
    "withholding",
]

STORE_PREFIX = "careloop_src_"
EHR_TYPE = 32817  # OMOP type concept "EHR"


@dataclass(frozen=True)
class SourceKind:
    """A source of person-level rows."""

    name: str
    """Short name, used in store table names."""
    label: str
    """What it is, for people."""
    registry_patients: bool
    """Its persons are registry patients: consent applies, ``person`` rows are shared and
    observation periods are derived from every such source together."""
    side_tables: tuple[str, ...] = ()
    """Tables of its own beside the stores, with a ``person_id`` column (consent applies)."""


SOURCES: Mapping[str, SourceKind] = {
    "registry": SourceKind("registry", "registry form answers", registry_patients=True),
    "fhir": SourceKind(
        "fhir", "FHIR imports", registry_patients=True, side_tables=("careloop_fhir_link",)
    ),
    "omop": SourceKind("omop", "loaded OMOP files", registry_patients=False),
}
"""Every source careloop assembles the CDM tables from."""
SOURCE_ORDER: tuple[str, ...] = ("registry", "fhir", "omop")
"""Precedence where rows of one person are shared (``person``)."""

ASSEMBLED_TABLES: tuple[str, ...] = (
    *(name for name, table in TABLES.items() if table.has_person),
    "care_site",
    "cdm_source",
)
"""CDM tables put together from the stores (every person-level table, sites, metadata)."""


def store_name(source: str, table: str) -> str:
    """The store table of ``source`` that holds its rows of the CDM table ``table``."""
    if source not in SOURCES:
        raise InputError(f"Unknown warehouse source {source!r}; known: {', '.join(SOURCES)}.")
    if table not in ASSEMBLED_TABLES:
        raise InputError(f"{table!r} is not a table the warehouse assembles from sources.")
    return f"{STORE_PREFIX}{source}__{table}"


def store_tables(warehouse: Warehouse) -> dict[str, set[str]]:
    """Which CDM tables each source has a store table for: source → tables.

    A warehouse written by a careloop before sources existed has its rows
    given to their sources first (:func:`adopt_unsourced_rows`).
    """
    if not warehouse.read_only:
        adopt_unsourced_rows(warehouse)
    found: dict[str, set[str]] = {name: set() for name in SOURCES}
    for table in warehouse.list_tables():
        if not table.startswith(STORE_PREFIX):
            continue
        source, _, cdm = table[len(STORE_PREFIX) :].partition("__")
        if source in found and cdm in ASSEMBLED_TABLES:
            found[source].add(cdm)
    return found


def store_schemas(source: str, tables: Iterable[str]) -> dict[str, ibis.Schema]:
    """Store table name → the CDM schema, for :meth:`Warehouse.replacing`."""
    return {store_name(source, t): TABLES[t].schema() for t in tables}


Reader = Callable[[str], ibis.Table]
"""Reads a table by name: the staged contents when the table is being replaced."""


def swap_reader(warehouse: Warehouse, swap: TableSwap) -> Reader:
    """A reader that sees what ``swap`` is writing for the tables it replaces."""

    def read(name: str) -> ibis.Table:
        if name in swap.schemas:
            with quiet_engine_warnings():
                return warehouse.ibis.table(swap.stage(name))
        return warehouse.table(name)

    return read


def persons_of(warehouse: Warehouse, source: str) -> set[int]:
    """The person ids ``source`` holds rows of (from its ``person`` store)."""
    name = store_name(source, "person")
    if not warehouse.has_table(name):
        return set()
    with quiet_engine_warnings():
        return {int(p) for p in warehouse.table(name).person_id.execute()}


def withholding(warehouse: Warehouse, source: str, tables: Iterable[str]) -> list[str]:
    """The tables :func:`withhold_persons` rewrites: the stores and the side tables."""
    side = [t for t in SOURCES[source].side_tables if warehouse.has_table(t)]
    return [*(store_name(source, t) for t in tables), *side]


def withhold_persons(
    warehouse: Warehouse,
    swap: TableSwap,
    source: str,
    tables: Iterable[str],
    persons: Sequence[int],
) -> None:
    """Fill ``swap``'s stages of ``source``'s tables without the rows of ``persons``."""
    gone = sorted(persons)
    for name in withholding(warehouse, source, tables):
        kept = warehouse.table(name)
        swap.insert(name, kept.filter(~kept.person_id.isin(gone)) if gone else kept)


def assemble(
    warehouse: Warehouse,
    swap: TableSwap,
    tables: Iterable[str],
    stores: Mapping[str, set[str]],
) -> None:
    """Fill ``swap``'s stages of the CDM ``tables`` from the sources' ``stores``.

    Args:
        warehouse: The warehouse.
        swap: The open replacement; it must replace every name in ``tables``,
            and any store it replaces is read as staged.
        tables: The CDM tables to assemble (of :data:`ASSEMBLED_TABLES`).
        stores: Source → the CDM tables it has a store for, as they will be
            after this replacement.

    Raises:
        Conflict: two sources use the same id in one table.
    """
    read = swap_reader(warehouse, swap)
    wanted = set(tables)
    for table in ASSEMBLED_TABLES:
        if table not in wanted:
            continue
        if table == "observation_period":
            parts = _observation_periods(read, stores)
        else:
            parts = [(s, read(store_name(s, table))) for s in SOURCE_ORDER if table in stores[s]]
        if table == "cdm_source":
            # One row describes the warehouse: the loaded files' own (their vocabulary
            # version matters to analysts), else the registry's.
            for _source, part in sorted(parts, key=lambda p: p[0] != "omop"):
                if _count(part):
                    swap.insert(table, part.limit(1))
                    break
            continue
        if table == "person":
            parts = _one_person_row_each(parts)
        _refuse_shared_ids(table, parts)
        for _source, part in parts:
            swap.insert(table, part)


def _count(table: ibis.Table) -> int:
    with quiet_engine_warnings():
        return int(table.count().execute())


def _one_person_row_each(parts: list[tuple[str, ibis.Table]]) -> list[tuple[str, ibis.Table]]:
    """Registry patients' ``person`` rows: the first source's row of each person only."""
    out: list[tuple[str, ibis.Table]] = []
    seen: ibis.Table | None = None
    for source, part in parts:
        if not SOURCES[source].registry_patients:
            out.append((source, part))
            continue
        ids = part.select("person_id")
        out.append((source, part if seen is None else part.anti_join(seen, "person_id")))
        seen = ids if seen is None else seen.union(ids)
    return out


def _refuse_shared_ids(table: str, parts: list[tuple[str, ibis.Table]]) -> None:
    key = TABLES[table].primary_key
    if key is None or len(parts) < 2:
        return
    for i, (first, a) in enumerate(parts):
        for second, b in parts[i + 1 :]:
            if SOURCES[first].registry_patients and SOURCES[second].registry_patients:
                continue  # their ids are made apart: response ids versus resource hashes
            shared = a.select(key).inner_join(b.select(key), key)
            with quiet_engine_warnings():
                count = int(shared.count().execute())
                if not count:
                    continue
                sample = sorted(int(v) for v in shared.select(key).limit(5).execute()[key])
            raise Conflict(
                f"The {SOURCES[first].label} and the {SOURCES[second].label} both use "
                f"{count:,} of the same {key} values in {table} (e.g. "
                f"{', '.join(map(str, sample))}), so their rows would be mixed under one id. "
                "Nothing was changed. Keep loaded OMOP files in a warehouse of their own "
                "(CARELOOP_WAREHOUSE_URL), or remove one source with "
                "`careloop warehouse drop-source`.",
                details=[
                    ErrorDetail(
                        f"{table}.{key}",
                        f"{count:,} ids used by both {first} and {second}",
                        value=sample,
                    )
                ],
            )


def _observation_periods(
    read: Reader, stores: Mapping[str, set[str]]
) -> list[tuple[str, ibis.Table]]:
    """Observation periods: derived for registry patients, as loaded for the others."""
    spans: list[ibis.Table] = []
    for source in SOURCE_ORDER:
        if not SOURCES[source].registry_patients:
            continue
        for table, (_concept, start, end) in CLINICAL_EVENT_TABLES.items():
            if table not in stores[source]:
                continue
            t = read(store_name(source, table))
            last = t[end].fill_null(t[start]) if end else t[start]
            # Cast so that every span has one schema (nullability differs between stores).
            spans.append(
                t.select(
                    person_id=t.person_id.cast("int64"),
                    first=t[start].cast("date"),
                    last=last.cast("date"),
                )
            )
    parts: list[tuple[str, ibis.Table]] = []
    if spans:
        events = spans[0].union(*spans[1:]) if len(spans) > 1 else spans[0]
        grouped = events.group_by("person_id").aggregate(
            start=events["first"].min(), end=events["last"].max()
        )
        parts.append(
            (
                "registry",
                grouped.select(
                    observation_period_id=grouped.person_id,
                    person_id=grouped.person_id,
                    observation_period_start_date=grouped.start.cast("date"),
                    observation_period_end_date=grouped.end.cast("date"),
                    period_type_concept_id=ibis.literal(EHR_TYPE, "int64"),
                ),
            )
        )
    parts.extend(
        (s, read(store_name(s, "observation_period")))
        for s in SOURCE_ORDER
        if not SOURCES[s].registry_patients and "observation_period" in stores[s]
    )
    return parts


@dataclass(frozen=True)
class SourceSummary:
    """One source as the warehouse holds it now."""

    name: str
    """``registry``, ``fhir`` or ``omop``."""
    label: str
    """What it is."""
    rows: Mapping[str, int]
    """Rows per CDM table in its store (tables with rows only)."""
    persons: int
    """Persons in its ``person`` store."""


def source_summaries(warehouse: Warehouse) -> list[SourceSummary]:
    """Every source with a store, and how many rows it holds per table."""
    out = []
    for name, tables in store_tables(warehouse).items():
        if not tables:
            continue
        counts = {t: _count(warehouse.table(store_name(name, t))) for t in sorted(tables)}
        out.append(
            SourceSummary(
                name=name,
                label=SOURCES[name].label,
                rows={t: n for t, n in counts.items() if n},
                persons=counts.get("person", 0),
            )
        )
    return out


def drop_source(warehouse: Warehouse, source: str) -> dict[str, int]:
    """Remove every row of ``source`` and re-assemble the CDM tables; returns rows removed."""
    stores = store_tables(warehouse)
    if source not in stores:
        raise InputError(f"Unknown warehouse source {source!r}; known: {', '.join(SOURCES)}.")
    mine = sorted(stores[source])
    if not mine:
        return {}
    removed = {t: _count(warehouse.table(store_name(source, t))) for t in mine}
    after = {**stores, source: set()}
    names = [
        *(store_name(source, t) for t in mine),
        *[t for t in SOURCES[source].side_tables if warehouse.has_table(t)],
        *mine,
        *(["observation_period"] if "observation_period" not in mine else []),
    ]
    with warehouse.replacing(names, schemas=store_schemas(source, mine)) as swap:
        assemble(warehouse, swap, [*mine, "observation_period"], after)
    return {t: n for t, n in removed.items() if n}


def adopt_unsourced_rows(warehouse: Warehouse) -> dict[str, int]:
    """Give the rows of a warehouse written before sources existed to their sources.

    A warehouse made by an earlier careloop has the CDM tables but no stores.
    Its rows are sorted once, so that the next refresh, import or load keeps
    them: rows named in the FHIR link table are the ``fhir`` source's; rows of
    persons the registry refresh wrote (``careloop_etl_state``) are the
    ``registry`` source's; every other person's rows are the loaded OMOP
    files'. Returns the rows given to each source (empty when there was
    nothing to do). Observation periods of registry patients are derived
    anew when the tables are next assembled.
    """
    present = set(warehouse.list_tables())
    if any(t.startswith(STORE_PREFIX) for t in present):
        return {}
    tables = [t for t in ASSEMBLED_TABLES if t in present and _count(warehouse.table(t))]
    if not tables:
        return {}
    registry_persons = _ids(warehouse, "careloop_etl_state", "person_id", present)
    link = SOURCES["fhir"].side_tables[0]
    fhir_persons = _ids(warehouse, link, "person_id", present)
    linked = warehouse.table(link) if link in present else None
    owned: dict[str, dict[str, ibis.Table]] = {name: {} for name in SOURCES}
    for table in tables:
        rows = warehouse.table(table)
        if not TABLES[table].has_person:
            owned["registry" if registry_persons else "omop"][table] = rows
            continue
        key = TABLES[table].primary_key
        fhir_rows: ibis.Table | None = None
        if table == "person":
            fhir_rows = rows.filter(rows.person_id.isin(sorted(fhir_persons - registry_persons)))
        elif linked is not None and key is not None:
            ids = linked.filter(linked.cdm_table == table).select(**{key: linked.cdm_id})
            fhir_rows = rows.semi_join(ids, key)
            rows = rows.anti_join(ids, key)
        if fhir_rows is not None:
            owned["fhir"][table] = fhir_rows
        known = sorted(registry_persons | fhir_persons)
        if table != "observation_period":
            owned["registry"][table] = rows.filter(rows.person_id.isin(sorted(registry_persons)))
        owned["omop"][table] = rows.filter(~rows.person_id.isin(known)) if known else rows
    schemas = {
        store_name(source, t): TABLES[t].schema() for source, parts in owned.items() for t in parts
    }
    given: dict[str, int] = {}
    with warehouse.replacing(list(schemas), schemas=schemas) as swap:
        for source, parts in owned.items():
            for table, rows in parts.items():
                given[source] = given.get(source, 0) + swap.insert(store_name(source, table), rows)
    return {k: v for k, v in given.items() if v}


def _ids(warehouse: Warehouse, table: str, column: str, present: set[str]) -> set[int]:
    if table not in present:
        return set()
    with quiet_engine_warnings():
        return {int(v) for v in warehouse.table(table)[column].execute()}
