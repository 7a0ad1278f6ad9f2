"""The CDS Hooks service: discovery, cards, feedback, silent mode, variants, prefetch fetching."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from sqlalchemy import select

from careloop.knowledge import response_problems
from careloop.practice import trial_allocator
from careloop.store.knowledge_models import CdsCard, CdsFeedback, CdsInvocation
from tests.practice.cds_support import (
    auth,
    deploy,
    ec_client,
    hook_request,
    ibd_package,
    ibd_prefetch,
    trust,
)

LIVE, SILENT, SITE_B = "svc-live", "svc-silent", "svc-site-b"


@pytest.fixture(scope="module")
def keys(installation, tmp_path_factory):
    client = ec_client("https://ehr-svc.example.org/")
    trust(installation, client, tmp_path_factory.mktemp("jwks"), site="A")
    deploy(installation, ibd_package(LIVE))
    deploy(installation, ibd_package(SILENT), mode="silent")
    deploy(installation, ibd_package(SITE_B), sites=["B"])
    return client


def call(api, keys, service, body):
    path = f"/cds-services/{service}"
    return api.post(path, json=body, headers=auth(keys, path))


def patient_view(clinician="Practitioner/dr-a", patient="p1", **extra):
    return hook_request(
        "patient-view",
        {"userId": clinician, "patientId": patient},
        **({"prefetch": ibd_prefetch()} | extra),
    )


def rows(installation, model, **where):
    with installation.registry.transaction() as session:
        query = select(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return list(session.scalars(query))


def test_discovery_lists_the_active_services_the_clients_site_may_use(api, keys):
    response = api.get("/cds-services", headers=auth(keys, "/cds-services"))
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert LIVE in services and SILENT in services
    assert SITE_B not in services  # deployed at site B only; this client is site A
    entry = services[LIVE]
    assert entry["hook"] == "patient-view"
    assert entry["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert set(entry) <= {"hook", "title", "description", "id", "prefetch"}
    assert call(api, keys, SITE_B, patient_view()).status_code == 404


def test_a_card_is_returned_that_satisfies_the_spec_and_is_stored_with_the_ko_version(
    api, keys, installation
):
    body = patient_view()
    response = call(api, keys, LIVE, body)
    assert response.status_code == 200
    payload = response.json()
    assert response_problems(payload) == []
    (card,) = payload["cards"]
    assert card["indicator"] == "warning" and len(card["summary"]) < 140
    assert card["suggestions"][0]["uuid"]
    (invocation,) = rows(installation, CdsInvocation, hook_instance=body["hookInstance"])
    assert (invocation.ko_identifier, invocation.ko_version) == (LIVE, "1.0.0")
    assert invocation.site_code == "A" and invocation.patient_ref == "p1"
    assert invocation.mode == "live" and invocation.cards_count == 1
    (stored,) = rows(installation, CdsCard, uuid=card["uuid"])
    assert stored.shown and stored.variant in ("standard", "peer-comparison")


def test_no_card_when_the_rule_does_not_hold(api, keys):
    body = patient_view(prefetch=ibd_prefetch(sparing=True))
    assert call(api, keys, LIVE, body).json() == {"cards": []}


def test_silent_mode_shows_nothing_but_logs_the_cards(api, keys, installation):
    body = patient_view()
    assert call(api, keys, SILENT, body).json() == {"cards": []}
    (invocation,) = rows(installation, CdsInvocation, hook_instance=body["hookInstance"])
    (card,) = rows(installation, CdsCard, invocation_id=invocation.id)
    assert invocation.mode == "silent" and not card.shown


def test_feedback_is_stored_accepted_and_overridden_with_reasons(api, keys, installation):
    first = call(api, keys, LIVE, patient_view()).json()["cards"][0]
    second = call(api, keys, LIVE, patient_view()).json()["cards"][0]
    path = f"/cds-services/{LIVE}/feedback"
    document = {
        "feedback": [
            {
                "card": first["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": first["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2026-11-27T10:05:31Z",
            },
            {
                "card": second["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": second["overrideReasons"][1],
                    "userComment": "Parents prefer to wait until after exams.",
                },
                "outcomeTimestamp": "2026-11-27T10:06:00Z",
            },
        ]
    }
    response = api.post(path, json=document, headers=auth(keys, path))
    assert response.status_code == 200, response.text
    accepted = rows(installation, CdsFeedback, card_uuid=first["uuid"])[0]
    assert accepted.outcome == "accepted"
    assert json.loads(accepted.accepted_suggestions) == [first["suggestions"][0]["uuid"]]
    overridden = rows(installation, CdsFeedback, card_uuid=second["uuid"])[0]
    assert (overridden.outcome, overridden.override_code) == ("overridden", "declined")
    assert overridden.user_comment.startswith("Parents") and overridden.ko_version == "1.0.0"


def test_feedback_on_an_unknown_card_stores_nothing(api, keys, installation):
    card = call(api, keys, LIVE, patient_view()).json()["cards"][0]
    path = f"/cds-services/{LIVE}/feedback"
    stamp = "2026-11-27T10:05:31Z"
    document = {
        "feedback": [
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": stamp},
            {"card": "not-a-card", "outcome": "overridden", "outcomeTimestamp": stamp},
        ]
    }
    response = api.post(path, json=document, headers=auth(keys, path))
    assert response.status_code == 400
    assert response.json()["problems"][0]["path"] == "feedback[1].card"
    assert rows(installation, CdsFeedback, card_uuid=card["uuid"]) == []
    bad = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": stamp}]}
    response = api.post(path, json=bad, headers=auth(keys, path))
    assert response.json()["problems"][0]["path"] == "feedback[0].acceptedSuggestions"


def test_variants_are_allocated_by_clinician_reproducibly_through_the_trials_module(
    api, keys, installation
):
    design = ibd_package(LIVE).trials()["ibd-steroid-review-wording"]
    variants = {}
    for i in range(6):
        clinician = f"Practitioner/var-{i}"
        first = call(api, keys, LIVE, patient_view(clinician)).json()["cards"][0]["uuid"]
        again = call(api, keys, LIVE, patient_view(clinician, "p2")).json()["cards"][0]["uuid"]
        arms = {rows(installation, CdsCard, uuid=u)[0].variant for u in (first, again)}
        assert len(arms) == 1  # the same clinician always sees the same wording
        variants[clinician] = arms.pop()
    allocator = trial_allocator(installation.registry, design)  # re-derived from the seed
    by_unit = {a.unit_id: a for a in allocator.assignments}
    for clinician, arm in variants.items():
        assignment = by_unit[clinician]
        assert assignment.arm == arm
        assert design.sequence(assignment.position + 1)[assignment.position] == arm
    assert set(variants.values()) == {"standard", "peer-comparison"}
    peer = design.to_dict()["arms"][1]
    summaries = {
        rows(installation, CdsCard, variant=peer)[0].summary,
        rows(installation, CdsCard, variant="standard")[0].summary,
    }
    assert len(summaries) == 2


class _FhirStub(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []
    resources: ClassVar[dict[str, object]] = {}

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        found = next((v for k, v in self.resources.items() if self.path.startswith(k)), None)
        body = json.dumps(found).encode()
        self.send_response(200 if found is not None else 404)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fhir_server() -> Iterator[str]:
    """A tiny FHIR stub on loopback (careloop's own /fhir read API is not merged yet)."""
    prefetch = ibd_prefetch()
    _FhirStub.seen = []
    _FhirStub.resources = {
        "/fhir/Patient/p1": prefetch["patient"],
        "/fhir/Condition?patient=p1": prefetch["conditions"],
        "/fhir/MedicationRequest?patient=p1": prefetch["medications"],
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FhirStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()


def test_missing_prefetch_is_fetched_from_the_fhir_server_with_the_given_token(
    api, keys, installation, fhir_server, tmp_path
):
    trust(installation, keys, tmp_path, site="A", fhir_servers=[fhir_server])
    partial = {"patient": ibd_prefetch()["patient"]}
    body = patient_view(
        prefetch=partial,
        fhirServer=fhir_server,
        fhirAuthorization={
            "access_token": "opaque-token-123",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Condition.read user/MedicationRequest.read",
            "subject": "careloop",
        },
    )
    response = call(api, keys, LIVE, body)
    assert response.status_code == 200, response.text
    assert len(response.json()["cards"]) == 1
    assert sorted(p for p, _ in _FhirStub.seen) == [
        "/fhir/Condition?patient=p1",
        "/fhir/MedicationRequest?patient=p1",
    ]
    assert {a for _, a in _FhirStub.seen} == {"Bearer opaque-token-123"}
    (invocation,) = rows(installation, CdsInvocation, hook_instance=body["hookInstance"])
    assert json.loads(invocation.fetched_keys) == ["conditions", "medications"]


def _with_fhir_server(server: str) -> dict:
    return patient_view(
        prefetch={"patient": ibd_prefetch()["patient"]},
        fhirServer=server,
        fhirAuthorization={
            "access_token": "secret-ehr-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Condition.read",
            "subject": "careloop",
        },
    )


def test_a_fhir_server_not_registered_for_the_client_is_never_contacted(
    api, keys, installation, fhir_server, tmp_path
):
    # Issue 14: a trusted client could point fhirServer at loopback or link-local addresses
    # and receive careloop's forwarded bearer token.
    trust(installation, keys, tmp_path, site="A", fhir_servers=["https://fhir.ehr.example.org/r4"])
    for server in (
        fhir_server,  # loopback: the stub records any request it gets
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/fhir",
        "https://fhir.ehr.example.org/r4/../../other",
        "https://fhir.ehr.example.org.evil.example/r4",
    ):
        response = call(api, keys, LIVE, _with_fhir_server(server))
        assert response.status_code == 412, (server, response.text)
        assert "careloop cds trust-client --fhir-server" in response.json()["error"]
    assert _FhirStub.seen == []
    # With the stub registered, the same call is served from it.
    trust(installation, keys, tmp_path, site="A", fhir_servers=[fhir_server + "/"])
    assert call(api, keys, LIVE, _with_fhir_server(fhir_server)).status_code == 200
    assert {a for _, a in _FhirStub.seen} == {"Bearer secret-ehr-token"}


def test_a_prefetch_template_cannot_lead_outside_the_registered_fhir_server(
    api, keys, installation, fhir_server, tmp_path
):
    trust(installation, keys, tmp_path, site="A", fhir_servers=[fhir_server])
    prefetch = ibd_prefetch()
    body = _with_fhir_server(fhir_server)
    # The patient is to be fetched (template Patient/{{context.patientId}}).
    body["prefetch"] = {k: prefetch[k] for k in ("conditions", "medications")}
    body["context"]["patientId"] = "../../admin/p1"
    response = call(api, keys, LIVE, body)
    assert response.status_code == 412
    assert _FhirStub.seen == []


def test_missing_prefetch_without_a_fhir_server_is_412(api, keys):
    response = call(api, keys, LIVE, patient_view(prefetch={"patient": None}))
    assert response.status_code == 412
    assert "conditions, medications" in response.json()["error"]


def test_bad_requests_get_spec_shaped_errors_that_name_the_field(api, keys):
    wrong_hook = patient_view() | {"hook": "order-sign"}
    response = call(api, keys, LIVE, wrong_hook)
    assert response.status_code == 400
    assert "hook" in [p["path"] for p in response.json()["problems"]]
    no_patient = hook_request("patient-view", {"userId": "Practitioner/1"})
    response = call(api, keys, LIVE, no_patient)
    assert [p["path"] for p in response.json()["problems"]] == ["context.patientId"]
    path = f"/cds-services/{LIVE}"
    response = api.post(path, content=b"{not json", headers=auth(keys, path))
    assert response.status_code == 400 and "not JSON" in response.json()["error"]
    # Python's parser takes NaN and Infinity; JSON has no such numbers (issue 14).
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        text = json.dumps(patient_view()).encode().replace(b'"p1"', b'"p1", "x": ' + constant)
        response = api.post(path, content=text, headers=auth(keys, path))
        assert response.status_code == 400, constant
        assert "is not a JSON number" in response.json()["error"]
    huge = b'{"x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    response = api.post(path, content=huge, headers=auth(keys, path))
    assert response.status_code == 413
    assert call(api, keys, "no-such-service", patient_view()).status_code == 404


def test_card_events_give_one_row_per_card_with_its_latest_feedback(api, keys, installation):
    from careloop.practice import card_events

    card = call(api, keys, LIVE, patient_view("Practitioner/events")).json()["cards"][0]
    assert call(api, keys, SILENT, patient_view("Practitioner/events")).json() == {"cards": []}
    path = f"/cds-services/{LIVE}/feedback"
    for outcome in ("overridden", "accepted"):
        item = {
            "card": card["uuid"],
            "outcome": outcome,
            "outcomeTimestamp": "2026-11-27T10:00:00Z",
        }
        if outcome == "accepted":
            item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
        assert (
            api.post(path, json={"feedback": [item]}, headers=auth(keys, path)).status_code == 200
        )
    events = card_events(installation.registry)
    row = events.set_index("card_uuid").loc[card["uuid"]]
    assert (row["outcome"], row["site_code"], row["ko_version"]) == ("accepted", "A", "1.0.0")
    assert row["user_ref"] == "Practitioner/events" and "patient_ref" not in events.columns
    silent = events[events["mode"] == "silent"]
    assert len(silent) >= 1 and not silent["shown"].any()
