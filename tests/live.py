"""A real careloop server on loopback and a real headless Chromium, for end-to-end tests.

The server is ``careloop serve`` in a subprocess (uvicorn), on a free port of
127.0.0.1. The browser is Debian's ``/usr/bin/chromium`` driven by Playwright
(never a downloaded browser). Without Chromium these tests skip, unless
``CARELOOP_TEST_REQUIRE_BROWSER=1`` (set by .ci/run) makes that a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from careloop.demo.server import RunningServer, stop_server  # noqa: F401 - re-exported for tests
from careloop.demo.server import start_server as start_careloop

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


LiveServer = RunningServer


def start_server(data_dir: Path, env: dict[str, str] | None = None) -> RunningServer:
    """A real `careloop serve` on loopback for ``data_dir``."""
    return start_careloop(data_dir, env=env)


def _require_browser() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CARELOOP_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail("CARELOOP_TEST_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser page; the test fails on any console error or page error."""
    context = chromium.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # A test that provokes an error status on purpose removes the message it expects.
    page.careloop_console_errors = problems
    yield page
    context.close()
    assert not problems, f"browser console errors: {problems}"


def login(page: Any, base_url: str, email: str, password: str) -> None:
    """Log in through the real login form."""
    page.goto(base_url + "/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    # Staff land on the home page; patients and carers on their portal.
    page.wait_for_url(re.compile(re.escape(base_url) + r"/(my)?$"))


def check_page(page: Any, name: str) -> None:
    """Screenshot the page into ``CARELOOP_TEST_SHOTS`` (when set) and run axe-core on it
    (when ``CARELOOP_TEST_AXE_JS`` names its axe.min.js): nothing serious or critical."""
    shots, axe_js = os.environ.get("CARELOOP_TEST_SHOTS"), os.environ.get("CARELOOP_TEST_AXE_JS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)
    if not axe_js:
        return
    # Evaluated by the driver, not loaded as a script, so the page's strict CSP stays as is.
    page.evaluate(Path(axe_js).read_text())
    result = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
    )
    assert result["passes"], f"{name}: axe-core checked nothing"
    serious = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{name}: {serious}"
