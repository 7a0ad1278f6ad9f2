"""Entering responses in the registry: validation, versions, concurrency, scope and audit.

Runs on SQLite and PostgreSQL (the module-scoped ``installation``); each test
uses its own event dates so they can share one installation.
"""

from __future__ import annotations

import json

import pytest

from careloop.capture import entry
from careloop.core.errors import Conflict, InputError, NotFound, PermissionDenied, ValidationFailed
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


@pytest.fixture(scope="module", autouse=True)
def _forms(installation):
    import_examples(installation)


def _a(inst, i=0):
    return inst.patient_ids["A"][i]


def test_a_complete_visit_is_stored_with_its_form_version_and_calculations(installation):
    clinician = principal(installation, "clinician@A")
    view = entry.create_response(
        installation.registry,
        clinician,
        VISIT,
        patient_id=_a(installation),
        event_date="2024-01-10",
        values=crohns_visit("2024-01-10"),
        status="complete",
    )
    assert view.status == "complete" and view.site == "A" and view.version == 1
    assert len(view.form_version) == 64
    assert view.values["shpcdai_total"] == "20"  # calculated on entry (10 points an item)
    assert view.values["bmi"]  # a calc field from height and weight
    assert not view.patient_entered
    again = entry.get_response(installation.registry, clinician, view.id, form=VISIT)
    assert again.values == view.values


def test_every_field_error_is_reported_at_once_by_field_name_and_nothing_is_saved(installation):
    clinician = principal(installation, "clinician@A")
    bad = crohns_visit("2024-01-11", pga="9", height_cm="tall", weight_kg="900.0", shpcdai_eim="")
    with pytest.raises(ValidationFailed) as caught:
        entry.create_response(
            installation.registry,
            clinician,
            VISIT,
            patient_id=_a(installation),
            event_date="2024-01-11",
            values={**bad, "not_a_field": "x"},
            status="complete",
        )
    by_field = {d.location: d for d in caught.value.details}
    assert set(by_field) == {"pga", "height_cm", "weight_kg", "shpcdai_eim", "not_a_field"}
    assert by_field["pga"].value == "9" and "[rule: choice]" in by_field["pga"].message
    assert "[rule: type]" in by_field["height_cm"].message
    assert "[rule: max]" in by_field["weight_kg"].message
    assert "[rule: required]" in by_field["shpcdai_eim"].message
    timeline = entry.patient_timeline(installation.registry, clinician, _a(installation))
    assert all(e.event_date.isoformat() != "2024-01-11" for e in timeline.events)


def test_required_fields_count_only_when_branching_logic_shows_them(installation):
    clinician = principal(installation, "clinician@A")
    # Ulcerative colitis: the PUCAI items are shown and required, the Crohn's items hidden.
    uc = crohns_visit("2024-01-12", disease_type="2")
    with pytest.raises(ValidationFailed) as caught:
        entry.create_response(
            installation.registry,
            clinician,
            VISIT,
            patient_id=_a(installation),
            event_date="2024-01-12",
            values=uc,
            status="complete",
        )
    missing = {d.location for d in caught.value.details}
    assert missing == {
        "pucai_pain",
        "pucai_bleeding",
        "pucai_consistency",
        "pucai_stools",
        "pucai_nocturnal",
        "pucai_activity",
    }
    # The hidden Crohn's answers are dropped, not stored.
    filled = {
        **uc,
        "pucai_pain": "5",
        "pucai_bleeding": "0",
        "pucai_consistency": "5",
        "pucai_stools": "5",
        "pucai_nocturnal": "0",
        "pucai_activity": "0",
    }
    view = entry.create_response(
        installation.registry,
        clinician,
        VISIT,
        patient_id=_a(installation),
        event_date="2024-01-12",
        values=filled,
        status="complete",
    )
    assert view.values["pucai_total"] == "15"
    assert not any(k.startswith("shpcdai") for k in view.values)


def test_a_draft_may_leave_required_fields_empty_but_not_break_other_rules(installation):
    clinician = principal(installation, "data_entry@A")
    draft = entry.create_response(
        installation.registry,
        clinician,
        VISIT,
        patient_id=_a(installation, 1),
        event_date="2024-01-13",
        values={"visit_date": "2024-01-13", "pga": "3"},
    )
    assert draft.status == "draft"
    with pytest.raises(ValidationFailed) as caught:
        entry.update_response(
            installation.registry,
            clinician,
            draft.id,
            values={"visit_date": "2024-01-13", "pga": "3"},
            status="complete",
            expected_version=draft.version,
        )
    assert {d.location for d in caught.value.details} >= {"visit_type", "height_cm"}
    with pytest.raises(ValidationFailed):
        entry.update_response(
            installation.registry, clinician, draft.id, values={"height_cm": "-1"}
        )


def test_one_response_per_patient_form_and_date(installation):
    clinician = principal(installation, "clinician@A")
    kwargs = dict(patient_id=_a(installation, 1), event_date="2024-01-14", values={"pga": "1"})
    entry.create_response(installation.registry, clinician, VISIT, **kwargs)
    with pytest.raises(Conflict, match="already has"):
        entry.create_response(installation.registry, clinician, VISIT, **kwargs)


def test_a_stale_write_is_a_conflict_and_overwrites_nothing(installation):
    registry = installation.registry
    ann = principal(installation, "clinician@A")
    bob = principal(installation, "data_entry@A")
    first = entry.create_response(
        registry, ann, VISIT, patient_id=_a(installation), event_date="2024-01-15", values={}
    )
    entry.update_response(
        registry, ann, first.id, values={"pga": "2"}, expected_version=first.version
    )
    with pytest.raises(Conflict, match="changed by someone else"):
        entry.update_response(
            registry, bob, first.id, values={"pga": "4"}, expected_version=first.version
        )
    stored = entry.get_response(registry, ann, first.id)
    assert stored.values == {"pga": "2"} and stored.version == 2


def test_editing_a_complete_response_needs_a_reason_which_is_audited_without_values(
    installation,
):
    registry = installation.registry
    clinician = principal(installation, "clinician@A", request_id="edit-complete")
    view = entry.create_response(
        registry,
        clinician,
        VISIT,
        patient_id=_a(installation),
        event_date="2024-01-16",
        values=crohns_visit("2024-01-16"),
        status="complete",
    )
    with pytest.raises(InputError, match="reason for change"):
        entry.update_response(
            registry, clinician, view.id, values=crohns_visit("2024-01-16", weight_kg="29.0")
        )
    before = audit_seq(installation)
    changed = entry.update_response(
        registry,
        clinician,
        view.id,
        values=crohns_visit("2024-01-16", weight_kg="29.0"),
        reason="weight misread from the scales",
        expected_version=view.version,
    )
    assert changed.values["weight_kg"] == "29.0" and changed.version == view.version + 1
    [entry_row] = audit_since(installation, before)
    assert entry_row.action == "update" and entry_row.reason == "weight misread from the scales"
    details = json.loads(entry_row.details)
    assert details["fields"] == ["bmi", "weight_kg"]
    assert "29.0" not in entry_row.details and "28.4" not in entry_row.details


def test_each_entry_call_writes_exactly_one_audit_entry(installation):
    registry = installation.registry
    clinician = principal(installation, "clinician@A")
    pid = _a(installation, 1)
    calls = [
        lambda: entry.create_response(
            registry, clinician, VISIT, patient_id=pid, event_date="2024-01-17", values={}
        ),
        lambda: entry.list_responses(registry, clinician, VISIT, patient_id=pid),
        lambda: entry.patient_timeline(registry, clinician, pid),
    ]
    for call in calls:
        before = audit_seq(installation)
        call()
        rows = audit_since(installation, before)
        assert len(rows) == 1 and rows[0].category == "clinical" and rows[0].patient_id == pid


def test_a_site_a_user_cannot_reach_site_b_responses(installation):
    registry = installation.registry
    b_patient = installation.patient_ids["B"][0]
    b_view = entry.create_response(
        registry,
        principal(installation, "clinician@B"),
        VISIT,
        patient_id=b_patient,
        event_date="2024-01-18",
        values={"pga": "1"},
    )
    a_user = principal(installation, "clinician@A")
    before = audit_seq(installation)
    with pytest.raises(NotFound):
        entry.get_response(registry, a_user, b_view.id)
    with pytest.raises(NotFound):
        entry.update_response(registry, a_user, b_view.id, values={"pga": "4"})
    with pytest.raises(NotFound):
        entry.create_response(
            registry, a_user, VISIT, patient_id=b_patient, event_date="2024-01-19", values={}
        )
    with pytest.raises(NotFound):
        entry.patient_timeline(registry, a_user, b_patient)
    assert b_view.id not in {v.id for v in entry.list_responses(registry, a_user, VISIT)}
    refused = audit_since(installation, before)
    assert [r.outcome for r in refused] == ["not_found"] * 4 + ["success"]
    with pytest.raises(PermissionDenied):
        entry.list_responses(registry, principal(installation, "analyst@A"), VISIT)
    with pytest.raises(PermissionDenied):
        entry.get_response(registry, principal(installation, "admin"), b_view.id)
    assert entry.get_response(registry, installation.operator, b_view.id).values == {"pga": "1"}


def test_a_patient_fills_a_prom_for_their_own_record_only(installation):
    registry = installation.registry
    patient = principal(installation, "patient@A")
    own = installation.patient_user_of["patient@A"]
    view = entry.create_response(
        registry,
        patient,
        PROM,
        patient_id=own,
        event_date="2024-02-01",
        values=prom_answers("2024-02-01"),
        status="complete",
    )
    assert view.patient_entered and view.values["symptom_score"]
    with pytest.raises(PermissionDenied, match="patient-reported forms only"):
        entry.create_response(
            registry, patient, VISIT, patient_id=own, event_date="2024-02-01", values={}
        )
    other = next(p for p in installation.patient_ids["A"] if p != own)
    with pytest.raises(NotFound):
        entry.create_response(
            registry,
            patient,
            PROM,
            patient_id=other,
            event_date="2024-02-01",
            values=prom_answers("2024-02-01"),
        )


def test_a_carer_fills_a_prom_for_the_patient_they_are_proxy_for(installation):
    registry = installation.registry
    carer = principal(installation, "carer@A")
    proxied = installation.patient_user_of["carer@A"]
    view = entry.create_response(
        registry,
        carer,
        PROM,
        patient_id=proxied,
        event_date="2024-02-02",
        values=prom_answers("2024-02-02", completed_by="2", carer_relationship="mother"),
        status="complete",
    )
    assert view.patient_entered and view.patient_id == proxied
    assert [v.id for v in entry.list_responses(registry, carer, PROM)] == [view.id]


def test_the_timeline_lists_events_across_forms_newest_first(installation):
    registry = installation.registry
    carer = principal(installation, "carer@A")
    proxied = installation.patient_user_of["carer@A"]
    clinician = principal(installation, "clinician@A")
    entry.create_response(
        registry, clinician, VISIT, patient_id=proxied, event_date="2024-02-03", values={}
    )
    timeline = entry.patient_timeline(registry, clinician, proxied)
    assert [(e.event_date.isoformat(), e.form) for e in timeline.events][:2] == [
        ("2024-02-03", VISIT),
        ("2024-02-02", PROM),
    ]
    assert [e.patient_entered for e in timeline.events][:2] == [False, True]
    # The carer's timeline shows the same patient's events.
    assert len(entry.patient_timeline(registry, carer, proxied).events) == len(timeline.events)


def test_two_simultaneous_submissions_through_one_prom_link_save_one_response(installation):
    from concurrent.futures import ThreadPoolExecutor

    from careloop.capture import proms

    registry = installation.registry
    pid = installation.patient_ids["A"][0]
    link = proms.create_prom_link(registry, installation.operator, PROM, patient_id=pid)

    def submit(day: str) -> str:
        try:
            proms.submit_prom_link(registry, link.token, values=prom_answers(day), event_date=day)
        except (NotFound, Conflict) as exc:
            return type(exc).__name__
        return "saved"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(submit, ["2024-03-10", "2024-03-11", "2024-03-12", "2024-03-13"]))
    assert sorted(outcomes).count("saved") == 1, outcomes
    days = {
        v.event_date.isoformat()
        for v in entry.list_responses(registry, installation.operator, PROM, patient_id=pid)
    }
    assert len(days & {"2024-03-10", "2024-03-11", "2024-03-12", "2024-03-13"}) == 1


def _to_save(patient, day, values, status="complete"):
    return entry.ResponseToSave(VISIT, patient, day, values, status)


def test_save_responses_creates_then_finds_unchanged_then_updates_with_one_audit_entry_each(
    installation,
):
    from datetime import date

    from careloop.store.models import Patient
    from careloop.trust.work import unit_of_work

    clinician = principal(installation, "clinician@A")
    days = [date(2024, 5, 1), date(2024, 5, 2)]
    with unit_of_work(installation.registry, clinician, "record.write") as work:
        patient = work.session.get(Patient, _a(installation))
        first = entry.save_responses(
            work,
            [_to_save(patient, d, crohns_visit(d.isoformat())) for d in days],
            reason="bulk test",
            via="test",
        )
    assert [s.outcome for s in first] == ["created", "created"]
    seq = audit_seq(installation)
    changed = crohns_visit(days[1].isoformat(), pga="3")
    with unit_of_work(installation.registry, clinician, "record.write") as work:
        patient = work.session.get(Patient, _a(installation))
        second = entry.save_responses(
            work,
            [
                _to_save(patient, days[0], crohns_visit(days[0].isoformat())),
                _to_save(patient, days[1], changed),
            ],
            reason="bulk test",
            via="test",
        )
    assert [s.outcome for s in second] == ["unchanged", "updated"]
    assert second[1].response_id == first[1].response_id
    entries = audit_since(installation, seq)
    updates = [e for e in entries if e.action == "update"]
    assert len(updates) == 1 and updates[0].reason == "bulk test"
    assert json.loads(updates[0].details)["fields"] == ["pga"]
    view = entry.get_response(installation.registry, clinician, first[1].response_id, form=VISIT)
    assert view.values["pga"] == "3" and view.version == 2


def test_save_responses_reports_every_bad_value_by_item_and_saves_nothing(installation):
    from datetime import date

    from careloop.store.models import Patient
    from careloop.trust.work import unit_of_work

    clinician = principal(installation, "clinician@A")
    day = date(2024, 5, 10)
    with (
        pytest.raises(ValidationFailed) as caught,
        unit_of_work(installation.registry, clinician, "record.write") as work,
    ):
        patient = work.session.get(Patient, _a(installation))
        entry.save_responses(
            work,
            [
                _to_save(patient, day, crohns_visit(day.isoformat())),
                _to_save(patient, date(2024, 5, 11), crohns_visit("2024-05-11", pga="9")),
            ],
            reason="bulk test",
            via="test",
        )
    assert [d.location for d in caught.value.details] == ["item[1].pga"]
    timeline = entry.patient_timeline(installation.registry, clinician, _a(installation))
    assert all(e.event_date != day for e in timeline.events)


def test_save_responses_refuses_a_patient_outside_the_unit_of_works_scope(installation):
    from datetime import date

    from careloop.store.models import Patient
    from careloop.store.scoping import Scope, set_scope
    from careloop.trust.work import unit_of_work

    clinician = principal(installation, "clinician@A")
    with installation.registry.transaction() as session:
        set_scope(session, Scope.everything())
        other = session.get(Patient, installation.patient_ids["B"][0])
        session.expunge(other)
    with (
        pytest.raises(NotFound),
        unit_of_work(installation.registry, clinician, "record.write") as work,
    ):
        entry.save_responses(
            work,
            [_to_save(other, date(2024, 5, 20), crohns_visit("2024-05-20"))],
            reason="bulk test",
            via="test",
        )
