"""Running a learning cycle from the pages: the forms to record an Act, a new cycle,
a problem or idea, and a decision or reflection.

On the demo installation (careloop.demo.learning_community), whose change package
cycle has its Act and whose site cycles have none yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from careloop import community
from careloop.demo.learning_community import NAME
from careloop.trust.principal import Principal
from careloop.web.app import create_app
from tests.web.dashboard_demo import MEASURES_DIR_ENV, DemoInstallation, demo_installation
from tests.web.test_community_pages import _audited, _client, _csrf, _refusals

HTML = {"accept": "text/html"}
OP = Principal.operator("tests")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoInstallation]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in MEASURES_DIR_ENV.items():
            mp.setenv(key, value)
        yield demo_installation(tmp_path_factory)


@pytest.fixture(scope="module")
def app(demo: DemoInstallation) -> Iterator[object]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in MEASURES_DIR_ENV.items():
            mp.setenv(key, value)
        application = create_app(demo.settings)
        yield application
    application.state.registry.close()


@pytest.fixture(scope="module")
def cid(app: object) -> int:
    registry = app.state.registry  # type: ignore[attr-defined]
    return next(c.id for c in community.list_communities(registry, OP) if c.name == NAME)


def _as(app: object, demo: DemoInstallation, role: str, site: str | None = None) -> TestClient:
    login = demo.login(role, site)
    return _client(app, login.email, login.password)


def _page(client: TestClient, path: str) -> str:
    response = client.get(path, headers=HTML)
    assert response.status_code == 200, (path, response.text[:500])
    return response.text


def _cycles(app: object, cid: int) -> list[community.CycleView]:
    return community.list_cycles(app.state.registry, OP, community_id=cid)  # type: ignore[attr-defined]


def _without_act(app: object, cid: int) -> list[community.CycleView]:
    return [c for c in _cycles(app, cid) if c.act is None and c.do["start"] is not None]


# ---------------------------------------------------------------- Act


def test_a_member_records_a_cycles_act_by_form_and_bad_input_changes_nothing(app, demo, cid):
    cycle = _without_act(app, cid)[0]
    url = f"/communities/{cid}/cycles/{cycle.id}"
    client = _as(app, demo, "clinician", "S001")
    page = _page(client, url)
    assert 'action="' + url + '/act"' in page and "Record the Act" in page
    # Without the page's CSRF token: refused, nothing recorded.
    forged = client.post(f"{url}/act", data={"decision": "adopt", "rationale": "x"}, headers=HTML)
    assert forged.status_code == 403
    # A decision the cycle does not know, and no reason: both shown, what was typed kept.
    refused = client.post(
        f"{url}/act",
        data={"decision": "shelve", "rationale": "  ", "csrf_token": _csrf(page)},
        headers=HTML,
    )
    assert refused.status_code == 422
    assert "The Act was not recorded: Act cannot be recorded; nothing was changed." in refused.text
    assert 'id="problem-decision">Use one of adopt, adapt, abandon.' in refused.text
    assert 'id="problem-rationale">Say why: the next cycle learns from it.' in refused.text
    half = client.post(
        f"{url}/act",
        data={"rationale": "Families found it hard to follow.", "csrf_token": _csrf(page)},
        headers=HTML,
    )
    assert half.status_code == 422
    assert ">Families found it hard to follow.</textarea>" in half.text
    assert community.show_cycle(app.state.registry, OP, cycle.id).act is None
    me = demo.login("clinician", "S001").email
    assert _refusals(app, "cycle.act")[-1]["email"] == me
    done = client.post(
        f"{url}/act",
        data={
            "decision": "adapt",
            "rationale": "Remission rose but clinic time ran short; test a shorter checklist.",
            "csrf_token": _csrf(page),
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"{url}?recorded=1#act"
    shown = _page(client, done.headers["location"])
    assert "Thank you: the Act is recorded." in shown
    assert "<strong>Adapt</strong>" in shown and "test a shorter checklist." in shown
    assert "Record the Act" not in shown
    act = community.show_cycle(app.state.registry, OP, cycle.id).act
    assert act is not None and act["decision"] == "adapt"
    assert _audited(app, me).count("cycle.act") == 1


def test_a_non_member_cannot_record_an_act_and_nothing_is_recorded(app, demo, cid):
    cycle = _without_act(app, cid)[-1]
    client = _as(app, demo, "auditor")
    token = _csrf(client.get("/", headers=HTML).text)
    before = len(_refusals(app, "cycle.act"))
    answer = client.post(
        f"/communities/{cid}/cycles/{cycle.id}/act",
        data={"decision": "abandon", "rationale": "Outsiders say so.", "csrf_token": token},
        headers=HTML,
    )
    assert answer.status_code == 404 and NAME not in answer.text
    assert community.show_cycle(app.state.registry, OP, cycle.id).act is None
    assert len(_refusals(app, "cycle.act")) == before + 1


def test_a_cycle_with_its_act_shows_no_form_and_a_patient_member_sees_it(app, demo, cid):
    done = next(c for c in _cycles(app, cid) if c.act is not None)
    page = _page(_as(app, demo, "patient", "S001"), f"/communities/{cid}/cycles/{done.id}")
    assert "Record the Act" not in page and done.act is not None
    assert done.act["rationale"] in page
    assert re.search(r"<strong>Adopt</strong>", page)
