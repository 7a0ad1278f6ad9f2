"""The measure pages' data and figures: computed once per measure run, shared through files,
computed again for a new run, deployment or change, and never shared across viewers' rights."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from careloop.core.errors import PermissionDenied
from careloop.core.settings import Settings
from careloop.measures.catalog import builtin_measures
from careloop.measures.runner import run_measures, store_run
from careloop.practice.feedback import dashboards as dashboard
from careloop.practice.feedback.dashboards import Deployed
from careloop.trust.principal import Grant, Principal
from careloop.warehouse.connection import Warehouse, warehouse_opener
from careloop.web.pages import dashboard_cache as page_cache
from careloop.web.pages.dashboards import _catalog, _detail_inputs
from tests.foundation import log_in
from tests.web.dashboard_demo import DEMO_GROUP, DemoInstallation

MEASURE = "remission-at-visit"
FIGURES = re.compile(r'<script type="application/json" id="fig-\w+">.*?</script>', re.S)

pytestmark = DEMO_GROUP


@pytest.fixture(scope="module")
def client(app: object, demo: DemoInstallation) -> Iterator[TestClient]:
    with TestClient(app) as test_client:  # type: ignore[arg-type]
        login = demo.login("clinician", "S001")
        log_in(test_client, login.email, login.password)
        yield test_client


def _fresh(settings: Settings) -> None:
    # The demo installation is shared: start from no cache at all, as after a new run.
    page_cache.forget_memory()
    shutil.rmtree(settings.data_dir / page_cache.CACHE_FOLDER, ignore_errors=True)


def _counts() -> tuple[int, int, int]:
    c = page_cache.COUNTS
    return c.computed, c.from_file, c.from_memory


def test_a_measure_page_is_computed_once_then_kept_in_memory(client, demo):
    _fresh(demo.settings)
    computed, from_file, _ = _counts()
    first = client.get(f"/measures/{MEASURE}")
    assert first.status_code == 200
    assert _counts()[:2] == (computed + 2, from_file)  # the page's data and its figures
    again = client.get(f"/measures/{MEASURE}")
    assert _counts()[:2] == (computed + 2, from_file)
    assert FIGURES.findall(again.text) == FIGURES.findall(first.text)
    assert len(FIGURES.findall(first.text)) == 3
    folder = demo.settings.data_dir / page_cache.CACHE_FOLDER
    assert len(list(folder.glob("*-detail-*.pickle"))) == 1
    assert len(list(folder.glob("*-figures-*.pickle"))) == 1


def test_another_worker_reads_the_files_instead_of_computing(client, demo):
    client.get(f"/measures/{MEASURE}")
    before = client.get(f"/measures/{MEASURE}")
    page_cache.forget_memory()  # as a second worker process would start
    computed, from_file, _ = _counts()
    after = client.get(f"/measures/{MEASURE}")
    assert _counts()[:2] == (computed, from_file + 2)
    assert FIGURES.findall(after.text) == FIGURES.findall(before.text)


def test_the_overview_and_a_site_page_are_shared_too(client, demo):
    _fresh(demo.settings)
    for url in ("/measures", "/sites/S001"):
        assert client.get(url).status_code == 200
        computed = _counts()[0]
        assert client.get(url).status_code == 200
        assert _counts()[0] == computed, url


def _stored(demo: DemoInstallation) -> dashboard.StoredResults:
    return dashboard.stored_results(warehouse_opener(demo.settings))


def _detail(demo, principal, deployments=()):
    stored = _stored(demo)
    catalog = _catalog(demo.settings)
    return page_cache.measure_detail(
        demo.settings,
        stored,
        principal,
        _detail_inputs(MEASURE, deployments, demo.settings),
        lambda: dashboard.measure_detail(
            stored, catalog, MEASURE, principal, deployments=deployments
        ),
    )


def test_a_new_deployment_or_change_is_computed_again_and_shows_on_the_chart(demo):
    analyst = Principal(user_id=2, email="a@x", grants=(Grant("analyst", None, None),))
    _fresh(demo.settings)
    before = _detail(demo, analyst)
    change = Deployed("Clinic huddles (all sites)", date(2022, 3, 1), (), kind="pdsa")
    computed = _counts()[0]
    after = _detail(demo, analyst, (change,))
    assert _counts()[0] == computed + 1  # a new key: not the cached page without it
    assert change in after.deployments and change not in before.deployments
    labels = [a.label for a in after.network.annotations]
    assert any("Clinic huddles" in label for label in labels), labels
    assert _detail(demo, analyst) == before and _counts()[0] == computed + 1


def test_a_new_measure_run_is_a_new_key_and_removes_the_old_run_s_files(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert page_cache.shared(settings, "run-1", "detail", ("m",), lambda: "one") == "one"
    assert page_cache.shared(settings, "run-1", "detail", ("m",), lambda: "other") == "one"
    assert page_cache.shared(settings, "run-2", "detail", ("m",), lambda: "two") == "two"
    files = list((tmp_path / page_cache.CACHE_FOLDER).glob("*.pickle"))
    assert len(files) == 1  # only the latest run's entry stays on disk
    page_cache.forget_memory()
    assert page_cache.shared(settings, "run-2", "detail", ("m",), lambda: "again") == "two"


def test_each_viewer_gets_their_own_rights_from_the_shared_detail(demo):
    lead = Principal(user_id=1, email="l@x", grants=(Grant("site_lead", 1, "S001"),))
    analyst = Principal(user_id=2, email="a@x", grants=(Grant("analyst", None, None),))
    for principal in (lead, analyst, lead):
        detail = _detail(demo, principal)
        sites = [s.site for s in detail.sites]
        assert detail.patient_list_sites == dashboard.patient_list_sites(principal, sites)
    assert _detail(demo, lead).patient_list_sites != _detail(demo, analyst).patient_list_sites
    patient = Principal(user_id=3, email="p@x", grants=(Grant("patient", 1, "S001"),))
    with pytest.raises(PermissionDenied, match="does not see the measure dashboards"):
        _detail(demo, patient)


def test_a_new_measure_run_stored_while_the_server_runs_is_shown(demo, tmp_path):
    # A copy of the demo's warehouse: the pages look at it again only when its file changed.
    settings = Settings(data_dir=tmp_path)
    shutil.copy(demo.settings.data_dir / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    before = page_cache.stored_results(settings)
    assert page_cache.stored_results(settings) is before
    with Warehouse.from_settings(settings) as warehouse:
        measure = builtin_measures()[0]
        run = run_measures(
            warehouse, [measure], start=date(2024, 1, 1), end=date(2024, 1, 31), by=["site"]
        )
        store_run(warehouse, run)
    after = page_cache.stored_results(settings)
    assert after.run_id != before.run_id and run.run_id in after.run_id


@pytest.mark.parametrize(
    ("role", "site"), [("site_lead", "S001"), ("clinician", "S002"), ("admin", None)]
)
def test_after_the_start_up_warm_up_staff_pages_compute_nothing(app, demo, role, site):
    # The warm-up computes the overview and each measure page as the staff of each site
    # and the installation-wide roles see them: their first visit finds them ready.
    from careloop.trust.installation import open_registry
    from careloop.web.pages.dashboards import warm_pages

    _fresh(demo.settings)
    registry = open_registry(demo.settings)
    try:
        assert warm_pages(demo.settings, registry) > 0
    finally:
        registry.close()
    with TestClient(app) as visitor:  # type: ignore[arg-type]
        login = demo.login(role, site)
        log_in(visitor, login.email, login.password)
        computed = page_cache.COUNTS.computed
        for url in ("/measures", f"/measures/{MEASURE}", "/sites/S001"):
            assert visitor.get(url).status_code == 200, url
        assert page_cache.COUNTS.computed == computed
