"""The checks written out as instances over the warehouse's tables, columns and concepts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date
from functools import partial
from types import MappingProxyType

import ibis
import ibis.expr.types as ir

from careloop.warehouse.omop_schema import CLINICAL_EVENT_TABLES, TABLES, OmopColumn
from careloop.warehouse.quality.catalogue import (
    CHECKS,
    FIELD_RANGES,
    Period,
)
from careloop.warehouse.quality.engine.completeness import _site_period_cells
from careloop.warehouse.quality.engine.conditions import (
    _date_out_of_range,
    _fixed,
    _measurement_out_of_range,
    _measurement_with_value,
    _nonzero_in,
    _not_in,
    _yob_out_of_range,
)
from careloop.warehouse.quality.engine.context import _Context, _Instance, _n, _rows
from careloop.warehouse.quality.engine.custom_counts import (
    _after_death,
    _before_birth,
    _outside_observation,
    _overlaps,
    _person_gap,
    _too_old,
    _unmapped_sources,
)

_START_END: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "observation_period": ("observation_period_start_date", "observation_period_end_date"),
        "visit_occurrence": ("visit_start_date", "visit_end_date"),
        "visit_detail": ("visit_detail_start_date", "visit_detail_end_date"),
        "condition_occurrence": ("condition_start_date", "condition_end_date"),
        "drug_exposure": ("drug_exposure_start_date", "drug_exposure_end_date"),
        "procedure_occurrence": ("procedure_date", "procedure_end_date"),
        "device_exposure": ("device_exposure_start_date", "device_exposure_end_date"),
        "condition_era": ("condition_era_start_date", "condition_era_end_date"),
        "drug_era": ("drug_era_start_date", "drug_era_end_date"),
        "dose_era": ("dose_era_start_date", "dose_era_end_date"),
        "payer_plan_period": ("payer_plan_period_start_date", "payer_plan_period_end_date"),
        "episode": ("episode_start_date", "episode_end_date"),
    }
)
_SOURCE_PAIRS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "condition_occurrence": ("condition_source_value", "condition_concept_id"),
        "drug_exposure": ("drug_source_value", "drug_concept_id"),
        "procedure_occurrence": ("procedure_source_value", "procedure_concept_id"),
        "measurement": ("measurement_source_value", "measurement_concept_id"),
        "observation": ("observation_source_value", "observation_concept_id"),
        "device_exposure": ("device_source_value", "device_concept_id"),
        "visit_occurrence": ("visit_source_value", "visit_concept_id"),
    }
)
_PERSON_COMPLETENESS: Mapping[str, float] = MappingProxyType(
    {
        # table: threshold (% of persons without a row); DQD's defaults.
        "observation_period": 0.0,
        "visit_occurrence": 95.0,
        "condition_occurrence": 95.0,
        "drug_exposure": 95.0,
        "procedure_occurrence": 95.0,
        "measurement": 95.0,
        "observation": 95.0,
    }
)
_FK_TABLES = frozenset(
    {"person", "visit_occurrence", "visit_detail", "care_site", "provider", "location"}
)


def _instances(
    ctx: _Context, measurement_ranges: Mapping[int, tuple[float, float]], period: Period
) -> Iterator[_Instance]:
    C = CHECKS
    yield from _table_level(ctx)
    concept = ctx.t("concept") if "concept" in ctx.present else None
    for name, spec in TABLES.items():
        if not ctx.has_rows(name):
            continue
        cols = ctx.columns(name)
        for col in spec.columns:
            if col.name not in cols:
                continue
            yield from _field_level(ctx, name, col, concept)
        yield from _table_plausibility(ctx, name, cols, period)
    if ctx.has_rows("person") and "year_of_birth" in ctx.columns("person"):
        low = 1850
        yield _Instance(
            C["plausible_year_of_birth"],
            "person",
            "year_of_birth",
            params={"low": low},
            failing=_yob_out_of_range(low, ctx.today.year),
            denominator=lambda t: _n(t.year_of_birth.notnull()),
        )
    if ctx.has_rows("measurement"):
        m_cols = ctx.columns("measurement")
        if {"value_as_number", "unit_concept_id"} <= m_cols:
            yield _Instance(
                C["measurement_unit_completeness"],
                "measurement",
                "unit_concept_id",
                failing=lambda t: _n(
                    t.value_as_number.notnull()
                    & (t.unit_concept_id.isnull() | (t.unit_concept_id == 0))
                ),
                denominator=lambda t: _n(t.value_as_number.notnull()),
            )
        if {"value_as_number", "value_as_concept_id"} <= m_cols:
            yield _Instance(
                C["measurement_value_completeness"],
                "measurement",
                "value_as_number",
                failing=lambda t: _n(
                    t.value_as_number.isnull()
                    & (t.value_as_concept_id.isnull() | (t.value_as_concept_id == 0))
                ),
                denominator=_rows,
            )
        for concept_id, (v_low, v_high) in sorted(measurement_ranges.items()):
            yield _Instance(
                C["plausible_measurement_range"],
                "measurement",
                "value_as_number",
                concept_id=concept_id,
                params={"low": v_low, "high": v_high},
                failing=_measurement_out_of_range(concept_id, v_low, v_high),
                denominator=_measurement_with_value(concept_id),
            )


def _table_level(ctx: _Context) -> Iterator[_Instance]:
    C = CHECKS
    for name, spec in TABLES.items():
        present = name in ctx.present
        yield _Instance(C["cdm_table"], name, custom=_fixed(0 if present else 1, 1))
        if present:
            have = ctx.columns(name)
            lacking = sum(1 for c in spec.column_names if c not in have)
            yield _Instance(C["cdm_field"], name, custom=_fixed(lacking, len(spec.columns)))
    if "cdm_source" in ctx.present:
        rows = ctx.counts.get("cdm_source", 0)
        yield _Instance(
            C["cdm_source_present"], "cdm_source", custom=_fixed(0 if rows == 1 else 1, 1)
        )
    if ctx.has_rows("person"):
        for name, threshold in _PERSON_COMPLETENESS.items():
            if name in ctx.present and "person_id" in ctx.columns(name):
                definition = replace(C["measure_person_completeness"], threshold=threshold)
                yield _Instance(definition, name, custom=partial(_person_gap, name=name))
    if ctx.has_rows("observation_period"):
        yield _Instance(C["observation_period_overlap"], "observation_period", custom=_overlaps)


def _field_level(
    ctx: _Context, name: str, col: OmopColumn, concept: ibis.Table | None
) -> Iterator[_Instance]:
    """Every field-level check that applies to one column.

    Long because it is the table of field-level check kinds (primary key, required,
    type, range, concept, domain, standard), one short yield each, in the order the
    OHDSI Data Quality Dashboard lists them.
    """
    C = CHECKS
    c = col.name
    if col.primary_key:
        yield _Instance(
            C["is_primary_key"],
            name,
            c,
            failing=lambda t: t.count() - t[c].nunique(),
            denominator=_rows,
        )
    if col.required:
        yield _Instance(
            C["is_required"], name, c, failing=lambda t: _n(t[c].isnull()), denominator=_rows
        )
    else:
        yield _Instance(
            C["measure_value_completeness"],
            name,
            c,
            failing=lambda t: _n(t[c].isnull()),
            denominator=_rows,
        )
    if col.fk_table in _FK_TABLES and col.fk_table in ctx.present and col.fk_table != name:
        target = ctx.t(col.fk_table)
        key = TABLES[col.fk_table].primary_key
        if key and key in target.columns:
            yield _Instance(
                C["is_foreign_key"],
                name,
                c,
                params={"fk_table": col.fk_table},
                failing=_not_in(c, target[key]),
                denominator=lambda t: _n(t[c].notnull()),
            )
    if col.is_concept and concept is not None:
        known = concept.concept_id
        yield _Instance(
            C["concept_known"],
            name,
            c,
            failing=lambda t: _n(t[c].notnull() & (t[c] != 0) & ~t[c].isin(known)),
            denominator=lambda t: _n(t[c].notnull() & (t[c] != 0)),
        )
        if col.fk_domain is not None:
            wrong = concept.filter(concept.domain_id != col.fk_domain).concept_id
            yield _Instance(
                C["fk_domain"],
                name,
                c,
                params={"domain": col.fk_domain},
                failing=_nonzero_in(c, wrong),
                denominator=lambda t: _n(t[c].notnull() & (t[c] != 0)),
            )
            nonstandard = concept.filter(
                (concept.standard_concept.isnull() | (concept.standard_concept != "S"))
                | concept.invalid_reason.notnull()
            ).concept_id
            yield _Instance(
                C["standard_valid_concept"],
                name,
                c,
                failing=_nonzero_in(c, nonstandard),
                denominator=lambda t: _n(t[c].notnull() & (t[c] != 0)),
            )
            if col.required and not c.endswith("type_concept_id"):
                yield _Instance(
                    C["standard_concept_record_completeness"],
                    name,
                    c,
                    failing=lambda t: _n(t[c] == 0),
                    denominator=_rows,
                )
    if col.max_length is not None:
        length = col.max_length
        yield _Instance(
            C["value_length"],
            name,
            c,
            params={"length": length},
            failing=lambda t: _n(t[c].length() > length),
            denominator=lambda t: _n(t[c].notnull()),
        )
    if (name, c) in FIELD_RANGES:
        low, high = FIELD_RANGES[(name, c)]

        def out_of_range(
            t: ibis.Table, lo: float | None = low, hi: float | None = high
        ) -> ir.IntegerScalar:
            cond = ibis.literal(False)
            if lo is not None:
                cond = cond | (t[c] < lo)
            if hi is not None:
                cond = cond | (t[c] > hi)
            return _n(t[c].notnull() & cond)

        yield _Instance(
            C["plausible_value_range"],
            name,
            c,
            params={"low": "−∞" if low is None else low, "high": "∞" if high is None else high},
            failing=out_of_range,
            denominator=lambda t: _n(t[c].notnull()),
        )
    if col.cdm_type == "date" and (
        name in CLINICAL_EVENT_TABLES or name in _START_END or name == "death"
    ):
        low_date = date(1850, 1, 1)
        yield _Instance(
            C["plausible_date_range"],
            name,
            c,
            params={"low": low_date.isoformat()},
            failing=_date_out_of_range(c, low_date, ctx.today),
            denominator=lambda t: _n(t[c].notnull()),
        )
    if (source := _SOURCE_PAIRS.get(name)) and source[0] == c and source[1] in ctx.columns(name):
        yield _Instance(
            C["source_value_completeness"],
            name,
            c,
            custom=partial(_unmapped_sources, name=name, source=source[0], concept=source[1]),
        )


def _table_plausibility(
    ctx: _Context, name: str, cols: set[str], period: Period
) -> Iterator[_Instance]:
    C = CHECKS
    if name in _START_END:
        start, end = _START_END[name]
        if {start, end} <= cols:
            yield _Instance(
                C["plausible_start_before_end"],
                name,
                end,
                params={"start": start},
                failing=lambda t: _n(t[end].notnull() & t[start].notnull() & (t[end] < t[start])),
                denominator=lambda t: _n(t[end].notnull() & t[start].notnull()),
            )
    event = CLINICAL_EVENT_TABLES.get(name)
    person_ok = ctx.has_rows("person") and "person_id" in cols
    if event is not None and person_ok and event[1] in cols:
        start = event[1]
        yield _Instance(
            C["plausible_after_birth"],
            name,
            start,
            custom=lambda c_: _before_birth(c_, name, start),
        )
        yield _Instance(
            C["plausible_age"],
            name,
            start,
            params={"age": 125},
            custom=lambda c_: _too_old(c_, name, start, 125),
        )
        if ctx.has_rows("death"):
            yield _Instance(
                C["plausible_during_life"],
                name,
                start,
                params={"days": 60},
                custom=lambda c_: _after_death(c_, name, start, 60),
            )
        if ctx.has_rows("observation_period"):
            yield _Instance(
                C["within_observation_period"],
                name,
                start,
                custom=lambda c_: _outside_observation(c_, name, start),
            )
        sited = (name == "visit_occurrence" and "care_site_id" in cols) or (
            "visit_occurrence_id" in cols and ctx.has_rows("visit_occurrence")
        )
        if sited:
            yield _Instance(
                C["site_period_completeness"],
                name,
                None,
                params={"period": period, "drop": 20},
                custom=lambda c_: _site_period_cells(c_, name, start, period, 20.0),
            )
    if name == "death" and ctx.has_rows("person") and "death_date" in cols:
        yield _Instance(
            C["death_after_birth"],
            "death",
            "death_date",
            custom=lambda c_: _before_birth(c_, "death", "death_date"),
        )
