"""Logins, sessions, CSRF, lock-out, tokens and the absence of default credentials."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from careloop.cli.main import app as cli
from careloop.core.clock import utcnow
from careloop.core.errors import Conflict
from careloop.trust import identity
from careloop.web.app import create_app
from tests.foundation import PASSWORD, Installation, build_installation, make_settings

EMAIL = "clinician.a@example.org"


@pytest.fixture
def site(tmp_path, database_url) -> Iterator[tuple[Installation, TestClient]]:
    inst = build_installation(make_settings(tmp_path, database_url), with_users=False)
    identity.add_user(
        inst.registry,
        inst.operator,
        email=EMAIL,
        display_name="Clin",
        password=PASSWORD,
        roles=[("clinician", "A")],
    )
    with TestClient(create_app(inst.settings)) as client:
        yield inst, client
    inst.registry.close()


def _login(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> tuple[int, str]:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    return response.status_code, response.text


def _csrf(client: TestClient) -> str:
    home = client.get("/")
    return re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]


def _audit_actions(inst: Installation) -> list[tuple[str, str]]:
    with inst.registry.engine.connect() as conn:
        return [
            (r.action, r.outcome)
            for r in conn.execute(text("SELECT action, outcome FROM audit_entry ORDER BY seq"))
        ]


def test_login_opens_a_session_and_logout_ends_it(site):
    inst, client = site
    status, _ = _login(client)
    assert status == 303
    assert client.cookies.get("careloop_session")
    home = client.get("/")
    assert home.status_code == 200 and EMAIL in home.text
    assert client.get("/api/me").json()["email"] == EMAIL
    client.post("/logout", data={"csrf_token": _csrf(client)}, follow_redirects=False)
    assert client.get("/api/me").status_code == 401
    assert ("login", "success") in _audit_actions(inst) and ("logout", "success") in _audit_actions(
        inst
    )


def test_a_wrong_password_is_refused_and_audited_without_saying_which_part_was_wrong(site):
    inst, client = site
    status, page = _login(client, password="not the password at all")
    assert status == 401
    assert "The e-mail or password is not right." in page
    status_unknown, page_unknown = _login(client, email="nobody@example.org")
    assert status_unknown == 401 and "The e-mail or password is not right." in page_unknown
    assert _audit_actions(inst)[-2:] == [("login_failed", "denied"), ("login_failed", "denied")]


def test_five_failed_logins_lock_the_account_even_for_the_right_password(site):
    inst, client = site
    for _ in range(inst.settings.lockout_threshold):
        assert _login(client, password="wrong password here")[0] == 401
    status, page = _login(client)
    assert status == 423 and "locked" in page
    with inst.registry.engine.begin() as conn:
        conn.execute(
            text("UPDATE login_lockout SET locked_until = :t"),
            {"t": utcnow() - timedelta(seconds=1)},
        )
    assert _login(client)[0] == 303


def test_an_idle_session_expires_after_the_timeout(site):
    inst, client = site
    _login(client)
    assert client.get("/api/me").status_code == 200
    idle = timedelta(minutes=inst.settings.session_idle_minutes, seconds=1)
    with inst.registry.engine.begin() as conn:
        conn.execute(text("UPDATE web_session SET last_seen_at = :t"), {"t": utcnow() - idle})
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"
    # Once expired, always expired: the session was ended, not just refused.
    with inst.registry.engine.begin() as conn:
        conn.execute(text("UPDATE web_session SET last_seen_at = :t"), {"t": utcnow()})
    assert client.get("/api/me").status_code == 401


def test_activity_keeps_a_session_alive(site):
    inst, client = site
    _login(client)
    almost = timedelta(minutes=inst.settings.session_idle_minutes - 1)
    with inst.registry.engine.begin() as conn:
        conn.execute(text("UPDATE web_session SET last_seen_at = :t"), {"t": utcnow() - almost})
    assert client.get("/api/me").status_code == 200


def test_a_cookie_request_that_changes_state_needs_the_csrf_token(site):
    _inst, client = site
    _login(client)
    body = {"site": "A", "local_id": "X1", "consent_state": "improvement_and_research"}
    refused = client.post("/api/patients", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_rejected"
    wrong = client.post("/api/patients", json=body, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    accepted = client.post("/api/patients", json=body, headers={"X-CSRF-Token": _csrf(client)})
    assert accepted.status_code == 201
    assert client.post("/logout", follow_redirects=False).status_code == 403


def test_the_login_form_itself_needs_its_csrf_token(site):
    _inst, client = site
    client.get("/login")
    response = client.post(
        "/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_api_tokens_work_until_revoked(site):
    inst, client = site
    created = identity.create_token(inst.registry, inst.operator, name="script", for_user=EMAIL)
    headers = {"Authorization": f"Bearer {created.token}"}
    assert client.get("/api/me", headers=headers).status_code == 200
    with inst.registry.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_token")).scalars().all()
    assert created.token not in stored  # only the hash is kept
    identity.revoke_token(inst.registry, inst.operator, token_id=created.id)
    response = client.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_creating_a_token_needs_a_recent_password(site):
    inst, client = site
    _login(client)
    csrf = _csrf(client)
    assert (
        client.post("/api/tokens", json={"name": "n"}, headers={"X-CSRF-Token": csrf}).status_code
        == 201
    )
    with inst.registry.engine.begin() as conn:
        conn.execute(
            text("UPDATE web_session SET authenticated_at = :t"),
            {"t": utcnow() - timedelta(hours=1)},
        )
    stale = client.post("/api/tokens", json={"name": "n"}, headers={"X-CSRF-Token": csrf})
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "reauthentication_required"
    client.post(
        "/reauth",
        data={"password": PASSWORD, "csrf_token": csrf, "next": "/"},
        follow_redirects=False,
    )
    assert (
        client.post("/api/tokens", json={"name": "n"}, headers={"X-CSRF-Token": csrf}).status_code
        == 201
    )


def test_disabling_a_user_ends_their_sessions_and_tokens(site):
    inst, client = site
    token = identity.create_token(inst.registry, inst.operator, name="s", for_user=EMAIL).token
    _login(client)
    identity.set_user_disabled(inst.registry, inst.operator, email=EMAIL)
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_fresh_installation_has_no_accounts_and_init_refuses_a_missing_password(tmp_path):
    runner = CliRunner()
    data = tmp_path / "fresh"
    result = runner.invoke(
        cli, ["init", "--data-dir", str(data), "--admin-email", "a@example.org"], input=""
    )
    assert result.exit_code != 0
    result = runner.invoke(
        cli,
        ["init", "--data-dir", str(data), "--admin-email", "a@example.org", "--password-stdin"],
        input="short\n",
    )
    assert result.exit_code != 0
    settings = make_settings(tmp_path, None).model_copy(update={"data_dir": data})
    from careloop.trust.installation import open_registry

    registry = open_registry(settings)
    assert identity.count_admins(registry) == 0
    registry.close()
    ok = runner.invoke(
        cli,
        ["init", "--data-dir", str(data), "--admin-email", "a@example.org", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert ok.exit_code == 0, ok.output


def test_demo_installations_get_different_random_passwords(tmp_path):
    from careloop.demo.seed import seed_demo
    from careloop.trust.principal import Principal

    first = seed_demo(
        make_settings(tmp_path / "one", None), Principal.operator(), patients_per_site=1
    )
    second = seed_demo(
        make_settings(tmp_path / "two", None), Principal.operator(), patients_per_site=1
    )
    assert [login.email for login in first] == [login.email for login in second]
    assert not {login.password for login in first} & {login.password for login in second}
    assert all(len(login.password) >= 12 for login in first)


def _reauth(client: TestClient, password: str) -> int:
    csrf = _csrf(client)
    response = client.post(
        "/reauth",
        data={"password": password, "csrf_token": csrf, "next": "/"},
        follow_redirects=False,
    )
    return response.status_code


def test_reauthentication_counts_failures_and_is_refused_while_the_account_is_locked(site):
    # Issue 14: 25 wrong passwords at /reauth, then the right one was accepted.
    inst, client = site
    assert _login(client)[0] == 303
    statuses = [_reauth(client, "wrong password here") for _ in range(25)]
    threshold = inst.settings.lockout_threshold
    assert statuses[:threshold] == [401] * threshold
    assert set(statuses[threshold:]) == {423}
    assert _reauth(client, PASSWORD) == 423
    # The lock is the login's lock: a new login is refused too.
    client.cookies.clear()
    assert _login(client)[0] == 423
    reauths = [a for a in _audit_actions(inst) if a[0] == "reauthenticate"]
    assert len(reauths) == 26 and {o for _, o in reauths} == {"denied"}


def test_an_unknown_address_is_locked_out_exactly_like_a_known_one(site, monkeypatch):
    # Issue 14: a known address answered 423 after five failures, an unknown one 401 for
    # ever, which told which addresses exist. Both now answer the same, with the same work.
    inst, client = site
    import careloop.trust.identity.sessions as identity_module  # where login checks passwords

    verified: list[bool] = []
    real = identity_module.verify_password

    def counting(password_hash, password):
        verified.append(password_hash is None)
        return real(password_hash, password)

    monkeypatch.setattr(identity_module, "verify_password", counting)
    answers = {}
    for email in (EMAIL, "nobody.here@example.org"):
        verified.clear()
        answers[email] = [
            _login(client, email=email, password="wrong password")
            for _ in range(inst.settings.lockout_threshold + 2)
        ]
        assert len(verified) == inst.settings.lockout_threshold + 2  # one argon2 check each
    known, unknown = answers.values()
    assert [status for status, _ in known] == [status for status, _ in unknown]
    assert [status for status, _ in known][-2:] == [423, 423]

    def message(page: str) -> str:
        return re.search(r'class="error"[^>]*>([^<]+)<', page).group(1)  # type: ignore[union-attr]

    assert [message(p) for _, p in known] == [message(p) for _, p in unknown]


def test_the_last_admin_cannot_revoke_their_own_admin_role_or_be_disabled(site):
    inst, _client = site
    admin = "admin@example.org"
    with pytest.raises(Conflict, match="last admin"):
        identity.revoke_role(inst.registry, inst.operator, email=admin, role="admin", site=None)
    with pytest.raises(Conflict, match="last admin"):
        identity.set_user_disabled(inst.registry, inst.operator, email=admin)
    assert identity.count_admins(inst.registry) == 1
    identity.add_user(
        inst.registry, inst.operator, email="second.admin@example.org", display_name="Second",
        password=PASSWORD, roles=[("admin", None)],
    )  # fmt: skip
    identity.revoke_role(inst.registry, inst.operator, email=admin, role="admin", site=None)
    assert identity.count_admins(inst.registry) == 1


def test_the_last_admin_revoking_themself_over_the_api_is_refused(site):
    inst, client = site
    status, _ = _login(client, email="admin@example.org")
    assert status == 303
    csrf = _csrf(client)
    response = client.request(
        "DELETE",
        "/api/users/admin@example.org/roles",
        json={"role": "admin", "site": None},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 409, response.text
    assert identity.count_admins(inst.registry) == 1


def test_a_new_login_in_the_same_browser_ends_the_previous_session(site):
    # Issue 14: logging in as B left A's session alive.
    _inst, client = site
    assert _login(client)[0] == 303
    first = client.cookies.get("careloop_session")
    assert _login(client, email="admin@example.org")[0] == 303
    second = client.cookies.get("careloop_session")
    assert first and second and first != second
    assert client.get("/api/me").json()["email"] == "admin@example.org"
    stale = TestClient(client.app)
    stale.cookies.set("careloop_session", first)
    assert stale.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [(None, False), ("http://10.0.0.5:8000", False), ("https://careloop.example.org", True)],
)
def test_the_login_and_session_cookies_are_secure_when_careloop_is_reached_over_https(
    tmp_path, base_url, secure
):
    inst = build_installation(
        make_settings(tmp_path, None, public_base_url=base_url), with_users=False
    )
    with TestClient(create_app(inst.settings)) as client:
        page = client.get("/login")
        login_cookie = page.headers["set-cookie"]
        assert login_cookie.startswith("careloop_login_csrf=")
        assert ("; secure" in login_cookie.lower()) is secure
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        client.cookies.set("careloop_login_csrf", token, path="/login")
        done = client.post(
            "/login",
            data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        session_cookie = next(
            c for c in done.headers.get_list("set-cookie") if c.startswith("careloop_session=")
        )
        assert ("; secure" in session_cookie.lower()) is secure
        # A forwarded-protocol header from anyone does not change it.
        spoofed = client.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert ("; secure" in spoofed.headers["set-cookie"].lower()) is secure
    inst.registry.close()
