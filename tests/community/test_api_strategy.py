"""/api/communities/{id}/aims|nasss|maturity|toolkit: thin routes, members only, audited."""

from __future__ import annotations

from typing import Any

from tests.community.helpers import audit_rows, make_community
from tests.community.test_api import bearer
from tests.foundation import Installation

DOMAINS = (
    "condition",
    "technology",
    "value_proposition",
    "adopter_system",
    "organisation",
    "wider_system",
    "embedding_and_adaptation",
)
SIX = (
    "leadership",
    "governance_and_management",
    "quality_improvement",
    "community_building_and_engagement",
    "data_and_analytics",
    "research",
)


def test_aims_are_set_and_listed_by_members_and_refused_to_others(
    api: Any, installation: Installation
):
    inst = installation
    cid = make_community(inst).community.id
    aim = {
        "what": "More children in remission",
        "how_much": "from 60% to 75%",
        "by_when": "2026-12-31",
        "drivers": [
            {"title": "Reliable visits", "secondary": [{"title": "Pre-visit planning"}]}
        ],
        "measures": [
            {"measure_id": "remission-prevalence", "baseline": 0.6, "target": 0.75},
            {"measure_id": "steroid-exposure", "role": "balancing", "baseline": 0.2,
             "target": 0.25},
        ],
    }  # fmt: skip
    made = api.post(f"/api/communities/{cid}/aims", json=aim, headers=bearer(inst, "carer@B"))
    assert made.status_code == 201, made.text
    listed = api.get(f"/api/communities/{cid}/aims", headers=bearer(inst, "patient@A")).json()
    assert [m["improvement"] for m in listed[0]["measures"]] == ["up", "down"]
    wrong = {**aim, "measures": [{**aim["measures"][0], "target": 0.5}]}
    bad = api.put(
        f"/api/communities/{cid}/aims/{made.json()['id']}", json=wrong,
        headers=bearer(inst, "carer@B"),
    )  # fmt: skip
    assert bad.status_code == 422
    assert [d["location"] for d in bad.json()["error"]["details"]] == ["measures[0].target"]
    after = api.get(f"/api/communities/{cid}/aims", headers=bearer(inst, "carer@B")).json()
    assert after[0]["measures"][0]["target"] == 0.75  # nothing changed
    outsider = bearer(inst, "site_lead@B")
    assert api.post(f"/api/communities/{cid}/aims", json=aim, headers=outsider).status_code == 403
    assert api.get(f"/api/communities/{cid}/aims", headers=outsider).status_code == 403
    assert audit_rows(inst, "community.aims")[-1][1] == "denied"


def test_the_nasss_profile_shows_the_members_disagreement(api: Any, installation: Installation):
    inst = installation
    cid = make_community(inst).community.id
    for key, condition in (("carer@B", "simple"), ("patient@A", "complex"), ("analyst", "complex")):
        ratings = {d: ["complicated", ""] for d in DOMAINS}
        ratings["condition"] = [condition, f"as {key} sees it"]
        sent = api.post(
            f"/api/communities/{cid}/nasss", json={"subject": "ko-api", "ratings": ratings},
            headers=bearer(inst, key),
        )  # fmt: skip
        assert sent.status_code == 201, sent.text
    got = api.get(
        f"/api/communities/{cid}/nasss?subject=ko-api", headers=bearer(inst, "clinician@B")
    )
    assert got.status_code == 200, got.text
    condition = got.json()[0]["domains"][0]
    assert condition["domain"] == "condition"
    assert condition["counts"] == {"simple": 1, "complicated": 0, "complex": 2}
    assert (condition["spread"], condition["disagreement"]) == (2, True)
    assert api.get(
        f"/api/communities/{cid}/nasss", headers=bearer(inst, "site_lead@B")
    ).status_code == 403  # fmt: skip


def test_maturity_is_rated_and_profiled_with_evidence_through_the_api(
    api: Any, installation: Installation
):
    inst = installation
    cid = make_community(inst).community.id
    ratings = {d: {"level": 2, "note": ""} for d in SIX}
    sent = api.post(
        f"/api/communities/{cid}/maturity", json={"round": "2024-06", "ratings": ratings},
        headers=bearer(inst, "patient@A"),
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    bad = api.post(
        f"/api/communities/{cid}/maturity",
        json={"round": "2024-06", "ratings": {**ratings, "leadership": {"level": 9}}},
        headers=bearer(inst, "patient@A"),
    )
    assert bad.status_code == 422
    assert [d["location"] for d in bad.json()["error"]["details"]] == ["ratings.leadership"]
    proxy = api.post(
        f"/api/communities/{cid}/maturity",
        json={"round": "2024-06", "ratings": ratings, "on_behalf_of": inst.emails["analyst"]},
        headers=bearer(inst, "carer@B"),  # a member, not a facilitator
    )
    assert proxy.status_code == 403
    got = api.get(f"/api/communities/{cid}/maturity", headers=bearer(inst, "analyst")).json()
    (only,) = got["rounds"]
    engagement = {d["domain"]: d for d in only["domains"]}["community_building_and_engagement"]
    # By hand: 5 members (checked), a patient and a carer (checked), no votes (two not) -> 3;
    # the score is the mean of the member's 2 and the evidence's 3.
    assert engagement["ratings"] == [2] and engagement["evidence"]["level"] == 3
    assert engagement["score"] == 2.5
    assert len(got["next_steps"]) == 3 and got["levels"]["1"].startswith("Not yet started")
    assert api.get(
        f"/api/communities/{cid}/maturity", headers=bearer(inst, "site_lead@B")
    ).status_code == 403  # fmt: skip


def test_the_toolkit_is_listed_added_to_rated_and_used_by_cycles(
    api: Any, installation: Installation
):
    inst = installation
    cid = make_community(inst).community.id
    carer = bearer(inst, "carer@B")
    tools = api.get(f"/api/communities/{cid}/toolkit", headers=carer).json()
    assert len(tools) == 8 and {t["source"] for t in tools} == {"starter"}
    study = api.get(f"/api/communities/{cid}/toolkit?stage=study", headers=carer).json()
    assert "run-chart-rules" in [t["key"] for t in study]
    assert "driver-diagram-guide" not in [t["key"] for t in study]
    added = api.post(
        f"/api/communities/{cid}/toolkit",
        json={"key": "huddle-card", "kind": "tool", "title": "Huddle card", "stages": ["do"],
              "summary": "Five questions"},
        headers=carer,
    )  # fmt: skip
    assert added.status_code == 201, added.text
    rated = api.post(
        f"/api/communities/{cid}/toolkit/huddle-card/ratings", json={"stars": 4}, headers=carer
    )
    assert rated.status_code == 200 and rated.json()["mean_rating"] == 4.0
    too_many = api.post(
        f"/api/communities/{cid}/toolkit/huddle-card/ratings", json={"stars": 7}, headers=carer
    )
    assert too_many.status_code == 422
    cycle = api.post(
        f"/api/communities/{cid}/cycles",
        json={"title": "Huddles", "kind": "process", "measures": []},
        headers=carer,
    ).json()["id"]
    used = api.post(
        f"/api/communities/{cid}/cycles/{cycle}/tools", json={"tool": "huddle-card"}, headers=carer
    )
    assert used.status_code == 200 and used.json() == ["huddle-card"]
    design = api.put(
        f"/api/communities/{cid}/cycles/{cycle}/design",
        json={"behaviour": "Teams huddle daily", "com_b": ["opportunity_social"],
              "functions": ["modelling"]},
        headers=carer,
    )  # fmt: skip
    assert design.status_code == 200 and design.json()["com_b"] == ["opportunity_social"]
    listed = {t["key"]: t for t in api.get(f"/api/communities/{cid}/toolkit", headers=carer).json()}
    assert listed["huddle-card"]["used_by"] == [cycle]
    assert api.post(
        f"/api/communities/{cid}/toolkit/starter", headers=bearer(inst, "clinician@A")
    ).json() == []  # fmt: skip
    outsider = bearer(inst, "site_lead@B")
    assert api.get(f"/api/communities/{cid}/toolkit", headers=outsider).status_code == 403
    refused = api.post(
        f"/api/communities/{cid}/cycles/{cycle}/tools", json={"tool": "huddle-card"},
        headers=outsider,
    )  # fmt: skip
    assert refused.status_code == 403
    assert audit_rows(inst, "cycle.tool")[-1][:2] == (inst.emails["site_lead@B"], "denied")
