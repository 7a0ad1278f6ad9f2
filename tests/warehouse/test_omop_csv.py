"""Loading OMOP CSV files: counts checked against pandas reading the same files.

The reference numbers come from pandas.read_csv on the CSVs themselves (an
independent reader), never from the warehouse.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from careloop.core.errors import InputError, ValidationFailed
from careloop.warehouse import Warehouse, load_omop_csv
from tests.warehouse.engine_warnings import ENGINE_WARNINGS

pytestmark = ENGINE_WARNINGS

PERSON_HEADER = (
    "person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,birth_datetime,"
    "race_concept_id,ethnicity_concept_id,location_id,provider_id,care_site_id,"
    "person_source_value,gender_source_value,gender_source_concept_id,race_source_value,"
    "race_source_concept_id,ethnicity_source_value,ethnicity_source_concept_id"
)


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _person_csv(rows: list[str]) -> str:
    return PERSON_HEADER + "\n" + "\n".join(rows) + "\n"


GOOD_ROW = "1,8507,1980,5,17,1980-05-17 00:00:00,8527,0,,,,p1,M,0,white,0,,0"


def _count(warehouse: Warehouse, table: str) -> int:
    return int(warehouse.table(table).count().execute())


def test_the_eunomia_slice_loads_with_the_counts_pandas_reads(warehouse, omop_small):
    report = load_omop_csv(warehouse, omop_small)
    for path in sorted(omop_small.glob("*.csv")):
        expected = len(pd.read_csv(path))
        assert report.tables[path.stem] == expected, path.name
        assert _count(warehouse, path.stem) == expected, path.name
    assert report.rejected == 0
    assert report.rows_in == sum(report.tables.values())


def test_the_eunomia_slice_answers_like_pandas_on_the_csvs(warehouse, omop_small):
    load_omop_csv(warehouse, omop_small)
    raw = pd.read_csv(omop_small / "condition_occurrence.csv")
    co = warehouse.table("condition_occurrence")
    gi_bleed = co.filter(co.condition_concept_id == 192671).person_id.nunique().execute()
    assert gi_bleed == raw.loc[raw.condition_concept_id == 192671, "person_id"].nunique() == 20
    by_concept = (
        co.group_by("condition_concept_id")
        .agg(n=co.count())
        .execute()
        .set_index("condition_concept_id")["n"]
        .sort_index()
    )
    expected = raw.groupby("condition_concept_id").size().sort_index()
    assert by_concept.to_dict() == expected.to_dict()
    person = warehouse.table("person").execute().set_index("person_id").sort_index()
    raw_person = pd.read_csv(omop_small / "person.csv").set_index("person_id").sort_index()
    assert person["year_of_birth"].tolist() == raw_person["year_of_birth"].tolist()
    assert person["person_source_value"].tolist() == raw_person["person_source_value"].tolist()


def test_the_report_records_each_input_with_its_sha256(warehouse, omop_small):
    report = load_omop_csv(warehouse, omop_small)
    by_table = {f.table: f for f in report.inputs}
    person = by_table["person"]
    assert person.sha256 == hashlib.sha256((omop_small / "person.csv").read_bytes()).hexdigest()
    assert person.rows == 40
    assert report.started_at <= report.finished_at
    assert "note" in report.absent_tables and "person" not in report.absent_tables
    assert report.as_dict()["inputs"][0]["sha256"]


def test_cdm53_columns_are_renamed_and_whole_decimal_ids_accepted(warehouse, tmp_path):
    folder = tmp_path / "omop"
    _write(folder, "person.csv", _person_csv([GOOD_ROW]))
    _write(
        folder,
        "visit_occurrence.csv",
        "visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_end_date,"
        "visit_type_concept_id,admitting_source_concept_id,discharge_to_concept_id\n"
        "10,1,9201,2010-01-01,2010-01-03,44818517,8863,8536\n",
    )
    _write(
        folder,
        "concept_relationship.csv",
        "concept_id_1,concept_id_2,relationship_id,valid_start_date,valid_end_date,invalid_reason\n"
        "192671.0,35208414.0,Mapped from,1970-01-01,2099-12-31,\n",
    )
    report = load_omop_csv(warehouse, folder)
    visit = warehouse.table("visit_occurrence").execute()
    assert visit.loc[0, "admitted_from_concept_id"] == 8863
    assert visit.loc[0, "discharged_to_concept_id"] == 8536
    renamed = {f.table: dict(f.renamed_columns) for f in report.inputs}
    assert renamed["visit_occurrence"]["admitting_source_concept_id"] == "admitted_from_concept_id"
    assert warehouse.table("concept_relationship").concept_id_1.execute().tolist() == [192671]


def test_column_order_file_name_case_and_gzip_do_not_matter(tmp_path):
    folder = tmp_path / "omop"
    # Columns reversed, upper-case names, gzip-compressed.
    columns = PERSON_HEADER.split(",")
    values = GOOD_ROW.split(",")
    text = ",".join(c.upper() for c in reversed(columns)) + "\n" + ",".join(reversed(values))
    folder.mkdir()
    with gzip.open(folder / "PERSON.csv.gz", "wt") as handle:
        handle.write(text + "\n")
    with Warehouse.connect("duckdb://") as wh:
        load_omop_csv(wh, folder)
        row = wh.table("person").execute().iloc[0]
    assert (row.person_id, row.year_of_birth, row.person_source_value) == (1, 1980, "p1")


def test_missing_optional_tables_and_unknown_files_are_reported_not_fatal(tmp_path):
    folder = tmp_path / "omop"
    _write(folder, "person.csv", _person_csv([GOOD_ROW]))
    _write(folder, "cohort_attribute.csv", "a,b\n1,2\n")
    _write(folder, "README.txt", "not a table")
    with Warehouse.connect("duckdb://") as wh:
        report = load_omop_csv(wh, folder)
        assert wh.table("measurement").count().execute() == 0  # created, empty
    assert report.tables == {"person": 1}
    assert set(report.ignored_files) == {"cohort_attribute.csv", "README.txt"}


def test_athena_style_tab_files_with_compact_dates_load(tmp_path):
    folder = tmp_path / "vocab"
    _write(folder, "person.csv", _person_csv([GOOD_ROW]))
    _write(
        folder,
        "CONCEPT.csv",
        "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept"
        "\tconcept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason\n"
        '192671\tGastrointestinal "GI" hemorrhage\tCondition\tSNOMED\tClinical Finding\tS'
        "\t74474003\t20020131\t20991231\t\n",
    )
    with Warehouse.connect("duckdb://") as wh:
        load_omop_csv(wh, folder)
        concept = wh.table("concept").execute().iloc[0]
    assert concept.concept_name == 'Gastrointestinal "GI" hemorrhage'
    assert str(concept.valid_start_date)[:10] == "2002-01-31"


def test_a_missing_required_file_fails(tmp_path):
    folder = tmp_path / "omop"
    _write(folder, "death.csv", "person_id,death_date\n")
    with Warehouse.connect("duckdb://") as wh, pytest.raises(ValidationFailed, match="person"):
        load_omop_csv(wh, folder)


def test_a_directory_that_does_not_exist_is_an_input_error(tmp_path):
    with Warehouse.connect("duckdb://") as wh, pytest.raises(InputError, match="not a directory"):
        load_omop_csv(wh, tmp_path / "nowhere")


def test_wrong_columns_are_named_with_the_file(tmp_path):
    folder = tmp_path / "omop"
    _write(folder, "person.csv", "person_id,sex,year_of_birth\n1,M,1980\n")
    with Warehouse.connect("duckdb://") as wh, pytest.raises(ValidationFailed) as info:
        load_omop_csv(wh, folder)
    locations = [d.location for d in info.value.details]
    messages = " ".join(d.message for d in info.value.details)
    assert "person.csv:1:sex" in locations
    assert "gender_concept_id" in messages and "race_concept_id" in messages


@pytest.mark.parametrize(
    ("row", "column", "value", "expected"),
    [
        (GOOD_ROW.replace("1980", "19x0", 1), "year_of_birth", "19x0", "whole number"),
        (GOOD_ROW.replace("8507", "85.5", 1), "gender_concept_id", "85.5", "whole number"),
        # Whole, but beyond a 64-bit integer: refused rather than wrapped or rounded.
        (
            GOOD_ROW.replace("8507", "9223372036854775808", 1),
            "gender_concept_id",
            "9223372036854775808",
            "whole number",
        ),
        (
            GOOD_ROW.replace("1980-05-17 00:00:00", "1980-13-45 00:00:00"),
            "birth_datetime",
            "1980-13-45 00:00:00",
            "date-time",
        ),
        (GOOD_ROW.replace("1,8507,1980", "1,,1980", 1), "gender_concept_id", "", "required"),
    ],
)
def test_a_bad_value_names_file_line_column_value_and_type(
    warehouse, tmp_path, row, column, value, expected
):
    folder = tmp_path / "omop"
    other = GOOD_ROW.replace("1,8507", "2,8507", 1)
    _write(folder, "person.csv", _person_csv([other, other.replace("2,", "3,", 1), row]))
    with pytest.raises(ValidationFailed) as info:
        load_omop_csv(warehouse, folder)
    detail = info.value.details[0]
    assert detail.location == f"person.csv:4:{column}"
    assert expected in detail.message
    assert detail.value == value


def test_a_bad_file_loads_nothing_and_keeps_the_previous_contents(warehouse, tmp_path, omop_small):
    load_omop_csv(warehouse, omop_small)
    folder = tmp_path / "omop"
    shutil.copytree(omop_small, folder)
    # The person file is good, but a later file (alphabetically) is not.
    visits = (folder / "visit_occurrence.csv").read_text().splitlines()
    visits[5] = visits[5].replace(",", ",not-a-number,", 1)
    (folder / "visit_occurrence.csv").write_text("\n".join(visits) + "\n")
    (folder / "person.csv").write_text(_person_csv([GOOD_ROW]))
    with pytest.raises(ValidationFailed, match=r"visit_occurrence\.csv"):
        load_omop_csv(warehouse, folder)
    assert _count(warehouse, "person") == 40
    assert _count(warehouse, "visit_occurrence") == 30
    assert not [
        t for t in warehouse.list_tables() if t.startswith(("careloop_stage_", "careloop_rejects_"))
    ]


def test_two_files_for_one_table_are_refused(tmp_path):
    folder = tmp_path / "omop"
    _write(folder, "person.csv", _person_csv([GOOD_ROW]))
    _write(folder, "PERSON.csv.gz", "")
    with Warehouse.connect("duckdb://") as wh, pytest.raises(ValidationFailed, match="Ambiguous"):
        load_omop_csv(wh, folder)
