"""``/api/communities/{id}/aims|nasss|maturity|toolkit``: a community's strategy, as thin routes.

Each route authenticates the caller and calls one ``careloop.community``
function as that caller (:meth:`careloop.web.security.Actor.call`), which
checks membership of the community on the server and audits the access
(refusals too). Recording a NASSS assessment is
``POST …/nasss`` in :mod:`careloop.web.api.community`; here ``GET …/nasss``
gives the aggregated profile.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from careloop import community
from careloop.web.openapi import IdField, RecordId, Short, Strict, Text, errors
from careloop.web.security import ActorDep, SettingsDep

router = APIRouter(prefix="/api/communities", tags=["communities"])

Key = Annotated[str, Field(max_length=80)]


class ChangeIdeaBody(Strict):
    title: Short
    cycles: list[IdField] = Field(default_factory=list, max_length=100)


class SecondaryBody(Strict):
    title: Short
    change_ideas: list[ChangeIdeaBody] = Field(default_factory=list, max_length=100)


class PrimaryBody(Strict):
    title: Short
    secondary: list[SecondaryBody] = Field(default_factory=list, max_length=100)


class AimMeasureBody(Strict):
    measure_id: Short
    role: Literal["outcome", "process", "balancing"] = "outcome"
    baseline: float
    target: float


class AimBody(Strict):
    what: Text
    how_much: Text
    by_when: date
    drivers: list[PrimaryBody] = Field(default_factory=list, max_length=50)
    measures: list[AimMeasureBody] = Field(default_factory=list, max_length=50)

    def data(self) -> community.AimInput:
        return community.AimInput.from_dict(self.model_dump())


class LevelBody(Strict):
    level: int = Field(description="1 (not yet started) to 5 (leading); see GET …/maturity.")
    note: Text = ""


class MaturityBody(Strict):
    round: Annotated[str, Field(max_length=40, description="The round, e.g. 2024-06.")]
    ratings: dict[Key, LevelBody]
    on_behalf_of: Short | None = Field(
        None, description="A member's e-mail, to record their ratings from a workshop."
    )


class ToolBody(Strict):
    key: Key
    kind: Literal["tool", "case_study"]
    title: Short
    stages: list[Key] = Field(min_length=1, max_length=8)
    summary: Text
    body: Annotated[str, Field(max_length=100_000)] = ""


class ToolRating(Strict):
    stars: int = Field(description="1 to 5.")
    comment: Text = ""


class ToolUse(Strict):
    tool: Key


class DesignBody(Strict):
    behaviour: Text
    com_b: list[Key] = Field(max_length=6)
    functions: list[Key] = Field(default_factory=list, max_length=9)
    policies: list[Key] = Field(default_factory=list, max_length=7)
    notes: Text = ""


def _improvements(settings: Any) -> dict[str, str]:
    return community.measure_improvements(settings.measures_dir)


# ---------------------------------------------------------------- aims


@router.get("/{community_id}/aims", responses=errors(401, 403, 404, 422))
def aims(community_id: RecordId, actor: ActorDep, settings: SettingsDep) -> list[community.AimView]:
    """The community's aims with their driver diagrams and families of measures."""
    return actor.call(community.list_aims, community_id, improvements=_improvements(settings))


@router.post("/{community_id}/aims", status_code=201, responses=errors(400, 401, 403, 404, 422))
def add_aim(
    community_id: RecordId, body: AimBody, actor: ActorDep, settings: SettingsDep
) -> community.AimView:
    """Record an aim (members)."""
    return actor.call(
        community.set_aim, community_id, body.data(), improvements=_improvements(settings)
    )


@router.put("/{community_id}/aims/{aim_id}", responses=errors(400, 401, 403, 404, 422))
def replace_aim(
    community_id: RecordId,
    aim_id: RecordId,
    body: AimBody,
    actor: ActorDep,
    settings: SettingsDep,
) -> community.AimView:
    """Replace an aim as a whole (members)."""
    return actor.call(
        community.set_aim,
        community_id,
        body.data(),
        improvements=_improvements(settings),
        aim_id=aim_id,
    )


# ---------------------------------------------------------------- NASSS and maturity


@router.get("/{community_id}/nasss", responses=errors(401, 403, 404, 422))
def nasss_profile(
    community_id: RecordId,
    actor: ActorDep,
    subject: Annotated[Short | None, Query()] = None,
) -> list[community.NasssRound]:
    """The aggregated NASSS profile per subject and round, with the members' disagreement."""
    return actor.call(community.nasss_profile_of, community_id, subject=subject)


@router.get("/{community_id}/maturity", responses=errors(401, 403, 404, 422))
def maturity(community_id: RecordId, actor: ActorDep) -> community.MaturityProfile:
    """The maturity profile round by round: members' levels, evidence, change, next steps."""
    return actor.call(community.maturity_profile, community_id)


@router.post("/{community_id}/maturity", status_code=201, responses=errors(400, 401, 403, 404, 422))
def rate_maturity(
    community_id: RecordId, body: MaturityBody, actor: ActorDep
) -> community.MaturityRatingView:
    """Record the caller's (or, for a facilitator, a member's) maturity ratings in a round."""
    return actor.call(
        community.record_maturity,
        community_id,
        round_name=body.round,
        ratings={k: (v.level, v.note) for k, v in body.ratings.items()},
        on_behalf_of=body.on_behalf_of,
    )


# ---------------------------------------------------------------- toolkit


@router.get("/{community_id}/toolkit", responses=errors(401, 403, 404, 422))
def toolkit(
    community_id: RecordId,
    actor: ActorDep,
    stage: Annotated[Key | None, Query()] = None,
) -> list[community.ToolView]:
    """The community's toolkit, optionally only the items for one stage of the cycle."""
    return actor.call(community.list_toolkit, community_id, stage=stage)


@router.post("/{community_id}/toolkit", status_code=201, responses=errors(400, 401, 403, 404, 422))
def add_tool(community_id: RecordId, body: ToolBody, actor: ActorDep) -> community.ToolView:
    """Add a tool or case study to the community's toolkit (members)."""
    return actor.call(
        community.add_tool,
        community_id,
        key=body.key,
        kind=body.kind,
        title=body.title,
        stages=body.stages,
        summary=body.summary,
        body=body.body,
    )


@router.post("/{community_id}/toolkit/starter", responses=errors(401, 403, 404, 422))
def load_starter(community_id: RecordId, actor: ActorDep) -> list[str]:
    """Load the starter items the toolkit lacks (facilitators and community admins)."""
    return actor.call(community.load_starter_toolkit, community_id)


@router.post("/{community_id}/toolkit/{key}/ratings", responses=errors(400, 401, 403, 404, 422))
def rate_tool(
    community_id: RecordId, key: Key, body: ToolRating, actor: ActorDep
) -> community.ToolView:
    """Rate a toolkit item from 1 to 5 (rating again replaces the caller's rating)."""
    return actor.call(
        community.rate_tool, community_id, key, stars=body.stars, comment=body.comment
    )


@router.post("/{community_id}/cycles/{cycle_id}/tools", responses=errors(400, 401, 403, 404, 422))
def use_tool(
    community_id: RecordId, cycle_id: RecordId, body: ToolUse, actor: ActorDep
) -> list[str]:
    """Record that the cycle used a toolkit item; the cycle's tools after it."""
    return actor.call(community.use_tool, cycle_id, body.tool, community_id=community_id)


@router.put("/{community_id}/cycles/{cycle_id}/design", responses=errors(400, 401, 403, 404, 422))
def design(
    community_id: RecordId, cycle_id: RecordId, body: DesignBody, actor: ActorDep
) -> community.DesignView:
    """Record (or replace) the cycle's behaviour-change design (COM-B, intervention functions)."""
    return actor.call(
        community.record_design,
        cycle_id,
        behaviour=body.behaviour,
        com_b=body.com_b,
        functions=body.functions,
        policies=body.policies,
        notes=body.notes,
        community_id=community_id,
    )
