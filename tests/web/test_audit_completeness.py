"""Every identifiable read or write through the API leaves exactly one audit entry."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text


def _entries_for(installation, request_id):
    with installation.registry.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT action, category, outcome, patient_id, reason, user_email FROM audit_entry WHERE request_id = :r"
            ),
            {"r": request_id},
        ).all()


def _call(api, installation, user, method, url, body=None, headers=None):
    h = {"Authorization": f"Bearer {installation.tokens[user]}", **(headers or {})}
    return api.request(method, url, json=body, headers=h)


@pytest.mark.parametrize("user", ["clinician@A", "data_entry@A", "site_lead@A"])
def test_each_identifiable_request_writes_exactly_one_entry(api, installation, user):
    created = _call(
        api,
        installation,
        user,
        "POST",
        "/api/patients",
        {
            "site": "A",
            "local_id": f"AUD-{user}",
            "given_name": "Ann",
            "birth_date": "2015-05-05",
            "consent_state": "improvement_and_research",
        },
    )
    assert created.status_code == 201
    pid = created.json()["id"]
    steps = [
        ("create", created, pid),
        ("read", _call(api, installation, user, "GET", f"/api/patients/{pid}"), pid),
        (
            "update",
            _call(
                api,
                installation,
                user,
                "PATCH",
                f"/api/patients/{pid}",
                {"reason": "spelling", "changes": {"given_name": "Anne"}},
                {"If-Match": created.headers["etag"]},
            ),
            pid,
        ),
        (
            "update",
            _call(
                api,
                installation,
                user,
                "POST",
                f"/api/patients/{pid}/consent",
                {"state": "direct_care_only", "method": "verbal"},
            ),
            pid,
        ),
        ("read", _call(api, installation, user, "GET", f"/api/patients/{pid}/consent"), pid),
        ("read", _call(api, installation, user, "GET", "/api/patients?q=Anne"), None),
    ]
    if user == "site_lead@A":
        steps.append(
            (
                "delete",
                _call(api, installation, user, "DELETE", f"/api/patients/{pid}?reason=duplicate"),
                pid,
            )
        )
    for action, response, patient_id in steps:
        assert response.status_code < 300, (action, response.text)
        entries = _entries_for(installation, response.headers["x-request-id"])
        assert len(entries) == 1, (action, entries)
        entry = entries[0]
        assert entry.action == action and entry.outcome == "success"
        assert entry.user_email == installation.emails[user]
        if patient_id is not None:
            assert entry.patient_id == patient_id


def test_an_edit_without_a_reason_is_refused_and_changes_nothing(api, installation):
    pid = installation.patient_ids["A"][0]
    before = _call(api, installation, "clinician@A", "GET", f"/api/patients/{pid}").json()
    response = _call(
        api,
        installation,
        "clinician@A",
        "PATCH",
        f"/api/patients/{pid}",
        {"reason": " ", "changes": {"given_name": "Changed"}},
    )
    assert response.status_code == 422
    after = _call(api, installation, "clinician@A", "GET", f"/api/patients/{pid}").json()
    assert after == before


def test_a_stale_write_is_a_conflict_and_changes_nothing(api, installation):
    pid = installation.patient_ids["A"][1]
    read = _call(api, installation, "clinician@A", "GET", f"/api/patients/{pid}")
    etag = read.headers["etag"]
    first = _call(
        api,
        installation,
        "clinician@A",
        "PATCH",
        f"/api/patients/{pid}",
        {"reason": "correction", "changes": {"sex": "other"}},
        {"If-Match": etag},
    )
    assert first.status_code == 200
    stale = _call(
        api,
        installation,
        "data_entry@A",
        "PATCH",
        f"/api/patients/{pid}",
        {"reason": "correction", "changes": {"sex": "male"}},
        {"If-Match": etag},
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    assert (
        _call(api, installation, "clinician@A", "GET", f"/api/patients/{pid}").json()["sex"]
        == "other"
    )
    entries = _entries_for(installation, stale.headers["x-request-id"])
    assert [(e.action, e.outcome) for e in entries] == [("update", "failure")]


def test_a_refused_cross_site_read_is_audited_as_not_found(api, installation):
    pid = installation.patient_ids["B"][0]
    response = _call(api, installation, "clinician@A", "GET", f"/api/patients/{pid}")
    assert response.status_code == 404
    entries = _entries_for(installation, response.headers["x-request-id"])
    assert [(e.action, e.outcome) for e in entries] == [("read", "not_found")]


def test_the_audit_report_filters_and_exports_csv(api, installation):
    pid = installation.patient_ids["A"][0]
    _call(api, installation, "clinician@A", "GET", f"/api/patients/{pid}")
    rows = _call(
        api, installation, "auditor", "GET", f"/api/audit?patient={pid}&action=read"
    ).json()
    assert rows and all(r["patient_id"] == pid and r["action"] == "read" for r in rows)
    csv_text = _call(
        api, installation, "auditor", "GET", "/api/audit?format=csv&action=login_failed"
    ).text
    assert csv_text.splitlines()[0].startswith("seq,occurred_at,user_id")
    assert (
        json.loads(_call(api, installation, "auditor", "GET", "/api/audit/verify").text)["intact"]
        is True
    )
