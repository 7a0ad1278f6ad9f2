"""The rest of a learning community in the web app: aims and driver diagrams, NASSS,
maturity, the toolkit, who contributes, and what the cycle page adds (findings,
tools, the behaviour-change design).

On the demo installation (careloop.demo.learning_community), to which these tests
add an aim, the tools the change package used and its COM-B design.
"""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from careloop import community
from careloop.community.log import NASSS_DOMAINS as DOMAIN_KEYS
from careloop.community.toolkit import COM_B, FUNCTIONS, POLICIES, STAGES
from careloop.demo.learning_community import NAME
from careloop.trust.principal import Principal
from careloop.web.pages import community_words as words
from tests.web.community_strategy_demo import add_strategy
from tests.web.dashboard_demo import DemoInstallation
from tests.web.test_community_pages import _audited, _client, _csrf, _refusals, _visible

HTML = {"accept": "text/html"}
OP = Principal.operator("tests")


@pytest.fixture(scope="module")
def ids(app: object, demo: DemoInstallation) -> dict[str, int]:
    """The demo community with an aim, the tools its change package used and its design."""
    return add_strategy(app.state.registry, demo.settings)  # type: ignore[attr-defined]


def _as(app: object, demo: DemoInstallation, role: str, site: str | None = None) -> TestClient:
    login = demo.login(role, site)
    return _client(app, login.email, login.password)


def _page(client: TestClient, path: str) -> str:
    response = client.get(path, headers=HTML)
    assert response.status_code == 200, (path, response.text[:500])
    return response.text


PAGES = ("/strategy", "/nasss", "/maturity", "/toolkit", "/engagement")


# ---------------------------------------------------------------- words


def test_every_domain_key_has_words_on_the_pages():
    assert list(words.NASSS_DOMAINS) == list(DOMAIN_KEYS)
    assert list(words.COM_B_NAMES) == list(COM_B)
    assert list(words.FUNCTION_NAMES) == list(FUNCTIONS)
    assert list(words.POLICY_NAMES) == list(POLICIES)
    assert list(words.STAGE_NAMES) == list(STAGES)
    assert list(words.CONTRIBUTION_NAMES) == list(community.CONTRIBUTIONS)


# ---------------------------------------------------------------- who may see


def test_a_non_member_gets_not_found_for_every_new_page_and_it_is_audited(app, demo, ids):
    client = _as(app, demo, "auditor")
    cid = ids["community"]
    before = len(_refusals(app, "community.show"))
    for tail in PAGES:
        response = client.get(f"/communities/{cid}{tail}", headers=HTML)
        assert response.status_code == 404, tail
        assert "open to their members only" in response.text and NAME not in response.text
    assert len(_refusals(app, "community.show")) == before + len(PAGES)
    assert _refusals(app, "community.show")[-1]["community"] == cid


def test_a_non_member_cannot_post_any_new_form_and_nothing_is_recorded(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    client = _as(app, demo, "auditor")
    token = _csrf(client.get("/", headers=HTML).text)
    nasss_before = len(community.nasss_assessments(registry, OP, cid))
    rounds_before = community.maturity_profile(registry, OP, cid).rounds
    tools_before = {t.key: t.ratings for t in community.list_toolkit(registry, OP, cid)}
    posts = {
        "/nasss": {"subject": "x", **{f"rating_{d}": "simple" for d in DOMAIN_KEYS}},
        "/maturity": {"round": "outsiders", **{f"level_{d}": "5" for d in words_maturity()}},
        "/toolkit/pdsa-template/rating": {"stars": "5"},
    }
    for tail, data in posts.items():
        response = client.post(
            f"/communities/{cid}{tail}", data={**data, "csrf_token": token}, headers=HTML
        )
        assert response.status_code == 404, tail
        assert NAME not in response.text
    assert len(community.nasss_assessments(registry, OP, cid)) == nasss_before
    assert community.maturity_profile(registry, OP, cid).rounds == rounds_before
    assert {t.key: t.ratings for t in community.list_toolkit(registry, OP, cid)} == tools_before
    me = demo.login("auditor").email
    for action in ("community.nasss", "community.maturity", "community.toolkit_rate"):
        assert _refusals(app, action)[-1]["email"] == me, action


def words_maturity() -> list[str]:
    from careloop.community.maturity import DOMAIN_KEYS as keys

    return list(keys)


def test_every_new_page_a_member_opens_is_audited_with_what_it_read(app, demo, ids):
    cid, cycle = ids["community"], ids["package"]
    me = demo.login("clinician", "S002")
    client = _client(app, me.email, me.password)
    expected = {
        # The driver diagram names the cycles its change ideas link to by their titles.
        "/strategy": ["community.show", "community.aims", "cycle.list"],
        "/nasss": ["community.show", "community.nasss_read"],
        "/maturity": ["community.show", "community.maturity_read"],
        "/toolkit": ["community.show", "community.toolkit", "cycle.list"],
        "/engagement": ["community.show", "community.engagement"],
        f"/cycles/{cycle}": [
            "community.show",
            "cycle.show",
            "community.decisions",
            "cycle.list",
            "cycle.findings.list",
            "community.toolkit",
            "cycle.design_read",
        ],
    }
    for tail, actions in expected.items():
        before = len(_audited(app, me.email))
        _page(client, f"/communities/{cid}{tail}")
        assert _audited(app, me.email)[before:] == actions, tail


# ---------------------------------------------------------------- strategy


def test_the_strategy_page_draws_the_driver_diagram_as_a_tree_and_the_family_of_measures(
    app, demo, ids
):
    cid = ids["community"]
    whole = _page(_as(app, demo, "clinician", "S001"), f"/communities/{cid}/strategy")
    # This test's aim (other test modules sharing the demo may add theirs).
    found = re.search(
        rf'<section class="card aim" id="aim-{ids["aim"]}">.*?</section>', whole, re.S
    )
    assert found is not None
    page = found.group(0)
    text = _visible(f"<main>{page}</main>")
    assert "More children with IBD in remission at their clinic visits" in text
    assert "How much from 60% to 75% of visits" in text and "By when 30 Jun 2027" in text
    # aim → primary → secondary → change idea, each list nested in the one before.
    tree = re.search(r'<ul class="tree".*?</ul>\s*</li>\s*</ul>', page, re.S)
    assert tree is not None
    nodes = re.findall(r'<span class="node ([a-z-]+)"><span class="kind">([^<]+)</span>', page)
    assert nodes == [
        ("aim-node", "Aim"),
        ("primary", "Primary driver"),
        ("secondary", "Secondary driver"),
        ("idea", "Change idea"),
        ("idea", "Change idea"),
        ("primary", "Primary driver"),
    ]
    depth, depths = 0, {}
    for token in re.finditer(r"<ul|</ul>|<span class=\"node ([a-z-]+)\"", tree.group(0)):
        if token.group(0) == "<ul":
            depth += 1
        elif token.group(0) == "</ul>":
            depth -= 1
        else:
            depths.setdefault(token.group(1), set()).add(depth)
    assert depths == {"aim-node": {1}, "primary": {2}, "secondary": {3}, "idea": {4}}
    assert f'href="/communities/{cid}/cycles/{ids["package"]}">Network change package</a>' in page
    # The family of measures: the outcome first, each linked to its chart page.
    rows = re.findall(r'<tr data-measure="([^"]+)" data-role="([^"]+)">(.*?)</tr>', page, re.S)
    assert [(m, r) for m, r, _ in rows] == [
        ("remission-at-visit", "outcome"),
        ("steroid-at-visit", "balancing"),
    ]
    outcome, balancing = (html.unescape(re.sub(r"<[^>]+>", " ", r[2])) for r in rows)
    assert 'href="/measures/remission-at-visit"' in rows[0][2]
    assert "Clinic visits with the disease in remission (PGA quiescent)" in outcome
    assert "remission-at-visit" in outcome and "Higher is better" in outcome
    assert re.search(r"0\.6\s+0\.75", outcome)
    assert "Lower is better" in balancing and "must not pass 0.35" in balancing


def test_a_patient_reads_the_strategy_without_measure_ids_or_links_to_staff_pages(app, demo, ids):
    page = _page(_as(app, demo, "patient", "S001"), f"/communities/{ids['community']}/strategy")
    assert 'href="/measures/' not in page
    text = _visible(page)
    assert "Clinic visits with the disease in remission (PGA quiescent)" in text
    assert "remission-at-visit" not in text


# ---------------------------------------------------------------- NASSS


def _domain_block(section: str, key: str) -> str:
    """The words of one NASSS domain of a profile, up to the next domain."""
    after = section.split(f'data-domain="{key}">', 1)[1]
    return _visible(
        "<main>" + re.split(r'<li class="domain|</ul>\s*<(?:h3|/section)', after)[0] + "</main>"
    )


def test_the_nasss_page_shows_the_latest_profile_with_disagreement_in_words(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    (latest,) = [r for r in community.nasss_profile_of(registry, OP, cid)][-1:]
    page = _page(_as(app, demo, "clinician", "S001"), f"/communities/{cid}/nasss")
    section = re.search(
        rf'<section class="card nasss-profile" data-subject="{re.escape(latest.subject)}">'
        r".*?</section>",
        page,
        re.S,
    )
    assert section is not None
    shown = section.group(0)
    assert f"Rated by {len(latest.raters)} members" in _visible(f"<main>{shown}</main>")
    domains = re.findall(r'<li class="domain( disagree)?" data-domain="([a-z_]+)">', shown)
    assert [d for _, d in domains] == list(DOMAIN_KEYS)
    for flag, key in domains:
        profile = next(p for p in latest.domains if p.domain == key)
        assert bool(flag) == profile.disagreement, key
        block = _domain_block(shown, key)
        assert f": {profile.median}" in block
        assert (
            f"{profile.raters} rated it: {profile.counts['simple']} simple · "
            f"{profile.counts['complicated']} complicated · {profile.counts['complex']} complex"
        ) in block
        for note in profile.notes:
            # Each different note once, with how many members wrote it.
            n = profile.notes.count(note)
            assert block.count(note) == 1 and (n == 1 or f"{note} ({n} members)" in block)
    # The demo's analyst sees the technology as complex, the others as simple.
    assert "Some see it as simple and others as complex" in _domain_block(shown, "technology")
    assert f'<strong class="complex-count">{latest.complex_domains} of 7</strong>' in shown


def test_a_member_records_nasss_ratings_by_form_and_bad_input_changes_nothing(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    client = _as(app, demo, "patient", "S001")
    page = _page(client, f"/communities/{cid}/nasss")
    (knowledge,) = community.show_community(registry, OP, cid).knowledge
    assert f'<option value="{knowledge}"' in page and "our decision support tool" in page
    before = len(community.nasss_assessments(registry, OP, cid))
    full = {f"rating_{d}": "complicated" for d in DOMAIN_KEYS}
    # Without the page's CSRF token: refused, nothing recorded.
    forged = client.post(
        f"/communities/{cid}/nasss", data={"subject": knowledge, **full}, headers=HTML
    )
    assert forged.status_code == 403
    # One domain left out and one rated with a word NASSS does not use.
    bad = {**full, "rating_technology": "easy", "note_condition": "Flares come and go."}
    del bad["rating_wider_system"]
    refused = client.post(
        f"/communities/{cid}/nasss",
        data={"subject": knowledge, **bad, "csrf_token": _csrf(page)},
        headers=HTML,
    )
    assert refused.status_code == 422
    assert "Your ratings were not recorded: The NASSS assessment is not complete" in refused.text
    for key in ("technology", "wider_system"):
        assert f'id="problem-{key}">Rate it simple, complicated, complex.' in refused.text
    assert 'id="problem-condition"' not in refused.text
    assert ">Flares come and go.</textarea>" in refused.text  # what was typed is kept
    assert len(community.nasss_assessments(registry, OP, cid)) == before
    assert _refusals(app, "community.nasss")[-1]["email"] == demo.login("patient", "S001").email
    done = client.post(
        f"/communities/{cid}/nasss",
        data={
            "subject": knowledge,
            **full,
            "note_adopter_system": "Families need to hear the same advice everywhere.",
            "csrf_token": _csrf(page),
        },
        headers=HTML,
    )
    assert done.status_code == 200 and "Thank you: your ratings are recorded." in done.text
    mine = community.nasss_assessments(registry, OP, cid)[-1]
    assert mine.assessed_by == demo.login("patient", "S001").email
    assert mine.subject == knowledge
    assert {d: r["rating"] for d, r in mine.ratings.items()} == dict.fromkeys(
        DOMAIN_KEYS, "complicated"
    )
    assert "Families need to hear the same advice everywhere." in done.text


# ---------------------------------------------------------------- maturity


def test_the_maturity_page_draws_the_latest_round_as_a_radar_with_the_same_figures_in_a_table(
    app, demo, ids
):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    profile = community.maturity_profile(registry, OP, cid)
    latest = profile.rounds[-1]
    page = _page(_as(app, demo, "clinician", "S001"), f"/communities/{cid}/maturity")
    svg = re.search(r"<svg[^>]*role=\"img\".*?</svg>", page, re.S)
    assert svg is not None
    scored = [s for s in latest.domains if s.score is not None]
    # One vertex per scored domain, and the description says every score.
    assert svg.group(0).count('r="5"') == len(scored)
    for s in scored:
        assert f"{s.label} {s.score:.1f}" in html.unescape(svg.group(0))
    rows = re.findall(
        r'<tr data-domain="([a-z_]+)">.*?<td class="num score"[^>]*><strong>([^<]+)</strong>',
        page,
        re.S,
    )
    assert [key for key, _ in rows] == [s.domain for s in latest.domains]
    for (key, shown), s in zip(rows, latest.domains, strict=True):
        assert shown == ("—" if s.score is None else f"{s.score:.1f}"), key
    data = next(s for s in latest.domains if s.domain == "data_and_analytics")
    assert data.evidence is not None and data.evidence.reasons[0] in html.unescape(page)
    steps = re.search(r'<section class="card" id="next-steps">.*?</section>', page, re.S)
    assert steps is not None
    for step in profile.next_steps:
        assert f"<strong>{step['label']}</strong>: {step['next_step']}" in html.unescape(
            steps.group(0)
        )


def test_a_member_rates_maturity_by_form_and_the_page_then_shows_change_over_time(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    me = demo.login("clinician", "S002")
    client = _client(app, me.email, me.password)
    page = _page(client, f"/communities/{cid}/maturity")
    rounds = len(community.maturity_profile(registry, OP, cid).rounds)
    levels = {f"level_{k}": "4" for k in words_maturity()[:6]}
    bad = {**levels, "level_research": "9", "round": "Spring review", "csrf_token": _csrf(page)}
    refused = client.post(f"/communities/{cid}/maturity", data=bad, headers=HTML)
    assert refused.status_code == 422
    assert "Your ratings were not recorded" in refused.text
    assert 'id="problem-research">A level is a whole number from 1 to 5.' in refused.text
    assert len(community.maturity_profile(registry, OP, cid).rounds) == rounds
    good = {**levels, "level_learning_culture": "3", "round": "Spring review"}
    done = client.post(
        f"/communities/{cid}/maturity", data={**good, "csrf_token": _csrf(page)}, headers=HTML
    )
    assert done.status_code == 200 and "Thank you: your ratings are recorded." in done.text
    profile = community.maturity_profile(registry, OP, cid)
    assert len(profile.rounds) == rounds + 1 and profile.rounds[-1].raters == [me.email]
    text = _visible(done.text)
    assert "Round Spring review" in text and '<section class="card" id="over-time">' in done.text
    # The first round is the dashed outline behind the latest.
    assert 'stroke-dasharray="6 4"' in done.text
    change = profile.change["leadership"]
    assert change is not None
    first = profile.rounds[0].domains[0].score
    assert first is not None
    expected = "no change" if change == 0 else f"{'up' if change > 0 else 'down'} {abs(change):.1f}"
    row = re.search(r'<tr data-domain="leadership">.*?</tr>', done.text, re.S)
    assert row is not None and expected in row.group(0)


# ---------------------------------------------------------------- toolkit


def test_the_toolkit_lists_items_by_stage_with_ratings_and_the_cycles_that_used_them(
    app, demo, ids
):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    client = _as(app, demo, "clinician", "S001")
    page = _page(client, f"/communities/{cid}/toolkit")
    items = community.list_toolkit(registry, OP, cid)
    assert re.findall(r'<li class="card tool" id="tool-([a-z0-9-]+)"', page) == [
        t.key for t in items
    ]
    pdsa = page.split('id="tool-pdsa-template"', 1)[1].split("</li>\n", 1)[0]
    assert f'href="/communities/{cid}/cycles/{ids["package"]}">Network change package</a>' in pdsa
    # The item's Markdown is rendered: the run-chart rules are a list with bold names.
    rules = page.split('id="tool-run-chart-rules"', 1)[1].split("</li>\n", 1)[0]
    assert "<strong>A shift</strong>" in rules and "<ol>" in rules
    study = _page(client, f"/communities/{cid}/toolkit?stage=study")
    assert re.findall(r'<li class="card tool" id="tool-([a-z0-9-]+)"', study) == [
        t.key for t in community.list_toolkit(registry, OP, cid, stage="study")
    ]
    assert 'aria-current="page">Study</a>' in study
    unknown = _page(client, f"/communities/{cid}/toolkit?stage=someday")
    assert "There is no stage “someday”" in html.unescape(unknown)


def test_raw_html_in_a_members_toolkit_item_is_shown_as_text(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    community.add_tool(
        registry, OP, cid, key="huddle-card", kind="tool", title="Huddle card", stages=["do"],
        summary="Five questions for the morning huddle.",
        body="<script>alert(1)</script> and [a link](javascript:alert(1))",
    )  # fmt: skip
    page = _page(_as(app, demo, "clinician", "S001"), f"/communities/{cid}/toolkit")
    card = page.split('id="tool-huddle-card"', 1)[1].split("</li>\n", 1)[0]
    assert "<script>" not in card and "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    assert 'href="javascript:' not in card


def test_a_member_rates_a_tool_by_form_and_a_bad_rating_changes_nothing(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    client = _as(app, demo, "carer", "S002")
    page = _page(client, f"/communities/{cid}/toolkit")

    def ratings() -> tuple[int, float | None]:
        tool = next(t for t in community.list_toolkit(registry, OP, cid) if t.key == "nasss-guide")
        return tool.ratings, tool.mean_rating

    before = ratings()
    url = f"/communities/{cid}/toolkit/nasss-guide/rating"
    assert client.post(url, data={"stars": "4"}, headers=HTML).status_code == 403  # no CSRF
    for stars in ("7", "four", ""):
        refused = client.post(url, data={"stars": stars, "csrf_token": _csrf(page)}, headers=HTML)
        assert refused.status_code == 422, stars
        card = refused.text.split('id="tool-nasss-guide"', 1)[1].split("</li>\n", 1)[0]
        assert "Your rating was not recorded: A rating is a whole number from 1 to 5" in card
    missing = client.post(
        f"/communities/{cid}/toolkit/no-such-tool/rating",
        data={"stars": "3", "csrf_token": _csrf(page)},
        headers=HTML,
    )
    assert missing.status_code == 404 and "The toolkit has no item" in missing.text
    assert ratings() == before
    done = client.post(
        url, data={"stars": "4", "comment": "Clear", "csrf_token": _csrf(page)}, headers=HTML
    )
    assert done.status_code == 200 and "Thank you: your rating is recorded." in done.text
    count, mean = ratings()
    assert count == before[0] + 1 and mean is not None
    card = done.text.split('id="tool-nasss-guide"', 1)[1].split("</li>\n", 1)[0]
    assert f"Rated <strong>{mean:.1f} of 5</strong> by {count} member" in card


# ---------------------------------------------------------------- engagement


def test_engagement_shows_each_members_contributions_and_the_patients_and_carers_share(
    app, demo, ids
):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    page = _page(_as(app, demo, "clinician", "S001"), f"/communities/{cid}/engagement")
    figures = community.engagement(registry, OP, cid)
    rows = re.findall(r'<tr(?: class="muted")?><th scope="row">(.*?)</tr>', page, re.S)
    member_rows = rows[: len(figures.members)]
    for row, m in zip(member_rows, figures.members, strict=True):
        cells = re.findall(r'<td class="num"[^>]*>(?:<strong>)?(\d+)', row)
        assert row.startswith(html.escape(m.name)), m.name
        assert [int(c) for c in cells] == [*(m.counts[k] for k in community.CONTRIBUTIONS), m.total]
    total = re.search(r'<tr class="total">(.*?)</tr>', page, re.S)
    assert total is not None
    assert [
        int(c) for c in re.findall(r'<td class="num"[^>]*>(?:<strong>)?(\d+)', total.group(1))
    ] == [
        *(figures.totals[k] for k in community.CONTRIBUTIONS),
        figures.total,
    ]
    share = round(100 * (figures.patient_and_carer_share or 0))
    assert (
        f"{figures.patient_and_carer_contributions} of {figures.total} contributions ({share}%)"
        in _visible(page)
    )
    # Patients and carers appear by display name only.
    for role, site in (("patient", "S001"), ("carer", "S002")):
        assert demo.login(role, site).email not in page


# ---------------------------------------------------------------- the cycle page


def test_the_cycle_page_shows_its_findings_tools_and_behaviour_change_design(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid, cycle = ids["community"], ids["package"]
    page = _page(_as(app, demo, "patient", "S001"), f"/communities/{cid}/cycles/{cycle}")
    (found,) = community.list_findings(registry, OP, cycle)
    findings = re.search(r'<section class="card" id="findings">.*?</section>', page, re.S)
    assert findings is not None
    text = _visible(f"<main>{findings.group(0)}</main>")
    for theme in found.summary["themes"]:
        assert (
            f"{theme['name']} {theme['description']} {theme['segments']} "
            f"{theme['participants']} {theme['documents']}"
        ) in text
    for a in found.summary["agreement"]:
        if a["kappa"] is not None:
            assert (
                f"{a['code']} {a['kappa']:.2f} (95% CI {a['kappa_ci_low']:.2f} to "
                f"{a['kappa_ci_high']:.2f}) {a['interpretation']}"
            ) in text
    design = _visible(
        "<main" + page.split('id="design"', 1)[1].split("</section>", 1)[0] + "</main>"
    )
    assert "Clinic nurses call each family the week before the visit" in design
    assert "social opportunity, psychological capability" in design
    assert "enablement, environmental restructuring" in design and "service provision" in design
    tools = page.split('id="tools"', 1)[1].split("</section>", 1)[0]
    assert f'href="/communities/{cid}/toolkit#tool-pdsa-template"' in tools
    assert f'href="/communities/{cid}/toolkit#tool-run-chart-rules"' in tools


# ---------------------------------------------------------------- in words


def test_a_patient_reads_every_new_page_without_internal_identifiers(app, demo, ids):
    registry = app.state.registry  # type: ignore[attr-defined]
    cid = ids["community"]
    detail = community.show_community(registry, OP, cid)
    client = _as(app, demo, "patient", "S001")
    identifiers = ["remission-at-visit", "steroid-at-visit", *detail.knowledge, "cli:", "@"]
    for tail in PAGES:
        seen = _visible(_page(client, f"/communities/{cid}{tail}"))
        for identifier in identifiers:
            assert identifier not in seen, (tail, identifier)
        assert not re.search(r"\b\d{4}-\d\d-\d\d\b", seen), tail
        assert "_" not in seen, tail  # no domain key such as adopter_system
    assert date.today().year >= 2024


def test_an_id_beyond_64_bits_on_any_community_page_is_refused_never_an_error(app, demo, ids):
    client = _as(app, demo, "clinician", "S001")
    huge = str(2**64)
    cid = str(ids["community"])
    paths = [f"/communities/{huge}{tail}" for tail in ("", "/proposals", "/cycles", *PAGES)]
    paths += [f"/communities/{cid}/cycles/{huge}", f"/communities/{cid}/proposals/{huge}"]
    for path in paths:
        answer = client.get(path, headers=HTML)
        assert answer.status_code in (404, 422), (path, answer.status_code)
    token = _csrf(client.get("/", headers=HTML).text)
    for tail in ("/nasss", "/maturity", "/toolkit/pdsa-template/rating"):
        answer = client.post(f"/communities/{huge}{tail}", data={"csrf_token": token})
        assert answer.status_code in (404, 422), (tail, answer.status_code)
