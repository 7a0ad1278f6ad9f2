"""``/api/communities…``: learning communities and their cycles, as thin routes.

Each route authenticates the caller and calls one ``careloop.community``
function as that caller (:meth:`careloop.web.security.Actor.call`), which
checks membership of the community on the server and audits the access
(refusals too). A proposal, cycle or invitation is addressed under its
community; one of another community is not found.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from careloop import community
from careloop.web.openapi import IdField, RecordId, Short, Strict, Text, errors
from careloop.web.security import ActorDep, SettingsDep

router = APIRouter(prefix="/api/communities", tags=["communities"])


class CharterBody(Strict):
    purpose: Text
    decision_rule: Literal["consensus", "majority", "named_approvers"]
    goals: list[Short] = Field(default_factory=list, max_length=50)
    quorum: float = Field(0.5, gt=0, le=1)
    approvers: list[Short] = Field(default_factory=list, max_length=50)
    requires_patient_reviewer: bool = False
    meeting_cadence: Short = ""
    data_access_agreement: Text = ""

    def terms(self) -> community.CharterTerms:
        return community.CharterTerms.from_dict(self.model_dump())


class CommunityCreate(Strict):
    name: Short
    purpose: Text
    problem: Text = ""
    scale: Literal["practice", "hospital", "network"] = "network"
    sites: list[Short] = Field(default_factory=list, max_length=500)
    conditions: list[Short] = Field(default_factory=list, max_length=50)
    measures: list[Short] = Field(default_factory=list, max_length=200)
    charter: CharterBody
    facilitator: Short | None = Field(
        None, description="E-mail of the first facilitator (default: the caller)."
    )


class InvitationCreate(Strict):
    email: Short
    roles: list[Short] = Field(min_length=1, max_length=9)


class InvitationAnswer(Strict):
    accept: bool


class RolesChange(Strict):
    email: Short
    roles: list[Short] = Field(min_length=1, max_length=9)
    is_admin: bool | None = None


class ProposalCreate(Strict):
    kind: Literal["charter_change", "priority", "knowledge_approval", "knowledge_spread"]
    title: Short
    body: Text = ""
    knowledge: Short | None = Field(None, description="identifier@version (knowledge kinds).")
    sites: list[Short] = Field(default_factory=list, max_length=500)
    mode: Literal["silent", "live"] = "live"
    charter: CharterBody | None = None

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.charter is not None:
            out["charter"] = self.charter.model_dump()
        if self.knowledge is not None:
            out.update({"knowledge": self.knowledge, "sites": self.sites, "mode": self.mode})
        return out


class VoteCast(Strict):
    choice: Literal["yes", "no", "abstain"]
    comment: Text = ""
    on_behalf_of: Short | None = Field(
        None, description="A member's e-mail, to record their vote at a meeting (facilitators)."
    )


class Closing(Strict):
    reason: Text = ""


class PriorityCreate(Strict):
    kind: Literal["problem", "idea"]
    title: Short
    description: Text = ""


class DecisionCreate(Strict):
    title: Short
    kind: Literal["decision", "reflection"] = "decision"
    decision: Text = ""
    did_not_work: Text = ""
    why: Text = ""
    cycles: list[IdField] = Field(default_factory=list, max_length=100)
    knowledge: list[Short] = Field(default_factory=list, max_length=100)
    measures: list[Short] = Field(default_factory=list, max_length=100)


class CycleMeasureBody(Strict):
    measure_id: Short
    role: Literal["outcome", "process", "balancing"] = "outcome"


class CycleBody(Strict):
    title: Short
    kind: Literal["process", "change_package", "policy", "training", "knowledge_deployment"]
    aim: Text = ""
    predictions: Text = ""
    questions: Text = ""
    parent_id: IdField | None = None
    knowledge_ref: Short | None = None
    plan_who: Text = ""
    plan_where: Text = ""
    plan_when: date | None = None
    plan_sites: list[Short] = Field(default_factory=list, max_length=500)
    do_start: date | None = None
    do_end: date | None = None
    do_sites: list[Short] = Field(default_factory=list, max_length=500)
    do_what: Text = ""
    purpose: Literal["qi", "research"] = "qi"
    randomised: bool = False
    determination_kind: Literal["qi_determination", "ethics_approval"] | None = None
    determination_ref: Short | None = None
    measures: list[CycleMeasureBody] = Field(default_factory=list, max_length=50)

    def data(self) -> community.CycleInput:
        values = self.model_dump()
        values["plan_sites"] = tuple(values["plan_sites"])
        values["do_sites"] = tuple(values["do_sites"])
        values["measures"] = tuple(
            community.CycleMeasureInput(m["measure_id"], m["role"]) for m in values["measures"]
        )
        return community.CycleInput(**values)


class CycleChanges(Strict):
    """Fields to change; those left out stay as they are."""

    title: Short | None = None
    aim: Text | None = None
    predictions: Text | None = None
    questions: Text | None = None
    plan_who: Text | None = None
    plan_where: Text | None = None
    plan_when: date | None = None
    do_start: date | None = None
    do_end: date | None = None
    do_sites: list[Short] | None = Field(None, max_length=500)
    do_what: Text | None = None
    determination_kind: Literal["qi_determination", "ethics_approval"] | None = None
    determination_ref: Short | None = None
    measures: list[CycleMeasureBody] | None = Field(None, max_length=50)

    def changes(self) -> dict[str, Any]:
        values = self.model_dump(exclude_unset=True)
        if "do_sites" in values and values["do_sites"] is not None:
            values["do_sites"] = tuple(values["do_sites"])
        if "measures" in values and self.measures is not None:
            # From the models, not the dump: an unset role keeps its default.
            values["measures"] = tuple(
                community.CycleMeasureInput(m.measure_id, m.role) for m in self.measures
            )
        return values


class ActBody(Strict):
    decision: Literal["adopt", "adapt", "abandon"]
    rationale: Text


class NassBody(Strict):
    subject: Short
    ratings: dict[Short, tuple[Literal["simple", "complicated", "complex"], Text]]


def _known(settings: Any) -> list[str]:
    return community.measure_ids(settings.measures_dir)


# ---------------------------------------------------------------- communities


@router.get("", responses=errors(401, 403))
def communities(actor: ActorDep) -> list[community.CommunityView]:
    """The caller's communities (every one for the installation admin)."""
    return actor.call(community.list_communities)


@router.post("", status_code=201, responses=errors(400, 401, 403, 404, 409, 422))
def create(
    body: CommunityCreate, actor: ActorDep, settings: SettingsDep
) -> community.CommunityDetail:
    """Create a community with its founding charter; the caller facilitates it."""
    return actor.call(
        community.create_community,
        name=body.name,
        purpose=body.purpose,
        problem=body.problem,
        scale=body.scale,
        sites=body.sites,
        conditions=body.conditions,
        measures=body.measures,
        known_measures=_known(settings),
        charter=body.charter.terms(),
        facilitator=body.facilitator,
    )


@router.get("/{community_id}", responses=errors(401, 403, 404, 422))
def show(community_id: RecordId, actor: ActorDep) -> community.CommunityDetail:
    """A community: members with their community roles, the charter and its history."""
    return actor.call(community.show_community, community_id)


@router.get("/{community_id}/members", responses=errors(401, 403, 404, 422))
def members(community_id: RecordId, actor: ActorDep) -> list[community.MemberView]:
    """Members with their community roles."""
    return actor.call(community.show_community, community_id).members


@router.get("/{community_id}/charter", responses=errors(401, 403, 404, 422))
def charter(community_id: RecordId, actor: ActorDep) -> list[community.CharterView]:
    """Every version of the charter, oldest first (the last is in force)."""
    return actor.call(community.show_community, community_id).charter_history


@router.post(
    "/{community_id}/invitations", status_code=201, responses=errors(400, 401, 403, 404, 409, 422)
)
def invite(
    community_id: RecordId, body: InvitationCreate, actor: ActorDep
) -> community.InvitationView:
    """Invite a careloop user with community roles (facilitators and community admins)."""
    return actor.call(community.invite, community_id, email=body.email, roles=body.roles)


@router.post(
    "/{community_id}/invitations/{invitation_id}",
    responses=errors(400, 401, 403, 404, 409, 422),
)
def answer(
    community_id: RecordId, invitation_id: RecordId, body: InvitationAnswer, actor: ActorDep
) -> community.InvitationView:
    """Accept (join) or decline one's invitation."""
    return actor.call(
        community.answer_invitation, invitation_id, accept=body.accept, community_id=community_id
    )


@router.post("/{community_id}/roles", responses=errors(400, 401, 403, 404, 409, 422))
def roles(community_id: RecordId, body: RolesChange, actor: ActorDep) -> community.MemberView:
    """Set a member's community roles (facilitators and community admins)."""
    return actor.call(
        community.set_member_roles,
        community_id,
        email=body.email,
        roles=body.roles,
        is_admin=body.is_admin,
    )


@router.delete(
    "/{community_id}/membership", status_code=204, responses=errors(401, 403, 404, 409, 422)
)
def leave(community_id: RecordId, actor: ActorDep) -> None:
    """Leave the community."""
    actor.call(community.leave, community_id)


# ---------------------------------------------------------------- proposals and votes


@router.get("/{community_id}/proposals", responses=errors(401, 403, 404, 422))
def proposals(
    community_id: RecordId,
    actor: ActorDep,
    status: Annotated[Literal["open", "passed", "rejected", "withdrawn"] | None, Query()] = None,
) -> list[community.ProposalView]:
    """Proposals with their votes and outcomes."""
    return actor.call(community.list_proposals, community_id, status=status)


@router.post(
    "/{community_id}/proposals", status_code=201, responses=errors(400, 401, 403, 404, 409, 422)
)
def propose(
    community_id: RecordId, body: ProposalCreate, actor: ActorDep
) -> community.ProposalView:
    """Open a proposal the charter's rule will decide."""
    return actor.call(
        community.propose,
        community_id,
        kind=body.kind,
        title=body.title,
        body=body.body,
        payload=body.payload(),
    )


@router.get("/{community_id}/proposals/{proposal_id}", responses=errors(401, 403, 404, 422))
def proposal(
    community_id: RecordId, proposal_id: RecordId, actor: ActorDep
) -> community.ProposalView:
    """One proposal with its votes (patients' and carers' grouped) and outcome."""
    return actor.call(community.show_proposal, proposal_id, community_id=community_id)


@router.post(
    "/{community_id}/proposals/{proposal_id}/votes",
    responses=errors(400, 401, 403, 404, 409, 422),
)
def cast(
    community_id: RecordId, proposal_id: RecordId, body: VoteCast, actor: ActorDep
) -> community.ProposalView:
    """Vote yes, no or abstain (or change one's vote) while the proposal is open."""
    return actor.call(
        community.vote,
        proposal_id,
        choice=body.choice,
        comment=body.comment,
        on_behalf_of=body.on_behalf_of,
        community_id=community_id,
    )


@router.post(
    "/{community_id}/proposals/{proposal_id}/close",
    responses=errors(400, 401, 403, 404, 409, 422),
)
def close(
    community_id: RecordId, proposal_id: RecordId, body: Closing, actor: ActorDep
) -> community.ProposalView:
    """Close it: the charter's rule decides; the outcome is applied and logged."""
    return actor.call(community.close, proposal_id, reason=body.reason, community_id=community_id)


# ---------------------------------------------------------------- priorities, decisions, NASSS


@router.get("/{community_id}/priorities", responses=errors(401, 403, 404, 422))
def priorities(community_id: RecordId, actor: ActorDep) -> list[community.PriorityView]:
    """Priorities ranked by votes."""
    return actor.call(community.list_priorities, community_id)


@router.post(
    "/{community_id}/priorities", status_code=201, responses=errors(400, 401, 403, 404, 409, 422)
)
def add_priority(
    community_id: RecordId, body: PriorityCreate, actor: ActorDep
) -> community.PriorityView:
    """Propose a problem or idea for members to rank."""
    return actor.call(
        community.add_priority,
        community_id,
        kind=body.kind,
        title=body.title,
        description=body.description,
    )


@router.get("/{community_id}/decisions", responses=errors(401, 403, 404, 422))
def decisions(
    community_id: RecordId,
    actor: ActorDep,
    search: Annotated[str | None, Query(max_length=300)] = None,
) -> list[community.DecisionView]:
    """The decision and reflection log; ``search`` keeps entries with every word."""
    return actor.call(community.decisions, community_id, search=search)


@router.post(
    "/{community_id}/decisions", status_code=201, responses=errors(400, 401, 403, 404, 422)
)
def decide(community_id: RecordId, body: DecisionCreate, actor: ActorDep) -> community.DecisionView:
    """Log a decision, or what did not work and why."""
    return actor.call(
        community.record_decision,
        community_id,
        title=body.title,
        kind=body.kind,
        decision=body.decision,
        did_not_work=body.did_not_work,
        why=body.why,
        links=community.Links(tuple(body.cycles), tuple(body.knowledge), tuple(body.measures)),
    )


@router.post("/{community_id}/nasss", status_code=201, responses=errors(400, 401, 403, 404, 422))
def nasss(community_id: RecordId, body: NassBody, actor: ActorDep) -> community.NassView:
    """Record the caller's NASSS ratings (seven domains) of a change."""
    return actor.call(
        community.record_nasss,
        community_id,
        subject=body.subject,
        ratings={d: (r[0], r[1]) for d, r in body.ratings.items()},
    )


@router.get("/{community_id}/engagement", responses=errors(401, 403, 404, 422))
def engagement(community_id: RecordId, actor: ActorDep) -> community.Engagement:
    """Who contributed what, the totals and the share of patients and carers (members)."""
    return actor.call(community.engagement, community_id)


# ---------------------------------------------------------------- cycles


@router.get("/{community_id}/cycles", responses=errors(401, 403, 404, 422))
def cycles(community_id: RecordId, actor: ActorDep) -> list[community.CycleView]:
    """The community's learning cycles."""
    return actor.call(community.list_cycles, community_id=community_id)


@router.post("/{community_id}/cycles", status_code=201, responses=errors(400, 401, 403, 404, 422))
def add_cycle(
    community_id: RecordId, body: CycleBody, actor: ActorDep, settings: SettingsDep
) -> community.CycleView:
    """Record a learning cycle (members)."""
    return actor.call(
        community.add_cycle, community_id, body.data(), known_measures=_known(settings)
    )


@router.get("/{community_id}/cycles/{cycle_id}", responses=errors(401, 403, 404, 422))
def cycle(community_id: RecordId, cycle_id: RecordId, actor: ActorDep) -> community.CycleView:
    """One cycle: aim, Plan, Do, the chart phases of its measures, Act."""
    return actor.call(community.show_cycle, cycle_id, community_id=community_id)


class CycleStudyOut(BaseModel):
    """A cycle's Study, as `careloop cycle show ID --format json` gives it."""

    cycle_id: int
    study: dict[str, Any] | None = Field(
        description="Per measure: the chart with its new phase at the change, the effect "
        "(odds ratio, 95% CI), signal and balancing flag; the progress score with its reasons."
    )
    study_unavailable: str | None = Field(
        None, description="Why there is no Study yet (no change date, no measure results)."
    )


@router.get("/{community_id}/cycles/{cycle_id}/study", responses=errors(401, 403, 404, 422))
def cycle_study(
    community_id: RecordId,
    cycle_id: RecordId,
    request: Request,
    actor: ActorDep,
    settings: SettingsDep,
) -> CycleStudyOut:
    """The cycle's Study, computed from the latest stored measure results (members)."""
    view = actor.call(community.show_cycle, cycle_id, community_id=community_id)
    study, unavailable = community.study_of(
        view, request.app.state.warehouse, measures_dir=settings.measures_dir
    )
    return CycleStudyOut(
        cycle_id=view.id,
        study=study.to_dict() if study is not None else None,
        study_unavailable=unavailable,
    )


@router.get("/{community_id}/cycles/{cycle_id}/findings", responses=errors(401, 403, 404, 422))
def findings(
    community_id: RecordId, cycle_id: RecordId, actor: ActorDep
) -> list[community.FindingsView]:
    """The cycle's qualitative findings as its Study shows them: themes, kappa per code."""
    return actor.call(community.list_findings, cycle_id, community_id=community_id)


@router.patch("/{community_id}/cycles/{cycle_id}", responses=errors(400, 401, 403, 404, 422))
def change_cycle(
    community_id: RecordId,
    cycle_id: RecordId,
    body: CycleChanges,
    actor: ActorDep,
    settings: SettingsDep,
) -> community.CycleView:
    """Change some fields of a cycle (members); the whole cycle is checked again."""
    return actor.call(
        community.update_cycle,
        cycle_id,
        body.changes(),
        known_measures=_known(settings),
        community_id=community_id,
    )


@router.post("/{community_id}/cycles/{cycle_id}/act", responses=errors(400, 401, 403, 404, 422))
def act(
    community_id: RecordId, cycle_id: RecordId, body: ActBody, actor: ActorDep
) -> community.CycleView:
    """Record Act: adopt, adapt or abandon, and why."""
    return actor.call(
        community.record_act,
        cycle_id,
        decision=body.decision,
        rationale=body.rationale,
        community_id=community_id,
    )
