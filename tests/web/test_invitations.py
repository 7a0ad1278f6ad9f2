"""Inviting a patient or a carer by e-mail, through a real SMTP server (aiosmtpd).

Staff invite → the e-mail arrives (with no patient details) → the link is
opened (its secret swapped for a short cookie at once) → a password is chosen
→ the person logs in at /login and lands on /my, seeing only that record.
Used, expired and forged links, and staff of another site, are refused,
change nothing and are audited.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from careloop.core.clock import utcnow
from careloop.store.models import AccountInvitation, AuditEntry, CarerLink, User
from careloop.store.scoping import Scope, set_scope
from careloop.trust import patients
from careloop.web.app import create_app
from tests.foundation import PASSWORD, Installation, build_installation, make_settings
from tests.smtp import Inbox, smtp_server

NEW_PASSWORD = "a long and memorable phrase"


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_server() as running:
        yield running


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def inst(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, inbox: Inbox
) -> Iterator[Installation]:
    database_url = None
    if request.param == "postgresql":
        from tests.conftest import _admin_execute, _postgres_server_url, _with_database

        server = _postgres_server_url()
        if server is None:
            pytest.skip("no PostgreSQL server: set CARELOOP_TEST_DATABASE_URL")
        name = f"careloop_test_{uuid.uuid4().hex[:12]}"
        _admin_execute(server, f'CREATE DATABASE "{name}"')
        database_url = _with_database(server, name)
    settings = make_settings(
        tmp_path_factory.mktemp("invitations"),
        database_url,
        smtp_host=inbox.host,
        smtp_port=inbox.port,
        mail_from="Care team <careloop@clinic.example>",
        public_base_url="http://careloop.test",
    )
    built = build_installation(settings)
    try:
        yield built
    finally:
        built.registry.close()
        if database_url is not None:
            _admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def client(inst: Installation) -> Iterator[TestClient]:
    with TestClient(create_app(inst.settings), base_url="http://careloop.test") as test_client:
        yield test_client


def _new_patient(inst: Installation, local_id: str, site: str = "A") -> int:
    return patients.register_patient(
        inst.registry,
        inst.operator,
        site=site,
        local_id=local_id,
        given_name="Rosalind",
        family_name="Quixotic",
        birth_date="2012-05-06",
        sex="female",
        consent_state="improvement_and_research",
    ).id


def _invite(client: TestClient, inst: Installation, who: str, patient_id: int, **body: object):
    return client.post(
        f"/api/patients/{patient_id}/invitations",
        json=body,
        headers={"authorization": f"Bearer {inst.tokens[who]}"},
    )


def _link(inbox: Inbox) -> str:
    found = re.search(r"http://careloop\.test(/invitation/\S+)", inbox.last_text())
    assert found is not None, inbox.last_text()
    return found.group(1)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


@contextmanager
def _browser(inst: Installation) -> Iterator[TestClient]:
    with TestClient(create_app(inst.settings), base_url="http://careloop.test") as browser:
        yield browser


def _open(browser: TestClient, path: str):
    opened = browser.get(path, follow_redirects=False)
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == "/invitation"  # the secret leaves the address
    return browser.get("/invitation")


def _log_in(browser: TestClient, email: str, password: str):
    page = browser.get("/login?next=/my")
    return browser.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": _csrf(page.text), "next": "/my"},
    )


def _audit(inst: Installation, since: int) -> list[AuditEntry]:
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.seq > since).order_by(AuditEntry.seq)
            )
        )


def _last_seq(inst: Installation) -> int:
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        return int(session.scalar(select(func.max(AuditEntry.seq))) or 0)


def _details(entry: AuditEntry) -> dict[str, object]:
    loaded = json.loads(entry.details) if isinstance(entry.details, str) else entry.details
    assert isinstance(loaded, dict)
    return loaded


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_patient_is_invited_sets_a_password_logs_in_and_sees_only_their_record(
    inst, client, inbox
):
    patient_id = _new_patient(inst, "MRN-INV-1")
    before = _last_seq(inst)
    sent = _invite(client, inst, "clinician@A", patient_id, email="Rosa@Example.org")
    assert sent.status_code == 201, sent.text
    assert sent.json()["email"] == "rosa@example.org" and sent.json()["delivered_via"] == "smtp"
    message = inbox.messages[-1]
    assert message["To"] == "rosa@example.org"
    assert inbox.envelopes[-1] == ("careloop@clinic.example", ["rosa@example.org"])
    text = inbox.last_text()
    assert "Site A" in text and "to see your own care record" in text
    for private in ("Rosalind", "Quixotic", "MRN-INV-1", "2012", "female", "patient "):
        assert private not in text and private not in str(message["Subject"])
    path = _link(inbox)
    [invited] = [e for e in _audit(inst, before) if e.action == "privilege_change"]
    assert invited.patient_id == patient_id and invited.user_email == inst.emails["clinician@A"]
    assert _details(invited)["invited"] == "rosa@example.org"
    assert path.rsplit("/", 1)[1] not in str([e.details for e in _audit(inst, before)])

    with _browser(inst) as browser:
        form = _open(browser, path)
        assert form.status_code == 200 and "rosa@example.org" in form.text
        assert "Rosalind" not in form.text
        short = browser.post(
            "/invitation",
            data={
                "csrf_token": _csrf(form.text),
                "display_name": "Rosa",
                "password": "short",
                "confirm": "short",
            },
        )
        assert short.status_code == 422 and "at least" in short.text
        done = browser.post(
            "/invitation",
            data={
                "csrf_token": _csrf(form.text),
                "display_name": "Rosa",
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"].startswith("/login")
        landed = _log_in(browser, "rosa@example.org", NEW_PASSWORD)
        assert str(landed.url).endswith("/my") and landed.status_code == 200
        assert "Rosalind Quixotic" in _text(landed.text)
        assert "GivenA1" not in landed.text and "GivenB1" not in landed.text
        other = inst.patient_ids["A"][0]
        refused = browser.get(f"/api/patients/{other}")
        assert refused.status_code in (403, 404)
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        user = session.scalar(select(User).where(User.email == "rosa@example.org"))
        assert user is not None and user.patient_id == patient_id
        assert [m.role for m in user.memberships] == ["patient"]


def test_a_used_link_is_refused_plainly_changes_nothing_and_is_audited(inst, client, inbox):
    patient_id = _new_patient(inst, "MRN-INV-2")
    assert (
        _invite(client, inst, "site_lead@A", patient_id, email="twice@example.org").status_code
        == 201
    )
    path = _link(inbox)
    with _browser(inst) as browser:
        form = _open(browser, path)
        browser.post(
            "/invitation",
            data={
                "csrf_token": _csrf(form.text),
                "display_name": "T",
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )
    before = _last_seq(inst)
    with _browser(inst) as browser:
        again = browser.get(path, follow_redirects=False)
        assert again.status_code == 404 and "already used" in again.text
        assert path.rsplit("/", 1)[1] not in again.text
    [refusal] = _audit(inst, before)
    assert refusal.outcome == "not_found" and _details(refusal)["refused"] == "used"
    assert refusal.patient_id == patient_id


def test_an_expired_or_forged_link_and_a_forged_cookie_are_refused(inst, client, inbox):
    patient_id = _new_patient(inst, "MRN-INV-3")
    assert (
        _invite(client, inst, "clinician@A", patient_id, email="late@example.org").status_code
        == 201
    )
    path = _link(inbox)
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        session.execute(
            update(AccountInvitation)
            .where(AccountInvitation.email == "late@example.org")
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    before = _last_seq(inst)
    with _browser(inst) as browser:
        late = browser.get(path, follow_redirects=False)
        assert late.status_code == 404 and "expired" in late.text
        forged = browser.get(path[:-4] + "AAAA", follow_redirects=False)
        assert forged.status_code == 404 and "not valid" in forged.text
        browser.cookies.set("careloop_invitation", "abc.9999999999.deadbeef", path="/invitation")
        cookie = browser.get("/invitation")
        assert cookie.status_code == 404 and "timed out" in cookie.text
    refusals = _audit(inst, before)
    assert [_details(e)["refused"] for e in refusals] == ["expired", "unknown"]
    assert all(e.outcome == "not_found" for e in refusals)
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        assert session.scalar(select(User).where(User.email == "late@example.org")) is None


def test_staff_of_another_site_and_patients_cannot_invite_and_nothing_is_sent(inst, client, inbox):
    patient_id = _new_patient(inst, "MRN-INV-4")
    count = len(inbox.messages)
    other_site = _invite(client, inst, "clinician@B", patient_id, email="x@example.org")
    assert other_site.status_code == 404
    as_patient = _invite(client, inst, "patient@A", patient_id, email="x@example.org")
    assert as_patient.status_code == 403
    analyst = _invite(client, inst, "analyst@A", patient_id, email="x@example.org")
    assert analyst.status_code == 403
    taken = _invite(client, inst, "clinician@A", patient_id, email=inst.emails["clinician@A"])
    assert taken.status_code == 409
    assert len(inbox.messages) == count
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        assert (
            session.scalar(
                select(func.count())
                .select_from(AccountInvitation)
                .where(AccountInvitation.patient_id == patient_id)
            )
            == 0
        )


def test_a_carer_is_invited_to_two_patients_and_the_second_needs_their_password(
    inst, client, inbox
):
    first = _new_patient(inst, "MRN-INV-5")
    second = _new_patient(inst, "MRN-INV-6")
    sent = _invite(
        client,
        inst,
        "clinician@A",
        first,
        email="mum@example.org",
        role="carer",
        relationship="parent",
    )
    assert sent.status_code == 201 and sent.json()["role"] == "carer"
    assert "as their carer" in inbox.last_text() and "Rosalind" not in inbox.last_text()
    with _browser(inst) as browser:
        form = _open(browser, _link(inbox))
        browser.post(
            "/invitation",
            data={
                "csrf_token": _csrf(form.text),
                "display_name": "Mum",
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )
    assert (
        _invite(
            client, inst, "clinician@A", second, email="mum@example.org", role="carer"
        ).status_code
        == 201
    )
    with _browser(inst) as browser:
        form = _open(browser, _link(inbox))
        assert (
            "already have a careloop account" in form.text
            and 'name="display_name"' not in form.text
        )
        wrong = browser.post(
            "/invitation", data={"csrf_token": _csrf(form.text), "password": "not the password"}
        )
        assert wrong.status_code == 401 and "not the password" in wrong.text
        right = browser.post(
            "/invitation",
            data={"csrf_token": _csrf(form.text), "password": NEW_PASSWORD},
            follow_redirects=False,
        )
        assert right.status_code == 303
        landed = _log_in(browser, "mum@example.org", NEW_PASSWORD)
        assert str(landed.url).endswith("/my")
        assert "The people you care for" in landed.text
        assert f'id="who-{first}"' in landed.text and f'id="who-{second}"' in landed.text
        assert landed.text.count('<h2 id="who-') == 2
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        links = session.execute(
            select(CarerLink.patient_id, CarerLink.relationship_to_patient)
            .join(User, User.id == CarerLink.carer_user_id)
            .where(User.email == "mum@example.org")
            .order_by(CarerLink.patient_id)
        ).all()
        assert [tuple(link) for link in links] == [(first, "parent"), (second, "carer")]


def test_a_session_caller_needs_the_csrf_token_to_invite(inst, client):
    patient_id = _new_patient(inst, "MRN-INV-7")
    with _browser(inst) as browser:
        _log_in(browser, inst.emails["clinician@A"], PASSWORD)
        refused = browser.post(
            f"/api/patients/{patient_id}/invitations", json={"email": "y@example.org"}
        )
        assert refused.status_code == 403


def test_staff_invite_from_the_patients_page_and_see_what_happened(inst, client, inbox):
    patient_id = _new_patient(inst, "MRN-INV-8")
    with _browser(inst) as browser:
        _log_in(browser, inst.emails["clinician@A"], PASSWORD)
        page = browser.get(f"/patients/{patient_id}", headers={"accept": "text/html"})
        assert "Invite to careloop" in page.text
        form = {"csrf_token": _csrf(page.text), "email": "dad@example.org", "role": "carer"}
        sent = browser.post(f"/patients/{patient_id}/invitations", data=form)
        assert sent.status_code == 201
        assert "An invitation was e-mailed to dad@example.org (as carer)." in sent.text
        assert inbox.messages[-1]["To"] == "dad@example.org"
        assert _link(inbox).rsplit("/", 1)[1] not in sent.text  # the secret is in the e-mail only
        count = len(inbox.messages)
        again = browser.post(
            f"/patients/{patient_id}/invitations",
            data={**form, "email": inst.emails["clinician@A"]},
        )
        assert again.status_code == 409 and "not a carer" in again.text
        assert len(inbox.messages) == count
        forged = browser.post(
            f"/patients/{patient_id}/invitations", data={**form, "csrf_token": "forged"}
        )
        assert forged.status_code == 403 and len(inbox.messages) == count


def test_a_second_patient_invitation_cannot_open_a_second_login_to_one_record(inst, client, inbox):
    patient_id = _new_patient(inst, "MRN-INV-9")
    assert (
        _invite(client, inst, "clinician@A", patient_id, email="one@example.org").status_code == 201
    )
    first = _link(inbox)
    assert (
        _invite(client, inst, "clinician@A", patient_id, email="two@example.org").status_code == 201
    )
    second = _link(inbox)
    accept = {"display_name": "P", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    with _browser(inst) as browser:
        form = _open(browser, first)
        browser.post("/invitation", data={**accept, "csrf_token": _csrf(form.text)})
    with _browser(inst) as browser:
        form = _open(browser, second)
        refused = browser.post("/invitation", data={**accept, "csrf_token": _csrf(form.text)})
        assert refused.status_code == 409 and "has a careloop login already" in refused.text
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        logins = session.scalars(select(User.email).where(User.patient_id == patient_id)).all()
        assert logins == ["one@example.org"]
        unused = session.scalar(
            select(AccountInvitation.used_at).where(AccountInvitation.email == "two@example.org")
        )
        assert unused is None


def test_failed_invitation_links_count_towards_the_addresses_limit(inst):
    settings = inst.settings.model_copy(update={"failed_links_per_hour": 2})
    with TestClient(create_app(settings), base_url="http://careloop.test") as browser:
        answers = [
            browser.get(f"/invitation/invite_guess{n}", follow_redirects=False).status_code
            for n in range(4)
        ]
    assert answers == [404, 404, 429, 429]


def test_wrong_passwords_on_an_invitation_lock_the_carers_address_as_at_login(inst, client, inbox):
    patient_id = _new_patient(inst, "MRN-INV-10")
    carer = inst.emails["carer@B"]  # an existing carer account, of another site
    sent = _invite(client, inst, "clinician@A", patient_id, email=carer, role="carer")
    assert sent.status_code == 201
    with _browser(inst) as browser:
        form = _open(browser, _link(inbox))
        answers = [
            browser.post(
                "/invitation", data={"csrf_token": _csrf(form.text), "password": "wrong guess"}
            ).status_code
            for _ in range(inst.settings.lockout_threshold + 1)
        ]
        assert answers == [401] * inst.settings.lockout_threshold + [423]
        locked = browser.post(
            "/invitation", data={"csrf_token": _csrf(form.text), "password": PASSWORD}
        )
        assert locked.status_code == 423 and "locked" in locked.text
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        linked = session.scalar(
            select(func.count()).select_from(CarerLink).where(CarerLink.patient_id == patient_id)
        )
        assert linked == 0
