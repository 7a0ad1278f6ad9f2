"""Answers in words, the form's visit date field, moving a response's date, and data history."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from careloop.capture import entry, proms
from careloop.capture.answers import answer_text, calc_legend, key_values
from careloop.capture.event_dates import event_date_field
from careloop.capture.examples import example_forms
from careloop.core.errors import Conflict, NotFound, ValidationFailed
from careloop.trust.patient_lists import page_of_patients, registration_sites
from tests.capture.registry_helpers import (
    PROM,
    VISIT,
    audit_seq,
    audit_since,
    crohns_visit,
    import_examples,
    principal,
    prom_answers,
)
from tests.foundation import Installation


@pytest.fixture(scope="module")
def inst(installation: Installation) -> Iterator[Installation]:
    """The module's installation (SQLite, and PostgreSQL when there is one) with the forms."""
    import_examples(installation)
    yield installation


def _form(name: str):
    return next(f for f in example_forms().forms if f.name == name)


def test_choices_show_their_labels_and_a_calculated_category_its_words():
    visit = _form(VISIT)
    assert answer_text(visit.field("disease_type"), "2") == "Ulcerative colitis"
    assert answer_text(visit.field("disease_type"), "9") == "9"  # unknown codes as they are
    assert answer_text(visit.field("pucai_category"), "1") == "mild (1)"
    assert calc_legend(visit.field("pucai_category")) == {
        "0": "remission",
        "1": "mild",
        "2": "moderate",
        "3": "severe",
    }
    assert calc_legend(visit.field("bmi")) == {}  # "(0–85)"-style labels are not a legend
    assert calc_legend(visit.field("pucai_total")) == {}
    assert answer_text(visit.field("weight_kg"), None) == ""
    prom = _form(PROM)
    assert answer_text(prom.field("wants_contact"), "1") == "Yes"


def test_key_values_put_calculated_results_first_then_coded_answers():
    visit = _form(VISIT)
    values = {**crohns_visit(), "bmi": "16.4", "shpcdai_total": "20"}
    assert key_values(visit, values) == (
        ("Body mass index", "16.4"),
        ("Short PCDAI total (0–100)", "20"),
        ("Type of visit", "Outpatient clinic"),
        ("Disease type", "Crohn's disease"),
        ("Physician global assessment of disease activity", "Mild"),
    )


def test_a_forms_visit_date_field_is_its_first_required_date_that_always_shows():
    assert event_date_field(_form(VISIT)) == "visit_date"
    assert event_date_field(_form(PROM)) == "prom_date"


def test_a_response_moves_to_another_visit_date_checked_and_audited(inst):
    patient = inst.patient_ids["A"][0]
    made = entry.create_response(
        inst.registry,
        inst.operator,
        VISIT,
        patient_id=patient,
        event_date="2025-01-10",
        values=crohns_visit("2025-01-10"),
        status="draft",
    )
    other = entry.create_response(
        inst.registry,
        inst.operator,
        VISIT,
        patient_id=patient,
        event_date="2025-01-20",
        values=crohns_visit("2025-01-20"),
        status="draft",
    )
    with pytest.raises(Conflict):
        entry.update_response(
            inst.registry,
            inst.operator,
            made.id,
            values=crohns_visit("2025-01-20"),
            event_date="2025-01-20",
        )
    with pytest.raises(ValidationFailed) as refused:
        entry.update_response(
            inst.registry, inst.operator, made.id, values=crohns_visit(), event_date="2999-01-01"
        )
    assert refused.value.details[0].location == "event_date"
    before = audit_seq(inst)
    moved = entry.update_response(
        inst.registry,
        inst.operator,
        made.id,
        values=crohns_visit("2025-01-11"),
        event_date="2025-01-11",
    )
    assert moved.event_date.isoformat() == "2025-01-11"
    [audited] = [r for r in audit_since(inst, before) if r.action == "update"]
    assert json.loads(audited.details)["event_date"] == "2025-01-10->2025-01-11"
    assert entry.get_response(inst.registry, inst.operator, other.id).event_date.isoformat() == (
        "2025-01-20"
    )
    history = entry.response_history(inst.registry, inst.operator, made.id)
    assert [(c.field, c.old, c.new) for c in history.revisions[-1].changes] == [
        ("visit_date", "2025-01-10", "2025-01-11")
    ]


def test_a_prom_link_save_is_in_the_history_as_the_patients(inst):
    patient = inst.patient_ids["A"][1]
    link = proms.create_prom_link(inst.registry, inst.operator, PROM, patient_id=patient)
    saved = proms.submit_prom_link(
        inst.registry, link.token, values=prom_answers("2025-02-02"), event_date="2025-02-02"
    )
    [created] = entry.response_history(inst.registry, inst.operator, saved.id).revisions
    assert created.action == "created" and created.values_kept
    assert created.saved_by.startswith("the patient or their carer")
    assert ("completed_by", "Me (the patient)") in {(c.field, c.new) for c in created.changes}


def test_history_is_for_those_who_may_read_the_patient_and_is_audited(inst):
    made = entry.create_response(
        inst.registry,
        inst.operator,
        VISIT,
        patient_id=inst.patient_ids["A"][0],
        event_date="2025-03-03",
        values=crohns_visit("2025-03-03"),
        status="complete",
    )
    with pytest.raises(NotFound):
        entry.response_history(inst.registry, principal(inst, "clinician@B"), made.id)
    before = audit_seq(inst)
    entry.response_history(inst.registry, principal(inst, "clinician@A"), made.id)
    [read] = audit_since(inst, before)
    assert (read.action, read.category, read.patient_id) == (
        "read",
        "clinical",
        inst.patient_ids["A"][0],
    )
    assert json.loads(read.details)["history"] is True


def test_patients_are_registered_only_at_the_callers_own_sites(inst):
    assert registration_sites(inst.registry, principal(inst, "clinician@A")) == ["A"]
    assert registration_sites(inst.registry, inst.operator) == ["A", "B"]
    assert registration_sites(inst.registry, principal(inst, "analyst")) == []
    assert registration_sites(inst.registry, principal(inst, "patient@A")) == []


def test_a_page_of_patients_says_how_many_there_are_in_all(inst):
    first = page_of_patients(inst.registry, principal(inst, "clinician@A"), limit=1)
    second = page_of_patients(inst.registry, principal(inst, "clinician@A"), offset=1, limit=1)
    assert first.total == second.total >= 2
    assert first.patients[0].id != second.patients[0].id
    assert {p.site for p in (*first.patients, *second.patients)} == {"A"}
