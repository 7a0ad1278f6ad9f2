"""FHIR R4 Questionnaire export and import (fhir.resources R4B)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

from careloop.capture import (
    example_forms,
    form_to_questionnaire,
    read_forms_yaml,
    read_questionnaire,
    read_redcap_dictionary,
    write_questionnaire,
)
from careloop.capture.questionnaire import EXTENSION
from careloop.core.errors import ValidationFailed

VISIT = example_forms().form("ibd_visit")
PROM = example_forms().form("ibd_symptoms_prom")


def items(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}

    def walk(xs: list[dict[str, Any]]) -> None:
        for x in xs:
            out[x["linkId"]] = x
            walk(x.get("item", []))

    walk(data["item"])
    return out


def ext(item: dict[str, Any], name: str) -> Any:
    for e in item.get("extension", []):
        if e["url"] == EXTENSION + name:
            return next(v for k, v in e.items() if k.startswith("value"))
    return None


@pytest.mark.parametrize("form", [VISIT, PROM], ids=lambda f: f.name)
def test_the_example_forms_round_trip_through_a_validated_questionnaire(form):
    text = write_questionnaire(form)
    Questionnaire.model_validate_json(text)  # valid R4 per fhir.resources
    again = read_questionnaire(text)
    assert again == form
    assert again.title == form.title and again.patient_reported == form.patient_reported


def test_the_large_dictionary_round_trips_form_by_form(large_dictionary_csv: str):
    d = read_redcap_dictionary(large_dictionary_csv)
    for form in d.forms:
        assert read_questionnaire(write_questionnaire(form, indent=None)) == form


def test_items_use_standard_elements():
    data = json.loads(write_questionnaire(VISIT))
    assert data["resourceType"] == "Questionnaire" and data["version"] == VISIT.content_hash()
    it = items(data)
    assert it["visit_date"]["type"] == "date" and it["visit_date"]["required"] is True
    assert it["pga"]["type"] == "choice"
    assert [o["valueCoding"]["display"] for o in it["pga"]["answerOption"]] == [
        "Quiescent", "Mild", "Moderate", "Severe",
    ]  # fmt: skip
    assert it["medications"]["repeats"] is True
    assert it["bmi"]["type"] == "decimal" and it["bmi"]["readOnly"] is True
    assert ext(it["bmi"], "calculation").startswith("round(")
    assert it["height_cm"]["code"] == [
        {"system": "http://loinc.org", "code": "8302-2", "display": "Body height"}
    ]
    minimum = next(e for e in it["height_cm"]["extension"] if e["url"].endswith("/minValue"))
    assert minimum["valueDecimal"] == 40
    assert it["anti_tnf_level"]["type"] == "boolean"
    assert (
        it["height_cm__section"]["type"] == "group" and it["height_cm__section"]["text"] == "Growth"
    )


def test_simple_branching_becomes_enable_when_without_an_extension():
    it = items(json.loads(write_questionnaire(VISIT)))
    pucai = it["pucai_pain"]
    assert pucai["enableWhen"] == [
        {"question": "disease_type", "operator": "=", "answerCoding": {"code": "2"}},
        {"question": "disease_type", "operator": "=", "answerCoding": {"code": "3"}},
    ]
    assert pucai["enableBehavior"] == "any"
    assert ext(pucai, "branching-logic") is None
    steroid = it["steroid_start"]
    assert steroid["enableWhen"] == [
        {"question": "steroid_use", "operator": "!=", "answerCoding": {"code": "0"}},
        {"question": "steroid_use", "operator": "exists", "answerBoolean": True},
    ]
    assert steroid["enableBehavior"] == "all"
    other = it["medications_other"]
    assert other["enableWhen"] == [
        {"question": "medications", "operator": "=", "answerCoding": {"code": "9"}}
    ]
    assert it["self_management_goal_text"]["enableWhen"] == [
        {"question": "self_management_goal", "operator": "=", "answerBoolean": True}
    ]


def test_logic_enable_when_cannot_say_travels_in_an_extension():
    form = read_forms_yaml(
        """
name: f
fields:
  - {name: age, type: text, validation: integer}
  - {name: a, type: text, show_if: "[age] > 5 and ([age] < 10 or [age] = 99)"}
  - {name: b, type: text, show_if: "[age] > '5'"}
  - {name: c, type: text, show_if: "datediff([age], 'today', 'y') > 1"}
  - {name: d, type: text, show_if: "[age] >= 18"}
"""
    ).form("f")
    it = items(json.loads(write_questionnaire(form)))
    assert "enableWhen" not in it["a"]
    assert ext(it["a"], "branching-logic") == "[age] > 5 and ([age] < 10 or [age] = 99)"
    # '5' as text maps to answerInteger 5, which reads back as 5: not lossless, so kept.
    assert it["b"]["enableWhen"][0]["answerInteger"] == 5
    assert ext(it["b"], "branching-logic") == "[age] > '5'"
    assert ext(it["c"], "branching-logic") is not None
    assert ext(it["d"], "branching-logic") is None
    assert read_questionnaire(write_questionnaire(form)) == form


def foreign_questionnaire() -> dict[str, Any]:
    """A Questionnaire written by someone else: no careloop extensions at all."""
    return {
        "resourceType": "Questionnaire",
        "id": "phq-like",
        "name": "MoodCheck",
        "title": "Mood check",
        "status": "active",
        "item": [
            {"linkId": "1", "type": "group", "text": "About you", "item": [
                {"linkId": "1.1", "type": "choice", "text": "Smoker?", "required": True,
                 "answerOption": [{"valueCoding": {"code": "Y", "display": "Yes"}},
                                  {"valueCoding": {"code": "N", "display": "No"}}]},
                {"linkId": "1.2", "type": "integer", "text": "Cigarettes a day",
                 "enableWhen": [{"question": "1.1", "operator": "=",
                                 "answerCoding": {"code": "Y"}}],
                 "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/minValue",
                                "valueInteger": 1}]},
            ]},
            {"linkId": "mood", "type": "choice", "repeats": True, "text": "Feelings",
             "answerOption": [{"valueCoding": {"code": "sad"}}, {"valueCoding": {"code": "calm"}}]},
            {"linkId": "why", "type": "text", "text": "Why?",
             "enableWhen": [{"question": "mood", "operator": "=", "answerCoding": {"code": "sad"}}]},
            {"linkId": "when", "type": "dateTime", "text": "When?",
             "initial": [{"valueDateTime": "2024-01-01T10:00:00Z"}]},
            {"linkId": "ok", "type": "boolean", "text": "OK?",
             "enableWhen": [{"question": "1.2", "operator": ">", "answerInteger": 10}]},
        ],
    }  # fmt: skip


def test_a_foreign_questionnaire_is_read_with_standard_elements_only():
    form = read_questionnaire(foreign_questionnaire())
    assert form.name == "moodcheck" and form.title == "Mood check"
    assert [f.name for f in form.fields] == ["q_1_1", "q_1_2", "mood", "why", "when", "ok"]
    smoker, count, mood, why, when, ok = form.fields
    assert smoker.type.value == "radio" and smoker.section_header == "About you"
    assert smoker.required and smoker.choice_codes == ("Y", "N")
    assert count.validation == "integer" and count.min_value == "1"
    assert count.branching_logic is not None
    assert count.branching_logic.canonical == "[q_1_1] = 'Y'"
    assert mood.type.value == "checkbox" and mood.choices[0].label == "sad"
    assert why.type.value == "notes" and why.branching_logic is not None
    assert why.branching_logic.canonical == "[mood(sad)] = '1'"
    assert when.validation == "datetime_ymd" and when.annotation == '@DEFAULT="2024-01-01 10:00"'
    assert ok.type.value == "yesno"
    assert ok.branching_logic is not None and ok.branching_logic.canonical == "[q_1_2] > 10"


def test_unsupported_items_and_bad_references_are_located():
    q = foreign_questionnaire()
    q["item"].append({"linkId": "scan", "type": "reference", "text": "Clinician"})
    q["item"].append(
        {
            "linkId": "x",
            "type": "string",
            "enableWhen": [{"question": "ghost", "operator": "exists", "answerBoolean": True}],
        }
    )
    with pytest.raises(ValidationFailed) as info:
        read_questionnaire(q, name="q.json")
    found = [(d.location, d.message) for d in info.value.details]
    assert found[0][0] == "q.json:item[5] (linkId 'scan')"
    assert "'reference' cannot be held" in found[0][1]
    assert found[1][0] == "q.json:item[6] (linkId 'x')" and "'ghost'" in found[1][1]


def test_invalid_fhir_is_refused_with_the_path_of_the_problem():
    with pytest.raises(ValidationFailed, match="not a valid FHIR R4 Questionnaire") as info:
        read_questionnaire(
            {"resourceType": "Questionnaire", "status": "active", "item": [{"type": "string"}]},
            name="q.json",
        )
    assert info.value.details[0].location == "q.json:item.0.linkId"
    with pytest.raises(ValidationFailed, match="expected a FHIR Questionnaire"):
        read_questionnaire('{"resourceType": "Patient"}')
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        read_questionnaire(b"{", name="q.json")


def test_the_model_is_an_r4b_questionnaire():
    q = form_to_questionnaire(PROM)
    assert isinstance(q, Questionnaire)
    assert q.extension is not None and q.extension[0].valueBoolean is True


def test_a_choice_with_an_empty_label_exports_as_a_valid_questionnaire_and_comes_back():
    # REDCap allows "3," (a code with no label); FHIR strings cannot be empty, and the
    # Questionnaire builder used to fail on it (forms export, fhir export, /fhir/Questionnaire).
    from careloop.capture import read_redcap_dictionary
    from tests.capture.test_redcap import dictionary

    form = read_redcap_dictionary(
        dictionary(
            'pick,f,,radio,Pick,"1, One | 3,",,,,,,,,,,,," @DEFAULT=""3"""',
            "up,f,,file,Upload,,,signature,,,,,,,,,,",
            "drug,f,,text,Drug,BIOPORTAL:RXNORM,,,,,,,,,,,,",
        )
    ).form("f")
    text = write_questionnaire(form)
    options = json.loads(text)["item"][0]["answerOption"]
    assert options == [
        {"valueCoding": {"code": "1", "display": "One"}},
        {"valueCoding": {"code": "3"}},
    ]
    assert json.loads(text)["item"][1]["type"] == "attachment"
    assert read_questionnaire(text) == form
