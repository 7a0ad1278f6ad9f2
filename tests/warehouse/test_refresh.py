"""The registry → OMOP refresh: consent respected, pseudonymous, incremental, measures' concepts."""

from __future__ import annotations

import pytest

from careloop.capture import entry, forms_store
from careloop.capture.examples import example_file
from careloop.content.ibd import concepts
from careloop.trust import patients
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings
from tests.foundation import build_installation, make_settings, refresh_installation

VISIT = {
    "visit_date": "2026-03-02",
    "visit_type": "1",
    "disease_type": "2",
    "pga": "1",
    "height_cm": "150.0",
    "weight_kg": "45.0",
    "pucai_pain": "0",
    "pucai_bleeding": "0",
    "pucai_consistency": "0",
    "pucai_stools": "0",
    "pucai_nocturnal": "0",
    "pucai_activity": "0",
    "steroid_use": "1",
    "steroid_start": "2026-02-01",
    "medications": ["1", "4"],
    "nutrition": "1",
}


@pytest.fixture
def inst(tmp_path, database_url):
    inst = build_installation(make_settings(tmp_path, database_url))
    forms_store.import_forms(
        inst.registry, inst.operator, example_file("yaml"), fmt="yaml", name="ibd.yaml"
    )
    for site in ("A", "B"):
        for pid in inst.patient_ids[site]:
            entry.create_response(
                inst.registry,
                inst.operator,
                "ibd_visit",
                patient_id=pid,
                event_date="2026-03-02",
                values=VISIT,
                status="complete",
            )
    yield inst
    inst.registry.close()


def _frame(settings, sql):
    with Warehouse.from_settings(settings, read_only=True) as wh, quiet_engine_warnings():
        return wh.ibis.sql(sql).execute()


def test_a_refresh_loads_consented_patients_pseudonymously_with_the_measures_concepts(inst):
    withdrawn = inst.patient_ids["B"][1]
    patients.record_consent(
        inst.registry, inst.operator, withdrawn, state="withdrawn", method="paper"
    )
    report = refresh_installation(inst, concept_map=concepts.CONCEPT_MAP)
    assert report.persons == 3 and report.patients_excluded == 1
    persons = _frame(inst.settings, "SELECT * FROM person ORDER BY person_id")
    assert list(persons.person_id) == [
        p for p in [*inst.patient_ids["A"], *inst.patient_ids["B"]] if p != withdrawn
    ]
    text = persons.to_csv()
    assert "MRN-" not in text and "Given" not in text and "Family" not in text
    assert set(persons.day_of_birth.dropna()) == set()  # only year and month of birth
    height = _frame(
        inst.settings,
        f"SELECT value_as_number FROM measurement WHERE measurement_concept_id = {concepts.BODY_HEIGHT}",
    )
    assert list(height.value_as_number) == [150.0] * 3
    bmi = _frame(
        inst.settings,
        f"SELECT value_as_number FROM measurement WHERE measurement_concept_id = {concepts.BODY_MASS_INDEX}",
    )
    assert list(bmi.value_as_number) == [20.0] * 3  # 45 / 1.5² = 20.0
    drugs = _frame(
        inst.settings,
        "SELECT drug_concept_id, drug_exposure_start_date FROM drug_exposure ORDER BY drug_concept_id",
    )
    assert sorted(set(drugs.drug_concept_id)) == sorted(
        {concepts.STEROID_ORAL, 2_000_000_211, 2_000_000_214}
    )
    conditions = _frame(
        inst.settings, "SELECT DISTINCT condition_concept_id FROM condition_occurrence"
    )
    assert list(conditions.condition_concept_id) == [concepts.ULCERATIVE_COLITIS]
    local = _frame(
        inst.settings, f"SELECT concept_name FROM concept WHERE concept_id = {concepts.PGA}"
    )
    assert list(local.concept_name) == ["Physician global assessment of IBD activity"]


def test_every_concept_a_refresh_writes_is_in_concept_with_its_tables_domain_and_units(inst):
    # What OHDSI's DQD checks as concept_known, fk_domain and standard_valid_concept:
    # without the OMOP vocabularies loaded, the refresh registers what it uses.
    refresh_installation(inst, concept_map=concepts.CONCEPT_MAP)
    used = {
        ("measurement", "measurement_concept_id", "Measurement"),
        ("measurement", "unit_concept_id", "Unit"),
        ("observation", "observation_concept_id", "Observation"),
        ("condition_occurrence", "condition_concept_id", "Condition"),
        ("drug_exposure", "drug_concept_id", "Drug"),
        ("visit_occurrence", "visit_concept_id", "Visit"),
        ("cdm_source", "cdm_version_concept_id", "Metadata"),
    }
    for table, column, domain in sorted(used):
        rows = _frame(
            inst.settings,
            f"SELECT DISTINCT t.{column} AS id, c.domain_id, c.standard_concept "
            f"FROM {table} t LEFT JOIN concept c ON c.concept_id = t.{column} "
            f"WHERE t.{column} <> 0",
        )
        assert len(rows) > 0, (table, column)
        assert list(rows.domain_id.unique()) == [domain], (table, column, rows)
        assert set(rows.standard_concept) == {"S"}, (table, column, rows)
    units = _frame(
        inst.settings,
        "SELECT measurement_concept_id, unit_concept_id, unit_source_value FROM measurement "
        f"WHERE measurement_concept_id IN ({concepts.BODY_HEIGHT}, {concepts.BODY_WEIGHT})",
    )
    by_concept = dict(zip(units.measurement_concept_id, units.unit_concept_id, strict=False))
    assert by_concept == {concepts.BODY_HEIGHT: 8582, concepts.BODY_WEIGHT: 9529}  # cm, kg
    assert set(units.unit_source_value) == {"cm", "kg"}


def test_a_second_refresh_rebuilds_only_what_changed_and_withdrawal_removes_a_patient(inst):
    first = refresh_installation(inst, concept_map=concepts.CONCEPT_MAP)
    assert first.persons_rebuilt == 4
    again = refresh_installation(inst, concept_map=concepts.CONCEPT_MAP)
    assert again.persons_rebuilt == 0 and again.rows == first.rows
    gone = inst.patient_ids["A"][0]
    patients.record_consent(inst.registry, inst.operator, gone, state="withdrawn", method="verbal")
    after = refresh_installation(inst, concept_map=concepts.CONCEPT_MAP)
    assert (after.persons_rebuilt, after.persons_removed, after.persons) == (0, 1, 3)
    for table in (
        "person",
        "visit_occurrence",
        "measurement",
        "observation",
        "drug_exposure",
        "observation_period",
    ):
        left = _frame(inst.settings, f"SELECT count(*) AS n FROM {table} WHERE person_id = {gone}")
        assert int(left.n[0]) == 0, table
    assert after.rows["measurement"] == first.rows["measurement"] * 3 // 4


def _pga_visits(settings) -> tuple[int, int]:
    """The network's numerator and denominator of visits-with-complete-pga, March 2026."""
    from datetime import date

    from careloop.measures import load_catalog, run_measures
    from careloop.measures.runner import NETWORK

    measures = load_catalog(environ={}, entry_points=False).select(["visits-with-complete-pga"])
    with Warehouse.from_settings(settings, read_only=True) as wh:
        run = run_measures(wh, measures, start=date(2026, 3, 1), end=date(2026, 3, 31))
    rows = run.results[run.results.site == NETWORK]
    (row,) = rows.itertuples()
    return int(row.numerator), int(row.denominator)


def test_withdrawing_research_keeps_a_patient_in_and_withdrawing_improvement_takes_them_out(
    inst,
):
    import json

    from sqlalchemy import select

    from careloop.store.models import AuditEntry
    from careloop.trust.consent import record_consent_purpose

    refresh_installation(inst, concept_map=concepts.CONCEPT_MAP)
    assert _pga_visits(inst.settings) == (4, 4)
    research_only, improvement = inst.patient_ids["A"]
    record_consent_purpose(inst.registry, inst.operator, research_only, "research", False, method="paper")  # fmt: skip
    kept = refresh_installation(inst, concept_map=concepts.CONCEPT_MAP)
    assert (kept.persons, kept.persons_removed) == (4, 0)  # research plays no part here
    record_consent_purpose(inst.registry, inst.operator, improvement, "quality_improvement", False, method="paper")  # fmt: skip
    after = refresh_installation(inst, concept_map=concepts.CONCEPT_MAP)
    assert (after.persons, after.persons_removed, after.patients_excluded) == (3, 1, 1)
    left = _frame(
        inst.settings, f"SELECT count(*) AS n FROM person WHERE person_id = {improvement}"
    )
    assert int(left.n[0]) == 0
    # The measures read the warehouse, so they follow on the same refresh.
    assert _pga_visits(inst.settings) == (3, 3)
    with inst.registry.transaction() as session:
        (entry,) = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "apply", AuditEntry.category == "consent")
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).all()
    details = json.loads(entry.details or "{}")
    assert details == {
        "activity": "warehouse.refresh",
        "purpose": "quality_improvement",
        "kept_out": 1,
        "removed_patient_ids": [improvement],
    }
