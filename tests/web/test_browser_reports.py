"""The impact and site feedback pages in a real browser, their PDFs, and the impact agreeing
with the learning report.

A real ``careloop serve`` on the shared demo installation and headless Debian
Chromium: each page is inside the app's layout (navigation, ``lang``, a main
landmark), passes axe-core with no serious or critical violation, and has no
horizontal scroll on a 320 px phone. Its PDF is converted with poppler's
``pdftoppm`` (page images, saved to ``CARELOOP_TEST_SHOTS`` for a person to
look at) and ``pdftotext`` (the words are there).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from careloop.demo.decision_support import DEMO_TARGETS, KNOWLEDGE_OBJECT
from careloop.knowledge import load_package
from careloop.practice.feedback.reports import impacts_for
from careloop.trust.installation import open_registry
from careloop.trust.principal import Principal
from careloop.warehouse.connection import warehouse_opener
from tests.live import LiveServer, login, start_server, stop_server
from tests.web.dashboard_demo import DEMO_GROUP, MEASURES_DIR_ENV, DemoInstallation
from tests.web.test_browser_community import _check, _close, _new_page

SHOTS = os.environ.get("CARELOOP_TEST_SHOTS")

pytestmark = [pytest.mark.browser, DEMO_GROUP]

PACKAGE = load_package(KNOWLEDGE_OBJECT)
REF = f"{PACKAGE.identifier}@{PACKAGE.version}"
IMPACT = f"/knowledge/{REF}/impact"
FEEDBACK = "/sites/S001/feedback"
POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext")


@pytest.fixture(scope="module")
def server(demo: DemoInstallation) -> Iterator[LiveServer]:
    live = start_server(demo.settings.data_dir, env=MEASURES_DIR_ENV)
    yield live
    stop_server(live)


def _signed_in(chromium: Any, server: LiveServer, demo: DemoInstallation, role: str, **kw: Any):  # type: ignore[no-untyped-def]
    who = demo.login(role, kw.pop("site", None))
    page = _new_page(chromium, **kw)
    login(page, server.url, who.email, who.password)
    return page


def _in_the_app_shell(page: Any, name: str) -> str:
    assert page.locator("nav[aria-label=Main]").count() == 1, name
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("main#main").count() == 1
    text: str = page.locator("main").inner_text()
    assert "NaN" not in text and "nan" not in text.split()
    # No number in the words with more than two decimals (p values, charts and details aside).
    words = page.evaluate(
        "(() => { const m = document.querySelector('main').cloneNode(true);"
        " m.querySelectorAll('svg, details').forEach(e => e.remove()); return m.innerText; })()"
    )
    assert not re.search(r"(?<!p = )\d\.\d{3,}", words), words
    _check(page, name)
    return text


def test_a_site_lead_reads_their_sites_feedback_and_impact_inside_the_app(demo, server, chromium):
    page = _signed_in(chromium, server, demo, "site_lead", site="S001")
    page.goto(server.url + "/sites/S001")
    page.get_by_role("link", name="Audit and feedback report for S001").click()
    page.wait_for_url(re.compile(re.escape(FEEDBACK)))
    text = _in_the_app_shell(page, "feedback-site-lead")
    assert "S001" in text and "the network" in text
    # A site lead treats the site's patients: the list is one link away (and audited there).
    assert page.get_by_role("link", name="Open the list of S001's patients").count() == 1
    assert "does not allow" not in text
    page.goto(server.url + "/knowledge")
    page.get_by_role("link", name=re.compile("impact on its")).first.click()
    page.wait_for_url(re.compile(re.escape(IMPACT)))
    text = _in_the_app_shell(page, "impact-site-lead")
    for measure in PACKAGE.measures + list(DEMO_TARGETS):
        assert page.locator(f"section#m-{measure}").count() == 1, measure
    _close(page)


def test_an_analyst_sees_numbers_only_and_a_refusal_for_no_site(demo, server, chromium):
    page = _signed_in(chromium, server, demo, "analyst")
    page.goto(server.url + FEEDBACK)
    text = _in_the_app_shell(page, "feedback-analyst")
    assert "This report shows the numbers only." in text
    assert page.get_by_role("link", name=re.compile("list of S001's patients")).count() == 0
    _close(page)


@pytest.mark.parametrize("path", [FEEDBACK, IMPACT])
def test_the_reports_fit_a_320_px_phone(demo, server, chromium, path):
    page = _signed_in(
        chromium, server, demo, "site_lead", site="S001", viewport={"width": 320, "height": 700}
    )
    page.goto(server.url + path)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"{path}: {width} px wide"
    _check(page, f"phone{path.replace('/', '-')}")
    _close(page)


@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm, pdftotext) is not installed")
@pytest.mark.parametrize(
    ("path", "words"),
    [
        (FEEDBACK + ".pdf", ["at S001", "Decision-support cards by clinician"]),
        (IMPACT + ".pdf", ["Impact of", "What changed", "Cards"]),
    ],
)
def test_a_report_downloads_as_a_pdf_with_its_words_and_pages(
    demo, server, chromium, tmp_path, path, words
):
    page = _signed_in(chromium, server, demo, "site_lead", site="S001")
    answer = page.request.get(server.url + path)
    assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(answer.body())
    images = _pages(pdf, tmp_path / "page")
    assert 1 <= len(images) <= 12
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for word in words:
        assert word in text, (word, text[:400])
    assert "NaN" not in text
    # The download of another site's report is refused as its page is.
    other = _signed_in(chromium, server, demo, "clinician", site="S002")
    assert other.request.get(server.url + FEEDBACK + ".pdf").status == 404
    _close(other)
    _close(page)


def _pages(pdf: Path, prefix: Path) -> list[Path]:
    """The PDF's pages as PNG images (copied to CARELOOP_TEST_SHOTS when it is set)."""
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(prefix)], check=True)
    images = sorted(prefix.parent.glob(prefix.name + "-*.png"))
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        for image in images:
            shutil.copy(image, Path(SHOTS) / f"pdf-{pdf.stem}-{image.name}")
    return images


def test_the_impact_page_the_learning_report_and_the_knowledge_objects_targets_agree(
    demo, server, chromium
):
    registry = open_registry(demo.settings)
    try:
        impact = impacts_for(
            registry,
            warehouse_opener(demo.settings),
            Principal.operator("tests"),
            REF,
            measures_dir=MEASURES_DIR_ENV["CARELOOP_MEASURES_DIR"],
        )
    finally:
        registry.close()
    targets = [m.measure_id for m in impact.measures]
    assert targets == list(impact.deployment.measures)
    assert set(PACKAGE.measures) | set(DEMO_TARGETS) == set(targets)
    # The demo plants half the odds of steroids at visits at the deployed sites.
    steroid = next(m for m in impact.measures if m.measure_id == "steroid-at-visit")
    assert steroid.report is not None and steroid.report.pooled_sites
    assert "an improvement" in steroid.reading, steroid.reading
    report = (demo.settings.data_dir / "report" / "report.html").read_text()
    page = _signed_in(chromium, server, demo, "site_lead", site="S001")
    page.goto(server.url + IMPACT)
    for m in impact.measures:
        assert m.reading in report, m.measure_id
        shown = page.locator(f"section#m-{m.measure_id}").inner_text()
        assert m.reading in " ".join(shown.split()), m.measure_id
    _close(page)


def test_a_site_lead_reads_the_demos_alerts_and_marks_one_read(demo, server, chromium):
    lead = demo.login("site_lead", "S001")
    mailbox = demo.settings.data_dir / "demo-mailbox"
    mailed = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in mailbox.glob("*.eml")
    ]
    # One e-mail lists all the lead's new alerts, the site's feedback report among them.
    (mine,) = [m for m in mailed if str(m["To"]) == lead.email]
    text = mine.get_body(preferencelist=("plain",)).get_content()
    assert "S001's audit and feedback report" in text
    page = _signed_in(chromium, server, demo, "site_lead", site="S001")
    page.get_by_role("link", name=re.compile(r"^Alerts")).click()
    page.wait_for_url(re.compile(r"/alerts$"))
    _in_the_app_shell(page, "alerts-site-lead")
    badge = page.locator("nav[aria-label=Main] a[href='/alerts'] .badge")
    before = int(badge.inner_text().split()[0]) if badge.count() else 0
    assert before >= 1
    page.get_by_role("button", name=re.compile("^Mark “")).first.click()
    page.wait_for_url(re.compile(r"/alerts\?marked=1$"))
    after = int(badge.inner_text().split()[0]) if badge.count() else 0
    assert after == before - 1
    page.set_viewport_size({"width": 320, "height": 700})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    _close(page)


@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm, pdftotext) is not installed")
def test_a_member_downloads_the_community_and_cycle_reports_as_pdf(
    demo, server, chromium, tmp_path
):
    from careloop import community
    from careloop.demo.learning_community import NAME

    registry = open_registry(demo.settings)
    try:
        op = Principal.operator("tests")
        cid = next(c.id for c in community.list_communities(registry, op) if c.name == NAME)
        cycle = community.list_cycles(registry, op, community_id=cid)[0]
    finally:
        registry.close()
    page = _signed_in(chromium, server, demo, "site_lead", site="S001")
    page.goto(f"{server.url}/communities/{cid}/cycles/{cycle.id}")
    href = page.get_by_role("link", name="this cycle's report (PDF)").get_attribute("href")
    answer = page.request.get(server.url + href)
    assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "cycle.pdf"
    pdf.write_bytes(answer.body())
    assert len(_pages(pdf, tmp_path / "cycle")) >= 1
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    assert cycle.title in " ".join(text.stdout.split())
    # The cycle's report under another community's address is not found.
    assert (
        page.request.get(
            f"{server.url}/communities/{cid + 1000}/cycles/{cycle.id}/report.pdf"
        ).status
        == 404
    )
    page.goto(f"{server.url}/communities/{cid}")
    assert page.get_by_role("link", name="the community's report (PDF)").count() == 1
    _close(page)
