"""Event dates in range, and ids and names without control characters or excess length, on
every path that stores them (issue 14: a PROM link stored a response dated 2099-12-31, a NUL
byte in a record id created a patient)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from careloop.capture.event_dates import event_date_problem, latest_event_date
from careloop.capture.records_io import import_records
from careloop.core.errors import ValidationFailed
from careloop.trust import identity
from tests.capture.registry_helpers import (
    PROM,
    VISIT,
    crohns_visit,
    import_examples,
    principal,
    prom_answers,
    records_csv,
    visit_rows,
)
from tests.foundation import PASSWORD


@pytest.fixture(scope="module", autouse=True)
def _forms(installation):
    import_examples(installation)


def _call(api, inst, user, method, url, body=None):
    return api.request(
        method, url, json=body, headers={"Authorization": f"Bearer {inst.tokens[user]}"}
    )


def _site_today() -> date:
    return datetime.now(ZoneInfo("Europe/London")).date()  # the test sites' time zone


def test_the_latest_event_date_is_tomorrow_in_the_site_s_time_zone():
    now = datetime(2026, 3, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert latest_event_date("Pacific/Auckland", now=now) == date(2026, 3, 3)
    assert latest_event_date("America/Los_Angeles", now=now) == date(2026, 3, 2)
    assert latest_event_date("Not/AZone", now=now) == date(2026, 3, 2)  # UTC then
    assert event_date_problem(date(1899, 12, 31), latest=date(2026, 3, 2)) is not None
    assert event_date_problem(date(1900, 1, 1), latest=date(2026, 3, 2)) is None


def test_a_prom_link_refuses_an_answer_dated_2099_and_stays_usable(api, installation):
    pid = installation.patient_ids["A"][0]
    link = _call(
        api, installation, "clinician@A", "POST", f"/api/forms/{PROM}/prom-links",
        {"patient_id": pid, "expires_in_hours": 24},
    )  # fmt: skip
    token = link.json()["token"]
    sent = api.post(
        f"/api/prom/{token}",
        json={"values": prom_answers("2024-05-06"), "event_date": "2099-12-31"},
    )
    assert sent.status_code == 422, sent.text
    (detail,) = sent.json()["error"]["details"]
    assert detail["location"] == "event_date" and "check the year" in detail["message"]
    assert api.get(f"/api/prom/{token}").status_code == 200  # not used up


@pytest.mark.parametrize(
    ("offset", "status"), [(None, 422), (-365 * 200, 422), (1, 201), (2, 422), (0, 201)]
)
def test_a_response_s_event_date_lies_between_1900_and_tomorrow_at_the_site(
    api, installation, offset, status
):
    day = "1899-12-31" if offset is None else (_site_today() + timedelta(days=offset)).isoformat()
    pid = installation.patient_ids["A"][1]
    response = _call(
        api, installation, "clinician@A", "POST", f"/api/forms/{VISIT}/responses",
        {"patient_id": pid, "event_date": day, "values": crohns_visit("2024-03-01")},
    )  # fmt: skip
    assert response.status_code == status, (day, response.text)


def test_a_records_import_rejects_rows_dated_out_of_range(installation):
    lead = principal(installation, "site_lead@A")
    rows = visit_rows(3, prefix="FUT")
    rows[1]["event_date"] = "2099-12-31"
    report = import_records(
        installation.registry, lead, VISIT, records_csv(VISIT, rows), "A", mode="row-level"
    )
    dated = [p for p in report.problems if p.field == "event_date"]
    assert [(p.row, p.value) for p in dated] == [(3, "2099-12-31")]
    assert "check the year" in dated[0].reason
    assert report.created == 2


def test_a_nul_byte_in_a_record_id_creates_no_patient(installation):
    lead = principal(installation, "site_lead@A")
    data = records_csv(VISIT, visit_rows(2, prefix="NUL")).replace(b"NUL-", b"NUL\x00-", 1)
    report = import_records(installation.registry, lead, VISIT, data, "A")
    assert not report.written
    (problem,) = [p for p in report.problems if p.field == "record_id"]
    assert "control characters (U+0000)" in problem.reason
    with installation.registry.engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM patient WHERE local_id LIKE 'NUL%'")
        ).scalar_one()
    assert found == 0


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("local_id", "MRN\x00-7", "control characters (U+0000)"),
        ("local_id", "M" * 65, "at most 64 characters"),
        ("given_name", "Ada\nLovelace", "control characters (U+000A)"),
        ("family_name", "L" * 201, "at most 200 characters (this one has 201)"),
    ],
)
def test_the_api_refuses_control_characters_and_long_values_in_ids_and_names(
    api, installation, field, value, said
):
    body = {"site": "A", "local_id": "MRN-LIMITS", "consent_state": "direct_care_only"}
    body[field] = value
    response = _call(api, installation, "clinician@A", "POST", "/api/patients", body)
    assert response.status_code == 422, response.text
    (detail,) = response.json()["error"]["details"]
    assert detail["location"] == field and said in detail["message"]


def test_user_e_mails_and_names_refuse_control_characters(installation):
    for email, name in (("nul\x00@example.org", "N"), ("ok.name@example.org", "Bad\x1bName")):
        with pytest.raises(ValidationFailed):
            identity.add_user(
                installation.registry, installation.operator, email=email, display_name=name,
                password=PASSWORD, roles=[("clinician", "A")],
            )  # fmt: skip
