"""FHIR import of real public files: Synthea bundles, a SMART Bulk Data export, US Core examples.

- Dates: every warehouse row's ``*_date`` is the date of its ``*_datetime``,
  both on the site's clock (docs/fhir.md, "Dates and times").
- A Bulk Data export folder imports as the client left it: its log, error
  reports and deletions are skipped with a note.
- Observation components become rows linked to their panel, and come back
  inside the panel on export.
- Whatever is read and not kept is counted, with the reason, in the report.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from careloop.fhir.exporting import export_fhir
from careloop.fhir.mapping import COMPONENT, LINK_TABLE, stable_id
from careloop.trust import identity
from careloop.warehouse import Warehouse
from careloop.warehouse.connection import warehouse_opener
from tests.fhir.fhir_support import (
    CLINICAL,
    sqlite_install_fixture,  # noqa: F401 - the sqlite_install fixture
    warehouse_frame,
)
from tests.foundation import Installation, fhir_import, refresh_installation

DATA = Path(__file__).resolve().parents[1] / "data"
BULK = DATA / "fhir_bulk_smart"
US_CORE = DATA / "fhir_examples" / "us_core"
BULK_IG = DATA / "fhir_examples" / "bulk_data"

DATE_PAIRS = {
    "visit_occurrence": [
        ("visit_start_date", "visit_start_datetime"),
        ("visit_end_date", "visit_end_datetime"),
    ],
    "condition_occurrence": [
        ("condition_start_date", "condition_start_datetime"),
        ("condition_end_date", "condition_end_datetime"),
    ],
    "measurement": [("measurement_date", "measurement_datetime")],
    "observation": [("observation_date", "observation_datetime")],
    "drug_exposure": [
        ("drug_exposure_start_date", "drug_exposure_start_datetime"),
        ("drug_exposure_end_date", "drug_exposure_end_datetime"),
    ],
    "procedure_occurrence": [
        ("procedure_date", "procedure_datetime"),
        ("procedure_end_date", "procedure_end_datetime"),
    ],
}


def _rows(inst: Installation, table: str) -> list[dict[str, object]]:
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        rows: list[dict[str, object]] = wh.table(table).to_pyarrow().to_pylist()
        return rows


def _dates_that_disagree(inst: Installation) -> tuple[int, int]:
    """(rows with a datetime, those whose date is not the datetime's date), all tables."""
    timed = wrong = 0
    for table, pairs in DATE_PAIRS.items():
        for row in _rows(inst, table):
            for day, moment in pairs:
                if row[moment] is None:
                    continue
                timed += 1
                assert isinstance(row[moment], datetime)
                wrong += row[moment].date() != row[day]  # type: ignore[union-attr]
    return timed, wrong


def _add_site(inst: Installation, code: str, zone: str) -> None:
    identity.add_site(
        inst.registry, inst.operator, code=code, name=code, country="US", time_zone=zone
    )


def test_every_synthea_row_has_the_date_of_its_datetime(
    sqlite_install: Installation, shared_data: Path
) -> None:
    inst = sqlite_install
    synthea = shared_data / "fhir_synthea_r4"
    report = fhir_import(inst, inst.operator, synthea, site="A")
    assert report.rows_out["visit_occurrence"] == 257
    timed, wrong = _dates_that_disagree(inst)
    assert timed == 257 + 257 + 5 + 70 + 285  # visits (start, end), conditions, observations
    assert wrong == 0


def test_every_bulk_sample_row_has_the_date_of_its_datetime_on_the_sites_clock(
    sqlite_install: Installation,
) -> None:
    inst = sqlite_install
    # Before the convention, 15 of these 30 visits started on another date in UTC
    # than their date (the offsets are -04:00 and -05:00).
    report = fhir_import(inst, inst.operator, BULK, site="A")
    assert report.rejected == ()
    timed, wrong = _dates_that_disagree(inst)
    assert timed >= 30 + 30 + 30 + 30 and wrong == 0
    # 2022-08-24T19:52:10-04:00 is 00:52:10 the next day in London (BST, +01:00).
    visit = stable_id("A", "Encounter", "0664f58c-7739-cbab-78d4-d4393fac589f")
    (row,) = [r for r in _rows(inst, "visit_occurrence") if r["visit_occurrence_id"] == visit]
    assert row["visit_start_date"] == date(2022, 8, 25)
    assert row["visit_start_datetime"] == datetime(2022, 8, 25, 0, 52, 10)


def test_a_site_in_the_sources_time_zone_keeps_the_dates_as_written(
    sqlite_install: Installation,
) -> None:
    inst = sqlite_install
    _add_site(inst, "BOSTON", "America/New_York")
    fhir_import(inst, inst.operator, BULK, site="BOSTON")
    visit = stable_id("BOSTON", "Encounter", "0664f58c-7739-cbab-78d4-d4393fac589f")
    (row,) = [r for r in _rows(inst, "visit_occurrence") if r["visit_occurrence_id"] == visit]
    assert (row["visit_start_date"], row["visit_start_datetime"]) == (
        date(2022, 8, 24),
        datetime(2022, 8, 24, 19, 52, 10),
    )
    # And every date the source wrote is the date kept (the source is on Eastern time).
    source = {
        json.loads(line)["id"]: json.loads(line)["period"]["start"]
        for line in (BULK / "Encounter.000.ndjson").read_text().splitlines()
    }
    kept = {
        r["visit_occurrence_id"]: r["visit_start_date"] for r in _rows(inst, "visit_occurrence")
    }
    for rid, start in source.items():
        assert kept[stable_id("BOSTON", "Encounter", rid)] == date.fromisoformat(start[:10])


def test_an_export_gives_back_the_same_instants_with_the_sites_offset(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    fhir_import(inst, inst.operator, BULK, site="A")
    export_fhir(inst.registry, warehouse_opener(inst.settings), inst.operator, tmp_path)
    exported = {
        json.loads(line)["id"]: json.loads(line)
        for line in (tmp_path / "Encounter.ndjson").read_text().splitlines()
    }
    london = ZoneInfo("Europe/London")
    for line in (BULK / "Encounter.000.ndjson").read_text().splitlines():
        source = json.loads(line)
        start = datetime.fromisoformat(exported[source["id"]]["period"]["start"])
        assert start == datetime.fromisoformat(source["period"]["start"])  # the same instant
        assert start.utcoffset() == start.astimezone(london).utcoffset()  # on London's clock


def _bulk_export_folder(tmp_path: Path) -> Path:
    """The SMART sample as a Bulk Data client leaves it, with an error and a deletion."""
    folder = tmp_path / "export"
    shutil.copytree(BULK, folder)
    (folder / "SOURCE.md").unlink()
    for sub, name in (
        ("error", "OperationOutcome-export-error-operationoutcome-example.json"),
        ("deleted", "Bundle-deleted-resource-transaction-bundle-example.json"),
    ):
        (folder / sub).mkdir()
        line = json.dumps(json.loads((BULK_IG / name).read_text()))
        (folder / sub / f"{name.split('-')[0]}.ndjson").write_text(line + "\n")
    (folder / "manifest.json").write_text(
        json.dumps({"transactionTime": "2024-08-06T18:12:57Z", "output": [], "error": []})
    )
    (folder / "attachments").mkdir()
    (folder / "attachments" / "note.txt").write_text("a downloaded attachment\n")
    return folder


def test_a_bulk_data_export_folder_imports_as_it_comes(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    folder = _bulk_export_folder(tmp_path)
    # All or nothing: nothing in the folder is a problem.
    report = fhir_import(inst, inst.operator, folder, site="A")
    assert report.rejected == ()
    assert report.patients_created == 13
    assert report.rows_out["visit_occurrence"] == 30
    assert report.rows_out["procedure_occurrence"] == 30
    notes = {s.what: s for s in report.skipped}
    assert notes["log.ndjson"].count == 4
    assert "export log" in notes["log.ndjson"].reason
    outcome = notes["error/OperationOutcome.ndjson: OperationOutcome"]
    assert outcome.count == 1
    assert "error: An internal timeout has occurred" in outcome.reason
    assert notes["deleted/Bundle.ndjson"].count == 1
    assert "does not delete" in notes["deleted/Bundle.ndjson"].reason
    assert notes["attachments/"].count == 1
    assert report.skipped_count("AllergyIntolerance") == 11
    assert report.skipped_count("Device") == 16
    assert report.skipped_count("Immunization") == 30
    # The error report and the deletion are not data: nothing of them was imported.
    assert "OperationOutcome" not in report.resources_in
    assert "Bundle" not in report.resources_in


def test_observation_components_become_rows_linked_to_their_panel(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    folder = tmp_path / "obs"
    folder.mkdir()
    for name in (
        "patient-example.json",
        "blood-pressure.json",
        "bp-data-absent.json",
        "observation-satO2-fiO2.json",
        "Observation-average-blood-pressure.json",
        "Observation-substance-use-status.json",
    ):
        shutil.copy(US_CORE / name, folder / name)
    report = fhir_import(inst, inst.operator, folder, site="A")
    assert report.rejected == ()
    # 2 (blood pressure) + 1 of 2 (data absent) + 1 (SpO2) + 3 (average) + 2 (substance use)
    assert report.components == 9
    assert report.rows_out == {
        "person": 1,
        "visit_occurrence": 0,
        "condition_occurrence": 0,
        # panels: blood-pressure, bp-data-absent, satO2, average; components: 7 numbers
        "measurement": 4 + 7,
        # the substance-use panel (a boolean: not mapped) and its two components
        "observation": 1 + 2,
        "drug_exposure": 0,
        "procedure_occurrence": 0,
    }
    absent = next(s for s in report.skipped if s.what == "Observation.component")
    assert (absent.count, absent.reason) == (1, "no value (dataAbsentReason)")
    assert report.skipped_count("Observation.valueBoolean") == 1
    measurements = warehouse_frame(inst, "measurement")
    panel = stable_id("A", "Observation", "blood-pressure")
    parts = measurements[measurements.measurement_event_id == panel]
    assert sorted(zip(parts.measurement_source_value, parts.value_as_number, strict=True)) == [
        ("8462-4", 44.0),
        ("8480-6", 109.0),
    ]
    assert set(parts.unit_source_value) == {"mm[Hg]"}
    assert {d.date() for d in parts.measurement_date} == {date(1999, 7, 2)}
    (panel_row,) = measurements[measurements.measurement_id == panel].itertuples()
    assert panel_row.measurement_source_value == "85354-9"
    assert panel_row.value_as_number != panel_row.value_as_number  # the panel has no value
    links = warehouse_frame(inst, LINK_TABLE)
    assert set(links[links.resource_type == COMPONENT].resource_id) >= {
        "blood-pressure/0",
        "blood-pressure/1",
    }
    observations = warehouse_frame(inst, "observation")
    strings = observations[observations.value_as_string.notna()]
    assert list(strings.observation_source_value) == ["228390007"]
    # A warehouse refresh from the registry keeps the component rows and their links.
    refresh_installation(inst)
    after = warehouse_frame(inst, "measurement")
    assert len(after) == 11
    assert sorted(after[after.measurement_event_id == panel].measurement_source_value) == [
        "8462-4",
        "8480-6",
    ]


def test_a_panel_imported_again_with_fewer_components_keeps_no_stale_row(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    folder = tmp_path / "obs"
    folder.mkdir()
    shutil.copy(US_CORE / "patient-example.json", folder / "patient-example.json")
    panel = json.loads((US_CORE / "blood-pressure.json").read_text())
    (folder / "blood-pressure.json").write_text(json.dumps(panel))
    fhir_import(inst, inst.operator, folder, site="A")
    panel_id = stable_id("A", "Observation", "blood-pressure")

    def parts() -> list[str]:
        rows = warehouse_frame(inst, "measurement")
        return sorted(rows[rows.measurement_event_id == panel_id].measurement_source_value)

    assert parts() == ["8462-4", "8480-6"]
    # The same panel corrected at the source: the diastolic reading withdrawn.
    panel["component"] = panel["component"][:1]
    (folder / "blood-pressure.json").write_text(json.dumps(panel))
    fhir_import(inst, inst.operator, folder, site="A")
    assert parts() == [panel["component"][0]["code"]["coding"][0]["code"]]
    links = warehouse_frame(inst, "careloop_fhir_link")
    linked = set(links[links.cdm_table == "measurement"].cdm_id)
    assert linked == set(warehouse_frame(inst, "measurement").measurement_id)


def test_component_rows_come_back_inside_their_panel_on_export(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    folder = tmp_path / "obs"
    folder.mkdir()
    for name in ("patient-example.json", "blood-pressure.json", "observation-satO2-fiO2.json"):
        shutil.copy(US_CORE / name, folder / name)
    fhir_import(inst, inst.operator, folder, site="A")
    export_fhir(inst.registry, warehouse_opener(inst.settings), inst.operator, tmp_path / "out")
    exported = {
        json.loads(line)["id"]: json.loads(line)
        for line in (tmp_path / "out" / "Observation.ndjson").read_text().splitlines()
    }
    assert set(exported) == {"blood-pressure", "satO2-fiO2"}
    source = json.loads((US_CORE / "blood-pressure.json").read_text())
    back = exported["blood-pressure"]["component"]
    assert [c["code"]["coding"][0]["code"] for c in back] == [
        c["code"]["coding"][0]["code"] for c in source["component"]
    ]
    assert [c["valueQuantity"]["value"] for c in back] == [
        c["valueQuantity"]["value"] for c in source["component"]
    ]
    spo2 = exported["satO2-fiO2"]
    assert spo2["valueQuantity"]["value"] == 95.0
    assert spo2["component"][0]["code"]["coding"][0]["code"] == "3151-8"


def test_the_cli_names_everything_it_skipped_with_the_reason(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    from careloop.cli.main import app

    inst = sqlite_install
    folder = _bulk_export_folder(tmp_path)
    data_dir = str(inst.settings.data_dir)
    result = CliRunner().invoke(
        app, ["fhir", "import", str(folder), "--site", "A", "--json", "--data-dir", data_dir]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    skipped = {s["what"]: s for s in report["skipped"]}
    assert skipped["AllergyIntolerance"] == {
        "what": "AllergyIntolerance",
        "count": 11,
        "reason": "careloop does not map this resource type",
    }
    assert skipped["log.ndjson"]["count"] == 4
    text = CliRunner().invoke(
        app, ["fhir", "import", str(folder), "--site", "A", "--data-dir", data_dir]
    )
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())
    assert "Skipped (read, not imported)" in flat
    assert "AllergyIntolerance" in flat and "log.ndjson" in flat
    assert "An internal timeout has occurred" in flat


def test_nothing_read_is_lost_without_a_count(sqlite_install: Installation) -> None:
    inst = sqlite_install
    report = fhir_import(inst, inst.operator, BULK, site="A")
    read = sum(report.resources_in.values())
    mapped = sum(
        n for kind, n in report.resources_in.items() if kind in ("Patient", *_CLINICAL_TYPES)
    )
    not_mapped = sum(s.count for s in report.skipped if "." not in s.what and "/" not in s.what)
    assert read == mapped + not_mapped
    assert set(CLINICAL) <= set(report.rows_out)


_CLINICAL_TYPES = ("Encounter", "Condition", "Procedure", "MedicationRequest", "Observation")
