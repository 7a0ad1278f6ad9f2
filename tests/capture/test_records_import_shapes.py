"""Records import of the shapes REDCap exports take: subsets of columns, events, instances.

On the example IBD forms; each test uses its own record id prefix in the
module's installation (SQLite and PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import text

from careloop.capture.records_io import import_records
from careloop.core.errors import ValidationFailed
from tests.capture.registry_helpers import VISIT, crohns_visit, import_examples


@pytest.fixture(scope="module", autouse=True)
def _forms(installation):
    import_examples(installation)


def rows_csv(header: list[str], *rows: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def full_visit(record_id: str, day: str, **changes: str) -> tuple[list[str], list[str]]:
    values = crohns_visit(day, **changes)
    return ["record_id", *values], [record_id, *values.values()]


def run(installation, data: bytes, **options):
    return import_records(
        installation.registry, installation.operator, VISIT, data, "A", name="v.csv", **options
    )


def stored(installation, record_id: str):
    with installation.registry.engine.connect() as conn:
        return conn.execute(
            text(
                'SELECT r.event_date, r.event_name, r.repeat_instance, r."values" '
                "FROM form_response r JOIN patient p ON p.id = r.patient_id "
                "WHERE p.local_id = :id ORDER BY r.event_date, r.event_name, r.repeat_instance"
            ),
            {"id": record_id},
        ).all()


def test_a_subset_of_columns_updates_only_those_fields_of_a_stored_response(installation):
    header, row = full_visit("SUB-1", "2024-02-01")
    first = run(installation, rows_csv(header, row), event_date_field="visit_date")
    assert first.ok and first.created == 1
    # A later export of just the weights: the other fields are missing, not emptied.
    later = rows_csv(["record_id", "visit_date", "weight_kg"], ["SUB-1", "2024-02-01", "29.1"])
    report = run(installation, later, event_date_field="visit_date")
    assert report.ok and (report.created, report.updated) == (0, 1)
    assert any("no column for" in n and "stored responses keep" in n for n in report.notes)
    [(_, _, _, values)] = stored(installation, "SUB-1")
    values = values if isinstance(values, dict) else json.loads(values)
    assert values["weight_kg"] == "29.1" and values["height_cm"] == "131.5"
    assert values["pga"] == "2" and values["bmi"]  # recomputed from the kept height
    assert run(installation, later, event_date_field="visit_date").unchanged == 1


def test_a_required_field_without_a_column_is_an_error_of_each_new_row(installation):
    data = rows_csv(
        ["record_id", "visit_date", "weight_kg", "ibd_visit_complete"],
        ["REQ-1", "2024-02-01", "29.1", "2"],
        ["REQ-2", "2024-02-01", "30.1", "0"],  # a draft may leave it for later
    )
    report = run(installation, data, event_date_field="visit_date", mode="row-level")
    assert report.created == 1 and report.rejected_rows == 1
    fields = {p.field for p in report.problems}
    assert {p.row for p in report.problems} == {2} and "height_cm" in fields
    problem = next(p for p in report.problems if p.field == "height_cm")
    assert "required but the file has no column for it" in problem.reason


def test_events_and_instances_on_one_date_are_separate_responses(installation):
    header, row = full_visit("EVT-1", "2024-03-01")
    header = [header[0], "redcap_event_name", "redcap_repeat_instrument",
              "redcap_repeat_instance", *header[1:]]  # fmt: skip
    data = rows_csv(
        header,
        [row[0], "baseline_arm_1", "", "", *row[1:]],
        [row[0], "week_2_arm_1", "", "", *row[1:]],
        [row[0], "week_2_arm_1", VISIT, "2", *row[1:]],
        [row[0], "week_2_arm_1", "other_form", "1", *row[1:]],  # another instrument's row
    )
    report = run(installation, data, event_date_field="visit_date")
    assert report.ok and (report.rows, report.skipped, report.created) == (4, 1, 3)
    keys = [(str(d)[:10], e, i) for d, e, i, _ in stored(installation, "EVT-1")]
    assert keys == [
        ("2024-03-01", "baseline_arm_1", 1),
        ("2024-03-01", "week_2_arm_1", 1),
        ("2024-03-01", "week_2_arm_1", 2),
    ]


def test_a_repeated_key_and_a_bad_instance_are_row_errors(installation):
    header, row = full_visit("DUP-1", "2024-04-01")
    header = [header[0], "redcap_repeat_instance", *header[1:]]
    data = rows_csv(
        header, [row[0], "1", *row[1:]], [row[0], "", *row[1:]], [row[0], "x", *row[1:]]
    )
    report = run(installation, data, event_date_field="visit_date", mode="row-level")
    assert report.created == 1
    assert [(p.row, p.field, p.value) for p in report.problems] == [
        (3, "record_id", "DUP-1"),
        (4, "redcap_repeat_instance", "x"),
    ]
    assert "row 2 has the same record id" in report.problems[0].reason


def test_a_file_without_record_id_says_how_to_name_the_column(installation):
    data = rows_csv(["mrn", "visit_date"], ["X-1", "2024-01-01"])
    with pytest.raises(ValidationFailed, match="no record id column") as info:
        run(installation, data, event_date_field="visit_date")
    assert "--record-id-field" in info.value.details[0].message
    report = run(installation, data, event_date_field="visit_date", record_id_field="mrn",
                 mode="row-level")  # fmt: skip
    assert report.rejected_rows == 1 and "Record ids (the patients' local ids) from the mrn " \
        "column." in report.notes  # fmt: skip


def test_a_column_of_an_unknown_form_is_refused_with_the_fix(installation):
    header, row = full_visit("UNK-1", "2024-01-01")
    data = rows_csv([*header, "lab_crp"], [*row, "4"])
    with pytest.raises(ValidationFailed) as info:
        run(installation, data, event_date_field="visit_date")
    message = info.value.details[0].message
    assert "unknown column 'lab_crp'" in message and "careloop forms import" in message


def test_the_event_date_column_and_a_fixed_date_are_sources_too(installation):
    header, row = full_visit("COL-1", "2024-05-01")
    report = run(installation, rows_csv(["event_date", *header], ["2024-05-02", *row]))
    assert report.ok and "Event dates from the event_date column." in report.notes
    fixed = run(installation, rows_csv(header, full_visit("COL-2", "2024-05-01")[1]),
                event_date="2024-06-30")  # fmt: skip
    assert fixed.ok and "Event date 2024-06-30 (--event-date) for every row." in fixed.notes
    assert [str(r[0])[:10] for r in stored(installation, "COL-2")] == ["2024-06-30"]
