"""Data-quality checks over the OMOP warehouse, after OHDSI's Data Quality Dashboard.

- :mod:`~careloop.warehouse.quality.catalogue`: what each check counts
  (:data:`CHECKS`), its category and default threshold;
- :mod:`~careloop.warehouse.quality.engine`: :func:`run_checks` counts every
  instance in the warehouse, a few dozen queries on any engine;
  :func:`completeness_by_site` per care site and period;
- :mod:`~careloop.warehouse.quality.report`: :class:`QualityReport`, its page,
  and the results kept over time (:func:`store_quality_report`,
  :func:`quality_history`).
"""

from careloop.warehouse.quality.catalogue import (
    CHECKS,
    DEFAULT_MEASUREMENT_RANGES,
    FIELD_RANGES,
    CheckDefinition,
    CheckResult,
    checks_markdown,
)
from careloop.warehouse.quality.engine import completeness_by_site, run_checks
from careloop.warehouse.quality.report import (
    RESULT_SCHEMA,
    RESULT_TABLE,
    QualityReport,
    latest_quality_report,
    quality_history,
    store_quality_report,
)

__all__ = [
    "CHECKS",
    "DEFAULT_MEASUREMENT_RANGES",
    "FIELD_RANGES",
    "RESULT_SCHEMA",
    "RESULT_TABLE",
    "CheckDefinition",
    "CheckResult",
    "QualityReport",
    "checks_markdown",
    "completeness_by_site",
    "latest_quality_report",
    "quality_history",
    "run_checks",
    "store_quality_report",
]
