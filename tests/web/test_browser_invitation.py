"""An invitation in a real browser: a patient on a phone opens the e-mailed link,
chooses a password, logs in and lands on their portal; the page is checked with axe."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest

from careloop.core.mail import OUTBOX_DIR, Mailer
from careloop.trust import invitations, patients
from tests.foundation import Installation, build_installation, make_settings
from tests.live import LiveServer, login, start_server, stop_server
from tests.web.test_browser_community import PHONE, _check, _close, _new_page

pytestmark = pytest.mark.browser

PASSWORD = "my own long password"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, LiveServer]]:
    inst = build_installation(
        make_settings(tmp_path_factory.mktemp("invite-browser"), None), with_users=False
    )
    server = start_server(inst.settings.data_dir)
    yield inst, server
    stop_server(server)
    inst.registry.close()


def test_a_patient_accepts_an_invitation_on_a_phone_and_lands_on_their_portal(site, chromium: Any):
    inst, server = site
    patient = patients.register_patient(
        inst.registry,
        inst.operator,
        site="A",
        local_id="PHONE-1",
        given_name="Ada",
        family_name="Lovelace",
        consent_state="improvement_and_research",
    )
    invitations.invite_to_record(
        inst.registry,
        inst.operator,
        Mailer.from_settings(inst.settings),
        patient.id,
        email="ada@example.org",
        link_base=server.url,
    )
    [eml] = list((inst.settings.data_dir / OUTBOX_DIR).glob("*.eml"))
    text = message_from_bytes(eml.read_bytes(), policy=policy.default).get_body().get_content()  # type: ignore[union-attr]
    link = re.search(re.escape(server.url) + r"/invitation/\S+", text)
    assert link is not None and "Ada" not in text

    page = _new_page(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(link.group(0))
    page.wait_for_url(server.url + "/invitation")  # the secret left the address bar
    assert page.get_by_role("heading", name="Welcome to careloop").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    _check(page, "invitation-phone")
    page.get_by_label("Your name, as careloop shows it").fill("Ada")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Accept").click()
    page.wait_for_url(re.compile(re.escape(server.url) + r"/login"))
    login(page, server.url, "ada@example.org", PASSWORD)
    page.wait_for_url(server.url + "/my")
    assert page.get_by_role("heading", name="Ada Lovelace").is_visible()
    _close(page)
