"""Records CSV in REDCap's export shape: headers, encodings and row errors located."""

from __future__ import annotations

import datetime as dt

import pytest

from careloop.capture import example_forms, read_records_csv
from careloop.capture.records_csv import RecordsFile
from careloop.core.errors import ValidationFailed

NOW = dt.datetime(2024, 6, 15, 12, 0)
PROM = example_forms().form("ibd_symptoms_prom")
COLUMNS = [
    "patient_id", "prom_date", "completed_by", "carer_relationship", "tummy_pain",
    "stools_worst_day", "blood_in_stool", "urgency", "tiredness", "missed_days", "worry",
    "symptom_score", "what_matters", "wants_contact", "contact_phone",
    "ibd_symptoms_prom_complete",
]  # fmt: skip


def csv_text(*rows: list[str], header: list[str] = COLUMNS) -> str:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return "\n".join(lines) + "\n"


GOOD = ["p1", "2024-06-10", "1", "", "2", "4", "1", "0", "3", "2", "40", "", "", "0", "", "2"]


def read(text: str | bytes, **kw: object) -> RecordsFile:
    return read_records_csv(
        text,
        PROM,
        name="proms.csv",
        key_columns=("patient_id",),
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )


def test_good_rows_are_validated_and_calculated():
    parsed = read(csv_text(GOOD, ["p2", *GOOD[1:]]))
    assert [r.row for r in parsed.rows] == [2, 3]
    assert all(r.ok for r in parsed.rows)
    first = parsed.rows[0]
    assert first.values["symptom_score"] == "6"
    assert first.extras == {"patient_id": "p1", "ibd_symptoms_prom_complete": "2"}
    assert parsed.form_version == PROM.content_hash()
    parsed.raise_for_errors()


def test_type_errors_are_located_as_file_row_field():
    bad = list(GOOD)
    bad[COLUMNS.index("stools_worst_day")] = "four"
    bad[COLUMNS.index("tummy_pain")] = "7"
    parsed = read(csv_text(GOOD, bad))
    assert [r.ok for r in parsed.rows] == [True, False]
    assert [(d.location, d.value) for d in parsed.errors] == [
        ("proms.csv:3:tummy_pain", "7"),
        ("proms.csv:3:stools_worst_day", "four"),
    ]
    assert len(parsed.valid_rows) == 1 and parsed.rejected_rows[0].row == 3
    with pytest.raises(ValidationFailed, match=r"2 problem\(s\) in 1 of 2 row\(s\)"):
        parsed.raise_for_errors()


def test_required_when_shown_applies_per_row():
    carer = list(GOOD)
    carer[COLUMNS.index("completed_by")] = "3"
    parsed = read(csv_text(carer))
    assert [d.location for d in parsed.errors] == ["proms.csv:2:carer_relationship"]


def test_an_empty_key_cell_is_an_error_of_that_row():
    no_key = ["", *GOOD[1:]]
    parsed = read(csv_text(no_key))
    assert [d.location for d in parsed.errors] == ["proms.csv:2:patient_id"]


def test_wrong_headers_are_all_listed_and_nothing_is_read():
    header = [c for c in COLUMNS if c not in ("patient_id", "urgency")] + ["tummy_pian", "colour"]
    with pytest.raises(ValidationFailed) as info:
        read(csv_text(header=header))
    found = {(d.location, d.message) for d in info.value.details}
    messages = " | ".join(m for _, m in found)
    assert "unknown column 'tummy_pian'" in messages and "did you mean 'tummy_pain'?" in messages
    assert "unknown column 'colour'" in messages
    assert "missing key column 'patient_id'" in messages
    assert ("proms.csv:1:urgency", "missing column 'urgency' for field 'urgency'") in found


def test_a_subset_of_columns_is_allowed_when_asked():
    header = ["patient_id", "prom_date", "completed_by", "tummy_pain", "stools_worst_day",
              "blood_in_stool", "urgency", "tiredness"]  # fmt: skip
    parsed = read(csv_text(["p1", "2024-06-01", "1", "0", "1", "0", "0", "0"], header=header),
                  missing_fields="allow")  # fmt: skip
    assert parsed.rows[0].ok and parsed.rows[0].values["symptom_score"] == "0"


def test_a_repeated_column_is_an_error():
    with pytest.raises(ValidationFailed, match="header does not match") as info:
        read(csv_text(header=[*COLUMNS, "worry"]))
    assert any("appears twice" in d.message for d in info.value.details)


def test_a_non_utf8_file_is_refused_with_the_row_and_how_to_fix_it():
    text = csv_text(GOOD, [*GOOD[:12], "Ça va", *GOOD[13:]])
    with pytest.raises(ValidationFailed, match="not UTF-8") as info:
        read(text.encode("cp1252"))
    detail = info.value.details[0]
    assert detail.location == "proms.csv:3"
    assert "CSV UTF-8" in detail.message and "iconv" in detail.message


def test_a_ragged_row_is_reported():
    parsed = read(csv_text(GOOD[:-1]))
    assert "15 cells but the header has 16" in parsed.errors[0].message


def test_checkbox_columns_and_day_first_dates_of_the_visit_form():
    visit = example_forms().form("ibd_visit")
    header = ["visit_date", "steroid_start", "medications___1", "medications___9",
              "medications_other"]  # fmt: skip
    text = "\n".join([",".join(header), "31/05/2024,02/05/2024,1,1,Thalidomide"]) + "\n"
    parsed = read_records_csv(text, visit, name="v.csv", missing_fields="allow",
                              date_format="dmy", now=NOW)  # fmt: skip
    row = parsed.rows[0]
    assert row.values["visit_date"] == "2024-05-31"
    assert row.values["medications"] == ("1", "9")
    assert row.values["medications_other"] == "Thalidomide"
    # steroid_start is hidden (no steroid_use): its value is dropped, not stored.
    assert "steroid_start" not in row.values


def test_a_checkbox_named_without_its_option_gets_a_hint():
    visit = example_forms().form("ibd_visit")
    with pytest.raises(ValidationFailed) as info:
        read_records_csv("visit_date,medications\n2024-01-01,1\n", visit, name="v.csv",
                         missing_fields="allow")  # fmt: skip
    assert "medications___1" in info.value.details[0].message


def test_an_empty_file_is_an_error():
    with pytest.raises(ValidationFailed, match="is empty"):
        read(b"")


def test_a_cell_longer_than_the_csv_reader_takes_is_a_located_error_not_a_crash():
    long_answer = "x" * 200_000  # Python's csv module stops at 131,072 characters a cell
    row = [*GOOD[:12], long_answer, *GOOD[13:]]
    with pytest.raises(ValidationFailed) as info:
        read(csv_text(GOOD, row))
    (detail,) = info.value.details
    assert detail.location == "proms.csv:3"
    assert "longer than 131,072 characters" in detail.message
    assert "quote" in detail.message
