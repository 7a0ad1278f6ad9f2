"""Consent by purpose: each purpose a separate choice with its history, every change audited,
the national data opt-out honoured. Runs on SQLite and PostgreSQL (one installation per
module: each test registers its own patients and counts relative to before)."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import select

from careloop.core.errors import InputError, NotFound, ValidationFailed
from careloop.store.models import AuditEntry, ConsentRecord, Patient
from careloop.store.scoping import Scope, set_scope
from careloop.trust import patients
from careloop.trust.consent import (
    PURPOSES,
    consent_allows,
    consenting,
    import_opt_outs,
    read_opt_out_list,
    record_consent_purpose,
)
from careloop.trust.identity import resolve_token
from careloop.trust.principal import RequestContext
from tests.conftest import TEST_DATA

OPT_OUTS = TEST_DATA / "national_opt_out"


def _register(inst, local_id: str, state: str = "improvement_and_research", site: str = "A"):
    return patients.register_patient(
        inst.registry, inst.operator, site=site, local_id=local_id, consent_state=state
    )


def _as(inst, who: str):
    return resolve_token(inst.registry, inst.tokens[who], RequestContext())


def _audit_since(inst, seq: int) -> list[AuditEntry]:
    with inst.registry.transaction() as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.seq > seq)))
        session.expunge_all()
        return rows


def _last_seq(inst) -> int:
    with inst.registry.transaction() as session:
        return int(session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())) or 0)


def test_a_preset_sets_every_purpose_and_one_purpose_changes_alone(installation):
    inst = installation
    view = _register(inst, "CP-1")
    assert view.consent == {
        "direct_care": True,
        "quality_improvement": True,
        "research": True,
        "recontact": False,
    }
    seq = _last_seq(inst)
    change = record_consent_purpose(
        inst.registry, inst.operator, view.id, "research", False, method="verbal", note="asked"
    )
    assert change.changed and change.patient.consent_state == "improvement_only"
    assert change.patient.consent == {**view.consent, "research": False}
    (entry,) = [e for e in _audit_since(inst, seq) if e.category == "consent"]
    details = json.loads(entry.details or "{}")
    assert (entry.action, entry.patient_id, entry.reason) == ("update", view.id, "asked")
    assert details == {
        "from": "improvement_and_research",
        "to": "improvement_only",
        "method": "verbal",
        "purposes": {"research": [True, False]},
    }
    # Each purpose on its own; a mix no preset names is "custom".
    for purpose, given, summary in (
        ("recontact", True, "improvement_only"),
        ("quality_improvement", False, "direct_care_only"),
        ("research", True, "custom"),
        ("direct_care", False, "custom"),
    ):
        done = record_consent_purpose(
            inst.registry, inst.operator, view.id, purpose, given, method="paper"
        )
        assert done.patient.consent[purpose] is given and done.patient.consent_state == summary


def test_an_unchanged_choice_is_said_so_and_records_nothing(installation):
    inst = installation
    view = _register(inst, "CP-2", "direct_care_only")
    seq = _last_seq(inst)
    same = record_consent_purpose(inst.registry, inst.operator, view.id, "research", False, method="paper")  # fmt: skip
    assert not same.changed and same.patient.consent == view.consent
    assert [e for e in _audit_since(inst, seq) if e.action == "update"] == []
    history = patients.consent_history(inst.registry, inst.operator, view.id)
    assert len(history) == 1  # the registration only


def test_the_history_keeps_each_purpose_oldest_first(installation):
    inst = installation
    view = _register(inst, "CP-3")
    record_consent_purpose(inst.registry, inst.operator, view.id, "research", False, method="paper")  # fmt: skip
    record_consent_purpose(inst.registry, inst.operator, view.id, "recontact", True, method="portal")  # fmt: skip
    record_consent_purpose(inst.registry, inst.operator, view.id, "research", True, method="verbal")  # fmt: skip
    history = patients.consent_history(inst.registry, inst.operator, view.id)
    assert [(h.purpose, h.given, h.method) for h in history] == [
        (None, None, "paper"),  # the registration: a preset
        ("research", False, "paper"),
        ("recontact", True, "portal"),
        ("research", True, "verbal"),
    ]
    assert [h.choice("research") for h in history] == [True, False, None, True]
    assert [h.choice("recontact") for h in history] == [None, None, True, None]
    assert history[-1].state == "improvement_and_research"


def test_a_patient_changes_only_their_own_record_and_a_carer_only_the_one_they_care_for(
    installation,
):
    inst = installation
    own = inst.patient_user_of["patient@A"]
    proxied = inst.patient_user_of["carer@A"]
    patient, carer = _as(inst, "patient@A"), _as(inst, "carer@A")
    done = record_consent_purpose(inst.registry, patient, own, "recontact", True, method="portal")
    assert done.patient.consent["recontact"] is True
    with pytest.raises(NotFound):
        record_consent_purpose(inst.registry, patient, proxied, "research", False, method="portal")  # fmt: skip
    with pytest.raises(NotFound):
        record_consent_purpose(inst.registry, carer, own, "research", False, method="portal")
    with pytest.raises(NotFound):  # a clinician of site B cannot reach site A's patient
        record_consent_purpose(inst.registry, _as(inst, "clinician@B"), own, "research", False, method="paper")  # fmt: skip
    assert record_consent_purpose(inst.registry, carer, proxied, "recontact", True, method="portal").changed  # fmt: skip


def test_bad_purposes_and_methods_are_refused_where_they_are(installation):
    inst = installation
    view = _register(inst, "CP-5")
    with pytest.raises(ValidationFailed) as bad:
        record_consent_purpose(inst.registry, inst.operator, view.id, "marketing", True, method="paper")  # type: ignore[arg-type]  # fmt: skip
    assert bad.value.details[0].location == "purpose"
    with pytest.raises(ValidationFailed) as bad:
        record_consent_purpose(inst.registry, inst.operator, view.id, "research", True, method="fax")  # type: ignore[arg-type]  # fmt: skip
    assert bad.value.details[0].location == "method"


def test_other_code_asks_one_function_whatever_it_holds(installation):
    inst = installation
    view = _register(inst, "CP-6", "improvement_only")
    assert PURPOSES == ("direct_care", "quality_improvement", "research", "recontact")
    assert consent_allows(view, "quality_improvement") and not consent_allows(view, "research")
    assert consent_allows({"consent_recontact": True}, "recontact")
    assert not consent_allows({"research": False}, "research")
    with pytest.raises(InputError):
        consent_allows({}, "research")  # silence is never a yes
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        row = session.get(Patient, view.id)
        assert row is not None and consent_allows(row, "direct_care")
        ids = set(session.scalars(select(Patient.id).where(consenting("research"))))
    assert view.id not in ids and inst.patient_ids["A"][0] in ids


def test_the_national_opt_out_turns_off_research_and_recontact_only_and_is_idempotent(
    installation,
):
    inst = installation
    views = {
        "9998645425": _register(inst, "9998645425"),
        "9994103660": _register(inst, "9994103660", "improvement_only"),
        "9998562805": _register(inst, "9998562805", "direct_care_only"),
        "9993288357": _register(inst, "9993288357"),
        "9995905078": _register(inst, "9995905078"),  # not on the list
    }
    record_consent_purpose(inst.registry, inst.operator, views["9994103660"].id, "recontact", True, method="paper")  # fmt: skip
    seq = _last_seq(inst)
    report = import_opt_outs(inst.registry, inst.operator, OPT_OUTS / "opted_out.dat", site="A")
    assert (report.listed, report.matched, report.changed) == (6, 4, 3)
    assert (report.already_off, report.not_found) == (1, 2)
    for local_id, view in views.items():
        after = patients.get_patient(inst.registry, inst.operator, view.id).consent
        if local_id == "9995905078":
            assert after == view.consent
        else:
            assert after["research"] is False and after["recontact"] is False
            # Direct care and local improvement are not covered by the opt-out.
            assert after["direct_care"] is True
            assert after["quality_improvement"] is view.consent["quality_improvement"]
    history = patients.consent_history(inst.registry, inst.operator, views["9994103660"].id)
    assert (history[-1].method, history[-1].purpose, history[-1].given) == (
        "national_opt_out",
        "recontact",
        False,
    )
    entries = _audit_since(inst, seq)
    changed = [e for e in entries if e.action == "update" and e.category == "consent"]
    assert len(changed) == 3
    (summary,) = [e for e in entries if e.action == "import"]
    details = json.loads(summary.details or "{}")
    assert details["not_found"] == 2 and "9991146180" not in (summary.details or "")
    again = import_opt_outs(inst.registry, inst.operator, OPT_OUTS / "opted_out.dat", site="A")
    assert (again.changed, again.already_off) == (0, 4)


def test_the_checking_services_reply_is_read_against_the_list_sent(installation, tmp_path):
    inst = installation
    # Site B: the sent list's patients; the reply keeps only those who may be used.
    views = {n: _register(inst, n, site="B") for n in ("9998645425", "9994103660", "9998562805")}
    report = import_opt_outs(
        inst.registry, inst.operator, OPT_OUTS / "reply.dat", site="B", sent=OPT_OUTS / "sent.dat"
    )
    assert (report.listed, report.matched, report.changed, report.not_found) == (2, 2, 2, 0)
    consent = {
        n: patients.get_patient(inst.registry, inst.operator, v.id).consent["research"]
        for n, v in views.items()
    }
    assert consent == {"9998645425": True, "9994103660": False, "9998562805": False}


def test_a_bad_opt_out_file_names_each_row_and_changes_nothing(installation, tmp_path):
    inst = installation
    view = _register(inst, "9999063187")
    seq = _last_seq(inst)
    with pytest.raises(ValidationFailed) as bad:
        import_opt_outs(inst.registry, inst.operator, OPT_OUTS / "bad_check_digit.csv", site="A")
    assert [d.location for d in bad.value.details] == [
        "bad_check_digit.csv:3",
        "bad_check_digit.csv:4",
    ]
    assert "check digit" in bad.value.details[0].message
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("9999063187\n9999063187,extra\n")
    with pytest.raises(ValidationFailed) as bad:
        import_opt_outs(inst.registry, inst.operator, mixed, site="A")
    assert bad.value.details[0].location == "mixed.txt:2"
    shutil.copy(OPT_OUTS / "opted_out.csv", tmp_path / "list.csv")
    with pytest.raises(NotFound):
        import_opt_outs(inst.registry, inst.operator, tmp_path / "list.csv", site="NOPE")
    assert patients.get_patient(inst.registry, inst.operator, view.id).consent["research"]
    assert [e for e in _audit_since(inst, seq) if e.action in ("update", "import")] == []


def test_nhs_numbers_are_checked_against_the_published_example():
    # NHS Data Dictionary, "NHS Number": 943 476 5919 is its example of a valid number.
    assert read_opt_out_list("943 476 5919\n", source="f") == ["9434765919"]
    with pytest.raises(ValidationFailed):
        read_opt_out_list("943 476 5918\n", source="f")
    assert read_opt_out_list("local_id\nH-1\nH-2\nH-1\n", source="f") == ["H-1", "H-2"]
    assert read_opt_out_list("NHS_Number,x\n9434765919,1\n", source="f") == ["9434765919"]


def test_consent_records_of_a_preset_have_no_purpose(installation):
    inst = installation
    view = _register(inst, "CP-9", "withdrawn")
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        (record,) = session.scalars(
            select(ConsentRecord).where(ConsentRecord.patient_id == view.id)
        )
        assert (record.state, record.purpose, record.given) == ("withdrawn", None, None)
    assert view.consent == dict.fromkeys(PURPOSES, False)


def test_patients_registered_in_bulk_get_the_purposes_of_their_preset(installation):
    inst = installation
    ids = patients.register_patients(
        inst.registry,
        inst.operator,
        site="B",
        patients=[
            patients.NewPatient("BULK-1", None, "female", "improvement_only"),
            patients.NewPatient("BULK-2", None, "male", "withdrawn"),
        ],
    )
    first = patients.get_patient(inst.registry, inst.operator, ids["BULK-1"]).consent
    assert first == {**dict.fromkeys(PURPOSES, True), "research": False, "recontact": False}
    second = patients.get_patient(inst.registry, inst.operator, ids["BULK-2"]).consent
    assert second == dict.fromkeys(PURPOSES, False)
