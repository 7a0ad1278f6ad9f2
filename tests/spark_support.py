"""When the Spark tests run: pyspark importable and ``java`` on PATH.

The Spark tests (``@pytest.mark.spark``) are a small subset: the warehouse on
the Eunomia slice and every built-in measure on the hand-built fixture, each
checked against DuckDB. They share the process's one Spark session (starting
it takes about ten seconds). Without pyspark or Java they are skipped with the
reason, unless ``CARELOOP_TEST_REQUIRE_SPARK=1``, where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid

import pytest

SPARK_MARKER = "spark: runs on Apache Spark in local mode (pyspark and a Java runtime)"

SPARK_WARNINGS = [
    # PySpark 4.0 leaves the local socket of each result for the garbage collector.
    pytest.mark.filterwarnings(r"ignore:unclosed <socket\.socket:ResourceWarning"),
]


def missing_spark() -> str | None:
    """Why Spark cannot run here, or ``None`` when it can."""
    missing = []
    if importlib.util.find_spec("pyspark") is None:
        missing.append("pyspark (pip install 'careloop[spark]')")
    if shutil.which("java") is None:
        missing.append("java on PATH (Debian: apt-get install default-jre-headless)")
    return " and ".join(missing) or None


def require_spark() -> None:
    """Skip the calling test module unless Spark can run (fail if it is required)."""
    missing = missing_spark()
    if missing is None:
        return
    if os.environ.get("CARELOOP_TEST_REQUIRE_SPARK") == "1":
        pytest.fail(f"CARELOOP_TEST_REQUIRE_SPARK=1 but Spark needs {missing}", pytrace=False)
    pytest.skip(f"Spark is not available: needs {missing}", allow_module_level=True)


def spark_url(prefix: str) -> str:
    """A ``spark://local`` URL with a database of its own (tables of one test module)."""
    return f"spark://local?database={prefix}_{uuid.uuid4().hex[:8]}"
