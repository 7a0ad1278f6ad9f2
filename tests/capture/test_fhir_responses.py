"""Form responses as FHIR QuestionnaireResponses: written and read back, every field type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from careloop.capture import example_forms, read_forms_yaml
from careloop.capture.fhir_responses import (
    EVENT_DATE_EXTENSION,
    FormReference,
    ResponseSubject,
    form_reference,
    response_from_fhir,
    response_to_fhir,
)
from careloop.capture.forms import Form
from careloop.core.errors import ValidationFailed

EVERY_TYPE_YAML = """
format: careloop.forms/1
forms:
  - name: every_type
    title: Every field type the ibd forms do not have
    fields:
      - name: intro
        type: descriptive
        label: Fill in what applies.
      - name: clinic
        type: dropdown
        label: Clinic
        choices: {"A1": North clinic, "B-2": South clinic}
      - name: consented
        type: truefalse
        label: Consent form signed
      - name: seen_at
        type: text
        label: Time seen
        validation: time
      - name: admitted
        type: text
        label: Admitted at
        validation: datetime_ymd
      - name: sampled
        type: text
        label: Sample taken at
        validation: datetime_seconds_ymd
      - name: crp
        type: text
        label: CRP
        validation: number_2dp
        section: Laboratory
      - name: ratio
        type: text
        label: A ratio
        validation: number
      - name: contact
        type: text
        label: E-mail
        validation: email
"""


def every_type_form() -> Form:
    return read_forms_yaml(EVERY_TYPE_YAML, name="every_type.yaml").forms[0]


@dataclass(frozen=True)
class Stored:
    """A stored response as response_to_fhir reads it."""

    values: dict[str, Any]
    event_date: date = date(2024, 3, 1)
    status: str = "complete"
    patient_entered: bool = False
    id: int = 7
    updated_at: datetime = field(default_factory=lambda: datetime(2024, 3, 5, 9, 30, tzinfo=UTC))


SUBJECT = ResponseSubject(pseudo_id="PSEUDO1", site="A", local_id="MRN-1")


def as_json(response: Stored, form: Form) -> dict[str, Any]:
    """What an export file holds: the resource's JSON, read back with the json module."""
    resource = response_to_fhir(
        response, form=form, form_version=form.content_hash(), subject=SUBJECT
    )
    data: dict[str, Any] = json.loads(resource.model_dump_json(exclude_none=True))
    return data


def visit_values() -> dict[str, Any]:
    return {
        "visit_date": "2024-03-01",
        "visit_type": "1",
        "disease_type": "1",
        "pga": "2",
        "height_cm": "131.0",
        "weight_kg": "28.4",
        "shpcdai_pain": "1",
        "shpcdai_stools": "0",
        "shpcdai_wellbeing": "0",
        "shpcdai_weight": "1",
        "shpcdai_perirectal": "0",
        "shpcdai_eim": "0",
        "steroid_use": "1",
        "steroid_start": "2024-02-10",
        "medications": ["2", "4", "9"],
        "medications_other": "Thalidomide",
        "anti_tnf_level": "1",
        "nutrition": "1",
        "vitamin_d": "0",
        "clinician_notes": "Growing well.\nReview in 3 months.",
    }


def test_a_visit_with_every_ibd_field_type_comes_back_with_the_same_values() -> None:
    form = example_forms().form("ibd_visit")
    stored = Stored(visit_values())
    data = as_json(stored, form)
    back = response_from_fhir(data, form, location="x.ndjson:1")
    # bmi and shpcdai_total are calculated: computed again on the way in.
    expected = {**visit_values(), "bmi": "16.5"}
    assert {k: v for k, v in back.values.items() if k != "shpcdai_total"} == expected
    assert back.event_date == date(2024, 3, 1)
    assert back.status == "complete"
    assert back.form == "ibd_visit"
    assert back.form_version == form.content_hash()
    assert back.resource_id == "response-7"
    assert back.patient_entered is False


def test_every_other_field_type_comes_back_with_the_same_text() -> None:
    form = every_type_form()
    values = {
        "clinic": "B-2",
        "consented": "0",
        "seen_at": "14:05",
        "admitted": "2024-03-01 13:45",
        "sampled": "2024-03-01 13:50:07",
        "crp": "5.10",
        "ratio": "0.125",
        "contact": "ada@example.org",
    }
    data = as_json(Stored(values, status="draft", patient_entered=True), form)
    answers = {i["linkId"]: i["answer"] for i in _flat(data)["item"]}
    assert answers["crp"] == [{"valueDecimal": 5.1}]  # JSON numbers carry no trailing zeros
    assert answers["seen_at"] == [{"valueTime": "14:05:00"}]
    back = response_from_fhir(data, form)
    assert back.values == values
    assert (back.status, back.patient_entered) == ("draft", True)


def test_the_event_date_travels_as_an_extension_and_falls_back_to_authored() -> None:
    form = example_forms().form("ibd_visit")
    data = as_json(Stored(visit_values(), event_date=date(2024, 3, 1)), form)
    assert data["extension"] == [{"url": EVENT_DATE_EXTENSION, "valueDate": "2024-03-01"}]
    assert data["authored"].startswith("2024-03-05")
    del data["extension"]
    assert response_from_fhir(data, form).event_date == date(2024, 3, 5)
    del data["authored"]
    with pytest.raises(ValidationFailed) as caught:
        response_from_fhir(data, form, location="f.ndjson:4")
    assert caught.value.details[0].location == "f.ndjson:4: QuestionnaireResponse.authored"


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    """The resource with its items out of their section groups (items match at any depth)."""
    items: list[dict[str, Any]] = []
    for item in data["item"]:
        items.extend(item.get("item", [item]))
    return {**data, "item": items}


def _locations(data: dict[str, Any], form: Form) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        response_from_fhir(data, form, location="bad.ndjson:2")
    return [(d.location, d.message) for d in caught.value.details]


def test_an_unknown_link_id_a_wrong_type_and_an_invalid_value_are_located_by_fhir_path() -> None:
    form = example_forms().form("ibd_visit")
    data = _flat(as_json(Stored(visit_values()), form))
    index = {item["linkId"]: i for i, item in enumerate(data["item"])}
    data["item"][index["height_cm"]]["answer"] = [{"valueString": "131.0"}]
    data["item"][index["weight_kg"]]["answer"] = [{"valueDecimal": 900.5}]
    data["item"][index["pga"]]["linkId"] = "pga_score"
    found = dict(_locations(data, form))
    assert set(found) == {
        f"bad.ndjson:2: QuestionnaireResponse.item[{index['height_cm']}].answer[0]",
        f"bad.ndjson:2: QuestionnaireResponse.item[{index['pga']}].linkId",
    }
    height = found[f"bad.ndjson:2: QuestionnaireResponse.item[{index['height_cm']}].answer[0]"]
    assert "takes valueDecimal or valueInteger, not valueString" in height
    assert (
        "has no field 'pga_score'"
        in found[f"bad.ndjson:2: QuestionnaireResponse.item[{index['pga']}].linkId"]
    )
    # Once the answers' types are right, the form's own rules speak, at the same place.
    data["item"][index["height_cm"]]["answer"] = [{"valueDecimal": 131.0}]
    data["item"][index["pga"]]["linkId"] = "pga"
    ((where, message),) = _locations(data, form)
    assert where == f"bad.ndjson:2: QuestionnaireResponse.item[{index['weight_kg']}].answer[0]"
    assert "must be at most 250" in message


def test_a_missing_required_answer_names_the_link_id_to_add_unless_the_response_is_a_draft() -> (
    None
):
    form = example_forms().form("ibd_visit")
    values = {k: v for k, v in visit_values().items() if k != "pga"}
    data = as_json(Stored(values), form)
    ((where, message),) = _locations(data, form)
    assert where == "bad.ndjson:2: QuestionnaireResponse.item"
    assert "add an item with linkId 'pga'" in message
    data["status"] = "in-progress"
    assert response_from_fhir(data, form).status == "draft"


def test_a_whole_number_for_a_fixed_decimals_field_gets_its_decimal_places() -> None:
    form = every_type_form()
    data = as_json(Stored({"crp": "5.10"}), form)
    data["item"][0]["item"][0]["answer"] = [{"valueInteger": 5}]
    assert response_from_fhir(data, form).values == {"crp": "5.00"}


def test_more_decimal_places_than_the_field_keeps_are_refused_not_rounded() -> None:
    form = every_type_form()
    data = as_json(Stored({"crp": "5.10"}), form)
    data["item"][0]["item"][0]["answer"] = [{"valueDecimal": 5.125}]
    ((where, message),) = _locations(data, form)
    assert where == "bad.ndjson:2: QuestionnaireResponse.item[0].item[0].answer[0]"
    assert "exactly 2 decimal places" in message


def test_a_status_careloop_does_not_keep_and_two_answers_to_a_radio_are_refused() -> None:
    form = example_forms().form("ibd_visit")
    data = _flat(as_json(Stored(visit_values()), form))
    data["status"] = "entered-in-error"
    index = {item["linkId"]: i for i, item in enumerate(data["item"])}
    data["item"][index["pga"]]["answer"].append({"valueCoding": {"code": "3"}})
    locations = [where for where, _ in _locations(data, form)]
    assert locations == [
        "bad.ndjson:2: QuestionnaireResponse.status",
        f"bad.ndjson:2: QuestionnaireResponse.item[{index['pga']}].answer[1]",
    ]


@pytest.mark.parametrize(
    ("canonical", "expected"),
    [
        ("urn:careloop:form:ibd_visit|abc123", FormReference("ibd_visit", "abc123")),
        ("urn:careloop:form:ibd_visit", FormReference("ibd_visit", None)),
        ("https://example.org/fhir/Questionnaire/ibd-visit|2", FormReference("ibd_visit", "2")),
        ("urn:careloop:form:", None),
    ],
)
def test_the_form_is_named_by_careloop_urn_or_a_canonical_url(
    canonical: str, expected: FormReference | None
) -> None:
    assert form_reference(canonical) == expected
