"""Read-only SQL for analysts: one SELECT, WITH or EXPLAIN, nothing else.

Two guards, because a parser alone is not a security boundary:

1. the statement is parsed with sqlglot in the engine's dialect and refused
   unless it is a single query with no data-changing node anywhere (no
   ``INSERT``/``UPDATE``/``DELETE``/``MERGE``/DDL, no ``SELECT … INTO``, no
   data-modifying CTE), no ``ATTACH``/``COPY``/``PRAGMA``/``SET``/``CALL``, no
   table functions that read files or run SQL strings (``read_csv``,
   ``query``…), no file paths used as tables, and no functions with side
   effects or access to the server (``getenv``, ``pg_read_file``,
   ``set_config``, ``nextval``…);
2. the engine runs it in a read-only transaction (DuckDB ``BEGIN TRANSACTION
   READ ONLY``, PostgreSQL ``SET TRANSACTION READ ONLY``) that is rolled back;
   a warehouse opened with ``read_only=True`` on DuckDB also has file and
   network access switched off.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import pandas as pd
import sqlglot
import sqlglot.expressions as sge
from sqlglot.errors import ParseError

from careloop.core.errors import ErrorDetail, InputError
from careloop.warehouse.connection import Warehouse

_WRITE_NODES: tuple[type[sge.Expression], ...] = (
    sge.Insert,
    sge.Update,
    sge.Delete,
    sge.Merge,
    sge.Create,
    sge.Drop,
    sge.Alter,
    sge.TruncateTable,
    sge.Command,
    sge.Set,
    sge.Pragma,
    sge.Copy,
    sge.Attach,
    sge.Detach,
    sge.Use,
    sge.Grant,
    sge.LoadData,
    sge.Transaction,
    sge.Commit,
    sge.Rollback,
)
_ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"generate_series", "exploding_generate_series", "range", "unnest"}
)
_FORBIDDEN_FUNCTIONS = re.compile(
    r"^(getenv|current_setting|set_config|nextval|setval|txid_.*|pg_.*|lo_.*|dblink.*"
    r"|read_.*|query|query_table|glob|sniff_csv|parquet_.*|iceberg_.*|delta_.*|sqlite_.*"
    r"|postgres_.*|mysql_.*|http.*|copy_.*|install.*|load.*|system|shell|duckdb_secrets"
    r"|which_secret|.*_scan)$",
    re.IGNORECASE,
)
# Harmless catalogue/format helpers that the prefix rules above would catch.
_ALLOWED_FUNCTIONS = frozenset({"pg_typeof"})


def run_readonly_query(warehouse: Warehouse, sql: str, *, limit: int | None = None) -> pd.DataFrame:
    """Run one read-only query on the warehouse and return its rows.

    Args:
        warehouse: The warehouse to query.
        sql: A single ``SELECT``, ``WITH … SELECT`` or ``EXPLAIN`` statement, in
            the warehouse engine's SQL dialect.
        limit: Return at most this many rows (the query is wrapped, not edited).

    Returns:
        The result as a pandas DataFrame.

    Raises:
        InputError: the statement is not a single read-only query, or the
            engine rejected it (syntax error, unknown table, …).
    """
    if limit is not None and limit < 0:
        raise InputError(f"limit must be 0 or more, not {limit}.")
    statement, explain = check_readonly_sql(sql, dialect=warehouse.dialect)
    if limit is not None and not explain:
        statement = f"SELECT * FROM ({statement}) AS careloop_query LIMIT {int(limit)}"  # noqa: S608 - quoted identifiers, no user values
    elif explain:
        statement = f"{explain} {statement}"
    if warehouse.engine == "duckdb":
        return _run_duckdb(warehouse, statement)
    if warehouse.engine == "postgres":
        return _run_postgres(warehouse, statement)
    raise InputError(f"Read-only SQL is not available on {warehouse.engine} yet.")


def check_readonly_sql(sql: str, *, dialect: str) -> tuple[str, str]:
    """Check that ``sql`` is one read-only query; return it and any EXPLAIN prefix.

    Returns:
        ``(query, explain)``: the query without a trailing semicolon, and
        ``"EXPLAIN"``/``"EXPLAIN ANALYZE"`` if it was explained, else ``""``.

    Raises:
        InputError: what is wrong, with the offending construct in ``details``.
    """
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise InputError("The query is empty. Give one SELECT, WITH or EXPLAIN statement.")
    explain = ""
    match = re.match(r"(?is)^explain(\s+analy[sz]e)?\s+(.*)$", text)
    if match:
        explain = "EXPLAIN ANALYZE" if match.group(1) else "EXPLAIN"
        text = match.group(2).strip()
    try:
        statements = [s for s in sqlglot.parse(text, dialect=dialect) if s is not None]
    except ParseError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"The query is not valid {dialect} SQL: {first}") from None
    if len(statements) != 1:
        raise InputError(
            f"Give exactly one statement; found {len(statements)}. "
            "Only a single SELECT, WITH or EXPLAIN is allowed."
        )
    tree = statements[0]
    if not isinstance(tree, sge.Query):
        raise _refuse(type(tree).__name__.upper(), "only SELECT, WITH and EXPLAIN are allowed")
    for node in tree.walk():
        if isinstance(node, _WRITE_NODES):
            raise _refuse(type(node).__name__.upper(), "the query must not change anything")
        if isinstance(node, sge.Select) and node.args.get("into") is not None:
            raise _refuse("SELECT INTO", "it creates a table")
        if isinstance(node, sge.Lock):
            raise _refuse("FOR UPDATE/SHARE", "row locks are not read-only")
        if isinstance(node, sge.Table):
            _check_table(node)
        if isinstance(node, sge.Func):
            _check_function(node)
    return text, explain


def _check_table(node: sge.Table) -> None:
    source = node.this
    if isinstance(source, sge.Literal) or (
        isinstance(source, sge.Identifier) and re.search(r"[/\\]|\.(csv|parquet|json)", source.name)
    ):
        raise _refuse(node.sql(), "files cannot be read as tables")
    if isinstance(source, sge.Func):
        name = _function_name(source)
        if name.lower() not in _ALLOWED_TABLE_FUNCTIONS:
            raise _refuse(f"{name}(…)", "table functions other than generate_series/range/unnest")
    if node.args.get("catalog") is not None:
        raise _refuse(node.sql(), "only tables of the warehouse itself can be read")


def _check_function(node: sge.Func) -> None:
    name = _function_name(node)
    if name.lower() in _ALLOWED_FUNCTIONS:
        return
    if _FORBIDDEN_FUNCTIONS.match(name):
        raise _refuse(f"{name}(…)", "the function reads the server or has side effects")


def _function_name(node: Any) -> str:
    if isinstance(node, sge.Anonymous):
        return str(node.name)
    if isinstance(node, sge.Func):
        # sqlglot types sql_name in some releases and not in others.
        sql_name = cast(Callable[[], str], node.sql_name)
        return str(sql_name())
    return str(node.sql())


def _refuse(what: str, why: str) -> InputError:
    return InputError(
        f"Refused: {what} is not allowed in a read-only query ({why}). "
        "Give one SELECT, WITH or EXPLAIN statement.",
        details=[ErrorDetail("sql", f"{what}: {why}", what)],
    )


def _run_duckdb(warehouse: Warehouse, statement: str) -> pd.DataFrame:
    import duckdb

    cursor = warehouse._native.cursor()
    try:
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        try:
            # Through Arrow, not .df(): that turns a HUGEINT (what SUM of a BIGINT
            # gives) into a float, wrong above 2**53.
            frame = _exact_integers(cursor.execute(statement).to_arrow_table().to_pandas())
        except duckdb.Error as exc:
            raise InputError(f"The warehouse rejected the query: {_first_line(exc)}") from None
        finally:
            cursor.execute("ROLLBACK")
    finally:
        cursor.close()
    return frame


def _run_postgres(warehouse: Warehouse, statement: str) -> pd.DataFrame:
    import psycopg

    conn = warehouse._native
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute("SET LOCAL statement_timeout = '300s'")
            cur.execute(statement)
            columns = [d.name for d in cur.description or []]
            rows = cur.fetchall()
    except psycopg.Error as exc:
        raise InputError(f"The warehouse rejected the query: {_first_line(exc)}") from None
    return _exact_integers(pd.DataFrame.from_records(rows, columns=columns))


_INT64 = (-(2**63), 2**63 - 1)


def _exact_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-number decimals (SUM of BIGINT, COUNT on PostgreSQL) as exact integers.

    They become 64-bit integers when they fit and Python integers (printed in
    full) when they do not; never floats.
    """
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object:
            continue
        present = values.dropna()
        if present.empty or not all(
            isinstance(v, Decimal) and v == v.to_integral_value() for v in present
        ):
            continue
        whole = values.map(lambda v: None if v is None or pd.isna(v) else int(v))
        present_ints = whole.dropna()
        if present_ints.between(*_INT64).all():
            frame[column] = whole.astype("Int64")
        else:
            frame[column] = whole.astype(object)
    return frame


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
