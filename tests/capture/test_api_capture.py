"""The capture JSON API: forms, responses with ETags, timelines, PROM links, audit per request."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from careloop.capture import example_file
from careloop.core.clock import utcnow
from careloop.store.models.capture import PromLink
from tests.capture.registry_helpers import PROM, VISIT, crohns_visit, import_examples, prom_answers


@pytest.fixture(scope="module", autouse=True)
def _forms(installation):
    import_examples(installation)


def _call(api, inst, user, method, url, body=None, headers=None, request_id=None):
    h = {"Authorization": f"Bearer {inst.tokens[user]}", **(headers or {})}
    if request_id:
        h["X-Request-Id"] = request_id
    return api.request(method, url, json=body, headers=h)


def _entries(inst, request_id):
    with inst.registry.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT action, category, outcome, patient_id, reason FROM audit_entry "
                "WHERE request_id = :r"
            ),
            {"r": request_id},
        ).all()


def test_forms_are_listed_shown_and_exported_in_each_format(api, installation):
    listing = _call(api, installation, "clinician@A", "GET", "/api/forms").json()
    assert {f["name"]: f["patient_reported"] for f in listing} == {VISIT: False, PROM: True}
    shown = _call(api, installation, "patient@A", "GET", f"/api/forms/{PROM}").json()
    assert shown["current"] and shown["definition"]["name"] == PROM
    assert len(shown["versions"]) == 1
    for fmt, marker in (
        ("redcap", "Variable / Field Name"),
        ("yaml", "format: careloop.forms/1"),
        ("questionnaire", '"resourceType": "Questionnaire"'),
    ):
        exported = _call(
            api, installation, "clinician@A", "GET", f"/api/forms/{VISIT}?format={fmt}"
        )
        assert exported.status_code == 200 and marker in exported.text
    missing = _call(api, installation, "clinician@A", "GET", "/api/forms/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_only_an_admin_imports_a_dictionary_and_the_same_content_adds_no_version(api, installation):
    body = example_file("yaml")
    headers = {"Content-Type": "application/yaml"}
    for user in ("clinician@A", "site_lead@A"):
        refused = api.post(
            "/api/forms?format=yaml",
            content=body,
            headers={"Authorization": f"Bearer {installation.tokens[user]}", **headers},
        )
        assert refused.status_code == 403
    done = api.post(
        "/api/forms?format=yaml",
        content=body,
        headers={"Authorization": f"Bearer {installation.tokens['admin']}", **headers},
    )
    assert done.status_code == 201
    assert [(f["name"], f["new_version"]) for f in done.json()] == [(VISIT, False), (PROM, False)]
    bad = api.post(
        "/api/forms?format=redcap",
        content=b"not,a,dictionary\n",
        headers={"Authorization": f"Bearer {installation.tokens['admin']}"},
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"]


def test_entry_validates_every_field_at_once_and_stale_writes_get_409(api, installation):
    pid = installation.patient_ids["A"][0]
    url = f"/api/forms/{VISIT}/responses"
    invalid = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        url,
        {
            "patient_id": pid,
            "event_date": "2024-05-01",
            "status": "complete",
            "values": crohns_visit("2024-05-01", pga="7", height_cm="x"),
        },
    )
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert error["code"] == "validation_failed"
    assert {d["location"] for d in error["details"]} == {"pga", "height_cm"}
    assert {d.get("value") for d in error["details"]} == {"7", "x"}

    created = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        url,
        {"patient_id": pid, "event_date": "2024-05-01", "values": {"pga": "2"}},
    )
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    location = created.headers["location"]
    read = _call(api, installation, "data_entry@A", "GET", location)
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    first = _call(
        api,
        installation,
        "data_entry@A",
        "PUT",
        location,
        {"values": {"pga": "3"}},
        {"If-Match": '"1"'},
    )
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    stale = _call(
        api,
        installation,
        "clinician@A",
        "PUT",
        location,
        {"values": {"pga": "4"}},
        {"If-Match": '"1"'},
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    assert _call(api, installation, "clinician@A", "GET", location).json()["values"] == {"pga": "3"}
    duplicate = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        url,
        {"patient_id": pid, "event_date": "2024-05-01", "values": {}},
    )
    assert duplicate.status_code == 409


def test_a_complete_response_is_edited_only_with_a_reason(api, installation):
    pid = installation.patient_ids["A"][1]
    created = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        f"/api/forms/{VISIT}/responses",
        {
            "patient_id": pid,
            "event_date": "2024-05-02",
            "status": "complete",
            "values": crohns_visit("2024-05-02"),
        },
    )
    assert created.status_code == 201
    location = created.headers["location"]
    change = {"values": crohns_visit("2024-05-02", nutrition="2")}
    refused = _call(api, installation, "clinician@A", "PUT", location, change)
    assert refused.status_code == 422 and "reason for change" in refused.json()["error"]["message"]
    rid = f"reason-{uuid.uuid4().hex[:8]}"
    done = _call(
        api,
        installation,
        "clinician@A",
        "PUT",
        location,
        {**change, "reason": "diet recorded on the wrong line"},
        request_id=rid,
    )
    assert done.status_code == 200
    assert [(e.action, e.reason) for e in _entries(installation, rid)] == [
        ("update", "diet recorded on the wrong line")
    ]


def test_site_a_users_get_404_for_site_b_responses_and_timelines(api, installation):
    b = installation.patient_ids["B"][0]
    created = _call(
        api,
        installation,
        "clinician@B",
        "POST",
        f"/api/forms/{VISIT}/responses",
        {"patient_id": b, "event_date": "2024-05-03", "values": {"pga": "1"}},
    )
    location = created.headers["location"]
    for user in ("clinician@A", "site_lead@A", "data_entry@A", "patient@A", "carer@A"):
        assert _call(api, installation, user, "GET", location).status_code == 404, user
        assert (
            _call(api, installation, user, "GET", f"/api/patients/{b}/timeline").status_code == 404
        )
        listing = _call(api, installation, user, "GET", f"/api/forms/{VISIT}/responses")
        assert all(r["site"] == "A" for r in listing.json()), user
    assert _call(api, installation, "analyst@A", "GET", location).status_code == 403


def test_one_audit_entry_per_identifiable_request(api, installation):
    pid = installation.patient_ids["A"][0]
    rid = f"one-{uuid.uuid4().hex[:8]}"
    created = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        f"/api/forms/{VISIT}/responses",
        {"patient_id": pid, "event_date": "2024-05-04", "values": {}},
        request_id=rid,
    )
    location = created.headers["location"]
    steps = [
        (rid, "create"),
        (f"{rid}-r", "read", ("GET", location, None)),
        (f"{rid}-u", "update", ("PUT", location, {"values": {"pga": "1"}})),
        (f"{rid}-l", "read", ("GET", f"/api/forms/{VISIT}/responses?patient={pid}", None)),
        (f"{rid}-t", "read", ("GET", f"/api/patients/{pid}/timeline", None)),
        (f"{rid}-x", "read", ("GET", f"/api/forms/{VISIT}/responses/999999", None)),
    ]
    for step in steps:
        request_id, action = step[0], step[1]
        if len(step) == 3:
            method, url, body = step[2]
            _call(api, installation, "clinician@A", method, url, body, request_id=request_id)
        entries = _entries(installation, request_id)
        assert len(entries) == 1, (request_id, entries)
        assert entries[0].action == action
    assert _entries(installation, f"{rid}-x")[0].outcome == "not_found"


def test_a_prom_link_works_once_without_login_and_marks_the_answers_patient_entered(
    api, installation
):
    pid = installation.patient_ids["A"][0]
    link = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        f"/api/forms/{PROM}/prom-links",
        {"patient_id": pid, "expires_in_hours": 24},
    )
    assert link.status_code == 201
    token = link.json()["token"]
    assert link.json()["path"] == f"/prom/{token}"
    opened = api.get(f"/api/prom/{token}")
    assert opened.status_code == 200 and opened.json()["form"] == PROM
    assert "MRN" not in opened.text and "Given" not in opened.text
    invalid = api.post(f"/api/prom/{token}", json={"values": {"tummy_pain": "9"}})
    assert invalid.status_code == 422  # the link stays usable
    rid = f"prom-{uuid.uuid4().hex[:8]}"
    sent = api.post(
        f"/api/prom/{token}",
        json={"values": prom_answers("2024-05-05"), "event_date": "2024-05-05"},
        headers={"X-Request-Id": rid},
    )
    assert sent.status_code == 201 and sent.json()["status"] == "complete"
    assert [(e.action, e.patient_id) for e in _entries(installation, rid)] == [("create", pid)]
    again = api.post(f"/api/prom/{token}", json={"values": prom_answers()})
    assert again.status_code == 404 and "already used" in again.json()["error"]["message"]
    assert api.get(f"/api/prom/{token}").status_code == 404
    stored = _call(
        api, installation, "clinician@A", "GET", f"/api/forms/{PROM}/responses?patient={pid}"
    )
    assert any(r["patient_entered"] and r["event_date"] == "2024-05-05" for r in stored.json())


def test_an_expired_or_unknown_prom_link_is_refused(api, installation):
    pid = installation.patient_ids["A"][1]
    link = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        f"/api/forms/{PROM}/prom-links",
        {"patient_id": pid},
    ).json()
    with installation.registry.engine.begin() as conn:
        conn.execute(
            update(PromLink)
            .where(PromLink.id == link["id"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    expired = api.post(f"/api/prom/{link['token']}", json={"values": prom_answers()})
    assert expired.status_code == 404 and "expired" in expired.json()["error"]["message"]
    assert api.get("/api/prom/prom_not-a-real-token").status_code == 404
    staff_form = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        f"/api/forms/{VISIT}/prom-links",
        {"patient_id": pid},
    )
    assert staff_form.status_code == 422
    other_site = _call(
        api,
        installation,
        "clinician@A",
        "POST",
        f"/api/forms/{PROM}/prom-links",
        {"patient_id": installation.patient_ids["B"][0]},
    )
    assert other_site.status_code == 404
