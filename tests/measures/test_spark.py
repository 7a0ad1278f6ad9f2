"""A subset of the built-in measures on Spark gives DuckDB's numbers.

Spark is an optional extra (``careloop[spark]`` and a Java runtime); this
environment has neither, so the test skips here and runs where Spark is
installed.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from careloop.interop import Warehouse
from careloop.measures import builtin_measures, run_measures
from tests.measures import fixture

pytest.importorskip("pyspark", reason="Spark is not installed (pip install 'careloop[spark]')")
pytestmark = pytest.mark.slow

SUBSET = ("remission-prevalence", "growth-assessed", "pucai-median", "emergency-visits")


def test_a_subset_of_builtin_measures_matches_duckdb_on_spark(tmp_path):
    measures = [m for m in builtin_measures() if m.id in SUBSET]
    kwargs = {"start": date(2024, 1, 1), "end": date(2024, 3, 31), "by": ["site"]}
    frames = []
    for url in (f"duckdb://{tmp_path / 'w.duckdb'}", "spark://local"):
        with Warehouse.connect(url) as wh:
            fixture.load(wh)
            run = run_measures(wh, measures, **kwargs)
        assert run.failures == ()
        frames.append(run.results)
    pd.testing.assert_frame_equal(frames[0], frames[1])
