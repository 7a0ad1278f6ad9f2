"""The warehouse and the measures on Spark (local mode), each compared with DuckDB.

A small subset of the warehouse and measure tests, run on the process's one
Spark session (tests/spark_support.py says when it runs). Every Spark test is
in this one module, so that a parallel run (pytest-xdist, one module per
worker) never starts two Spark sessions at once.

The warehouse: the Eunomia slice is loaded once into a Spark database of this
module's own and once into an in-memory DuckDB; every check compares the two.
The measures: the hand-built fixture is loaded into another Spark database;
every built-in measure gives DuckDB's numbers and the hand-computed ones.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import pandas as pd
import pytest

from careloop.core.errors import ValidationFailed
from careloop.measures import builtin_measures, run_measures
from careloop.warehouse import TABLES, Warehouse, load_omop_csv, quiet_engine_warnings
from careloop.warehouse.omop_csv import LoadReport
from tests.measures import fixture
from tests.measures.test_builtin_measures import EXPECTED, PUCAI_MEDIANS
from tests.spark_support import SPARK_WARNINGS, require_spark, spark_url
from tests.warehouse.conftest import OMOP_SMALL

require_spark()
pytestmark = [pytest.mark.spark, pytest.mark.slow, *SPARK_WARNINGS]

Loaded = tuple[Warehouse, LoadReport, Warehouse, LoadReport]


@pytest.fixture(scope="module")
def loaded() -> Iterator[Loaded]:
    """The slice in Spark and in DuckDB, with both load reports."""
    with (
        Warehouse.connect(spark_url("careloop_omop")) as spark,
        Warehouse.connect("duckdb://") as duck,
    ):
        spark_report = load_omop_csv(spark, OMOP_SMALL)
        duck_report = load_omop_csv(duck, OMOP_SMALL)
        yield spark, spark_report, duck, duck_report


def _frame(expr: ibis.Table, order: list[str]) -> pd.DataFrame:
    with quiet_engine_warnings():
        frame = expr.execute()
    return frame.sort_values(order).reset_index(drop=True)


def test_the_slice_loads_every_cdm_table_with_duckdbs_counts(loaded):
    spark, spark_report, duck, duck_report = loaded
    assert spark.engine == "spark"
    cdm = [t for t in spark.list_tables() if not t.startswith("careloop_src_")]
    assert cdm == sorted(TABLES)
    # The person-level files went to the loaded OMOP files' own store as well.
    assert spark.row_counts(["careloop_src_omop__person"]) == {"careloop_src_omop__person": 40}
    assert dict(spark_report.tables) == dict(duck_report.tables)
    assert spark_report.tables["person"] == 40
    assert spark_report.rows_in == duck_report.rows_in > 5000
    loaded_tables = [t for t, n in duck_report.tables.items() if n]
    assert spark.row_counts(loaded_tables) == duck.row_counts(loaded_tables)


def test_spark_tables_have_the_cdm_columns_and_types(loaded):
    spark, _, duck, _ = loaded
    for name in ("person", "visit_occurrence", "measurement", "observation", "concept"):
        got = spark.table(name).schema()
        want = duck.table(name).schema()
        assert list(got.names) == list(want.names), name
        assert [_plain(t) for t in got.types] == [_plain(t) for t in want.types], name


def _plain(dtype: dt.DataType) -> dt.DataType:
    # Spark keeps no NOT NULL on file-based tables, and its timestamps have no
    # declared scale (they are microseconds, as DuckDB's scale 6).
    if dtype.is_timestamp():
        return dt.Timestamp(timezone=dtype.timezone)
    return dtype.copy(nullable=True)


def test_read_queries_answer_as_on_duckdb(loaded):
    spark, _, duck, _ = loaded
    answers = []
    for wh in (spark, duck):
        person = wh.table("person")
        co = wh.table("condition_occurrence")
        concept = wh.table("concept")
        visits = wh.table("visit_occurrence")
        by_sex = person.group_by("gender_concept_id").agg(
            n=person.count(), oldest=person.year_of_birth.min()
        )
        named = co.join(concept, co.condition_concept_id == concept.concept_id)
        conditions = named.group_by("concept_name").agg(
            persons=named.person_id.nunique(), rows=named.count()
        )
        recent = visits.filter(visits.visit_start_date >= ibis.date(2000, 1, 1))
        per_year = recent.group_by(year=recent.visit_start_date.year()).agg(
            visits=recent.count(), last=recent.visit_end_date.max()
        )
        answers.append(
            (
                _frame(by_sex, ["gender_concept_id"]),
                _frame(conditions, ["concept_name"]),
                _frame(per_year, ["year"]),
            )
        )
    for got, want in zip(answers[0], answers[1], strict=True):
        assert len(want) > 0
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    gi_bleed = answers[0][1].set_index("concept_name").loc["Gastrointestinal hemorrhage"]
    assert gi_bleed.persons == 20


def test_replace_table_from_pandas_and_from_ibis_on_spark(loaded):
    spark, _, _, _ = loaded
    source = spark.table("cdm_source")
    with quiet_engine_warnings():
        before = source.execute()
    renamed = source.mutate(cdm_source_name=ibis.literal("careloop test"))
    assert spark.replace_table("cdm_source", renamed) == 1
    with quiet_engine_warnings():
        after = spark.table("cdm_source").execute()
    assert after.cdm_source_name.tolist() == ["careloop test"]
    assert spark.replace_table("cdm_source", before) == 1
    with quiet_engine_warnings():
        assert spark.table("cdm_source").execute().equals(before)
    assert not [
        t for t in spark.list_tables() if t.startswith(("careloop_stage_", "careloop_rejects_"))
    ]


def test_a_bad_file_on_spark_keeps_the_previous_contents(loaded, tmp_path: Path):
    spark, _, _, _ = loaded
    folder = tmp_path / "omop"
    folder.mkdir()
    shutil.copy(OMOP_SMALL / "person.csv", folder / "person.csv")
    visits = (OMOP_SMALL / "visit_occurrence.csv").read_text().splitlines()
    visits[5] = visits[5].replace(",", ",not-a-number,", 1)
    (folder / "visit_occurrence.csv").write_text("\n".join(visits) + "\n")
    person = pd.read_csv(folder / "person.csv").head(3)
    person.to_csv(folder / "person.csv", index=False)
    with pytest.raises(ValidationFailed, match=r"visit_occurrence\.csv"):
        load_omop_csv(spark, folder)
    assert spark.row_counts(["person", "visit_occurrence"]) == {
        "person": 40,
        "visit_occurrence": 30,
    }
    assert not [
        t for t in spark.list_tables() if t.startswith(("careloop_stage_", "careloop_rejects_"))
    ]


# The measures on Spark.

KWARGS = {"start": date(2023, 6, 1), "end": date(2024, 3, 31), "by": ["site", "sex", "age_band"]}


@pytest.fixture(scope="module")
def both_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every built-in measure's results on DuckDB and on Spark (same fixture)."""
    frames = []
    duck_url = f"duckdb://{tmp_path_factory.mktemp('wh') / 'w.duckdb'}"
    for url in (duck_url, spark_url("careloop_measures")):
        with Warehouse.connect(url) as wh:
            fixture.load(wh)
            run = run_measures(wh, builtin_measures(), **KWARGS)
        assert run.failures == ()
        frames.append(run.results)
    return frames[0], frames[1]


def test_every_builtin_measure_gives_identical_results_on_duckdb_and_spark(both_results):
    duck, spark = both_results
    assert len(spark) > 300
    assert sorted(set(spark.measure_id)) == sorted(m.id for m in builtin_measures())
    pd.testing.assert_frame_equal(duck, spark)


@pytest.mark.parametrize("measure_id", sorted(EXPECTED))
def test_spark_gives_the_hand_computed_numbers(both_results, measure_id):
    _, spark = both_results
    rows = spark[
        (spark.measure_id == measure_id)
        & (spark.site == "")
        & (spark.stratum == "")
        & (spark.period_start >= date(2024, 1, 1))
    ].sort_values("period_start")
    assert list(zip(rows.denominator, rows.numerator, strict=True)) == EXPECTED[measure_id]
    if measure_id == "pucai-median":
        assert list(rows.value) == PUCAI_MEDIANS
    elif measure_id != "emergency-visits":
        for (den, num), value in zip(EXPECTED[measure_id], rows.value, strict=True):
            assert (math.isnan(value) and den == 0) or value == pytest.approx(num / den)
