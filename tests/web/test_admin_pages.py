"""The admin pages under /admin: who may open them, every change through its browser form
with its stored effect and audit entry, bad input changing nothing, and the password
asked again for sensitive changes when the session's is old."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from careloop.capture import forms_store
from careloop.core.clock import utcnow
from careloop.practice import list_clients
from careloop.trust import identity
from careloop.warehouse.connection import Warehouse
from careloop.warehouse.jobs import check_warehouse
from careloop.web.app import create_app
from tests.foundation import PASSWORD, Installation, refresh_installation
from tests.practice.cds_support import ec_client
from tests.web.test_community_pages import _client

HTML = {"accept": "text/html"}
PAGES = (
    "/admin",
    "/admin/sites",
    "/admin/users",
    "/admin/tokens",
    "/admin/cds-clients",
    "/admin/forms",
    "/admin/data-quality",
)
POSTS = (
    ("/admin/sites", {"code": "NOPE", "name": "n", "country": "GB", "time_zone": "Europe/London"}),
    ("/admin/users", {"email": "nope@example.org", "role": "clinician", "site": "A"}),
    ("/admin/users/roles", {"email": "clinician.a@example.org", "role": "site_lead", "site": "A"}),
    ("/admin/users/disable", {"email": "clinician.a@example.org"}),
    ("/admin/tokens", {"name": "nope", "days": "5"}),
    ("/admin/cds-clients", {"issuer": "https://nope.example.org", "jwks_url": "https://x.org/j"}),
)
REDCAP = (
    '"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
    '"Choices, Calculations, OR Slider Labels","Field Note",'
    '"Text Validation Type OR Show Slider Number","Text Validation Min","Text Validation Max",'
    'Identifier?,"Branching Logic (Show field only if...)","Required Field?","Custom Alignment",'
    '"Question Number (surveys only)","Matrix Group Name","Matrix Ranking?","Field Annotation"\n'
    "visit_date,admin_check,,text,Visit date,,,date_ymd,,,,,y,,,,,\n"
    "weight_kg,admin_check,,text,Weight (kg),,,number,1,300,,,,,,,,\n"
)


@pytest.fixture(scope="module")
def app(installation: Installation) -> Iterator[Any]:
    application = create_app(installation.settings)
    yield application
    application.state.registry.close()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _signed_in(app: Any, email: str) -> TestClient:
    return _client(app, email, PASSWORD)


@pytest.fixture(scope="module")
def admin(app: Any, installation: Installation) -> TestClient:
    return _signed_in(app, installation.emails["admin"])


def _post(client: TestClient, path: str, data: dict[str, str], **kwargs: Any) -> Any:
    token = _csrf(client.get("/admin/sites", headers=HTML).text)
    return client.post(path, data={**data, "csrf_token": token}, headers=HTML, **kwargs)


def _problems(page: str) -> list[str]:
    return re.findall(r'<p class="field-error" id="([^"]+)-error">', page)


def _audit(inst: Installation, since: int, **where: str) -> list[dict[str, Any]]:
    """Audit entries after entry ``since`` matching ``where`` (column = value)."""
    clauses = " AND ".join(f"{k} = :{k}" for k in where)
    with inst.registry.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action, category, outcome, user_email, details FROM audit_entry "
                f"WHERE seq > :since{' AND ' + clauses if clauses else ''} ORDER BY seq"
            ),
            {"since": since, **where},
        )
        return [{**r._mapping, "details": json.loads(r.details or "{}")} for r in rows]


def _head(inst: Installation) -> int:
    with inst.registry.engine.connect() as conn:
        return int(conn.execute(text("SELECT COALESCE(MAX(seq), 0) FROM audit_entry")).scalar())


# ---------------------------------------------------------------- who may open them


def test_only_the_admin_opens_the_admin_pages_every_other_role_is_refused(app, installation):
    client = TestClient(app)
    for who, token in installation.tokens.items():
        bearer = {"Authorization": f"Bearer {token}"}
        for path in PAGES:
            status = client.get(path, headers=bearer).status_code
            assert status == (200 if who == "admin" else 403), (who, path, status)
    for path in PAGES:
        assert client.get(path).status_code == 401
        anonymous = client.get(path, headers=HTML, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_a_site_lead_cannot_change_anything_through_the_admin_forms(app, installation):
    before_sites = {
        s.code for s in identity.list_sites(installation.registry, installation.operator)
    }
    before_users = len(identity.list_users(installation.registry, installation.operator))
    head = _head(installation)
    lead = _signed_in(app, installation.emails["site_lead@A"])
    token = _csrf(lead.get("/", headers=HTML).text)
    for path, data in POSTS:
        answer = lead.post(path, data={**data, "csrf_token": token}, headers=HTML)
        assert answer.status_code == 403, (path, answer.status_code)
    assert {s.code for s in identity.list_sites(installation.registry, installation.operator)} == (
        before_sites
    )
    assert len(identity.list_users(installation.registry, installation.operator)) == before_users
    refusals = _audit(installation, head, user_email=installation.emails["site_lead@A"])
    assert len([r for r in refusals if r["outcome"] == "denied"]) >= len(POSTS)


def test_a_form_posted_without_the_page_token_is_refused_and_changes_nothing(admin, installation):
    answer = admin.post(
        "/admin/sites",
        data={"code": "CSRF", "name": "x", "country": "GB", "time_zone": "Europe/London"},
        headers=HTML,
    )
    assert answer.status_code == 403
    codes = {s.code for s in identity.list_sites(installation.registry, installation.operator)}
    assert "CSRF" not in codes


# ---------------------------------------------------------------- sites


def test_the_admin_adds_a_site_and_it_is_stored_audited_and_confirmed(admin, installation):
    head = _head(installation)
    answer = _post(
        admin,
        "/admin/sites",
        {
            "code": "rch",
            "name": "Royal Children's",
            "country": "au",
            "time_zone": "Australia/Melbourne",
        },
    )
    assert answer.status_code == 200 and "Saved: site RCH was added." in answer.text
    site = next(
        s
        for s in identity.list_sites(installation.registry, installation.operator)
        if s.code == "RCH"
    )
    assert (site.name, site.country, site.time_zone) == (
        "Royal Children's",
        "AU",
        "Australia/Melbourne",
    )
    [entry] = _audit(installation, head, action="create", category="site")
    assert entry["user_email"] == installation.emails["admin"] and entry["outcome"] == "success"


def test_a_bad_site_is_refused_beside_each_field_and_nothing_is_stored(admin, installation):
    before = identity.list_sites(installation.registry, installation.operator)
    head = _head(installation)
    answer = _post(
        admin,
        "/admin/sites",
        {"code": "no good", "name": "", "country": "XX", "time_zone": "Mars/Base"},
    )
    assert answer.status_code == 422
    assert set(_problems(answer.text)) == {"add-code", "add-name", "add-country", "add-time_zone"}
    assert 'value="no good"' in answer.text  # what was typed is kept
    assert "Nothing was changed." in answer.text
    assert identity.list_sites(installation.registry, installation.operator) == before
    assert not _audit(installation, head, category="site", outcome="success")


# ---------------------------------------------------------------- users and roles


def test_the_admin_adds_a_user_gives_and_takes_a_role_and_disables_them(admin, installation):
    head = _head(installation)
    added = _post(
        admin,
        "/admin/users",
        {
            "email": "Nurse@Example.org",
            "display_name": "Nurse N",
            "password": "",
            "role": "clinician",
            "site": "B",
        },
    )
    assert "Saved: nurse@example.org was added." in added.text
    granted = _post(
        admin,
        "/admin/users/roles",
        {"email": "nurse@example.org", "role": "data_entry", "site": "A", "change": "grant"},
    )
    assert "Saved: nurse@example.org has the new role." in granted.text
    revoked = _post(
        admin,
        "/admin/users/roles",
        {"email": "nurse@example.org", "role": "clinician", "site": "B", "change": "revoke"},
    )
    assert "Saved: the role was taken away from nurse@example.org." in revoked.text
    users = {u.email: u for u in identity.list_users(installation.registry, installation.operator)}
    nurse = users["nurse@example.org"]
    assert [(r.role, r.site) for r in nurse.roles] == [("data_entry", "A")] and not nurse.disabled
    disabled = _post(admin, "/admin/users/disable", {"email": "nurse@example.org"})
    assert "Saved: nurse@example.org is disabled." in disabled.text
    users = {u.email: u for u in identity.list_users(installation.registry, installation.operator)}
    assert users["nurse@example.org"].disabled
    changes = [e["details"] for e in _audit(installation, head, action="privilege_change")]
    assert changes == [
        {"user": "nurse@example.org", "granted": "clinician"},
        {"user": "nurse@example.org", "granted": "data_entry"},
        {"user": "nurse@example.org", "revoked": "clinician"},
        {"user": "nurse@example.org", "disabled": True},
    ]
    assert _audit(installation, head, action="create", category="identity")[0]["details"] == {
        "user": "nurse@example.org"
    }


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"email": "not an address", "role": "clinician", "site": "A"}, {"add-email"}),
        ({"email": "x1@example.org", "role": "clinician", "site": ""}, {"add-site"}),
        ({"email": "x2@example.org", "role": "admin", "site": "A"}, {"add-site"}),
        ({"email": "x3@example.org", "role": "wizard", "site": "A"}, {"add-role"}),
        ({"email": "x4@example.org", "role": "clinician", "site": "A", "password": "short"}, set()),
        ({"email": "admin@example.org", "role": "clinician", "site": "A"}, set()),
    ],
)
def test_a_bad_user_is_refused_and_nothing_is_stored(admin, installation, data, fields):
    before = identity.list_users(installation.registry, installation.operator)
    answer = _post(admin, "/admin/users", {"display_name": "", "password": "", **data})
    assert answer.status_code in (409, 422)
    assert set(_problems(answer.text)) == fields
    assert "Nothing was changed." in answer.text and "short" not in answer.text
    assert identity.list_users(installation.registry, installation.operator) == before


def test_the_admin_cannot_disable_themself_nor_give_a_role_twice(admin, installation):
    before = identity.list_users(installation.registry, installation.operator)
    own = _post(admin, "/admin/users/disable", {"email": installation.emails["admin"]})
    assert own.status_code == 422 and "You cannot disable your own account." in own.text
    twice = _post(
        admin,
        "/admin/users/roles",
        {"email": "clinician.a@example.org", "role": "clinician", "site": "A", "change": "grant"},
    )
    assert twice.status_code == 409 and "already has the clinician role" in twice.text
    assert identity.list_users(installation.registry, installation.operator) == before


# ---------------------------------------------------------------- tokens


def test_a_token_is_shown_once_works_and_stops_when_revoked(app, admin, installation):
    head = _head(installation)
    created = _post(admin, "/admin/tokens", {"name": "nightly export", "days": "30"})
    assert created.status_code == 200 and "this is the only time it is shown" in created.text
    secret = re.search(r'<code class="link" id="new-token">([^<]+)</code>', created.text).group(1)
    api = TestClient(app)
    assert api.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listing = admin.get("/admin/tokens", headers=HTML).text
    assert "nightly export" in listing and secret not in listing
    [made] = _audit(installation, head, action="create", category="token")
    token_id = made["details"]["token_id"]
    revoked = _post(admin, f"/admin/tokens/{token_id}/revoke", {})
    assert f"Saved: token {token_id} was revoked" in revoked.text
    assert api.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert _audit(installation, head, action="revoke", category="token")[0]["details"] == {
        "token_id": token_id
    }


def test_a_bad_token_request_is_refused_beside_its_field_and_makes_no_token(admin, installation):
    head = _head(installation)
    refused = (
        ({"name": " ", "days": "30"}, "add-name"),
        ({"name": "x", "days": "ninety"}, "add-days"),
        ({"name": "x", "days": "0"}, "add-days"),
    )
    for data, field in refused:
        answer = _post(admin, "/admin/tokens", data)
        assert answer.status_code == 422 and _problems(answer.text) == [field], data
    assert not _audit(installation, head, category="token", outcome="success")


# ---------------------------------------------------------------- trusted CDS clients


def test_the_admin_trusts_a_cds_client_from_a_pasted_jwk_set_and_removes_it(admin, installation):
    keys = ec_client(issuer="https://ehr.admin-test.example.org")
    head = _head(installation)
    added = _post(
        admin,
        "/admin/cds-clients",
        {
            "issuer": keys.issuer,
            "jwks_url": "",
            "jwks": json.dumps(keys.jwks),
            "site": "A",
            "origins": "https://ehr.admin-test.example.org",
            "jku": "",
            "fhir_servers": "https://fhir.admin-test.example.org/r4/\n",
        },
    )
    assert f"Saved: careloop now trusts the CDS client {keys.issuer}." in added.text
    [client] = [
        c
        for c in list_clients(installation.registry, installation.operator)
        if c.issuer == keys.issuer
    ]
    assert (client.site_code, client.key_ids, client.fhir_servers) == (
        "A",
        (keys.kid,),
        ("https://fhir.admin-test.example.org/r4",),
    )
    removed = _post(admin, "/admin/cds-clients/remove", {"issuer": keys.issuer})
    assert "no longer trusts" in removed.text
    assert keys.issuer not in {
        c.issuer for c in list_clients(installation.registry, installation.operator)
    }
    actions = [e["action"] for e in _audit(installation, head, category="cds")]
    assert actions == ["cds.trust_client", "cds.distrust_client"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"issuer": "https://e.example.org", "jwks_url": "", "jwks": ""}, "add-jwks"),
        (
            {
                "issuer": "https://e.example.org",
                "jwks_url": "http://e.example.org/jwks",
                "jwks": "",
            },
            "add-jwks_url",
        ),
        (
            {
                "issuer": "https://e.example.org",
                "jwks_url": "",
                "jwks": '{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "1"}]}',
            },
            "add-jwks",
        ),
        ({"issuer": "https://e.example.org", "jwks_url": "", "jwks": "not json"}, "add-jwks"),
        ({"issuer": " ", "jwks_url": "https://e.example.org/jwks", "jwks": ""}, "add-issuer"),
        (
            {
                "issuer": "https://e.example.org",
                "jwks_url": "https://e.example.org/jwks",
                "jwks": "",
                "origins": "ehr.example.org",
            },
            "add-origins",
        ),
        (
            {
                "issuer": "https://e.example.org",
                "jwks_url": "https://e.example.org/jwks",
                "jwks": "",
                "fhir_servers": "ftp://x",
            },
            "add-fhir_servers",
        ),
    ],
)
def test_a_bad_cds_client_is_refused_beside_its_field_and_not_trusted(
    admin, installation, data, field
):
    before = list_clients(installation.registry, installation.operator)
    answer = _post(
        admin,
        "/admin/cds-clients",
        {"site": "", "origins": "", "jku": "", "fhir_servers": "", **data},
    )
    assert answer.status_code == 422 and _problems(answer.text) == [field]
    assert list_clients(installation.registry, installation.operator) == before


# ---------------------------------------------------------------- forms


def test_the_admin_imports_a_redcap_dictionary_and_sees_its_versions(admin, installation):
    head = _head(installation)
    token = _csrf(admin.get("/admin/forms", headers=HTML).text)
    first = admin.post(
        "/admin/forms",
        data={"csrf_token": token, "format": ""},
        files={"file": ("check.csv", REDCAP.encode(), "text/csv")},
        headers=HTML,
    )
    assert first.status_code == 200 and "Saved: the file was imported" in first.text
    assert "a new form" in first.text
    changed = REDCAP.replace("Weight (kg)", "Body weight (kg)")
    second = admin.post(
        "/admin/forms",
        data={"csrf_token": token, "format": "redcap"},
        files={"file": ("check.csv", changed.encode(), "text/csv")},
        headers=HTML,
    )
    assert "a new version" in second.text
    [summary] = [
        f
        for f in forms_store.list_forms(installation.registry, installation.operator)
        if f.name == "admin_check"
    ]
    assert summary.versions == 2
    versions = admin.get("/admin/forms/admin_check", headers=HTML)
    assert (
        versions.status_code == 200
        and versions.text.count('<td data-label="Format">redcap</td>') == 2
    )
    assert "Body weight (kg)" in versions.text
    entries = _audit(installation, head, category="form_definition")
    assert [e["action"] for e in entries] == ["create", "update"]


def test_a_bad_dictionary_is_refused_row_by_row_and_changes_no_form(admin, installation):
    before = forms_store.list_forms(installation.registry, installation.operator)
    token = _csrf(admin.get("/admin/forms", headers=HTML).text)
    bad = REDCAP + "bad name!,admin_check,,wizard,Label,,,,,,,,,,,,,\n"
    answer = admin.post(
        "/admin/forms",
        data={"csrf_token": token, "format": "redcap"},
        files={"file": ("bad.csv", bad.encode(), "text/csv")},
        headers=HTML,
    )
    assert answer.status_code == 422 and "What to fix in the file" in answer.text
    wheres = re.findall(r'<td data-label="Where"><code class="link">([^<]+)</code>', answer.text)
    assert wheres and all(w.startswith("bad.csv:4") for w in wheres), wheres
    none = admin.post("/admin/forms", data={"csrf_token": token}, headers=HTML)
    assert none.status_code == 422 and _problems(none.text) == ["import-file"]
    assert forms_store.list_forms(installation.registry, installation.operator) == before


# ---------------------------------------------------------------- data quality


def test_the_data_quality_page_shows_the_latest_stored_check_by_table_and_form(admin, installation):
    before = admin.get("/admin/data-quality", headers=HTML)
    assert before.status_code == 200
    assert "There is no warehouse yet" in before.text or "No data-quality check" in before.text
    refresh_installation(installation)
    with Warehouse.from_settings(installation.settings) as warehouse:
        report, _ = check_warehouse(installation.registry, warehouse, installation.operator)
    page = admin.get("/admin/data-quality", headers=HTML).text
    counts = report.counts
    assert f"<strong>{counts['fail']} need a look</strong>" in page
    assert f"{counts['pass']} passed" in page
    shown = re.findall(r'<td data-label="Check"><code class="link">([^<]+)</code>', page)
    assert sorted(shown) == sorted(r.check_id for r in report.failed)
    tables = re.findall(r'<td data-label="Table"><code>([^<]+)</code>', page)
    assert set(tables) == {r.table or "(whole warehouse)" for r in report.results}
    forms = re.findall(r'<td data-label="Form"><a href="/admin/forms/([^"]+)"', page)
    assert forms == [
        f.name for f in forms_store.list_forms(installation.registry, installation.operator)
    ]


# ---------------------------------------------------------------- the password, again


def _age_sessions(inst: Installation, email: str) -> None:
    """Make the user's sessions' last password entry a day old."""
    with inst.registry.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE web_session SET authenticated_at = :t WHERE user_id = "
                "(SELECT id FROM app_user WHERE email = :e)"
            ),
            {"t": utcnow() - timedelta(days=1), "e": email},
        )


def test_an_old_session_gives_a_user_only_with_the_password_typed_again(app, installation):
    client = _signed_in(app, installation.emails["admin"])
    _age_sessions(installation, installation.emails["admin"])
    form = client.get("/admin/users", headers=HTML).text
    assert 'name="password_confirm"' in form
    data = {
        "email": "late@example.org",
        "display_name": "",
        "password": "",
        "role": "analyst",
        "site": "",
    }

    def users() -> set[str]:
        return {u.email for u in identity.list_users(installation.registry, installation.operator)}

    without = _post(client, "/admin/users", data)
    assert without.status_code == 422 and _problems(without.text) == ["add-password_confirm"]
    wrong = _post(client, "/admin/users", {**data, "password_confirm": "not my password"})
    assert wrong.status_code == 422 and "The password is not right." in wrong.text
    assert "late@example.org" not in users()
    right = _post(client, "/admin/users", {**data, "password_confirm": PASSWORD})
    assert "Saved: late@example.org was added." in right.text
    assert "late@example.org" in users()
    assert 'name="password_confirm"' not in client.get("/admin/users", headers=HTML).text


def test_a_wrong_password_at_reauth_shows_the_form_again_with_the_reason(app, installation):
    client = _signed_in(app, installation.emails["admin"])
    token = _csrf(client.get("/reauth?next=/admin/users", headers=HTML).text)
    wrong = client.post(
        "/reauth",
        data={"password": "not my password", "csrf_token": token, "next": "/admin/users"},
        headers=HTML,
        follow_redirects=False,
    )
    assert wrong.status_code == 401 and "The password is not right." in wrong.text
    assert 'action="/reauth"' in wrong.text and 'value="/admin/users"' in wrong.text
    right = client.post(
        "/reauth",
        data={"password": PASSWORD, "csrf_token": token, "next": "/admin/users"},
        headers=HTML,
        follow_redirects=False,
    )
    assert right.status_code == 303 and right.headers["location"] == "/admin/users"
