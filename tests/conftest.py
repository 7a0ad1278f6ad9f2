"""Fixtures shared by the whole suite.

PostgreSQL: tests that need it take ``postgres_database`` (a fresh, empty
database on the server named by ``CARELOOP_TEST_DATABASE_URL``, dropped
afterwards). Without that variable they are skipped, unless
``CARELOOP_TEST_REQUIRE_POSTGRES=1`` (set by .ci/run), where a missing server
is a failure.

Two workers: `make test` runs the suite with pytest-xdist (``-n 2 --dist
loadscope``): every test module is one unit of work, run on one worker, so a
module-scoped fixture is built once. The hook below is for ``--dist
loadgroup`` (modules plus cross-module ``xdist_group`` marks, the Spark tests
in the group ``spark``); in a first try it did not keep modules together, so
it is not the default yet. Anything a test creates outside its ``tmp_path``
(a PostgreSQL database, a port) has a name or number of its own.

Shared data: ``shared_data`` is ``../shared/data`` beside the checkout (CI
always has it); tests that need a large set from there skip with a reason
when it is absent.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"


def _postgres_server_url() -> str | None:
    url = os.environ.get("CARELOOP_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CARELOOP_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                "CARELOOP_TEST_REQUIRE_POSTGRES=1 but CARELOOP_TEST_DATABASE_URL is not set"
            )
        return None
    return url


SPARK_GROUP = "spark"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, keep each module (or its xdist_group) on one worker.

    Runs before pytest-xdist turns the groups into work units. A test with a
    group of its own keeps it; a Spark test joins the ``spark`` group; any other
    test is grouped with its module.
    """
    # pytest-xdist sets ``loadgroup`` on its workers (where ``dist`` reads "no").
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        if item.get_closest_marker("spark") is not None:
            item.add_marker(pytest.mark.xdist_group(SPARK_GROUP))
        else:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """SQLAlchemy URL of the PostgreSQL server's maintenance database."""
    url = _postgres_server_url()
    if url is None:
        pytest.skip("no PostgreSQL server: set CARELOOP_TEST_DATABASE_URL")
    return url


def _admin_execute(server_url: str, sql: str) -> None:
    import psycopg

    conninfo = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _with_database(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
def postgres_database(postgres_server_url: str) -> Iterator[str]:
    """A fresh empty PostgreSQL database; yields its SQLAlchemy URL (psycopg 3)."""
    name = f"careloop_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(postgres_server_url, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(postgres_server_url, name)
    finally:
        _admin_execute(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's shared real data sets (../shared/data)."""
    for candidate in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if candidate.is_dir():
            return candidate
    pytest.skip("../shared/data is not beside this checkout")


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Small data files copied into tests/data, each folder with its SOURCE.md."""
    return TEST_DATA


from tests.foundation import api, database_url, installation  # noqa: E402, F401  (shared fixtures)
from tests.live import chromium, page  # noqa: E402, F401
from tests.smtp import smtp_inbox  # noqa: E402, F401
