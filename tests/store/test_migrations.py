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


def test_every_table_joins_one_metadata_whatever_is_imported_first():
    import subprocess
    import sys

    # A fresh interpreter, importing only the package: no import order can hide a table.
    probe = "from careloop.store.models import Base; print(','.join(sorted(Base.metadata.tables)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    tables = set(done.stdout.strip().split(","))
    assert tables == {
        *("site", "app_user", "membership", "patient", "consent_record", "carer_link"),
        "carer_scope_change",
        *("api_token", "web_session", "audit_entry", "audit_head", "provenance_record"),
        *("login_lockout", "installation", "account_invitation"),
        *("form_definition", "form_version", "form_response", "prom_link"),
        "form_response_revision",
        *("prom_schedule", "prom_invitation", "planned_visit"),
        *("ko_version", "ko_transition", "ko_deployment", "cds_client", "cds_jti"),
        *("cds_invocation", "cds_card", "cds_variant_assignment", "cds_feedback"),
        *("community", "community_member", "community_invitation", "charter_version"),
        *("community_proposal", "community_vote", "community_priority", "community_decision"),
        *("nasss_assessment", "community_knowledge", "learning_cycle", "learning_cycle_measure"),
        *("community_aim", "maturity_rating", "toolkit_item", "toolkit_rating", "toolkit_use"),
        *("cycle_behaviour_design", "cycle_findings", "chart_note"),
        "alert",
    }


def test_carer_links_made_before_scopes_keep_every_scope_set_when_they_were_made(
    tmp_path, database_url
):
    import importlib
    from datetime import UTC, datetime

    from sqlalchemy import text

    from careloop.core.clock import as_utc
    from careloop.store.database import create_registry_engine

    scopes_migration = importlib.import_module(
        "careloop.store.migrations.versions.0015_carer_scopes"
    )
    settings = make_settings(tmp_path, database_url)
    settings.ensure_data_dir()
    engine = create_registry_engine(settings.registry_url)
    upgrade(engine, scopes_migration.down_revision)  # the schema before carer scopes
    made = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    with engine.begin() as connection:
        for sql in (
            "INSERT INTO site (id, code, name, country, time_zone, created_at) "
            "VALUES (1, 'A', 'Site A', 'GB', 'UTC', :at)",
            "INSERT INTO patient (id, site_id, local_id, pseudo_id, sex, consent_state, "
            "consent_direct_care, consent_quality_improvement, consent_research, "
            "consent_recontact, created_at, updated_at, version) "
            "VALUES (1, 1, 'H-1', 'p1', 'unknown', 'withdrawn', false, false, false, false, "
            ":at, :at, 1)",
            "INSERT INTO app_user (id, email, display_name, disabled, failed_logins, created_at) "
            "VALUES (1, 'mum@example.org', 'Mum', false, 0, :at)",
            "INSERT INTO carer_link (id, site_id, patient_id, carer_user_id, "
            "relationship_to_patient, created_at) VALUES (1, 1, 1, 1, 'mother', :at)",
        ):
            connection.execute(text(sql), {"at": made})
    upgrade(engine)
    with engine.connect() as connection:
        scopes, set_at, set_by = connection.execute(
            text("SELECT scopes, scopes_set_at, scopes_set_by FROM carer_link WHERE id = 1")
        ).one()
        history = connection.execute(text("SELECT count(*) FROM carer_scope_change")).scalar()
    engine.dispose()
    assert scopes == "fill_forms,see_results,manage_consent"
    stored = set_at if isinstance(set_at, datetime) else datetime.fromisoformat(str(set_at))
    assert as_utc(stored) == made  # the scopes count from when the link was made
    assert set_by == "" and history == 0


def test_consent_purposes_are_filled_from_each_patients_consent_state(tmp_path, database_url):
    from sqlalchemy import text

    from careloop.store.database import create_registry_engine

    settings = make_settings(tmp_path, database_url)
    settings.ensure_data_dir()
    engine = create_registry_engine(settings.registry_url)
    upgrade(engine, "0012")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO site (id, code, name, country, time_zone, created_at) "
                "VALUES (1, 'A', 'Site A', 'GB', 'Europe/London', CURRENT_TIMESTAMP)"
            )
        )
        for i, state in enumerate(("improvement_and_research", "direct_care_only", "withdrawn")):
            connection.execute(
                text(
                    "INSERT INTO patient (id, local_id, pseudo_id, sex, consent_state, created_at,"
                    " updated_at, version, site_id) VALUES (:id, :local, :pseudo, 'unknown',"
                    " :state, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 1)"
                ),
                {"id": i + 1, "local": f"L{i}", "pseudo": f"P{i}", "state": state},
            )
    upgrade(engine, "0013")
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT consent_state, consent_direct_care, consent_quality_improvement,"
                " consent_research, consent_recontact FROM patient ORDER BY id"
            )
        ).all()
    assert [(r[0], *map(bool, r[1:])) for r in rows] == [
        ("improvement_and_research", True, True, True, False),
        ("direct_care_only", True, False, False, False),
        ("withdrawn", False, False, False, False),
    ]
    engine.dispose()


def test_rebuilding_the_patient_table_keeps_every_row_that_refers_to_a_patient(
    tmp_path, database_url
):
    # On SQLite, 0013 rebuilds the patient table; with foreign keys enforced, dropping the
    # old table deleted every response, consent record and carer link (ON DELETE CASCADE).
    from sqlalchemy import text

    from careloop.store.database import create_registry_engine

    settings = make_settings(tmp_path, database_url)
    settings.ensure_data_dir()
    engine = create_registry_engine(settings.registry_url)
    upgrade(engine, "0012")
    upgrade(engine, "0004")  # the capture branch's tables, as before 0013
    at = "2024-01-01 00:00:00+00"
    with engine.begin() as connection:
        for sql in (
            "INSERT INTO site (id, code, name, country, time_zone, created_at) "
            f"VALUES (1, 'A', 'A', 'GB', 'Europe/London', '{at}')",
            "INSERT INTO patient (id, local_id, pseudo_id, sex, consent_state, created_at, "
            f"updated_at, version, site_id) VALUES (1, 'MRN-1', 'p1', 'unknown', "
            f"'improvement_and_research', '{at}', '{at}', 1, 1)",
            "INSERT INTO consent_record (id, site_id, patient_id, state, method, recorded_at) "
            f"VALUES (1, 1, 1, 'improvement_and_research', 'paper', '{at}')",
            "INSERT INTO app_user (id, email, display_name, disabled, failed_logins, created_at) "
            f"VALUES (1, 'mum@example.org', 'Mum', false, 0, '{at}')",
            "INSERT INTO carer_link (id, site_id, patient_id, carer_user_id, "
            f"relationship_to_patient, created_at) VALUES (1, 1, 1, 1, 'mother', '{at}')",
            "INSERT INTO form_definition (id, name, title, patient_reported, created_at, "
            f"updated_at) VALUES (1, 'bp', 'BP', false, '{at}', '{at}')",
            "INSERT INTO form_version (id, form_id, version, definition, source_format, "
            f"created_at) VALUES (1, 1, 'v1', '{{}}', 'yaml', '{at}')",
            'INSERT INTO form_response (form_id, form_version_id, event_date, status, "values", '
            "patient_entered, created_at, updated_at, version, site_id, patient_id) VALUES "
            f"(1, 1, '2024-03-01', 'complete', '{{}}', false, '{at}', '{at}', 1, 1, 1)",
        ):
            connection.execute(text(sql))
    upgrade(engine)
    with engine.connect() as connection:
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("patient", "consent_record", "carer_link", "form_response")
        }
    engine.dispose()
    assert counts == {"patient": 1, "consent_record": 1, "carer_link": 1, "form_response": 1}
