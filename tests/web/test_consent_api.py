"""`POST /api/patients/{id}/consent` takes a preset state or one purpose; GET shows purposes."""

from __future__ import annotations

from careloop.trust import patients


def _bearer(installation, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {installation.tokens[who]}"}


def _new_patient(installation, local_id: str) -> int:
    return patients.register_patient(
        installation.registry,
        installation.operator,
        site="A",
        local_id=local_id,
        consent_state="improvement_and_research",
    ).id


def test_the_care_team_changes_one_purpose_and_a_repeat_says_it_changed_nothing(api, installation):
    pid = _new_patient(installation, "API-C-1")
    body = {"purpose": "research", "given": False, "method": "electronic"}
    sent = api.post(
        f"/api/patients/{pid}/consent", json=body, headers=_bearer(installation, "clinician@A")
    )
    assert sent.status_code == 200, sent.text
    assert sent.headers["consent-changed"] == "true"
    assert sent.json()["consent"] == {
        "direct_care": True,
        "quality_improvement": True,
        "research": False,
        "recontact": False,
    }
    assert sent.json()["consent_state"] == "improvement_only"
    again = api.post(
        f"/api/patients/{pid}/consent", json=body, headers=_bearer(installation, "clinician@A")
    )
    assert again.status_code == 200 and again.headers["consent-changed"] == "false"
    read = api.get(f"/api/patients/{pid}", headers=_bearer(installation, "clinician@A"))
    assert read.json()["consent"]["research"] is False
    history = api.get(f"/api/patients/{pid}/consent", headers=_bearer(installation, "clinician@A"))
    assert [(h["purpose"], h["given"]) for h in history.json()] == [
        (None, None),
        ("research", False),
    ]


def test_a_preset_state_still_works_and_a_mixed_body_is_refused(api, installation):
    pid = _new_patient(installation, "API-C-2")
    headers = _bearer(installation, "clinician@A")
    preset = api.post(
        f"/api/patients/{pid}/consent",
        json={"state": "direct_care_only", "method": "paper"},
        headers=headers,
    )
    assert preset.status_code == 200 and preset.json()["consent"]["quality_improvement"] is False
    for bad in (
        {"state": "withdrawn", "purpose": "research", "given": False, "method": "paper"},
        {"purpose": "research", "method": "paper"},
        {"method": "paper"},
        {"purpose": "marketing", "given": True, "method": "paper"},
    ):
        refused = api.post(f"/api/patients/{pid}/consent", json=bad, headers=headers)
        assert refused.status_code == 422, bad


def test_a_patient_changes_their_own_purposes_and_no_one_elses(api, installation):
    own = installation.patient_user_of["patient@A"]
    other = installation.patient_user_of["carer@A"]
    headers = _bearer(installation, "patient@A")
    body = {"purpose": "recontact", "given": True, "method": "portal"}
    mine = api.post(f"/api/patients/{own}/consent", json=body, headers=headers)
    assert mine.status_code == 200 and mine.json()["consent"]["recontact"] is True
    theirs = api.post(f"/api/patients/{other}/consent", json=body, headers=headers)
    assert theirs.status_code == 404


def test_the_patient_page_shows_each_purpose_and_the_history(api, installation):
    pid = _new_patient(installation, "API-C-4")
    headers = _bearer(installation, "clinician@A")
    api.post(
        f"/api/patients/{pid}/consent",
        json={"purpose": "research", "given": False, "method": "verbal", "note": "phoned"},
        headers=headers,
    )
    page = api.get(f"/patients/{pid}", headers={**headers, "accept": "text/html"})
    assert page.status_code == 200, page.text
    text = " ".join(page.text.split())
    assert "<td>quality improvement</td><td>yes</td>" in text
    assert "<td>research</td><td>no</td>" in text
    assert "research: withdrawn</td><td>verbal</td>" in text and "phoned" in text
    assert "Summary: improvement only" in text
