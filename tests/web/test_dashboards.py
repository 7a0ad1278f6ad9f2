"""Measure dashboards through the web app: what each role sees, and that the numbers are the stored ones."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib import resources

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from careloop.measures import load_results
from careloop.practice.feedback.dashboards import may_see_dashboards, patient_list_sites
from careloop.trust import identity, patients
from careloop.trust.principal import Grant, Principal
from careloop.warehouse.connection import Warehouse
from careloop.web.app import create_app
from tests.web.dashboard_demo import (
    DEMO_GROUP,
    MEASURES_DIR_ENV,
    DemoInstallation,
    demo_installation,
)

MEASURE = "remission-at-visit"

pytestmark = DEMO_GROUP


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoInstallation]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in MEASURES_DIR_ENV.items():
            mp.setenv(key, value)
        yield demo_installation(tmp_path_factory)


@pytest.fixture(scope="module")
def app(demo: DemoInstallation) -> Iterator[object]:
    application = create_app(demo.settings)
    yield application
    application.state.registry.close()


@pytest.fixture(scope="module")
def stored(demo: DemoInstallation) -> pd.DataFrame:
    with Warehouse.from_settings(demo.settings, read_only=True) as wh:
        return load_results(wh)


def _client(app: object, email: str, password: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture(scope="module")
def clinician(app: object, demo: DemoInstallation) -> TestClient:
    login = demo.login("clinician", "S001")
    return _client(app, login.email, login.password)


@pytest.fixture(scope="module")
def analyst(app: object, demo: DemoInstallation) -> TestClient:
    login = demo.login("analyst")
    return _client(app, login.email, login.password)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _network(stored: pd.DataFrame, measure: str) -> pd.DataFrame:
    rows = stored[(stored.measure_id == measure) & (stored.site == "") & (stored.stratum == "")]
    return rows.sort_values("period_start")


def test_the_overview_shows_each_measure_s_latest_network_value_as_stored(clinician, stored):
    page = clinician.get("/measures")
    assert page.status_code == 200
    for measure in ("remission-at-visit", "steroid-at-visit", "remission-prevalence"):
        latest = _network(stored, measure).dropna(subset=["value"]).iloc[-1]
        row = re.search(rf'<tr data-measure="{measure}">(.*?)</tr>', page.text, flags=re.S).group(1)  # type: ignore[union-attr]
        value = re.search(r'class="latest-value">([^<]+)<', row).group(1)  # type: ignore[union-attr]
        assert value == _pct(latest.value)
        assert f"{latest.numerator} / {latest.denominator}" in row
        assert "<svg" in row  # the sparkline
    assert 'class="badge' in page.text and 'href="/sites/S002"' in page.text


def test_the_measure_page_lists_the_network_numbers_of_every_period_as_stored(clinician, stored):
    page = clinician.get(f"/measures/{MEASURE}")
    assert page.status_code == 200
    table = re.search(r'id="network-numbers">(.*?)</table>', page.text, flags=re.S).group(1)  # type: ignore[union-attr]
    shown = re.findall(
        r'<tr data-period="([\d-]+)"><td>[^<]*</td><td class="num">(\d+)</td><td class="num">(\d+)',
        table,
    )
    network = _network(stored, MEASURE)
    expected = [
        (r.period_start.isoformat(), str(r.numerator), str(r.denominator))
        for r in network.itertuples()
    ]
    assert sorted(shown) == sorted(expected) and len(shown) == 72
    # The sites' numbers are their stored rows summed over the last 12 months.
    last12 = sorted(network.period_start)[-12:]
    s001 = stored[(stored.measure_id == MEASURE) & (stored.site == "S001")]
    s001 = s001[s001.period_start.isin(last12)]
    row = re.search(r'<tr data-site="S001">(.*?)</tr>', page.text, flags=re.S).group(1)  # type: ignore[union-attr]
    cells = re.findall(r'<td class="num">(\d+)', row)
    assert cells[:2] == [str(s001.numerator.sum()), str(s001.denominator.sum())]
    # Plain-language definition, downloads and the embedded figures.
    assert "quiescent (1)" in page.text
    for link in (
        f"/measures/{MEASURE}.csv",
        f"/measures/{MEASURE}/chart.png",
        f"/measures/{MEASURE}/chart.svg",
    ):
        assert f'href="{link}"' in page.text
    figures = re.findall(
        r'<script type="application/json" id="(fig-\w+)">(.*?)</script>', page.text, flags=re.S
    )
    assert {name for name, _ in figures} == {"fig-network", "fig-sites", "fig-funnel"}
    network_figure = json.loads(dict(figures)["fig-network"])
    plotted = sum(len(t["x"]) for t in network_figure["data"] if t.get("mode") == "markers")
    assert plotted == 72


def test_the_page_runs_no_inline_script_and_plotly_js_comes_from_the_installed_package(clinician):
    page = clinician.get(f"/measures/{MEASURE}")
    for tag in re.findall(r"<script[^>]*>", page.text):
        assert 'type="application/json"' in tag or re.search(r'src="/(vendor|static)/', tag), tag
    served = clinician.get("/vendor/plotly.min.js")
    shipped = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    assert served.status_code == 200 and served.content == shipped
    css = clinician.get("/vendor/plotly.css")
    assert css.status_code == 200 and ".js-plotly-plot .plotly .main-svg" in css.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_csv_download_holds_exactly_the_stored_numbers(clinician, stored):
    response = clinician.get(f"/measures/{MEASURE}.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    mine = stored[(stored.measure_id == MEASURE) & (stored.stratum == "")]
    assert len(rows) == len(mine)
    by_key = {(r["site"], r["period_start"]): r for r in rows}
    for r in mine.itertuples():
        got = by_key[(r.site or "(network)", r.period_start.isoformat())]
        assert int(got["numerator"]) == r.numerator and int(got["denominator"]) == r.denominator
        assert got["small_denominator"] == str(bool(r.small_denominator))


def test_the_chart_downloads_are_images_that_decode(clinician):
    png = clinician.get(f"/measures/{MEASURE}/chart.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    image.load()
    assert image.width > 600 and image.height > 200
    site_png = clinician.get(f"/measures/{MEASURE}/chart.png?site=S003")
    Image.open(io.BytesIO(site_png.content)).load()
    svg = clinician.get(f"/measures/{MEASURE}/chart.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(svg.content).tag.endswith("svg")
    funnel = clinician.get(f"/measures/{MEASURE}/funnel.png")
    Image.open(io.BytesIO(funnel.content)).load()
    assert clinician.get(f"/measures/{MEASURE}/chart.gif").status_code == 422


def _audits(demo: DemoInstallation, category: str) -> list[tuple[str, str, str | None]]:
    from careloop.trust.installation import open_registry

    registry = open_registry(demo.settings, create=False)
    try:
        with registry.engine.connect() as conn:
            return [
                (r.outcome, r.site_code, r.details)
                for r in conn.execute(
                    text(
                        "SELECT outcome, site_code, details FROM audit_entry WHERE category = :c ORDER BY seq"
                    ),
                    {"c": category},
                )
            ]
    finally:
        registry.close()


def test_a_clinician_opens_the_audited_patient_list_behind_their_own_site_s_number(
    clinician, stored, demo
):
    before = len(_audits(demo, "measure_patient_list"))
    page = clinician.get(f"/measures/{MEASURE}/sites/S001/patients")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    latest = (
        stored[(stored.measure_id == MEASURE) & (stored.site == "S001")]
        .sort_values("period_start")
        .iloc[-1]
    )
    listed = re.findall(r'<a href="/patients/(\d+)">S001-\d+</a>', page.text)
    # Visits of the month not in remission; a patient with two such visits is listed once.
    assert 0 < len(listed) <= latest.denominator - latest.numerator
    audits = _audits(demo, "measure_patient_list")
    assert len(audits) == before + 1 and audits[-1][:2] == ("success", "S001")
    assert json.loads(audits[-1][2])["patients"] == len(listed)
    everyone = clinician.get(f"/measures/{MEASURE}/sites/S001/patients?kind=denominator")
    assert len(re.findall(r'href="/patients/\d+"', everyone.text)) >= len(listed)


def test_a_clinician_of_one_site_gets_no_patient_list_of_another_site(clinician, demo):
    page = clinician.get(f"/measures/{MEASURE}")
    assert f'href="/measures/{MEASURE}/sites/S001/patients"' in page.text
    assert f'href="/measures/{MEASURE}/sites/S002/patients"' not in page.text
    other = clinician.get(f"/measures/{MEASURE}/sites/S002/patients")
    assert other.status_code == 404 and "S002-" not in other.text
    assert _audits(demo, "measure_patient_list")[-1][0] != "success"


def test_an_analyst_sees_every_aggregate_but_never_a_patient_list(analyst):
    assert analyst.get("/measures").status_code == 200
    page = analyst.get(f"/measures/{MEASURE}")
    assert page.status_code == 200 and "patient list" not in page.text
    assert 'data-site="S001"' in page.text and 'data-site="S008"' in page.text
    site = analyst.get("/sites/S001")
    assert site.status_code == 200 and "patient list" not in site.text
    assert analyst.get(f"/measures/{MEASURE}.csv").status_code == 200
    denied = analyst.get(f"/measures/{MEASURE}/sites/S001/patients")
    assert denied.status_code == 403 and "S001-" not in denied.text


def test_the_site_page_shows_that_site_s_latest_values_beside_the_network(clinician, stored):
    page = clinician.get("/sites/S002")
    assert page.status_code == 200
    row = re.search(rf'<tr data-measure="{MEASURE}">(.*?)</tr>', page.text, flags=re.S).group(1)  # type: ignore[union-attr]
    mine = stored[(stored.measure_id == MEASURE) & (stored.site == "S002")].dropna(subset=["value"])
    latest = mine.sort_values("period_start").iloc[-1]
    network = _network(stored, MEASURE)
    same = network[network.period_start == latest.period_start].iloc[0]
    assert re.search(r'class="site-value">([^<]+)<', row).group(1) == _pct(latest.value)  # type: ignore[union-attr]
    assert re.search(r'class="network-value">([^<]+)<', row).group(1) == _pct(same.value)  # type: ignore[union-attr]
    # A clinician of S001 lists no patients of S002.
    assert "patient list" not in page.text
    assert clinician.get("/sites/NOPE").status_code == 404
    assert clinician.get("/measures/no-such-measure").status_code == 404


def test_patients_and_carers_see_no_dashboards(app, demo):
    from careloop.trust.installation import open_registry

    registry = open_registry(demo.settings, create=False)
    operator = Principal.operator("tests")
    try:
        someone = patients.search_patients(registry, operator, site="S001", limit=1)[0]
        identity.add_user(
            registry,
            operator,
            email="patient.dash@example.org",
            display_name="patient",
            password="correct horse battery staple",
            roles=[("patient", "S001")],
            patient_id=someone.id,
        )
    finally:
        registry.close()
    client = _client(app, "patient.dash@example.org", "correct horse battery staple")
    assert 'href="/measures"' not in client.get("/").text
    for path in ("/measures", f"/measures/{MEASURE}", f"/measures/{MEASURE}.csv", "/sites/S001"):
        assert client.get(path).status_code == 403, path
    carer = Principal(user_id=1, email="c@example.org", grants=(Grant("carer", 1, "S001"),))
    assert not may_see_dashboards(carer)


def test_only_roles_that_read_records_at_a_site_may_list_its_patients():
    sites = ["S001", "S002", "(none)"]
    lead = Principal(user_id=1, email="l@x", grants=(Grant("site_lead", 1, "S001"),))
    analyst = Principal(user_id=2, email="a@x", grants=(Grant("analyst", None, None),))
    auditor = Principal(user_id=3, email="u@x", grants=(Grant("auditor", None, None),))
    both = Principal(
        user_id=4,
        email="b@x",
        grants=(Grant("clinician", 1, "S001"), Grant("data_entry", 2, "S002")),
    )
    assert patient_list_sites(lead, sites) == ("S001",)
    assert patient_list_sites(analyst, sites) == () and may_see_dashboards(analyst)
    assert patient_list_sites(auditor, sites) == ()
    assert patient_list_sites(both, sites) == ("S001", "S002")


def test_an_installation_without_measure_results_says_how_to_get_them(tmp_path):
    from tests.foundation import PASSWORD, build_installation, make_settings

    inst = build_installation(make_settings(tmp_path, None))
    application = create_app(inst.settings)
    try:
        client = _client(application, inst.emails["clinician@A"], PASSWORD)
        page = client.get("/measures")
        assert page.status_code == 200 and "careloop measures run --by site" in page.text
        assert client.get(f"/measures/{MEASURE}").status_code == 404
    finally:
        application.state.registry.close()
        inst.registry.close()


def _labels(figure: dict) -> list[str]:
    """The texts of a figure's annotations: a change's line is numbered, its text on hover."""
    return [a.get("hovertext") or a["text"] for a in figure["layout"]["annotations"]]


def test_a_knowledge_object_deployment_is_drawn_on_the_measure_s_charts(clinician, monkeypatch):
    from datetime import UTC, datetime

    from careloop.knowledge.library import Deployment
    from careloop.practice.feedback.dashboards import changes

    deployed = Deployment(
        id=1,
        identifier="steroid-sparing",
        version="1.0.0",
        mode="live",
        sites=("S001", "S002"),
        measures=("steroid-at-visit",),
        started_at=datetime(2023, 3, 14, 9, 0, tzinfo=UTC),
        ended_at=None,
        by="lead",
        reason="pilot",
    )
    monkeypatch.setattr(
        changes,
        "deployments_for",
        lambda _registry, measure_id: [deployed] if measure_id == "steroid-at-visit" else [],
    )
    page = clinician.get("/measures/steroid-at-visit")
    assert "Mar 2023: steroid-sparing 1.0.0 (S001, S002)" in page.text
    figures = dict(
        re.findall(
            r'<script type="application/json" id="(fig-\w+)">(.*?)</script>', page.text, flags=re.S
        )
    )
    network = json.loads(figures["fig-network"])
    labels = _labels(network)
    assert "steroid-sparing 1.0.0 (S001, S002)" in labels
    # Served at two sites only: a phase of those sites' charts, a line on the network's.
    sites = json.loads(figures["fig-sites"])
    assert sum("steroid-sparing" in text for text in _labels(sites)) == 2
    # The network change package (a learning cycle at every site, steroid use its balancing
    # measure) starts the network's one new phase; the two-site deployment starts none.
    assert "Part 2" in labels and "Part 3" not in labels
    assert "steroid-sparing" not in clinician.get("/measures/remission-at-visit").text


def test_a_learning_cycles_change_is_a_phase_of_its_measures_charts(clinician):
    page = clinician.get("/measures/remission-at-visit")
    assert page.status_code == 200
    assert "Changes recorded for this measure" in page.text
    assert "Jul 2021: Network change package (learning cycle" in page.text
    figures = dict(
        re.findall(
            r'<script type="application/json" id="(fig-\w+)">(.*?)</script>', page.text, flags=re.S
        )
    )
    network = json.loads(figures["fig-network"])
    labels = _labels(network)
    assert any(text.startswith("Network change package") for text in labels)
    # Every site took up the change package: a new phase of the network chart at its date.
    assert "Part 2" in labels
    # A site's own adaptation is a line on the network's chart but starts no phase there
    # (as a deployment to some sites does); it is marked on the site charts too.
    assert any("own adaptation" in text for text in labels)
    assert "Part 3" not in labels
    sites = json.loads(figures["fig-sites"])
    assert any("own adaptation" in text for text in _labels(sites))


NOTED = "remission-prevalence"  # notes go on a measure the tests above do not count phases of


@pytest.fixture(scope="module")
def lead(app: object, demo: DemoInstallation) -> TestClient:
    login = demo.login("site_lead", "S001")
    return _client(app, login.email, login.password)


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def _figure(page: str, name: str) -> dict:
    found = re.search(
        rf'<script type="application/json" id="fig-{name}">(.*?)</script>', page, flags=re.S
    )
    assert found, name
    return json.loads(found.group(1))


def _phases(figure: dict) -> int:
    """A chart's phases: "Part k" labels are drawn only when there are two or more."""
    return max(1, sum(a["text"].startswith("Part") for a in figure["layout"]["annotations"]))


def test_a_site_lead_adds_a_note_that_starts_a_phase_on_their_site_s_chart(lead, demo):
    page = lead.get(f"/measures/{NOTED}")
    # A site lead of one site sees that site's chart first, and may annotate only it.
    assert 'id="site-chart"' in page.text and "Site S001 SPC chart" in page.text
    assert re.findall(r'<option value="([^"]*)"[^>]*>(?:the network|site \w+)</option>', page.text)
    form = re.search(
        r'<form method="post" action="/measures/[^"]+/notes".*?</form>', page.text, re.S
    )
    assert form and re.findall(r'<option value="(\w*)"', form.group(0)) == ["S001"]
    before_parts = _figure(page.text, "site")["layout"]["annotations"]
    before = len(_audits(demo, "measure_chart"))
    posted = lead.post(
        f"/measures/{NOTED}/notes",
        data={
            "csrf_token": _token(page.text),
            "site": "S001",
            "period": "2022-03",
            "text": "New transition clinic opened",
            "starts_phase": "yes",
        },
        follow_redirects=False,
    )
    assert posted.status_code == 303 and "site=S001" in posted.headers["location"]
    shown = lead.get(posted.headers["location"])
    assert "The note was added to the chart." in shown.text
    site = _figure(shown.text, "site")
    labels = _labels(site)
    assert "New transition clinic opened" in labels
    assert _phases(site) == _phases({"layout": {"annotations": before_parts}}) + 1
    # The network's chart does not carry one site's note.
    assert "New transition clinic opened" not in _labels(_figure(shown.text, "network"))
    audits = _audits(demo, "measure_chart")
    assert len(audits) == before + 1 and audits[-1][:2] == ("success", "S001")
    assert json.loads(audits[-1][2])["starts_phase"] is True


def test_a_note_is_refused_with_reasons_beside_the_fields_and_nothing_recorded(lead, demo):
    page = lead.get(f"/measures/{NOTED}")
    before = len(_audits(demo, "measure_chart"))
    refused = lead.post(
        f"/measures/{NOTED}/notes",
        data={"csrf_token": _token(page.text), "site": "S001", "period": "", "text": "  "},
    )
    assert refused.status_code == 422
    assert "The note was not added" in refused.text and 'aria-invalid="true"' in refused.text
    assert "Choose the month the note marks" in refused.text
    # The network's chart is not a site lead's to annotate: refused and audited.
    network = lead.post(
        f"/measures/{NOTED}/notes",
        data={"csrf_token": _token(page.text), "site": "", "period": "2022-01", "text": "x"},
    )
    assert network.status_code == 403 and "may not add notes to the network" in network.text
    # Both attempts are in the audit trail; neither recorded a note.
    audits = _audits(demo, "measure_chart")
    assert [a[0] for a in audits[before:]] == ["failure", "denied"]
    assert "may not add notes" not in lead.get(f"/measures/{NOTED}?site=S001").text
    # Without the page's CSRF token, nothing happens at all.
    assert lead.post(f"/measures/{NOTED}/notes", data={"text": "x"}).status_code == 403


def test_a_network_analyst_starts_a_network_phase_through_the_api(app, analyst, clinician, demo):
    page = analyst.get(f"/measures/{NOTED}")
    phases_before = _phases(_figure(page.text, "network"))
    created = analyst.post(
        f"/api/measures/{NOTED}/notes",
        json={"period": "2023-09-01", "text": "Coding rules changed", "starts_phase": True},
        headers={"X-CSRF-Token": _token(page.text)},
    )
    assert created.status_code == 201, created.text
    assert created.json()["site"] == "" and created.json()["period_start"] == "2023-09-01"
    listed = clinician.get(f"/api/measures/{NOTED}/notes").json()
    assert any(n["text"] == "Coding rules changed" for n in listed)
    network = _figure(analyst.get(f"/measures/{NOTED}?site=network").text, "network")
    assert "Coding rules changed" in _labels(network)
    assert _phases(network) == phases_before + 1
    # A clinician may read the notes but add none.
    refused = clinician.post(
        f"/api/measures/{NOTED}/notes",
        json={"period": "2023-09-01", "text": "x"},
        headers={"X-CSRF-Token": _token(clinician.get(f"/measures/{NOTED}").text)},
    )
    assert refused.status_code == 403
    assert "Add a note to a chart" not in clinician.get(f"/measures/{NOTED}").text


def test_the_csv_carries_each_period_s_centre_line_limits_phase_and_signal(clinician):
    rows = list(csv.DictReader(io.StringIO(clinician.get(f"/measures/{MEASURE}.csv").text)))
    network = [r for r in rows if r["site"] == "(network)"]
    assert {"cl", "ucl", "lcl", "phase", "signal", "chart"} <= set(rows[0])
    assert {r["phase"] for r in network} == {"1", "2"} and {r["chart"] for r in network} == {"p"}
    for r in network:
        assert float(r["lcl"]) < float(r["cl"]) < float(r["ucl"]) <= 1.0
    first = [r for r in network if r["phase"] == "1"]
    assert len({r["cl"] for r in first}) == 1  # one centre line per phase


def test_downloaded_images_name_their_source_and_extraction_date(clinician):
    svg = clinician.get(f"/measures/{MEASURE}/chart.svg").text
    assert "Source: careloop measure results" in svg and "extracted" in svg and "downloaded" in svg
    # The changes are numbered on the chart and listed under the title, not printed over
    # each other; the limits read in percent.
    assert "1: Jul 2021 Network change package" in svg and "CL 70.7%" in svg
    funnel = clinician.get(f"/measures/{MEASURE}/funnel.svg").text
    assert "Source: careloop measure results" in funnel and "network mean" in funnel


def test_the_measure_page_warns_of_old_data_and_filters_by_site_and_period(clinician, stored):
    page = clinician.get(f"/measures/{MEASURE}?site=S002&start=2023-01&end=2023-06")
    assert page.status_code == 200
    assert "These data end in December 2024; the newest results are" in page.text
    assert "Site S002 SPC chart" in page.text
    periods = re.findall(r'<tr data-period="([\d-]+)">', page.text)
    assert periods == [f"2023-0{m}-01" for m in range(6, 0, -1)]
    assert _figure(page.text, "site")["layout"]["xaxis"]["range"] == ["2023-01-01", "2023-06-01"]
    assert clinician.get(f"/measures/{MEASURE}?start=2023-13").status_code == 422
    assert clinician.get(f"/measures/{MEASURE}?site=S999").status_code == 404


def test_the_pages_show_two_making_data_count_icons_and_no_piled_up_badges(clinician):
    overview = clinician.get("/measures").text
    row = re.search(rf'<tr data-measure="{MEASURE}">(.*?)</tr>', overview, flags=re.S).group(1)  # type: ignore[union-attr]
    assert len(re.findall(r'<svg class="mdc-icon variation-', row)) == 1
    assert len(re.findall(r'<svg class="mdc-icon assurance-', row)) == 1
    assert "outside limits</span>" not in overview and ">shift<" not in overview
    assert 'id="attention"' in overview and "Needs attention this month" in overview
    pucai = re.search(r'<tr data-measure="pucai-median">(.*?)</tr>', overview, flags=re.S)
    assert pucai and "run chart: no limits" in pucai.group(1)
    site = clinician.get("/sites/S001").text
    assert 'class="mdc-icon variation-' in site
    page = clinician.get("/measures/pucai-median").text
    assert "Control limits are not meaningful here because" in page
