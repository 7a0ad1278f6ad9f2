"""Running the checks: every instance counted by the warehouse through Ibis.

Every instance counts failing rows against a denominator; it fails when
``percent`` exceeds its threshold (a threshold of ``None`` makes it
informational). The checks on one table are batched into a single aggregate
query (foreign keys and concept look-ups become ``IN (subquery)`` terms), so a
run costs a few dozen queries on any engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import partial
from types import MappingProxyType
from typing import Any, cast

import ibis
import ibis.expr.types as ir
import pandas as pd

from careloop.core.errors import InputError
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings
from careloop.warehouse.omop_schema import CLINICAL_EVENT_TABLES, TABLES, OmopColumn
from careloop.warehouse.quality.catalogue import (
    CHECKS,
    DEFAULT_MEASUREMENT_RANGES,
    FIELD_RANGES,
    CheckDefinition,
    CheckResult,
    Period,
    Status,
)
from careloop.warehouse.quality.report import QualityReport, store_quality_report

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


# -- instances ----------------------------------------------------------------------------

Reduction = Callable[[ibis.Table], ir.IntegerScalar]


@dataclass(frozen=True)
class _Instance:
    definition: CheckDefinition
    table: str | None
    column: str | None = None
    concept_id: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    # Either both reductions over ``table`` (batched), or ``custom``.
    failing: Reduction | None = None
    denominator: Reduction | None = None
    custom: Callable[[_Context], tuple[int, int]] | None = None

    @property
    def check_id(self) -> str:
        parts = [self.definition.name]
        parts += [p for p in (self.table, self.column) if p]
        if self.concept_id is not None:
            parts.append(str(self.concept_id))
        return ".".join(parts)

    @property
    def description(self) -> str:
        return self.definition.description.format(
            table=self.table, column=self.column, concept=self.concept_id, **self.params
        )


class _Context:
    def __init__(self, warehouse: Warehouse, today: date) -> None:
        self.warehouse = warehouse
        self.today = today
        self.present = set(warehouse.list_tables())
        self._tables: dict[str, ibis.Table] = {}
        self.counts: dict[str, int] = {}
        names = [n for n in TABLES if n in self.present]
        if names:
            # One query for all row counts rather than one per table.
            parts = [
                self.t(n)
                .aggregate(careloop_rows=ibis._.count())
                .mutate(careloop_table=ibis.literal(n))
                for n in names
            ]
            frame = ibis.union(*parts).execute() if len(parts) > 1 else parts[0].execute()
            self.counts = {str(r.careloop_table): int(r.careloop_rows) for r in frame.itertuples()}

    def t(self, name: str) -> ibis.Table:
        if name not in self._tables:
            self._tables[name] = self.warehouse.ibis.table(name)
        return self._tables[name]

    def has_rows(self, name: str) -> bool:
        return self.counts.get(name, 0) > 0

    def columns(self, name: str) -> set[str]:
        return set(self.t(name).columns) if name in self.present else set()


def _n(expr: ir.BooleanValue) -> ir.IntegerScalar:
    # CASE rather than a cast: PostgreSQL cannot cast boolean to bigint.
    return ibis.ifelse(expr, 1, 0).sum().coalesce(0)


def _rows(t: ibis.Table) -> ir.IntegerScalar:
    return t.count()


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


def _fixed(failing: int, denominator: int) -> Callable[[_Context], tuple[int, int]]:
    def count(_ctx: _Context) -> tuple[int, int]:
        return failing, denominator

    return count


def _yob_out_of_range(low: int, high: int) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n((t.year_of_birth < low) | (t.year_of_birth > high))

    return count


def _measurement_out_of_range(concept_id: int, low: float, high: float) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        value = t.value_as_number
        return _n(
            (t.measurement_concept_id == concept_id)
            & value.notnull()
            & ((value < low) | (value > high))
        )

    return count


def _measurement_with_value(concept_id: int) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n((t.measurement_concept_id == concept_id) & t.value_as_number.notnull())

    return count


def _not_in(column: str, keys: ir.Column) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n(t[column].notnull() & ~t[column].isin(keys))

    return count


def _nonzero_in(column: str, ids: ir.Column) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n(t[column].notnull() & (t[column] != 0) & t[column].isin(ids))

    return count


def _date_out_of_range(column: str, low: date, high: date) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n(t[column].notnull() & ((t[column] < low) | (t[column] > high)))

    return count


# -- custom counts ---------------------------------------------------------------------


def _scalar(expr: ir.Scalar) -> int:
    value = expr.execute()
    return 0 if value is None or pd.isna(value) else int(value)


def _person_gap(ctx: _Context, *, name: str) -> tuple[int, int]:
    person = ctx.t("person")
    other = ctx.t(name)
    missing = person.filter(~person.person_id.isin(other.person_id)).count()
    return _scalar(missing), ctx.counts["person"]


def _overlaps(ctx: _Context) -> tuple[int, int]:
    op = ctx.t("observation_period")
    a = op.select(
        pid=op.person_id,
        aid=op.observation_period_id,
        a_start=op.observation_period_start_date,
        a_end=op.observation_period_end_date,
    )
    b = op.select(
        bpid=op.person_id,
        bid=op.observation_period_id,
        b_start=op.observation_period_start_date,
        b_end=op.observation_period_end_date,
    )
    pairs = a.join(b, [a.pid == b.bpid, a.aid != b.bid, a.a_start <= b.b_end, b.b_start <= a.a_end])
    return _scalar(pairs.aid.nunique()), ctx.counts["observation_period"]


def _birth_join(ctx: _Context, name: str, column: str) -> ibis.Table:
    person = ctx.t("person").select(pid=ibis._.person_id, yob=ibis._.year_of_birth)
    events = ctx.t(name).select(pid=ibis._.person_id, day=ibis._[column])
    return events.join(person, "pid", how="inner")


def _before_birth(ctx: _Context, name: str, column: str) -> tuple[int, int]:
    joined = _birth_join(ctx, name, column)
    failing = _n(joined.day.year() < joined.yob)
    return _scalar(failing), _scalar(_n(joined.day.notnull()))


def _too_old(ctx: _Context, name: str, column: str, age: int) -> tuple[int, int]:
    joined = _birth_join(ctx, name, column)
    failing = _n((joined.day.year() - joined.yob) > age)
    return _scalar(failing), _scalar(_n(joined.day.notnull()))


def _after_death(ctx: _Context, name: str, column: str, days: int) -> tuple[int, int]:
    death = ctx.t("death")
    deaths = death.group_by(pid=death.person_id).agg(died=death.death_date.min())
    events = ctx.t(name).select(pid=ibis._.person_id, day=ibis._[column])
    joined = events.join(deaths, "pid", how="inner")
    failing = _n(joined.day > joined.died + ibis.interval(days=days))
    return _scalar(failing), ctx.counts[name]


def _outside_observation(ctx: _Context, name: str, column: str) -> tuple[int, int]:
    op = ctx.t("observation_period")
    events = ctx.t(name).select(pid=ibis._.person_id, day=ibis._[column])
    periods = op.select(
        opid=op.person_id,
        op_start=op.observation_period_start_date,
        op_end=op.observation_period_end_date,
    )
    outside = events.anti_join(
        periods,
        [events.pid == periods.opid, events.day >= periods.op_start, events.day <= periods.op_end],
    )
    return _scalar(outside.count()), ctx.counts[name]


def _unmapped_sources(ctx: _Context, *, name: str, source: str, concept: str) -> tuple[int, int]:
    t = ctx.t(name)
    values = t.filter(t[source].notnull())
    total = _scalar(values[source].nunique())
    unmapped = _scalar(values.filter(values[concept] == 0)[source].nunique())
    return unmapped, total


def completeness_by_site(
    warehouse: Warehouse, table: str, *, period: Period = "year"
) -> pd.DataFrame:
    """Completeness of every column of an event table per care site and period.

    The site of a row is its visit's ``care_site_id`` (for ``visit_occurrence``
    its own); rows without one fall under site ``<NA>``. The period is the
    month, quarter or year of the table's start date.

    Returns:
        A tidy frame with columns ``care_site_id, period_start, column, rows,
        non_null, percent_complete``, sorted by site, period and column.
    """
    if table not in CLINICAL_EVENT_TABLES:
        raise InputError(
            f"{table!r} is not an OMOP event table; choose one of "
            + ", ".join(CLINICAL_EVENT_TABLES)
            + "."
        )
    t = warehouse.table(table)
    start = CLINICAL_EVENT_TABLES[table][1]
    if table == "visit_occurrence":
        sited = t.mutate(careloop_site=t.care_site_id)
    else:
        visits = warehouse.table("visit_occurrence").select(
            careloop_vid=ibis._.visit_occurrence_id, careloop_site=ibis._.care_site_id
        )
        sited = t.left_join(visits, t.visit_occurrence_id == visits.careloop_vid).drop(
            "careloop_vid"
        )
    unit = {"month": "M", "quarter": "Q", "year": "Y"}[period]
    sited = sited.mutate(careloop_period=sited[start].truncate(unit))
    columns = [c for c in t.columns]
    metrics = {f"nn_{i}": sited[c].count() for i, c in enumerate(columns)}
    grouped = sited.group_by(["careloop_site", "careloop_period"]).aggregate(
        careloop_rows=sited.count(), **metrics
    )
    with quiet_engine_warnings():
        frame = grouped.execute()
    long = frame.melt(
        id_vars=["careloop_site", "careloop_period", "careloop_rows"],
        value_vars=list(metrics),
        var_name="metric",
        value_name="non_null",
    )
    long["column"] = [columns[int(m.split("_")[1])] for m in long["metric"]]
    long["percent_complete"] = 100.0 * long["non_null"] / long["careloop_rows"]
    out = long.rename(
        columns={
            "careloop_site": "care_site_id",
            "careloop_period": "period_start",
            "careloop_rows": "rows",
        }
    )
    out = out[["care_site_id", "period_start", "column", "rows", "non_null", "percent_complete"]]
    out["care_site_id"] = out["care_site_id"].astype("Int64")
    out["period_start"] = pd.to_datetime(out["period_start"]).dt.date
    return cast(
        pd.DataFrame,
        out.sort_values(["care_site_id", "period_start", "column"]).reset_index(drop=True),
    )


def _site_period_cells(
    ctx: _Context, name: str, start: str, period: Period, drop: float
) -> tuple[int, int]:
    frame = completeness_by_site(ctx.warehouse, name, period=period)
    if frame.empty:
        return 0, 0
    overall = frame.groupby("column")[["non_null", "rows"]].sum()
    overall_pct = 100.0 * overall["non_null"] / overall["rows"]
    expected = frame["column"].map(overall_pct)
    below = frame["percent_complete"] < (expected - drop)
    cells = frame.assign(below=below).groupby(["care_site_id", "period_start"], dropna=False)
    flagged = cells["below"].any()
    return int(flagged.sum()), len(flagged)


# -- running ------------------------------------------------------------------------------


def run_checks(
    warehouse: Warehouse,
    *,
    checks: Iterable[str] | None = None,
    thresholds: Mapping[str, float | None] | None = None,
    measurement_ranges: Mapping[int, tuple[float, float]] | None = None,
    period: Period = "year",
    today: date | None = None,
    store: bool = False,
) -> QualityReport:
    """Run the data-quality checks on the warehouse.

    Args:
        warehouse: The warehouse to check.
        checks: Only these check names (keys of :data:`CHECKS`); default all.
        thresholds: Override thresholds, keyed by check name or by check id
            (``is_required.person.year_of_birth``); ``None`` makes it informational.
        measurement_ranges: Plausible ``value_as_number`` range per measurement
            concept id (default :data:`DEFAULT_MEASUREMENT_RANGES`).
        period: Period of ``site_period_completeness`` (month, quarter, year).
        today: The run date for "not in the future" checks (default: today, UTC).
        store: Also append the results to :data:`RESULT_TABLE` in the warehouse.

    Returns:
        The :class:`QualityReport`; ``report.to_frame()`` gives it as a DataFrame.

    Raises:
        InputError: an unknown check name.
    """
    wanted = set(checks) if checks is not None else set(CHECKS)
    unknown = wanted - set(CHECKS)
    if unknown:
        raise InputError(
            f"Unknown data-quality checks: {', '.join(sorted(unknown))}. "
            f"Known: {', '.join(CHECKS)}."
        )
    overrides = dict(thresholds or {})
    run_at = datetime.now(UTC)
    with quiet_engine_warnings():
        ctx = _Context(warehouse, today or run_at.date())
        ranges = DEFAULT_MEASUREMENT_RANGES if measurement_ranges is None else measurement_ranges
        instances = [i for i in _instances(ctx, ranges, period) if i.definition.name in wanted]
        counted = _count(ctx, instances)
    results = []
    for inst, (failing, denominator, error) in zip(instances, counted, strict=True):
        threshold = inst.definition.threshold
        for key in (inst.definition.name, inst.check_id):
            if key in overrides:
                threshold = overrides[key]
        percent = 100.0 * failing / denominator if denominator else 0.0
        status: Status
        if error is not None:
            status = "error"
        elif threshold is None:
            status = "info"
        else:
            status = "fail" if percent > threshold else "pass"
        results.append(
            CheckResult(
                check_id=inst.check_id,
                check_name=inst.definition.name,
                category=inst.definition.category,
                level=inst.definition.level,
                table=inst.table,
                column=inst.column,
                concept_id=inst.concept_id,
                description=inst.description,
                threshold=threshold,
                failing_rows=failing,
                denominator=denominator,
                percent=round(percent, 6),
                status=status,
                error=error,
            )
        )
    report = QualityReport(
        run_id=uuid.uuid4().hex,
        run_at=run_at,
        warehouse_url=warehouse.url,
        results=tuple(results),
    )
    if store:
        store_quality_report(warehouse, report)
    return report


def _count(ctx: _Context, instances: list[_Instance]) -> list[tuple[int, int, str | None]]:
    out: list[tuple[int, int, str | None]] = [(0, 0, None)] * len(instances)
    batches: dict[str, list[int]] = {}
    for index, inst in enumerate(instances):
        if inst.custom is not None:
            try:
                failing, denominator = inst.custom(ctx)
                out[index] = (failing, denominator, None)
            except Exception as exc:  # one broken check must not stop the others
                out[index] = (0, 0, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        else:
            assert inst.table is not None
            batches.setdefault(inst.table, []).append(index)
    for table, indexes in batches.items():
        t = ctx.t(table)
        metrics: dict[str, ir.Scalar] = {}
        for k, index in enumerate(indexes):
            inst = instances[index]
            assert inst.failing is not None and inst.denominator is not None
            metrics[f"f{k}"] = inst.failing(t)
            metrics[f"d{k}"] = inst.denominator(t)
        try:
            row = t.aggregate(**metrics).execute().iloc[0]
        except Exception as exc:  # report the batch as errors, keep going
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            for index in indexes:
                out[index] = (0, 0, message)
            continue
        for k, index in enumerate(indexes):
            out[index] = (_int(row[f"f{k}"]), _int(row[f"d{k}"]), None)
    return out


def _int(value: Any) -> int:
    return 0 if value is None or pd.isna(value) else int(value)
