"""The OMOP warehouse: one class that connects by URL and hides the engine.

Reads and transformations go through Ibis (:meth:`Warehouse.table` returns an
``ibis.Table``), so the same code runs on DuckDB, PostgreSQL and, later, Spark.
The few things Ibis does not do — creating the CDM tables with their NOT NULL
constraints, bulk loading, swapping a table's contents atomically — are done
here with each engine's own statements, rendered through sqlglot.

URLs (``CARELOOP_WAREHOUSE_URL``):

==============================================  =======================================
``duckdb:///abs/path/warehouse.duckdb``         a DuckDB file (absolute path)
``duckdb://relative/path.duckdb``               a DuckDB file relative to the working dir
``duckdb://`` or ``duckdb://:memory:``          an in-memory DuckDB (tests, scratch)
``postgresql+psycopg://user:pw@host:5432/db``   PostgreSQL (also ``postgres://``, ``postgresql://``)
``spark://local``                               Spark in local mode (extra ``careloop[spark]``)
``spark://local[2]?database=omop``              Spark, 2 threads, tables in database ``omop``
==============================================  =======================================

Spark runs in local mode only, with one Spark session per process (starting
one takes seconds); see :func:`spark_session` for what that means for where
the tables live.

A :class:`Warehouse` holds one connection and is not thread-safe: open one per
worker or request.
"""

from __future__ import annotations

from careloop.warehouse.connection.engine_warnings import (
    ENGINE_WARNING_MESSAGES,
    SPARK_RESOURCE_WARNING,
    quiet_engine_warnings,
)
from careloop.warehouse.connection.loading import (
    TableData,
    TableSwap,
    copy_arrow_to_postgres,
)
from careloop.warehouse.connection.locations import (
    SUPPORTED_SCHEMES,
    Engine,
    WarehouseLocation,
    parse_warehouse_url,
)
from careloop.warehouse.connection.spark import (
    SPARK_CONF,
    spark_session,
)
from careloop.warehouse.connection.statements import (
    quote_identifier,
)
from careloop.warehouse.connection.warehouse import (
    SchemaResult,
    Warehouse,
    WarehouseOpener,
    warehouse_opener,
)

__all__ = [
    "ENGINE_WARNING_MESSAGES",
    "SPARK_CONF",
    "SPARK_RESOURCE_WARNING",
    "SUPPORTED_SCHEMES",
    "Engine",
    "SchemaResult",
    "TableData",
    "TableSwap",
    "Warehouse",
    "WarehouseLocation",
    "WarehouseOpener",
    "copy_arrow_to_postgres",
    "parse_warehouse_url",
    "quiet_engine_warnings",
    "quote_identifier",
    "spark_session",
    "warehouse_opener",
]
