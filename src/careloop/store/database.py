"""Connecting to the registry database and handing out units of work.

SQLite (the embedded default) runs in WAL mode with ``BEGIN IMMEDIATE``
transactions: nearly every transaction writes an audit entry, so taking the
write lock up front avoids the lock-upgrade deadlocks of deferred
transactions. PostgreSQL runs at READ COMMITTED; the audit chain serialises
its own appends with an advisory lock (see careloop.trust.audit).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from careloop.core.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000


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
        connection.exec_driver_sql("BEGIN IMMEDIATE")


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
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=40)
    raise ConfigurationError(
        f"The registry URL uses {backend!r}; careloop's registry runs on sqlite or "
        "postgresql. Set CARELOOP_DATABASE_URL accordingly."
    )


@dataclass
class Registry:
    """An open registry database: the engine and its session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
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
