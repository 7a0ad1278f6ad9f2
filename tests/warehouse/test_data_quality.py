"""Data-quality checks on a hand-built warehouse with known, planted problems.

Every expected count below is worked out by hand from the rows in
``planted`` (the comment beside each row says which problem it carries).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from careloop.core.errors import InputError
from careloop.warehouse import (
    CHECKS,
    RESULT_TABLE,
    Warehouse,
    completeness_by_site,
    load_omop_csv,
    quality_history,
    run_checks,
)
from careloop.warehouse.quality import checks_markdown
from tests.warehouse.engine_warnings import ENGINE_WARNINGS

pytestmark = ENGINE_WARNINGS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"
TYPE = 32817  # EHR


def _frame(columns: str, rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def _dates(frame: pd.DataFrame) -> pd.DataFrame:
    for col in frame.columns:
        if col.endswith("_date"):
            frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame


def planted(wh: Warehouse) -> None:
    wh.create_schema()
    wh.replace_table(
        "concept",
        _dates(
            _frame(
                "concept_id concept_name domain_id vocabulary_id concept_class_id standard_concept "
                "concept_code valid_start_date valid_end_date",
                [
                    (
                        0,
                        "No matching concept",
                        "Metadata",
                        "None",
                        "Undefined",
                        None,
                        "No matching",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                    (
                        8507,
                        "MALE",
                        "Gender",
                        "Gender",
                        "Gender",
                        "S",
                        "M",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                    (
                        8532,
                        "FEMALE",
                        "Gender",
                        "Gender",
                        "Gender",
                        "S",
                        "F",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                    (
                        9201,
                        "Inpatient Visit",
                        "Visit",
                        "Visit",
                        "Visit",
                        "S",
                        "IP",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                    (
                        9202,
                        "Outpatient Visit",
                        "Visit",
                        "Visit",
                        "Visit",
                        "S",
                        "OP",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                    (
                        TYPE,
                        "EHR",
                        "Type Concept",
                        "Type Concept",
                        "Type Concept",
                        "S",
                        "OMOP4976890",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                    (
                        192671,
                        "Gastrointestinal hemorrhage",
                        "Condition",
                        "SNOMED",
                        "Clinical Finding",
                        "S",
                        "74474003",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                    (
                        35208414,
                        "Gastrointestinal hemorrhage, unspecified",
                        "Condition",
                        "ICD10CM",
                        "4-char billing code",
                        None,
                        "K92.2",
                        "2007-01-01",
                        "2099-12-31",
                    ),
                    (
                        3025315,
                        "Body weight",
                        "Measurement",
                        "LOINC",
                        "Clinical Observation",
                        "S",
                        "29463-7",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                    (
                        9529,
                        "kilogram",
                        "Unit",
                        "UCUM",
                        "Unit",
                        "S",
                        "kg",
                        "1970-01-01",
                        "2099-12-31",
                    ),
                ],
            )
        ),
    )
    wh.replace_table("care_site", _frame("care_site_id care_site_name", [(1, "A"), (2, "B")]))
    wh.replace_table(
        "person",
        _frame(
            "person_id gender_concept_id year_of_birth race_concept_id ethnicity_concept_id",
            [
                (1, 8507, 1980, 0, 0),
                (2, 8532, 1700, 0, 0),  # implausible year of birth
                (3, 8507, 1990, 0, 0),  # dies before being born (see death)
                (4, 8532, 2000, 0, 0),
            ],
        ),
    )
    wh.replace_table(
        "observation_period",
        _dates(
            _frame(
                "observation_period_id person_id observation_period_start_date "
                "observation_period_end_date period_type_concept_id",
                [
                    (1, 1, "2000-01-01", "2018-12-31", TYPE),  # overlaps 2; ends after 'today'
                    (2, 1, "2018-06-01", "2021-06-30", TYPE),  # overlaps 1; ends after 'today'
                    (3, 2, "2000-01-01", "2020-12-31", TYPE),  # ends after 'today'
                    (4, 3, "2000-01-01", "2010-12-31", TYPE),
                    (5, 4, "2010-01-01", "2020-12-31", TYPE),  # ends after 'today'
                ],
            )
        ),
    )
    wh.replace_table(
        "death",
        _dates(_frame("person_id death_date death_type_concept_id", [(3, "1985-06-01", TYPE)])),
    )
    wh.replace_table(
        "visit_occurrence",
        _dates(
            _frame(
                "visit_occurrence_id person_id visit_concept_id visit_start_date visit_end_date "
                "visit_type_concept_id care_site_id",
                [
                    (1, 1, 9201, "2010-05-01", "2010-05-03", TYPE, 1),
                    (2, 1, 9202, "2010-06-10", "2010-06-01", TYPE, 1),  # ends before it starts
                    (3, 4, 9202, "2005-03-01", "2005-03-01", TYPE, 2),  # outside observation
                    (
                        4,
                        4,
                        192671,
                        "2015-01-01",
                        "2015-01-01",
                        TYPE,
                        2,
                    ),  # Condition concept; future
                ],
            )
        ),
    )
    wh.replace_table(
        "condition_occurrence",
        _dates(
            _frame(
                "condition_occurrence_id person_id condition_concept_id condition_start_date "
                "condition_type_concept_id visit_occurrence_id",
                [
                    (1, 1, 192671, "2010-05-02", TYPE, 1),
                    (2, 1, 35208414, "2010-05-02", TYPE, 1),  # not a standard concept
                    (3, 2, 999999, "2010-01-01", TYPE, None),  # unknown concept
                    (4, 3, 192671, "2008-01-01", TYPE, None),  # after death (1985)
                    (4, 1, 192671, "2011-01-01", TYPE, None),  # duplicate id 4
                    (6, 99, 192671, "2012-01-01", TYPE, None),  # no such person; no observation
                ],
            )
        ),
    )
    wh.replace_table(
        "measurement",
        _dates(
            _frame(
                "measurement_id person_id measurement_concept_id measurement_date "
                "measurement_type_concept_id value_as_number unit_concept_id",
                [
                    (1, 1, 3025315, "2010-05-02", TYPE, 70.0, 9529),
                    (2, 1, 3025315, "2010-05-02", TYPE, 900.0, 0),  # implausible weight; no unit
                    (3, 4, 3025315, "1990-01-01", TYPE, 60.0, 0),  # before birth (2000); no unit
                ],
            )
        ),
    )


EXPECTED = {
    # check_id: (failing, denominator)
    "plausible_year_of_birth.person.year_of_birth": (1, 4),
    "observation_period_overlap.observation_period": (2, 5),
    "death_after_birth.death.death_date": (1, 1),
    "plausible_start_before_end.visit_occurrence.visit_end_date": (1, 4),
    "within_observation_period.visit_occurrence.visit_start_date": (1, 4),
    "fk_domain.visit_occurrence.visit_concept_id": (1, 4),
    "is_primary_key.condition_occurrence.condition_occurrence_id": (1, 6),
    "is_foreign_key.condition_occurrence.person_id": (1, 6),
    "concept_known.condition_occurrence.condition_concept_id": (1, 6),
    "standard_valid_concept.condition_occurrence.condition_concept_id": (1, 6),
    "fk_domain.condition_occurrence.condition_concept_id": (0, 6),
    "plausible_during_life.condition_occurrence.condition_start_date": (1, 6),
    "within_observation_period.condition_occurrence.condition_start_date": (1, 6),
    "is_foreign_key.visit_occurrence.care_site_id": (0, 4),
    "measure_person_completeness.visit_occurrence": (2, 4),
    "plausible_measurement_range.measurement.value_as_number.3025315": (1, 3),
    "plausible_after_birth.measurement.measurement_date": (1, 3),
    "measurement_unit_completeness.measurement.unit_concept_id": (2, 3),
    "plausible_date_range.visit_occurrence.visit_start_date": (1, 4),
    "plausible_date_range.observation_period.observation_period_end_date": (4, 5),
    "is_required.person.year_of_birth": (0, 4),
    "cdm_table.person": (0, 1),
    "cdm_source_present.cdm_source": (1, 1),
}


def test_the_registry_has_at_least_25_checks_in_the_three_dqd_categories():
    assert len(CHECKS) >= 25
    assert {d.category for d in CHECKS.values()} == {"conformance", "completeness", "plausibility"}


def test_each_planted_problem_is_found_with_its_count(warehouse):
    planted(warehouse)
    report = run_checks(warehouse, today=date(2014, 1, 1))
    got = {
        cid: (report.result(cid).failing_rows, report.result(cid).denominator) for cid in EXPECTED
    }
    assert got == EXPECTED
    assert report.result("plausible_year_of_birth.person.year_of_birth").status == "fail"
    assert report.result("plausible_year_of_birth.person.year_of_birth").percent == 25.0
    assert report.result("is_required.person.year_of_birth").status == "pass"
    assert report.result("measure_person_completeness.visit_occurrence").status == "pass"
    assert report.counts["error"] == 0


@pytest.fixture(scope="module")
def planted_duckdb() -> Iterator[Warehouse]:
    """One in-memory DuckDB warehouse with the planted rows, shared by the tests below."""
    with Warehouse.connect("duckdb://") as wh:
        planted(wh)
        yield wh


def test_thresholds_can_be_overridden_by_check_name_or_id(planted_duckdb):
    report = run_checks(
        planted_duckdb,
        today=date(2014, 1, 1),
        checks=["plausible_year_of_birth", "is_primary_key"],
        thresholds={
            "plausible_year_of_birth": 30.0,
            "is_primary_key.condition_occurrence.condition_occurrence_id": None,
        },
    )
    assert report.result("plausible_year_of_birth.person.year_of_birth").status == "pass"
    assert (
        report.result("is_primary_key.condition_occurrence.condition_occurrence_id").status
        == "info"
    )
    assert report.result("is_primary_key.person.person_id").status == "pass"


def test_a_subset_of_checks_runs_and_unknown_names_are_refused(planted_duckdb):
    report = run_checks(planted_duckdb, checks=["death_after_birth"])
    assert {r.check_name for r in report.results} == {"death_after_birth"}
    with pytest.raises(InputError, match="Unknown data-quality checks: bogus"):
        run_checks(planted_duckdb, checks=["bogus"])


def test_results_are_stored_per_run_so_they_can_be_charted_over_time(tmp_path):
    with Warehouse.connect(f"duckdb://{tmp_path / 'w.duckdb'}") as wh:
        planted(wh)
        subset = ["death_after_birth", "plausible_year_of_birth"]
        first = run_checks(wh, checks=subset, store=True)
        second = run_checks(wh, checks=subset, store=True)
        assert wh.has_table(RESULT_TABLE)
        history = quality_history(wh, check_id="death_after_birth.death.death_date")
        assert len(quality_history(wh)) == len(first.results) + len(second.results)
    assert history.run_id.tolist() == [first.run_id, second.run_id]
    assert history.failing_rows.tolist() == [1, 1]
    frame = first.to_frame()
    assert len(frame) == len(first.results)
    assert frame.loc[frame.check_id == "death_after_birth.death.death_date", "status"].item() == (
        "fail"
    )


def test_the_html_report_lists_failures_first(planted_duckdb):
    subset = ["death_after_birth", "is_required", "plausible_year_of_birth"]
    page = run_checks(planted_duckdb, checks=subset).to_html()
    assert page.startswith("<!DOCTYPE html>")
    first_fail = page.index('class="fail"')
    assert first_fail < page.index('class="pass"')
    assert "death_after_birth.death.death_date" in page


def test_the_html_report_escapes_what_the_data_supplied():
    from datetime import UTC, datetime

    from careloop.warehouse.quality import CheckResult, QualityReport

    hostile = "<script>alert(1)</script>"
    result = CheckResult(
        check_id="is_required.person.year_of_birth", check_name="is_required",
        category="completeness", level="field", table="person", column="year_of_birth",
        concept_id=None, description=f"rows {hostile}", threshold=None, failing_rows=1,
        denominator=3, percent=100 / 3, status="error", error=hostile,
    )  # fmt: skip
    report = QualityReport(
        run_id="r1", run_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        warehouse_url=f"duckdb:///{hostile}", results=(result,),
    )  # fmt: skip
    page = report.to_html()
    assert hostile not in page and "&lt;script&gt;" in page
    assert "2026-01-02 03:04:05 UTC" in page and "33.33%" in page and "<td>—</td>" in page


def test_completeness_by_site_counts_rows_per_site_and_year(planted_duckdb):
    frame = completeness_by_site(planted_duckdb, "visit_occurrence", period="year")
    with pytest.raises(InputError, match="event table"):
        completeness_by_site(planted_duckdb, "person")
    cell = frame[(frame.care_site_id == 1) & (frame.column == "care_site_id")]
    assert cell[["rows", "non_null"]].values.tolist() == [[2, 2]]
    provider = frame[(frame.care_site_id == 2) & (frame.column == "provider_id")]
    assert provider.percent_complete.tolist() == [0.0, 0.0]  # 2005 and 2015


def test_eunomia_slice_checks_run_without_errors(omop_small):
    with Warehouse.connect("duckdb://") as wh:
        load_omop_csv(wh, omop_small)
        report = run_checks(wh)
    assert report.counts["error"] == 0
    # Eunomia's vocabulary subset lacks the type concepts (e.g. 32020), as DQD also reports.
    assert (
        report.result("concept_known.condition_occurrence.condition_type_concept_id").percent
        == 100.0
    )
    assert report.result("is_required.person.year_of_birth").status == "pass"


def test_the_docs_list_every_check():
    text = DOCS.read_text()
    for name in CHECKS:
        assert re.search(rf"`{name}`", text), f"docs/warehouse.md does not list {name}"
    assert checks_markdown() in text
