"""The portal in a real browser: a patient on a phone reads their own scores, checked with axe.

A real ``careloop serve`` on a test installation whose patient has answered
three PROMs and belongs to a learning community that adopted a change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from careloop.capture import forms_store, proms
from careloop.capture.examples import example_file
from careloop.community import add_cycle, record_act
from careloop.trust import patients
from tests.capture.registry_helpers import PROM, prom_answers
from tests.community.helpers import KNOWN_MEASURES, make_community, principal
from tests.community.test_cycles import package
from tests.foundation import PASSWORD, Installation, build_installation, make_settings
from tests.live import LiveServer, login, start_server, stop_server
from tests.web.test_browser_community import PHONE, _check, _close, _new_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, LiveServer]]:
    inst = build_installation(make_settings(tmp_path_factory.mktemp("portal"), None))
    forms_store.import_forms(
        inst.registry, inst.operator, example_file("yaml"), fmt="yaml", name="ibd_registry.yaml"
    )
    own = inst.patient_user_of["patient@A"]
    for pain, day in enumerate(("2024-01-05", "2024-02-09", "2024-03-01", "2024-04-12")):
        link = proms.create_prom_link(inst.registry, inst.operator, PROM, patient_id=own)
        values = prom_answers(day, tummy_pain=str(pain % 3))
        proms.submit_prom_link(inst.registry, link.token, values=values, event_date=day)
    cid = make_community(inst).community.id
    member = principal(inst, "clinician@B")
    cycle = add_cycle(inst.registry, member, cid, package(), known_measures=KNOWN_MEASURES)
    record_act(inst.registry, member, cycle.id, decision="adopt", rationale="It worked")
    server = start_server(inst.settings.data_dir)
    yield inst, server
    stop_server(server)
    inst.registry.close()


@pytest.mark.parametrize("who", ["patient@A", "carer@A"])
def test_a_patient_or_carer_reads_their_portal_on_a_phone(site, chromium: Any, who: str):
    inst, server = site
    page = _new_page(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    login(page, server.url, inst.emails[who], PASSWORD)
    page.wait_for_url(server.url + "/my")
    if who == "patient@A":
        assert page.get_by_role("heading", name="My care", exact=True).is_visible()
        chart = page.get_by_role("img", name="Symptom total")
        assert chart.count() == 1 and "4 answers" in (chart.get_attribute("aria-label") or "")
        page.get_by_text("See the numbers").click()
        assert page.get_by_role("cell", name="12 April 2024").is_visible()
    else:
        assert page.get_by_role("heading", name="The people you care for").is_visible()
    assert "It worked, so the team kept the change." in page.locator("main").inner_text() or (
        who == "carer@A"  # the carer of A is not a member of the community
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    _check(page, f"portal-{who.replace('@', '-')}-phone")
    _close(page)


def test_anyone_reads_the_public_page_on_a_phone(site, chromium: Any):
    _, server = site
    page = _new_page(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(server.url + "/public")
    assert page.get_by_role("heading", name="How we use your information").is_visible()
    assert page.get_by_role("heading", name="What we learned").is_visible()
    assert "It worked, so the team kept the change." in page.locator("main").inner_text()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    _check(page, "public-phone")
    _close(page)


def test_a_patient_withdraws_research_on_a_phone_and_keeps_improvement(site, chromium: Any):
    inst, server = site
    page = _new_page(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    login(page, server.url, inst.emails["patient@A"], PASSWORD)
    page.wait_for_url(server.url + "/my")
    research = page.get_by_role("group", name="Use my information for research")
    research.get_by_role("radio", name="No").check()
    research.get_by_role("button", name="Save").click()
    page.wait_for_url("**/my?saved=*")
    assert page.get_by_role("status").filter(has_text="We have saved your choice").is_visible()
    research = page.get_by_role("group", name="Use my information for research")
    assert research.get_by_role("radio", name="No").is_checked()
    improvement = page.get_by_role(
        "group", name="Use my information to make care better for everyone"
    )
    assert improvement.get_by_role("radio", name="Yes").is_checked()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    _check(page, "portal-consent-saved-phone")


def test_a_guardian_unticks_a_box_on_a_phone_and_the_results_go(site, chromium: Any):
    """Runs last in this module: it takes ``see_results`` from site A's carer."""
    inst, server = site
    proxied = inst.patient_user_of["carer@A"]
    ten_years_ago = date.today().replace(year=date.today().year - 10, day=1)
    patients.update_patient(  # a child, whenever the test runs: the carer is their guardian
        inst.registry,
        inst.operator,
        proxied,
        changes={"birth_date": ten_years_ago.isoformat()},
        reason="test: a child",
    )
    page = _new_page(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    login(page, server.url, inst.emails["carer@A"], PASSWORD)
    page.wait_for_url(server.url + "/my")
    assert page.get_by_role("heading", name="How things have been").is_visible()
    box = page.get_by_role("checkbox", name="See answers, scores and charts")
    assert box.is_checked()
    box.uncheck()
    page.get_by_role("button", name="Save what carer may do").click()
    page.wait_for_url(server.url + f"/my?carers=changed#people-who-help-{proxied}")
    assert page.get_by_role("status").inner_text() == "Saved."
    assert page.get_by_role("heading", name="How things have been").count() == 0
    assert "but not their answers or scores" in page.locator("main").inner_text()
    assert not page.get_by_role("checkbox", name="See answers, scores and charts").is_checked()
    _check(page, "portal-carer-scopes-phone")
    _close(page)
