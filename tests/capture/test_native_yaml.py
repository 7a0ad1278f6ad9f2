"""careloop's YAML form format: round trips and located errors."""

from __future__ import annotations

import pytest

from careloop.capture import (
    example_forms,
    read_forms_yaml,
    read_redcap_dictionary,
    write_forms_yaml,
)
from careloop.core.errors import ValidationFailed


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as info:
        read_forms_yaml(text, name="forms.yaml")
    return [(d.location, d.message) for d in info.value.details]


def test_the_example_round_trips_through_yaml():
    d = example_forms()
    text = write_forms_yaml(d)
    again = read_forms_yaml(text)
    assert again == d
    assert [f.title for f in again.forms] == [f.title for f in d.forms]
    assert again.form("ibd_symptoms_prom").patient_reported
    assert write_forms_yaml(again) == text


def test_the_large_dictionary_round_trips_through_yaml(large_dictionary_csv: str):
    d = read_redcap_dictionary(large_dictionary_csv)
    assert read_forms_yaml(write_forms_yaml(d)) == d


def test_written_yaml_is_readable():
    text = write_forms_yaml(example_forms().form("ibd_visit"))
    assert text.startswith("format: careloop.forms/1\nforms:\n  - name: ibd_visit\n")
    assert "show_if: \"[disease_type] = '1'\"" in text
    assert "      - name: bmi\n        type: calc\n" in text
    assert "description: |\n" in text


def test_a_single_form_may_stand_at_the_top_and_yes_no_labels_stay_text():
    d = read_forms_yaml(
        """
name: quick
fields:
  - name: ok
    type: radio
    choices: {1: Yes, 0: No, 2: On}
"""
    )
    assert [c.label for c in d.form("quick").field("ok").choices] == ["Yes", "No", "On"]


def test_unknown_keys_and_types_name_the_line_and_field():
    found = problems(
        """forms:
  - name: f
    fields:
      - name: a
        type: text
        colour: red
      - name: b
        type: textbox
      - name: c
        type: text
        validation: postcode_uk
      - name: d
        type: yesno
        required: "yes"
        code: {system: ICD10, code: K50}
        omop_domain: Visit
"""
    )
    assert found[0][0] == "forms.yaml:4:a" and "unknown keys ['colour']" in found[0][1]
    assert found[1][0] == "forms.yaml:7:b" and "unknown field type 'textbox'" in found[1][1]
    assert found[2][0] == "forms.yaml:9:c" and "unknown validation type" in found[2][1]
    d_messages = [m for loc, m in found if loc == "forms.yaml:12:d"]
    assert len(d_messages) == 3
    assert any("code must be" in m for m in d_messages)
    assert any("omop_domain must be one of" in m for m in d_messages)
    assert any("required must be true or false" in m for m in d_messages)


def test_branching_to_a_missing_field_names_the_line():
    found = problems(
        """forms:
  - name: f
    fields:
      - {name: a, type: text}
      - {name: b, type: text, show_if: "[z] = '1'"}
"""
    )
    assert found == [
        ("forms.yaml:5:b", "branching logic refers to [z], which is not a field of this dictionary")
    ]


def test_a_yaml_syntax_error_names_the_line():
    found = problems("forms:\n  - name: f\n    fields: [\n")
    assert found[0][0] == "forms.yaml:4" and "YAML syntax error" in found[0][1]


def test_a_true_or_false_code_must_be_quoted_and_the_error_says_so():
    found = problems("name: f\nfields:\n  - {name: a, type: radio, choices: {true: Yes}}\n")
    assert "quote it" in found[0][1]


def test_a_form_stored_as_json_of_its_dict_rebuilds_with_the_same_version(
    large_dictionary_csv: str, redcap_data
):
    # The registry stores form.to_dict() as JSON and rebuilds the form by reading
    # that JSON as YAML; the version (content hash) must survive the trip.
    import json

    from careloop.capture.native_yaml import FORMAT

    dictionaries = [
        example_forms(),
        read_redcap_dictionary(large_dictionary_csv),
        read_redcap_dictionary(redcap_data / "bridge2ai_voice_excerpt.csv"),
    ]
    for d in dictionaries:
        for form in d.forms:
            text = json.dumps({"format": FORMAT, "forms": [form.to_dict()]})
            again = read_forms_yaml(text).forms[0]
            assert again == form
            assert again.content_hash() == form.content_hash()


def test_a_billion_laughs_dictionary_is_refused_at_the_line_that_passes_the_alias_budget():
    from tests.core.test_limits import billion_laughs

    assert problems(billion_laughs()) == [
        (
            "forms.yaml:5",
            "aliases (*name) would repeat more than 10,000 values; "
            "write the values out or use fewer aliases",
        )
    ]


def test_a_few_aliases_for_shared_choices_still_read():
    text = """\
forms:
  - name: visit
    title: Visit
    fields:
      - {name: record_id, type: text, label: Record}
      - name: fever
        type: radio
        label: Fever?
        choices: &yes_no
          "1": "Yes"
          "0": "No"
      - name: cough
        type: radio
        label: Cough?
        choices: *yes_no
"""
    form = read_forms_yaml(text).form("visit")
    assert [c.label for c in form.field("cough").choices] == ["Yes", "No"]


def test_a_dictionary_nested_past_the_limit_is_refused_with_its_line():
    text = "forms:\n  - name: x\n    fields: " + "[" * 500 + "]" * 500 + "\n"
    ((location, message),) = problems(text)
    assert location == "forms.yaml:3"
    assert "nested more than 100 levels deep" in message
