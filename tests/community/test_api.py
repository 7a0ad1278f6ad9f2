"""/api/communities… through the app: scoped by membership, audited, declared in OpenAPI."""

from __future__ import annotations

from typing import Any

from tests.community.helpers import audit_rows, make_community
from tests.foundation import Installation


def bearer(inst: Installation, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {inst.tokens[key]}"}


def test_members_see_their_community_and_its_parts_and_others_are_refused(
    api: Any, installation: Installation
):
    inst = installation
    cid = make_community(inst).community.id
    patient = bearer(inst, "patient@A")
    shown = api.get(f"/api/communities/{cid}", headers=patient)
    assert shown.status_code == 200, shown.text
    assert {m["email"]: m["roles"] for m in shown.json()["members"]}[inst.emails["carer@B"]] == [
        "carer"
    ]
    assert api.get(f"/api/communities/{cid}/members", headers=patient).status_code == 200
    assert api.get(f"/api/communities/{cid}/charter", headers=patient).json()[0]["number"] == 1
    assert cid in [c["id"] for c in api.get("/api/communities", headers=patient).json()]
    outsider = bearer(inst, "site_lead@B")
    for path in ("", "/members", "/charter", "/proposals", "/priorities", "/decisions", "/cycles"):
        refused = api.get(f"/api/communities/{cid}{path}", headers=outsider)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "permission_denied"
    assert cid not in [c["id"] for c in api.get("/api/communities", headers=outsider).json()]
    assert api.get(f"/api/communities/{cid}").status_code == 401
    assert audit_rows(inst, "community.show")[-1][1] == "denied"


def test_a_proposal_is_voted_and_closed_through_the_api(api: Any, installation: Installation):
    inst = installation
    cid = make_community(inst).community.id
    made = api.post(
        f"/api/communities/{cid}/priorities",
        json={"kind": "idea", "title": "Steroid action plans"},
        headers=bearer(inst, "carer@B"),
    )
    assert made.status_code == 201, made.text
    pid = made.json()["proposal_id"]
    for key in ("clinician@A", "patient@A", "carer@B"):
        cast = api.post(
            f"/api/communities/{cid}/proposals/{pid}/votes",
            json={"choice": "yes", "comment": "yes"},
            headers=bearer(inst, key),
        )
        assert cast.status_code == 200, cast.text
    bad = api.post(
        f"/api/communities/{cid}/proposals/{pid}/votes",
        json={"choice": "perhaps"},
        headers=bearer(inst, "analyst"),
    )
    assert bad.status_code == 422
    stranger = api.post(
        f"/api/communities/{cid}/proposals/{pid}/votes",
        json={"choice": "no"},
        headers=bearer(inst, "site_lead@B"),
    )
    assert stranger.status_code == 403
    closed = api.post(
        f"/api/communities/{cid}/proposals/{pid}/close", json={}, headers=bearer(inst, "carer@B")
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "passed"
    assert closed.json()["outcome"]["patients_and_carers"]["yes"] == 2
    # Under another community's id the proposal is not found.
    other = make_community(inst).community.id
    assert (
        api.get(
            f"/api/communities/{other}/proposals/{pid}", headers=bearer(inst, "carer@B")
        ).status_code
        == 404
    )
    ranked = api.get(f"/api/communities/{cid}/priorities", headers=bearer(inst, "patient@A"))
    assert ranked.json()[0]["score"] == 3


def test_cycles_are_recorded_and_shown_through_the_api(api: Any, installation: Installation):
    inst = installation
    cid = make_community(inst).community.id
    body = {
        "title": "Pre-visit planning",
        "kind": "process",
        "do_start": "2024-02-01",
        "do_sites": ["A"],
        "measures": [{"measure_id": "remission-prevalence", "role": "outcome"}],
    }
    made = api.post(f"/api/communities/{cid}/cycles", json=body, headers=bearer(inst, "patient@A"))
    assert made.status_code == 201, made.text
    cycle = made.json()["id"]
    assert made.json()["phases"][0]["starts"] == "2024-02-01"
    bad = api.post(
        f"/api/communities/{cid}/cycles",
        json={**body, "do_end": "2024-01-01", "measures": [{"measure_id": "nope"}]},
        headers=bearer(inst, "patient@A"),
    )
    assert bad.status_code == 422
    assert {d["location"] for d in bad.json()["error"]["details"]} >= {"do_end", "measures[0]"}
    patched = api.patch(
        f"/api/communities/{cid}/cycles/{cycle}",
        json={"do_end": "2024-06-30"},
        headers=bearer(inst, "clinician@B"),
    )
    assert patched.status_code == 200 and patched.json()["do"]["end"] == "2024-06-30"
    refused = api.patch(
        f"/api/communities/{cid}/cycles/{cycle}",
        json={"title": "ours"},
        headers=bearer(inst, "site_lead@B"),
    )
    assert refused.status_code == 403
    act = api.post(
        f"/api/communities/{cid}/cycles/{cycle}/act",
        json={"decision": "adopt", "rationale": "Remission rose"},
        headers=bearer(inst, "carer@B"),
    )
    assert act.status_code == 200 and act.json()["act"]["decision"] == "adopt"
    listed = api.get(f"/api/communities/{cid}/cycles", headers=bearer(inst, "analyst"))
    assert [c["id"] for c in listed.json()] == [cycle]


def test_every_community_route_is_in_the_openapi_description(api: Any):
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/api/communities",
        "/api/communities/{community_id}",
        "/api/communities/{community_id}/members",
        "/api/communities/{community_id}/charter",
        "/api/communities/{community_id}/proposals/{proposal_id}/votes",
        "/api/communities/{community_id}/priorities",
        "/api/communities/{community_id}/decisions",
        "/api/communities/{community_id}/cycles/{cycle_id}",
    ):
        assert path in paths, path


def test_a_cycle_change_naming_a_measure_without_its_role_keeps_the_default_role(
    api: Any, installation: Installation
):
    inst = installation
    cid = make_community(inst).community.id
    body = {"title": "Huddles", "kind": "process", "measures": []}
    made = api.post(f"/api/communities/{cid}/cycles", json=body, headers=bearer(inst, "carer@B"))
    patched = api.patch(
        f"/api/communities/{cid}/cycles/{made.json()['id']}",
        json={"measures": [{"measure_id": "remission-prevalence"}]},
        headers=bearer(inst, "carer@B"),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["measures"] == [{"measure_id": "remission-prevalence", "role": "outcome"}]
