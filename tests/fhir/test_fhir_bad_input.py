"""Bad FHIR input: a clear, located error and nothing half-loaded; row-level mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from careloop.core.errors import InputError, ValidationFailed
from careloop.trust.audit import AuditFilter, report_entries
from tests.fhir.fhir_support import (
    BOB_BUNDLE,
    bundle,
    fhir_install_fixture,  # noqa: F401 - the fhir_install fixture
    observation,
    patient,
    patient_count,
    sqlite_install_fixture,  # noqa: F401 - the sqlite_install fixture
    warehouse_counts,
    warehouse_frame,
    write_ndjson,
)
from tests.foundation import Installation, fhir_import


def _refused(inst: Installation, path: Path) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        fhir_import(inst, inst.operator, path, site="A")
    assert "nothing was imported" in caught.value.message
    assert patient_count(inst) == 0
    assert set(warehouse_counts(inst).values()) <= {0}
    with inst.registry.transaction() as session:
        (attempt,) = report_entries(session, AuditFilter(action="import"))
    assert (attempt.outcome, attempt.site_code) == ("failure", "A")
    return caught.value


def _locations(error: ValidationFailed) -> list[str]:
    return [d.location for d in error.details]


def test_broken_json_in_ndjson_names_the_file_line_and_column(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    path = tmp_path / "bulk.ndjson"
    path.write_text(json.dumps(patient("p1", "M1")) + "\n" + '{"resourceType": "Patient", "id": \n')
    error = _refused(sqlite_install, path)
    assert _locations(error) == ["bulk.ndjson:2:35"]
    assert "not valid JSON" in error.details[0].message


def test_broken_json_in_a_bundle_names_its_line_and_column(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.json"
    path.write_text('{\n  "resourceType": "Bundle",\n  "type": "collection"\n  "entry": []\n}\n')
    error = _refused(sqlite_install, path)
    assert _locations(error) == ["bundle.json:4:3"]


def test_a_resource_type_fhir_does_not_have_is_refused(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    wrong = {**patient("p1", "M1"), "resourceType": "Patiant"}
    path = write_ndjson(tmp_path / "x.ndjson", [patient("p0", "M0"), wrong])
    error = _refused(sqlite_install, path)
    assert _locations(error) == ["x.ndjson:2: resourceType"]
    assert error.details[0].value == "Patiant"


def test_a_reference_to_a_patient_not_in_the_import_is_refused(
    fhir_install: Installation, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "x.ndjson", [patient("p1", "M1"), observation("o1", "nobody")])
    error = _refused(fhir_install, path)
    assert _locations(error) == ["x.ndjson:2: Observation.subject"]
    assert (
        "refers to patient Patient/nobody, which is not in this import" in error.details[0].message
    )


def test_a_code_in_a_system_careloop_does_not_map_is_kept_with_concept_0_and_a_warning(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    # Real EHRs send codes in systems of their own (OIDs, vendor URLs): OMOP keeps them
    # as source values with concept 0, and the import says so.
    odd = observation(
        "o1", "p1", code={"coding": [{"system": "http://example.org/codes", "code": "W"}]}
    )
    path = write_ndjson(tmp_path / "x.ndjson", [patient("p1", "M1"), odd])
    inst = sqlite_install
    report = fhir_import(inst, inst.operator, path, site="A")
    assert report.rejected == () and report.rows_out["measurement"] == 1
    warning = next(w for w in report.warnings if w.value == "http://example.org/codes")
    assert warning.location == "x.ndjson:2: Observation.code.coding[0].system"
    assert "concept 0" in warning.message
    row = warehouse_frame(inst, "measurement").iloc[0]
    assert (row.measurement_concept_id, row.measurement_source_value) == (0, "W")


def test_a_gender_that_is_not_an_administrative_gender_code_is_refused(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle([patient("p1", "M1", gender="F")])))
    error = _refused(sqlite_install, path)
    assert _locations(error) == ["b.json:entry[0]: Patient.gender"]
    assert error.details[0].value == "F"


def test_a_birth_date_in_the_future_is_refused(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "x.ndjson", [patient("p1", "M1", birthDate="2999-01-01")])
    error = _refused(sqlite_install, path)
    assert _locations(error) == ["x.ndjson:1: Patient.birthDate"]


def test_a_huge_family_name_is_refused_as_through_the_api_and_not_echoed_back(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    # Issue 14: the FHIR import stored a 50 MB family name; the API's limit is 200.
    huge = patient("p1", "M1", name=[{"use": "official", "family": "F" * 300_000}])
    path = write_ndjson(tmp_path / "x.ndjson", [huge])
    error = _refused(sqlite_install, path)
    assert _locations(error) == ["x.ndjson:1: Patient.name.family"]
    assert "at most 200 characters (this one has 300000)" in error.details[0].message
    assert len(str(error.details[0].value)) < 100


def test_control_characters_and_over_long_ids_are_refused_not_cut(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    resources = [
        patient("p1", "M\x001"),
        patient("p2", "M" * 65),  # was cut to 64 characters, silently
        patient("p3", "M3", name=[{"family": "Bad\x07name", "given": ["Ada"]}]),
    ]
    error = _refused(sqlite_install, write_ndjson(tmp_path / "x.ndjson", resources))
    assert _locations(error) == [
        "x.ndjson:1: Patient.identifier.value",
        "x.ndjson:2: Patient.identifier.value",
        "x.ndjson:3: Patient.name.family",
    ]
    assert "U+0000" in error.details[0].message and "U+0007" in error.details[2].message


def test_structural_errors_give_the_fhir_path_from_fhir_resources(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    bad = patient("p1", "M1", birthDate="1980-13-45", name=[{"family": ["not", "a", "string"]}])
    path = write_ndjson(tmp_path / "x.ndjson", [bad])
    error = _refused(sqlite_install, path)
    assert set(_locations(error)) == {
        "x.ndjson:1: Patient.birthDate",
        "x.ndjson:1: Patient.name[0].family",
    }


def test_a_wrong_loinc_check_digit_is_a_warning_and_keeps_the_code_as_source_value(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    off = observation(
        "o1", "p1", code={"coding": [{"system": "http://loinc.org", "code": "29463-8"}]}
    )
    path = write_ndjson(tmp_path / "x.ndjson", [patient("p1", "M1"), off])
    report = fhir_import(sqlite_install, sqlite_install.operator, path, site="A")
    (warning,) = report.warnings
    assert warning.location == "x.ndjson:2: Observation.code.coding[0].code"
    assert "check digit" in warning.message


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"resourceType": "Bundle", "type": "history", "entry": []}, "b.json: Bundle.type"),
        (
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": patient("p1", "M1"),
                        "request": {"method": "DELETE", "url": "Patient/p1"},
                    }
                ],
            },
            "b.json:entry[0].request.method",
        ),
        (
            {"resourceType": "Bundle", "type": "batch", "entry": [{"fullUrl": "x"}]},
            "b.json:entry[0]",
        ),
    ],
)
def test_bundles_careloop_cannot_import_are_refused(
    sqlite_install: Installation, tmp_path: Path, document: dict[str, Any], location: str
) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps(document))
    assert _locations(_refused(sqlite_install, path)) == [location]


def test_one_bad_resource_among_good_ones_loads_nothing_in_all_or_nothing_mode(
    fhir_install: Installation, tmp_path: Path
) -> None:
    bundle_doc = json.loads(BOB_BUNDLE.read_text())
    bundle_doc["entry"][5]["resource"]["status"] = "finalised"
    path = tmp_path / "bob.json"
    path.write_text(json.dumps(bundle_doc))
    error = _refused(fhir_install, path)
    assert _locations(error) == ["bob.json:entry[5]: Observation.status"]


def test_row_level_mode_leaves_out_bad_resources_and_those_of_a_rejected_patient(
    fhir_install: Installation, tmp_path: Path
) -> None:
    inst = fhir_install
    resources = [
        patient("good", "M1"),
        patient("bad", "M2", gender="X"),
        observation("o-good", "good"),
        observation("o-of-bad", "bad"),
        observation("o-broken", "good", status="finalised"),
    ]
    path = write_ndjson(tmp_path / "x.ndjson", resources)
    report = fhir_import(inst, inst.operator, path, site="A", mode="row_level")
    assert [d.location for d in report.rejected] == [
        "x.ndjson:2: Patient.gender",
        "x.ndjson:4: Observation.subject",
        "x.ndjson:5: Observation.status",
    ]
    assert "was rejected" in report.rejected[1].message
    assert patient_count(inst) == 1
    assert warehouse_counts(inst)["measurement"] == 1


def test_an_unknown_mode_and_a_missing_path_are_input_errors(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    with pytest.raises(InputError, match="--mode must be one of"):
        fhir_import(inst, inst.operator, BOB_BUNDLE, mode="best_effort")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="does not exist"):
        fhir_import(inst, inst.operator, tmp_path / "nope.ndjson", site="A")
    with pytest.raises(InputError, match="holds no FHIR files"):
        fhir_import(inst, inst.operator, tmp_path, site="A")


def _nested(depth: int) -> str:
    """A Patient whose extension nests ``depth`` levels (FHIR allows nested extensions)."""
    # Written as text: json.dumps itself gives up long before 5,000 levels.
    inner = '{"url": "urn:x", "extension": [' * depth + '{"url": "urn:x", "valueString": "deep"}'
    inner += "]}" * depth
    return json.dumps(patient("p2", "M2"))[:-1] + ', "extension": [' + inner + "]}"


@pytest.mark.parametrize("depth", [120, 400, 5000])
def test_a_resource_nested_too_deep_is_a_located_refusal_not_a_crash(
    sqlite_install: Installation, tmp_path: Path, depth: int
) -> None:
    path = tmp_path / "bulk.ndjson"
    path.write_text(json.dumps(patient("p1", "M1")) + "\n" + _nested(depth) + "\n")
    error = _refused(sqlite_install, path)
    (detail,) = error.details
    assert detail.location.startswith("bulk.ndjson:2")
    assert "nested more than 100 levels deep" in detail.message
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(
        json.dumps(bundle([])).replace(
            '"entry": []', f'"entry": [{{"resource": {_nested(depth)}}}]'
        )
    )
    with pytest.raises(ValidationFailed) as caught:
        fhir_import(
            sqlite_install,
            sqlite_install.operator,
            bundle_path,
            site="A",
        )
    assert "nested more than 100 levels deep" in caught.value.details[0].message


def test_a_gzip_bomb_stops_at_the_input_limit(sqlite_install: Installation, tmp_path: Path) -> None:
    import gzip

    from careloop.core.errors import InputTooLarge

    path = tmp_path / "Patient.ndjson.gz"
    with gzip.open(path, "wb") as out:
        for _ in range(20):
            out.write(b" " * (1024 * 1024))  # 20 MB of blanks: 20 KB zipped
    assert path.stat().st_size < 100_000
    with pytest.raises(InputTooLarge, match="unzipped") as caught:
        fhir_import(
            sqlite_install, sqlite_install.operator, path, site="A", max_input_bytes=1024 * 1024
        )
    assert "CARELOOP_MAX_INPUT_MB" in caught.value.message
    assert patient_count(sqlite_install) == 0
