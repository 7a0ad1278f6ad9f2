"""The OpenAPI description says what the API really does: statuses, times, bodies.

Clients generate code from ``/openapi.json`` and schemathesis fuzzes from it
(tests/web/test_schemathesis.py); a route that answers 404 or CSV without
saying so, or a time without its offset, breaks them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from careloop.capture import example_file
from tests.foundation import Installation

ERROR_BODY = "#/components/schemas/ErrorBody"
PUBLIC = {"/api/prom/{token}"}
"""Operations that need no caller (the PROM link is the credential)."""


def _bearer(installation: Installation, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {installation.tokens[user]}"}


def _api_operations(description: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in description["paths"].items()
        if path.startswith("/api/")
        for method, operation in item.items()
    ]


def test_every_api_operation_declares_its_refusals_in_the_one_error_shape(api: Any) -> None:
    description = api.get("/openapi.json").json()
    operations = _api_operations(description)
    assert len(operations) > 30
    for path, method, operation in operations:
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        if path not in PUBLIC:
            assert "401" in responses, where
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in responses, where
        if "{" in path:
            assert "404" in responses, where
        for status, answer in responses.items():
            if status.startswith("4"):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_BODY}, (where, status)


def test_times_in_api_answers_carry_their_offset(api: Any, installation: Installation) -> None:
    tokens = api.get("/api/tokens", headers=_bearer(installation, "admin"))
    assert tokens.status_code == 200
    created = [token["created_at"] for token in tokens.json()]
    assert created
    for moment in created:
        assert datetime.fromisoformat(moment).utcoffset() is not None, moment
    schema = api.get("/openapi.json").json()["components"]["schemas"]["TokenView"]
    assert schema["properties"]["created_at"]["format"] == "date-time"


def test_the_form_import_declares_the_files_it_takes_and_takes_yaml(
    api: Any, installation: Installation
) -> None:
    operation = api.get("/openapi.json").json()["paths"]["/api/forms"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"text/csv", "application/yaml", "application/fhir+json"}

    sent = api.post(
        "/api/forms?format=yaml",
        content=example_file("yaml"),
        headers={**_bearer(installation, "admin"), "Content-Type": "application/yaml"},
    )
    assert sent.status_code == 201, sent.text


def test_file_answers_are_declared_beside_json(api: Any) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    audit = paths["/api/audit"]["get"]["responses"]["200"]["content"]
    assert set(audit) == {"application/json", "text/csv"}
    form = paths["/api/forms/{form}"]["get"]["responses"]["200"]["content"]
    assert set(form) == {
        "application/json",
        "text/csv",
        "application/yaml",
        "application/fhir+json",
    }


def test_an_id_larger_than_the_database_holds_is_refused_not_a_server_error(
    api: Any, installation: Installation
) -> None:
    for url in ("/api/patients/9223372036854775808", "/api/patients/0"):
        answer = api.get(url, headers=_bearer(installation, "clinician@A"))
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["error"]["code"] == "invalid_input"
