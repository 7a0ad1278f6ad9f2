"""Learning communities as pages: my communities, a community, proposals and voting,
priorities, the decision log, cycles with Plan, Do, Study and Act.

Every route calls a :mod:`careloop.community` service, which checks membership of
the community on the server and audits the access (refusals too). A page never
tells someone outside a community that it exists: the service's refusal becomes
"not found" here (it is audited as a refusal there). Votes are posted by an
ordinary form carrying the session's CSRF token, as the other forms do.

A cycle's Study is computed from the latest stored measure results
(:func:`careloop.community.study_of`, as ``careloop cycle show`` does) and each
measure's SPC chart is drawn on the server as SVG (:func:`careloop.charts.spc.svg`,
as the impact report does): no script, so it reads on a phone and under the
strict CSP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from careloop import charts, community
from careloop.core.errors import (
    CareloopError,
    ConfigurationError,
    InputError,
    NotFound,
    PermissionDenied,
)
from careloop.core.settings import Settings
from careloop.measures.catalog import load_catalog
from careloop.web.openapi import RecordId
from careloop.web.pages.community_words import (
    COM_B_NAMES,
    FUNCTION_NAMES,
    POLICY_NAMES,
    STAGE_NAMES,
)
from careloop.web.pages.rendering import form_state, page_context, render
from careloop.web.security import Caller, CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)

T = TypeVar("T")

ROLE_NAMES = {
    "clinician": "clinician",
    "patient": "patient partner",
    "carer": "carer",
    "researcher": "researcher",
    "analyst": "data analyst",
    "manager": "manager",
    "policy_maker": "policy maker",
    "facilitator": "facilitator",
    "embedded_researcher": "embedded researcher",
}
KIND_NAMES = {
    "charter_change": "Change to the charter",
    "priority": "Priority",
    "knowledge_approval": "Approve decision support",
    "knowledge_spread": "Spread decision support",
    "process": "process change",
    "change_package": "change package",
    "policy": "policy",
    "training": "training",
    "knowledge_deployment": "decision support deployment",
}
STATUS_NAMES = {
    "open": "open for votes",
    "passed": "passed",
    "rejected": "did not pass",
    "withdrawn": "withdrawn",
}
ACT_NAMES = {"adopt": "Adopt", "adapt": "Adapt", "abandon": "Abandon"}


def members_only(call: Callable[[], T], what: str) -> T:
    """The service's result; a refusal reads as "not found" (it was audited as a refusal),
    worded as for something that does not exist, so a page never tells an outsider which
    communities, proposals or cycles there are."""
    try:
        return call()
    except (PermissionDenied, NotFound) as exc:
        raise NotFound(
            f"There is no {what} here that you can see. Learning communities are open to "
            "their members only: ask one of its facilitators for an invitation."
        ) from exc


def rule_words(charter: community.CharterView | dict[str, Any]) -> str:
    """The charter's decision rule as a sentence a member reads."""
    c = charter if isinstance(charter, dict) else charter.__dict__
    quorum = f"{round(float(c.get('quorum', 0.5)) * 100):g}%"
    rule = c.get("decision_rule") or c.get("rule")
    if rule == "consensus":
        text = f"Consensus: nobody votes no, and at least {quorum} of members take part."
    elif rule == "named_approvers":
        text = "Named approvers: every named approver must vote yes."
    else:
        text = f"Majority: more yes than no votes, with at least {quorum} of members voting."
    if c.get("requires_patient_reviewer"):
        text += " Nothing passes unless a patient or carer member votes yes."
    return text


def roles_words(roles: list[str]) -> str:
    return ", ".join(ROLE_NAMES.get(r, r) for r in roles)


def _person_words(detail: community.CommunityDetail | None) -> Callable[[str | None], str]:
    """Who did something, by the name members know them by, never an account identifier."""
    names = {m.email: m.display_name or m.email for m in detail.members} if detail else {}

    def person(who: str | None) -> str:
        if not who:
            return "—"
        if who in names:
            return names[who]
        # Recorded by an administrator at the command line ("cli:<operator>").
        return "an administrator" if who.startswith("cli:") else who

    return person


def measure_titles(settings: Settings) -> dict[str, str]:
    """Each known measure's title, so pages name a measure in words rather than by its id."""
    try:
        return {m.id: m.title for m in load_catalog(measures_dir=settings.measures_dir).measures}
    except (InputError, ConfigurationError):
        return {}


def _in_words(text: str, titles: dict[str, str]) -> str:
    """``text`` with every measure id replaced by the measure's title in quotes."""
    for measure_id in sorted(titles, key=len, reverse=True):
        text = re.sub(
            rf"(?<![\w-]){re.escape(measure_id)}(?![\w-])", f"“{titles[measure_id]}”", text
        )
    return text


def base_context(
    caller: Caller,
    detail: community.CommunityDetail | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    titles = measure_titles(settings) if settings is not None else {}
    me = (
        next((m for m in detail.members if m.email == caller.principal.email), None)
        if detail
        else None
    )
    return {
        **page_context(caller),
        "member": me is not None,
        # A patient or carer member reads the pages without technical identifiers.
        "plain": me is not None and bool({"patient", "carer"} & set(me.roles)),
        # Measure pages are for staff (as the main navigation shows them).
        "sees_measures": bool(set(caller.principal.roles) - {"patient", "carer"}),
        "person": _person_words(detail),
        "measure_title": lambda measure_id: titles.get(measure_id, measure_id),
        "in_words": lambda text: _in_words(text, titles),
        "fmt_month": fmt_month,
        "fmt_date": fmt_date,
        "role_names": ROLE_NAMES,
        "kind_names": KIND_NAMES,
        "status_names": STATUS_NAMES,
        "act_names": ACT_NAMES,
        "roles_words": roles_words,
        "rule_words": rule_words,
    }


def community_detail(registry: Any, caller: Caller, community_id: int) -> community.CommunityDetail:
    return members_only(
        lambda: community.show_community(registry, caller.principal, community_id),
        "learning community",
    )


# ---------------------------------------------------------------- the Study


def _chart_svg(measure: Any, title: str) -> Markup | None:
    if measure.chart is None:
        return None
    chart = replace(measure.chart, title=f"{title} ({measure.measure.role} measure)")
    text = charts.spc.svg(chart, annotations=[measure.annotation])
    # vl-convert's SVG: numbers, fixed labels and the escaped measure and cycle titles.
    return Markup(text)  # noqa: S704


def _measure_row(m: Any, titles: dict[str, str]) -> dict[str, Any]:
    """What the cycle page shows of one measure's Study."""
    centres: list[float | None] = []
    if m.chart is not None:
        pts = m.chart.points
        # The centre line of the phase before the change and of the new phase at it.
        parts = list(dict.fromkeys(pts["part"]))
        for part in (parts[-2] if len(parts) > 1 else None, parts[-1]):
            rows = pts[pts["part"] == part]
            centres.append(None if part is None or rows.empty else float(rows["cl"].iloc[-1]))
    else:
        centres = [None, None]
    effect = m.effect
    return {
        "id": m.measure.measure_id,
        "title": titles.get(m.measure.measure_id, m.measure.measure_id),
        "role": m.measure.role,
        "improvement": m.measure.improvement,
        "svg": _chart_svg(m, titles.get(m.measure.measure_id, m.measure.measure_id)),
        "phase_starts": m.annotation.x.date().isoformat(),
        "before": centres[0],
        "after": centres[1],
        "baseline_points": m.baseline_points,
        "after_points": m.after_points,
        "effect": None
        if effect is None
        else {"estimate": effect.estimate, "low": effect.ci_low, "high": effect.ci_high},
        "signal": m.signal,
        "moved": m.moved,
        "flagged": m.flagged,
        "sustained": m.sustained,
        "special": list(m.special_cause_months),
        "notes": list(m.notes),
    }


# ---------------------------------------------------------------- pages


@router.get("/communities", response_class=HTMLResponse)
def my_communities(request: Request, caller: CallerDep, registry: RegistryDep) -> Response:
    found = community.list_communities(registry, caller.principal)
    invitations = community.my_invitations(registry, caller.principal)
    return render(
        request,
        "communities.html",
        {**base_context(caller), "communities": found, "invitations": invitations},
    )


@router.get("/communities/{community_id}", response_class=HTMLResponse)
def community_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    detail = community_detail(registry, caller, community_id)
    lived = [m for m in detail.members if {"patient", "carer"} & set(m.roles)]
    return render(
        request,
        "community.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "lived": lived,
        },
    )


@router.get("/communities/{community_id}/proposals", response_class=HTMLResponse)
def proposals_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    detail = community_detail(registry, caller, community_id)
    found = community.list_proposals(registry, caller.principal, community_id)
    found.sort(key=lambda p: (p.status != "open", -p.id))
    return render(
        request,
        "community_proposals.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "proposals": found,
        },
    )


def _proposal_page(
    request: Request,
    caller: Caller,
    registry: Any,
    community_id: int,
    proposal_id: int,
    *,
    settings: Settings,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    detail = community_detail(registry, caller, community_id)
    proposal = members_only(
        lambda: community.show_proposal(
            registry, caller.principal, proposal_id, community_id=community_id
        ),
        "proposal",
    )
    mine = next((v for v in proposal.votes if v.email == caller.principal.email), None)
    return render(
        request,
        "community_proposal.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "p": proposal,
            "mine": mine,
            # The rule that decides it is the charter in force when it was opened.
            "charter": next(
                (v for v in detail.charter_history if v.number == proposal.charter_number),
                detail.charter,
            ),
            "member": any(m.email == caller.principal.email for m in detail.members),
            "lived_votes": [v for v in proposal.votes if v.group == "patients_and_carers"],
            "other_votes": [v for v in proposal.votes if v.group != "patients_and_carers"],
            "error": error,
        },
        status,
    )


@router.get("/communities/{community_id}/proposals/{proposal_id}", response_class=HTMLResponse)
def proposal_page(
    request: Request,
    community_id: RecordId,
    proposal_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    return _proposal_page(request, caller, registry, community_id, proposal_id, settings=settings)


@router.post("/communities/{community_id}/proposals/{proposal_id}/vote")
def vote_submit(
    request: Request,
    community_id: RecordId,
    proposal_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    choice: Annotated[str, Form(max_length=20)],
    comment: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    # The CSRF token was checked with the session (careloop.web.security.authenticate).
    try:
        community.vote(
            registry,
            caller.principal,
            proposal_id,
            choice=choice,
            comment=comment,
            community_id=community_id,
        )
    except CareloopError as exc:
        # A non-member gets "not found" from the page itself (the service audited the
        # refusal); a member whose vote the charter refuses sees why, nothing recorded.
        return _proposal_page(
            request,
            caller,
            registry,
            community_id,
            proposal_id,
            settings=settings,
            error=f"Your vote was not recorded: {exc.message}",
            status=exc.http_status,
        )
    return RedirectResponse(
        f"/communities/{community_id}/proposals/{proposal_id}?voted=1", status_code=303
    )


def priorities_response(
    request: Request,
    caller: Caller,
    registry: Any,
    community_id: int,
    *,
    settings: Settings,
    entered: Mapping[str, str] | None = None,
    error: CareloopError | None = None,
) -> HTMLResponse:
    """The priorities page, with the form to propose a problem or idea."""
    detail = community_detail(registry, caller, community_id)
    ranked = community.list_priorities(registry, caller.principal, community_id)
    return render(
        request,
        "community_priorities.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "priorities": ranked,
            **form_state(request, entered, error),
        },
        error.http_status if error else 200,
    )


@router.get("/communities/{community_id}/priorities", response_class=HTMLResponse)
def priorities_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    return priorities_response(request, caller, registry, community_id, settings=settings)


@router.get("/communities/{community_id}/decisions", response_class=HTMLResponse)
def decisions_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    search: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    return decisions_response(
        request, caller, registry, community_id, settings=settings, search=search
    )


def decisions_response(
    request: Request,
    caller: Caller,
    registry: Any,
    community_id: int,
    *,
    settings: Settings,
    search: str = "",
    entered: Mapping[str, str] | None = None,
    error: CareloopError | None = None,
) -> HTMLResponse:
    """The decision log, with the form to add a decision or a reflection."""
    detail = community_detail(registry, caller, community_id)
    found = community.decisions(
        registry, caller.principal, community_id, search=search.strip() or None
    )
    return render(
        request,
        "community_decisions.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "entries": list(reversed(found)),
            "cycle_titles": {
                cy.id: cy.title
                for cy in community.list_cycles(
                    registry, caller.principal, community_id=community_id
                )
            },
            "search": search.strip(),
            **form_state(request, entered, error),
        },
        error.http_status if error else 200,
    )


@router.get("/communities/{community_id}/cycles", response_class=HTMLResponse)
def cycles_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    detail = community_detail(registry, caller, community_id)
    found = community.list_cycles(registry, caller.principal, community_id=community_id)
    return render(
        request,
        "community_cycles.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "cycles": found,
            "cycle_titles": {cy.id: cy.title for cy in found},
        },
    )


@router.get("/communities/{community_id}/cycles/{cycle_id}", response_class=HTMLResponse)
def cycle_page(
    request: Request,
    community_id: RecordId,
    cycle_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    return cycle_response(request, caller, registry, community_id, cycle_id, settings=settings)


def cycle_response(
    request: Request,
    caller: Caller,
    registry: Any,
    community_id: int,
    cycle_id: int,
    *,
    settings: Settings,
    entered: Mapping[str, str] | None = None,
    error: CareloopError | None = None,
) -> HTMLResponse:
    """A cycle's page: Plan, Do, the Study worked out now, Act (or the form to record it)."""
    detail = community_detail(registry, caller, community_id)
    view = members_only(
        lambda: community.show_cycle(
            registry, caller.principal, cycle_id, community_id=community_id
        ),
        "learning cycle",
    )
    study, unavailable = community.study_of(
        view, request.app.state.warehouse, measures_dir=settings.measures_dir
    )
    titles = measure_titles(settings)
    measures = [_measure_row(m, titles) for m in study.measures] if study else []
    log = community.decisions(registry, caller.principal, community_id, cycle_id=cycle_id)
    others = community.list_cycles(registry, caller.principal, community_id=community_id)
    findings = community.list_findings(
        registry, caller.principal, cycle_id, community_id=community_id
    )
    toolkit = community.list_toolkit(registry, caller.principal, community_id)
    design = community.cycle_design(registry, caller.principal, cycle_id, community_id=community_id)
    return render(
        request,
        "community_cycle.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "cy": view,
            "study": study,
            "unavailable": unavailable,
            "measures": measures,
            "log": log,
            "cycle_titles": {other.id: other.title for other in others},
            "findings": findings,
            "tools": [t for t in toolkit if cycle_id in t.used_by],
            "design": design,
            "com_b_names": COM_B_NAMES,
            "function_names": FUNCTION_NAMES,
            "policy_names": POLICY_NAMES,
            "stage_names": STAGE_NAMES,
            "fmt_or": _fmt_or,
            "effect_words": _effect_words,
            **form_state(request, entered, error),
        },
        error.http_status if error else 200,
    )


def fmt_date(value: date | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value.day} {value.strftime('%b %Y')}"


def _fmt_or(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.2f}"


def fmt_month(value: date | str) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return value.strftime("%b %Y")


def _effect_words(row: dict[str, Any]) -> str:
    """A measure's effect (odds ratio and 95% CI) as a sentence a patient partner reads."""
    e = row["effect"]
    estimate, low, high = e["estimate"], e["low"], e["high"]
    trend = "more common" if estimate > 1 else "less common" if estimate < 1 else "no more common"
    text = (
        f"After the change, “{row['title']}” became {trend} than the trend before it "
        f"predicted: the odds were {estimate:.2f} times as high. We can be 95% sure the "
        f"true figure lies between {low:.2f} and {high:.2f} times"
    )
    if low > 1 or high < 1:
        return text + ", so the shift is unlikely to be chance alone."
    return text + ", a range that includes no change at all."
