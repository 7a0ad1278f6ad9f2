"""Fixtures of the warehouse tests: one warehouse per engine.

``engine_url`` is parametrised over DuckDB (a file in tmp_path) and
PostgreSQL (a fresh database from the suite's ``postgres_database``
fixture), so every test that takes it runs on both engines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from careloop.warehouse import Warehouse
from tests.spark_support import SPARK_MARKER

OMOP_SMALL = Path(__file__).resolve().parents[1] / "data" / "omop_small"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", SPARK_MARKER)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty warehouse, once per engine."""
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def warehouse(engine_url: str) -> Iterator[Warehouse]:
    """An empty read-write warehouse on each engine."""
    with Warehouse.connect(engine_url) as wh:
        yield wh


@pytest.fixture
def omop_small() -> Path:
    """The 40-person Eunomia slice (tests/data/omop_small, see its SOURCE.md)."""
    return OMOP_SMALL
