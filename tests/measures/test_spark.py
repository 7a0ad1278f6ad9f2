"""Every built-in measure on Spark gives DuckDB's numbers, and the hand-computed ones.

Spark is an optional extra (``careloop[spark]`` and a Java runtime): without
them this module is skipped (a failure under ``CARELOOP_TEST_REQUIRE_SPARK=1``,
see tests/spark_support.py). The fixture is loaded once into its own Spark
database; every measure then runs once, as in the DuckDB/PostgreSQL comparison
of test_builtin_measures.py.
"""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from careloop.measures import builtin_measures, run_measures
from careloop.warehouse import Warehouse
from tests.measures import fixture
from tests.measures.test_builtin_measures import EXPECTED, PUCAI_MEDIANS
from tests.spark_support import SPARK_WARNINGS, require_spark, spark_url

require_spark()
pytestmark = [pytest.mark.spark, pytest.mark.slow, *SPARK_WARNINGS]

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
