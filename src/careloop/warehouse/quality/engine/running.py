"""Running the checks: one aggregate query per table, statuses against thresholds."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from careloop.core.errors import InputError
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings
from careloop.warehouse.quality.catalogue import (
    CHECKS,
    DEFAULT_MEASUREMENT_RANGES,
    CheckResult,
    Period,
    Status,
)
from careloop.warehouse.quality.engine.context import _Context, _Instance
from careloop.warehouse.quality.engine.instances import _instances
from careloop.warehouse.quality.report import QualityReport, store_quality_report


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

    Long because of its documented arguments; the body is one pass over the check
    instances.
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
