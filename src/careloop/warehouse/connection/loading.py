"""Writing rows into warehouse tables: staging tables swapped in whole, bulk inserts, COPY."""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import ibis
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from careloop.core.errors import InputError
from careloop.warehouse.connection.engine_warnings import quiet_engine_warnings
from careloop.warehouse.connection.statements import _cast_select, quote_identifier

if TYPE_CHECKING:
    from careloop.warehouse.connection.warehouse import Warehouse


_STAGE_PREFIX = "careloop_stage_"
_LIVE_STAGES: set[str] = set()
"""Tokens of the staging tables this process is filling now (DuckDB)."""

TableData: TypeAlias = "ibis.Table | pd.DataFrame | pa.Table"


class TableSwap:
    """The staging tables of one :meth:`Warehouse.replacing` block."""

    def __init__(self, warehouse: Warehouse, schemas: Mapping[str, ibis.Schema]) -> None:
        self.warehouse = warehouse
        self.schemas = dict(schemas)
        self.token = uuid.uuid4().hex[:10]
        """Names this swap's staging tables."""
        # Numbered, not named after the target: PostgreSQL cuts identifiers at 63
        # characters, and a prefix plus a long target name would pass that.
        self._stages = {name: f"{_STAGE_PREFIX}{self.token}_{i}" for i, name in enumerate(schemas)}

    def stage(self, name: str) -> str:
        """Name of the staging table that will become ``name``."""
        return self._stages[name]

    def insert(self, name: str, data: TableData) -> int:
        """Append ``data`` to the staging table of ``name``; returns the rows written."""
        return _insert_into(self.warehouse, self.stage(name), self.schemas[name], data)


def _insert_into(warehouse: Warehouse, target: str, schema: ibis.Schema, data: TableData) -> int:
    """Insert ``data`` into ``target`` (columns by name, cast to ``schema``)."""
    dialect = warehouse.dialect
    if isinstance(data, ibis.Table):
        missing = [c for c, t in schema.items() if c not in data.columns and not t.nullable]
        if missing:
            raise InputError(f"Data for {target} lacks required columns: {', '.join(missing)}.")
        with quiet_engine_warnings():
            count = int(data.count().execute())
        select = _cast_select(schema, set(data.columns), dialect)
        if warehouse.engine == "spark":
            # Ibis calls its Spark SQL dialect "pyspark"; the expression's in-memory
            # tables become temporary views of this warehouse's session.
            sql = str(warehouse.ibis.compile(data))
            warehouse.ibis._register_in_memory_tables(data)
        else:
            sql = ibis.to_sql(data, dialect=dialect)
        warehouse._execute(
            f"INSERT INTO {quote_identifier(target, dialect)} "  # noqa: S608 - quoted identifiers, no user values
            f"SELECT {select} FROM ({sql}) AS careloop_src"
        )
        return count
    arrow = (
        pa.Table.from_pandas(data, preserve_index=False) if isinstance(data, pd.DataFrame) else data
    )
    missing = [c for c, t in schema.items() if c not in arrow.column_names and not t.nullable]
    if missing:
        raise InputError(f"Data for {target} lacks required columns: {', '.join(missing)}.")
    if warehouse.engine == "duckdb":
        view = f"careloop_arrow_{uuid.uuid4().hex[:10]}"
        native = warehouse._native
        native.register(view, arrow)
        try:
            select = _cast_select(schema, set(arrow.column_names), dialect)
            native.execute(
                f"INSERT INTO {quote_identifier(target, dialect)} SELECT {select} FROM {view}"  # noqa: S608 - quoted identifiers, no user values
            ).fetchall()
        finally:
            native.unregister(view)
        return int(arrow.num_rows)
    if warehouse.engine == "postgres":
        columns = [c for c in schema if c in arrow.column_names]
        copy_arrow_to_postgres(warehouse._native, target, arrow.select(columns))
        return int(arrow.num_rows)
    return _insert_arrow_spark(warehouse, target, schema, arrow)


def _insert_arrow_spark(
    warehouse: Warehouse, target: str, schema: ibis.Schema, arrow: pa.Table
) -> int:
    session = warehouse._native
    view = f"careloop_arrow_{uuid.uuid4().hex[:10]}"
    with quiet_engine_warnings():
        frame = session.createDataFrame(arrow)  # PySpark 4 reads Arrow directly
        frame.createOrReplaceTempView(view)
        try:
            select = _cast_select(schema, set(arrow.column_names), "spark")
            session.sql(
                f"INSERT INTO {quote_identifier(target, 'spark')} SELECT {select} FROM {view}"  # noqa: S608 - quoted identifiers, no user values
            )
        finally:
            session.catalog.dropTempView(view)
    return int(arrow.num_rows)


def copy_arrow_to_postgres(
    conn: Any, target: str, data: pa.Table | pa.RecordBatchReader, *, batch_rows: int = 50_000
) -> None:
    """Stream Arrow data into a PostgreSQL table with ``COPY … FROM STDIN`` (CSV).

    Arrow's CSV writer quotes every string and leaves NULLs unquoted and empty,
    which is exactly how PostgreSQL's CSV format tells NULL from ``''``.
    """
    import pyarrow.csv as pacsv  # type: ignore[import-untyped,unused-ignore]

    names = data.schema.names
    columns = ", ".join(quote_identifier(n, "postgres") for n in names)
    statement = (
        f"COPY {quote_identifier(target, 'postgres')} ({columns}) FROM STDIN "
        "WITH (FORMAT csv, HEADER false)"
    )
    batches = data.to_batches(max_chunksize=batch_rows) if isinstance(data, pa.Table) else data
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, write_options=options)
            copy.write(buffer.getvalue())
