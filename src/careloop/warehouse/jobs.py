"""Warehouse jobs as one call each: permission, the work, its audit and provenance.

The CLI and the web call these; they hold no rules of their own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from careloop.core.clock import utcnow
from careloop.core.errors import PermissionDenied
from careloop.store.database import Registry
from careloop.store.scoping import Scope
from careloop.trust.principal import Principal
from careloop.trust.provenance import InputRecord, Provenance, record_provenance
from careloop.trust.work import unit_of_work
from careloop.warehouse.connection import Warehouse
from careloop.warehouse.omop_csv import LoadReport, load_omop_csv
from careloop.warehouse.quality import QualityReport, latest_quality_report, run_checks
from careloop.warehouse.query import run_readonly_query
from careloop.warehouse.sources import SourceSummary, drop_source, source_summaries

MAX_AUDITED_SQL = 4000


def load_omop_directory(
    registry: Registry, warehouse: Warehouse, principal: Principal, directory: Path
) -> tuple[LoadReport, Provenance]:
    """Load a directory of OMOP CSV files into the warehouse, recording provenance."""
    with unit_of_work(registry, principal, "warehouse.manage") as work:
        work.audit("load", "warehouse", details={"directory": str(directory)})
    report = load_omop_csv(warehouse, directory)
    provenance = record_provenance(
        registry,
        principal,
        activity="warehouse.load_omop",
        target=report.warehouse_url,
        started_at=report.started_at,
        ended_at=report.finished_at,
        parameters={"directory": str(directory)},
        inputs=[InputRecord(f.path, f.sha256, f.rows) for f in report.inputs],
        outputs={"tables": dict(report.tables), "absent_tables": list(report.absent_tables)},
        rows_in=report.rows_in,
        rows_out=report.rows_in,
        rows_rejected=report.rejected,
    )
    return report, provenance


def query_warehouse(
    registry: Registry,
    warehouse: Warehouse,
    principal: Principal,
    sql: str,
    *,
    limit: int | None = 10_000,
) -> pd.DataFrame:
    """Run one read-only SQL statement on the warehouse (audited).

    Raw SQL reaches every site's rows, so it needs an installation-wide
    grant (a network analyst, or the operator). ``warehouse`` must be opened
    read-only: the SQL check refuses anything but one SELECT, and the
    connection is the second line of defence.
    """
    if not warehouse.read_only:
        raise ValueError("query_warehouse needs a warehouse opened read-only")
    with unit_of_work(registry, principal, "warehouse.query") as work:
        if work.scope != Scope.everything():
            raise PermissionDenied(
                "SQL on the warehouse spans every site; it needs an installation-wide "
                "analyst role. Site analysts use measures and reports instead."
            )
        work.expect("query", "warehouse", details={"sql": sql[:MAX_AUDITED_SQL]})
        frame = run_readonly_query(warehouse, sql, limit=limit)
        work.audit(
            "query",
            "warehouse",
            details={
                "sql": sql[:MAX_AUDITED_SQL],
                "sql_sha256": hashlib.sha256(sql.encode()).hexdigest(),
                "rows": len(frame),
            },
        )
        return frame


def check_warehouse(
    registry: Registry, warehouse: Warehouse, principal: Principal, *, store: bool = True
) -> tuple[QualityReport, Provenance]:
    """Run the data-quality checks, store their results, record provenance."""
    with unit_of_work(registry, principal, "warehouse.manage") as work:
        work.audit("check", "warehouse")
    started = utcnow()
    report = run_checks(warehouse, store=store)
    provenance = record_provenance(
        registry,
        principal,
        activity="warehouse.check",
        target=report.warehouse_url,
        started_at=started,
        parameters={"store": store},
        outputs={
            "run_id": report.run_id,
            "failed": [r.check_id for r in report.results if not r.passed],
        },
    )
    return report, provenance


def stored_quality_report(
    registry: Registry, warehouse: Warehouse, principal: Principal
) -> QualityReport | None:
    """The latest data-quality run stored by :func:`check_warehouse` (None before one ran).

    Reading results runs no check: a page can show them at once.
    """
    principal.require("warehouse.manage")
    return latest_quality_report(warehouse)


def list_sources(
    registry: Registry, warehouse: Warehouse, principal: Principal
) -> list[SourceSummary]:
    """The sources the warehouse's rows come from, with their row counts."""
    principal.require("warehouse.manage")
    return source_summaries(warehouse)


def remove_source(
    registry: Registry, warehouse: Warehouse, principal: Principal, source: str, *, reason: str
) -> tuple[dict[str, int], Provenance]:
    """Remove every row one source put in the warehouse (audited, with provenance).

    The registry's own rows come back with the next ``careloop warehouse refresh``;
    FHIR imports and OMOP files must be imported or loaded again.
    """
    started = utcnow()
    with unit_of_work(registry, principal, "warehouse.manage") as work:
        work.expect("delete", "warehouse", details={"source": source, "reason": reason})
        removed = drop_source(warehouse, source)
        target = warehouse.url
        work.audit(
            "delete", "warehouse", details={"source": source, "reason": reason, "rows": removed}
        )
    provenance = record_provenance(
        registry,
        principal,
        activity="warehouse.drop_source",
        target=target,
        started_at=started,
        parameters={"source": source, "reason": reason},
        outputs={"removed": removed},
        rows_out=0,
        rows_rejected=sum(removed.values()),
    )
    return removed, provenance
