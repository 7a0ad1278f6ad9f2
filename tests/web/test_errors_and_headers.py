"""One JSON error shape everywhere, security headers on every response, /health."""

from __future__ import annotations

import pytest

from careloop.core.errors import all_error_types
from tests.foundation import log_in

ERROR_KEYS = {"code", "message", "details", "request_id"}


def _bearer(installation, user):
    return {"Authorization": f"Bearer {installation.tokens[user]}"}


@pytest.mark.parametrize(
    ("method", "url", "body", "user", "status", "code"),
    [
        ("GET", "/api/nothing-here", None, "clinician@A", 404, "not_found"),
        ("GET", "/api/me", None, None, 401, "authentication_required"),
        ("GET", "/api/audit", None, "clinician@A", 403, "permission_denied"),
        ("GET", "/api/patients/999999", None, "clinician@A", 404, "not_found"),
        ("GET", "/api/patients/not-a-number", None, "clinician@A", 422, "invalid_input"),
        ("POST", "/api/patients", {"site": "A"}, "clinician@A", 422, "invalid_input"),
        (
            "POST",
            "/api/sites",
            {"code": "bad code!", "name": "", "country": "Britain", "time_zone": "Mars/Base"},
            "admin",
            422,
            "validation_failed",
        ),
        ("PUT", "/api/me", None, "clinician@A", 405, "method_not_allowed"),
    ],
)
def test_every_api_error_has_the_same_json_shape(
    api, installation, method, url, body, user, status, code
):
    headers = _bearer(installation, user) if user else {}
    response = api.request(method, url, json=body, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_validation_errors_name_each_field(api, installation):
    response = api.post(
        "/api/sites",
        json={"code": "bad code!", "name": "", "country": "Britain", "time_zone": "Mars/Base"},
        headers=_bearer(installation, "admin"),
    )
    locations = {d["location"] for d in response.json()["error"]["details"]}
    assert locations == {"code", "name", "country", "time_zone"}


def test_responses_carry_the_security_headers(api):
    for url in ("/login", "/health", "/api/me", "/static/careloop.css"):
        headers = api.get(url).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]


def test_pages_and_downloads_with_patient_or_small_count_data_are_never_cached(
    api, installation, monkeypatch
):
    # Issue 14: patient pages and measure CSVs had no Cache-Control: no-store.
    import pandas as pd

    from careloop.practice.feedback import dashboards as dashboard

    frame = pd.DataFrame({"site": ["A"], "numerator": [3], "denominator": [4]})
    from careloop.web.pages import measure_page

    # The download's rows come straight from this frame (no measure run needed).
    monkeypatch.setattr(measure_page, "_detail", lambda *args: (frame, None))
    monkeypatch.setattr(dashboard, "measure_numbers", lambda stored, measure, who: stored)
    monkeypatch.setattr(dashboard, "measure_table", lambda detail, numbers: numbers)
    log_in(api, installation.emails["clinician@A"])
    try:
        pid = installation.patient_ids["A"][0]
        for url in (f"/patients/{pid}", "/patients", "/measures/m.csv", "/"):
            response = api.get(url)
            assert response.status_code == 200, (url, response.status_code)
            assert response.headers["cache-control"] == "no-store", url
        assert "no-store" not in api.get("/static/careloop.css").headers.get("cache-control", "")
        assert "no-store" not in api.get("/vendor/plotly.css").headers["cache-control"]
    finally:
        api.cookies.clear()  # the module's client serves other tests


def test_health_says_ok_without_authentication(api):
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_openapi_description_lists_the_api(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert "/api/patients/{patient_id}" in paths and "/api/audit" in paths


def test_browsers_get_an_error_page_and_unauthenticated_pages_redirect_to_login(api):
    page = api.get("/nowhere", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "<html" in page.text and "not_found" in page.text
    home = api.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/login"


def test_the_error_codes_are_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    for cls in all_error_types():
        assert f"`{cls.code}`" in doc, cls.code
