"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from careloop.store.database import connect_registry
from careloop.store.migrate import current_revision, upgrade
from careloop.store.models import Base
from tests.foundation import make_settings


def test_migrations_match_the_models_and_run_twice(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url)
    settings.ensure_data_dir()
    registry = connect_registry(settings.registry_url, migrate=True)
    upgrade(registry.engine)  # a second run changes nothing
    with registry.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    assert current_revision(registry.engine) is not None
    registry.close()
