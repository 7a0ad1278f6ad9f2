"""A QuestionnaireResponse imports into the form registered from its own Questionnaire.

The official US Core examples (tests/data/fhir_examples/us_core): the
Questionnaire ``PHQ9Example`` becomes form ``phq9example`` and its linkIds
(``/44250-9``) become field names (``q__44250_9``); its responses name it by
canonical URL (``http://hl7.org/fhir/us/core/Questionnaire/phq-9-example``)
and answer by those linkIds. The URL (with ``|version``) is the identity.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from careloop.capture.forms_store import DictionaryFormat, export_form, get_form, import_forms
from careloop.capture.records_io import export_records
from careloop.fhir.exporting import export_fhir
from careloop.warehouse.connection import warehouse_opener
from tests.fhir.fhir_support import (
    fhir_install_fixture,  # noqa: F401 - the fhir_install fixture (SQLite and PostgreSQL)
    sqlite_install_fixture,  # noqa: F401 - the sqlite_install fixture
    write_ndjson,
)
from tests.foundation import Installation, fhir_import

US_CORE = Path(__file__).resolve().parents[1] / "data" / "fhir_examples" / "us_core"
PHQ9 = US_CORE / "Questionnaire-phq-9-example.json"
PHQ9_URL = "http://hl7.org/fhir/us/core/Questionnaire/phq-9-example"
PAIRS = {
    # form name (from the Questionnaire's name) → its QuestionnaireResponse example
    "phq9example": "QuestionnaireResponse-phq-9-example.json",
    "audit_c": "QuestionnaireResponse-AUDIT-C.json",
    "taps": "QuestionnaireResponse-TAPS.json",
    "exercisevitalsign": "QuestionnaireResponse-exercise-vital-sign.json",
    "hungervitalsignexample": "QuestionnaireResponse-hunger-vital-sign-example.json",
    "prapareexample": "QuestionnaireResponse-PRAPARE-example.json",
}


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _register_us_core_questionnaires(inst: Installation) -> None:
    for path in sorted(US_CORE.glob("Questionnaire-*.json")):
        import_forms(inst.registry, inst.operator, path)


def _stored(inst: Installation, form: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        export_records(inst.registry, inst.operator, form, fmt="json").text
    )
    return rows


def _folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for name in ("patient-example.json", *names):
        shutil.copy(US_CORE / name, folder / name)
    return folder


def test_the_phq9_response_imports_into_the_form_registered_from_its_questionnaire(
    fhir_install: Installation, tmp_path: Path
) -> None:
    inst = fhir_install
    (imported,) = import_forms(inst.registry, inst.operator, PHQ9)
    # The form is named from the Questionnaire's name; the response names the
    # Questionnaire by its URL, whose last part (phq-9-example) is another name.
    assert imported.name == "phq9example"
    form = get_form(inst.registry, inst.operator, "phq9example").form
    assert (form.questionnaire_url, form.questionnaire_version) == (PHQ9_URL, "")
    response = "QuestionnaireResponse-phq-9-example.json"
    report = fhir_import(inst, inst.operator, _folder(tmp_path, response), site="A")
    assert report.rejected == ()
    assert report.responses_created == 1
    (stored,) = _stored(inst, "phq9example")
    # Every answer, by its linkId mapped back to the field it became.
    expected = {}
    for item in _json(US_CORE / response)["item"]:
        answer = item["answer"][0]
        value = answer.get("valueCoding", {}).get("code", answer.get("valueDecimal"))
        expected[form.field_name_of(item["linkId"])] = str(value)
    assert expected["q__44250_9"] == "LA6570-1" and expected["q__44261_6"] == "12"
    assert {k: v for k, v in stored["values"].items() if v not in ("", None)} == expected
    assert stored["event_date"] == "2022-11-29"  # the date of authored
    assert stored["status"] == "complete"


def test_every_us_core_response_imports_into_its_questionnaires_form(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    _register_us_core_questionnaires(inst)
    names = [*PAIRS.values(), "QuestionnaireResponse-glasgow-coma-score.json"]
    folder = _folder(tmp_path, *names)
    # All or nothing: every file is valid FHIR, so nothing is refused.
    report = fhir_import(inst, inst.operator, folder, site="A")
    assert report.responses_created == len(PAIRS) and report.rejected == ()
    for form in PAIRS:
        assert len(_stored(inst, form)) == 1, form
    # The Glasgow coma score response names no Questionnaire (FHIR allows that): it is
    # left out and counted, with the reason.
    (skipped,) = [s for s in report.skipped if s.what == "QuestionnaireResponse"]
    assert skipped.count == 1 and "names no Questionnaire" in skipped.reason
    # Importing the same files again changes nothing.
    again = fhir_import(inst, inst.operator, folder, site="A", mode="row_level")
    assert (again.responses_created, again.responses_unchanged) == (0, len(PAIRS))


def _phq9_version(version: str, title: str) -> bytes:
    data = _json(PHQ9)
    data.update(version=version, title=title)
    return json.dumps(data).encode()


def test_a_canonical_with_a_version_reads_against_the_form_version_of_that_questionnaire_version(
    fhir_install: Installation, tmp_path: Path
) -> None:
    inst = fhir_install
    one = import_forms(inst.registry, inst.operator, _phq9_version("1.0", "PHQ-9 one"), name="1")
    two = import_forms(inst.registry, inst.operator, _phq9_version("2.0", "PHQ-9 two"), name="2")
    assert one[0].version != two[0].version and two[0].name == one[0].name
    response = _json(US_CORE / "QuestionnaireResponse-phq-9-example.json")
    patient = _json(US_CORE / "patient-example.json")
    response["questionnaire"] = f"{PHQ9_URL}|1.0"
    path = write_ndjson(tmp_path / "v1.ndjson", [patient, response])
    report = fhir_import(inst, inst.operator, path, site="A")
    assert report.responses_created == 1
    (stored,) = _stored(inst, "phq9example")
    assert stored["form_version"] == one[0].version
    # A version no form was registered from is refused at the questionnaire, with the fix.
    response["questionnaire"] = f"{PHQ9_URL}|3.0"
    response["authored"] = "2023-01-05T10:00:00Z"
    bad = write_ndjson(tmp_path / "v3.ndjson", [patient, response])
    report = fhir_import(inst, inst.operator, bad, site="A", mode="row_level")
    (problem,) = report.rejected
    assert problem.location == "v3.ndjson:2: QuestionnaireResponse.questionnaire"
    assert "no form was registered from version '3.0'" in problem.message
    assert "careloop forms import" in problem.message


def test_a_response_to_an_unregistered_questionnaire_says_to_register_it(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    folder = _folder(tmp_path, "QuestionnaireResponse-phq-9-example.json")
    report = fhir_import(inst, inst.operator, folder, site="A", mode="row_level")
    (problem,) = report.rejected
    assert problem.location.endswith("QuestionnaireResponse.questionnaire")
    assert "register the form from that Questionnaire first" in problem.message
    assert problem.value == PHQ9_URL


def test_a_form_from_a_questionnaire_keeps_its_identity_through_export_and_reimport(
    sqlite_install: Installation, tmp_path: Path
) -> None:
    inst = sqlite_install
    (first,) = import_forms(inst.registry, inst.operator, PHQ9)
    formats: tuple[DictionaryFormat, ...] = ("questionnaire", "yaml")
    for fmt in formats:
        text = export_form(inst.registry, inst.operator, "phq9example", fmt=fmt)
        (again,) = import_forms(inst.registry, inst.operator, text.encode(), fmt=fmt, name=fmt)
        assert (again.version, again.new_version) == (first.version, False), fmt
    # careloop's own QuestionnaireResponses (urn:careloop:form:<name>|<version>) still
    # import, and so do the originals after a round trip of the form.
    folder = _folder(tmp_path, "QuestionnaireResponse-phq-9-example.json")
    fhir_import(inst, inst.operator, folder, site="A")
    export_fhir(inst.registry, warehouse_opener(inst.settings), inst.operator, tmp_path / "out")
    exported = (tmp_path / "out" / "QuestionnaireResponse.ndjson").read_text().splitlines()
    (line,) = exported
    assert json.loads(line)["questionnaire"] == f"urn:careloop:form:phq9example|{first.version}"
    report = fhir_import(inst, inst.operator, tmp_path / "out", site="A")
    assert report.responses_unchanged == 1


def test_a_malformed_questionnaire_key_in_form_yaml_is_refused_with_its_place() -> None:
    from careloop.capture.native_yaml import read_forms_yaml
    from careloop.core.errors import ValidationFailed

    text = (
        "forms:\n  - name: phq\n    questionnaire: [not, a, mapping]\n"
        "    fields:\n      - {name: q1, type: text, label: Q1}\n"
    )
    try:
        read_forms_yaml(text, name="phq.yaml")
    except ValidationFailed as exc:
        (problem,) = exc.details
        assert problem.location.startswith("phq.yaml:2")
        assert "'questionnaire' must be a mapping with url, version and link_ids" in problem.message
    else:  # pragma: no cover - the assertion above is the test
        raise AssertionError("a malformed questionnaire key was accepted")
