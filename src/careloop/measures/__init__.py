"""careloop.measures: quality measures defined once in YAML, computed on any warehouse.

- :func:`parse_definition` / :func:`load_definition` validate one measure;
  :func:`load_catalog` gathers built-ins, a folder and entry-point plugins.
- :func:`run_measures` computes results per measure × site × period × stratum
  through Ibis; :func:`store_run` keeps them in the warehouse with provenance.
"""

from careloop.measures.catalog import (
    ENTRY_POINT_GROUP,
    MEASURES_DIR_ENV,
    MeasureCatalog,
    builtin_measures,
    load_catalog,
    load_directory,
)
from careloop.measures.compiler import CompiledMeasure, Period, periods_between
from careloop.measures.definition import (
    CriteriaGroup,
    Criterion,
    Lookback,
    MeasureDefinition,
    ValueCondition,
    load_definition,
    parse_definition,
    parse_yaml,
)
from careloop.measures.runner import (
    RESULT_COLUMNS,
    RESULT_TABLE,
    RUN_TABLE,
    MeasureFailure,
    MeasureRun,
    compute_measure,
    load_results,
    resolve_concepts,
    run_measures,
    store_run,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "MEASURES_DIR_ENV",
    "RESULT_COLUMNS",
    "RESULT_TABLE",
    "RUN_TABLE",
    "CompiledMeasure",
    "CriteriaGroup",
    "Criterion",
    "Lookback",
    "MeasureCatalog",
    "MeasureDefinition",
    "MeasureFailure",
    "MeasureRun",
    "Period",
    "ValueCondition",
    "builtin_measures",
    "compute_measure",
    "load_catalog",
    "load_definition",
    "load_directory",
    "load_results",
    "parse_definition",
    "parse_yaml",
    "periods_between",
    "resolve_concepts",
    "run_measures",
    "store_run",
]
