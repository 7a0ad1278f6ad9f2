"""The CDM 5.4 table definitions against OHDSI's DDL (inst/ddl/5.4/postgresql)."""

from __future__ import annotations

import ibis.expr.datatypes as dt
import pytest

from careloop.core.errors import NotFound
from careloop.warehouse import CDM53_RENAMES, TABLES, omop_schema, table_spec

BRIEF_TABLES = [
    "person",
    "observation_period",
    "visit_occurrence",
    "visit_detail",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "device_exposure",
    "measurement",
    "observation",
    "death",
    "note",
    "specimen",
    "care_site",
    "location",
    "provider",
    "concept",
    "concept_ancestor",
    "concept_relationship",
    "vocabulary",
    "domain",
    "concept_class",
    "cdm_source",
    "condition_era",
    "drug_era",
    "dose_era",
    "payer_plan_period",
    "cost",
]


def test_every_table_the_warehouse_needs_is_defined():
    assert set(BRIEF_TABLES) <= set(TABLES)
    assert len(TABLES) == 39  # every table of the 5.4 DDL


@pytest.mark.parametrize(
    ("table", "column", "dtype", "required"),
    [
        # Transcribed from OMOPCDM_postgresql_5.4_ddl.sql
        ("person", "person_id", dt.int64, True),
        ("person", "year_of_birth", dt.int64, True),
        ("person", "month_of_birth", dt.int64, False),
        ("person", "birth_datetime", dt.timestamp, False),
        ("person", "person_source_value", dt.string, False),
        ("visit_occurrence", "visit_end_date", dt.date, True),
        ("visit_occurrence", "admitted_from_concept_id", dt.int64, False),
        ("visit_detail", "parent_visit_detail_id", dt.int64, False),
        ("visit_detail", "visit_occurrence_id", dt.int64, True),
        ("condition_occurrence", "condition_end_date", dt.date, False),
        ("drug_exposure", "drug_exposure_end_date", dt.date, True),
        ("drug_exposure", "quantity", dt.float64, False),
        ("measurement", "value_as_number", dt.float64, False),
        ("measurement", "measurement_time", dt.string, False),
        ("note", "note_text", dt.string, True),
        ("death", "death_type_concept_id", dt.int64, False),
        ("cdm_source", "cdm_version_concept_id", dt.int64, True),
        ("concept", "standard_concept", dt.string, False),
        ("concept_ancestor", "max_levels_of_separation", dt.int64, True),
        ("cost", "revenue_code_source_value", dt.string, False),
        ("dose_era", "dose_value", dt.float64, True),
    ],
)
def test_columns_have_the_cdm_type_and_nullability(table, column, dtype, required):
    schema = omop_schema(table)
    assert schema[column] == dtype.copy(nullable=not required)


def test_column_order_follows_the_cdm():
    assert table_spec("observation_period").column_names == (
        "observation_period_id",
        "person_id",
        "observation_period_start_date",
        "observation_period_end_date",
        "period_type_concept_id",
    )


def test_concept_columns_name_their_expected_domain():
    person = table_spec("person")
    assert person.column("gender_concept_id").fk_domain == "Gender"
    assert table_spec("condition_occurrence").column("condition_type_concept_id").fk_domain == (
        "Type Concept"
    )
    assert table_spec("person").column("person_source_value").max_length == 50


def test_cdm53_renames_point_at_real_54_columns():
    for table, renames in CDM53_RENAMES.items():
        columns = TABLES[table].column_names
        for old, new in renames.items():
            assert old not in columns
            assert new in columns


def test_an_unknown_table_is_not_found_with_the_list_of_known_ones():
    with pytest.raises(NotFound, match="person"):
        table_spec("patients")
    assert table_spec("PERSON").name == "person"
