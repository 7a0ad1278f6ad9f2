"""SQL statements the engines run directly, rendered through sqlglot in each one's dialect."""

from __future__ import annotations

import functools

import ibis
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.sql.datatypes import get_type_mapper


def quote_identifier(name: str, dialect: str) -> str:
    """``name`` quoted as an identifier in the engine's SQL dialect."""
    return sg.to_identifier(name, quoted=True).sql(dialect)


_NAME_SLOT = "careloop_table_name_slot"


def _create_table_sql(name: str, schema: ibis.Schema, dialect: str) -> str:
    # The statement is rendered once per schema with a stand-in name: staging tables get
    # a new name every time, so a cache keyed by name would never be hit.
    template = _create_table_template(schema, dialect)
    return template.replace(quote_identifier(_NAME_SLOT, dialect), quote_identifier(name, dialect))


@functools.lru_cache(maxsize=256)
def _create_table_template(schema: ibis.Schema, dialect: str) -> str:
    # Rendering through sqlglot is slow enough to matter when loading 39 tables.
    target = sge.Schema(
        this=sge.table_(_NAME_SLOT, quoted=True),
        expressions=schema.to_sqlglot_column_defs(dialect),
    )
    return str(sge.Create(kind="TABLE", this=target).sql(dialect))


def _cast_select(schema: ibis.Schema, available: set[str], dialect: str) -> str:
    parts = []
    for name, dtype in schema.items():
        col = quote_identifier(name, dialect)
        sql_type = dtype.copy(nullable=True)
        type_sql = get_type_mapper(dialect).from_ibis(sql_type).sql(dialect)
        if name in available:
            parts.append(f"CAST({col} AS {type_sql}) AS {col}")
        else:
            parts.append(f"CAST(NULL AS {type_sql}) AS {col}")
    return ", ".join(parts)
