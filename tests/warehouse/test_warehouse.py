"""Warehouse URLs, schema creation and atomic replacement on DuckDB and PostgreSQL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from careloop.core.errors import ConfigurationError, InputError, NotFound
from careloop.core.settings import Settings
from careloop.warehouse import TABLES, Warehouse, parse_warehouse_url
from tests.warehouse.engine_warnings import ENGINE_WARNINGS

pytestmark = ENGINE_WARNINGS


def _person(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": ids,
            "gender_concept_id": [8507] * len(ids),
            "year_of_birth": [1980] * len(ids),
            "race_concept_id": [0] * len(ids),
            "ethnicity_concept_id": [0] * len(ids),
        }
    )


@pytest.mark.parametrize(
    ("url", "engine", "path"),
    [
        ("duckdb:///var/lib/careloop/w.duckdb", "duckdb", Path("/var/lib/careloop/w.duckdb")),
        ("duckdb://data/w.duckdb", "duckdb", Path("data/w.duckdb")),
        ("duckdb://", "duckdb", None),
        ("duckdb://:memory:", "duckdb", None),
        ("postgres://u@h/db", "postgres", None),
        ("postgresql://u@h/db", "postgres", None),
        ("postgresql+psycopg://u@h:5432/db", "postgres", None),
        ("spark://local", "spark", None),
    ],
)
def test_warehouse_urls_name_their_engine(url, engine, path):
    location = parse_warehouse_url(url)
    assert location.engine == engine
    assert location.path == path


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///x.db", "warehouse.duckdb", ""])
def test_an_unsupported_url_names_the_supported_schemes(url):
    with pytest.raises(ConfigurationError) as info:
        Warehouse.connect(url)
    message = str(info.value)
    assert "duckdb://" in message and "postgresql+psycopg://" in message


def test_a_password_never_appears_in_the_url_shown():
    location = parse_warehouse_url("postgresql+psycopg://me:s3cret@db.example/omop")
    assert "s3cret" not in location.url and "***" in location.url
    assert "s3cret" in (location.conninfo or "")


def test_spark_without_pyspark_says_to_install_the_extra():
    if importlib.util.find_spec("pyspark") is not None:
        pytest.skip("pyspark is installed; the Spark tests cover it")
    with pytest.raises(ConfigurationError, match=r"careloop\[spark\]"):
        Warehouse.connect("spark://local")


@pytest.mark.parametrize(
    ("url", "master", "database"),
    [
        ("spark://local", "local[*]", None),
        ("spark://local[2]", "local[2]", None),
        ("spark://local[*]?database=omop_1", "local[*]", "omop_1"),
    ],
)
def test_spark_urls_name_the_local_master_and_database(url, master, database):
    location = parse_warehouse_url(url)
    assert (location.spark_master, location.spark_database) == (master, database)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("spark://cluster.example:7077", "local mode"),
        ("spark://local[0]", "local mode"),
        ("spark://local?database=a-b", "database=NAME"),
        ("spark://local?db=x", "database=NAME"),
    ],
)
def test_spark_urls_other_than_local_mode_are_refused(url, message):
    with pytest.raises(ConfigurationError, match=message):
        Warehouse.connect(url)


def test_an_unreachable_postgres_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="Cannot connect"):
        Warehouse.connect("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_the_default_warehouse_is_a_duckdb_file_in_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    with Warehouse.from_settings(settings) as wh:
        assert wh.engine == "duckdb"
        wh.create_schema(tables=["person"])
    assert (tmp_path / "data" / "warehouse.duckdb").exists()


def test_create_schema_makes_every_cdm_table_and_is_idempotent(warehouse):
    first = warehouse.create_schema()
    assert set(first.created) == set(TABLES)
    again = warehouse.create_schema()
    assert again.created == () and set(again.existing) == set(TABLES)
    assert again.missing_columns == {}
    person = warehouse.table("person")
    assert person.schema()["person_id"].nullable is False
    assert person.count().execute() == 0


def test_a_missing_table_is_not_found(warehouse):
    with pytest.raises(NotFound, match="create_schema"):
        warehouse.table("person")


def test_required_columns_are_enforced_by_the_engine(warehouse):
    warehouse.create_schema(tables=["person"])
    bad = _person([1]).drop(columns=["year_of_birth"])
    with pytest.raises(InputError, match="year_of_birth"):
        warehouse.replace_table("person", bad)


def test_replace_table_swaps_contents_from_pandas_and_from_ibis(warehouse):
    warehouse.create_schema(tables=["person"])
    assert warehouse.replace_table("person", _person([1, 2, 3])) == 3
    person = warehouse.table("person")
    assert warehouse.replace_table("person", person.filter(person.person_id >= 2)) == 2
    ids = sorted(warehouse.table("person").person_id.execute().tolist())
    assert ids == [2, 3]


def test_a_failed_replacement_leaves_the_old_contents_and_no_staging_tables(warehouse):
    warehouse.create_schema(tables=["person", "death"])
    warehouse.replace_table("person", _person([1, 2]))
    with pytest.raises(RuntimeError), warehouse.replacing(["person", "death"]) as swap:
        swap.insert("person", _person([7, 8, 9]))
        raise RuntimeError("the load failed half way")
    assert sorted(warehouse.table("person").person_id.execute().tolist()) == [1, 2]
    assert not [t for t in warehouse.list_tables() if t.startswith("careloop_stage_")]


def test_staging_tables_left_by_a_stopped_refresh_are_dropped_by_the_next_one(tmp_path):
    # A refresh killed mid-fill leaves its DuckDB staging tables (they are filled in
    # autocommit); the next replacement in a new process drops them.
    path = tmp_path / "wh.duckdb"
    with Warehouse.connect(f"duckdb:///{path}") as first:
        first.create_schema(tables=["person"])
        first._execute('CREATE TABLE "careloop_stage_0123456789_person" (person_id BIGINT)')
    with Warehouse.connect(f"duckdb:///{path}") as second:
        second.replace_table("person", _person([1]))
        assert not [t for t in second.list_tables() if t.startswith("careloop_stage_")]
        assert second.table("person").person_id.execute().tolist() == [1]


def test_readers_see_the_old_or_the_new_contents_never_half(engine_url):
    with Warehouse.connect(engine_url) as writer:
        writer.create_schema(tables=["person"])
        writer.replace_table("person", _person([1, 2]))
        with writer.replacing(["person"]) as swap:
            swap.insert("person", _person([10, 11, 12]))
            # Another connection, mid-replacement: still the old table, whole.
            assert _count_from_another_connection(writer) == 2
        assert _count_from_another_connection(writer) == 3


def _count_from_another_connection(writer: Warehouse) -> int:
    if writer.engine == "duckdb":
        cursor = writer._native.cursor()
        try:
            return int(cursor.execute("SELECT count(*) FROM person").fetchall()[0][0])
        finally:
            cursor.close()
    assert writer.location.conninfo is not None
    with psycopg.connect(writer.location.conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM person").fetchone()
        assert row is not None
        return int(row[0])


def test_a_read_only_duckdb_warehouse_refuses_writes(tmp_path):
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    with Warehouse.connect(url) as wh:
        wh.create_schema(tables=["person"])
    with Warehouse.connect(url, read_only=True) as ro:
        assert ro.table("person").count().execute() == 0
        with pytest.raises(InputError, match="read-only"):
            ro.create_schema()


def test_a_read_only_warehouse_must_exist(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        Warehouse.connect(f"duckdb://{tmp_path / 'absent.duckdb'}", read_only=True)
