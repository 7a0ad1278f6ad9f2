"""CDS Hooks tests need sites, not users: a lighter ``installation`` (no user accounts to hash)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.foundation import Installation, build_installation, make_settings


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def installation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installation]:
    """Sites A and B and the operator, on SQLite or PostgreSQL, shared by a module's tests."""
    from tests.conftest import _admin_execute, _postgres_server_url, _with_database

    tmp = tmp_path_factory.mktemp("installation")
    database_url = server = None
    if request.param == "postgresql":
        server = _postgres_server_url()
        if server is None:
            pytest.skip("no PostgreSQL server: set CARELOOP_TEST_DATABASE_URL")
        name = f"careloop_test_{uuid.uuid4().hex[:12]}"
        _admin_execute(server, f'CREATE DATABASE "{name}"')
        database_url = _with_database(server, name)
    settings = make_settings(tmp, database_url, public_base_url="http://testserver")
    inst = build_installation(settings, with_users=False)
    try:
        yield inst
    finally:
        inst.registry.close()
        if server is not None and database_url is not None:
            db = database_url.rpartition("/")[2]
            _admin_execute(server, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
