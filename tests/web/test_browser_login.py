"""End to end: a real uvicorn server, a real Chromium, a demo user logging in."""

from __future__ import annotations

import pytest

from careloop.demo.seed import seed_demo
from careloop.trust.principal import Principal
from tests.foundation import make_settings
from tests.live import start_server, stop_server

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_server(tmp_path):
    settings = make_settings(tmp_path, None)
    logins = seed_demo(settings, Principal.operator(), patients_per_site=2)
    server = start_server(settings.data_dir)
    yield server, {login.email.split("@")[0]: login for login in logins}
    stop_server(server)


def test_a_demo_clinician_logs_in_sees_their_role_and_logs_out(demo_server, page):
    server, logins = demo_server
    clinician = logins["clinician.north"]
    page.goto(server.url + "/")
    assert page.url.endswith("/login")
    page.get_by_label("E-mail").fill(clinician.email)
    page.get_by_label("Password").fill(clinician.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/")
    assert page.get_by_role("heading", name=f"Welcome, {clinician.email}").is_visible()
    assert "clinician at NORTH" in page.locator(".roles").inner_text()
    assert page.get_by_role("cell", name="Lakeside Paediatric IBD Centre").is_visible()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(server.url + "/login")


def test_a_wrong_password_shows_an_error_in_the_page(demo_server, page):
    server, logins = demo_server
    page.goto(server.url + "/login")
    page.get_by_label("E-mail").fill(logins["analyst"].email)
    page.get_by_label("Password").fill("not the right password")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST"):
        page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "The e-mail or password is not right."
    # The form comes back with HTTP 401, which Chromium reports on the console: expected here.
    page.careloop_console_errors.remove(
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    )
