"""PROM links in the browser: the secret leaves the address at once; floods and guesses are refused.

A link's secret is swapped for a short, signed session cookie on the first
request; the form, its live check and its submission work from the cookie
and a form token. Public routes are limited per network address, and so are
failed link openings (enumeration), each refusal audited once, with no secret.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from careloop.capture import proms
from careloop.store.models.capture import Response
from careloop.store.scoping import Scope, set_scope
from careloop.web.app import create_app
from careloop.web.pages import prom as prom_pages
from careloop.web.rate_limit import WindowCounter
from tests.capture.registry_helpers import (
    PROM,
    audit_seq,
    audit_since,
    import_examples,
    prom_answers,
)
from tests.foundation import Installation, build_installation, make_settings


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    settings = make_settings(
        tmp_path_factory.mktemp("prom-links"),
        None,
        failed_links_per_hour=3,
        public_requests_per_minute=40,
    )
    installation = build_installation(settings)
    import_examples(installation)
    yield installation
    installation.registry.close()


def _client(inst: Installation) -> TestClient:
    """The app with its per-address limits counted on a clock that stands still.

    The limits count in fixed windows (a minute, an hour); a test that crossed a
    window's end would see its count start again.
    """
    app = create_app(inst.settings)
    for counter in (app.state.public_requests, app.state.failed_links):
        counter.clock = lambda: 1_000_000.0
    return TestClient(app)


def _link(inst: Installation, patient: int) -> str:
    return proms.create_prom_link(inst.registry, inst.operator, PROM, patient_id=patient).token


def _responses(inst: Installation, patient: int) -> int:
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        return len(session.scalars(select(Response).where(Response.patient_id == patient)).all())


def _form_token(page_text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page_text)
    assert found is not None
    return found.group(1)


def test_opening_a_link_swaps_its_secret_for_a_short_session(inst):
    token = _link(inst, inst.patient_ids["A"][0])
    with _client(inst) as client:
        opened = client.get(f"/prom/{token}", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/prom"
        cookie = opened.headers["set-cookie"]
        assert cookie.startswith(f"{prom_pages.PROM_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/prom" in cookie
        assert f"Max-Age={inst.settings.prom_session_minutes * 60}" in cookie
        assert token not in cookie  # the cookie names the link by its stored hash
        page = client.get("/prom")
        assert page.status_code == 200 and "How my IBD has been" in page.text
        assert token not in page.text and page.headers["cache-control"] == "no-store"
        assert 'action="/prom"' in page.text


def test_answers_sent_from_the_session_are_saved_once_and_end_the_session(inst):
    patient = inst.patient_ids["A"][1]
    token = _link(inst, patient)
    with _client(inst) as client:
        form_token = _form_token(client.get(f"/prom/{token}").text)
        check = client.post(
            "/prom/check",
            json={"values": prom_answers()},
            headers={"X-CSRF-Token": form_token},
        )
        assert check.status_code == 200
        sent = client.post("/prom", data={**prom_answers("2024-05-01"), "csrf_token": form_token})
        assert sent.status_code == 200 and "Thank you" in sent.text
        assert _responses(inst, patient) == 1
        assert prom_pages.PROM_COOKIE not in client.cookies
        again = client.get(f"/prom/{token}")
        assert again.status_code == 404 and "already used" in again.text


@pytest.mark.parametrize("where", ["form field", "live check"])
def test_a_post_without_the_pages_form_token_is_refused_and_saves_nothing(inst, where):
    patient = inst.patient_ids["B"][0]
    before = _responses(inst, patient)
    with _client(inst) as client:
        client.get(f"/prom/{_link(inst, patient)}")
        if where == "form field":
            refused = client.post("/prom", data={**prom_answers(), "csrf_token": "x" * 64})
        else:
            refused = client.post("/prom/check", json={"values": prom_answers()})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_rejected"
    assert _responses(inst, patient) == before


def test_a_forged_tampered_or_expired_session_is_refused_with_a_plain_message(inst):
    patient = inst.patient_ids["B"][1]
    key = proms.prom_link_key(_link(inst, patient))
    settings = inst.settings
    expired = prom_pages._seal(settings, key, int(time.time()) - 1)
    good = prom_pages._seal(settings, key, int(time.time()) + 600)
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    for value in (None, "nonsense", expired, tampered, f"{'0' * 64}.{int(time.time()) + 600}.x"):
        with _client(inst) as client:
            if value is not None:
                client.cookies.set(prom_pages.PROM_COOKIE, value, path="/prom")
            page = client.get("/prom", headers={"accept": "text/html"})
            assert page.status_code == 404, value
            assert "timed out" in page.text and "ask them for a new one" in page.text
    with _client(inst) as client:  # the good one works, so the refusals above were earned
        client.cookies.set(prom_pages.PROM_COOKIE, good, path="/prom")
        assert client.get("/prom").status_code == 200


def test_staff_see_a_new_link_in_the_answer_to_their_post_never_in_an_address(inst):
    with _client(inst) as client:
        login = client.get("/login")
        csrf = _form_token(login.text)
        client.post(
            "/login",
            data={
                "email": inst.emails["clinician@A"],
                "password": "correct horse battery staple",
                "csrf_token": csrf,
            },
        )
        patient = inst.patient_ids["A"][0]
        page = client.get(f"/patients/{patient}")
        made = client.post(
            f"/patients/{patient}/prom-links",
            data={"form": PROM, "csrf_token": _form_token(page.text)},
            follow_redirects=False,
        )
        assert made.status_code == 201 and "location" not in made.headers
        shown = re.search(r'<code class="link">([^<]+)</code>', made.text)
        assert shown is not None and "/prom/prom_" in shown.group(1)
        assert '<code class="link">' not in client.get(f"/patients/{patient}").text


def test_guessing_links_is_refused_after_the_limit_and_audited_once(inst):
    valid = _link(inst, inst.patient_ids["A"][0])
    seq = audit_seq(inst)
    with _client(inst) as client:
        for attempt in range(3):
            guess = client.get(f"/prom/prom_guess{attempt}", follow_redirects=False)
            assert guess.status_code == 404
        refused = client.get(f"/prom/{valid}", follow_redirects=False)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 3600
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert "wait an hour" in refused.json()["error"]["message"]
        api = client.get(f"/api/prom/{valid}")  # the JSON API shares the limit
        assert api.status_code == 429
    entries = [e for e in audit_since(inst, seq) if e.action == "rate_limited"]
    assert len(entries) == 1
    assert entries[0].outcome == "denied" and json.loads(entries[0].details)["path"] == "/prom/…"
    assert "guess" not in str(entries[0].details) and valid not in str(entries[0].details)


def test_a_flood_of_requests_to_public_pages_is_refused_with_retry_after(inst):
    seq = audit_seq(inst)
    with _client(inst) as client:
        answers = [client.get("/login").status_code for _ in range(45)]
        assert answers[:40] == [200] * 40 and set(answers[40:]) == {429}
        refused = client.get("/login", headers={"accept": "text/html"})
        assert refused.status_code == 429 and "wait a minute" in refused.text
        assert refused.headers["content-security-policy"]  # the security headers still apply
        assert client.get("/health").status_code == 200  # not a public page of the limit
    entries = [e for e in audit_since(inst, seq) if e.action == "rate_limited"]
    assert [json.loads(e.details)["path"] for e in entries] == ["/login"]


def test_a_window_counter_forgets_at_the_end_of_its_window():
    now = [1000.0]
    counter = WindowCounter(limit=2, window_seconds=60, clock=lambda: now[0])
    counter.add("a")
    assert counter.over("a") is None
    counter.add("a")
    assert counter.over("a") == (20, True)  # the window ends at 1020
    assert counter.over("a") == (20, False)  # refused again, not audited again
    assert counter.over("b") is None
    now[0] = 1020.0
    assert counter.over("a") is None
    assert WindowCounter(limit=0, window_seconds=60).over("a") is None  # 0: no limit
