"""Migration 0002 creates exactly the capture models' tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from careloop.store.capture_models import FormDefinition, FormVersion, PromLink, Response
from careloop.store.database import connect_registry
from careloop.store.models import Base

CAPTURE_TABLES = {m.__tablename__ for m in (FormDefinition, FormVersion, Response, PromLink)}


def _table_of(diff) -> str | None:
    for part in diff if isinstance(diff, list) else [diff]:
        for item in part[1:] if isinstance(part, tuple) else []:
            name = getattr(item, "name", None)
            table = getattr(item, "table", None)
            if table is not None and getattr(table, "name", None):
                return str(table.name)
            if isinstance(item, str) and item in CAPTURE_TABLES:
                return item
            if name in CAPTURE_TABLES:
                return str(name)
    return None


def test_the_migrated_schema_matches_the_capture_models(database_url, tmp_path):
    url = database_url or f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    registry = connect_registry(url, migrate=True)
    try:
        with registry.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
            tables = set(registry.engine.dialect.get_table_names(conn))
    finally:
        registry.close()
    assert tables >= CAPTURE_TABLES
    ours = [d for d in diffs if _table_of(d) in CAPTURE_TABLES]
    assert ours == []
