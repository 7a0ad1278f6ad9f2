"""Running a learning cycle from the pages: the forms to record an Act, a new cycle,
a problem or idea, and a decision or reflection.

On the demo installation (careloop.demo.learning_community), whose change package
cycle has its Act and whose site cycles have none yet.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from careloop import community
from careloop.demo.learning_community import NAME
from careloop.trust.principal import Principal
from tests.web.dashboard_demo import DemoInstallation
from tests.web.test_community_pages import _audited, _client, _csrf, _refusals

HTML = {"accept": "text/html"}
OP = Principal.operator("tests")


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
    # Other modules on this worker share the demo and may have recorded Acts as this member.
    acts_before = _audited(app, me).count("cycle.act")
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
    assert _audited(app, me).count("cycle.act") == acts_before + 1


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


# ---------------------------------------------------------------- a new cycle

OUTCOME, BALANCING = "remission-at-visit", "steroid-at-visit"


def _pilot(app: object, cid: int) -> community.CycleView:
    """The demo's own cycle on steroid use as its outcome (a pilot at S001 and others)."""
    return next(
        c
        for c in _cycles(app, cid)
        if c.parent_id is None and {"measure_id": BALANCING, "role": "outcome"} in c.measures
    )


def _new_cycle(parent: int, start: date, token: str, **more: str) -> dict[str, str]:
    """A valid cycle at S001 nested in ``parent``, whose outcome is steroid use."""
    return {
        "parent_id": str(parent),
        "title": "Steroid-sparing checklist at S001",
        "kind": "process",
        "aim": "Fewer children on steroids at S001's visits.",
        "predictions": "Steroid use falls within six months.",
        "plan_who": "S001's QI team",
        "plan_when": (start - timedelta(days=20)).isoformat(),
        "plan_site_S001": "1",
        "do_start": start.isoformat(),
        "do_site_S001": "1",
        "do_what": "A checklist at each visit of a child on steroids.",
        f"role_{BALANCING}": "outcome",
        f"role_{OUTCOME}": "balancing",
        "purpose": "qi",
        "determination_kind": "qi_determination",
        "determination_ref": "QI-2026-17",
        "csrf_token": token,
        **more,
    }


def test_the_new_cycle_form_lists_the_communitys_measures_sites_and_cycles(app, demo, cid):
    client = _as(app, demo, "clinician", "S001")
    listing = _page(client, f"/communities/{cid}/cycles")
    assert f'href="/communities/{cid}/cycles/new">Record a new learning cycle' in listing
    page = _page(client, f"/communities/{cid}/cycles/new")
    detail = community.show_community(app.state.registry, OP, cid)  # type: ignore[attr-defined]
    for measure_id in detail.community.measures:
        assert f'name="role_{measure_id}"' in page
    assert 'name="role_emergency-visits"' in page  # the rest of the catalogue too
    for site in detail.community.sites:
        assert f'name="do_site_{site}"' in page and f'name="plan_site_{site}"' in page
    for cycle in _cycles(app, cid):
        assert f'<option value="{cycle.id}">' in page


def test_bad_cycles_come_back_beside_their_fields_and_nothing_is_recorded(app, demo, cid):
    registry = app.state.registry  # type: ignore[attr-defined]
    client = _as(app, demo, "clinician", "S001")
    page = _page(client, f"/communities/{cid}/cycles/new")
    token = _csrf(page)
    package = next(c for c in _cycles(app, cid) if c.kind == "change_package")
    pilot = _pilot(app, cid)
    start = pilot.do["start"] + timedelta(days=200)
    before = len(_cycles(app, cid))
    url = f"/communities/{cid}/cycles"
    assert client.post(url, data=_new_cycle(pilot.id, start, ""), headers=HTML).status_code == 403
    # No measure chosen: refused on the page, what was typed kept.
    bare = _new_cycle(pilot.id, start, token)
    del bare[f"role_{BALANCING}"], bare[f"role_{OUTCOME}"]
    refused = client.post(url, data=bare, headers=HTML)
    assert refused.status_code == 422
    assert 'id="problem-measures">Choose at least one measure' in refused.text
    assert 'value="Steroid-sparing checklist at S001"' in refused.text
    # The Do ends before it starts and the Plan is dated after it: both beside their fields.
    inverted = _new_cycle(
        cid, start, token, do_end=(start - timedelta(days=5)).isoformat(),
        plan_when=(start + timedelta(days=3)).isoformat(),
    )  # fmt: skip
    refused = client.post(url, data=inverted, headers=HTML)
    assert refused.status_code == 422
    assert re.search(r'id="problem-do_end">The Do ends \([-\d]+\) before it starts', refused.text)
    assert 'id="problem-plan_when">The Plan' in refused.text
    assert '<option value="balancing" selected>balancing measure' in refused.text
    # Remission as an outcome at S001 while the change package (every site) is running.
    overlapping = _new_cycle(pilot.id, start, token, parent_id="", **{f"role_{OUTCOME}": "outcome"})
    refused = client.post(url, data=overlapping, headers=HTML)
    assert refused.status_code == 422
    assert f'id="problem-do_start">The Do overlaps cycle {package.id}' in refused.text
    # A measure this installation does not have (a forged post: the form offers none).
    unknown = _new_cycle(pilot.id, start, token, **{"role_no-such-measure": "process"})
    refused = client.post(url, data=unknown, headers=HTML)
    assert refused.status_code == 422
    assert 'id="problem-measures">no-such-measure: No such measure' in refused.text
    assert len(_cycles(app, cid)) == before
    me = demo.login("clinician", "S001").email
    refusals = [r for r in _refusals(app, "cycle.add") if r["email"] == me]
    assert len(refusals) == 3  # the service's refusals: the missing measure never reached it
    assert "Steroid-sparing" not in str(community.decisions(registry, OP, cid))


def test_a_member_records_a_new_cycle_and_its_page_shows_the_study_phase(app, demo, cid):
    client = _as(app, demo, "clinician", "S001")
    page = _page(client, f"/communities/{cid}/cycles/new")
    pilot = _pilot(app, cid)
    start = pilot.do["start"] + timedelta(days=200)
    done = client.post(
        f"/communities/{cid}/cycles",
        data=_new_cycle(pilot.id, start, _csrf(page)),
        headers=HTML,
        follow_redirects=False,
    )
    assert done.status_code == 303, re.findall(r"<li>[^<]*</li>", done.text)
    added = _cycles(app, cid)[-1]
    assert done.headers["location"] == f"/communities/{cid}/cycles/{added.id}?added=1"
    assert added.title == "Steroid-sparing checklist at S001" and added.do["sites"] == ["S001"]
    assert added.parent_id == pilot.id
    assert added.plan["sites"] == ["S001"] and added.determination["reference"] == "QI-2026-17"
    assert {m["measure_id"]: m["role"] for m in added.measures} == {
        BALANCING: "outcome",
        OUTCOME: "balancing",
    }
    shown = _page(client, done.headers["location"])
    assert "Thank you: the cycle is recorded." in shown
    assert f'data-date="{start.isoformat()}"' in shown
    # Monthly measures: the new phase starts with the month of the change.
    month = start.replace(day=1).isoformat()
    for measure_id in (BALANCING, OUTCOME):
        assert f'data-measure="{measure_id}" data-phase-starts="{month}"' in shown
    assert "Progress score" in shown and "Record the Act" in shown
    me = demo.login("clinician", "S001").email
    assert "cycle.add" in _audited(app, me)


def test_a_non_member_cannot_open_or_post_the_new_cycle_form(app, demo, cid):
    client = _as(app, demo, "auditor")
    assert client.get(f"/communities/{cid}/cycles/new", headers=HTML).status_code == 404
    token = _csrf(client.get("/", headers=HTML).text)
    before = len(_cycles(app, cid))
    start = date.today() - timedelta(days=30)
    answer = client.post(
        f"/communities/{cid}/cycles", data=_new_cycle(_pilot(app, cid).id, start, token)
    )
    assert answer.status_code == 404 and NAME not in answer.text
    assert len(_cycles(app, cid)) == before
    assert _refusals(app, "cycle.add")[-1]["email"] == demo.login("auditor").email


# ---------------------------------------------------------------- priorities


def _priorities(app: object, cid: int) -> list[community.PriorityView]:
    return community.list_priorities(app.state.registry, OP, cid)  # type: ignore[attr-defined]


def test_a_patient_member_proposes_a_problem_by_form_and_sees_it_ranked(app, demo, cid):
    client = _as(app, demo, "patient", "S001")
    url = f"/communities/{cid}/priorities"
    page = _page(client, url)
    assert "Propose a problem or an idea" in page
    before = len(_priorities(app, cid))
    wanted = {"kind": "problem", "title": "Long waits for a call back from the clinic"}
    assert client.post(url, data=wanted, headers=HTML).status_code == 403  # no CSRF token
    refused = client.post(
        url,
        data={
            "kind": "worry",
            "title": " ",
            "description": "Kept as typed",
            "csrf_token": _csrf(page),
        },
        headers=HTML,
    )
    assert refused.status_code == 422
    assert "Your proposal was not recorded: The priority is not valid" in refused.text
    assert 'id="problem-kind">A priority is a problem or an idea.' in refused.text
    assert 'id="problem-title">Say what the problem or idea is.' in refused.text
    assert ">Kept as typed</textarea>" in refused.text
    assert len(_priorities(app, cid)) == before
    me = demo.login("patient", "S001").email
    assert _refusals(app, "community.priority")[-1]["email"] == me
    done = client.post(url, data={**wanted, "csrf_token": _csrf(page)}, headers=HTML)
    assert done.status_code == 200 and "Thank you: your proposal is open for votes." in done.text
    assert "Long waits for a call back from the clinic" in done.text
    (added,) = [p for p in _priorities(app, cid) if p.title == wanted["title"]]
    assert added.kind == "problem" and added.proposed_by == me and added.status == "open"
    assert f'href="/communities/{cid}/proposals/{added.proposal_id}">Vote on it' in done.text
    assert "community.priority" in _audited(app, me)


def test_a_non_member_cannot_propose_a_priority(app, demo, cid):
    client = _as(app, demo, "auditor")
    token = _csrf(client.get("/", headers=HTML).text)
    before = len(_priorities(app, cid))
    answer = client.post(
        f"/communities/{cid}/priorities",
        data={"kind": "idea", "title": "Outsiders' idea", "csrf_token": token},
        headers=HTML,
    )
    assert answer.status_code == 404 and NAME not in answer.text
    assert len(_priorities(app, cid)) == before
    assert _refusals(app, "community.priority")[-1]["email"] == demo.login("auditor").email


# ---------------------------------------------------------------- the decision log


def test_a_member_logs_what_did_not_work_by_form_and_bad_input_changes_nothing(app, demo, cid):
    registry = app.state.registry  # type: ignore[attr-defined]
    client = _as(app, demo, "carer", "S002")
    url = f"/communities/{cid}/decisions"
    page = _page(client, url)
    assert "Add to the log" in page
    before = len(community.decisions(registry, OP, cid))
    cycle = _pilot(app, cid)
    entry = {
        "kind": "reflection",
        "title": "Text reminders went unread",
        "did_not_work": "Reminders sent the evening before a visit.",
        "why": "Families read messages in the morning.",
        "cycle": str(cycle.id),
    }
    assert client.post(url, data=entry, headers=HTML).status_code == 403  # no CSRF token
    bad = {**entry, "title": "", "did_not_work": "", "cycle": "999999", "why": "Kept as typed"}
    refused = client.post(url, data={**bad, "csrf_token": _csrf(page)}, headers=HTML)
    assert refused.status_code == 422
    assert "The entry was not recorded: The log entry is not valid" in refused.text
    assert 'id="problem-title">Give the entry a title.' in refused.text
    assert 'id="problem-decision">Say what was decided, or what did not work' in refused.text
    assert 'id="problem-cycle">No cycle of this community has this id.' in refused.text
    assert ">Kept as typed</textarea>" in refused.text
    assert len(community.decisions(registry, OP, cid)) == before
    me = demo.login("carer", "S002").email
    assert _refusals(app, "community.decision")[-1]["email"] == me
    done = client.post(url, data={**entry, "csrf_token": _csrf(page)}, headers=HTML)
    assert done.status_code == 200 and "Thank you: the entry is in the log." in done.text
    logged = community.decisions(registry, OP, cid)[-1]
    assert (logged.kind, logged.title, logged.recorded_by) == ("reflection", entry["title"], me)
    assert logged.links["cycles"] == [cycle.id]
    assert "Families read messages in the morning." in done.text
    assert "community.decision" in _audited(app, me)


def test_a_non_member_cannot_add_to_the_log(app, demo, cid):
    registry = app.state.registry  # type: ignore[attr-defined]
    client = _as(app, demo, "auditor")
    token = _csrf(client.get("/", headers=HTML).text)
    before = len(community.decisions(registry, OP, cid))
    answer = client.post(
        f"/communities/{cid}/decisions",
        data={"kind": "decision", "title": "x", "decision": "y", "csrf_token": token},
        headers=HTML,
    )
    assert answer.status_code == 404 and NAME not in answer.text
    assert len(community.decisions(registry, OP, cid)) == before
