"""Bulk import and export of records: modes, reports, re-imports, bad files, scope, audit.

~200-row files on SQLite and PostgreSQL; the 100,000-row figure is in
benchmarks/capture_import.py. Each test uses its own patient id prefix.
"""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlalchemy import text

from careloop.capture.records_io import export_records, import_records
from careloop.core.errors import InputError, NotFound, PermissionDenied, ValidationFailed
from careloop.trust.audit import verify_chain
from tests.capture.registry_helpers import (
    VISIT,
    audit_seq,
    audit_since,
    import_examples,
    principal,
    records_csv,
    visit_rows,
)


@pytest.fixture(scope="module", autouse=True)
def _forms(installation):
    import_examples(installation)


def _stored(inst, prefix):
    """(patients, responses) whose local id starts with ``prefix``."""
    with inst.registry.engine.connect() as conn:
        patients = conn.execute(
            text("SELECT count(*) FROM patient WHERE local_id LIKE :p"), {"p": f"{prefix}-%"}
        ).scalar_one()
        responses = conn.execute(
            text(
                "SELECT count(*) FROM form_response r JOIN patient p ON p.id = r.patient_id "
                "WHERE p.local_id LIKE :p"
            ),
            {"p": f"{prefix}-%"},
        ).scalar_one()
    return patients, responses


def _with_two_bad_rows(prefix):
    rows = visit_rows(200, prefix=prefix)
    rows[10]["pga"] = "7"  # spreadsheet row 12
    rows[57]["weight_kg"] = "heavy"  # spreadsheet row 59
    rows[57]["height_cm"] = "500.0"
    return rows


def test_all_or_nothing_writes_nothing_and_reports_every_problem(installation):
    before = audit_seq(installation)
    report = import_records(
        installation.registry,
        principal(installation, "data_entry@A"),
        VISIT,
        records_csv(VISIT, _with_two_bad_rows("AON")),
        "A",
        name="visits.csv",
    )
    assert not report.written and not report.ok
    assert (report.rows, report.rejected_rows, report.created) == (200, 2, 0)
    assert [(p.row, p.field, p.value) for p in report.problems] == [
        (12, "pga", "7"),
        (59, "height_cm", "500.0"),
        (59, "weight_kg", "heavy"),
    ]
    assert "[rule: choice]" in report.problems[0].reason
    assert _stored(installation, "AON") == (0, 0)
    [entry] = audit_since(installation, before)
    assert (entry.action, entry.outcome) == ("import", "failure")


def test_row_level_writes_the_good_rows_and_reports_the_rejected_ones(installation):
    report = import_records(
        installation.registry,
        principal(installation, "data_entry@A"),
        VISIT,
        records_csv(VISIT, _with_two_bad_rows("ROW")),
        "A",
        mode="row-level",
        name="visits.csv",
    )
    assert report.written and not report.ok
    assert (report.created, report.rejected_rows, report.patients_created) == (198, 2, 20)
    assert {p.row for p in report.problems} == {12, 59}
    assert _stored(installation, "ROW") == (20, 198)
    assert report.problems_csv().splitlines()[0] == "row,field,value,reason"
    assert report.as_dict()["problems"][0]["field"] == "pga"


def test_re_importing_a_file_creates_no_duplicates_and_applies_changes(installation):
    registry = installation.registry
    lead = principal(installation, "site_lead@A")
    rows = visit_rows(120, prefix="RE")
    first = import_records(registry, lead, VISIT, records_csv(VISIT, rows), "A")
    assert (first.created, first.unchanged, first.patients_created) == (120, 0, 20)
    again = import_records(registry, lead, VISIT, records_csv(VISIT, rows), "A")
    assert (again.created, again.updated, again.unchanged, again.patients_created) == (
        0,
        0,
        120,
        0,
    )
    rows[5]["nutrition"] = "3"
    before = audit_seq(installation)
    changed = import_records(registry, lead, VISIT, records_csv(VISIT, rows), "A")
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 119)
    assert _stored(installation, "RE") == (20, 120)
    entries = audit_since(installation, before)
    assert [e.action for e in entries] == ["import", "update"]
    assert entries[1].reason == "bulk import of records.csv" and entries[1].patient_id


def test_a_batch_is_audited_once_plus_once_per_patient_and_the_chain_holds(installation):
    before = audit_seq(installation)
    report = import_records(
        installation.registry,
        principal(installation, "clinician@A"),
        VISIT,
        records_csv(VISIT, visit_rows(60, prefix="AUD", patients=15)),
        "A",
        name="audit.csv",
    )
    assert report.created == 60
    entries = audit_since(installation, before)
    assert entries[0].action == "import"
    summary = json.loads(entries[0].details)
    assert (summary["created"], summary["patients_created"], summary["source"]) == (
        60,
        15,
        "audit.csv",
    )
    per_patient = entries[1:]
    assert len(per_patient) == 15 and {e.action for e in per_patient} == {"create"}
    assert len({e.patient_id for e in per_patient}) == 15
    assert all(e.site_code == "A" and "weight" not in (e.details or "") for e in entries)
    with installation.registry.transaction() as session:
        assert verify_chain(session).intact


def test_draft_rows_may_leave_required_fields_empty(installation):
    rows = visit_rows(3, prefix="DRAFT")
    for row in rows:
        row["ibd_visit_complete"] = "0"
        del row["height_cm"]
    report = import_records(
        installation.registry,
        principal(installation, "clinician@A"),
        VISIT,
        records_csv(VISIT, rows),
        "A",
    )
    assert report.ok and report.created == 3
    rows[0]["ibd_visit_complete"] = "2"
    refused = import_records(
        installation.registry,
        principal(installation, "clinician@A"),
        VISIT,
        records_csv(VISIT, rows),
        "A",
        mode="row-level",
    )
    assert [(p.row, p.field) for p in refused.problems] == [(2, "height_cm")]


def test_a_wrong_header_names_file_row_and_column_and_writes_nothing(installation):
    data = records_csv(VISIT, visit_rows(5, prefix="HDR"))
    header, _, body = data.partition(b"\n")
    bad = header.replace(b"weight_kg", b"weigth_kg") + b"\n" + body
    before = audit_seq(installation)
    with pytest.raises(ValidationFailed) as caught:
        import_records(
            installation.registry,
            principal(installation, "clinician@A"),
            VISIT,
            bad,
            "A",
            name="bad.csv",
        )
    # The misspelt column is an error; weight_kg, now without a column, is merely missing.
    assert {d.location for d in caught.value.details} == {"bad.csv:1:weigth_kg"}
    assert "did you mean 'weight_kg'" in str(caught.value)
    assert _stored(installation, "HDR") == (0, 0)
    [entry] = audit_since(installation, before)
    assert (entry.action, entry.outcome) == ("import", "failure")


def test_a_file_that_is_not_utf8_is_refused_naming_the_row(installation):
    data = records_csv(VISIT, visit_rows(5, prefix="ENC"))
    latin1 = data.replace(b"ENC-3", "ENC-\u00e9".encode("latin-1"), 1)
    with pytest.raises(ValidationFailed) as caught:
        import_records(
            installation.registry,
            principal(installation, "clinician@A"),
            VISIT,
            latin1,
            "A",
            name="latin1.csv",
        )
    assert caught.value.details[0].location == "latin1.csv:5"
    assert "UTF-8" in caught.value.message
    assert _stored(installation, "ENC") == (0, 0)


def test_importing_into_another_sites_patients_is_refused(installation):
    data = records_csv(VISIT, visit_rows(5, prefix="XSITE"))
    with pytest.raises(NotFound):
        import_records(
            installation.registry, principal(installation, "site_lead@A"), VISIT, data, "B"
        )
    with pytest.raises(PermissionDenied):
        import_records(
            installation.registry, principal(installation, "analyst@A"), VISIT, data, "A"
        )
    assert _stored(installation, "XSITE") == (0, 0)


def test_export_respects_scope_is_audited_and_re_imports_unchanged(installation):
    registry = installation.registry
    import_records(
        registry,
        installation.operator,
        VISIT,
        records_csv(VISIT, visit_rows(10, prefix="EXB", patients=2)),
        "B",
    )
    lead_a = principal(installation, "site_lead@A")
    before = audit_seq(installation)
    exported = export_records(registry, lead_a, VISIT, fmt="csv")
    assert "EXB-" not in exported.text and "MRN-B" not in exported.text
    assert exported.rows > 0
    entries = audit_since(installation, before)
    assert entries[0].action == "export" and len(entries) == 1 + exported.patients
    assert {e.site_code for e in entries[1:]} == {"A"}
    with pytest.raises(PermissionDenied):
        export_records(registry, principal(installation, "clinician@A"), VISIT)
    with pytest.raises(NotFound):
        export_records(registry, lead_a, VISIT, site="B")
    everything = export_records(registry, installation.operator, VISIT, fmt="csv", site="B")
    assert "EXB-0" in everything.text and "ROW-" not in everything.text
    again = import_records(registry, installation.operator, VISIT, everything.text.encode(), "B")
    assert (again.created, again.updated, again.unchanged) == (0, 0, everything.rows)


def test_json_and_fhir_exports_name_the_form_version(installation):
    registry = installation.registry
    import_records(
        registry,
        installation.operator,
        VISIT,
        records_csv(VISIT, visit_rows(4, prefix="FHIR", patients=2)),
        "A",
    )
    lead = principal(installation, "site_lead@A")
    as_json = json.loads(export_records(registry, lead, VISIT, fmt="json", site="A").text)
    record = next(r for r in as_json if r["record_id"] == "FHIR-0")
    assert len(record["form_version"]) == 64 and record["values"]["medications"] == ["1", "3"]
    lines = export_records(registry, lead, VISIT, fmt="fhir", site="A").text.splitlines()
    resources = [QuestionnaireResponse.model_validate_json(line) for line in lines]
    mine = [r for r in resources if r.subject.identifier.value == "FHIR-0"]
    assert mine and mine[0].questionnaire == f"urn:careloop:form:{VISIT}|{record['form_version']}"
    answers = {
        item.linkId: item.answer
        for group in mine[0].item
        for item in (group.item or [group])
        if item.answer
    }
    assert answers["weight_kg"][0].valueDecimal is not None
    assert [a.valueCoding.code for a in answers["medications"]] == ["1", "3"]


def test_an_export_can_keep_only_patients_whose_consent_allows_it(installation):
    registry = installation.registry
    rows = visit_rows(4, prefix="CONS", patients=2)  # new patients: direct_care_only
    rows[0]["record_id"] = "MRN-A-2"  # registered with improvement_and_research
    import_records(registry, installation.operator, VISIT, records_csv(VISIT, rows), "A")
    lead = principal(installation, "site_lead@A")
    everyone = json.loads(export_records(registry, lead, VISIT, fmt="json").text)
    assert {"MRN-A-2", "CONS-0", "CONS-1"} <= {r["record_id"] for r in everyone}
    research = json.loads(
        export_records(registry, lead, VISIT, fmt="json", consent=["improvement_and_research"]).text
    )
    assert research and {r["consent_state"] for r in research} == {"improvement_and_research"}
    assert "MRN-A-2" in {r["record_id"] for r in research}
    assert not any(r["record_id"].startswith("CONS-") for r in research)
    with pytest.raises(InputError, match="consent state"):
        export_records(registry, lead, VISIT, consent=["maybe"])


def test_an_export_for_research_leaves_out_a_patient_who_withdrew_research_only(installation):
    from sqlalchemy import select

    from careloop.store.models import AuditEntry
    from careloop.trust import patients
    from careloop.trust.consent import record_consent_purpose

    registry, operator = installation.registry, installation.operator
    rows = visit_rows(2, prefix="PURP", patients=2)
    import_records(registry, operator, VISIT, records_csv(VISIT, rows), "A")
    ids = {p.local_id: p.id for p in patients.search_patients(registry, operator, text="PURP-")}
    for pid in ids.values():
        patients.record_consent(
            registry, operator, pid, state="improvement_and_research", method="paper"
        )
    record_consent_purpose(registry, operator, ids["PURP-1"], "research", False, method="paper")
    lead = principal(installation, "site_lead@A")

    def exported(purpose: str) -> set[str]:
        text = export_records(registry, lead, VISIT, fmt="json", purposes=[purpose]).text
        return {r["record_id"] for r in json.loads(text) if r["record_id"].startswith("PURP-")}

    assert exported("research") == {"PURP-0"}
    assert exported("quality_improvement") == {"PURP-0", "PURP-1"}
    with registry.transaction() as session:
        last = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "export", AuditEntry.patient_id.is_(None))
            .order_by(AuditEntry.seq.desc())
            .limit(2)
        ).all()
    research_run = json.loads(last[1].details or "{}")
    assert research_run["purposes"] == ["research"] and research_run["kept_out_by_consent"] >= 1
    with pytest.raises(InputError, match="consent purpose"):
        export_records(registry, lead, VISIT, purposes=["marketing"])
