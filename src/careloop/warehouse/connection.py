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

import atexit
import contextlib
import functools
import io
import os
import re
import shutil
import tempfile
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import parse_qs, urlsplit, urlunsplit

import ibis
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.sql.datatypes import get_type_mapper

from careloop.core.errors import ConfigurationError, InputError, NotFound
from careloop.core.private_files import restrict
from careloop.warehouse.omop_schema import TABLES

if TYPE_CHECKING:
    from careloop.core.settings import Settings

Engine = Literal["duckdb", "postgres", "spark"]

SUPPORTED_SCHEMES = (
    "duckdb://",
    "postgres://",
    "postgresql://",
    "postgresql+psycopg://",
    "spark://local",
)
_POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
_STAGE_PREFIX = "careloop_stage_"
_LIVE_STAGES: set[str] = set()
"""Tokens of the staging tables this process is filling now (DuckDB)."""
_SPARK_MASTER = re.compile(r"local(\[(\*|[1-9][0-9]*)\])?")
_SPARK_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

TableData: TypeAlias = "ibis.Table | pd.DataFrame | pa.Table"


@dataclass(frozen=True)
class WarehouseLocation:
    """Where a warehouse URL points, parsed but not connected."""

    engine: Engine
    """Which engine serves the warehouse."""
    url: str
    """The URL with any password replaced by ``***`` (safe to log and show)."""
    path: Path | None = None
    """DuckDB: the database file, ``None`` for in-memory."""
    conninfo: str | None = field(default=None, repr=False)
    """PostgreSQL: the libpq connection URL (may contain a password)."""
    spark_master: str | None = None
    """Spark: the master, e.g. ``local[*]``."""
    spark_database: str | None = None
    """Spark: the database (namespace) that holds the tables, ``None`` for ``default``."""


@dataclass(frozen=True)
class SchemaResult:
    """What :meth:`Warehouse.create_schema` did."""

    created: tuple[str, ...]
    """Tables that did not exist and were created."""
    existing: tuple[str, ...]
    """Tables that were already there (left as they were)."""
    missing_columns: Mapping[str, tuple[str, ...]]
    """Existing tables that lack CDM 5.4 columns: table → the missing columns."""


def parse_warehouse_url(url: str) -> WarehouseLocation:
    """Parse a warehouse URL without connecting.

    Raises:
        ConfigurationError: the URL's scheme is not one careloop supports.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise _unsupported(url)
    if scheme == "duckdb":
        target = rest.split("?", 1)[0]
        if target in ("", ":memory:", "/:memory:"):
            return WarehouseLocation(engine="duckdb", url="duckdb://:memory:")
        return WarehouseLocation(engine="duckdb", url=url, path=Path(target))
    if scheme in _POSTGRES_SCHEMES:
        conninfo = f"postgresql://{rest}"
        return WarehouseLocation(engine="postgres", url=_redact(url), conninfo=conninfo)
    if scheme == "spark":
        target, _, query = rest.partition("?")
        master = target.strip("/") or "local"
        if not _SPARK_MASTER.fullmatch(master):
            raise ConfigurationError(
                f"Spark warehouse URL {url!r}: only local mode is supported "
                "(spark://local, spark://local[N] or spark://local[*])."
            )
        options = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(options) - {"database"})
        database = options.get("database", [None])[-1]
        if unknown or (database is not None and not _SPARK_DATABASE.fullmatch(database)):
            raise ConfigurationError(
                f"Spark warehouse URL {url!r}: the only option is ?database=NAME "
                "(letters, digits and underscores)."
            )
        if master == "local":
            master = "local[*]"
        return WarehouseLocation(
            engine="spark", url=url, spark_master=master, spark_database=database
        )
    raise _unsupported(url)


def _unsupported(url: str) -> ConfigurationError:
    return ConfigurationError(
        f"Unsupported warehouse URL {_redact(url)!r}. Supported: "
        + ", ".join(SUPPORTED_SCHEMES)
        + " (set CARELOOP_WAREHOUSE_URL, e.g. duckdb:///path/warehouse.duckdb)."
    )


def _redact(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


ENGINE_WARNING_MESSAGES = (
    r"fetch_(arrow_table|arrow_reader|record_batch)\(\) is deprecated",
    r"The 'future\.infer_string' option is deprecated",
    # PySpark 4.0's toPandas() passes astype(copy=False), deprecated in pandas 3.
    r"The copy keyword is deprecated",
)
"""Deprecation warnings that Ibis 12 causes in DuckDB 2, PySpark 4.0 and pandas 3 (regexes)."""

SPARK_RESOURCE_WARNING = r"unclosed <socket\.socket"
"""PySpark 4.0 drops the local socket it reads each result from without closing it."""


@contextlib.contextmanager
def quiet_engine_warnings() -> Iterator[None]:
    """Silence two deprecations that Ibis 12 triggers in its dependencies.

    DuckDB 2 deprecates the ``fetch_*`` methods Ibis still calls, and pandas 3
    deprecates the ``future.infer_string`` option Ibis still reads when it
    converts results. Both are harmless (the data are the same); without this,
    every Ibis read warns, and the test suite turns warnings into errors.
    """
    with warnings.catch_warnings():
        for message in ENGINE_WARNING_MESSAGES:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=SPARK_RESOURCE_WARNING, category=ResourceWarning)
        yield


def quote_identifier(name: str, dialect: str) -> str:
    """``name`` quoted as an identifier in the engine's SQL dialect."""
    return sg.to_identifier(name, quoted=True).sql(dialect)


SPARK_CONF: Mapping[str, str] = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.sources.default": "parquet",
}
"""Settings of the local Spark session: small memory, few shuffle partitions, no web UI."""

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""

_spark_lock = threading.Lock()
_spark: dict[str, Any] = {}


def spark_session(master: str = "local[*]") -> Any:
    """The process's Spark session in local mode, started on first use.

    Starting Spark takes seconds, so every Spark :class:`Warehouse` of a process
    shares one session (each gets its own child session for its current
    database). The session keeps its catalog in memory and its tables as parquet
    files in a temporary directory that is deleted when the process exits: a
    ``spark://local`` warehouse lives as long as the process, and is for
    computing on data loaded into it (tests, measures checked across engines),
    not for keeping data.

    Raises:
        ConfigurationError: pyspark or Java is missing, Spark does not start, or
            a session with another master already runs in this process.
    """
    try:
        from pyspark.sql import SparkSession  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigurationError(
            "A spark:// warehouse needs Apache Spark, which is not installed. Install the "
            "extra: pip install 'careloop[spark]' (and a Java runtime, e.g. Debian's "
            "default-jre-headless)."
        ) from None
    with _spark_lock:
        session = _spark.get("session")
        if session is not None:
            if _spark["master"] != master:
                raise ConfigurationError(
                    f"This process already runs Spark with master {_spark['master']}; "
                    f"it cannot also run {master} (one Spark session per process)."
                )
            return session
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise ConfigurationError(
                "A spark:// warehouse needs a Java runtime (java on PATH or JAVA_HOME), "
                "e.g. Debian's default-jre-headless."
            )
        workdir = Path(tempfile.mkdtemp(prefix="careloop-spark-"))
        (workdir / "log4j2.properties").write_text(_LOG4J2, encoding="utf-8")
        builder = SparkSession.builder.master(master).appName("careloop-warehouse")
        for key, value in SPARK_CONF.items():
            builder = builder.config(key, value)
        java_options = f"-Dlog4j2.configurationFile=file:{workdir / 'log4j2.properties'}"
        builder = (
            builder.config("spark.sql.warehouse.dir", str(workdir / "warehouse"))
            .config("spark.local.dir", str(workdir / "tmp"))
            .config("spark.driver.extraJavaOptions", java_options)
        )
        # Bind to the loopback interface (and skip Spark's warning about the host name).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            with quiet_engine_warnings():
                session = builder.getOrCreate()
        except Exception as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise ConfigurationError(f"Spark did not start in local mode: {exc}") from exc
        session.sparkContext.setLogLevel("ERROR")
        _spark.update(session=session, master=master, workdir=workdir)
        atexit.register(_stop_spark)
        return session


def _stop_spark() -> None:
    with _spark_lock:
        session = _spark.pop("session", None)
        workdir = _spark.pop("workdir", None)
        _spark.clear()
    if session is not None:
        with contextlib.suppress(Exception), quiet_engine_warnings():
            session.stop()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


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
