"""The engines' harmless deprecation warnings, silenced around every Ibis read."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

ENGINE_WARNING_MESSAGES = (
    r"fetch_(arrow_table|arrow_reader|record_batch)\(\) is deprecated",
    r"The 'future\.infer_string' option is deprecated",
    # PySpark 4.0's toPandas() passes astype(copy=False), deprecated in pandas 3.
    r"The copy keyword is deprecated",
)
"""Deprecation warnings that Ibis 12 causes in DuckDB 2, PySpark 4.0 and pandas 3 (regexes)."""

SPARK_RESOURCE_WARNING = r"unclosed <socket\.socket"
"""PySpark 4.0 drops the local socket it reads each result from without closing it."""


@contextlib.contextmanager
def quiet_engine_warnings() -> Iterator[None]:
    """Silence two deprecations that Ibis 12 triggers in its dependencies.

    DuckDB 2 deprecates the ``fetch_*`` methods Ibis still calls, and pandas 3
    deprecates the ``future.infer_string`` option Ibis still reads when it
    converts results. Both are harmless (the data are the same); without this,
    every Ibis read warns, and the test suite turns warnings into errors.
    """
    with warnings.catch_warnings():
        for message in ENGINE_WARNING_MESSAGES:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=SPARK_RESOURCE_WARNING, category=ResourceWarning)
        yield
