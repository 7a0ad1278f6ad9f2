"""Reading one FHIR resource reads (and audits) that resource only.

``GET /fhir/QuestionnaireResponse/{id}`` used to build every response of the
caller's sites to return one, and audited a read of every patient there
(33–65 s on a registry of a few thousand responses). These tests pin that a
read builds one resource and its audit entry names one patient, on SQLite
and PostgreSQL, for each type the API serves; and that searches audit the
patients of the resources they return, not of everything they looked at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from careloop.capture import fhir_responses
from careloop.capture.entry import create_response
from careloop.capture.forms_store import import_forms
from careloop.fhir import server as fhir_server
from careloop.store.models import AuditEntry
from tests.foundation import Installation, fhir_import

DATA = Path(__file__).resolve().parents[1] / "data"
FHIR_SMALL = DATA / "fhir_small"
FORMS = DATA / "redcap" / "lifedata_redcap_DataDictionary.csv"


@pytest.fixture(scope="module")
def filled(installation: Installation) -> Installation:
    """Site A's two patients with five weight responses each; Synthea's Bob at site A."""
    inst = installation
    fhir_import(
        inst,
        inst.operator,
        FHIR_SMALL / "synthea_bob_trimmed.json",
        site="A",
    )
    (form,) = import_forms(inst.registry, inst.operator, FORMS)
    for n, patient_id in enumerate(inst.patient_ids["A"]):
        for visit in range(5):
            day = date(2021, 3, 1) + timedelta(days=30 * visit + n)
            create_response(
                inst.registry,
                inst.operator,
                form.name,
                patient_id=patient_id,
                event_date=day.isoformat(),
                values={
                    "timeoffact": f"{day.isoformat()} 10:00:00",
                    "typeoffact": "2",
                    "weightvalue": str(60 + visit),
                },
                status="complete",
            )
    return inst


def _get(api: Any, inst: Installation, who: str, path: str, **params: Any) -> Any:
    return api.get(path, params=params, headers={"Authorization": f"Bearer {inst.tokens[who]}"})


def _last_seq(inst: Installation) -> int:
    from sqlalchemy import func, select

    with inst.registry.read_transaction() as session:
        return int(session.scalar(select(func.max(AuditEntry.seq))) or 0)


def _entries_since(inst: Installation, seq: int) -> list[AuditEntry]:
    from sqlalchemy import select

    with inst.registry.read_transaction() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.seq > seq).order_by(AuditEntry.seq))
        )


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ids of the QuestionnaireResponses the capture layer builds during a test."""
    ids: list[str] = []
    real = fhir_responses.response_to_fhir

    def counting(*args: Any, **kwargs: Any) -> QuestionnaireResponse:
        resource = real(*args, **kwargs)
        ids.append(str(resource.id))
        return resource

    monkeypatch.setattr(fhir_responses, "response_to_fhir", counting)
    yield ids


def test_reading_one_questionnaire_response_builds_and_audits_that_response_only(
    api: Any, filled: Installation, built: list[str]
) -> None:
    everything = _get(api, filled, "clinician@A", "/fhir/QuestionnaireResponse").json()
    assert everything["total"] == 10
    resource = everything["entry"][3]["resource"]
    built.clear()
    seq = _last_seq(filled)
    one = _get(api, filled, "clinician@A", f"/fhir/QuestionnaireResponse/{resource['id']}")
    assert one.status_code == 200, one.text
    assert one.json() == resource
    assert built == [resource["id"]]
    (entry,) = _entries_since(filled, seq)
    assert (entry.action, entry.category, entry.outcome) == ("read", "clinical", "success")
    assert entry.patient_pseudo_id == resource["subject"]["reference"].split("/")[1]
    details = json.loads(entry.details or "{}")
    assert details["fhir_read"] == f"QuestionnaireResponse/{resource['id']}"
    assert details["response_id"] == int(resource["id"].removeprefix("response-"))


def test_a_questionnaire_response_of_another_site_is_not_found_and_the_attempt_audited(
    api: Any, filled: Installation
) -> None:
    resource = _get(api, filled, "clinician@A", "/fhir/QuestionnaireResponse", _count=1).json()
    rid = resource["entry"][0]["resource"]["id"]
    seq = _last_seq(filled)
    theirs = _get(api, filled, "clinician@B", f"/fhir/QuestionnaireResponse/{rid}")
    assert theirs.status_code == 404
    assert theirs.json()["issue"][0]["diagnostics"] == (
        f"There is no QuestionnaireResponse/{rid} that you can see."
    )
    (entry,) = _entries_since(filled, seq)
    assert (entry.action, entry.outcome, entry.patient_id) == ("read", "not_found", None)


@pytest.mark.parametrize(
    "rid", ["response-9223372036854775808", "response-99999999999999999999999", "response-0", "x"]
)
def test_questionnaire_response_ids_no_row_can_have_are_simply_not_found(
    api: Any, filled: Installation, rid: str
) -> None:
    answer = _get(api, filled, "clinician@A", f"/fhir/QuestionnaireResponse/{rid}")
    assert answer.status_code == 404, answer.text
    search = _get(api, filled, "clinician@A", "/fhir/QuestionnaireResponse", _id=rid)
    assert search.status_code == 200, search.text
    assert search.json()["total"] == 0


def test_a_questionnaire_response_search_audits_the_patients_it_returns(
    api: Any, filled: Installation, built: list[str]
) -> None:
    seq = _last_seq(filled)
    page = _get(api, filled, "clinician@A", "/fhir/QuestionnaireResponse", _count=1).json()
    assert page["total"] == 10
    (shown,) = page["entry"]
    assert built == [shown["resource"]["id"]]
    (entry,) = _entries_since(filled, seq)
    details = json.loads(entry.details or "{}")
    assert details["results"] == 10
    assert details["fhir_search"] == "QuestionnaireResponse"
    assert len(details["patient_ids"]) == 1  # of the one returned, not of all ten read
    # Newest visit first, as before.
    page = _get(api, filled, "clinician@A", "/fhir/QuestionnaireResponse", _count=4).json()
    days = [e["resource"]["extension"][0]["valueDate"] for e in page["entry"]]
    assert days == ["2021-06-30", "2021-06-29", "2021-05-31", "2021-05-30"]


def test_reading_one_observation_reads_the_rows_of_its_patient_only(
    api: Any, filled: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[set[int]] = []
    real = fhir_server.clinical_resources

    def recording(warehouse: Any, persons: Any, **kwargs: Any) -> list[dict[str, Any]]:
        asked.append(set(persons))
        return real(warehouse, persons, **kwargs)

    monkeypatch.setattr(fhir_server, "clinical_resources", recording)
    seq = _last_seq(filled)
    rid = "24a0a08e-79a7-34ce-b629-7ddf0c406c93"
    answer = _get(api, filled, "clinician@A", f"/fhir/Observation/{rid}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == rid
    bob = answer.json()["subject"]["reference"].split("/")[1]
    assert len(asked) == 1 and len(asked[0]) == 1  # Bob alone, not site A's three patients
    (entry,) = _entries_since(filled, seq)
    assert entry.patient_pseudo_id == bob
    assert json.loads(entry.details or "{}")["fhir_read"] == f"Observation/{rid}"
    assert _get(api, filled, "clinician@B", f"/fhir/Observation/{rid}").status_code == 404
    for missing in ("measurement-9223372036854775808", "nothing-here", "measurement-1"):
        assert _get(api, filled, "clinician@A", f"/fhir/Observation/{missing}").status_code == 404


def test_reading_one_patient_audits_that_patient(api: Any, filled: Installation) -> None:
    (bob,) = _get(api, filled, "clinician@A", "/fhir/Patient", family="Keeling").json()["entry"]
    seq = _last_seq(filled)
    pseudo = bob["resource"]["id"]
    assert _get(api, filled, "clinician@A", f"/fhir/Patient/{pseudo}").json() == bob["resource"]
    (entry,) = _entries_since(filled, seq)
    assert (entry.patient_pseudo_id, entry.category) == (pseudo, "demographics")


def test_reading_one_questionnaire_reads_that_form(api: Any, filled: Installation) -> None:
    found = _get(api, filled, "analyst@A", "/fhir/Questionnaire").json()["entry"][0]["resource"]
    one = _get(api, filled, "analyst@A", f"/fhir/Questionnaire/{found['id']}")
    assert one.json() == found
    assert _get(api, filled, "analyst@A", "/fhir/Questionnaire/no-such-form").status_code == 404
