"""One run's results: the report, its HTML page, and the results kept in the warehouse over time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, cast

import ibis
import pandas as pd

from careloop.core.html import render
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings
from careloop.warehouse.quality.catalogue import CheckResult

RESULT_TABLE = "careloop_dq_result"
"""Warehouse table where :func:`store_quality_report` appends results."""

RESULT_SCHEMA = ibis.schema(
    {
        "run_id": "!string",
        "run_at": "!timestamp",
        "check_id": "!string",
        "check_name": "!string",
        "category": "!string",
        "level": "!string",
        "table_name": "string",
        "column_name": "string",
        "concept_id": "int64",
        "description": "!string",
        "threshold": "float64",
        "failing_rows": "!int64",
        "denominator": "!int64",
        "percent": "!float64",
        "status": "!string",
        "error": "string",
    }
)


@dataclass(frozen=True)
class QualityReport:
    """All check results of one run."""

    run_id: str
    """Unique id of the run."""
    run_at: datetime
    """When the run started (UTC)."""
    warehouse_url: str
    """The warehouse checked (password hidden)."""
    results: tuple[CheckResult, ...]
    """One result per check instance."""

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """Results that failed or could not run."""
        return tuple(r for r in self.results if not r.passed)

    @property
    def counts(self) -> Mapping[str, int]:
        """Number of results per status."""
        out = {"pass": 0, "fail": 0, "info": 0, "error": 0}
        for r in self.results:
            out[r.status] += 1
        return MappingProxyType(out)

    def result(self, check_id: str) -> CheckResult:
        """The result with this ``check_id``; KeyError if there is none."""
        for r in self.results:
            if r.check_id == check_id:
                return r
        raise KeyError(check_id)

    def to_frame(self) -> pd.DataFrame:
        """One row per result, with the columns of :data:`RESULT_SCHEMA`."""
        run = {"run_id": self.run_id, "run_at": self.run_at.replace(tzinfo=None)}
        # "table" and "column" are SQL keywords: the stored columns are table_name, column_name.
        stored_names = {"table": "table_name", "column": "column_name"}
        rows = [
            run | {stored_names.get(k, k): v for k, v in asdict(r).items()} for r in self.results
        ]
        frame = pd.DataFrame(rows, columns=list(RESULT_SCHEMA.names))
        return frame.astype(
            {"concept_id": "Int64", "threshold": "float64", "failing_rows": "int64"}
        )

    def to_html(self) -> str:
        """A self-contained HTML page: a summary and a table of every result, failures first."""
        order = {"fail": 0, "error": 1, "pass": 2, "info": 3}
        results = sorted(self.results, key=lambda r: (order[r.status], r.check_id))
        return render(
            "careloop.warehouse.quality", "quality_report.html",
            report=self, counts=self.counts, results=results,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "run_id": self.run_id,
            "run_at": self.run_at.isoformat(),
            "warehouse_url": self.warehouse_url,
            "counts": dict(self.counts),
            "results": [asdict(r) for r in self.results],
        }


def store_quality_report(warehouse: Warehouse, report: QualityReport) -> int:
    """Append the report's results to :data:`RESULT_TABLE`; returns rows written.

    Each run keeps its ``run_id`` and ``run_at``, so results can be charted
    over time (e.g. ``percent`` of one ``check_id`` by ``run_at``).
    """
    warehouse.ensure_table(RESULT_TABLE, RESULT_SCHEMA)
    return warehouse.insert(RESULT_TABLE, report.to_frame())


def quality_history(warehouse: Warehouse, *, check_id: str | None = None) -> pd.DataFrame:
    """Stored results, oldest run first, optionally of one ``check_id``."""
    if not warehouse.has_table(RESULT_TABLE):
        return pd.DataFrame(columns=list(RESULT_SCHEMA.names))
    t = warehouse.table(RESULT_TABLE)
    if check_id is not None:
        t = t.filter(t.check_id == check_id)
    with quiet_engine_warnings():
        return cast(pd.DataFrame, t.order_by(["run_at", "check_id"]).execute())


def latest_quality_report(warehouse: Warehouse) -> QualityReport | None:
    """The latest run kept by :func:`store_quality_report` (None before the first one)."""
    frame = quality_history(warehouse)
    if frame.empty:
        return None
    latest = frame.sort_values("run_at", kind="stable")["run_id"].iloc[-1]
    rows = frame[frame["run_id"] == latest]
    results = tuple(
        CheckResult(
            check_id=r.check_id,
            check_name=r.check_name,
            category=r.category,
            level=r.level,
            table=_text(r.table_name),
            column=_text(r.column_name),
            concept_id=None if pd.isna(r.concept_id) else int(r.concept_id),
            description=r.description,
            threshold=None if pd.isna(r.threshold) else float(r.threshold),
            failing_rows=int(r.failing_rows),
            denominator=int(r.denominator),
            percent=float(r.percent),
            status=r.status,
            error=_text(r.error),
        )
        for r in rows.itertuples(index=False)
    )
    run_at = pd.Timestamp(rows["run_at"].iloc[0]).to_pydatetime().replace(tzinfo=UTC)
    return QualityReport(str(latest), run_at, warehouse.url, results)


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
