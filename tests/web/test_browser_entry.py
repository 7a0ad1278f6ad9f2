"""Data entry in a real browser: branching live in the page, validation on the server, PROM links."""

from __future__ import annotations

import re

import pytest

from careloop.capture import entry, forms_store
from careloop.capture.examples import example_file
from tests.foundation import PASSWORD, build_installation, make_settings
from tests.live import login, start_server, stop_server

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


def test_a_clinician_records_a_visit_with_live_branching_and_server_validation(site_server, page):
    inst, server = site_server
    login(page, server.url, inst.emails["clinician@A"], PASSWORD)
    page.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="MRN-A-1").click()
    page.get_by_role("button", name="New IBD clinic visit").click()
    page.locator('#entry[data-live="ready"]').wait_for()  # the page script has started
    # Disease scores are hidden until the disease type says which one applies.
    assert _field(page, "pucai_pain").is_hidden() and _field(page, "shpcdai_pain").is_hidden()
    page.get_by_label("Ulcerative colitis").check()
    _field(page, "pucai_pain").wait_for(state="visible")
    assert _field(page, "shpcdai_pain").is_hidden()
    # Saving with required answers missing: the server lists every problem, nothing is saved.
    page.get_by_role("button", name="Save as complete").click()
    assert page.get_by_role("alert").inner_text().startswith("1")
    assert "required" in _field(page, "pga").inner_text().lower()
    _expect_console(page, 422)
    _field(page, "visit_date").locator("input").fill("2026-11-02")
    for label in ("Outpatient clinic", "Quiescent", "Oral diet only"):
        page.get_by_label(label, exact=True).check()
    page.locator('[data-field="steroid_use"]').get_by_label("None", exact=True).check()
    _field(page, "height_cm").locator("input").fill("150.0")
    _field(page, "weight_kg").locator("input").fill("45.0")
    page.locator('[data-calc="bmi"]').filter(has_text="20").wait_for()
    for field in (
        "pucai_pain",
        "pucai_bleeding",
        "pucai_consistency",
        "pucai_stools",
        "pucai_nocturnal",
        "pucai_activity",
    ):
        _field(page, field).locator("input").first.check()
    page.get_by_role("button", name="Save as complete").click()
    page.wait_for_url(re.compile(r".*/patients/\d+\?saved=ibd_visit"))
    row = page.get_by_role("row").filter(has_text="IBD clinic visit")
    assert "complete" in row.inner_text()
    # Editing a completed form needs a reason for change.
    row.get_by_role("link").click()
    _field(page, "weight_kg").locator("input").fill("46.0")
    page.get_by_role("button", name="Save as complete").click()
    assert "reason" in page.get_by_role("alert").inner_text().lower()
    _expect_console(page, 422)
    page.get_by_label("Reason for change").fill("Weighed again on calibrated scales")
    page.get_by_role("button", name="Save as complete").click()
    page.wait_for_url(re.compile(r".*/patients/\d+\?saved=ibd_visit"))


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
