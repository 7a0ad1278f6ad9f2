"""The capture migrations (0002, 0004) build exactly the capture models' tables and keep data,
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from careloop.store.database import connect_registry, create_registry_engine
from careloop.store.migrate import alembic_config, upgrade
from careloop.store.models import Base
from careloop.store.models.capture import FormDefinition, FormVersion, PromLink, Response

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


_SEED = [
    "INSERT INTO site (id, code, name, country, time_zone, created_at) "
    "VALUES (1, 'A', 'A', 'GB', 'Europe/London', '2024-01-01 00:00:00+00')",
    "INSERT INTO patient (id, local_id, pseudo_id, sex, consent_state, created_at, updated_at, "
    "version, site_id) VALUES (1, 'MRN-1', 'p1', 'unknown', 'direct_care_only', "
    "'2024-01-01 00:00:00+00', '2024-01-01 00:00:00+00', 1, 1)",
    "INSERT INTO form_definition (id, name, title, patient_reported, created_at, updated_at) "
    "VALUES (1, 'bp', 'BP', false, '2024-01-01 00:00:00+00', '2024-01-01 00:00:00+00')",
    "INSERT INTO form_version (id, form_id, version, definition, source_format, created_at) "
    "VALUES (1, 1, 'v1', '{}', 'yaml', '2024-01-01 00:00:00+00')",
]


def _response_sql(event: str | None = None, instance: int | None = None) -> str:
    extra_cols = ", event_name, repeat_instance" if event is not None else ""
    extra_vals = f", '{event}', {instance}" if event is not None else ""
    return (
        'INSERT INTO form_response (form_id, form_version_id, event_date, status, "values", '
        "patient_entered, created_at, updated_at, version, site_id, patient_id"
        f"{extra_cols}) VALUES (1, 1, '2024-03-01', 'complete', '{{}}', false, "
        f"'2024-01-01 00:00:00+00', '2024-01-01 00:00:00+00', 1, 1, 1{extra_vals})"
    )


def test_existing_responses_keep_their_key_and_events_or_instances_may_share_a_date(
    database_url, tmp_path
):
    def downgrade(engine, revision):
        command.downgrade(alembic_config(engine), revision)

    url = database_url or f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    engine = create_registry_engine(url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as conn:
            for statement in [*_SEED, _response_sql()]:
                conn.execute(text(statement))
        upgrade(engine)
        with engine.begin() as conn:
            assert conn.execute(
                text("SELECT event_name, repeat_instance FROM form_response")
            ).all() == [("", 1)]
            conn.execute(text(_response_sql("visit_1_arm_1", 1)))
            conn.execute(text(_response_sql("", 2)))
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(_response_sql("", 2)))
        # Going back would have to drop two of the three responses: refused.
        with pytest.raises(RuntimeError, match="more than one response"):
            downgrade(engine, "capture@0002")
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM form_response WHERE event_name <> '' "
                              "OR repeat_instance <> 1"))  # fmt: skip
        downgrade(engine, "capture@0002")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM form_response")).scalar_one() == 1
    finally:
        engine.dispose()
