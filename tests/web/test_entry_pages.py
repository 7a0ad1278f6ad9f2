"""The care team's data-entry pages, served by the app: errors in plain words with a summary,
one visit date, saves confirmed, the read-only view with its history, patient lists.

Browser behaviour (focus, live checks, axe) is in test_browser_entry.py; these
tests read the HTML the server sends and what it stored and audited.
"""

from __future__ import annotations

import csv
import html as html_text
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from careloop.capture import entry
from careloop.store.models import Patient
from careloop.trust import patients
from careloop.trust.work import unit_of_work
from careloop.web.app import create_app
from tests.capture.registry_helpers import (
    VISIT,
    audit_seq,
    audit_since,
    crohns_visit,
    import_examples,
)
from tests.foundation import PASSWORD, Installation, build_installation, make_settings


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    installation = build_installation(make_settings(tmp_path_factory.mktemp("entry"), None))
    import_examples(installation)
    yield installation
    installation.registry.close()


@contextmanager
def signed_in(inst: Installation, who: str) -> Iterator[tuple[TestClient, str]]:
    """A browser session of ``who`` and its form token."""
    with TestClient(create_app(inst.settings)) as client:
        page = client.get("/login")
        token = _token(page.text)
        client.post(
            "/login", data={"email": inst.emails[who], "password": PASSWORD, "csrf_token": token}
        )
        yield client, _token(client.get("/").text)


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _text(html: str) -> str:
    """What a person reads: the page without tags, scripts or attribute values."""
    return html_text.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _summary(html: str) -> str:
    found = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert found is not None, "no error summary"
    return found.group(0)


def _post(client: TestClient, url: str, token: str, values: dict[str, Any], submit: str) -> Any:
    data: dict[str, Any] = {"csrf_token": token, **values}
    if submit:
        data["submit"] = submit
    return client.post(url, data=data, follow_redirects=False)


def test_a_refused_save_lists_each_problem_in_plain_words_linked_to_its_field(inst):
    patient = inst.patient_ids["A"][0]
    url = f"/patients/{patient}/forms/{VISIT}/new"
    values = crohns_visit("2026-10-01", pga=None, weight_kg="300.0", visit_type=None)
    with signed_in(inst, "clinician@A") as (client, token):
        refused = _post(client, url, token, values, "complete")
    assert refused.status_code == 422
    summary = _summary(refused.text)
    said = _text(summary)
    assert "There is a problem" in said
    assert "Choose an answer for type of visit" in said
    assert "Choose an answer for physician global assessment of disease activity" in said
    assert "Weight must be between 2 and 250 kg" in said
    # No rule names, internal form names or field names anywhere a person reads.
    page_words = _text(refused.text)
    for internal in ("[rule", "required when shown", VISIT, "weight_kg", "visit_type"):
        assert internal not in page_words
    # Each summary line links to its field: a group links to its first choice.
    links = re.findall(r'href="#([^"]+)"', summary)
    assert links == ["f-visit_type-0", "f-pga-0", "f-weight_kg"]
    for target in links:
        assert f'id="{target}"' in refused.text
    # A radio group is tied to its error: the fieldset is invalid and described by it.
    fieldset = re.search(r'<fieldset id="f-pga"[^>]*>', refused.text)
    assert fieldset is not None
    assert 'aria-invalid="true"' in fieldset.group(0)
    assert "e-pga" in fieldset.group(0)
    error = re.search(r'<p class="field-error" id="e-pga"[^>]*>([^<]*)</p>', refused.text)
    assert error is not None and error.group(1).startswith("Choose an answer")
    assert "<title>Error: " in refused.text


def test_the_visit_date_is_asked_once_and_becomes_the_responses_date(inst):
    patient = inst.patient_ids["A"][1]
    url = f"/patients/{patient}/forms/{VISIT}/new"
    with signed_in(inst, "clinician@A") as (client, token):
        page = client.get(url + "?date=2026-09-14")
        assert 'name="event_date"' not in page.text
        assert 'id="f-visit_date" name="visit_date" type="date" value="2026-09-14"' in page.text
        saved = _post(client, url, token, crohns_visit("2026-09-15"), "complete")
        assert saved.status_code == 303
        rid = int(saved.headers["location"].rsplit("saved=", 1)[1])
        # An empty visit date is refused even for a draft: it is part of the response's key.
        refused = _post(client, url, token, crohns_visit(None), "draft")
        assert refused.status_code == 422
        assert "Enter visit date" in _text(_summary(refused.text))
    stored = entry.get_response(inst.registry, inst.operator, rid)
    assert stored.event_date.isoformat() == "2026-09-15"


def test_enter_in_a_box_saves_nothing_and_a_post_without_a_button_is_a_draft(inst):
    patient = inst.patient_ids["A"][1]
    url = f"/patients/{patient}/forms/{VISIT}/new"
    with signed_in(inst, "clinician@A") as (client, token):
        page = client.get(url).text
        form = page[page.index('id="entry"') :]
        buttons = re.findall(r"<button[^>]*>", form)
        # The form's first submit button (the one Enter presses) is disabled.
        assert "disabled" in buttons[0] and 'type="submit"' in buttons[0]
        saved = _post(client, url, token, crohns_visit("2026-08-03"), "")
    rid = int(saved.headers["location"].rsplit("saved=", 1)[1])
    assert entry.get_response(inst.registry, inst.operator, rid).status == "draft"


def test_sections_hide_with_their_fields_and_ranges_show_before_they_are_broken(inst):
    patient = inst.patient_ids["A"][0]
    with signed_in(inst, "clinician@A") as (client, _token_):
        page = client.get(f"/patients/{patient}/forms/{VISIT}/new").text
        check = client.post(
            f"/entry/check/{VISIT}",
            json={"values": {"disease_type": "2", "pucai_pain": "5", "pucai_bleeding": "10"}},
            headers={"X-CSRF-Token": _token_},
        ).json()
    sections = re.findall(
        r'<div class="form-section" data-section( hidden)?>\s*(<h2[^>]*>[^<]*)?', page
    )
    shown = {_text(h).strip(): not hidden for hidden, h in sections if h}
    assert shown["Growth"] is True
    assert shown["Paediatric Ulcerative Colitis Activity Index (PUCAI)"] is False
    assert shown["Short Paediatric Crohn's Disease Activity Index (shPCDAI)"] is False
    assert '<p class="hint" id="h-height_cm">Between 40 and 220 cm</p>' in page
    assert "From 1 January 2000 to today" in page
    described = re.search(r'<input id="f-weight_kg"[^>]*>', page)
    assert described is not None and "h-weight_kg" in described.group(0)
    # A calculated category shows its words with its code (not "1" alone).
    with signed_in(inst, "clinician@A") as (client, token):
        values = {f"pucai_{k}": "0" for k in ("consistency", "stools", "nocturnal", "activity")}
        values.update(disease_type="2", pucai_pain="5", pucai_bleeding="10")
        check = client.post(
            f"/entry/check/{VISIT}", json={"values": values}, headers={"X-CSRF-Token": token}
        ).json()
    assert check["calc"]["pucai_total"] == "15"
    assert check["calc"]["pucai_category"] == "mild (1)"


def test_a_save_is_confirmed_on_the_patients_page_and_the_timeline_shows_key_values(inst):
    patient = inst.patient_ids["A"][0]
    url = f"/patients/{patient}/forms/{VISIT}/new"
    with signed_in(inst, "clinician@A") as (client, token):
        saved = _post(client, url, token, crohns_visit("2026-07-06"), "complete")
        landed = client.get(saved.headers["location"])
    notice = re.search(
        r'<div class="notice success" role="alert"[^>]*>(.*?)</div>', landed.text, re.S
    )
    assert notice is not None and "data-focus-on-load" in landed.text
    assert _text(notice.group(1)).strip() == (
        "Saved: IBD clinic visit for the visit on 6 July 2026, as complete."
    )
    row = re.search(r"<tr>\s*<td>2026-07-06</td>.*?</tr>", landed.text, re.S)
    assert row is not None
    said = _text(row.group(0))
    assert "Type of visit: Outpatient clinic" in said and "Disease type: Crohn" in said


def test_the_read_only_view_shows_answers_in_words_and_each_change_old_to_new(inst):
    patient = inst.patient_ids["A"][0]
    url = f"/patients/{patient}/forms/{VISIT}/new"
    with signed_in(inst, "clinician@A") as (client, token):
        saved = _post(client, url, token, crohns_visit("2026-06-01"), "complete")
        rid = int(saved.headers["location"].rsplit("saved=", 1)[1])
        version = entry.get_response(inst.registry, inst.operator, rid).version
        changed = crohns_visit("2026-06-01", weight_kg="29.0", pga="3")
        edit = {**changed, "version": str(version), "reason": "Weighed again"}
        assert _post(client, f"/responses/{rid}", token, edit, "complete").status_code == 303
        before = audit_seq(inst)
        view = client.get(f"/responses/{rid}/view")
    assert view.status_code == 200
    said = _text(view.text)
    assert "Disease type Crohn's disease" in said  # a label, not the code 1
    assert "Weight: 28.4 → 29.0" in said
    assert "Physician global assessment of disease activity: Mild → Moderate" in said
    assert "Weighed again" in said and inst.emails["clinician@A"] in said
    assert "Created" in said
    reads = [r for r in audit_since(inst, before) if r.category == "clinical"]
    assert any(json.loads(r.details).get("history") and r.patient_id == patient for r in reads)


def test_the_read_only_view_is_only_for_those_who_may_see_the_patient(inst):
    rid = entry.create_response(
        inst.registry,
        inst.operator,
        VISIT,
        patient_id=inst.patient_ids["A"][1],
        event_date="2026-05-05",
        values=crohns_visit("2026-05-05"),
        status="complete",
    ).id
    for who, status in (("clinician@B", 404), ("analyst", 403), ("auditor", 403)):
        with signed_in(inst, who) as (client, _):
            assert client.get(f"/responses/{rid}/view").status_code == status, who


def test_changes_made_before_history_was_kept_show_from_the_audit_trail(inst):
    """A response saved by a bulk path keeps no values; its history names the fields."""
    with unit_of_work(inst.registry, inst.operator, "record.write") as work:
        item = entry.ResponseToSave(
            VISIT,
            work.session.get(Patient, inst.patient_ids["A"][1]),
            date(2026, 4, 4),
            crohns_visit("2026-04-04"),
            "complete",
        )
        [made] = entry.save_responses(work, [item], reason="import", via="test")
    response = entry.get_response(inst.registry, inst.operator, made.response_id)
    entry.update_response(
        inst.registry,
        inst.operator,
        made.response_id,
        values=crohns_visit("2026-04-04", height_cm="132.0"),
        expected_version=response.version,
        reason="Measured again",
    )
    history = entry.response_history(inst.registry, inst.operator, made.response_id)
    first, second = history.revisions
    assert first.action == "created" and not first.values_kept
    assert {c.field for c in first.changes} >= {"height_cm", "weight_kg"}
    assert second.values_kept and second.reason == "Measured again"
    assert [(c.field, c.old, c.new) for c in second.changes] == [
        ("height_cm", "131.5", "132.0"),
        ("bmi", "16.4", "16.3"),  # calculated again from the new height
    ]


def test_the_patient_list_pages_through_the_callers_patients_with_a_total(inst):
    for i in range(30):
        patients.register_patient(
            inst.registry,
            inst.operator,
            site="B",
            local_id=f"PAGE-{i:02d}",
            consent_state="direct_care_only",
        )
    with signed_in(inst, "clinician@B") as (client, _):
        first = _text(client.get("/patients?q=PAGE-&size=25").text)
        second = client.get("/patients?q=PAGE-&size=25&page=2").text
    assert "Showing 1 to 25 of 30 patients" in first and "Page 1 of 2" in first
    assert "PAGE-24" in first and "PAGE-25" not in first
    assert "Showing 26 to 30 of 30 patients" in _text(second)
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert "MRN-A-1" not in first  # only the caller's site


def test_the_patient_list_exports_as_spreadsheet_safe_csv_and_the_export_is_audited(inst):
    patients.register_patient(
        inst.registry,
        inst.operator,
        site="A",
        local_id="CSV-1",
        given_name='=HYPERLINK("http://x")',
        consent_state="direct_care_only",
    )
    before = audit_seq(inst)
    with signed_in(inst, "clinician@A") as (client, _):
        got = client.get("/patients.csv?q=CSV-")
    assert got.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows[0][:2] == ["site", "local_id"]
    assert rows[1][1] == "CSV-1" and rows[1][2].startswith("'=HYPERLINK")
    [read] = [r for r in audit_since(inst, before) if "export" in json.loads(r.details or "{}")]
    assert read.category == "demographics" and json.loads(read.details)["results"] == 1


def test_a_patient_is_registered_at_one_of_the_callers_sites_and_a_duplicate_is_refused(inst):
    new = {"site": "A", "local_id": "NEW-7", "given_name": "Ada", "birth_date": "2015-02-03"}
    with signed_in(inst, "data_entry@A") as (client, token):
        page = client.get("/patients").text
        assert re.findall(r'<option value="([AB])"', page) == ["A"]  # only their own site
        made = client.post("/patients", data={**new, "csrf_token": token}, follow_redirects=False)
        assert made.status_code == 303
        landed = _text(client.get(made.headers["location"]).text)
        assert "Registered: Ada (NEW-7, A)" in landed
        again = client.post("/patients", data={**new, "csrf_token": token})
        assert again.status_code == 409
        assert "already registered at A" in _text(_summary(again.text))
        other = client.post(
            "/patients", data={**new, "site": "B", "local_id": "NEW-8", "csrf_token": token}
        )
        assert other.status_code == 422 and "Choose one of your sites" in _text(other.text)
        bad = client.post(
            "/patients",
            data={**new, "local_id": "NEW-9", "birth_date": "2999-01-01", "csrf_token": token},
        )
        assert bad.status_code == 422
        assert "Enter a date of birth between 1900 and today" in _text(_summary(bad.text))
    found = patients.search_patients(inst.registry, inst.operator, text="NEW-")
    assert [p.local_id for p in found] == ["NEW-7"]


def test_roles_that_may_not_register_see_no_form_and_are_refused(inst):
    with signed_in(inst, "analyst") as (client, token):
        refused = client.post(
            "/patients", data={"site": "A", "local_id": "NOPE", "csrf_token": token}
        )
    assert refused.status_code in (403, 422)
    assert not patients.search_patients(inst.registry, inst.operator, text="NOPE")


def test_ids_no_row_can_have_are_refusals_not_server_errors(inst):
    with signed_in(inst, "clinician@A") as (client, _):
        assert client.get(f"/responses/{2**63}/view").status_code in (404, 422)
        assert client.get(f"/patients?registered={2**70}").status_code == 422
        assert client.get(f"/patients/{inst.patient_ids['A'][0]}?saved={2**70}").status_code == 422
        # A patient the caller cannot see: the list, without a notice.
        listed = client.get(f"/patients?registered={inst.patient_ids['B'][0]}")
        assert listed.status_code == 200 and "Registered:" not in listed.text
