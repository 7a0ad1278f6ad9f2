"""Run measures on the warehouse: result rows per measure × site × period × stratum.

:func:`run_measures` runs a batch; a measure that fails is reported in
:attr:`MeasureRun.failures` and the others still run. :func:`store_run`
appends the results to ``careloop_measure_result`` and the run's provenance
(inputs, definition hashes, warehouse row counts, code version) to
``careloop_measure_run``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import ibis
import numpy as np
import pandas as pd

import careloop
from careloop.core.content import LOCAL_CONCEPT_BASE, active_content
from careloop.core.errors import CareloopError, InputError, NotFound
from careloop.measures.compiler import (
    _TABLES,
    PERIOD,
    STRATUM_COLUMNS,
    CompiledMeasure,
    Period,
    periods_between,
)
from careloop.measures.definition import STRATIFIERS, Criterion, MeasureDefinition
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings

RESULT_TABLE = "careloop_measure_result"
"""Warehouse table that :func:`store_run` appends result rows to."""
RUN_TABLE = "careloop_measure_run"
"""Warehouse table that :func:`store_run` appends one provenance row per run to."""

RESULT_COLUMNS = (
    "measure_id",
    "definition_hash",
    "site",
    "period_start",
    "period_end",
    "stratum",
    "numerator",
    "denominator",
    "value",
    "excluded",
    "small_denominator",
)
"""Columns of a result frame, in order."""

NETWORK = ""
"""``site`` of the whole-network rows (and ``stratum`` of unstratified rows)."""
NO_SITE = "(none)"
"""``site`` of subjects without a care site."""
SMALL_DENOMINATOR = 10
"""Default: rows whose denominator is at most this are flagged ``small_denominator``."""

RESULT_SCHEMA = ibis.schema(
    {
        "run_id": "!string",
        "measure_id": "!string",
        "definition_hash": "!string",
        "site": "!string",
        "period_start": "!date",
        "period_end": "!date",
        "stratum": "!string",
        "numerator": "!int64",
        "denominator": "!int64",
        "value": "float64",
        "excluded": "!int64",
        "small_denominator": "!boolean",
    }
)
RUN_SCHEMA = ibis.schema(
    {
        "run_id": "!string",
        "run_at": "!timestamp",
        "period_from": "!date",
        "period_to": "!date",
        "by_strata": "string",
        "measures": "!string",
        "failures": "!string",
        "warehouse_url": "!string",
        "warehouse_state": "!string",
        "code_version": "!string",
    }
)

_SEX = {8507: "male", 8532: "female"}
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class MeasureFailure:
    """A measure of a batch that could not be computed."""

    measure_id: str
    """The measure's id."""
    source: str
    """Where its definition came from."""
    message: str
    """What went wrong and how to fix it."""


@dataclass(frozen=True)
class MeasureRun:
    """The outcome of :func:`run_measures`."""

    run_id: str
    """Identifier of the run (stored with every result row)."""
    run_at: datetime
    """When the run started (UTC)."""
    start: date
    """First day asked for (periods start at the one containing it)."""
    end: date
    """Last day asked for."""
    by: tuple[str, ...]
    """Extra stratifiers asked for on top of each measure's own."""
    results: pd.DataFrame
    """One row per measure × site × period × stratum, columns :data:`RESULT_COLUMNS`."""
    failures: tuple[MeasureFailure, ...] = ()
    """Measures that failed (the others ran)."""
    warnings: tuple[str, ...] = ()
    """Caveats: unknown concept ids, periods without data."""
    hashes: Mapping[str, str] = field(default_factory=dict)
    """Definition hash of each measure run."""

    @property
    def ok(self) -> bool:
        """True when no measure failed."""
        return not self.failures


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


def _label(stratifier: str, value: Any, sites: Mapping[int, str]) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value)) or (value is pd.NA)
    if stratifier == "site":
        return NO_SITE if missing else sites.get(int(value), str(int(value)))
    if missing:
        return _UNKNOWN
    if stratifier == "sex":
        return _SEX.get(int(value), _UNKNOWN)
    if stratifier == "age_band":
        return str(value)
    return str(int(value))


def _site_labels(tables: _Tables) -> dict[int, str]:
    if "care_site" not in tables.names:
        return {}
    cs = tables("care_site").select("care_site_id", "care_site_source_value", "care_site_name")
    with quiet_engine_warnings():
        frame = cs.execute()
    out: dict[int, str] = {}
    for row in frame.itertuples(index=False):
        label = row.care_site_source_value
        if not isinstance(label, str) or not label:
            label = row.care_site_name if isinstance(row.care_site_name, str) else ""
        out[int(row.care_site_id)] = label or str(int(row.care_site_id))
    return out


def _levels(strata: Sequence[str]) -> list[tuple[str, ...]]:
    """Grouping levels: network, each site; each crossed with none or one other stratifier."""
    others = [s for s in strata if s != "site"]
    sites: list[tuple[str, ...]] = [()] + ([("site",)] if "site" in strata else [])
    return [(*s, *o) for s in sites for o in [(), *((x,) for x in others)]]


def compute_measure(
    warehouse: Warehouse,
    definition: MeasureDefinition,
    *,
    start: date,
    end: date,
    by: Sequence[str] = (),
    concept_sets: Mapping[Criterion, tuple[int, ...]] | None = None,
    small_denominator: int = SMALL_DENOMINATOR,
) -> pd.DataFrame:
    """Compute one measure; the result frame has the columns :data:`RESULT_COLUMNS`.

    Args:
        warehouse: The OMOP warehouse.
        definition: The measure.
        start: First day; periods start at the one containing it.
        end: Last day.
        by: Stratifiers on top of the measure's own ``stratify``.
        concept_sets: Resolved concept ids per criterion (default: resolved here).
        small_denominator: Flag rows whose denominator is at most this.

    Raises:
        NotFound: the warehouse lacks a table the measure reads.
        InputError: the dates or stratifiers are not usable.
    """
    return _compute(
        warehouse,
        definition,
        start=start,
        end=end,
        by=by,
        concept_sets=concept_sets,
        small_denominator=small_denominator,
        tables=None,
        sites=None,
    )


def _compute(
    warehouse: Warehouse,
    definition: MeasureDefinition,
    *,
    start: date,
    end: date,
    by: Sequence[str],
    concept_sets: Mapping[Criterion, tuple[int, ...]] | None,
    small_denominator: int,
    tables: _Tables | None,
    sites: Mapping[int, str] | None,
) -> pd.DataFrame:
    """:func:`compute_measure` with the per-run look-ups shared by a batch."""
    if end < start:
        raise InputError(f"The period ends ({end}) before it starts ({start}).")
    strata = list(dict.fromkeys([*definition.stratify, *by]))
    for s in strata:
        if s not in STRATIFIERS:
            raise InputError(f"Cannot stratify by {s!r}; use one of {', '.join(STRATIFIERS)}.")
        if s == "visit_type" and definition.subject != "visit":
            raise InputError(f"{definition.id}: visit_type strata need a visit measure.")
    tables = tables or _Tables(warehouse)
    for name in tables_needed(definition, strata):
        if name not in tables.names:
            raise NotFound(
                f"{definition.source}: measure {definition.id} reads the warehouse table "
                f"{name!r}, which {warehouse.url} lacks. Load the OMOP data first."
            )
    if concept_sets is None:
        concept_sets, _ = resolve_concepts(warehouse, [definition])
    sites = sites if sites is not None else _site_labels(tables)
    periods = periods_between(start, end, definition.period)
    compiled = CompiledMeasure(definition, tables, periods, concept_sets, strata)
    with quiet_engine_warnings():
        counts = compiled.counts().execute()
        values = (
            compiled.values(_levels(strata)).execute() if definition.type == "continuous" else None
        )
    return _assemble(definition, periods, strata, counts, values, sites, small_denominator)


def _assemble(
    definition: MeasureDefinition,
    periods: Sequence[Period],
    strata: Sequence[str],
    counts: pd.DataFrame,
    values: pd.DataFrame | None,
    sites: Mapping[int, str],
    small_denominator: int,
) -> pd.DataFrame:
    label_cols = {s: f"label_{s}" for s in strata}
    definition_hash = definition.definition_hash
    counts = counts.copy()
    counts[PERIOD] = pd.to_datetime(counts[PERIOD]).dt.date
    for s in strata:
        counts[label_cols[s]] = [_label(s, v, sites) for v in counts[STRATUM_COLUMNS[s]]]
    ends = {p.start: p.end for p in periods}
    parts: list[pd.DataFrame] = []
    value_map: dict[tuple[Any, ...], tuple[int, float]] = {}
    levels = _levels(strata)
    if values is not None:
        values = values.copy()
        values[PERIOD] = pd.to_datetime(values[PERIOD]).dt.date
        for rec in values.to_dict("records"):
            level = levels[int(rec["careloop_level"])]
            key = (
                int(rec["careloop_level"]),
                rec[PERIOD],
                *(_label(s, rec[STRATUM_COLUMNS[s]], sites) for s in level),
            )
            v = rec["careloop_value"]
            value_map[key] = (int(rec["careloop_n"]), float(v) if v is not None else math.nan)
    for index, level in enumerate(levels):
        group = [PERIOD, *(label_cols[s] for s in level)]
        if counts.empty:
            cells = pd.DataFrame(columns=[*group, "denominator", "numerator", "excluded"])
        else:
            cells = (
                counts.rename(
                    columns={
                        "careloop_denominator": "denominator",
                        "careloop_numerator": "numerator",
                        "careloop_excluded": "excluded",
                    }
                )
                .groupby(group, dropna=False)[["denominator", "numerator", "excluded"]]
                .sum()
                .reset_index()
            )
            cells = cells[(cells.denominator > 0) | (cells.numerator > 0) | (cells.excluded > 0)]
        if not level:
            have = set(cells[PERIOD]) if len(cells) else set()
            missing = [p.start for p in periods if p.start not in have]
            if missing:
                cells = pd.concat(
                    [
                        cells,
                        pd.DataFrame(
                            {PERIOD: missing, "denominator": 0, "numerator": 0, "excluded": 0}
                        ),
                    ],
                    ignore_index=True,
                )
        # Column-wise: one frame per level of strata rather than a dict per cell.
        den = cells["denominator"].astype("int64").to_numpy()
        num = cells["numerator"].astype("int64").to_numpy()
        period = list(cells[PERIOD])
        labels = [list(cells[label_cols[s]]) for s in level]
        site: Any = labels[0] if level and level[0] == "site" else NETWORK
        other = [(s, lab) for s, lab in zip(level, labels, strict=True) if s != "site"]
        names = [s for s, _lab in other]
        stratum: Any = (
            [
                ";".join(f"{s}={lab}" for s, lab in zip(names, row, strict=True))
                for row in zip(*(lab for _s, lab in other), strict=True)
            ]
            if other
            else ""
        )
        if definition.type == "continuous":
            keys = zip(*labels, strict=True) if labels else ((),) * len(period)
            found = [
                value_map.get((index, p, *labs), (0, math.nan))
                for p, labs in zip(period, keys, strict=True)
            ]
            num = np.array([n for n, _v in found], dtype="int64")
            value = np.array([v for _n, v in found], dtype="float64")
        elif definition.type == "count":
            value = num.astype("float64")
        else:
            value = np.full(len(den), math.nan)
            np.divide(num, den, out=value, where=den > 0)
        parts.append(
            pd.DataFrame(
                {
                    "measure_id": definition.id,
                    "definition_hash": definition_hash,
                    "site": site,
                    "period_start": period,
                    "period_end": [ends[p] for p in period],
                    "stratum": stratum,
                    "numerator": num,
                    "denominator": den,
                    "value": value,
                    "excluded": cells["excluded"].astype("int64").to_numpy(),
                    "small_denominator": den <= small_denominator,
                },
                columns=list(RESULT_COLUMNS),
            )
        )
    frame = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(RESULT_COLUMNS))
    )
    frame = frame.astype(
        {
            "numerator": "int64",
            "denominator": "int64",
            "excluded": "int64",
            "value": "float64",
            "small_denominator": "bool",
        }
    )
    return frame.sort_values(
        ["measure_id", "site", "stratum", "period_start"], kind="stable"
    ).reset_index(drop=True)


def run_measures(
    warehouse: Warehouse,
    measures: Sequence[MeasureDefinition],
    *,
    start: date,
    end: date,
    by: Sequence[str] = (),
    small_denominator: int = SMALL_DENOMINATOR,
    on_measure: Callable[[MeasureDefinition], None] | None = None,
) -> MeasureRun:
    """Run a batch of measures for the periods from ``start`` to ``end``.

    Args:
        warehouse: The OMOP warehouse.
        measures: The definitions to compute.
        start: First day; periods start at the one containing it.
        end: Last day; periods end at the one containing it.
        by: Extra stratifiers (``site``, ``sex``, ``age_band``…) for every measure.
        small_denominator: Flag rows whose denominator is at most this.
        on_measure: Called after each measure (progress bars).

    A measure that fails (missing table, engine error) is reported in
    ``failures``; the rest still run.
    """
    if end < start:
        raise InputError(f"The period ends ({end}) before it starts ({start}).")
    for s in by:
        if s not in STRATIFIERS:
            raise InputError(f"Cannot stratify by {s!r}; use one of {', '.join(STRATIFIERS)}.")
    run_at = datetime.now(UTC)
    tables = _Tables(warehouse)
    concept_sets, warnings = resolve_concepts(warehouse, measures)
    sites = _site_labels(tables)
    frames: list[pd.DataFrame] = []
    failures: list[MeasureFailure] = []
    for definition in measures:
        try:
            extra = [s for s in by if not (s == "visit_type" and definition.subject != "visit")]
            frame = _compute(
                warehouse,
                definition,
                start=start,
                end=end,
                by=extra,
                concept_sets=concept_sets,
                small_denominator=small_denominator,
                tables=tables,
                sites=sites,
            )
        except CareloopError as exc:
            failures.append(MeasureFailure(definition.id, definition.source, str(exc)))
        except Exception as exc:
            failures.append(
                MeasureFailure(
                    definition.id,
                    definition.source,
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:500]}",
                )
            )
        else:
            network = frame[(frame.site == NETWORK) & (frame.stratum == "")]
            if len(network) and int(network.denominator.sum()) == 0:
                warnings.append(
                    f"{definition.id}: no subjects in any period from {start} to {end}."
                )
            frames.append(frame)
        if on_measure is not None:
            on_measure(definition)
    results = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(RESULT_COLUMNS))
    )
    return MeasureRun(
        run_id=uuid.uuid4().hex,
        run_at=run_at,
        start=start,
        end=end,
        by=tuple(by),
        results=results,
        failures=tuple(failures),
        warnings=tuple(warnings),
        hashes={m.id: m.definition_hash for m in measures},
    )


def store_run(warehouse: Warehouse, run: MeasureRun) -> int:
    """Append the run's results and its provenance row to the warehouse.

    Returns the number of result rows written.
    """
    warehouse.ensure_table(RESULT_TABLE, RESULT_SCHEMA)
    warehouse.ensure_table(RUN_TABLE, RUN_SCHEMA)
    tables = [t for t in warehouse.list_tables() if t in set(_OMOP_READ)]
    state = warehouse.row_counts(tables)
    provenance = pd.DataFrame(
        [
            {
                "run_id": run.run_id,
                "run_at": run.run_at.replace(tzinfo=None),
                "period_from": run.start,
                "period_to": run.end,
                "by_strata": ",".join(run.by),
                "measures": json.dumps(dict(run.hashes), sort_keys=True),
                "failures": json.dumps([f.__dict__ for f in run.failures]),
                "warehouse_url": warehouse.url,
                "warehouse_state": json.dumps(state, sort_keys=True),
                "code_version": careloop.__version__,
            }
        ]
    )
    warehouse.insert(RUN_TABLE, provenance)
    if run.results.empty:
        return 0
    rows = run.results.assign(run_id=run.run_id)
    return warehouse.insert(RESULT_TABLE, rows[list(RESULT_SCHEMA.names)])


_OMOP_READ = (
    "person",
    "care_site",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "death",
    "concept",
    "concept_ancestor",
)


_EXTENT_COLUMNS = (
    ("visit_occurrence", "visit_start_date"),
    ("observation_period", "observation_period_start_date"),
    ("measurement", "measurement_date"),
    ("observation", "observation_date"),
)


def data_extent(warehouse: Warehouse) -> tuple[date, date] | None:
    """The first and last day of the warehouse's events (visits, else observation periods,
    measurements or observations); ``None`` when it holds none.

    What ``careloop measures run`` computes when no period is given.
    """
    present = set(warehouse.list_tables())
    for table, column in _EXTENT_COLUMNS:
        if table not in present:
            continue
        t = warehouse.table(table)
        with quiet_engine_warnings():
            bounds = t.aggregate(first=t[column].min(), last=t[column].max()).execute()
        first, last = bounds["first"].iloc[0], bounds["last"].iloc[0]
        if pd.notna(first) and pd.notna(last):
            return pd.Timestamp(first).date(), pd.Timestamp(last).date()
    return None


@dataclass(frozen=True)
class LatestRuns:
    """Which stored run each measure's shown results come from."""

    runs: Mapping[str, str]
    """Measure id → the run its results come from."""
    run_at: datetime | None
    """When the newest of those runs ran (UTC, naive)."""

    @property
    def key(self) -> str:
        """One text naming every run used (changes whenever any of them does)."""
        return "+".join(sorted(set(self.runs.values())))


def latest_runs(warehouse: Warehouse) -> LatestRuns:
    """For each stored measure, the run to show: its latest run computed by site, else its
    latest run of any kind.

    A narrow run (``careloop measures run --measure X``, or one without ``--by site``)
    then adds to what the pages show instead of replacing it.

    Raises:
        NotFound: no measure run is stored.
    """
    if not warehouse.has_table(RUN_TABLE) or not warehouse.has_table(RESULT_TABLE):
        raise NotFound("No measure results are stored yet: run `careloop measures run --by site`.")
    with quiet_engine_warnings():
        runs = (
            warehouse.table(RUN_TABLE)
            .select("run_id", "run_at", "by_strata", "measures")
            .order_by(ibis.desc("run_at"))
            .execute()
        )
    if runs.empty:
        raise NotFound("No measure results are stored yet: run `careloop measures run --by site`.")
    chosen: dict[str, tuple[bool, str]] = {}
    for run in runs.itertuples(index=False):
        by_site = "site" in str(run.by_strata or "").split(",")
        for measure_id in json.loads(str(run.measures)):
            held = chosen.get(measure_id)
            if held is None or (by_site and not held[0]):
                chosen[measure_id] = (by_site, str(run.run_id))
    used = {r for _s, r in chosen.values()}
    times = runs[runs.run_id.isin(used)].run_at
    return LatestRuns(
        runs={m: r for m, (_s, r) in chosen.items()},
        run_at=pd.Timestamp(times.max()).to_pydatetime() if len(times) else None,
    )


def load_results(
    warehouse: Warehouse, *, run_id: str | None = None, latest: LatestRuns | None = None
) -> pd.DataFrame:
    """Stored results, columns :data:`RESULT_COLUMNS`.

    Args:
        warehouse: The warehouse.
        run_id: One run's results. Default: each measure's latest results
            (:func:`latest_runs`).
        latest: The runs to read, when the caller has already looked them up.
    """
    if not warehouse.has_table(RESULT_TABLE):
        raise NotFound("No measure results are stored yet: run `careloop measures run`.")
    with quiet_engine_warnings():
        t = warehouse.table(RESULT_TABLE)
        if run_id is not None:
            frame: pd.DataFrame = t.filter(t.run_id == run_id).execute()
        else:
            pairs = (latest or latest_runs(warehouse)).runs
            wanted = ibis.literal(False)
            for measure_id, run in sorted(pairs.items()):
                wanted |= (t.measure_id == measure_id) & (t.run_id == run)
            frame = t.filter(wanted).execute()
    if frame.empty:
        raise NotFound(
            f"There is no stored measure run {run_id!r}."
            if run_id
            else "No measure results are stored yet."
        )
    frame["period_start"] = pd.to_datetime(frame.period_start).dt.date
    frame["period_end"] = pd.to_datetime(frame.period_end).dt.date
    return (
        frame[list(RESULT_COLUMNS)]
        .sort_values(["measure_id", "site", "stratum", "period_start"], kind="stable")
        .reset_index(drop=True)
    )
