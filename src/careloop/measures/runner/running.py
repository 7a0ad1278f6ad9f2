"""Running a batch of measures and storing the run with its provenance."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd

import careloop
from careloop.core.errors import CareloopError, InputError
from careloop.measures.definition import STRATIFIERS, MeasureDefinition
from careloop.measures.runner.computing import _compute, _site_labels
from careloop.measures.runner.concepts import _Tables, resolve_concepts
from careloop.measures.runner.result_tables import (
    NETWORK,
    RESULT_COLUMNS,
    RESULT_SCHEMA,
    RESULT_TABLE,
    RUN_SCHEMA,
    RUN_TABLE,
    SMALL_DENOMINATOR,
)
from careloop.warehouse.connection import Warehouse


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

    Long because of its documented arguments; the body is one pass over the batch.
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
