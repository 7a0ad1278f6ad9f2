"""careloop.measures: quality measures defined once in YAML, computed on any warehouse.

- :func:`parse_definition` / :func:`load_definition` validate one measure;
  :func:`load_catalog` gathers built-ins, a folder and entry-point plugins.
- :func:`run_measures` computes results per measure × site × period × stratum
  through Ibis; :func:`store_run` keeps them in the warehouse with provenance.
- :func:`export_results` writes CSV, Parquet, JSON or FHIR MeasureReports
  (``shared=True``: after disclosure control, :func:`share_results`).
- :func:`patient_list` gives the audited list of patients behind a number.
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
from careloop.measures.export import export_results, measure_report_bundle, measure_reports
from careloop.measures.patient_lists import PatientList, PatientListEntry, patient_list
from careloop.measures.plain_language import describe_definition
from careloop.measures.runner import (
    RESULT_COLUMNS,
    RESULT_TABLE,
    RUN_TABLE,
    LatestRuns,
    MeasureFailure,
    MeasureRun,
    compute_measure,
    data_extent,
    latest_runs,
    load_results,
    resolve_concepts,
    run_measures,
    store_run,
)
from careloop.measures.sharing import share_results
from careloop.measures.validation import FileCheck, validate_files

__all__ = [
    "ENTRY_POINT_GROUP",
    "MEASURES_DIR_ENV",
    "RESULT_COLUMNS",
    "RESULT_TABLE",
    "RUN_TABLE",
    "CompiledMeasure",
    "CriteriaGroup",
    "Criterion",
    "FileCheck",
    "LatestRuns",
    "Lookback",
    "MeasureCatalog",
    "MeasureDefinition",
    "MeasureFailure",
    "MeasureRun",
    "PatientList",
    "PatientListEntry",
    "Period",
    "ValueCondition",
    "builtin_measures",
    "compute_measure",
    "data_extent",
    "describe_definition",
    "export_results",
    "latest_runs",
    "load_catalog",
    "load_definition",
    "load_directory",
    "load_results",
    "measure_report_bundle",
    "measure_reports",
    "parse_definition",
    "parse_yaml",
    "patient_list",
    "periods_between",
    "resolve_concepts",
    "run_measures",
    "share_results",
    "store_run",
    "validate_files",
]
