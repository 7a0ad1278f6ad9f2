"""Data entry in a real browser: branching live in the page, validation on the server, PROM links."""

from __future__ import annotations

import re

import pytest

from careloop.capture import entry, forms_store
from careloop.capture.examples import example_file
from tests.foundation import PASSWORD, build_installation, make_settings
from tests.live import login, start_server, stop_server
from tests.web.test_browser_community import _check, _close, _new_page

pytestmark = pytest.mark.browser


@pytest.fixture
def site_server(tmp_path):
    inst = build_installation(make_settings(tmp_path, None))
    forms_store.import_forms(
        inst.registry, inst.operator, example_file("yaml"), fmt="yaml", name="ibd_registry.yaml"
    )
    server = start_server(inst.settings.data_dir)
    yield inst, server
    stop_server(server)
    inst.registry.close()


def _field(page, name):
    return page.locator(f'[data-field="{name}"]')


def _expect_console(page, status):
    """Chromium logs a page that comes back with an error status; expected here."""
    page.careloop_console_errors[:] = [
        m for m in page.careloop_console_errors if f"status of {status}" not in m
    ]


def _usable_at_320(chromium, url, visit, name):
    """The page at 320 CSS px: no sideways scroll, and axe finds nothing serious."""
    small = _new_page(chromium, viewport={"width": 320, "height": 640})
    login(small, url, *visit[0])
    small.goto(url + visit[1])
    scroll = small.evaluate("document.documentElement.scrollWidth")
    assert scroll <= 320, f"{name}: {scroll}px wide at 320px"
    _check(small, f"{name}-320px")
    _close(small)


def test_a_clinician_records_a_visit_fixes_an_error_and_sees_the_save_confirmed(
    site_server, page, chromium
):
    inst, server = site_server
    me = (inst.emails["clinician@A"], PASSWORD)
    login(page, server.url, *me)
    page.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="MRN-A-1").click()
    page.get_by_role("button", name="New IBD clinic visit").click()
    page.locator('#entry[data-live="ready"]').wait_for()  # the page script has started
    # One visit date: the form's own, filled from the patient page's date; no second box.
    assert page.locator("#event_date").count() == 0
    # Disease scores are hidden, with their section headings, until the disease type says.
    pucai = page.get_by_role("heading", name=re.compile("Ulcerative Colitis Activity"))
    assert _field(page, "pucai_pain").is_hidden() and pucai.is_hidden()
    page.get_by_label("Ulcerative colitis").check()
    _field(page, "pucai_pain").wait_for(state="visible")
    pucai.wait_for(state="visible")
    assert _field(page, "shpcdai_pain").is_hidden()
    # Ranges are said before they are broken.
    assert "Between 40 and 220 cm" in _field(page, "height_cm").inner_text()
    _field(page, "visit_date").locator("input").fill("2026-11-02")
    # Enter in a box saves nothing (it would have saved a draft).
    _field(page, "height_cm").locator("input").fill("150.0")
    _field(page, "height_cm").locator("input").press("Enter")
    page.wait_for_timeout(300)
    assert "/forms/ibd_visit/new" in page.url and page.locator("[data-error-summary]").count() == 0
    # Saving with answers missing: a summary of plain sentences, which takes the focus.
    page.get_by_role("button", name="Save as complete").click()
    summary = page.locator("[data-error-summary]")
    summary.wait_for()
    _expect_console(page, 422)
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    assert page.title().startswith("Error: ")
    said = summary.inner_text()
    assert "There is a problem" in said and "Choose an answer for physician global" in said
    assert "[rule" not in page.locator("main").inner_text()
    pga = page.locator("#f-pga")
    assert pga.get_attribute("aria-invalid") == "true"
    assert "Choose an answer" in page.locator("#e-pga").inner_text()
    _usable_at_320(chromium, server.url, (me, page.url.replace(server.url, "")), "entry-new")
    _check(page, "entry-errors")
    # The summary's link takes the keyboard to the question.
    summary.get_by_role("link", name=re.compile("physician global")).click()
    assert page.evaluate("document.activeElement.id") == "f-pga-0"
    for label in ("Outpatient clinic", "Quiescent", "Oral diet only"):
        page.get_by_label(label, exact=True).check()
    page.locator('[data-field="steroid_use"]').get_by_label("None", exact=True).check()
    _field(page, "weight_kg").locator("input").fill("45.0")
    page.locator('[data-calc="bmi"]').filter(has_text="20").wait_for()
    for field in ("pucai_pain", "pucai_bleeding", "pucai_consistency", "pucai_stools"):
        _field(page, field).locator("input").first.check()
    _field(page, "pucai_nocturnal").locator("input").first.check()
    _field(page, "pucai_activity").locator("input").nth(1).check()
    page.locator('[data-calc="pucai_category"]').filter(has_text="remission (0)").wait_for()
    page.get_by_role("button", name="Save as complete").click()
    page.wait_for_url(re.compile(r".*/patients/\d+\?saved=\d+"))
    notice = page.get_by_role("alert")
    assert notice.inner_text().strip() == (
        "Saved: IBD clinic visit for the visit on 2 November 2026, as complete."
    )
    assert page.evaluate("document.activeElement.hasAttribute('data-focus-on-load')")
    row = page.get_by_role("row").filter(has_text="IBD clinic visit")
    assert "complete" in row.inner_text() and "Type of visit: Outpatient clinic" in row.inner_text()
    _check(page, "patient-saved")
    _usable_at_320(chromium, server.url, (me, page.url.replace(server.url, "")), "patient")
    # Changing a completed form needs a reason; the read-only view shows the change.
    row.get_by_role("link", name="IBD clinic visit").click()
    page.get_by_role("link", name="Change this form").click()
    _field(page, "weight_kg").locator("input").fill("46.0")
    page.get_by_role("button", name="Save as complete").click()
    assert "Say why you are changing" in page.locator("[data-error-summary]").inner_text()
    _expect_console(page, 422)
    page.get_by_label(re.compile("Reason for change")).fill("Weighed again on calibrated scales")
    page.get_by_role("button", name="Save as complete").click()
    page.wait_for_url(re.compile(r".*/patients/\d+\?saved=\d+"))
    page.get_by_role("row").filter(has_text="IBD clinic visit").get_by_role(
        "link", name="IBD clinic visit"
    ).click()
    history = page.get_by_role("region", name="History of changes", exact=True).inner_text()
    assert "Weight: 45.0 → 46.0" in history and "Weighed again on calibrated scales" in history
    answers = page.get_by_role("region", name="Answers").inner_text()
    assert "Ulcerative colitis" in answers and "PUCAI activity" in answers
    _check(page, "response-view")
    _usable_at_320(chromium, server.url, (me, page.url.replace(server.url, "")), "response-view")


def test_a_data_entry_clerk_registers_a_patient_and_a_duplicate_is_refused(
    site_server, page, chromium
):
    inst, server = site_server
    me = (inst.emails["data_entry@A"], PASSWORD)
    login(page, server.url, *me)
    page.get_by_role("link", name="Patients").click()
    assert "Showing 1 to 2 of 2 patients" in page.get_by_role("main").inner_text()
    _check(page, "patients")
    _usable_at_320(chromium, server.url, (me, "/patients"), "patients")
    form = page.get_by_role("region", name="Register a new patient")
    form.get_by_label(re.compile("Local id")).fill("MRN-A-77")
    form.get_by_label("Given name").fill("Grace")
    form.get_by_label("Date of birth").fill("2014-05-06")
    form.get_by_role("button", name="Register the patient").click()
    notice = page.get_by_role("alert")
    assert "Registered: Grace (MRN-A-77, A)" in notice.inner_text()
    assert "Showing 1 to 3 of 3 patients" in page.get_by_role("main").inner_text()
    form.get_by_label(re.compile("Local id")).fill("MRN-A-77")
    form.get_by_role("button", name="Register the patient").click()
    summary = page.locator("[data-error-summary]")
    summary.wait_for()
    _expect_console(page, 409)
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    assert "already registered at A" in summary.inner_text()
    _check(page, "patients-duplicate")
    page.get_by_role("link", name="MRN-A-77", exact=True).click()
    assert page.get_by_role("heading", name=re.compile("Grace")).is_visible()


def test_a_patient_fills_a_prom_through_a_single_use_link(site_server, page, chromium):
    inst, server = site_server
    login(page, server.url, inst.emails["clinician@A"], PASSWORD)
    page.goto(server.url + f"/patients/{inst.patient_ids['A'][0]}")
    page.get_by_role("button", name=re.compile("Create a link for the patient")).click()
    link = page.locator("code.link").inner_text()
    assert "/prom/" in link
    patient_context = chromium.new_context()
    prom = patient_context.new_page()
    prom.goto(link)
    # The link's secret is swapped for a short session at once: it leaves the address bar.
    assert prom.url == server.url + "/prom"
    assert link.rsplit("/", 1)[1] not in prom.content()
    assert prom.get_by_role("heading", name="How my IBD has been (past 7 days)").is_visible()
    assert prom.locator('[data-field="contact_phone"]').is_hidden()
    prom.locator('[data-field="prom_date"] input').fill("2026-11-03")
    prom.get_by_label("Me (the patient)").check()
    for field in ("tummy_pain", "blood_in_stool", "urgency", "tiredness"):
        prom.locator(f'[data-field="{field}"] input').nth(1).check()
    prom.locator('[data-field="stools_worst_day"] input').fill("3")
    prom.locator('[data-field="symptom_score"] [data-calc]').filter(has_text="4").wait_for()
    # The slider starts with no answer; moving it fills the number, "Clear" empties it again.
    worry = prom.locator('[data-field="worry"]')
    assert worry.get_by_label(re.compile("worried")).input_value() == ""
    worry.locator('input[type="range"]').fill("70")
    assert worry.get_by_label(re.compile("worried")).input_value() == "70"
    worry.get_by_role("button", name="Clear").click()
    assert worry.get_by_label(re.compile("worried")).input_value() == ""
    prom.get_by_role("button", name="Send my answers").click()
    assert prom.get_by_role("heading", name="Thank you").is_visible()
    prom.goto(link)  # single use: the link no longer opens the form
    assert prom.get_by_role("heading", name="How my IBD has been (past 7 days)").count() == 0
    patient_context.close()
    # The staff page that showed the link was the answer to a POST: the link is in no address.
    assert "/prom/" not in page.url
    page.goto(server.url + f"/patients/{inst.patient_ids['A'][0]}")
    assert page.locator("code.link").count() == 0  # shown once only
    assert "patient" in page.get_by_role("row").filter(has_text="How my IBD").inner_text()
    stored = entry.list_responses(
        inst.registry, inst.operator, "ibd_symptoms_prom", patient_id=inst.patient_ids["A"][0]
    )
    assert "worry" not in stored[0].values  # never touched, never answered
