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
        *("api_token", "web_session", "audit_entry", "audit_head", "provenance_record"),
        *("login_lockout", "installation", "account_invitation"),
        *("form_definition", "form_version", "form_response", "prom_link"),
        *("ko_version", "ko_transition", "ko_deployment", "cds_client", "cds_jti"),
        *("cds_invocation", "cds_card", "cds_variant_assignment", "cds_feedback"),
        *("community", "community_member", "community_invitation", "charter_version"),
        *("community_proposal", "community_vote", "community_priority", "community_decision"),
        *("nasss_assessment", "community_knowledge", "learning_cycle", "learning_cycle_measure"),
        *("community_aim", "maturity_rating", "toolkit_item", "toolkit_rating", "toolkit_use"),
        *("cycle_behaviour_design", "cycle_findings"),
    }


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
