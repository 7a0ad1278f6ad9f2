"""Fixtures of the measure tests: the hand-built OMOP fixture on each engine.

``fixture_url`` is parametrised over DuckDB and PostgreSQL and loaded once
per module (building a PostgreSQL database per test would be slow).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from careloop.warehouse import Warehouse
from tests.measures import fixture
from tests.spark_support import SPARK_MARKER


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", SPARK_MARKER)


@pytest.fixture(scope="module")
def module_postgres(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL database that lives for one test module."""
    name = f"careloop_test_{uuid.uuid4().hex[:12]}"
    conninfo = postgres_server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        yield f"{postgres_server_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fixture_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a warehouse holding the fixture, once per engine and module."""
    if request.param == "duckdb":
        url = f"duckdb://{tmp_path_factory.mktemp('wh') / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("module_postgres")
    with Warehouse.connect(url) as wh:
        fixture.load(wh)
    return url


@pytest.fixture
def fixture_warehouse(fixture_url: str) -> Iterator[Warehouse]:
    with Warehouse.connect(fixture_url) as wh:
        yield wh


@pytest.fixture
def empty_duckdb(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse.connect(f"duckdb://{tmp_path / 'empty.duckdb'}") as wh:
        yield wh
