"""FHIR Bulk Data export: valid NDJSON, the caller's scope only, audited; the round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from careloop.core.errors import PermissionDenied
from careloop.fhir.exporting import export_fhir
from careloop.trust.audit import AuditFilter, report_entries
from careloop.warehouse.connection import warehouse_opener
from tests.fhir.fhir_support import (
    BOB_BUNDLE,
    FHIR_SMALL,
    HANDWRITTEN,
    fhir_install_fixture,  # noqa: F401 - the fhir_install fixture
    site_principal,
    sqlite_install_fixture,  # noqa: F401 - the sqlite_install fixture
)
from tests.foundation import Installation, build_installation, fhir_import, make_settings

CLINICAL_TYPES = (
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
)


def _read(out: Path) -> dict[str, list[dict[str, Any]]]:
    manifest = json.loads((out / "manifest.json").read_text())
    found: dict[str, list[dict[str, Any]]] = {}
    for item in manifest["output"]:
        lines = (out / item["url"]).read_text().splitlines()
        assert len(lines) == item["count"]
        found[item["type"]] = [json.loads(line) for line in lines]
    return found


def _comparable(resources: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Resources with patient references replaced by MRNs (pseudonyms differ per installation)."""
    mrn = {p["id"]: p["identifier"][0]["value"] for p in resources["Patient"]}
    text = {}
    for kind in ("Patient", "Consent", *CLINICAL_TYPES):
        items = []
        for resource in resources.get(kind, []):
            body = json.dumps(resource, sort_keys=True)
            for pseudo, value in mrn.items():
                body = body.replace(pseudo, f"MRN:{value}")
            items.append(body)
        text[kind] = sorted(items)
    return text


def test_export_then_import_into_an_empty_installation_loses_nothing_the_mapping_covers(
    fhir_install: Installation, tmp_path: Path
) -> None:
    first = fhir_install
    fhir_import(first, first.operator, FHIR_SMALL, site="A")
    exported = export_fhir(
        first.registry, warehouse_opener(first.settings), first.operator, tmp_path / "one"
    )
    second = build_installation(make_settings(tmp_path / "second", None), with_users=False)
    try:
        fhir_import(second, second.operator, tmp_path / "one", site="A")
        export_fhir(
            second.registry, warehouse_opener(second.settings), second.operator, tmp_path / "two"
        )
    finally:
        second.registry.close()
    one, two = _read(tmp_path / "one"), _read(tmp_path / "two")
    assert exported.counts["Observation"] == 10
    assert _comparable(one) == _comparable(two)


def test_exported_resources_keep_the_values_that_were_imported(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    fhir_import(inst, inst.operator, HANDWRITTEN, site="A")
    export_fhir(inst.registry, warehouse_opener(inst.settings), inst.operator, tmp_path)
    found = _read(tmp_path)
    by_id = {r["id"]: r for kind in CLINICAL_TYPES for r in found.get(kind, [])}
    height = by_id["obs-p2-height"]
    # 10:00 at +01:00 is 09:00 UTC: the same instant.
    assert height["effectiveDateTime"] == "2021-03-01T09:00:00+00:00"
    assert height["valueQuantity"]["value"] == 168.5
    assert height["encounter"] == {"reference": "Encounter/enc-p2-1"}
    assert by_id["obs-p2-smoking"]["valueCodeableConcept"]["coding"][0]["code"] == "8517006"
    assert by_id["obs-p2-note"]["valueString"] == "settling"
    assert by_id["obs-p2-note"]["code"]["coding"][0]["system"] == "urn:careloop:local:ibd"
    asthma = by_id["cond-p2-2"]
    assert (asthma["onsetDateTime"], asthma["abatementDateTime"]) == ("2015-06-01", "2019-01-15")
    assert asthma["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert by_id["medst-p2-1"]["resourceType"] == "MedicationStatement"
    assert by_id["medrq-p2-1"]["authoredOn"] == "2021-03-04T10:00:00+00:00"
    consents = {c["policyRule"]["coding"][0]["code"] for c in found["Consent"]}
    assert consents == {"improvement_and_research", "direct_care_only"}
    # The withheld patient's Observation never reached the warehouse, so it is not exported.
    assert "obs-p3-weight" not in by_id


def test_every_exported_line_is_a_valid_r4_resource(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    export_fhir(inst.registry, warehouse_opener(inst.settings), inst.operator, tmp_path)
    found = _read(tmp_path)
    assert {"Patient", "Consent", "Encounter", "Observation", "Provenance", "AuditEvent"} <= set(
        found
    )
    for kind, resources in found.items():
        model = get_fhir_model_class(kind)
        for resource in resources:
            model.model_validate(resource)


def test_a_site_lead_exports_their_sites_patients_only_and_it_is_audited(
    fhir_install: Installation, tmp_path: Path
) -> None:
    inst = fhir_install
    fhir_import(inst, inst.operator, BOB_BUNDLE, site="A")
    fhir_import(inst, inst.operator, HANDWRITTEN, site="B")
    lead = site_principal(inst, "site_lead", "A")
    report = export_fhir(inst.registry, warehouse_opener(inst.settings), lead, tmp_path)
    found = _read(tmp_path)
    assert [p["meta"]["tag"][0]["code"] for p in found["Patient"]] == ["A"]
    assert report.counts["Observation"] == 7
    text = (tmp_path / "Observation.ndjson").read_text()
    assert "obs-p2" not in text
    assert "AuditEvent" not in found  # site leads may not read the audit trail
    assert all(p["activity"]["text"] == "fhir.import" for p in found["Provenance"])
    assert len(found["Provenance"]) == 1  # the import into A, not the one into B
    with inst.registry.transaction() as session:
        (entry,) = report_entries(session, AuditFilter(action="export"))
    assert json.loads(entry.details or "{}")["counts"]["Patient"] == 1


def test_a_clinician_may_not_export(sqlite_install: Installation, tmp_path: Path) -> None:
    clinician = site_principal(sqlite_install, "clinician", "A")
    with pytest.raises(PermissionDenied):
        export_fhir(
            sqlite_install.registry, warehouse_opener(sqlite_install.settings), clinician, tmp_path
        )


def test_forms_and_their_responses_are_exported_as_questionnaires_and_responses(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    from careloop.capture.entry import create_response
    from careloop.capture.forms_store import import_forms
    from tests.fhir.fhir_support import registry_patients

    inst = sqlite_install
    forms = Path(__file__).resolve().parents[1] / "data" / "redcap"
    (form,) = import_forms(
        inst.registry, inst.operator, forms / "lifedata_redcap_DataDictionary.csv"
    )
    fhir_import(inst, inst.operator, HANDWRITTEN, site="A")
    ada = next(p for p in registry_patients(inst) if p.local_id == "MRN-0002")
    create_response(
        inst.registry,
        inst.operator,
        form.name,
        patient_id=ada.id,
        event_date="2021-03-02",
        values={"timeoffact": "2021-03-02 10:00:00", "typeoffact": "2", "weightvalue": "70.5"},
        status="complete",
    )
    export_fhir(inst.registry, warehouse_opener(inst.settings), inst.operator, tmp_path / "out")
    found = _read(tmp_path / "out")
    (questionnaire,) = found["Questionnaire"]
    assert questionnaire["url"] == f"urn:careloop:form:{form.name}"
    (response,) = found["QuestionnaireResponse"]
    assert response["questionnaire"] == f"urn:careloop:form:{form.name}|{form.version}"
    assert response["subject"]["reference"] == f"Patient/{ada.pseudo_id}"
    answers = {i["linkId"]: i["answer"][0] for i in response["item"]}
    assert answers["weightvalue"] == {"valueDecimal": 70.5}
    # Importing the export into the same installation finds the response already there.
    report = fhir_import(inst, inst.operator, tmp_path / "out", site="A")
    assert report.skipped_count("QuestionnaireResponse") == 0
    assert (report.responses_created, report.responses_unchanged) == (0, 1)
