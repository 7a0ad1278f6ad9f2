"""Alembic environment: uses the engine careloop passes in, never a URL in a file.

On SQLite, changing a column rebuilds its table (Alembic's batch mode: copy,
drop the old table, rename). careloop's connections enforce foreign keys, and
dropping a table such as ``patient`` would then delete every row that refers
to it with ``ON DELETE CASCADE`` (all responses, consent records, links). So
migrations run with foreign-key enforcement off, as SQLite's documentation
prescribes for table rebuilds, and the keys are checked before the migration
commits: a broken reference stops it and nothing changes.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from careloop.store.models import Base

engine = context.config.attributes["engine"]


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()


if engine.dialect.name == "sqlite":
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        # Only outside a transaction does SQLite accept this pragma.
        assert raw is not None and not raw.in_transaction
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                _run(connection)
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(
                        f"The migration would leave {len(broken)} broken references "
                        f"(first: {tuple(broken[0])}); nothing was changed."
                    )
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
else:
    with engine.begin() as connection:
        _run(connection)
