"""PROM outreach on the web: the API, the care team's page and the patient's questionnaires.

Shares the module's installation with nothing else: the job acts on every open
invitation of a site, so counts are taken relative to before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.capture.registry_helpers import PROM, import_examples


@pytest.fixture(scope="module")
def scheduled(installation):
    import_examples(installation)
    return installation


def _as(inst, who):
    return {"Authorization": f"Bearer {inst.tokens[who]}"}


def test_the_care_team_schedules_books_runs_the_job_and_the_patient_sees_only_their_own(
    api, scheduled
):
    inst = scheduled
    clinician = _as(inst, "clinician@A")
    made = api.post(
        "/api/outreach/schedules",
        json={"site": "A", "form": PROM, "kind": "before_visit", "days": 7},
        headers=clinician,
    )
    assert made.status_code == 201, made.text
    assert made.json()["timing"] == "7 days before each visit"
    bad = api.post(
        "/api/outreach/schedules",
        json={"site": "A", "form": PROM, "kind": "before_visit"},
        headers=clinician,
    )
    assert bad.status_code == 422 and "days" in bad.text
    visit_day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    own, proxied = inst.patient_ids["A"]
    for patient_id in (own, proxied):
        booked = api.post(
            "/api/planned-visits",
            json={"patient_id": patient_id, "visit_date": visit_day},
            headers=clinician,
        )
        assert booked.status_code == 201, booked.text
    before = len(api.get("/api/outreach/invitations", headers=clinician).json())
    run = api.post("/api/outreach/send-due", json={"site": "A"}, headers=clinician)
    assert run.status_code == 200, run.text
    assert run.json()["created"] >= 2 and run.json()["sent"] >= 2  # into the outbox folder
    again = api.post("/api/outreach/send-due", json={}, headers=clinician)
    assert again.json()["created"] == 0 and again.json()["sent"] == 0
    log = api.get("/api/outreach/invitations?site=A", headers=clinician).json()
    assert len(log) == before + 2 and {r["channel"] for r in log[-2:]} == {"outbox"}
    assert api.get("/api/outreach/invitations?month=2026-13", headers=clinician).status_code == 422

    mine = api.get("/api/my/questionnaires", headers=_as(inst, "patient@A")).json()
    assert {q["patient_id"] for q in mine} == {own}
    cared = api.get("/api/my/questionnaires", headers=_as(inst, "carer@A")).json()
    assert {q["patient_id"] for q in cared} == {proxied}
    assert api.get("/api/outreach/invitations", headers=_as(inst, "patient@A")).status_code == 403
    assert api.get("/api/outreach/invitations", headers=_as(inst, "clinician@B")).json() == []

    page = api.get("/outreach", headers=clinician)
    assert page.status_code == 200 and "Invitation log" in page.text and "MRN-A-1" in page.text
    assert "7 days before each visit" in page.text
    portal = api.get("/my", headers=_as(inst, "patient@A"))
    assert portal.status_code == 200 and "Questionnaires to fill in" in portal.text
    (asked,) = mine
    (other,) = cared
    assert f'action="/my/questionnaires/{asked["invitation_id"]}"' in portal.text
    assert f"/my/questionnaires/{other['invitation_id']}" not in portal.text
    assert "/prom/" not in portal.text
    # "Fill it in" makes a fresh link with the patient's own rights and swaps it for a
    # short session at once: the browser lands on the PROM form, no secret in any address.
    fill = api.post(
        f"/my/questionnaires/{asked['invitation_id']}",
        headers=_as(inst, "patient@A"),
        follow_redirects=False,
    )
    assert fill.status_code == 303 and fill.headers["location"] == "/prom"
    assert "/prom/" not in fill.headers["location"] and "careloop_prom" in fill.cookies
    form = api.get("/prom")  # the client keeps the session cookie it was given
    assert form.status_code == 200 and "tummy" in form.text.lower()
    # Another family's questionnaire is not found for the patient, and the carer of the
    # other patient cannot open this one: refused, nothing made.
    for who, invitation in (("patient@A", other), ("carer@A", asked)):
        refused = api.post(
            f"/my/questionnaires/{invitation['invitation_id']}",
            headers=_as(inst, who),
            follow_redirects=False,
        )
        assert refused.status_code == 404, refused.text
    assert (
        api.get("/outreach", headers=_as(inst, "patient@A"), follow_redirects=False).status_code
        == 303
    )


def test_the_completion_chart_says_plainly_when_there_is_nothing_settled_to_chart(api, scheduled):
    answer = api.get("/outreach/completion/A/chart.svg", headers=_as(scheduled, "clinician@B"))
    assert answer.status_code == 422 and "settled" in answer.text
