"""Ids no row can have (2^63 and beyond) are located refusals, never a server error.

Schemathesis found 31 server errors from such ids in paths and queries
(SQLite's driver raises ``OverflowError`` on an integer beyond 64 bits), and
those attempts escaped the audit trail. The API's description now bounds its
ids (422 naming the parameter); every route that takes an integer is called
here with 2^63 and 2^70. Below the API (the CLI, any other caller of the
services) the registry answers such a number itself: not found, audited like
any other refusal, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from careloop.capture.entry import create_response
from careloop.core.errors import NotFound
from careloop.store.models import AuditEntry
from careloop.trust.identity import resolve_token, revoke_token
from careloop.trust.patients import get_patient
from careloop.trust.principal import Principal, RequestContext
from tests.foundation import Installation

HUGE = (2**63, 2**70)
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("patch", "/api/patients/{patient_id}"): {"reason": "typo", "changes": {"given_name": "X"}},
    ("post", "/api/patients/{patient_id}/consent"): {
        "state": "withdrawn",
        "method": "paper",
    },
    ("put", "/api/forms/{form}/responses/{response_id}"): {"values": {}, "reason": "typo"},
}


def _integer_routes(api: Any) -> list[tuple[str, str, list[str]]]:
    spec = api.app.openapi()
    routes = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            names = [
                p["name"]
                for p in operation.get("parameters", [])
                if p["in"] == "path" and p.get("schema", {}).get("type") == "integer"
            ]
            if names:
                routes.append((method, path, names))
    return routes


def _principal(inst: Installation, key: str) -> Principal:
    return resolve_token(inst.registry, inst.tokens[key], RequestContext())


def _last_entry(inst: Installation) -> AuditEntry:
    with inst.registry.read_transaction() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    return entry


def test_every_integer_path_parameter_answers_not_found_for_ids_beyond_64_bits(
    api: Any, installation: Installation
) -> None:
    routes = _integer_routes(api)
    assert len(routes) >= 9
    headers = {"Authorization": f"Bearer {installation.tokens['site_lead@A']}"}
    for method, path, names in routes:
        for number in HUGE:
            url = path
            for name in names:
                url = url.replace("{" + name + "}", str(number))
            url = re.sub(r"\{form\}", "my_first_instrument", url)
            body = BODIES.get((method, path))
            answer = api.request(method.upper(), url, headers=headers, json=body)
            assert answer.status_code < 500, (method, url, answer.text)
            assert answer.status_code in (404, 422), (method, url, answer.text)


def test_an_id_beyond_64_bits_in_the_api_is_a_located_refusal(
    api: Any, installation: Installation
) -> None:
    # The API's own description bounds its ids: refused before any route runs.
    headers = {"Authorization": f"Bearer {installation.tokens['clinician@A']}"}
    answer = api.get(f"/api/patients/{2**63}", headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["location"] == "path.patient_id"
    answer = api.post(
        "/api/forms/nothing/responses",
        headers=headers,
        json={"patient_id": 2**64, "event_date": "2024-01-01", "values": {}},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["location"] == "body.patient_id"


def test_a_request_refused_as_invalid_is_audited_for_the_signed_in_caller(
    api: Any, installation: Installation
) -> None:
    headers = {"Authorization": f"Bearer {installation.tokens['clinician@A']}"}
    answer = api.get(f"/api/patients/{2**63}", headers=headers)
    assert answer.status_code == 422
    entry = _last_entry(installation)
    assert (entry.action, entry.outcome) == ("request_invalid", "denied")
    assert entry.user_email == installation.emails["clinician@A"]
    assert "path.patient_id" in entry.details and f"/api/patients/{2**63}" in entry.details
    # Nobody signed in: nothing to record, and still a located refusal, never a 500.
    anonymous = api.get(f"/api/patients/{2**63}")
    assert anonymous.status_code in (401, 422)


# Past the API (the CLI, other callers of the services), the registry itself answers.


def test_reading_a_patient_with_an_id_beyond_64_bits_is_audited_as_not_found(
    installation: Installation,
) -> None:
    who = _principal(installation, "clinician@A")
    with pytest.raises(NotFound, match="9223372036854775807"):
        get_patient(installation.registry, who, 2**63)
    entry = _last_entry(installation)
    assert (entry.action, entry.outcome, entry.user_email) == (
        "read",
        "not_found",
        installation.emails["clinician@A"],
    )
    assert json.loads(entry.details or "{}") == {"patient_id": 2**63}


def test_a_response_for_a_patient_id_beyond_64_bits_is_refused_and_audited(
    installation: Installation,
) -> None:
    who = _principal(installation, "clinician@A")
    with pytest.raises(NotFound):
        create_response(
            installation.registry,
            who,
            "nothing",
            patient_id=2**64,
            event_date="2024-01-01",
            values={},
        )
    entry = _last_entry(installation)
    assert (entry.action, entry.outcome) == ("create", "not_found")


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30])
def test_a_token_id_beyond_64_bits_is_not_found(installation: Installation, number: int) -> None:
    with pytest.raises(NotFound):
        revoke_token(installation.registry, _principal(installation, "analyst"), token_id=number)
