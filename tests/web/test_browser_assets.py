"""A measure page in a real browser: plotly.js and the style sheet arrive compressed, the
style sheet from its hashed address, and Plotly draws under the strict CSP.

The ``page`` fixture fails the test on any console error, which includes a CSP
violation (an inline style or script plotly.js might try).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import LiveServer, login, start_server, stop_server
from tests.web.dashboard_demo import DEMO_GROUP, MEASURES_DIR_ENV, DemoInstallation

pytestmark = [pytest.mark.browser, DEMO_GROUP]

MEASURE = "remission-at-visit"


@pytest.fixture(scope="module")
def server(demo: DemoInstallation) -> Iterator[LiveServer]:
    live = start_server(demo.settings.data_dir, env=MEASURES_DIR_ENV)
    yield live
    stop_server(live)


def test_a_measure_page_draws_plotly_from_compressed_assets_under_the_csp(demo, server, page):
    me = demo.login("analyst")
    login(page, server.url, me.email, me.password)
    sent: dict[str, dict[str, str]] = {}
    page.on("response", lambda r: sent.__setitem__(r.url.removeprefix(server.url), r.headers))
    response = page.goto(f"{server.url}/measures/{MEASURE}")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers.get("content-encoding") == "gzip"  # the page itself, same origin
    page.locator('[data-plotly="fig-network"][data-rendered="yes"]').wait_for()
    page.locator('[data-plotly="fig-funnel"][data-rendered="yes"]').wait_for()
    drawn = page.locator('[data-plotly="fig-network"] .scatterlayer .trace .points path.point')
    assert drawn.count() == 72
    (plotly,) = [u for u in sent if u.startswith("/vendor/plotly.min.") and u.endswith(".js")]
    assert plotly != "/vendor/plotly.min.js"  # the hashed address, cached for a year
    assert sent[plotly]["content-encoding"] == "br"
    assert sent[plotly]["cache-control"].endswith("immutable")
    sheets = [u for u in sent if u.startswith("/static/careloop.") and u.endswith(".css")]
    assert len(sheets) == 1 and sent[sheets[0]]["cache-control"].endswith("immutable")
    assert sent[sheets[0]]["content-encoding"] == "br"
