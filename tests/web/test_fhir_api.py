"""The read-only FHIR R4 API: searchset Bundles, reads, OperationOutcome errors, site scoping.

TestClient tests run on SQLite and PostgreSQL registries; one test drives a
real ``careloop serve`` on loopback with fhirpy, a real FHIR client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from careloop.capture.entry import create_response
from careloop.capture.forms_store import import_forms
from careloop.store.models import Patient, Site
from careloop.store.scoping import Scope, set_scope
from careloop.trust.audit import AuditFilter, report_entries
from tests.foundation import Installation, build_installation, fhir_import, make_settings
from tests.live import start_server, stop_server

DATA = Path(__file__).resolve().parents[1] / "data"
FHIR_SMALL = DATA / "fhir_small"
FORMS = DATA / "redcap" / "lifedata_redcap_DataDictionary.csv"


@pytest.fixture(scope="module")
def loaded(installation: Installation) -> Installation:
    """The shared installation with Synthea's Bob at site A and the handwritten set at B."""
    inst = installation
    fhir_import(
        inst,
        inst.operator,
        FHIR_SMALL / "synthea_bob_trimmed.json",
        site="A",
    )
    fhir_import(inst, inst.operator, FHIR_SMALL / "handwritten.ndjson", site="B")
    (form,) = import_forms(inst.registry, inst.operator, FORMS)
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        ada = session.scalar(select(Patient.id).where(Patient.local_id == "MRN-0002"))
    assert ada is not None
    create_response(
        inst.registry,
        inst.operator,
        form.name,
        patient_id=ada,
        event_date="2021-03-02",
        values={"timeoffact": "2021-03-02 10:00:00", "typeoffact": "2", "weightvalue": "70.5"},
        status="complete",
    )
    return inst


def _get(api: Any, inst: Installation, who: str | None, path: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {inst.tokens[who]}"} if who else {}
    return api.get(path, params=params, headers=headers)


def _bundle(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    return body


def _outcome(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    OperationOutcome.model_validate(body)
    assert body["issue"][0]["code"] == code
    return body


def _pseudonyms(inst: Installation, site: str) -> set[str]:
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        site_id = session.scalar(select(Site.id).where(Site.code == site))
        return set(session.scalars(select(Patient.pseudo_id).where(Patient.site_id == site_id)))


def test_metadata_is_a_valid_capability_statement(api: Any, loaded: Installation) -> None:
    response = api.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    served = {r["type"] for r in statement["rest"][0]["resource"]}
    assert served == {"Patient", "Observation", "Questionnaire", "QuestionnaireResponse"}


def test_a_clinician_finds_the_patients_of_their_site_with_identifiers(
    api: Any, loaded: Installation
) -> None:
    body = _bundle(_get(api, loaded, "clinician@A", "/fhir/Patient"))
    ids = {e["resource"]["id"] for e in body["entry"]}
    assert ids == _pseudonyms(loaded, "A")
    assert body["total"] == 3
    bob = next(
        e["resource"]
        for e in body["entry"]
        if e["resource"].get("name", [{}])[0].get("family") == "Keeling57"
    )
    assert bob["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert len(bob["birthDate"]) == 10


def test_patient_search_by_identifier_family_and_birthdate(api: Any, loaded: Installation) -> None:
    found = _bundle(_get(api, loaded, "clinician@B", "/fhir/Patient", family="okaf"))
    assert [e["resource"]["identifier"][0]["value"] for e in found["entry"]] == ["MRN-0002"]
    by_mrn = _bundle(_get(api, loaded, "clinician@B", "/fhir/Patient", identifier="MRN-0003"))
    assert by_mrn["total"] == 1
    born = _bundle(_get(api, loaded, "clinician@B", "/fhir/Patient", birthdate="lt1960"))
    assert [e["resource"]["identifier"][0]["value"] for e in born["entry"]] == ["MRN-0003"]
    assert (
        _bundle(_get(api, loaded, "clinician@B", "/fhir/Patient", birthdate="1971-05"))["total"]
        == 1
    )


def test_a_site_a_user_never_gets_site_b_resources_by_read_search_or_id(
    api: Any, loaded: Installation
) -> None:
    b_patients = _pseudonyms(loaded, "B")
    for pseudo in b_patients:
        _outcome(_get(api, loaded, "clinician@A", f"/fhir/Patient/{pseudo}"), 404, "not-found")
        assert _bundle(_get(api, loaded, "clinician@A", "/fhir/Patient", _id=pseudo))["total"] == 0
        assert (
            _bundle(_get(api, loaded, "clinician@A", "/fhir/Observation", patient=pseudo))["total"]
            == 0
        )
    _outcome(_get(api, loaded, "clinician@A", "/fhir/Observation/obs-p2-height"), 404, "not-found")
    everything = _bundle(_get(api, loaded, "clinician@A", "/fhir/Observation", _count=1000))
    assert {e["resource"]["subject"]["reference"] for e in everything["entry"]} <= {
        f"Patient/{p}" for p in _pseudonyms(loaded, "A")
    }
    assert "MRN-0002" not in json.dumps(_bundle(_get(api, loaded, "clinician@A", "/fhir/Patient")))
    # The same id is found by B's clinician: the 404 above was scoping, not absence.
    assert _get(api, loaded, "clinician@B", "/fhir/Observation/obs-p2-height").status_code == 200


def test_analysts_get_pseudonymised_patients_and_may_not_search_by_identifiers(
    api: Any, loaded: Installation
) -> None:
    body = _bundle(_get(api, loaded, "analyst@B", "/fhir/Patient"))
    assert body["total"] == 4  # two registered by the fixture, two imported
    for entry in body["entry"]:
        resource = entry["resource"]
        assert "identifier" not in resource and "name" not in resource
        assert len(resource["birthDate"]) == 4
    _outcome(_get(api, loaded, "analyst@B", "/fhir/Patient", family="Okafor"), 403, "forbidden")
    observations = _bundle(_get(api, loaded, "analyst@B", "/fhir/Observation"))
    assert observations["total"] == 3  # Ada's; p3's consent kept theirs out


def test_observation_search_by_patient_code_and_date(api: Any, loaded: Installation) -> None:
    (ada,) = [
        e["resource"]["id"]
        for e in _bundle(_get(api, loaded, "clinician@B", "/fhir/Patient", family="Okafor"))[
            "entry"
        ]
    ]
    mine = _bundle(_get(api, loaded, "clinician@B", "/fhir/Observation", patient=f"Patient/{ada}"))
    assert {e["resource"]["id"] for e in mine["entry"]} == {
        "obs-p2-height",
        "obs-p2-smoking",
        "obs-p2-note",
    }
    height = _bundle(
        _get(api, loaded, "clinician@B", "/fhir/Observation", code="http://loinc.org|8302-2")
    )
    (entry,) = height["entry"]
    assert entry["resource"]["valueQuantity"] == {
        "value": 168.5,
        "unit": "cm",
        "system": "http://unitsofmeasure.org",
        "code": "cm",
    }
    assert entry["fullUrl"].endswith("/fhir/Observation/obs-p2-height")
    later = _bundle(_get(api, loaded, "clinician@B", "/fhir/Observation", date="ge2021-03-02"))
    assert [e["resource"]["id"] for e in later["entry"]] == ["obs-p2-note"]
    _outcome(
        _get(api, loaded, "clinician@B", "/fhir/Observation", date="yesterday"), 422, "invalid"
    )


def test_bob_observations_keep_synthea_ids_and_encounter_references(
    api: Any, loaded: Installation
) -> None:
    body = _bundle(_get(api, loaded, "clinician@A", "/fhir/Observation"))
    assert body["total"] == 7
    first = _get(
        api, loaded, "clinician@A", "/fhir/Observation/24a0a08e-79a7-34ce-b629-7ddf0c406c93"
    )
    resource = first.json()
    assert resource["code"]["coding"][0]["code"].startswith("5089")
    assert resource["encounter"]["reference"].startswith("Encounter/")


def test_errors_under_fhir_are_operation_outcomes(api: Any, loaded: Installation) -> None:
    unauthenticated = _outcome(api.get("/fhir/Patient"), 401, "login")
    assert unauthenticated["issue"][0]["diagnostics"]
    assert api.get("/fhir/Patient").headers["www-authenticate"].startswith("Bearer")
    _outcome(_get(api, loaded, "clinician@A", "/fhir/Practitioner"), 404, "not-found")
    _outcome(_get(api, loaded, "clinician@A", "/fhir/Patient", gender="female"), 422, "invalid")
    headers = {"Authorization": f"Bearer {loaded.tokens['clinician@A']}"}
    _outcome(api.post("/fhir/Patient", json={}, headers=headers), 405, "not-supported")
    _outcome(api.delete("/fhir/Patient/x", headers=headers), 405, "not-supported")
    # The auditor has no clinical access at all.
    _outcome(_get(api, loaded, "auditor@A", "/fhir/Observation"), 403, "forbidden")


def test_identifiable_fhir_reads_are_audited(api: Any, loaded: Installation) -> None:
    _bundle(_get(api, loaded, "clinician@A", "/fhir/Patient", family="Keel"))
    with loaded.registry.transaction() as session:
        entries = report_entries(
            session, AuditFilter(user=loaded.emails["clinician@A"], action="read")
        )
    details = json.loads(entries[-1].details or "{}")
    assert details["fhir_search"] == "Patient"
    assert details["results"] == 1
    assert entries[-1].category == "demographics"


def test_questionnaires_are_the_registry_forms(api: Any, loaded: Installation) -> None:
    body = _bundle(_get(api, loaded, "clinician@A", "/fhir/Questionnaire"))
    assert body["total"] >= 1
    first = body["entry"][0]["resource"]
    assert first["url"].startswith("urn:careloop:form:")
    again = _get(api, loaded, "analyst@A", f"/fhir/Questionnaire/{first['id']}")
    assert again.json()["version"] == first["version"]


def test_questionnaire_responses_are_served_within_the_site_only(
    api: Any, loaded: Installation
) -> None:
    body = _bundle(_get(api, loaded, "clinician@B", "/fhir/QuestionnaireResponse"))
    (entry,) = body["entry"]
    response = entry["resource"]
    (ada,) = [
        e["resource"]["id"]
        for e in _bundle(_get(api, loaded, "clinician@B", "/fhir/Patient", family="Okafor"))[
            "entry"
        ]
    ]
    assert response["subject"]["reference"] == f"Patient/{ada}"
    assert {i["linkId"]: i["answer"][0] for i in response["item"]}["weightvalue"] == {
        "valueDecimal": 70.5
    }
    one = _get(api, loaded, "clinician@B", f"/fhir/QuestionnaireResponse/{response['id']}")
    assert one.json() == response
    by_patient = _get(api, loaded, "clinician@B", "/fhir/QuestionnaireResponse", patient=ada)
    assert _bundle(by_patient)["total"] == 1
    url = response["questionnaire"].split("|")[0]
    assert (
        _bundle(_get(api, loaded, "clinician@B", "/fhir/QuestionnaireResponse", questionnaire=url))[
            "total"
        ]
        == 1
    )
    assert (
        _bundle(
            _get(api, loaded, "clinician@B", "/fhir/QuestionnaireResponse", questionnaire="urn:x")
        )["total"]
        == 0
    )
    # Site A sees none of it, by search, patient or id; analysts read no answers.
    assert _bundle(_get(api, loaded, "clinician@A", "/fhir/QuestionnaireResponse"))["total"] == 0
    assert (
        _bundle(_get(api, loaded, "clinician@A", "/fhir/QuestionnaireResponse", patient=ada))[
            "total"
        ]
        == 0
    )
    path = f"/fhir/QuestionnaireResponse/{response['id']}"
    _outcome(_get(api, loaded, "clinician@A", path), 404, "not-found")
    _outcome(_get(api, loaded, "analyst@B", "/fhir/QuestionnaireResponse"), 403, "forbidden")


# ---------------------------------------------------------------- a real client


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Installation]]:
    tmp = tmp_path_factory.mktemp("fhir-live")
    inst = build_installation(make_settings(tmp, None))
    fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    inst.registry.close()
    server = start_server(inst.settings.data_dir)
    try:
        yield server.url, inst
    finally:
        stop_server(server)


def test_fhirpy_reads_and_searches_a_running_careloop(live: tuple[str, Installation]) -> None:
    from fhirpy import SyncFHIRClient
    from fhirpy.base.exceptions import AuthorizationError, ResourceNotFound

    url, inst = live
    client = SyncFHIRClient(f"{url}/fhir", authorization=f"Bearer {inst.tokens['clinician@A']}")
    patients = client.resources("Patient").search(family="Okafor").fetch()
    assert [p["identifier"][0]["value"] for p in patients] == ["MRN-0002"]
    ada = client.reference("Patient", patients[0]["id"]).to_resource()
    assert ada["name"][0]["given"] == ["Ada", "Nkem"]
    heights = (
        client.resources("Observation")
        .search(patient=ada["id"], code="http://loinc.org|8302-2")
        .fetch()
    )
    assert [o["valueQuantity"]["value"] for o in heights] == [168.5]
    assert client.resources("Observation").search(date__ge="2021-03-02").count() == 1
    other = SyncFHIRClient(f"{url}/fhir", authorization=f"Bearer {inst.tokens['clinician@B']}")
    theirs = other.resources("Patient").fetch()
    assert len(theirs) == 2
    assert {p["meta"]["tag"][0]["code"] for p in theirs} == {"B"}
    with pytest.raises(ResourceNotFound):
        other.reference("Patient", ada["id"]).to_resource()
    nobody = SyncFHIRClient(f"{url}/fhir")
    with pytest.raises(AuthorizationError):
        nobody.resources("Patient").fetch()
