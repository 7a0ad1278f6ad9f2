"""Learning community pages in a real browser: a clinician votes and reads a Study, then
visits the aims, NASSS, maturity, toolkit and engagement pages and rates by their forms; a
patient partner opens the community and every one of those pages on a phone.

A real ``careloop serve`` on the demo network, headless Debian Chromium. Each
page is checked with axe-core when ``CARELOOP_TEST_AXE_JS`` names its
``axe.min.js`` (``npm pack axe-core``; nothing is downloaded here): no serious
or critical violation of WCAG 2 A/AA. Screenshots go to
``CARELOOP_TEST_SHOTS`` when it is set, for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from careloop import community
from careloop.demo.learning_community import NAME
from careloop.trust.installation import open_registry
from careloop.trust.principal import Principal
from tests.live import LiveServer, check_page, login, start_server, stop_server
from tests.web.community_strategy_demo import AIM, add_strategy
from tests.web.dashboard_demo import (
    DEMO_GROUP,
    MEASURES_DIR_ENV,
    DemoInstallation,
    demo_installation,
)

pytestmark = [pytest.mark.browser, DEMO_GROUP]

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoInstallation:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in MEASURES_DIR_ENV.items():
            mp.setenv(key, value)
        return demo_installation(tmp_path_factory)


@pytest.fixture(scope="module")
def server(demo: DemoInstallation) -> Iterator[LiveServer]:
    live = start_server(demo.settings.data_dir, env=MEASURES_DIR_ENV)
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def ids(demo: DemoInstallation) -> dict[str, int]:
    """The demo community, its change package cycle, a site cycle without an Act and a new
    open proposal to vote on."""
    registry = open_registry(demo.settings)
    try:
        op = Principal.operator("tests")
        cid = next(c.id for c in community.list_communities(registry, op) if c.name == NAME)
        cycles = community.list_cycles(registry, op, community_id=cid)
        package = next(c.id for c in cycles if c.kind == "change_package")
        # A site's cycle with no Act yet (another module on this worker may have acted on
        # one: the demo installation is shared).
        unacted = next(c.id for c in cycles if c.parent_id == package and c.act is None)
        opened = community.add_priority(
            registry, op, cid, kind="idea", title="A nurse phone line between clinic visits"
        )
        assert opened.proposal_id is not None
        added = add_strategy(registry, demo.settings)
        return {
            "community": cid,
            "package": package,
            "proposal": opened.proposal_id,
            "aim": added["aim"],
            "unacted": unacted,
        }
    finally:
        registry.close()


def _new_page(chromium: Any, **options: Any) -> Any:
    """A page in a fresh context that records console and page errors, as ``page`` does."""
    context = chromium.new_context(**options)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.careloop_console_errors = problems
    return page


def _close(page: Any) -> None:
    problems = page.careloop_console_errors
    page.context.close()
    assert not problems, f"browser console errors: {problems}"


_check = check_page


def test_a_clinician_votes_by_form_and_reads_a_cycles_study(demo, server, ids, chromium):
    page = _new_page(chromium)
    me = demo.login("clinician", "S001")
    login(page, server.url, me.email, me.password)
    page.get_by_role("link", name="Communities").first.click()
    page.wait_for_url(server.url + "/communities")
    _check(page, "clinician-1-my-communities")
    page.get_by_role("link", name=NAME).click()
    page.wait_for_url(f"{server.url}/communities/{ids['community']}")
    assert page.locator("#decision-rule").inner_text().startswith("Majority:")
    _check(page, "clinician-2-community")

    page.get_by_role("link", name="Proposals and votes").click()
    page.get_by_role("link", name="A nurse phone line between clinic visits").first.click()
    page.wait_for_url(f"{server.url}/communities/{ids['community']}/proposals/{ids['proposal']}")
    page.get_by_label("Yes").check()
    page.get_by_label("Comment (other members see it)").fill("Families ask for it often.")
    page.get_by_role("button", name="Send my vote").click()
    page.wait_for_url("**/proposals/*?voted=1")
    assert (
        "You voted yes. Your comment: “Families ask for it often.”"
        in page.locator("#vote").inner_text()
    )
    assert (
        page.locator("#tally-lived").inner_text() == "Patients and carers: 0 yes · 0 no · 0 abstain"
    )
    assert "Other members: 1 yes" in page.locator("#tally").inner_text()
    _check(page, "clinician-3-voted")

    page.get_by_role("link", name="Learning cycles").click()
    page.get_by_role("link", name="Network change package").click()
    page.wait_for_url(f"{server.url}/communities/{ids['community']}/cycles/{ids['package']}")
    change = page.locator("#change-date").get_attribute("data-date")
    measures = page.locator("#study article.study-measure")
    assert measures.count() == 2
    for i in range(measures.count()):
        article = measures.nth(i)
        assert article.get_attribute("data-phase-starts") == change
        assert article.locator("figure.spc svg").count() == 1
        assert "(95% CI " in article.locator(".effect").inner_text()
    assert page.locator("#progress-score").inner_text() == "4.5"
    _check(page, "clinician-4-cycle-study")

    # A site's own cycle has no Act yet: the clinician records it from the page.
    page.get_by_role("link", name="Learning cycles").click()
    cycle_path = f"/communities/{ids['community']}/cycles/{ids['unacted']}"
    page.locator(f'a[href="{cycle_path}"]').first.click()
    page.wait_for_url(server.url + cycle_path)
    page.get_by_role("radio", name=re.compile("^Adapt")).check()
    page.get_by_label("Why").fill("Remission rose, but clinic time ran short: test it shorter.")
    page.get_by_role("button", name="Record the Act").click()
    page.wait_for_url("**/cycles/*?recorded=1#act")
    act = page.locator("#act").inner_text()
    assert "Adapt" in act and "test it shorter." in act and "Thank you" in act
    assert page.get_by_role("button", name="Record the Act").count() == 0
    _check(page, "clinician-4b-cycle-act")
    # The other forms of a cycle's run, as a member sees them.
    page.get_by_role("link", name="Learning cycles").click()
    page.get_by_role("link", name="Record a new learning cycle").click()
    page.wait_for_url(f"{server.url}/communities/{ids['community']}/cycles/new")
    assert page.get_by_role("button", name="Record the cycle").count() == 1
    _check(page, "clinician-4c-new-cycle-form")
    page.get_by_role("link", name="Priorities").click()
    assert page.get_by_role("button", name="Propose it").count() == 1
    _check(page, "clinician-4d-propose-form")
    page.get_by_role("link", name="Decisions").click()
    assert page.get_by_role("button", name="Add to the log").count() == 1
    _check(page, "clinician-4e-log-form")
    _close(page)


def test_a_patient_partner_opens_the_community_on_a_phone(demo, server, ids, chromium):
    page = _new_page(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    me = demo.login("patient", "S001")
    login(page, server.url, me.email, me.password)
    page.goto(f"{server.url}/communities")
    page.get_by_role("link", name=NAME).click()
    page.wait_for_url(f"{server.url}/communities/{ids['community']}")
    assert page.get_by_text("Priya Patient-partner (advisory council)").count() == 1
    # Nothing wider than the phone: no sideways scrolling to read the page.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    _check(page, "patient-phone-1-community")
    page.get_by_role("link", name="Learning cycles").click()
    page.get_by_role("link", name="Network change package").click()
    page.wait_for_url(f"{server.url}/communities/{ids['community']}/cycles/{ids['package']}")
    assert "We can be 95% sure" in page.locator("#study").inner_text()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    _check(page, "patient-phone-2-cycle")
    _close(page)


NASSS_DOMAINS = (
    "condition",
    "technology",
    "value_proposition",
    "adopter_system",
    "organisation",
    "wider_system",
    "embedding_and_adaptation",
)


def _tab(page: Any, server: LiveServer, ids: dict[str, int], name: str, tail: str) -> None:
    page.get_by_role("navigation", name="This community").get_by_role("link", name=name).click()
    page.wait_for_url(f"{server.url}/communities/{ids['community']}{tail}")


def test_a_clinician_reads_strategy_nasss_maturity_toolkit_and_engagement_and_rates(
    demo, server, ids, chromium
):
    page = _new_page(chromium)
    me = demo.login("clinician", "S002")
    login(page, server.url, me.email, me.password)
    page.goto(f"{server.url}/communities/{ids['community']}")
    _tab(page, server, ids, "Aims and drivers", "/strategy")
    aim = page.locator(f"#aim-{ids['aim']}")
    assert aim.get_by_role("heading", name=AIM["what"]).count() == 1
    tree = aim.locator("ul.tree")
    assert tree.locator("> li > ul > li > ul > li > ul > li .node.idea").count() == 2
    assert aim.locator("table.family tbody tr").count() == 2
    _check(page, "clinician-5-strategy")

    _tab(page, server, ids, "Complexity (NASSS)", "/nasss")
    profile = page.locator("section.nasss-profile").first
    assert profile.locator("li.domain").count() == 7
    assert profile.locator("li.domain.disagree").count() >= 1
    form = page.locator("#rate")
    for domain in NASSS_DOMAINS:
        form.locator(f'input[name="rating_{domain}"][value="complicated"]').check()
    form.get_by_label("Note (optional; other members see it)").first.fill("Flares vary by age.")
    form.get_by_role("button", name="Record my ratings").click()
    page.wait_for_url("**/nasss?recorded=1")
    assert "your ratings are recorded" in page.get_by_role("status").inner_text()
    assert "Flares vary by age." in page.locator("section.nasss-profile").first.inner_text()
    _check(page, "clinician-6-nasss")

    _tab(page, server, ids, "Maturity", "/maturity")
    assert page.locator("figure.radar svg[role=img]").count() == 1
    assert page.locator("#maturity-table tbody tr").count() == 11
    assert page.locator("#next-steps li").count() >= 1
    _check(page, "clinician-7-maturity")

    _tab(page, server, ids, "Toolkit", "/toolkit")
    rules = page.locator("#tool-run-chart-rules")
    rules.get_by_text("Read it").click()
    assert rules.locator(".tool-body strong", has_text="A shift").is_visible()
    rules.get_by_text("Rate this tool").click()
    rules.get_by_label("4", exact=True).check()
    rules.get_by_role("button", name="Rate it").click()
    page.wait_for_url("**/toolkit?rated=run-chart-rules#tool-run-chart-rules")
    assert "Rated 4.0 of 5 by 1 member" in page.locator("#tool-run-chart-rules").inner_text()
    _check(page, "clinician-8-toolkit")

    _tab(page, server, ids, "Who contributes", "/engagement")
    assert page.locator("#contributions tbody tr").count() >= 5
    assert "were made by the 4 members who take part as patients or carers" in (
        page.locator("#lived-share").inner_text()
    )
    _check(page, "clinician-9-engagement")

    page.goto(f"{server.url}/communities/{ids['community']}/cycles/{ids['package']}")
    assert page.locator("#findings table.themes tbody tr").count() == 3
    assert page.locator("#design").is_visible() and page.locator("#tools li").count() == 2
    _check(page, "clinician-10-cycle-findings")
    _close(page)


def test_a_patient_partner_reads_the_new_pages_on_a_phone(demo, server, ids, chromium):
    page = _new_page(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    me = demo.login("patient", "S001")
    login(page, server.url, me.email, me.password)
    for tail, name in (
        ("/strategy", "strategy"),
        ("/nasss", "nasss"),
        ("/maturity", "maturity"),
        ("/toolkit", "toolkit"),
        ("/engagement", "engagement"),
        (f"/cycles/{ids['package']}", "cycle"),
    ):
        page.goto(f"{server.url}/communities/{ids['community']}{tail}")
        assert page.locator("h1").inner_text() == NAME
        # Nothing wider than the phone: no sideways scrolling of the page itself.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (tail, width)
        _check(page, f"patient-phone-3-{name}")
    _close(page)
