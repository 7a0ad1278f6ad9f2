"""Every patient page in a real browser: WCAG 2.1 AA by axe-core, usable at 320 px and at 200%.

A real ``careloop serve`` and Debian's headless Chromium. Each patient page
(login, the portal as a patient and as a carer, a PROM form and its error
state, an account invitation, the public page) is opened:

- at 320 CSS px wide (WCAG 1.4.10 Reflow), and
- at 640 CSS px wide, which is what a 1280 px window shows at 200% zoom
  (WCAG 1.4.4 Resize text);

and on each the page does not scroll sideways, every link, button and form
control lies within the width once scrolled to (so it can be reached and
seen), and axe-core finds no serious or critical violation of WCAG 2.0/2.1 A
and AA (when ``CARELOOP_TEST_AXE_JS`` names its ``axe.min.js``: ``.ci/run``
packs it from the npm registry at test time; nothing is committed). The
portal and the PROM form are checked in Spanish too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest

from careloop.capture import forms_store, proms
from careloop.capture.examples import example_file
from careloop.community import add_cycle, record_act
from careloop.core.i18n import LANGUAGE_COOKIE
from careloop.core.mail import OUTBOX_DIR, Mailer
from careloop.trust import invitations, patients
from tests.capture.registry_helpers import PROM, prom_answers
from tests.community.helpers import KNOWN_MEASURES, make_community, principal
from tests.community.test_cycles import package
from tests.foundation import PASSWORD, Installation, build_installation, make_settings
from tests.live import LiveServer, start_server, stop_server
from tests.web.test_browser_community import _check, _close, _new_page

pytestmark = pytest.mark.browser

REFLOW = {"width": 320, "height": 640}
ZOOM_200 = {"width": 640, "height": 400}
SIZES = {"320px": REFLOW, "zoom200": ZOOM_200}
CONTROLS = (
    "a[href], button, input:not([type=hidden]), select, textarea, summary, "
    "[tabindex]:not([tabindex='-1'])"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, LiveServer]]:
    inst = build_installation(make_settings(tmp_path_factory.mktemp("patient-pages"), None))
    forms_store.import_forms(
        inst.registry, inst.operator, example_file("yaml"), fmt="yaml", name="ibd_registry.yaml"
    )
    own = inst.patient_user_of["patient@A"]
    for pain, day in enumerate(("2024-01-05", "2024-02-09", "2024-03-01")):
        link = proms.create_prom_link(inst.registry, inst.operator, PROM, patient_id=own)
        proms.submit_prom_link(
            inst.registry,
            link.token,
            values=prom_answers(day, tummy_pain=str(pain)),
            event_date=day,
        )
    cid = make_community(inst).community.id
    member = principal(inst, "clinician@B")
    cycle = add_cycle(inst.registry, member, cid, package(), known_measures=KNOWN_MEASURES)
    record_act(inst.registry, member, cycle.id, decision="adopt", rationale="It worked")
    server = start_server(inst.settings.data_dir)
    yield inst, server
    stop_server(server)
    inst.registry.close()


def _usable(page: Any, name: str, width: int) -> None:
    """No sideways scrolling, and every control within the width when focused and scrolled to
    (a skip link is off the page until it has the focus)."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{name}: the page is {scroll}px wide in a {width}px window"
    outside = page.evaluate(
        """([selector, width]) => Array.from(document.querySelectorAll(selector))
            .filter(el => el.getClientRects().length > 0)
            .map(el => { el.focus(); el.scrollIntoView({block: 'center'});
                         const r = el.getBoundingClientRect();
                         return [el.outerHTML.slice(0, 80), r.left, r.right]; })
            .filter(([_, left, right]) => left < -1 || right > width + 1)""",
        [CONTROLS, width],
    )
    assert outside == [], f"{name}: controls outside the {width}px width: {outside}"


def _each_size(chromium: Any, name: str, visit: Any, language: str = "en") -> None:
    """Open the page with ``visit(page)`` at each size; check reflow, reach and axe."""
    for size, viewport in SIZES.items():
        page = _new_page(chromium, viewport=viewport)
        if language != "en":
            page.context.add_cookies(
                [{"name": LANGUAGE_COOKIE, "value": language, "url": visit.base_url}]
            )
        visit(page)
        assert page.evaluate("document.documentElement.lang") == language
        _usable(page, f"{name}-{size}", viewport["width"])
        _check(page, f"{name}-{language}-{size}")
        _close(page)


class Visit:
    """A way to open one page, knowing the server's address (for the language cookie)."""

    def __init__(self, base_url: str, action: Any) -> None:
        self.base_url = base_url
        self.action = action

    def __call__(self, page: Any) -> None:
        self.action(page)


def test_the_login_page_is_accessible_and_reflows(site, chromium):
    _, server = site
    visit = Visit(server.url, lambda page: page.goto(server.url + "/login"))
    _each_size(chromium, "login", visit)
    _each_size(chromium, "login", visit, language="es")


@pytest.mark.parametrize("who", ["patient@A", "carer@A"])
def test_the_portal_is_accessible_and_reflows_for_a_patient_and_a_carer(site, chromium, who):
    inst, server = site

    def visit(page: Any) -> None:
        # By the fields' ids: the labels are in the page's language.
        page.goto(server.url + "/login")
        page.locator("#email").fill(inst.emails[who])
        page.locator("#password").fill(PASSWORD)
        page.locator("main button[type=submit]").click()
        page.wait_for_url(server.url + "/my")
        page.get_by_role("main").locator("summary").first.click()  # open "See the numbers"
        # The consent choices (one form per purpose) and the carers' section are checked too.
        assert page.locator("main section.consent fieldset").count() >= 4
        assert page.locator("main h3[id^=people-who-help]").count() >= 1

    languages = ["en", "es"] if who == "patient@A" else ["en"]
    for language in languages:
        _each_size(chromium, f"my-{who.split('@')[0]}", Visit(server.url, visit), language)


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_prom_form_and_its_error_state_are_accessible_and_reflow(site, chromium, language):
    inst, server = site
    patient = inst.patient_user_of["patient@A"]

    def form(page: Any) -> None:
        link = proms.create_prom_link(inst.registry, inst.operator, PROM, patient_id=patient)
        page.goto(f"{server.url}/prom/{link.token}")
        page.wait_for_url(server.url + "/prom")
        page.locator("form#entry[data-live=ready]").wait_for()

    def errors(page: Any) -> None:
        form(page)
        page.locator("button[value=complete]").click()
        page.get_by_role("alert").wait_for()
        # The refused answers come back with status 422, which the browser logs; expected here.
        logged = page.careloop_console_errors
        logged[:] = [line for line in logged if "status of 422" not in line]

    _each_size(chromium, "prom", Visit(server.url, form), language)
    _each_size(chromium, "prom-errors", Visit(server.url, errors), language)
    # The error state names each question in the patient's words, with a link to it.
    page = _new_page(chromium, viewport=REFLOW)
    page.context.add_cookies([{"name": LANGUAGE_COOKIE, "value": language, "url": server.url}])
    errors(page)
    alert = page.get_by_role("alert").inner_text()
    wanted = {
        "en": "Please answer: How much tummy pain have you had?",
        "es": "Por favor, conteste: ¿Cuánto dolor de barriga ha tenido?",
    }[language]
    assert wanted in alert and "tummy_pain" not in alert and "required" not in alert
    page.get_by_role("link", name=wanted).click()
    assert page.evaluate("location.hash") == "#f-tummy_pain"
    _close(page)


def test_an_invitation_page_is_accessible_and_reflows(site, chromium):
    inst, server = site
    mailer = Mailer.from_settings(inst.settings)
    outbox = inst.settings.data_dir / OUTBOX_DIR

    def visit(page: Any) -> None:
        before = set(outbox.glob("*.eml")) if outbox.exists() else set()
        patient = patients.register_patient(
            inst.registry,
            inst.operator,
            site="A",
            local_id=f"INV-{len(before)}",
            given_name="Ada",
            consent_state="direct_care_only",
        )
        invitations.invite_to_record(
            inst.registry,
            inst.operator,
            mailer,
            patient.id,
            email=f"ada{len(before)}@example.org",
            link_base=server.url,
        )
        [eml] = set(outbox.glob("*.eml")) - before
        message = message_from_bytes(eml.read_bytes(), policy=policy.default)
        text = message.get_body().get_content()  # type: ignore[union-attr]
        link = re.search(re.escape(server.url) + r"/invitation/\S+", text)
        assert link is not None
        page.goto(link.group(0))
        page.wait_for_url(server.url + "/invitation")

    _each_size(chromium, "invitation", Visit(server.url, visit))


def test_the_public_page_is_accessible_and_reflows(site, chromium):
    _, server = site
    visit = Visit(server.url, lambda page: page.goto(server.url + "/public"))
    _each_size(chromium, "public", visit)
    _each_size(chromium, "public", visit, language="es")
