"""Run measures on the warehouse: result rows per measure × site × period × stratum.

:func:`run_measures` runs a batch; a measure that fails is reported in
:attr:`MeasureRun.failures` and the others still run. :func:`store_run`
appends the results to ``careloop_measure_result`` and the run's provenance
(inputs, definition hashes, warehouse row counts, code version) to
``careloop_measure_run``.
"""

from __future__ import annotations

from careloop.measures.runner.computing import (
    compute_measure,
)
from careloop.measures.runner.concepts import _Tables as _Tables
from careloop.measures.runner.concepts import (
    resolve_concepts,
    tables_needed,
)
from careloop.measures.runner.reading import (
    LatestRuns,
    data_extent,
    latest_runs,
    load_results,
)
from careloop.measures.runner.result_tables import (
    NETWORK,
    NO_SITE,
    RESULT_COLUMNS,
    RESULT_SCHEMA,
    RESULT_TABLE,
    RUN_SCHEMA,
    RUN_TABLE,
    SMALL_DENOMINATOR,
)
from careloop.measures.runner.running import _OMOP_READ as _OMOP_READ
from careloop.measures.runner.running import (
    MeasureFailure,
    MeasureRun,
    run_measures,
    store_run,
)

# _Tables and _OMOP_READ stay importable from here: measures.patient_lists and
# measures.sharing use them.
__all__ = [
    "NETWORK",
    "NO_SITE",
    "RESULT_COLUMNS",
    "RESULT_SCHEMA",
    "RESULT_TABLE",
    "RUN_SCHEMA",
    "RUN_TABLE",
    "SMALL_DENOMINATOR",
    "LatestRuns",
    "MeasureFailure",
    "MeasureRun",
    "compute_measure",
    "data_extent",
    "latest_runs",
    "load_results",
    "resolve_concepts",
    "run_measures",
    "store_run",
    "tables_needed",
]
