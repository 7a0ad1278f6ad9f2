"""The connected warehouse: connecting, its tables, atomic replacement, and the opener."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis

from careloop.core.errors import ConfigurationError, InputError, NotFound
from careloop.core.private_files import restrict
from careloop.warehouse.connection.engine_warnings import quiet_engine_warnings
from careloop.warehouse.connection.loading import (
    _LIVE_STAGES,
    _STAGE_PREFIX,
    TableData,
    TableSwap,
    _insert_into,
)
from careloop.warehouse.connection.locations import Engine, WarehouseLocation, parse_warehouse_url
from careloop.warehouse.connection.spark import spark_session
from careloop.warehouse.connection.statements import _create_table_sql, quote_identifier
from careloop.warehouse.omop_schema import TABLES

if TYPE_CHECKING:
    from careloop.core.settings import Settings


@dataclass(frozen=True)
class SchemaResult:
    """What :meth:`Warehouse.create_schema` did."""

    created: tuple[str, ...]
    """Tables that did not exist and were created."""
    existing: tuple[str, ...]
    """Tables that were already there (left as they were)."""
    missing_columns: Mapping[str, tuple[str, ...]]
    """Existing tables that lack CDM 5.4 columns: table → the missing columns."""


class Warehouse:
    """A connected OMOP warehouse. Build it with :meth:`connect`.

    Attributes:
        engine: ``duckdb``, ``postgres`` or ``spark``.
        url: The warehouse URL with any password hidden.
        read_only: True when opened read-only.
        ibis: The Ibis backend; build expressions from :meth:`table`.
    """

    def __init__(
        self, location: WarehouseLocation, backend: Any, *, read_only: bool, native: Any
    ) -> None:
        self.engine: Engine = location.engine
        self.url = location.url
        self.location = location
        self.read_only = read_only
        self.ibis = backend
        self._native = native

    # -- connecting -----------------------------------------------------------------

    @classmethod
    def connect(
        cls, url: str, *, read_only: bool = False, memory_limit: str | None = None
    ) -> Warehouse:
        """Connect to the warehouse at ``url``.

        Args:
            url: A warehouse URL (see the module docstring).
            read_only: Open read-only. On DuckDB this also disables access to
                files and the network from SQL (``enable_external_access``).
            memory_limit: DuckDB's memory limit (e.g. ``"1GB"``); it spills to
                disk beyond it. Default: DuckDB's own (80% of the machine).

        Raises:
            ConfigurationError: unsupported URL, missing driver, or the
                database cannot be opened.
        """
        location = parse_warehouse_url(url)
        if location.engine == "duckdb":
            return cls._connect_duckdb(location, read_only=read_only, memory_limit=memory_limit)
        if location.engine == "postgres":
            return cls._connect_postgres(location, read_only=read_only)
        return cls._connect_spark(location, read_only=read_only)

    @classmethod
    def from_settings(cls, settings: Settings, *, read_only: bool = False) -> Warehouse:
        """Connect to the warehouse the settings name (default: DuckDB in the data dir)."""
        if not settings.warehouse_url:
            settings.ensure_data_dir()
        return cls.connect(
            settings.resolved_warehouse_url,
            read_only=read_only,
            memory_limit=settings.warehouse_memory_limit,
        )

    @classmethod
    def _connect_duckdb(
        cls, location: WarehouseLocation, *, read_only: bool, memory_limit: str | None = None
    ) -> Warehouse:
        import duckdb

        config: dict[str, Any] = {}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if read_only:
            config["enable_external_access"] = False
        if location.path is None:
            if read_only:
                raise ConfigurationError("An in-memory DuckDB warehouse cannot be read-only.")
            database = ":memory:"
        else:
            path = location.path.expanduser()
            if read_only and not path.exists():
                raise ConfigurationError(
                    f"The warehouse file {path} does not exist. Load data into it first "
                    "(e.g. `careloop warehouse load-omop DIR`)."
                )
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            database = str(path)
        try:
            native = duckdb.connect(database, read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise ConfigurationError(
                f"Cannot open the DuckDB warehouse {database}: {exc}. Is another careloop "
                "process writing to it? DuckDB allows one writing process per file."
            ) from exc
        if location.path is not None and not read_only:
            # Person-level data: readable by the owner only (DuckDB creates it 644).
            restrict(location.path.expanduser())
        backend = ibis.duckdb.from_connection(native)
        return cls(location, backend, read_only=read_only, native=native)

    @classmethod
    def _connect_postgres(cls, location: WarehouseLocation, *, read_only: bool) -> Warehouse:
        import psycopg

        assert location.conninfo is not None
        try:
            native = psycopg.connect(location.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"Cannot connect to the PostgreSQL warehouse {location.url}: "
                f"{str(exc).strip()}. Check CARELOOP_WAREHOUSE_URL and that the server runs."
            ) from exc
        if read_only:
            native.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        backend = ibis.postgres.from_connection(native)
        return cls(location, backend, read_only=read_only, native=native)

    @classmethod
    def _connect_spark(cls, location: WarehouseLocation, *, read_only: bool) -> Warehouse:
        root = spark_session(location.spark_master or "local[*]")
        # A session of its own (sharing the process's Spark context and catalog) so
        # that this warehouse's current database and temporary views are its own.
        session = root.newSession()
        database = location.spark_database
        with quiet_engine_warnings():
            if database is not None:
                if not read_only:
                    session.sql(
                        f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database, 'spark')}"
                    )
                if not session.catalog.databaseExists(database):
                    raise ConfigurationError(
                        f"The Spark warehouse {location.url} has no database {database!r}."
                    )
                session.catalog.setCurrentDatabase(database)
            backend = ibis.pyspark.connect(session)
        return cls(location, backend, read_only=read_only, native=session)

    def close(self) -> None:
        """Close the connection (the warehouse object is unusable afterwards).

        On Spark this drops the warehouse's temporary views; the process's Spark
        session stays up for the next warehouse (see :func:`spark_session`).
        """
        if self.engine in ("duckdb", "postgres"):
            with contextlib.suppress(Exception):
                self._native.close()
        else:
            with contextlib.suppress(Exception), quiet_engine_warnings():
                for view in self._native.catalog.listTables():
                    if view.isTemporary:
                        self._native.catalog.dropTempView(view.name)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"<Warehouse {self.engine} {self.url} {mode}>"

    # -- tables -----------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        """The sqlglot dialect name of the engine."""
        return {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark"}[self.engine]

    def list_tables(self) -> list[str]:
        """Names of the tables in the warehouse (sorted)."""
        if self.engine == "spark":
            # The catalog, not SHOW TABLES: that also lists the temporary views
            # Ibis registers for in-memory data.
            with quiet_engine_warnings():
                tables = self._native.catalog.listTables()
            return sorted(str(t.name) for t in tables if not t.isTemporary)
        rows = self._fetchall(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        return sorted(str(r[0]) for r in rows)

    def has_table(self, name: str) -> bool:
        """True when the table ``name`` exists."""
        return name in self.list_tables()

    def table(self, name: str) -> ibis.Table:
        """The table ``name`` as an Ibis expression.

        Raises:
            NotFound: the warehouse has no such table (run :meth:`create_schema`).
        """
        if not self.has_table(name):
            raise NotFound(
                f"The warehouse {self.url} has no table {name!r}. Create the OMOP tables "
                "with Warehouse.create_schema() or load data with load_omop_csv()."
            )
        with quiet_engine_warnings():
            return self.ibis.table(name)

    def row_counts(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Row count of each table in ``names`` (default: every OMOP table present)."""
        present = set(self.list_tables())
        wanted = [n for n in (names if names is not None else TABLES) if n in present]
        with quiet_engine_warnings():
            return {name: int(self.ibis.table(name).count().execute()) for name in wanted}

    def create_schema(self, *, tables: Iterable[str] | None = None) -> SchemaResult:
        """Create the OMOP CDM 5.4 tables that do not exist yet (idempotent).

        Args:
            tables: Only these tables (default: all of :data:`~careloop.warehouse.TABLES`).
        """
        self._require_writable()
        names = list(tables) if tables is not None else list(TABLES)
        unknown = [n for n in names if n not in TABLES]
        if unknown:
            raise InputError(f"Not OMOP CDM tables: {', '.join(unknown)}.")
        present = set(self.list_tables())
        created: list[str] = []
        existing: list[str] = []
        missing: dict[str, tuple[str, ...]] = {}
        for name in names:
            if name in present:
                existing.append(name)
                with quiet_engine_warnings():
                    have = set(self.ibis.table(name).columns)
                lacking = tuple(c for c in TABLES[name].column_names if c not in have)
                if lacking:
                    missing[name] = lacking
            else:
                created.append(name)
        if created and self.engine != "spark":
            # One transaction: all tables or none, and one commit instead of dozens.
            self._execute("BEGIN")
            try:
                for name in created:
                    self._create(name, TABLES[name].schema())
            except BaseException:
                self._execute("ROLLBACK")
                raise
            self._execute("COMMIT")
        else:
            for name in created:
                self._create(name, TABLES[name].schema())
        return SchemaResult(tuple(created), tuple(existing), missing)

    def ensure_table(self, name: str, schema: ibis.Schema) -> bool:
        """Create table ``name`` with ``schema`` if it does not exist; True if created."""
        self._require_writable()
        if self.has_table(name):
            return False
        self._create(name, schema)
        return True

    def _create(self, name: str, schema: ibis.Schema) -> None:
        # On Spark a parquet table, whose columns are all nullable: Spark does not
        # keep NOT NULL on file-based tables, so it is checked only by loaders.
        self._execute(self._create_table_sql(name, schema))

    def drop_table(self, name: str) -> None:
        """Drop the table ``name`` if it exists."""
        self._require_writable()
        self._execute(f"DROP TABLE IF EXISTS {quote_identifier(name, self.dialect)}")

    def _create_table_sql(self, name: str, schema: ibis.Schema) -> str:
        return _create_table_sql(name, schema, self.dialect)

    # -- atomic replacement -------------------------------------------------------

    @contextlib.contextmanager
    def replacing(
        self, names: Sequence[str], *, schemas: Mapping[str, ibis.Schema] | None = None
    ) -> Iterator[TableSwap]:
        """Replace the contents of several tables at once, atomically.

        Inside the block, fill the staging tables (``swap.stage(name)``, empty,
        with the target's schema) with :meth:`TableSwap.insert`. When the block
        ends without an error, every target table is swapped for its staging
        table in one transaction: readers see all the old contents or all the
        new, never a mix or a half-filled table. On an error nothing changes.

        A CDM table gets the CDM 5.4 schema; a table named in ``schemas`` gets
        that schema (and is created if it does not exist); any other table
        keeps its existing schema.

        On DuckDB the staging tables are filled outside the swap's transaction
        (DuckDB would hold everything appended in an open transaction in
        memory); a process that stops mid-fill leaves them behind, and the next
        replacement drops them.

        Spark has no multi-table transactions: there the staging tables are
        filled first (an error leaves every target as it was) and then each
        target is dropped and replaced by its staging table by a rename, one
        table after another. Readers during that swap (milliseconds per table)
        can find a table missing or a mix of old and new tables.
        """
        self._require_writable()
        given = schemas or {}
        swap = TableSwap(
            self, {name: given.get(name) or self._target_schema(name) for name in names}
        )
        if self.engine == "postgres":
            self._execute("BEGIN")
            try:
                self._create_stages(swap)
                yield swap
                self._rename_stages(swap)
            except BaseException:
                self._execute("ROLLBACK")
                raise
            self._execute("COMMIT")
            return
        # DuckDB and Spark: the staging tables are filled outside a transaction. DuckDB
        # holds every row appended in an open transaction (and the Arrow data it came
        # from) in memory until the commit, so a large refresh filled inside one would
        # grow by gigabytes; Spark has no transactions across tables. Readers do not
        # look at staging tables, and an error drops them.
        if self.engine == "duckdb":
            self._drop_abandoned_stages()
        _LIVE_STAGES.add(swap.token)
        try:
            try:
                self._create_stages(swap)
                yield swap
            except BaseException:
                self._drop_stages(swap)
                raise
            if self.engine == "spark":
                # A catalog operation per table, milliseconds each, and not atomic.
                self._rename_stages(swap)
                return
            self._execute("BEGIN")
            try:
                self._rename_stages(swap)
            except BaseException:
                self._execute("ROLLBACK")
                self._drop_stages(swap)
                raise
            self._execute("COMMIT")
        finally:
            _LIVE_STAGES.discard(swap.token)

    def _create_stages(self, swap: TableSwap) -> None:
        for name, schema in swap.schemas.items():
            self._create(swap.stage(name), schema)

    def _drop_stages(self, swap: TableSwap) -> None:
        for name in swap.schemas:
            with contextlib.suppress(Exception):
                self.drop_table(swap.stage(name))

    def _rename_stages(self, swap: TableSwap) -> None:
        """Each target dropped and its staging table renamed in its place."""
        for name in swap.schemas:
            target = quote_identifier(name, self.dialect)
            self._execute(f"DROP TABLE IF EXISTS {target}")
            self._execute(
                f"ALTER TABLE {quote_identifier(swap.stage(name), self.dialect)} RENAME TO {target}"
            )

    def _drop_abandoned_stages(self) -> None:
        # Staging tables of a process that stopped mid-refresh. Only one process can
        # write a DuckDB file, so any staging table not filled by this process now is
        # abandoned.
        for table in self.list_tables():
            token = table[len(_STAGE_PREFIX) :].split("_", 1)[0]
            if table.startswith(_STAGE_PREFIX) and token not in _LIVE_STAGES:
                self.drop_table(table)

    def replace_table(self, name: str, data: TableData) -> int:
        """Replace the contents of table ``name`` with ``data`` atomically.

        ``data`` is an Ibis expression on this warehouse, a pandas DataFrame or a
        pyarrow Table; its columns are matched by name (missing nullable columns
        become NULL). Returns the number of rows written.
        """
        with self.replacing([name]) as swap:
            return swap.insert(name, data)

    def insert(self, name: str, data: TableData) -> int:
        """Append ``data`` to the existing table ``name``; returns the rows written."""
        self._require_writable()
        schema = self.table(name).schema()
        return _insert_into(self, name, schema, data)

    def _target_schema(self, name: str) -> ibis.Schema:
        if name in TABLES:
            return TABLES[name].schema()
        if self.has_table(name):
            return self.table(name).schema()
        raise NotFound(f"The warehouse {self.url} has no table {name!r} to replace.")

    # -- native SQL -----------------------------------------------------------------

    def _require_writable(self) -> None:
        if self.read_only:
            raise InputError(f"The warehouse {self.url} is open read-only; this operation writes.")

    def _execute(self, sql: str) -> None:
        if self.engine == "duckdb":
            self._native.execute(sql).fetchall()
        elif self.engine == "postgres":
            # autocommit connection: BEGIN/COMMIT in SQL delimit the transaction.
            self._native.execute(sql)
        else:
            with quiet_engine_warnings():
                self._native.sql(sql)

    def _fetchall(self, sql: str) -> list[tuple[Any, ...]]:
        if self.engine == "duckdb":
            return list(self._native.execute(sql).fetchall())
        with self._native.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())


WarehouseOpener = Callable[[], "Warehouse | None"]
"""Opens the installation's warehouse read-only when asked, or gives None when there is
none yet: what a function takes when it needs the warehouse only on some paths."""


def warehouse_opener(settings: Settings) -> WarehouseOpener:
    """The opener of ``settings``' warehouse, read-only (the app and the CLI build it once).

    None when the warehouse is a file not created yet (nothing loaded or
    imported); any other failure to open it (e.g. a DuckDB file locked by a
    running import) is an error, never an empty answer.
    """

    def open_it() -> Warehouse | None:
        location = parse_warehouse_url(settings.resolved_warehouse_url)
        if location.path is not None and not location.path.expanduser().exists():
            return None
        return Warehouse.from_settings(settings, read_only=True)

    return open_it
