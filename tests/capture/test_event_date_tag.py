"""A data dictionary can declare a form's event date with ``@CARELOOP-EVENT-DATE``."""

from __future__ import annotations

import pytest

from careloop.capture import (
    REDCAP_COLUMNS,
    read_forms_yaml,
    read_redcap_dictionary,
    write_forms_yaml,
    write_redcap_dictionary,
)
from careloop.capture.redcap import EVENT_DATE_TAG, event_date_field
from careloop.core.errors import ValidationFailed

HEADER = ",".join(f'"{c}"' if "," in c else c for c in REDCAP_COLUMNS)


def row(name: str, form: str, ftype: str, validation: str = "", annotation: str = "") -> str:
    cells = [name, form, "", ftype, name.title(), "", "", validation, "", "", "", "", "", "",
             "", "", "", annotation]  # fmt: skip
    return ",".join(cells)


def dictionary(*rows: str) -> str:
    return HEADER + "\n" + "\n".join(rows) + "\n"


BP = dictionary(
    row("record_id", "demographics", "text"),
    row("date_enrolled", "demographics", "text", "date_ymd"),
    row("date_bp", "bp", "text", "date_ymd", "@HIDDEN-SURVEY @CARELOOP-EVENT-DATE"),
    row("bp_systolic", "bp", "text", "integer"),
    row("taken_at", "vitals", "text", "datetime_seconds_dmy", EVENT_DATE_TAG),
)


def test_the_tagged_date_field_is_the_forms_event_date_and_other_forms_have_none():
    forms = read_redcap_dictionary(BP, name="bp.csv")
    assert event_date_field(forms.form("bp")) == "date_bp"
    assert event_date_field(forms.form("vitals")) == "taken_at"
    assert event_date_field(forms.form("demographics")) is None
    # The tag stays in the annotation, beside REDCap's own action tags.
    assert forms.form("bp").field("date_bp").annotation == "@HIDDEN-SURVEY @CARELOOP-EVENT-DATE"


def test_the_tag_survives_redcap_and_yaml_round_trips_without_changing_the_version():
    forms = read_redcap_dictionary(BP, name="bp.csv")
    via_redcap = read_redcap_dictionary(write_redcap_dictionary(forms), name="again.csv")
    via_yaml = read_forms_yaml(write_forms_yaml(forms), name="again.yaml")
    for again in (via_redcap, via_yaml):
        assert event_date_field(again.form("bp")) == "date_bp"
        assert again.form("bp").content_hash() == forms.form("bp").content_hash()
    assert EVENT_DATE_TAG in write_redcap_dictionary(forms)


def test_the_tag_on_a_field_that_is_not_a_date_is_refused_naming_row_and_field():
    text = dictionary(
        row("record_id", "bp", "text"),
        row("bp_systolic", "bp", "text", "integer", EVENT_DATE_TAG),
    )
    with pytest.raises(ValidationFailed) as info:
        read_redcap_dictionary(text, name="bad.csv")
    [detail] = info.value.details
    assert detail.location == "bad.csv:3:bp_systolic"
    assert "a date or datetime" in detail.message and "(integer)" in detail.message


def test_the_tag_on_two_fields_of_one_form_is_refused():
    text = dictionary(
        row("record_id", "bp", "text"),
        row("date_bp", "bp", "text", "date_ymd", EVENT_DATE_TAG),
        row("date_entered", "bp", "text", "date_mdy", EVENT_DATE_TAG),
    )
    with pytest.raises(ValidationFailed) as info:
        read_redcap_dictionary(text, name="two.csv")
    [detail] = info.value.details
    assert detail.location == "two.csv:4:date_entered"
    assert "on 2 fields" in detail.message and "date_bp, date_entered" in detail.message


def test_a_longer_tag_that_merely_starts_the_same_is_not_the_event_date_tag():
    text = dictionary(
        row("record_id", "bp", "text"),
        row("date_bp", "bp", "text", "date_ymd", "@CARELOOP-EVENT-DATE-LOCAL"),
    )
    assert event_date_field(read_redcap_dictionary(text).form("bp")) is None


def test_a_yaml_form_with_the_tag_on_a_text_field_is_refused_when_asked_for_its_event_date():
    text = (
        "forms:\n- name: bp\n  fields:\n  - {name: record_id, type: text}\n"
        f"  - {{name: note, type: text, annotation: '{EVENT_DATE_TAG}'}}\n"
    )
    form = read_forms_yaml(text, name="bp.yaml").form("bp")
    with pytest.raises(ValidationFailed, match="declares its event date wrongly") as info:
        event_date_field(form)
    assert info.value.details[0].location == "bp:note"
