"""The catalogue of data-quality checks: what each check counts, its category and threshold.

After OHDSI's Data Quality Dashboard. Each entry of :data:`CHECKS` is a
parameterised check (DQD's ``checkName``) that expands into one instance per
table, column or concept it applies to, e.g. ``is_required.person.year_of_birth``.
The three DQD categories are kept: *conformance* (the data follow the CDM's
rules), *completeness* (values are present) and *plausibility* (values are
believable). :mod:`careloop.warehouse.quality.engine` counts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Category = Literal["conformance", "completeness", "plausibility"]
Level = Literal["table", "field", "concept"]
Status = Literal["pass", "fail", "info", "error"]
Period = Literal["month", "quarter", "year"]

DEFAULT_MEASUREMENT_RANGES: Mapping[int, tuple[float, float]] = MappingProxyType(
    {
        # LOINC standard concepts; wide enough for either common unit.
        3025315: (0.0, 700.0),  # Body weight (kg; lb up to 700 would still be flagged)
        3036277: (20.0, 300.0),  # Body height (cm)
        3038553: (5.0, 150.0),  # Body mass index
        3027018: (0.0, 350.0),  # Heart rate (/min)
        3004249: (0.0, 400.0),  # Systolic blood pressure (mm Hg)
        3012888: (0.0, 300.0),  # Diastolic blood pressure (mm Hg)
    }
)
"""Plausible ``value_as_number`` ranges per measurement concept used by default."""

FIELD_RANGES: Mapping[tuple[str, str], tuple[float | None, float | None]] = MappingProxyType(
    {
        ("person", "month_of_birth"): (1, 12),
        ("person", "day_of_birth"): (1, 31),
        ("drug_exposure", "days_supply"): (0, 365),
        ("drug_exposure", "refills"): (0, 24),
        ("drug_exposure", "quantity"): (0, None),
        ("procedure_occurrence", "quantity"): (0, None),
        ("device_exposure", "quantity"): (0, None),
        ("specimen", "quantity"): (0, None),
        ("drug_era", "drug_exposure_count"): (1, None),
        ("drug_era", "gap_days"): (0, None),
        ("condition_era", "condition_occurrence_count"): (1, None),
        ("dose_era", "dose_value"): (0, None),
        ("provider", "year_of_birth"): (1850, None),
        ("location", "latitude"): (-90, 90),
        ("location", "longitude"): (-180, 180),
    }
)
"""Plausible ranges (low, high; ``None`` = open) of numeric fields, beyond year of birth."""


@dataclass(frozen=True)
class CheckDefinition:
    """One parameterised check of the registry (DQD's ``checkName``)."""

    name: str
    """Stable identifier, snake case (e.g. ``is_required``)."""
    category: Category
    """conformance, completeness or plausibility."""
    level: Level
    """Whether an instance applies to a table, a field or a concept."""
    description: str
    """What a failing row is; ``{table}``, ``{column}``, ``{low}``… are filled per instance."""
    threshold: float | None
    """Default: fail when more than this percent of the denominator fails (None: informational)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check instance."""

    check_id: str
    """``name.table[.column][.concept]``, stable across runs (for charting over time)."""
    check_name: str
    """The registry check it instantiates."""
    category: Category
    """conformance, completeness or plausibility."""
    level: Level
    """table, field or concept."""
    table: str | None
    """The CDM table checked."""
    column: str | None
    """The column checked, for field- and concept-level checks."""
    concept_id: int | None
    """The concept, for concept-level checks."""
    description: str
    """What was counted, in words."""
    threshold: float | None
    """Percent of failing rows tolerated; None for informational checks."""
    failing_rows: int
    """Rows (or persons, values, cells) that fail."""
    denominator: int
    """Rows (or persons, values, cells) examined."""
    percent: float
    """``100 * failing_rows / denominator`` (0 when nothing was examined)."""
    status: Status
    """``pass``, ``fail``, ``info`` (no threshold) or ``error`` (the check could not run)."""
    error: str | None = None
    """Why the check could not run, when status is ``error``."""

    @property
    def passed(self) -> bool:
        """True unless the check failed or could not run."""
        return self.status in ("pass", "info")


# -- the registry -------------------------------------------------------------------------

CHECKS: Mapping[str, CheckDefinition] = MappingProxyType(
    {
        d.name: d
        for d in (
            CheckDefinition(
                "cdm_table", "conformance", "table", "the CDM table {table} does not exist", 0.0
            ),
            CheckDefinition(
                "cdm_field",
                "conformance",
                "table",
                "columns of CDM table {table} that are missing",
                0.0,
            ),
            CheckDefinition(
                "cdm_source_present",
                "conformance",
                "table",
                "cdm_source does not hold exactly one row",
                0.0,
            ),
            CheckDefinition(
                "is_primary_key",
                "conformance",
                "field",
                "rows of {table} whose {column} repeats another row's",
                0.0,
            ),
            CheckDefinition(
                "is_foreign_key",
                "conformance",
                "field",
                "rows of {table} whose {column} is not in {fk_table}",
                0.0,
            ),
            CheckDefinition(
                "concept_known",
                "conformance",
                "field",
                "rows of {table} whose {column} is not in concept (0 allowed)",
                0.0,
            ),
            CheckDefinition(
                "fk_domain",
                "conformance",
                "field",
                "rows of {table} whose {column} is not a {domain} concept",
                0.0,
            ),
            CheckDefinition(
                "standard_valid_concept",
                "conformance",
                "field",
                "rows of {table} whose {column} is not a standard, valid concept",
                0.0,
            ),
            CheckDefinition(
                "value_length",
                "conformance",
                "field",
                "rows of {table} whose {column} is longer than {length} characters",
                0.0,
            ),
            CheckDefinition(
                "observation_period_overlap",
                "conformance",
                "table",
                "observation periods that overlap another of the same person",
                0.0,
            ),
            CheckDefinition(
                "is_required",
                "completeness",
                "field",
                "rows of {table} with no {column} (required by the CDM)",
                0.0,
            ),
            CheckDefinition(
                "measure_value_completeness",
                "completeness",
                "field",
                "rows of {table} with no {column}",
                None,
            ),
            CheckDefinition(
                "standard_concept_record_completeness",
                "completeness",
                "field",
                "rows of {table} whose {column} is 0 (no standard concept)",
                5.0,
            ),
            CheckDefinition(
                "source_value_completeness",
                "completeness",
                "field",
                "distinct {column} values of {table} mapped to concept 0",
                10.0,
            ),
            CheckDefinition(
                "measure_person_completeness",
                "completeness",
                "table",
                "persons with no row in {table}",
                95.0,
            ),
            CheckDefinition(
                "measurement_unit_completeness",
                "completeness",
                "field",
                "measurements with a number but no unit_concept_id",
                5.0,
            ),
            CheckDefinition(
                "measurement_value_completeness",
                "completeness",
                "field",
                "measurements with neither value_as_number nor value_as_concept_id",
                None,
            ),
            CheckDefinition(
                "site_period_completeness",
                "completeness",
                "table",
                "care site × {period} cells of {table} where a column is at least "
                "{drop} points less complete than over all sites and periods",
                5.0,
            ),
            CheckDefinition(
                "plausible_year_of_birth",
                "plausibility",
                "field",
                "persons born before {low} or after the run date",
                0.0,
            ),
            CheckDefinition(
                "plausible_value_range",
                "plausibility",
                "field",
                "rows of {table} with {column} outside [{low}, {high}]",
                0.0,
            ),
            CheckDefinition(
                "plausible_measurement_range",
                "plausibility",
                "concept",
                "measurements of concept {concept} with value_as_number outside [{low}, {high}]",
                1.0,
            ),
            CheckDefinition(
                "plausible_start_before_end",
                "plausibility",
                "field",
                "rows of {table} whose {column} is before {start}",
                0.0,
            ),
            CheckDefinition(
                "plausible_date_range",
                "plausibility",
                "field",
                "rows of {table} with {column} before {low} or after the run date",
                0.0,
            ),
            CheckDefinition(
                "plausible_after_birth",
                "plausibility",
                "field",
                "rows of {table} whose {column} is in a year before the person's year of birth",
                1.0,
            ),
            CheckDefinition(
                "plausible_during_life",
                "plausibility",
                "field",
                "rows of {table} whose {column} is more than {days} days after the person's death",
                1.0,
            ),
            CheckDefinition(
                "plausible_age",
                "plausibility",
                "field",
                "rows of {table} where the person is older than {age} years at {column}",
                0.0,
            ),
            CheckDefinition(
                "death_after_birth",
                "plausibility",
                "field",
                "deaths in a year before the person's year of birth",
                0.0,
            ),
            CheckDefinition(
                "within_observation_period",
                "plausibility",
                "field",
                "rows of {table} whose {column} is in none of the person's observation periods",
                5.0,
            ),
        )
    }
)
"""Every check careloop runs, by name (the list the docs show)."""


def checks_markdown() -> str:
    """The check registry as a Markdown table (the list in docs/warehouse.md)."""
    lines = [
        "| check | category | level | default threshold | what fails |",
        "|---|---|---|---|---|",
    ]
    for d in CHECKS.values():
        threshold = "informational" if d.threshold is None else f"{d.threshold:g}%"
        what = d.description.replace("|", "\\|")
        lines.append(f"| `{d.name}` | {d.category} | {d.level} | {threshold} | {what} |")
    return "\n".join(lines)
