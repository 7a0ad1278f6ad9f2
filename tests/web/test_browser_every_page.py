"""Every page each role can reach, in a real browser: accessible, no dead links, reflows.

A real ``careloop serve`` on the demo network and Debian's headless Chromium.
For each of careloop's roles the test logs in through the login form and
follows the links the app shows that person, from their home page outwards
(pages only: downloads, logout and the language switch are not followed). One
page per route is opened (``/measures/a`` stands for ``/measures/b``), up to
:data:`PAGES_PER_ROLE` per role. On each page:

- the link that led there works: a page a person is shown a link to never
  answers with an error;
- axe-core finds no serious or critical violation of WCAG 2.0/2.1 A and AA
  (when ``CARELOOP_TEST_AXE_JS`` names its ``axe.min.js``), and at 320 and 768
  CSS px wide the page does not scroll sideways (WCAG 1.4.10): once per route,
  as whichever role reaches it first;
- the browser logs no console error (which includes a refused inline script
  or style under the strict CSP).

The pages seen are listed per role in the test's output, so a route that
stops being linked shows up as a shorter list.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urldefrag, urlsplit

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

PAGES_PER_ROLE = 45
"""At most this many distinct routes are opened per role (the demo has fewer)."""

WIDTHS = (320, 768)

CHECKED: set[str] = set()
"""Routes axe-core and the reflow check have seen in this run (as whichever role reached
them first); other roles' visits check that the route answers and logs no error."""

ROLES = [
    ("admin", None),
    ("site_lead", "S001"),
    ("clinician", "S001"),
    ("data_entry", "S001"),
    ("analyst", None),
    ("auditor", None),
    ("patient", "S001"),
    ("carer", "S001"),
]

NOT_PAGES = re.compile(
    r"(\.(csv|png|svg|pdf|json|js|css|eml|zip)$)|^/(logout|language/|vendor/|static/|api/|fhir/|"
    r"cds-services|openapi|docs|redoc|health)"
)
"""Links that are downloads, actions or machine interfaces rather than pages."""

COLLECTIONS = frozenset(
    {
        "measures",
        "sites",
        "knowledge",
        "communities",
        "cycles",
        "proposals",
        "patients",
        "responses",
        "forms",
        "users",
        "tokens",
        "clients",
    }
)
"""Path segments followed by the id of one of their members."""


def route_of(path: str) -> str:
    """The route a path belongs to: the segment after a collection's name becomes ``{}``."""
    parts = path.split("/")
    return "/".join(
        "{}" if i > 0 and parts[i - 1] in COLLECTIONS and part else part
        for i, part in enumerate(parts)
    )


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


def _links(page: Any, base: str) -> list[str]:
    hrefs = page.evaluate(
        "Array.from(document.querySelectorAll('a[href]')).filter(a => !a.hasAttribute('download'))"
        ".map(a => a.href)"
    )
    out = []
    host = urlsplit(base).netloc
    for href in hrefs:
        url, _ = urldefrag(href)
        parts = urlsplit(url)
        same_site = parts.scheme in ("http", "https") and parts.netloc == host
        if same_site and not NOT_PAGES.search(parts.path):
            out.append(url)
    return out


def _reflows(page: Any, name: str, problems: list[str]) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(150)  # let responsive charts redraw
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            widest = page.evaluate(
                """(width) => Array.from(document.querySelectorAll('body *'))
                    .filter(el => el.getBoundingClientRect().right > width + 1)
                    .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                               + (el.className && typeof el.className === 'string'
                                  ? '.' + el.className.split(' ').join('.') : ''))
                    .slice(0, 4)""",
                width,
            )
            problems.append(f"{name}: {scroll}px wide in a {width}px window ({widest})")
    page.set_viewport_size({"width": 1280, "height": 900})


def _walk(
    chromium: Any, server: LiveServer, email: str, password: str, name: str
) -> tuple[list[str], list[str]]:
    """The paths opened, and what was wrong on them."""
    problems: list[str] = []
    page = _new_page(chromium, viewport={"width": 1280, "height": 900})
    page.on(
        "response",
        lambda r: (
            problems.append(f"{page.url} fetched {r.url}: {r.status}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    login(page, server.url, email, password)
    start = page.url
    queue: deque[tuple[str, str]] = deque([(start, "the login")])
    seen_routes: set[str] = set()
    opened: list[str] = []
    while queue and len(opened) < PAGES_PER_ROLE:
        url, came_from = queue.popleft()
        path = urlsplit(url).path
        route = route_of(path)
        if route in seen_routes:
            continue
        seen_routes.add(route)
        first_look = route not in CHECKED  # axe and reflow once per route, any role
        response = page.goto(url, wait_until="networkidle" if first_look else "load")
        status = response.status if response is not None else None
        if status is None or status >= 400:
            problems.append(f"{path} (linked from {came_from}) answered {status}")
            continue
        opened.append(path)
        if first_look:
            CHECKED.add(route)
            try:
                _check(page, f"every-page-{name}-{route.strip('/').replace('/', '-') or 'home'}")
            except AssertionError as exc:
                problems.append(str(exc).splitlines()[0])
            _reflows(page, path, problems)
        queue.extend((link, path) for link in _links(page, server.url))
    problems.extend(f"console: {line}" for line in page.careloop_console_errors)
    page.careloop_console_errors.clear()
    _close(page)
    return opened, problems


@pytest.mark.parametrize(("role", "site"), ROLES, ids=[r for r, _ in ROLES])
def test_every_page_a_role_is_shown_works_is_accessible_and_reflows(
    demo, server, chromium, role, site
):
    who = demo.login(role, site)
    opened, problems = _walk(chromium, server, who.email, who.password, role)
    print(f"{role}: {len(opened)} pages: {' '.join(opened)}")
    assert len(opened) >= 2, f"{role} reached only {opened}"
    assert problems == [], f"{role}: " + "\n".join(problems)
