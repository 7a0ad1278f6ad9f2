"""careloop.warehouse: the OMOP CDM 5.4 warehouse, its sources, refresh and checks.

- :class:`Warehouse` connects by URL to DuckDB, PostgreSQL (or, with the
  ``spark`` extra, Spark); reads go through Ibis (:meth:`Warehouse.table`).
- :func:`load_omop_csv` loads a directory of OMOP CSV files, all or nothing.
- :func:`run_readonly_query` runs one analyst SELECT, refusing anything else.
- :func:`run_checks` runs the OHDSI-style data-quality checks of :data:`CHECKS`.
"""

from careloop.warehouse.connection import (
    SUPPORTED_SCHEMES,
    SchemaResult,
    TableSwap,
    Warehouse,
    WarehouseLocation,
    parse_warehouse_url,
    quiet_engine_warnings,
)
from careloop.warehouse.omop_csv import InputFile, LoadReport, load_omop_csv
from careloop.warehouse.omop_schema import (
    CDM53_RENAMES,
    CDM_VERSION,
    TABLES,
    OmopColumn,
    OmopTable,
    omop_schema,
    table_spec,
)
from careloop.warehouse.quality import (
    CHECKS,
    RESULT_TABLE,
    CheckDefinition,
    CheckResult,
    QualityReport,
    completeness_by_site,
    quality_history,
    run_checks,
    store_quality_report,
)
from careloop.warehouse.query import check_readonly_sql, run_readonly_query

__all__ = [
    "CDM53_RENAMES",
    "CDM_VERSION",
    "CHECKS",
    "RESULT_TABLE",
    "SUPPORTED_SCHEMES",
    "TABLES",
    "CheckDefinition",
    "CheckResult",
    "InputFile",
    "LoadReport",
    "OmopColumn",
    "OmopTable",
    "QualityReport",
    "SchemaResult",
    "TableSwap",
    "Warehouse",
    "WarehouseLocation",
    "check_readonly_sql",
    "completeness_by_site",
    "load_omop_csv",
    "omop_schema",
    "parse_warehouse_url",
    "quality_history",
    "quiet_engine_warnings",
    "run_checks",
    "run_readonly_query",
    "store_quality_report",
    "table_spec",
]
