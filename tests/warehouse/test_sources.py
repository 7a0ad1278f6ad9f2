"""Every source keeps its rows: registry refreshes, FHIR imports and OMOP loads side by side.

The FHIR data are the eight real Synthea patients of ``../shared/data/fhir_synthea_r4``
(see its README); the OMOP files are the Eunomia slice in ``tests/data/omop_small``.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from careloop.capture import entry, forms_store
from careloop.capture.examples import example_file
from careloop.content.ibd.concepts import CONCEPT_MAP
from careloop.core.errors import Conflict
from careloop.store.models import Patient
from careloop.store.models.capture import FormDefinition, FormVersion
from careloop.store.scoping import Scope, set_scope
from careloop.trust import patients
from careloop.trust.provenance import get_provenance
from careloop.warehouse import Warehouse, quiet_engine_warnings
from careloop.warehouse.jobs import list_sources, load_omop_directory, remove_source
from careloop.warehouse.omop_csv import load_omop_csv
from careloop.warehouse.refresh import refresh_warehouse, warehouse_provenance
from careloop.warehouse.sources import ASSEMBLED_TABLES, STORE_PREFIX
from tests.foundation import (
    Installation,
    build_installation,
    fhir_import,
    make_settings,
    refresh_installation,
)
from tests.warehouse.conftest import OMOP_SMALL

CLINICAL = (
    "visit_occurrence",
    "condition_occurrence",
    "measurement",
    "observation",
    "drug_exposure",
    "procedure_occurrence",
)
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
def synthea(shared_data: Path, tmp_path: Path) -> Path:
    """The eight Synthea patient bundles (the hospital and practitioner bundles left out)."""
    folder = tmp_path / "synthea"
    folder.mkdir()
    for path in sorted((shared_data / "fhir_synthea_r4").glob("*.json")):
        if "Information" not in path.name:
            shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture
def inst(tmp_path: Path, database_url: str | None) -> Iterator[Installation]:
    """Sites A and B with two consented patients each and one IBD visit per patient."""
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


def _refresh(inst: Installation, *, full: bool = False):  # type: ignore[no-untyped-def]
    return refresh_installation(inst, concept_map=CONCEPT_MAP, full=full)


def _counts(inst: Installation, tables: tuple[str, ...] = ("person", *CLINICAL)) -> dict[str, int]:
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        return wh.row_counts(tables)


def _sql(inst: Installation, sql: str) -> list[tuple[object, ...]]:
    with Warehouse.from_settings(inst.settings, read_only=True) as wh, quiet_engine_warnings():
        return [tuple(r) for r in wh.ibis.sql(sql).execute().itertuples(index=False)]


def _jobs(inst: Installation, job: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a warehouse job as the CLI does: the installation's registry and warehouse."""
    with Warehouse.from_settings(inst.settings) as warehouse:
        return job(inst.registry, warehouse, inst.operator, *args, **kwargs)


def _offset_omop(folder: Path, offset: int) -> Path:
    """A copy of the Eunomia slice whose person-level ids are moved by ``offset``.

    Stands for a site's own OMOP extract: the same shape, ids of its own.
    """
    out = folder / "omop"
    out.mkdir()
    for path in OMOP_SMALL.glob("*.csv"):
        if path.stem not in ASSEMBLED_TABLES or path.stem in ("care_site", "cdm_source"):
            shutil.copy(path, out / path.name)
            continue
        with path.open(newline="") as src, (out / path.name).open("w", newline="") as dst:
            reader = csv.DictReader(src)
            writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
            writer.writeheader()
            for row in reader:
                for column, value in row.items():
                    moved = column.endswith("_id") and not column.endswith("concept_id")
                    if moved and column not in ("provider_id", "care_site_id", "location_id"):
                        row[column] = str(int(float(value)) + offset) if value else value
                writer.writerow(row)
    return out


def test_a_refresh_keeps_every_row_of_a_real_fhir_import(inst: Installation, synthea: Path) -> None:
    _refresh(inst)
    registry_rows = _counts(inst)
    report = fhir_import(inst, inst.operator, synthea, site="A")
    assert report.patients_created == 8 and report.rejected == ()
    after_import = _counts(inst)
    assert after_import["person"] == registry_rows["person"] + 8
    for table in CLINICAL:
        assert after_import[table] == registry_rows[table] + report.rows_out.get(table, 0), table
    assert report.rows_out["visit_occurrence"] == 257
    assert report.rows_out["condition_occurrence"] == 5
    # A registry refresh, incremental and full, rebuilds the registry's rows only.
    assert _counts(inst) == after_import
    again = _refresh(inst)
    assert again.persons == 12 and _counts(inst) == after_import
    _refresh(inst, full=True)
    assert _counts(inst) == after_import
    # Every FHIR visit is still there under its stable id.
    fhir_visits = _sql(
        inst, "SELECT count(*) FROM visit_occurrence WHERE visit_source_value <> 'ibd_visit'"
    )
    assert fhir_visits == [(257,)]


def test_observation_periods_span_every_source_of_a_patient(
    inst: Installation, synthea: Path
) -> None:
    fhir_import(inst, inst.operator, synthea, site="A")
    _refresh(inst)
    spans = _sql(
        inst,
        "SELECT p.person_id, p.observation_period_start_date, p.observation_period_end_date, "
        "min(v.visit_start_date), max(v.visit_end_date) FROM observation_period p "
        "JOIN visit_occurrence v USING (person_id) GROUP BY 1, 2, 3",
    )
    assert len(spans) == 12  # four registry patients, eight imported
    for _pid, start, end, first_visit, last_visit in spans:
        assert start <= first_visit and end >= last_visit
    assert _counts(inst, ("observation_period",)) == {"observation_period": 12}


def test_withdrawal_removes_a_patients_rows_from_every_source_on_the_next_refresh(
    inst: Installation, synthea: Path
) -> None:
    fhir_import(inst, inst.operator, synthea, site="A")
    _refresh(inst)
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        imported = session.scalar(
            select(Patient.id).where(Patient.local_id.not_like("MRN-%")).order_by(Patient.id)
        )
    assert imported is not None
    before = _sql(inst, f"SELECT count(*) FROM measurement WHERE person_id = {imported}")
    assert before[0][0] > 0
    patients.record_consent(
        inst.registry, inst.operator, imported, state="withdrawn", method="paper"
    )
    report = _refresh(inst)
    assert report.withheld == {"fhir": 1}
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        names = [t for t in wh.list_tables() if t.startswith(STORE_PREFIX)] + [
            *ASSEMBLED_TABLES,
            "careloop_fhir_link",
        ]
        for name in names:
            table = wh.table(name)
            if "person_id" not in table.columns:
                continue
            with quiet_engine_warnings():
                left = int(table.filter(table.person_id == imported).count().execute())
            assert left == 0, name
    assert _counts(inst)["person"] == 11


def test_an_omop_load_and_a_refresh_keep_each_others_rows(
    inst: Installation, tmp_path: Path
) -> None:
    _refresh(inst)
    registry_rows = _counts(inst)
    omop = _offset_omop(tmp_path, 10_000_000)
    with Warehouse.from_settings(inst.settings) as wh:
        loaded = load_omop_csv(wh, omop)
    combined = _counts(inst)
    for table in ("person", *CLINICAL):
        assert combined[table] == registry_rows[table] + loaded.tables.get(table, 0), table
    _refresh(inst)
    assert _counts(inst) == combined
    _refresh(inst, full=True)
    assert _counts(inst) == combined
    # The loaded files' own observation periods and metadata are kept.
    assert _counts(inst, ("observation_period", "cdm_source")) == {
        "observation_period": 4 + 40,
        "cdm_source": 1,
    }
    # Loading the files again replaces the files' rows only.
    with Warehouse.from_settings(inst.settings) as wh:
        load_omop_csv(wh, omop)
    assert _counts(inst) == combined
    summaries = {s.name: s for s in _jobs(inst, list_sources)}
    assert summaries["registry"].persons == 4 and summaries["omop"].persons == 40


def test_omop_files_that_reuse_registry_ids_are_refused_and_change_nothing(
    inst: Installation,
) -> None:
    _refresh(inst)
    before = _counts(inst)
    with Warehouse.from_settings(inst.settings) as wh, pytest.raises(Conflict) as caught:
        load_omop_csv(wh, OMOP_SMALL)
    assert "both use" in caught.value.message and "careloop warehouse drop-source" in str(
        caught.value.message
    )
    assert _counts(inst) == before
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        assert not [t for t in wh.list_tables() if t.startswith("careloop_src_omop__")] or all(
            n == 0
            for n in wh.row_counts(
                [t for t in wh.list_tables() if t.startswith("careloop_src_omop__")]
            ).values()
        )


def test_dropping_a_source_removes_its_rows_only(inst: Installation, synthea: Path) -> None:
    _refresh(inst)
    registry_rows = _counts(inst)
    fhir_import(inst, inst.operator, synthea, site="A")
    removed, provenance = _jobs(inst, remove_source, "fhir", reason="test import")
    assert removed["visit_occurrence"] == 257 and removed["person"] == 8
    assert _counts(inst) == registry_rows
    assert get_provenance(inst.registry, provenance.id).activity == "warehouse.drop_source"
    assert _sql(inst, "SELECT count(*) FROM careloop_fhir_link") == [(0,)]


def test_a_refresh_names_the_loads_still_in_the_warehouse_as_its_parents(
    inst: Installation, synthea: Path, tmp_path: Path
) -> None:
    first = fhir_import(inst, inst.operator, synthea, site="A")
    _jobs(inst, remove_source, "fhir", reason="wrong site")
    second = fhir_import(inst, inst.operator, synthea, site="B")
    _, load = _jobs(inst, load_omop_directory, _offset_omop(tmp_path, 10_000_000))
    refreshed = _refresh(inst)
    parents = get_provenance(inst.registry, refreshed.provenance_id).parent_ids
    # The dropped import's rows are gone, so it is no longer part of what the refresh used.
    assert parents == tuple(sorted([second.provenance_id, load.id]))
    assert first.provenance_id not in parents
    # What the warehouse holds now: that refresh, then any load after it.
    assert warehouse_provenance(inst.registry) == [refreshed.provenance_id]
    (tmp_path / "again").mkdir()
    _, again = _jobs(inst, load_omop_directory, _offset_omop(tmp_path / "again", 10_000_000))
    assert warehouse_provenance(inst.registry) == [refreshed.provenance_id, again.id]


def test_a_form_version_that_cannot_be_read_is_skipped_and_the_others_load(
    inst: Installation,
) -> None:
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        form_id = session.scalar(
            select(FormDefinition.id).where(FormDefinition.name == "ibd_visit")
        )
        version = session.scalars(select(FormVersion).where(FormVersion.form_id == form_id)).one()
        # A stored definition this careloop cannot read (e.g. written by a newer one).
        broken = FormVersion(
            form_id=form_id,
            version="0" * 64,
            definition={**version.definition, "fields": [{"name": "x", "type": "hologram"}]},
            source_format="yaml",
        )
        session.add(broken)
        session.flush()
        broken_id = broken.id
    # One patient's visit moves to the unreadable version.
    from careloop.store.models.capture import Response

    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        response = session.scalars(select(Response).order_by(Response.id)).first()
        assert response is not None
        response.form_version_id = broken_id
    report = _refresh(inst)
    assert [d.location for d in report.skipped_forms] == ["ibd_visit version 000000000000"]
    assert "could not be read" in report.skipped_forms[0].message
    assert report.rows["visit_occurrence"] == 3 and report.persons == 4


def _forget_sources(inst: Installation) -> None:
    """Make the warehouse look as an earlier careloop left it: CDM tables, no stores."""
    with Warehouse.from_settings(inst.settings) as wh:
        for table in wh.list_tables():
            if table.startswith(STORE_PREFIX):
                wh.drop_table(table)


def test_a_warehouse_written_before_sources_keeps_every_row(
    inst: Installation, synthea: Path, tmp_path: Path
) -> None:
    _refresh(inst)
    fhir_import(inst, inst.operator, synthea, site="A")
    with Warehouse.from_settings(inst.settings) as wh:
        load_omop_csv(wh, _offset_omop(tmp_path, 10_000_000))
    everything = _counts(inst)
    _forget_sources(inst)
    _refresh(inst)
    assert _counts(inst) == everything
    summaries = {s.name: s.persons for s in _jobs(inst, list_sources)}
    # FHIR patients are registry patients too: the registry source has their person rows.
    assert summaries == {"registry": 12, "fhir": 8, "omop": 40}
    # The FHIR rows are the FHIR source's again: dropping it leaves the others.
    _jobs(inst, remove_source, "fhir", reason="test")
    assert _counts(inst, ("visit_occurrence",))["visit_occurrence"] == (
        everything["visit_occurrence"] - 257
    )


def test_a_refresh_of_an_installation_with_no_site_yet_writes_empty_tables(tmp_path: Path) -> None:
    from careloop.trust.installation import initialise, open_registry
    from careloop.trust.principal import Principal

    settings = make_settings(tmp_path, None)
    operator = Principal.operator("tester")
    initialise(settings, operator, admin_email="admin@example.org", admin_password="x" * 16)
    registry = open_registry(settings)
    try:
        with Warehouse.from_settings(settings) as warehouse:
            report = refresh_warehouse(registry, warehouse, operator)
    finally:
        registry.close()
    assert report.persons == 0 and report.rows["visit_occurrence"] == 0
