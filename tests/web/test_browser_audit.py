"""The auditor's page in a real browser: the demo auditor filters the trail, on a desktop,
a tablet (768 px) and a phone (320 px); axe-core finds nothing serious on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer, login, start_server, stop_server
from tests.web.dashboard_demo import (
    DEMO_GROUP,
    MEASURES_DIR_ENV,
    DemoInstallation,
    demo_installation,
)
from tests.web.test_browser_community import _check, _close, _new_page

pytestmark = [pytest.mark.browser, DEMO_GROUP]


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


def _no_sideways_scroll(page: Any, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page scrolls sideways at {width} px ({scroll} px wide)"


def test_the_auditor_filters_the_trail_and_reads_it_on_any_screen(
    demo, server, chromium: Any, tmp_path: Path
) -> None:
    me = demo.login("auditor")
    page = _new_page(chromium, viewport={"width": 1280, "height": 900})
    login(page, server.url, me.email, me.password)
    page.get_by_role("link", name="Audit", exact=True).click()
    page.wait_for_url(server.url + "/audit")
    assert page.get_by_role("heading", name="Is the trail intact?").is_visible()
    assert "The audit trail is intact" in page.locator("section.chain").inner_text()
    _check(page, "audit-desktop")
    page.screenshot(path=str(tmp_path / "audit-desktop.png"), full_page=True)

    page.get_by_label("Action").fill("login")
    page.get_by_role("button", name="Show entries").click()
    page.wait_for_url(server.url + "/audit?*action=login*")
    actions = page.locator('td[data-label="Action"]').all_inner_texts()
    assert actions and set(actions) == {"login"}
    assert me.email in page.locator('td[data-label="Who"]').all_inner_texts()
    assert page.get_by_label("Action").input_value() == "login"
    _check(page, "audit-filtered")

    for width in (768, 320):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(server.url + "/audit")
        _no_sideways_scroll(page, width)
        _check(page, f"audit-{width}")
        page.screenshot(path=str(tmp_path / f"audit-{width}.png"), full_page=False)
    print(f"screenshots in {tmp_path}")
    _close(page)
