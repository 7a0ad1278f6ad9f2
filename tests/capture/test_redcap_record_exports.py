"""Real REDCap record exports import as they are (tests/data/redcap_records, see SOURCE.md).

Each project gets a fresh registry (its forms' names, such as ``demographics``,
and record ids such as ``1`` recur across projects), with its own dictionary
imported unchanged.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from careloop.capture.forms_store import import_forms
from careloop.capture.records_io import ImportReport, export_records, import_records
from careloop.core.errors import ValidationFailed
from careloop.warehouse.connection import warehouse_opener
from tests.foundation import Installation, build_installation, fhir_import, make_settings


@pytest.fixture
def inst(tmp_path: Path, database_url: str | None) -> Iterator[Installation]:
    installation = build_installation(make_settings(tmp_path, database_url), with_users=False)
    try:
        yield installation
    finally:
        installation.registry.close()


@pytest.fixture
def exports(test_data: Path) -> Path:
    return test_data / "redcap_records"


def project(inst: Installation, folder: Path) -> Path:
    """Import the project's dictionary unchanged; the path of its record export."""
    import_forms(inst.registry, inst.operator, folder / "dictionary.csv", fmt="redcap")
    return folder / "data.csv"


def run(inst: Installation, form: str, data: Path, **options: object) -> ImportReport:
    return import_records(inst.registry, inst.operator, form, data, "A", **options)  # type: ignore[arg-type]


def stored(inst: Installation, form: str) -> list[tuple[str, str, str, int, str, dict]]:
    """(record id, date, event, instance, status, values) of the form's responses, sorted."""
    with inst.registry.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.local_id, r.event_date, r.event_name, r.repeat_instance, r.status, "
                'r."values" FROM form_response r JOIN patient p ON p.id = r.patient_id '
                "JOIN form_definition f ON f.id = r.form_id WHERE f.name = :form"
            ),
            {"form": form},
        ).all()
    out = []
    for local_id, day, event, instance, status, values in rows:
        values = json.loads(values) if isinstance(values, str) else values
        out.append((local_id, str(day)[:10], event, instance, status, values))
    return sorted(out, key=lambda r: (r[0], r[1], r[2], r[3]))


def counts(report: ImportReport) -> tuple[int, int, int, int, int, int]:
    return (
        report.rows,
        report.skipped,
        report.created,
        report.updated,
        report.unchanged,
        report.rejected_rows,
    )


def test_a_classic_project_with_a_repeating_instrument_imports_each_form(inst, exports):
    data = project(inst, exports / "redcapr_repeating_instruments")
    bp = run(inst, "bp", data, event_date_field="date_bp")
    assert bp.ok and counts(bp) == (6, 2, 4, 0, 0, 0)
    assert bp.patients_created == 2
    # Three readings of record 1 on one day: three instances, not a clash.
    assert [(r[0], r[1], r[3], r[5]["bp_systolic"]) for r in stored(inst, "bp")] == [
        ("1", "2019-10-14", 1, "110"),
        ("1", "2019-10-14", 2, "111"),
        ("1", "2019-10-14", 3, "112"),
        ("2", "2004-04-04", 1, "114"),
    ]
    assert "Event dates from field date_bp (--event-date-field)." in bp.notes
    # date_enrolled … sex and demographics_complete: demographics' columns.
    assert any("8 column(s) of other forms" in n for n in bp.notes)
    assert any("2 rows with no value in any field of bp" in n for n in bp.notes)
    demographics = run(inst, "demographics", data, event_date_field="date_enrolled")
    assert demographics.ok and counts(demographics) == (6, 4, 2, 0, 0, 0)
    assert any("4 rows of other repeating instruments" in n for n in demographics.notes)
    first = stored(inst, "demographics")[0]
    assert first[:5] == ("1", "2019-10-14", "", 1, "complete")
    # record_id is the first field of demographics: the patient and a stored value.
    assert first[5]["record_id"] == "1" and first[5]["first_name"] == "aaa"
    again = run(inst, "bp", data, event_date_field="date_bp")
    assert counts(again) == (6, 2, 0, 0, 4, 0)


def test_an_edited_instance_is_updated_with_its_reason_audited(inst, exports):
    data = project(inst, exports / "redcapr_repeating_instruments")
    run(inst, "bp", data, event_date_field="date_bp")
    edited = data.read_text().replace(
        "1,bp,2,,,,,,,,,2019-10-14,111,", "1,bp,2,,,,,,,,,2019-10-14,121,"
    )
    report = import_records(
        inst.registry, inst.operator, "bp", edited.encode(), "A", name="bp-v2.csv",
        event_date_field="date_bp",
    )  # fmt: skip
    assert counts(report) == (6, 2, 0, 1, 3, 0)
    assert [r[5]["bp_systolic"] for r in stored(inst, "bp")][:3] == ["110", "121", "112"]
    with inst.registry.engine.connect() as conn:
        reason = conn.execute(
            text("SELECT reason FROM audit_entry WHERE action = 'update' ORDER BY seq DESC")
        ).scalar_one()
    assert reason == "bulk import of bp-v2.csv"


def test_the_dictionarys_event_date_tag_needs_no_option(inst, exports):
    folder = exports / "redcapr_repeating_instruments"
    dictionary = (folder / "dictionary.csv").read_text()
    # The one change a user makes: tag date_bp in its Field Annotation (the last cell).
    tagged = "\n".join(
        line + "@CARELOOP-EVENT-DATE" if line.startswith("date_bp,") else line
        for line in dictionary.splitlines()
    )
    assert tagged != dictionary
    import_forms(inst.registry, inst.operator, tagged.encode(), fmt="redcap", name="d.csv")
    report = run(inst, "bp", folder / "data.csv")
    assert report.ok and report.created == 4
    assert "Event dates from field date_bp (@CARELOOP-EVENT-DATE)." in report.notes


def test_without_any_event_date_the_error_names_every_way_to_give_one(inst, exports):
    data = project(inst, exports / "redcapr_repeating_instruments")
    with pytest.raises(ValidationFailed, match="gives no event date") as info:
        run(inst, "bp", data)
    [detail] = info.value.details
    assert detail.location == "data.csv:1"
    for option in ("--event-date-field", "date_bp", "event_date column", "@CARELOOP-EVENT-DATE",
                   "--event-date YYYY-MM-DD"):  # fmt: skip
        assert option in detail.message
    assert stored(inst, "bp") == []
    with pytest.raises(ValidationFailed, match="is not a date or datetime field"):
        run(inst, "bp", data, event_date_field="bp_systolic")


def test_an_empty_event_date_is_a_row_error_unless_a_fallback_date_is_given(inst, exports):
    data = project(inst, exports / "redcapr_repeating_instruments_sparse")
    refused = run(inst, "demographics", data, event_date_field="date_enrolled")
    assert not refused.written
    assert [(p.row, p.field) for p in refused.problems] == [(10, "date_enrolled")]
    assert "--event-date" in refused.problems[0].reason
    report = run(inst, "demographics", data, event_date_field="date_enrolled",
                 event_date="2021-11-05")  # fmt: skip
    assert report.ok and counts(report) == (9, 4, 5, 0, 0, 0)
    assert any("1 row(s) with an empty date_enrolled took" in n for n in report.notes)
    rows = {r[0]: r for r in stored(inst, "demographics")}
    assert rows["5"][1] == "2021-11-05" and rows["5"][4] == "draft"  # demographics_complete 0
    assert rows["3"][1] == "2021-11-04"


def test_a_longitudinal_export_keys_responses_by_event(inst, exports):
    data = project(inst, exports / "redcapr_arm_multiple_delete")
    report = run(inst, "demographics", data, event_date="2021-01-01")
    assert report.ok and counts(report) == (60, 0, 60, 0, 0, 0)
    events = {(r[0], r[2]) for r in stored(inst, "demographics")}
    assert len(events) == 60 and {e for _, e in events} == {
        "event_1_arm_1",
        "event_1_arm_2",
        "event_1_arm_3",
    }
    again = run(inst, "demographics", data, event_date="2021-01-01")
    assert counts(again) == (60, 0, 0, 0, 60, 0)


def test_an_export_round_trips_events_and_repeat_instances(inst, exports):
    data = project(inst, exports / "redcapr_repeating_instruments")
    run(inst, "bp", data, event_date_field="date_bp")
    exported = export_records(inst.registry, inst.operator, "bp", fmt="csv")
    header = next(csv.reader(io.StringIO(exported.text)))
    assert header[:5] == ["record_id", "redcap_repeat_instrument", "redcap_repeat_instance",
                          "event_date", "date_bp"]  # fmt: skip
    before = stored(inst, "bp")
    back = import_records(inst.registry, inst.operator, "bp", exported.text.encode(), "A")
    assert counts(back) == (4, 0, 0, 0, 4, 0) and stored(inst, "bp") == before
    as_json = json.loads(export_records(inst.registry, inst.operator, "bp", fmt="json").text)
    assert [r["repeat_instance"] for r in as_json] == [1, 2, 3, 1]
    longitudinal = project(inst, exports / "redcapr_arm_multiple_delete")
    run(inst, "demographics", longitudinal, event_date="2021-01-01")
    text_out = export_records(inst.registry, inst.operator, "demographics", fmt="csv").text
    assert text_out.startswith("record_id,redcap_event_name,event_date,birth_date,position,")
    back = import_records(inst.registry, inst.operator, "demographics", text_out.encode(), "A")
    assert counts(back) == (60, 0, 0, 0, 60, 0)


def test_a_survey_export_with_its_timestamps_and_identifier_columns(inst, exports):
    data = project(inst, exports / "redcapr_survey")
    report = run(inst, "prescreening_survey", data, event_date="2018-03-06")
    assert report.ok and counts(report) == (2, 0, 2, 0, 0, 0)
    # participant_id, not record_id: the project's record id field, first column.
    assert "Record ids (the patients' local ids) from the participant_id column." in report.notes
    assert [r[5].get("consent") for r in stored(inst, "prescreening_survey")] == [["1"], None]
    # Nobody filled the second survey (status 0, no values): nothing to import.
    info = run(inst, "participant_info_survey", data, event_date="2018-03-06")
    assert info.ok and counts(info) == (2, 2, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("folder", "form", "expected"),
    [
        ("redcapr_clinical_trial_1", "demographics", (500, 0, 500, 0, 0, 0)),
        ("redcapr_dag", "demographics", (3, 0, 3, 0, 0, 0)),
        ("redcapr_nonnumeric_record_id", "demographics", (3, 0, 3, 0, 0, 0)),
        # 45 rows: 32 cars, 13 sales (repeating); 7 cars have a grouping answer.
        ("redcaprits_example_project", "motor_trend_cars", (45, 13, 32, 0, 0, 0)),
        ("redcaprits_example_project", "sale", (45, 32, 13, 0, 0, 0)),
        ("redcaprits_example_project", "grouping", (45, 38, 7, 0, 0, 0)),
    ],
)
def test_each_real_export_imports_as_it_is(inst, exports, folder, form, expected):
    data = project(inst, exports / folder)
    report = run(inst, form, data, event_date="2024-01-01")
    assert report.ok, report.problems[:3]
    assert counts(report) == expected
    again = run(inst, form, data, event_date="2024-01-01")
    assert (again.created, again.updated, again.unchanged) == (0, 0, expected[2])


def test_the_longitudinal_multi_form_export_imports_every_form(inst, exports):
    data = project(inst, exports / "redcapr_longitudinal")
    # 18 rows: 3 records over 6 events; each form is on the rows of its events.
    expected = {
        "baseline_data": (18, 15, 3),
        "visit_lab_data": (18, 14, 4),
        "patient_morale_questionnaire": (18, 8, 10),
        "visit_blood_workup": (18, 14, 4),
        "visit_observed_behavior": (18, 12, 6),
        "completion_data": (18, 16, 2),
        "completion_project_questionnaire": (18, 15, 3),
        "contact_info": (18, 13, 5),
    }
    for form, (rows, skipped, created) in expected.items():
        report = run(inst, form, data, event_date="2015-04-02")
        assert report.ok and counts(report) == (rows, skipped, created, 0, 0, 0), form
    assert len({r[2] for r in stored(inst, "visit_lab_data")}) > 1


def test_repeat_instances_and_events_survive_a_fhir_round_trip(inst, exports, tmp_path):
    from careloop.fhir.exporting import export_fhir

    folder = exports / "redcapr_repeating_instruments"
    run(inst, "bp", project(inst, folder), event_date_field="date_bp")
    before = stored(inst, "bp")
    export_fhir(inst.registry, warehouse_opener(inst.settings), inst.operator, tmp_path / "out")
    lines = (tmp_path / "out" / "QuestionnaireResponse.ndjson").read_text().splitlines()
    instances = [
        e.get("valuePositiveInt")
        for r in map(json.loads, lines)
        for e in r.get("extension", [])
        if e["url"].endswith("repeat-instance")
    ]
    assert sorted(instances) == [2, 3]  # instance 1 is the default and is not written
    second = build_installation(make_settings(tmp_path / "second", None), with_users=False)
    try:
        project(second, folder)
        report = fhir_import(second, second.operator, tmp_path / "out", site="A")
        assert report.rejected == () and report.responses_created == len(before)
        assert [r[:4] for r in stored(second, "bp")] == [r[:4] for r in before]
    finally:
        second.registry.close()
