"""Connecting to the registry database and handing out transactions.

There are two kinds of transaction:

- :meth:`Registry.transaction` writes. On SQLite (the embedded default, in
  WAL mode) it begins with ``BEGIN IMMEDIATE``: a transaction that writes
  takes the database's one write lock up front, because upgrading a read
  transaction to a write later fails outright (``SQLITE_BUSY_SNAPSHOT``,
  no waiting) when another writer committed in between.
- :meth:`Registry.read_transaction` only reads. On SQLite it begins with a
  plain (deferred) ``BEGIN`` and ``PRAGMA query_only``: it reads a snapshot
  of the database and never takes the write lock, so any number of reads
  run beside the one writer and none of them makes a writer wait. On
  PostgreSQL it is ``READ ONLY``. Either way a write inside it is refused.

PostgreSQL runs at READ COMMITTED; the audit chain serialises its own
appends with an advisory lock (see careloop.trust.audit).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from careloop.core.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "careloop_read_only"
"""Execution option (and session info key) of read-only transactions."""
_QUERY_ONLY = "careloop_query_only"
"""Key of a pooled SQLite connection's info: whether PRAGMA query_only is on."""


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's implicit
        # transactions would otherwise start DEFERRED transactions).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        reading = bool(connection.get_execution_options().get(READ_ONLY))
        # query_only belongs to the pooled connection: switch it only when the
        # kind of transaction changes (a pragma costs no I/O, but why pay twice).
        if connection.info.get(_QUERY_ONLY, False) != reading:
            connection.exec_driver_sql(f"PRAGMA query_only={int(reading)}")
            connection.info[_QUERY_ONLY] = reading
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def create_registry_engine(url: str) -> Engine:
    """Create an engine for a registry URL (SQLite or PostgreSQL)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(
            f"The registry URL {url!r} is not a valid database URL. Use sqlite:///path "
            "or postgresql+psycopg://user:password@host/dbname."
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=40)
        _configure_postgresql(engine)
        return engine
    raise ConfigurationError(
        f"The registry URL uses {backend!r}; careloop's registry runs on sqlite or "
        "postgresql. Set CARELOOP_DATABASE_URL accordingly."
    )


@event.listens_for(Session, "before_flush")
def _refuse_writes_when_reading(session: Session, _context: Any, _instances: Any) -> None:
    # The database refuses too (query_only, READ ONLY); this says which code is wrong.
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise RuntimeError(
            "A read-only transaction tried to write: use Registry.transaction() "
            "(or a unit of work of an action that writes) for changes."
        )


@dataclass
class Registry:
    """An open registry database: the engine and its session factories."""

    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session] = field(init=False)
    """Sessions whose transactions only read (see the module docs)."""

    def __post_init__(self) -> None:
        self.read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}),
            expire_on_commit=False,
            info={READ_ONLY: True},
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one writing transaction: committed on success, rolled back on error.

        On SQLite it holds the write lock from its start: keep it short.
        """
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_transaction(self) -> Iterator[Session]:
        """A session in one read-only transaction: one consistent snapshot, no write lock."""
        with self.read_sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


def connect_registry(url: str, *, migrate: bool = False) -> Registry:
    """Open the registry at ``url``; with ``migrate`` bring its schema up to date."""
    engine = create_registry_engine(url)
    if migrate:
        from careloop.store.migrate import upgrade

        upgrade(engine)
    return Registry(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
