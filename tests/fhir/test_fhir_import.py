"""FHIR R4 import: registry patients, OMOP rows, consent, idempotence, audit, provenance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from careloop.core.errors import InputError, NotFound, PermissionDenied
from careloop.fhir.mapping import LINK_TABLE, stable_id
from careloop.trust.audit import AuditFilter, report_entries
from careloop.trust.provenance import get_provenance
from careloop.warehouse import Warehouse
from tests.fhir.fhir_support import (
    BOB_BUNDLE,
    FHIR_SMALL,
    HANDWRITTEN,
    fhir_install_fixture,  # noqa: F401 - the fhir_install fixture
    registry_patients,
    site_principal,
    sqlite_install_fixture,  # noqa: F401 - the sqlite_install fixture
    warehouse_counts,
    warehouse_frame,
)
from tests.foundation import Installation, build_installation, fhir_import, make_settings

BOB_ID = "3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b"


def test_import_of_a_bundle_and_ndjson_fills_the_registry_and_the_warehouse(
    fhir_install: Installation,
) -> None:
    inst = fhir_install
    report = fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    assert report.resources_in["Patient"] == 3
    assert report.patients_created == 3
    assert report.skipped_count("Immunization") == 1
    # Nothing read is dropped silently: what is not kept is counted with the reason.
    assert {s.what for s in report.skipped} == {
        "Encounter.type",
        "Immunization",
        "Patient.address",
        "Patient.communication",
        "Patient.extension",
        "Patient.identifier",
        "Patient.maritalStatus",
        "Patient.multipleBirthBoolean",
        "Patient.telecom",
    }
    assert report.rejected == ()
    # p3's research consent is denied: their one Observation stays out of the warehouse.
    assert report.withheld_by_consent == 1
    assert report.rows_out == {
        "person": 2,
        "visit_occurrence": 3,
        "condition_occurrence": 2,
        "measurement": 5,
        "observation": 5,
        "drug_exposure": 2,
        "procedure_occurrence": 1,
    }
    assert warehouse_counts(inst) == report.rows_out
    patients = {p.local_id: p for p in registry_patients(inst)}
    assert len(patients) == 3
    assert {"MRN-0002", "MRN-0003"} <= set(patients)
    ada = patients["MRN-0002"]
    assert (ada.given_name, ada.family_name, str(ada.birth_date), ada.sex) == (
        "Ada Nkem",
        "Okafor",
        "1971-05-02",
        "female",
    )
    assert ada.consent_state == "improvement_and_research"
    assert patients["MRN-0003"].consent_state == "direct_care_only"


def test_synthea_patient_keeps_its_mrn_not_its_ssn_and_gets_the_default_consent(
    sqlite_install: Installation,
) -> None:
    inst = sqlite_install
    fhir_import(inst, inst.operator, BOB_BUNDLE, site="A")
    (bob,) = registry_patients(inst)
    resource = json.loads(BOB_BUNDLE.read_text())["entry"][0]["resource"]
    mrn = next(
        i["value"]
        for i in resource["identifier"]
        if i.get("type", {}).get("coding", [{}])[0].get("code") == "MR"
    )
    assert bob.local_id == mrn
    assert bob.consent_state == inst.settings.default_consent == "improvement_and_research"


def test_the_warehouse_holds_pseudonyms_only_never_names_or_mrns(
    fhir_install: Installation,
) -> None:
    inst = fhir_install
    fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    secrets = set()
    for p in registry_patients(inst):
        secrets |= {p.local_id, p.family_name or "", p.given_name or "", str(p.birth_date)}
    secrets.discard("")
    person = warehouse_frame(inst, "person")
    pseudonyms = {
        p.pseudo_id for p in registry_patients(inst) if p.consent_state != "direct_care_only"
    }
    assert set(person["person_source_value"]) == pseudonyms
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        for table in wh.list_tables():
            frame = wh.table(table).execute()
            text = " ".join(str(v) for v in frame.to_numpy().ravel())
            leaked = [s for s in secrets if s in text]
            assert leaked == [], (table, leaked)


def test_reimporting_the_same_files_creates_no_duplicates(fhir_install: Installation) -> None:
    inst = fhir_install
    first = fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    before = warehouse_counts(inst)
    pseudonyms = {p.local_id: p.pseudo_id for p in registry_patients(inst)}
    second = fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    assert second.patients_created == 0
    assert warehouse_counts(inst) == before == first.rows_out
    assert {p.local_id: p.pseudo_id for p in registry_patients(inst)} == pseudonyms
    links = warehouse_frame(inst, LINK_TABLE)
    assert not links.duplicated(["cdm_table", "cdm_id"]).any()


def test_a_changed_value_replaces_the_row_with_the_same_resource_id(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    fhir_import(inst, inst.operator, HANDWRITTEN, site="A")
    lines = HANDWRITTEN.read_text().splitlines()
    changed = [
        line.replace("168.5", "170.0") if "obs-p2-height" in line else line for line in lines
    ]
    path = tmp_path / "changed.ndjson"
    path.write_text("\n".join(changed) + "\n")
    fhir_import(inst, inst.operator, path, site="A")
    measurement = warehouse_frame(inst, "measurement")
    height = measurement[
        measurement.measurement_id == stable_id("A", "Observation", "obs-p2-height")
    ]
    assert list(height.value_as_number) == [170.0]


def test_codes_map_to_concepts_the_concept_table_knows_else_zero_with_the_source_value(
    sqlite_install: Installation,
) -> None:
    inst = sqlite_install
    with Warehouse.from_settings(inst.settings) as wh:
        wh.create_schema(tables=["concept"])
        wh.insert(
            "concept",
            pd.DataFrame(
                {
                    "concept_id": [3036277, 8582, 8532, 32817, 201826],
                    "concept_name": ["Body height", "centimeter", "FEMALE", "EHR", "T2DM"],
                    "domain_id": ["Measurement", "Unit", "Gender", "Type Concept", "Condition"],
                    "vocabulary_id": ["LOINC", "UCUM", "Gender", "Type Concept", "SNOMED"],
                    "concept_class_id": ["Clinical Observation", "Unit", "Gender", "Type", "x"],
                    "standard_concept": ["S", "S", "S", "S", "S"],
                    "concept_code": ["8302-2", "cm", "F", "OMOP4976890", "44054006"],
                    "valid_start_date": pd.to_datetime(["1970-01-01"] * 5).date,
                    "valid_end_date": pd.to_datetime(["2099-12-31"] * 5).date,
                }
            ),
        )
    fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    m = warehouse_frame(inst, "measurement").set_index("measurement_id")
    height = m.loc[stable_id("A", "Observation", "obs-p2-height")]
    assert (height.measurement_concept_id, height.unit_concept_id) == (3036277, 8582)
    assert height.measurement_type_concept_id == 32817
    weight_like = m.drop(index=stable_id("A", "Observation", "obs-p2-height"))
    assert set(weight_like.measurement_concept_id) == {0}
    # Synthea's CIEL codes sent as LOINC keep their code as the source value.
    assert any(str(v).endswith("AAAA") for v in weight_like.measurement_source_value)
    c = warehouse_frame(inst, "condition_occurrence").set_index("condition_occurrence_id")
    assert c.loc[stable_id("A", "Condition", "cond-p2-1")].condition_concept_id == 201826
    assert c.loc[stable_id("A", "Condition", "cond-p2-2")].condition_source_value == "J45.909"
    person = warehouse_frame(inst, "person")
    # Ada is female (8532 is known); Bob is male, and 8507 is not in this concept table.
    assert sorted(person.gender_concept_id) == [0, 8532]


def test_synthea_ciel_codes_in_the_loinc_system_are_flagged_as_warnings(
    sqlite_install: Installation,
) -> None:
    inst = sqlite_install
    report = fhir_import(inst, inst.operator, BOB_BUNDLE, site="A")
    assert len(report.warnings) == 10
    first = report.warnings[0]
    assert first.location.startswith("synthea_bob_trimmed.json:entry[")
    assert first.location.endswith("Observation.code.coding[0].code")
    assert "is not in the format of LOINC codes" in first.message


def test_the_default_consent_setting_applies_to_patients_without_a_consent(
    database_url: str | None, tmp_path: Path
) -> None:
    inst = build_installation(
        make_settings(tmp_path, database_url, default_consent="direct_care_only"),
        with_users=False,
    )
    try:
        report = fhir_import(inst, inst.operator, BOB_BUNDLE, site="A")
        (bob,) = registry_patients(inst)
        assert bob.consent_state == "direct_care_only"
        assert report.withheld_by_consent == 9  # 7 Observations, 2 Encounters
        assert warehouse_counts(inst) == dict.fromkeys(
            ["person", "visit_occurrence", "condition_occurrence", "measurement",
             "observation", "drug_exposure", "procedure_occurrence"], 0
        )  # fmt: skip
    finally:
        inst.registry.close()


def test_a_consent_that_is_withdrawn_later_removes_the_patients_rows(
    fhir_install: Installation, tmp_path: Path
) -> None:
    inst = fhir_install
    fhir_import(inst, inst.operator, HANDWRITTEN, site="A")
    assert warehouse_counts(inst)["person"] == 1
    lines = [json.loads(line) for line in HANDWRITTEN.read_text().splitlines()]
    withdrawal = {
        "resourceType": "Consent",
        "id": "consent-p2-withdrawn",
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/careloop-test-p2"},
        "policyRule": {"coding": [{"system": "https://careloop.org/fhir/CodeSystem/consent-state", "code": "withdrawn"}]},
    }  # fmt: skip
    path = tmp_path / "withdrawal.ndjson"
    path.write_text(json.dumps(lines[0]) + "\n" + json.dumps(withdrawal) + "\n")
    report = fhir_import(inst, inst.operator, path, site="A")
    assert report.patients_updated == 1
    ada = next(p for p in registry_patients(inst) if p.local_id == "MRN-0002")
    assert ada.consent_state == "withdrawn"
    assert set(warehouse_counts(inst).values()) == {0}


def test_patients_belong_to_the_only_site_or_the_one_named(sqlite_install: Installation) -> None:
    inst = sqlite_install
    with pytest.raises(InputError, match="has 2 sites"):
        fhir_import(inst, inst.operator, BOB_BUNDLE)
    with pytest.raises(NotFound, match="no site with code 'C'"):
        fhir_import(inst, inst.operator, BOB_BUNDLE, site="C")
    report = fhir_import(inst, inst.operator, BOB_BUNDLE, site="b")
    assert report.site == "B"


def test_importing_needs_patient_create_and_record_write_at_the_site(
    fhir_install: Installation,
) -> None:
    inst = fhir_install
    analyst = site_principal(inst, "analyst", "A")
    with pytest.raises(PermissionDenied):
        fhir_import(inst, analyst, BOB_BUNDLE, site="A")
    other_site = site_principal(inst, "site_lead", "B")
    with pytest.raises(NotFound):
        fhir_import(inst, other_site, BOB_BUNDLE, site="A")
    lead = site_principal(inst, "site_lead", "A")
    assert fhir_import(inst, lead, BOB_BUNDLE, site="A").patients_created == 1


def test_an_import_is_audited_and_records_provenance_with_file_hashes(
    fhir_install: Installation,
) -> None:
    inst = fhir_install
    report = fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    with inst.registry.transaction() as session:
        (entry,) = report_entries(session, AuditFilter(action="import"))
        details = json.loads(entry.details or "{}")
        assert (entry.site_code, entry.outcome, details["resources"]) == ("A", "success", 25)
        created = report_entries(session, AuditFilter(action="create"))
        assert sum(1 for e in created if e.category == "demographics" and e.site_code == "A") == 3
    assert report.provenance_id is not None
    provenance = get_provenance(inst.registry, report.provenance_id)
    assert provenance.activity == "fhir.import"
    assert (provenance.rows_in, provenance.rows_rejected) == (25, 0)
    assert provenance.rows_out == sum(report.rows_out.values())
    hashes = {Path(i.name).name: i.sha256 for i in provenance.inputs}
    assert hashes == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (BOB_BUNDLE, HANDWRITTEN)
    }


@pytest.mark.slow
def test_the_whole_synthea_sample_imports_with_every_resource_counted(
    sqlite_install: Installation, shared_data: Path
) -> None:
    inst = sqlite_install
    folder = shared_data / "fhir_synthea_r4"
    report = fhir_import(inst, inst.operator, folder, site="A")
    assert report.total_in == sum(
        len(json.loads(p.read_text())["entry"]) for p in folder.glob("*.json")
    )
    assert report.patients_created == 8
    assert report.rejected == ()
    assert report.rows_out["visit_occurrence"] == report.resources_in["Encounter"]
    assert (
        report.rows_out["measurement"] + report.rows_out["observation"]
        == report.resources_in["Observation"]
    )
    again = fhir_import(inst, inst.operator, folder, site="A")
    assert again.patients_created == 0
    assert warehouse_counts(inst) == report.rows_out


def test_the_import_is_idempotent_on_each_warehouse_engine(engine_url: str, tmp_path: Path) -> None:
    inst = build_installation(
        make_settings(tmp_path, None, warehouse_url=engine_url), with_users=False
    )
    try:
        first = fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
        fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
        with Warehouse.connect(engine_url) as wh:
            counts = wh.row_counts(list(first.rows_out))
            links = wh.table(LINK_TABLE).count().execute()
        assert counts == first.rows_out
        assert links == sum(v for k, v in first.rows_out.items() if k != "person")
    finally:
        inst.registry.close()
