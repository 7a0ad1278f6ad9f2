"""The measure dashboards in a real browser, as a clinician and as an analyst.

A real ``careloop serve`` on the demo network, headless Debian Chromium; the
``page`` fixture fails a test on any console error, which includes a CSP
violation (an inline style or script plotly.js might try).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from careloop.measures import load_results
from careloop.warehouse.connection import Warehouse
from tests.live import LiveServer, check_page, login, start_server, stop_server
from tests.web.dashboard_demo import (
    DEMO_GROUP,
    MEASURES_DIR_ENV,
    DemoInstallation,
    demo_installation,
)

pytestmark = [pytest.mark.browser, DEMO_GROUP]

MEASURE = "remission-at-visit"


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
def stored(demo: DemoInstallation) -> pd.DataFrame:
    with Warehouse.from_settings(demo.settings, read_only=True) as wh:
        return load_results(wh)


def _points_in(page, selector: str) -> int:
    # plotly.js draws each marker as a path.point inside the plot's scatter layer.
    return page.locator(f"{selector} .scatterlayer .trace .points path.point").count()


def test_a_clinician_walks_the_overview_a_measure_page_and_their_site(demo, server, stored, page):
    me = demo.login("clinician", "S001")
    login(page, server.url, me.email, me.password)
    page.get_by_role("link", name="Measures").click()
    page.wait_for_url(server.url + "/measures")
    rows = page.locator("table.measures tbody tr")
    assert rows.count() == stored.measure_id.nunique()
    assert page.locator("svg.spark").count() >= 10

    page.get_by_role(
        "link", name="Clinic visits with the disease in remission (PGA quiescent)"
    ).click()
    page.wait_for_url(f"{server.url}/measures/{MEASURE}")
    network = page.locator('[data-plotly="fig-network"]')
    network.and_(page.locator('[data-rendered="yes"]')).wait_for()
    network_rows = stored[(stored.measure_id == MEASURE) & (stored.site == "")]
    assert _points_in(page, '[data-plotly="fig-network"]') == len(network_rows) == 72
    page.locator('[data-plotly="fig-sites"][data-rendered="yes"]').wait_for()
    site_rows = stored[(stored.measure_id == MEASURE) & (stored.site.str.startswith("S"))]
    site_points = site_rows[site_rows.denominator > 0]
    assert _points_in(page, '[data-plotly="fig-sites"]') == len(site_points)
    page.locator('[data-plotly="fig-funnel"][data-rendered="yes"]').wait_for()
    assert _points_in(page, '[data-plotly="fig-funnel"]') == 8
    # Hovering a point shows plotly's tooltip (the hover layer works under the CSP).
    # The drag layer above the points takes the mouse, as it does for a person.
    page.locator('[data-plotly="fig-network"] path.point').last.hover(force=True, timeout=5000)
    page.locator('[data-plotly="fig-network"] .hoverlayer .hovertext').first.wait_for(timeout=5000)
    assert page.get_by_role("link", name="patient list").count() == 1

    page.get_by_role("link", name="patient list").click()
    page.wait_for_url(f"{server.url}/measures/{MEASURE}/sites/S001/patients")
    assert page.locator("#patient-list tbody tr").count() > 0
    assert "audit trail" in page.locator("main").inner_text()

    page.goto(server.url + "/sites/S001")
    row = page.locator(f'tr[data-measure="{MEASURE}"]')
    latest = (
        stored[(stored.measure_id == MEASURE) & (stored.site == "S001")]
        .sort_values("period_start")
        .iloc[-1]
    )
    assert row.locator(".site-value").inner_text() == f"{latest.value * 100:.1f}%"
    assert row.get_by_role("link", name="patient list").count() == 1


def test_an_analyst_sees_the_charts_but_no_patient_list(demo, server, page):
    me = demo.login("analyst")
    login(page, server.url, me.email, me.password)
    page.goto(f"{server.url}/measures/{MEASURE}")
    page.locator('[data-plotly="fig-network"][data-rendered="yes"]').wait_for()
    assert _points_in(page, '[data-plotly="fig-network"]') == 72
    assert page.get_by_role("link", name="patient list").count() == 0
    assert page.locator("#site-numbers tbody tr").count() == 8
    page.goto(server.url + "/sites/S002")
    assert page.locator("table.measures tbody tr").count() > 5
    assert page.get_by_role("link", name="patient list").count() == 0
    response = page.goto(f"{server.url}/measures/{MEASURE}/sites/S001/patients")
    assert response is not None and response.status == 403
    assert "does not allow" in page.locator("main").inner_text()
    page.careloop_console_errors[:] = [
        m for m in page.careloop_console_errors if "status of 403" not in m
    ]


def _phases_drawn(page, selector: str) -> int:
    # SVG text has no inner text: read each label's text content.
    labels = page.locator(f"{selector} .annotation-text").evaluate_all(
        "els => els.map(e => e.textContent || '')"
    )
    return max(1, sum(text.startswith("Part") for text in labels))


def test_a_site_lead_adds_a_phase_from_the_chart_and_sees_the_limits_recalculated(
    demo, server, page
):
    me = demo.login("site_lead", "S001")
    login(page, server.url, me.email, me.password)
    for width in (1280, 320):
        page.set_viewport_size({"width": width, "height": 900})
        for path in ("/measures", "/sites/S001", f"/measures/{MEASURE}"):
            page.goto(server.url + path)
            if path.startswith("/measures/"):
                page.locator('[data-plotly="fig-network"][data-rendered="yes"]').wait_for()
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{path} scrolls sideways at {width} px ({scroll} px)"
            check_page(page, f"lead-{path.strip('/').replace('/', '-')}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server.url}/measures/steroid-at-visit")
    site_chart = '[data-plotly="fig-site"]'
    page.locator(f'{site_chart}[data-rendered="yes"]').wait_for()
    summary_before = page.locator("#sum-site").inner_text()
    before = _phases_drawn(page, site_chart)
    page.get_by_label("Month (YYYY-MM)").fill("2020-06")
    page.get_by_label("What happened").fill("Steroid dosing chart introduced")
    page.get_by_label("Start a new phase here").check()
    page.get_by_role("button", name="Add the note").click()
    page.wait_for_url("**recorded=1**")
    page.locator(f'{site_chart}[data-rendered="yes"]').wait_for()
    assert page.get_by_text("The note was added to the chart.").is_visible()
    assert _phases_drawn(page, site_chart) == before + 1
    summary = page.locator("#sum-site").inner_text()
    assert summary != summary_before and "Jun 2020" in summary
    assert "Steroid dosing chart introduced" in page.locator("#site-chart").inner_text()
    check_page(page, "lead-note-added")
