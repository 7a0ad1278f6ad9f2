"""The admin pages and the home page in a real browser: the admin adds a site, a user with a
role, creates and revokes a token; each role's home page on the demo. axe-core finds
nothing serious or critical on any of them, and none scrolls sideways at 320 px."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from careloop.capture import forms_store
from careloop.capture.examples import example_file
from careloop.trust import identity
from tests.foundation import PASSWORD, Installation, build_installation, make_settings
from tests.live import LiveServer, login, start_server, stop_server
from tests.web.dashboard_demo import DEMO_GROUP, MEASURES_DIR_ENV, DemoInstallation
from tests.web.test_admin_pages import PAGES
from tests.web.test_browser_community import _check, _close, _new_page

pytestmark = [pytest.mark.browser, DEMO_GROUP]

ADMIN_PAGES = (*PAGES, "/admin/forms/ibd_visit")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, LiveServer]]:
    inst = build_installation(make_settings(tmp_path_factory.mktemp("admin"), None))
    forms_store.import_forms(
        inst.registry, inst.operator, example_file("yaml"), fmt="yaml", name="ibd_registry.yaml"
    )
    server = start_server(inst.settings.data_dir)
    yield inst, server
    stop_server(server)
    inst.registry.close()


@pytest.fixture(scope="module")
def demo_server(demo: DemoInstallation) -> Iterator[LiveServer]:
    """The demo (`demo` comes from tests/web/conftest.py) served on loopback."""
    live = start_server(demo.settings.data_dir, env=MEASURES_DIR_ENV)
    yield live
    stop_server(live)


def _narrow(page: Any, url: str, name: str) -> None:
    """The page at 320 px: no sideways scroll, and axe-core again."""
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto(url)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if scroll > 320:
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.scrollWidth > 320"
            " || e.getBoundingClientRect().right > 320).slice(-3).map(e => e.outerHTML.slice(0, 120))"
        )
        pytest.fail(f"{name} scrolls sideways at 320 px ({scroll} px wide): {wide}")
    _check(page, f"{name}-320")
    page.set_viewport_size({"width": 1280, "height": 900})


def _expect_status(page: Any, status: int) -> None:
    """Chromium logs a page that comes back with an error status; expected here."""
    page.careloop_console_errors[:] = [
        m for m in page.careloop_console_errors if f"status of {status}" not in m
    ]


def test_the_admin_adds_a_site_and_a_user_and_creates_and_revokes_a_token(site, chromium):
    inst, server = site
    page = _new_page(chromium, viewport={"width": 1280, "height": 900})
    login(page, server.url, inst.emails["admin"], PASSWORD)
    page.get_by_role("link", name="Admin", exact=True).first.click()
    page.wait_for_url(server.url + "/admin")

    page.get_by_role("link", name="Sites", exact=True).first.click()
    page.get_by_label("Code").fill("no good")
    page.get_by_label("Name").fill("Royal Children's")
    page.get_by_role("button", name="Add the site").click()
    _expect_status(page, 422)
    assert page.get_by_role("alert").is_visible()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.get_by_label("Code").get_attribute("aria-invalid") == "true"
    _check(page, "admin-site-refused")
    page.get_by_label("Code").fill("RCH")
    page.get_by_label("Country").fill("AU")
    page.get_by_label("Time zone").fill("Australia/Melbourne")
    page.get_by_role("button", name="Add the site").click()
    page.wait_for_url(re.compile(r".*/admin/sites\?saved=site.*"))
    assert page.get_by_role("status").inner_text() == "Saved: site RCH was added."
    assert "RCH" in {s.code for s in identity.list_sites(inst.registry, inst.operator)}

    page.get_by_role("link", name="Users and roles").first.click()
    form = page.locator("form", has=page.get_by_role("heading", name="Add a user"))
    form.get_by_label("E-mail").fill("nurse.rch@example.org")
    form.get_by_label("Name", exact=True).fill("Nurse at RCH")
    form.get_by_label("Their role").select_option("clinician")
    form.get_by_label("At the site").select_option("RCH")
    form.get_by_role("button", name="Add the user").click()
    page.wait_for_url(re.compile(r".*/admin/users\?saved=user.*"))
    assert "nurse.rch@example.org was added" in page.get_by_role("status").inner_text()
    users = {u.email: u for u in identity.list_users(inst.registry, inst.operator)}
    assert [(r.role, r.site) for r in users["nurse.rch@example.org"].roles] == [
        ("clinician", "RCH")
    ]

    page.get_by_role("link", name="API tokens").first.click()
    page.get_by_label("What will use it").fill("nightly export")
    page.get_by_role("button", name="Create the token").click()
    secret = page.locator("#new-token").inner_text()
    assert secret.startswith(identity.TOKEN_PREFIX)
    _check(page, "admin-token-created")
    page.get_by_role("link", name="API tokens").first.click()
    assert secret not in page.content()
    page.get_by_role("button", name=re.compile(r"Revoke token \d+ \(nightly export\)")).click()
    page.wait_for_url(re.compile(r".*/admin/tokens\?saved=token-revoked.*"))
    assert "no longer works" in page.get_by_role("status").inner_text()
    _expect_status(page, 422)  # the refusal's log line can arrive after the first filter
    _close(page)


def test_every_admin_page_passes_axe_and_fits_a_phone(site, chromium):
    inst, server = site
    page = _new_page(chromium, viewport={"width": 1280, "height": 900})
    login(page, server.url, inst.emails["admin"], PASSWORD)
    for path in ADMIN_PAGES:
        page.goto(server.url + path)
        assert page.get_by_role("heading", level=1).count() == 1, path
        name = "admin" + path.replace("/admin", "").replace("/", "-")
        _check(page, name)
        _narrow(page, server.url + path, name)
    _close(page)


HOME_PARTS = {
    ("clinician", "S001"): ("Your drafts", "Your patients"),
    ("data_entry", "S001"): ("Your drafts", "Your patients"),
    ("site_lead", "S001"): ("Site S001: what needs attention this month", "Your drafts"),
    ("auditor", None): ("The audit trail",),
    ("admin", None): ("Running this installation",),
    ("analyst", None): ("Sites in this installation",),
}


def test_each_role_finds_its_work_on_the_home_page(demo, demo_server, chromium, tmp_path: Path):
    for (role, site_code), headings in HOME_PARTS.items():
        me = demo.login(role, site_code)
        page = _new_page(chromium, viewport={"width": 1280, "height": 900})
        login(page, demo_server.url, me.email, me.password)
        for heading in headings:
            assert page.get_by_role("heading", name=heading).is_visible(), (role, heading)
        name = f"home-{role}"
        _check(page, name)
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        _narrow(page, demo_server.url + "/", name)
        if role == "site_lead":
            lead = page.locator("section", has=page.get_by_role("heading", name=headings[0]))
            text = lead.inner_text()
            assert "special cause of concern" in text, text
            assert "Questionnaires (PROMs) outstanding" in text
        _close(page)
    print(f"screenshots in {tmp_path}")
