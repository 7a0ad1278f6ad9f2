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

The writers of one process to a SQLite file queue for the write lock first
come, first served (:class:`_WriterQueue`). PostgreSQL runs at READ
COMMITTED; the audit chain serialises its own appends with an advisory lock
(see careloop.trust.audit). On both, an integer no 64-bit column can hold is
answered before it reaches the driver (:func:`_refuse_out_of_range_integers`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from careloop.core.errors import ConfigurationError, ErrorDetail, InputError, NotFound

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "careloop_read_only"
"""Execution option (and session info key) of read-only transactions."""
_QUERY_ONLY = "careloop_query_only"
"""Key of a pooled SQLite connection's info: whether PRAGMA query_only is on."""


class _WriterQueue:
    """The writers of one process to one SQLite file, served first come, first served.

    SQLite makes a writer that finds the write lock taken sleep and try again,
    for longer each time (up to 100 ms between tries): with many writers at
    once the lock is often free while every waiter sleeps. Writers of the same
    process therefore queue here instead, and each is woken the moment the
    one before it commits. Other processes (a CLI import beside the server)
    still meet at SQLite's lock, with its busy timeout.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        if turn.acquire(timeout=timeout):
            return True
        with self._mutex:
            if turn in self._waiting:
                self._waiting.remove(turn)
                return False
        return True  # handed over just as the wait timed out: ours now

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # the next writer's turn; still held
            else:
                self._held = False


def _connection_class(queue: _WriterQueue) -> type[sqlite3.Connection]:
    class QueuedConnection(sqlite3.Connection):
        """A connection that gives the writer queue back when its transaction ends."""

        holds_turn = False

        def end_turn(self) -> None:
            if self.holds_turn:
                self.holds_turn = False
                queue.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.end_turn()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.end_turn()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.end_turn()

    return QueuedConnection


def _begin_writing(connection: Any, queue: _WriterQueue) -> None:
    dbapi_connection = connection.connection.dbapi_connection
    if not queue.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
        raise sqlite3.OperationalError("database is locked")
    dbapi_connection.holds_turn = True
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        dbapi_connection.end_turn()
        raise


def _configure_sqlite(engine: Engine, queue: _WriterQueue) -> None:
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
        if reading:
            connection.exec_driver_sql("BEGIN")
        else:
            _begin_writing(connection, queue)


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")


_SMALLEST_ROW_INTEGER, _LARGEST_ROW_INTEGER = -(2**63), 2**63 - 1


def _out_of_range(parameters: Any) -> int | None:
    """The first integer among bound ``parameters`` no 64-bit column can hold, or None."""
    # One statement's parameters are a tuple (SQLite) or a mapping (psycopg); many, a list.
    batches = parameters if isinstance(parameters, list) else [parameters]
    for batch in batches:
        values = batch.values() if isinstance(batch, Mapping) else batch
        for value in values or ():
            if type(value) is int and not _SMALLEST_ROW_INTEGER <= value <= _LARGEST_ROW_INTEGER:
                return value
    return None


def _refuse_out_of_range_integers(engine: Engine) -> None:
    """Answer a number no row can hold as careloop errors, before the driver fails on it.

    Ids come from clients (``/api/patients/{id}``, a CSV's repeat instance),
    and Python's integers have no bound: SQLite's driver raises
    ``OverflowError`` on one beyond 64 bits and PostgreSQL's on storing it.
    A look-up of such a number is a :class:`NotFound` (no row has that id,
    on either database); storing one is an :class:`InputError`. Both happen
    inside the unit of work, which audits the attempt like any other refusal.
    """

    @event.listens_for(engine, "before_cursor_execute")
    def _check(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        number = _out_of_range(parameters)
        if number is None:
            return
        if statement.lstrip()[:6].upper() in ("SELECT", "DELETE"):
            raise NotFound(
                f"There is nothing with the id {number}: careloop's ids are whole numbers "
                f"up to {_LARGEST_ROW_INTEGER}.",
                details=[ErrorDetail("id", "larger than any id", str(number))],
            )
        raise InputError(
            f"The number {number} is too large to store: careloop stores whole numbers "
            f"from {_SMALLEST_ROW_INTEGER} to {_LARGEST_ROW_INTEGER}.",
            details=[ErrorDetail("value", "out of range", str(number))],
        )


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
        queue = _WriterQueue()
        engine = create_engine(
            url,
            connect_args={
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                "factory": _connection_class(queue),
            },
        )
        _configure_sqlite(engine, queue)
        _refuse_out_of_range_integers(engine)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=40)
        _configure_postgresql(engine)
        _refuse_out_of_range_integers(engine)
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
