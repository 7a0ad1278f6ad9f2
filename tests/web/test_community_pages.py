"""Learning community pages through the web app: who sees what, voting by form, the Study.

On the demo installation, whose community has a patient partner and a parent
carer among its members (careloop.demo.learning_community).
"""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from careloop import community
from careloop.demo.learning_community import NAME
from careloop.trust.principal import Principal
from tests.web.dashboard_demo import (
    DEMO_GROUP,
    DemoInstallation,
)

HTML = {"accept": "text/html"}

pytestmark = DEMO_GROUP


@pytest.fixture(scope="module")
def ids(app: object) -> dict[str, int]:
    registry = app.state.registry  # type: ignore[attr-defined]
    op = Principal.operator("tests")
    cid = next(c.id for c in community.list_communities(registry, op) if c.name == NAME)
    cycles = community.list_cycles(registry, op, community_id=cid)
    package = next(c.id for c in cycles if c.kind == "change_package")
    return {"community": cid, "package": package}


def _client(app: object, email: str, password: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def _as(app: object, demo: DemoInstallation, role: str, site: str | None = None) -> TestClient:
    login = demo.login(role, site)
    return _client(app, login.email, login.password)


def _refusals(app: object, action: str) -> list[dict[str, object]]:
    registry = app.state.registry  # type: ignore[attr-defined]
    with registry.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT outcome, user_email, details FROM audit_entry "
                "WHERE category = 'community' AND action = :a ORDER BY seq"
            ),
            {"a": action},
        )
        return [
            {"outcome": r.outcome, "email": r.user_email, **json.loads(r.details or "{}")}
            for r in rows
            if r.outcome != "success"
        ]


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_patient_member_sees_the_community_its_members_and_the_charter_rule(app, demo, ids):
    client = _as(app, demo, "patient", "S001")
    listing = client.get("/communities", headers=HTML)
    assert listing.status_code == 200 and NAME in listing.text
    assert "4 of them patients or carers" in listing.text
    page = client.get(f"/communities/{ids['community']}", headers=HTML)
    assert page.status_code == 200
    assert "Priya Patient-partner (advisory council)</strong> — patient partner" in page.text
    assert "Colm Carer (parent, family advisory council)</strong> — carer" in page.text
    assert (
        "Majority: more yes than no votes, with at least 50% of members voting. Nothing "
        "passes unless a patient or carer member votes yes." in page.text
    )
    assert "Version 1, adopted" in page.text and "(founding charter)" in page.text
    home = client.get("/", headers=HTML)
    assert 'href="/communities"' in home.text


def test_a_non_member_gets_not_found_for_every_community_page_and_it_is_audited(app, demo, ids):
    client = _as(app, demo, "auditor")
    cid = ids["community"]
    before = len(_refusals(app, "community.show"))
    for path in (
        f"/communities/{cid}",
        f"/communities/{cid}/proposals",
        f"/communities/{cid}/proposals/1",
        f"/communities/{cid}/priorities",
        f"/communities/{cid}/decisions",
        f"/communities/{cid}/cycles",
        f"/communities/{cid}/cycles/{ids['package']}",
    ):
        response = client.get(path, headers=HTML)
        assert response.status_code == 404, path
        assert "open to their members only" in response.text
        assert NAME not in response.text
    # A community that does not exist reads exactly like one the caller is not in.
    missing = client.get("/communities/999999", headers=HTML)
    assert missing.status_code == 404 and "open to their members only" in missing.text
    refused = _refusals(app, "community.show")
    assert len(refused) >= before + 7
    assert refused[-2]["email"] == demo.login("auditor").email
    assert refused[-2]["community"] == cid
    assert client.get("/communities", headers=HTML).text.count("/communities/") == 0


def test_a_member_of_another_community_gets_not_found_for_this_one_and_its_study(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    entry = demo.login("data_entry", "S001")
    other = community.create_community(
        registry,
        Principal.operator("tests"),
        name="Transition clinic practice",
        purpose="Smooth moves to adult care.",
        problem="",
        scale="practice",
        charter=community.CharterTerms(purpose="Smooth moves", decision_rule="consensus"),
        known_measures=[],
        facilitator=entry.email,
    )
    client = _client(app, entry.email, entry.password)
    assert client.get(f"/communities/{other.community.id}", headers=HTML).status_code == 200
    cid, cycle = ids["community"], ids["package"]
    assert client.get(f"/communities/{cid}/cycles/{cycle}", headers=HTML).status_code == 404
    # Another community's proposal or cycle under one's own community's id is not found either.
    assert (
        client.get(f"/communities/{other.community.id}/cycles/{cycle}", headers=HTML).status_code
        == 404
    )
    api = client.get(f"/api/communities/{cid}/cycles/{cycle}/study")
    assert api.status_code == 403
    refused = _refusals(app, "cycle.show")
    assert refused[-1]["email"] == entry.email and refused[-1]["cycle"] == cycle


def test_a_carer_votes_by_form_and_the_tally_shows_the_patients_and_carers_group(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    opened = community.add_priority(
        registry,
        Principal.operator("tests"),
        cid,
        kind="idea",
        title="A text reminder before each clinic visit",
    )
    pid = opened.proposal_id
    client = _as(app, demo, "carer", "S002")
    page = client.get(f"/communities/{cid}/proposals/{pid}", headers=HTML)
    assert page.status_code == 200 and "Send my vote" in page.text
    # Without the session's CSRF token the vote is refused and nothing is recorded.
    forged = client.post(
        f"/communities/{cid}/proposals/{pid}/vote",
        data={"choice": "yes"},
        headers=HTML,
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert community.show_proposal(registry, Principal.operator("t"), pid).votes == []
    # A choice the charter does not know: a plain message, nothing recorded.
    bad = client.post(
        f"/communities/{cid}/proposals/{pid}/vote",
        data={"choice": "maybe", "csrf_token": _csrf(page.text)},
        headers=HTML,
    )
    assert bad.status_code in (400, 422) and "Your vote was not recorded" in bad.text
    assert community.show_proposal(registry, Principal.operator("t"), pid).votes == []
    done = client.post(
        f"/communities/{cid}/proposals/{pid}/vote",
        data={"choice": "yes", "comment": "Parents forget", "csrf_token": _csrf(page.text)},
        headers=HTML,
    )
    assert done.status_code == 200
    assert "<strong>Patients and carers</strong>: 1 yes · 0 no · 0 abstain" in done.text
    assert "<strong>Other members</strong>: 0 yes · 0 no · 0 abstain" in done.text
    assert "You voted <strong>yes</strong>" in done.text
    (vote,) = community.show_proposal(registry, Principal.operator("t"), pid).votes
    assert (vote.email, vote.choice, vote.group) == (
        demo.login("carer", "S002").email,
        "yes",
        "patients_and_carers",
    )
    ranked = client.get(f"/communities/{cid}/priorities", headers=HTML)
    assert "A text reminder before each clinic visit" in ranked.text


def test_a_non_member_cannot_vote_by_posting_the_form(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    opened = community.add_priority(
        registry, Principal.operator("tests"), cid, kind="problem", title="Long waits"
    )
    client = _as(app, demo, "auditor")
    home = client.get("/", headers=HTML)
    response = client.post(
        f"/communities/{cid}/proposals/{opened.proposal_id}/vote",
        data={"choice": "no", "csrf_token": _csrf(home.text)},
        headers=HTML,
    )
    assert response.status_code == 404
    assert (
        community.show_proposal(registry, Principal.operator("t"), opened.proposal_id).votes == []
    )
    refused = _refusals(app, "community.vote")
    assert refused[-1]["email"] == demo.login("auditor").email


def test_the_cycle_page_shows_plan_do_study_act_with_the_study_of_the_cli(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid, cycle = ids["community"], ids["package"]
    client = _as(app, demo, "clinician", "S001")
    page = client.get(f"/communities/{cid}/cycles/{cycle}", headers=HTML)
    assert page.status_code == 200
    api = client.get(f"/api/communities/{cid}/cycles/{cycle}/study").json()
    study = api["study"]
    assert api["cycle_id"] == cycle and study is not None
    # The same Study the CLI computes from the same stored results.
    from careloop.measures import load_results
    from careloop.warehouse.connection import Warehouse

    view = community.show_cycle(registry, Principal.operator("t"), cycle)
    with Warehouse.from_settings(demo.settings, read_only=True) as wh:
        results = load_results(wh)
    expected = community.study_cycle(
        view, results, community.measure_improvements(demo.settings.measures_dir)
    ).to_dict()
    assert study["progress"] == expected["progress"]
    assert [m["effect"] for m in study["measures"]] == [m["effect"] for m in expected["measures"]]
    for m in expected["measures"]:
        e = m["effect"]
        assert (
            f"odds ratio {e['estimate']:.2f} (95% CI {e['ci_low']:.2f} to {e['ci_high']:.2f})"
            in page.text
        )
        assert f'data-phase-starts="{m["phase"]["starts"][:10]}"' in page.text
    change = view.do["start"]
    assert change.isoformat() == study["change"]["started"]
    # Every measure's chart starts its new phase at the change date, on the page and in JSON.
    assert [m["phase"]["starts"][:10] for m in study["measures"]] == [change.isoformat()] * len(
        study["measures"]
    )
    assert re.findall(r'data-phase-starts="([^"]+)"', page.text) == [change.isoformat()] * len(
        study["measures"]
    )
    assert (
        f'Progress score: <span id="progress-score">{study["progress"]["score"]}</span>'
        in page.text
    )
    for step in study["progress"]["steps"]:
        assert (
            step["reason"].replace("“", "&#8220;")[:20] in page.text or step["title"] in page.text
        )
    assert page.text.count("<svg") >= len(study["measures"])
    assert "This balancing measure" in page.text
    assert "Adopt" in page.text  # the demo records Act on the change package


def test_the_study_api_is_declared_in_openapi(app):
    client = TestClient(app)  # type: ignore[arg-type]
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/api/communities/{community_id}/cycles/{cycle_id}/study"]["get"]
    assert "404" in route["responses"] and "200" in route["responses"]


def test_the_decision_log_finds_entries_with_every_word(app, demo, ids):
    client = _as(app, demo, "patient", "S001")
    cid = ids["community"]
    found = client.get(f"/communities/{cid}/decisions", params={"search": "two things"})
    assert "What the first site adaptations taught us" in found.text
    assert "1 entry with" in found.text
    none = client.get(f"/communities/{cid}/decisions", params={"search": "two zebras"})
    assert "0 entries with" in none.text
    assert "What the first site adaptations taught us" not in none.text


def _visible(page: str) -> str:
    """The words of a page's main part as a reader sees them (no markup, no chart)."""
    main = re.search(r"<main.*?</main>", page, re.S)
    assert main is not None
    words = re.sub(r"<svg.*?</svg>", " ", main.group(0), flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", words)))


def test_a_patient_member_reads_every_page_in_words_without_internal_identifiers(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    op = Principal.operator("t")
    cid = ids["community"]
    cycles = community.list_cycles(registry, op, community_id=cid)
    proposals = community.list_proposals(registry, op, cid)
    detail = community.show_community(registry, op, cid)
    client = _as(app, demo, "patient", "S001")
    paths = [f"/communities/{cid}{tail}" for tail in ("", "/proposals", "/priorities")]
    paths += [f"/communities/{cid}/decisions", f"/communities/{cid}/cycles"]
    paths += [f"/communities/{cid}/cycles/{c.id}" for c in cycles]
    paths += [f"/communities/{cid}/proposals/{p.id}" for p in proposals]
    identifiers = [
        "remission-at-visit",
        "steroid-at-visit",
        *detail.knowledge,
        "cli:",
        "@",  # an e-mail address or a knowledge object's version reference
    ]
    for path in paths:
        response = client.get(path, headers=HTML)
        assert response.status_code == 200, path
        seen = _visible(response.text)
        for identifier in identifiers:
            assert identifier not in seen, (path, identifier)
        assert not re.search(r"\bcycle \d+\b", seen), path
        assert not re.search(r"\b\d{4}-\d\d-\d\d\b", seen), path  # dates in words
    about = _visible(client.get(f"/communities/{cid}", headers=HTML).text)
    assert "We follow: Clinic visits with the disease in remission (PGA quiescent);" in about
    assert "adopted" in about and "by an administrator (founding charter)" in about
    package = _visible(client.get(f"/communities/{cid}/cycles/{ids['package']}", headers=HTML).text)
    children = [c.title for c in cycles if c.parent_id == ids["package"]]
    assert children and all(title in package for title in children)
    # The effect in a sentence, beside the odds ratio and its 95% CI.
    assert re.search(
        r"After the change, “Clinic visits with the disease in remission \(PGA quiescent\)” "
        r"became more common than the trend before it predicted: the odds were \d\.\d\d times "
        r"as high\. We can be 95% sure the true figure lies between \d\.\d\d and \d\.\d\d "
        r"times, so the shift is unlikely to be chance alone\.",
        package,
    )


def test_a_clinician_member_still_sees_the_decision_support_identifier(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    (knowledge,) = community.show_community(registry, Principal.operator("t"), cid).knowledge
    client = _as(app, demo, "clinician", "S001")
    assert knowledge in _visible(client.get(f"/communities/{cid}", headers=HTML).text)


def _audited(app: object, email: str) -> list[str]:
    registry = app.state.registry  # type: ignore[attr-defined]
    with registry.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action FROM audit_entry WHERE user_email = :e AND category = 'community' "
                "AND outcome = 'success' ORDER BY seq"
            ),
            {"e": email},
        )
        return [r.action for r in rows]


def test_every_community_page_a_member_opens_is_audited_with_what_it_read(app, demo, ids):
    cid, cycle = ids["community"], ids["package"]
    (proposal, *_) = community.list_proposals(
        app.state.registry,  # type: ignore[attr-defined]
        Principal.operator("t"),
        cid,
    )
    me = demo.login("clinician", "S002")
    client = _client(app, me.email, me.password)
    expected = {
        "/communities": ["community.list", "community.invitations"],
        f"/communities/{cid}": ["community.show"],
        f"/communities/{cid}/proposals": ["community.show", "community.proposals"],
        f"/communities/{cid}/proposals/{proposal.id}": ["community.show", "community.proposal"],
        f"/communities/{cid}/priorities": ["community.show", "community.priorities"],
        # The log names the learning cycles it links to by their titles.
        f"/communities/{cid}/decisions": ["community.show", "community.decisions", "cycle.list"],
        f"/communities/{cid}/cycles": ["community.show", "cycle.list"],
        f"/communities/{cid}/cycles/{cycle}": [
            "community.show",
            "cycle.show",
            "community.decisions",
            "cycle.list",
            # What the page adds to the Study: focus groups' themes, tools used, the design.
            "cycle.findings.list",
            "community.toolkit",
            "cycle.design_read",
        ],
    }
    for path, actions in expected.items():
        before = len(_audited(app, me.email))
        assert client.get(path, headers=HTML).status_code == 200, path
        assert _audited(app, me.email)[before:] == actions, path
