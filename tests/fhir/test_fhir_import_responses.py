"""FHIR import of QuestionnaireResponses: registry form responses, round trip, errors, modes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from careloop.capture import example_file, example_forms
from careloop.capture.entry import save_response
from careloop.capture.fhir_responses import ResponseSubject, response_to_fhir
from careloop.capture.forms_store import import_forms
from careloop.capture.records_io import export_records
from careloop.core.errors import ValidationFailed
from careloop.fhir.exporting import export_fhir
from careloop.store.models import Patient
from careloop.trust.audit import AuditFilter, report_entries
from careloop.trust.patients import register_patient
from careloop.trust.provenance import get_provenance
from careloop.trust.work import unit_of_work
from careloop.warehouse.connection import warehouse_opener
from tests.capture.test_fhir_responses import EVERY_TYPE_YAML, Stored, every_type_form
from tests.fhir.fhir_support import (
    fhir_install_fixture,  # noqa: F401 - the fhir_install fixture
    sqlite_install_fixture,  # noqa: F401 - the sqlite_install fixture
    write_ndjson,
)
from tests.foundation import Installation, build_installation, fhir_import, make_settings

FORMS = ("ibd_visit", "ibd_symptoms_prom", "every_type")


def register_forms(inst: Installation) -> None:
    import_forms(inst.registry, inst.operator, example_file("yaml"), fmt="yaml", name="ibd.yaml")
    import_forms(inst.registry, inst.operator, EVERY_TYPE_YAML.encode(), fmt="yaml", name="e.yaml")


def crohns_visit(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
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
    values.update(changes)
    return values


UC_DRAFT = {
    "visit_date": "2024-06-01",
    "visit_type": "2",
    "disease_type": "2",
    "pucai_pain": "5",
    "pucai_bleeding": "10",
}
PROM = {
    "prom_date": "2024-02-28",
    "completed_by": "3",
    "carer_relationship": "Mother",
    "tummy_pain": "1",
    "stools_worst_day": "3",
    "blood_in_stool": "0",
    "urgency": "1",
    "tiredness": "2",
    "missed_days": "1",
    "worry": "65",
    "what_matters": "School trip",
    "wants_contact": "1",
    "contact_phone": "+44 20 7946 0000",
}
EVERY_TYPE = {
    "clinic": "B-2",
    "consented": "1",
    "seen_at": "14:05",
    "admitted": "2024-04-01 13:45",
    "sampled": "2024-04-01 13:50:07",
    "crp": "5.10",
    "ratio": "0.125",
    "contact": "sam@example.org",
}


def fill_registry(inst: Installation) -> None:
    """Two patients of site A (one withdrew consent) and five responses of every kind."""
    register_forms(inst)
    ids = {}
    for local_id, consent in (("MRN-1", "improvement_and_research"), ("MRN-2", "withdrawn")):
        ids[local_id] = register_patient(
            inst.registry,
            inst.operator,
            site="A",
            local_id=local_id,
            given_name="Sam",
            family_name="Testperson",
            birth_date="2014-05-01",
            sex="female",
            consent_state=consent,  # type: ignore[arg-type]
        ).id
    entries = [
        ("MRN-1", "ibd_visit", date(2024, 3, 1), crohns_visit(), "complete", False),
        ("MRN-1", "ibd_visit", date(2024, 6, 1), UC_DRAFT, "draft", False),
        ("MRN-1", "ibd_symptoms_prom", date(2024, 2, 28), PROM, "complete", True),
        (
            "MRN-2",
            "ibd_visit",
            date(2024, 4, 1),
            crohns_visit(medications=["1"]),
            "complete",
            False,
        ),
        ("MRN-2", "every_type", date(2024, 4, 1), EVERY_TYPE, "draft", False),
    ]
    with unit_of_work(inst.registry, inst.operator, "record.write") as work:
        for local_id, form, day, values, status, by_patient in entries:
            patient = work.session.get(Patient, ids[local_id])
            assert patient is not None
            save_response(
                work,
                form,
                patient=patient,
                event_date=day,
                values=values,
                status=status,  # type: ignore[arg-type]
                patient_entered=by_patient,
                reason="test data",
                via="test",
            )


def responses(inst: Installation) -> dict[str, list[dict[str, Any]]]:
    """Every stored response by form, as the JSON export shows them (no pseudonyms, no ids)."""
    return {
        form: json.loads(export_records(inst.registry, inst.operator, form, fmt="json").text)
        for form in FORMS
    }


def test_responses_exported_then_imported_into_an_empty_installation_come_back_the_same(
    fhir_install: Installation, tmp_path: Path
) -> None:
    first = fhir_install
    fill_registry(first)
    exported = export_fhir(
        first.registry, warehouse_opener(first.settings), first.operator, tmp_path / "one"
    )
    assert exported.counts["QuestionnaireResponse"] == 5
    before = responses(first)
    second = build_installation(make_settings(tmp_path / "second", None), with_users=False)
    try:
        register_forms(second)
        report = fhir_import(second, second.operator, tmp_path / "one", site="A")
        assert (report.patients_created, report.responses_created) == (2, 5)
        assert report.skipped_count("QuestionnaireResponse") == 0
        assert report.rejected == () and report.warnings == ()
        after = responses(second)
        # Same patients (local ids), consent, event dates, statuses, form versions,
        # who entered them and values (calculated fields included).
        assert after == before
        assert sum(len(rows) for rows in after.values()) == 5
        assert any(r["patient_entered"] for r in after["ibd_symptoms_prom"])
        assert {r["consent_state"] for r in after["every_type"]} == {"withdrawn"}
        again = fhir_import(second, second.operator, tmp_path / "one", site="A")
        assert (again.responses_created, again.responses_unchanged) == (0, 5)
        assert responses(second) == before
        assert again.provenance_id is not None
        outputs = get_provenance(second.registry, again.provenance_id).outputs
        assert outputs["form_responses"] == {"created": 0, "updated": 0, "unchanged": 5}
    finally:
        second.registry.close()
    # Into the installation the export came from: the same patients, nothing new.
    home = fhir_import(first, first.operator, tmp_path / "one", site="A")
    assert (home.patients_created, home.responses_created, home.responses_unchanged) == (0, 0, 5)
    assert responses(first) == before


def qr(form: str, values: dict[str, Any], day: str, *, pseudo: str, **extra: Any) -> dict[str, Any]:
    """A QuestionnaireResponse as careloop exports it (flat items: sections left out)."""
    form_obj = every_type_form() if form == "every_type" else example_forms().form(form)
    stored = Stored(
        values,
        event_date=date.fromisoformat(day),
        id=int(day.replace("-", "")),
        updated_at=datetime(2024, 7, 1, tzinfo=UTC),
    )
    subject = ResponseSubject(pseudo_id=pseudo, site="A", local_id="MRN-1")
    resource = response_to_fhir(
        stored, form=form_obj, form_version=form_obj.content_hash(), subject=subject
    )
    data: dict[str, Any] = json.loads(resource.model_dump_json(exclude_none=True))
    items: list[dict[str, Any]] = []
    for item in data["item"]:
        items.extend(item.get("item", [item]))
    return {**data, "item": items, **extra}


def answer(resource: dict[str, Any], link_id: str, value: dict[str, Any]) -> tuple[int, str]:
    """Set one item's answer; its index and FHIR path."""
    index = next(i for i, item in enumerate(resource["item"]) if item["linkId"] == link_id)
    resource["item"][index]["answer"] = [value]
    return index, f"QuestionnaireResponse.item[{index}].answer[0]"


def bad_file(inst: Installation, tmp_path: Path) -> tuple[Path, set[str]]:
    """Two good QuestionnaireResponses and six bad ones of one registry patient; bad locations."""
    register_forms(inst)
    patient = register_patient(
        inst.registry,
        inst.operator,
        site="A",
        local_id="MRN-1",
        birth_date="2014-05-01",
        consent_state="improvement_and_research",
    )
    pseudo = patient.pseudo_id
    good = qr("ibd_visit", crohns_visit(), "2024-03-01", pseudo=pseudo)
    # Named by MRN only (no reference): found in the registry all the same.
    by_mrn = qr("ibd_visit", crohns_visit(), "2024-03-02", pseudo=pseudo)
    by_mrn["subject"] = {"identifier": by_mrn["subject"]["identifier"]}
    unknown_form = qr("ibd_visit", crohns_visit(), "2024-03-03", pseudo=pseudo)
    unknown_form["questionnaire"] = "urn:careloop:form:ibd_vist"
    unknown_link = qr("ibd_visit", crohns_visit(), "2024-03-04", pseudo=pseudo)
    unknown_link["item"][0]["linkId"] = "visit_day"
    wrong_type = qr("ibd_visit", crohns_visit(), "2024-03-05", pseudo=pseudo)
    _, wrong_path = answer(wrong_type, "height_cm", {"valueString": "131.0"})
    invalid = qr("ibd_visit", crohns_visit(), "2024-03-06", pseudo=pseudo)
    _, invalid_path = answer(invalid, "weight_kg", {"valueDecimal": 900.5})
    ghost = qr("ibd_visit", crohns_visit(), "2024-03-07", pseudo="nobody")
    ghost["subject"]["identifier"]["value"] = "MRN-404"
    twice = qr("ibd_visit", crohns_visit(pga="3"), "2024-03-01", pseudo=pseudo, id="other")
    path = write_ndjson(
        tmp_path / "responses.ndjson",
        [good, by_mrn, unknown_form, unknown_link, wrong_type, invalid, ghost, twice],
    )
    where = "responses.ndjson"
    return path, {
        f"{where}:3: QuestionnaireResponse.questionnaire",
        f"{where}:4: QuestionnaireResponse.item[0].linkId",
        f"{where}:5: {wrong_path}",
        f"{where}:6: {invalid_path}",
        f"{where}:7: QuestionnaireResponse.subject",
        f"{where}:8: QuestionnaireResponse",
    }


def test_bad_questionnaire_responses_are_located_and_change_nothing(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    path, expected = bad_file(inst, tmp_path)
    with pytest.raises(ValidationFailed) as caught:
        fhir_import(inst, inst.operator, path, site="A")
    details = {d.location: d.message for d in caught.value.details}
    assert set(details) == expected
    assert (
        "There is no form 'ibd_vist'"
        in details["responses.ndjson:3: QuestionnaireResponse.questionnaire"]
    )
    assert (
        "has no field 'visit_day'"
        in details["responses.ndjson:4: QuestionnaireResponse.item[0].linkId"]
    )
    assert (
        "refers to patient Patient/nobody, which is not in this import"
        in details["responses.ndjson:7: QuestionnaireResponse.subject"]
    )
    assert all(rows == [] for rows in responses(inst).values())
    with inst.registry.transaction() as session:
        assert report_entries(session, AuditFilter(action="import"))[-1].outcome == "failure"


def test_row_level_mode_leaves_out_just_the_bad_responses(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    path, expected = bad_file(inst, tmp_path)
    report = fhir_import(inst, inst.operator, path, site="A", mode="row_level")
    assert {d.location for d in report.rejected} == expected
    assert (report.responses_created, report.responses_in) == (2, 2)
    stored = responses(inst)["ibd_visit"]
    assert [(r["event_date"], r["values"]["pga"]) for r in stored] == [
        ("2024-03-01", "2"),
        ("2024-03-02", "2"),
    ]
    with inst.registry.transaction() as session:
        created = report_entries(session, AuditFilter(action="create"))
    assert sum(1 for e in created if '"fhir-import"' in (e.details or "")) == 2


def test_a_changed_response_replaces_the_stored_one_with_the_reason_audited(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    path, _ = bad_file(inst, tmp_path)
    fhir_import(inst, inst.operator, path, site="A", mode="row_level")
    pseudo = json.loads(path.read_text().splitlines()[0])["subject"]["reference"][8:]
    changed = qr("ibd_visit", crohns_visit(pga="4"), "2024-03-01", pseudo=pseudo)
    again = write_ndjson(tmp_path / "changed.ndjson", [changed])
    report = fhir_import(inst, inst.operator, again, site="A")
    assert (report.responses_created, report.responses_updated) == (0, 1)
    assert responses(inst)["ibd_visit"][0]["values"]["pga"] == "4"
    with inst.registry.transaction() as session:
        (update,) = report_entries(session, AuditFilter(action="update"))
    assert update.reason == "FHIR import of changed.ndjson"


def test_the_cli_import_prints_the_form_responses(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    from careloop.cli.main import app

    inst = sqlite_install
    fill_registry(inst)
    export_fhir(inst.registry, warehouse_opener(inst.settings), inst.operator, tmp_path / "out")
    data_dir = inst.settings.data_dir
    result = CliRunner().invoke(
        app,
        ["fhir", "import", str(tmp_path / "out"), "--site", "A", "--data-dir", str(data_dir)],
    )
    assert result.exit_code == 0, result.output
    assert "Form responses (QuestionnaireResponse): 0 created, 0 updated, 5 unchanged." in (
        " ".join(result.output.split())
    )


def test_a_questionnaire_response_dated_2099_is_refused_at_its_line(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    register_forms(sqlite_install)
    patient = register_patient(
        sqlite_install.registry,
        sqlite_install.operator,
        site="A",
        local_id="MRN-1",
        birth_date="2014-05-01",
        consent_state="improvement_and_research",
    )
    good = qr("ibd_visit", crohns_visit(), "2024-03-01", pseudo=patient.pseudo_id)
    future = qr("ibd_visit", crohns_visit(), "2099-12-31", pseudo=patient.pseudo_id, id="f")
    path = write_ndjson(tmp_path / "dated.ndjson", [good, future])
    with pytest.raises(ValidationFailed) as caught:
        fhir_import(sqlite_install, sqlite_install.operator,
                    path, site="A")  # fmt: skip
    (detail,) = caught.value.details
    assert detail.location == "dated.ndjson:2: QuestionnaireResponse.event_date"
    assert detail.value == "2099-12-31" and "check the year" in detail.message
