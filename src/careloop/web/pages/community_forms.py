"""Running a learning cycle from the pages: recording a cycle's Act, a new cycle with its
Plan and Do, a problem or idea to prioritise, and a decision or reflection for the log.

Each form is an ordinary POST carrying the session's CSRF token (checked with the
session by :func:`careloop.web.security.authenticate`). The :mod:`careloop.community`
service checks membership, validates and audits, as it does for the API and the CLI;
a refusal comes back on the same page with its reasons beside the fields and what was
typed kept, nothing recorded, and success redirects (303) to the page that shows
what was recorded. As on every community page, an outsider gets "not found".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from careloop import community
from careloop.community import CycleInput, CycleMeasureInput
from careloop.community.cycle_input import CYCLE_KINDS, MEASURE_ROLES
from careloop.core.errors import CareloopError, ErrorDetail, ValidationFailed
from careloop.core.settings import Settings
from careloop.web.openapi import RecordId
from careloop.web.pages.community import (
    base_context,
    community_detail,
    cycle_response,
    decisions_response,
    priorities_response,
)
from careloop.web.pages.community_assessment import PostedForm
from careloop.web.pages.rendering import form_state, render
from careloop.web.security import Caller, CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)


@router.post("/communities/{community_id}/cycles/{cycle_id}/act")
def act_submit(
    request: Request,
    community_id: RecordId,
    cycle_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    """Record the cycle's Act: adopt, adapt or abandon the change, and why."""
    try:
        community.record_act(
            registry,
            caller.principal,
            cycle_id,
            decision=form.get("decision", ""),
            rationale=form.get("rationale", ""),
            community_id=community_id,
        )
    except CareloopError as exc:
        # A non-member gets "not found" from the page itself (the service audited the
        # refusal); a member sees what to fix beside the fields, nothing recorded.
        return cycle_response(
            request,
            caller,
            registry,
            community_id,
            cycle_id,
            settings=settings,
            entered=form,
            error=exc,
        )
    return RedirectResponse(
        f"/communities/{community_id}/cycles/{cycle_id}?recorded=1#act", status_code=303
    )


# ---------------------------------------------------------------- a new cycle


def _measure_choices(detail: community.CommunityDetail, settings: Settings) -> list[str]:
    """The measures a cycle may watch: the community's family first, then the catalogue."""
    return list(dict.fromkeys([*detail.community.measures, *_known(settings)]))


def _known(settings: Settings) -> list[str]:
    return community.measure_ids(settings.measures_dir)


def _new_cycle_page(
    request: Request,
    caller: Caller,
    registry: Any,
    community_id: int,
    *,
    settings: Settings,
    entered: Mapping[str, str] | None = None,
    error: CareloopError | None = None,
) -> HTMLResponse:
    detail = community_detail(registry, caller, community_id)
    state = form_state(request, entered, error)
    choices = _measure_choices(detail, settings)
    state["problems"] = _cycle_problems_by_field(state["entered"], error, choices)
    return render(
        request,
        "community_cycle_new.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "cycles": community.list_cycles(registry, caller.principal, community_id=community_id),
            "kinds": CYCLE_KINDS,
            "roles": MEASURE_ROLES,
            "family": list(detail.community.measures),
            "others": [m for m in choices if m not in detail.community.measures],
            **state,
        },
        error.http_status if error else 200,
    )


def _cycle_problems_by_field(
    entered: Mapping[str, str], error: CareloopError | None, choices: list[str]
) -> dict[str, str]:
    """Each refused field's message, by the form's field: a measure's problem beside its
    row (``measures[1]`` is the second measure given a role), a site's beside its list."""
    if error is None:
        return {}
    given = _measure_inputs(entered)
    out: dict[str, str] = {}
    for d in error.details:
        where = d.location
        found = re.fullmatch(r"measures\[(\d+)\](\.role)?", where)
        if found and int(found.group(1)) < len(given):
            measure_id = given[int(found.group(1))].measure_id
            where = f"role_{measure_id}" if measure_id in choices else "measures"
            message = d.message if where != "measures" else f"{measure_id}: {d.message}"
        else:
            where = re.sub(r"\[\d+\]$", "", where)
            message = d.message
        out[where] = f"{out[where]} {message}" if where in out else message
    return out


def _measure_inputs(form: Mapping[str, str]) -> list[CycleMeasureInput]:
    """The measures given a role (``role_<measure id>``), in the order posted."""
    return [
        CycleMeasureInput(key.removeprefix("role_"), value)
        for key, value in form.items()
        if key.startswith("role_") and value
    ]


def _date(form: Mapping[str, str], key: str, problems: list[ErrorDetail]) -> date | None:
    text = form.get(key, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(ErrorDetail(key, "A date as year-month-day, such as 2026-03-01.", text))
        return None


def _sites(form: Mapping[str, str], prefix: str) -> tuple[str, ...]:
    return tuple(k.removeprefix(prefix) for k in form if k.startswith(prefix))


def _cycle_input(form: Mapping[str, str]) -> CycleInput:
    """The posted form as a cycle; a date that is not one, or no measure, is refused here
    (the service checks everything else, and audits)."""
    problems: list[ErrorDetail] = []
    plan_when = _date(form, "plan_when", problems)
    do_start = _date(form, "do_start", problems)
    do_end = _date(form, "do_end", problems)
    measures = _measure_inputs(form)
    if not measures:
        problems.append(
            ErrorDetail(
                "measures", "Choose at least one measure and its role: the Study charts it."
            )
        )
    parent = form.get("parent_id", "").strip()
    if parent and not parent.isdigit():
        problems.append(ErrorDetail("parent_id", "Choose a cycle of this community.", parent))
    if problems:
        raise ValidationFailed("The cycle is not valid; nothing was recorded.", problems)
    return CycleInput(
        title=form.get("title", "").strip(),
        kind=form.get("kind", ""),
        aim=form.get("aim", ""),
        predictions=form.get("predictions", ""),
        questions=form.get("questions", ""),
        parent_id=int(parent) if parent else None,
        knowledge_ref=form.get("knowledge_ref", "").strip() or None,
        plan_who=form.get("plan_who", ""),
        plan_where=form.get("plan_where", ""),
        plan_when=plan_when,
        plan_sites=_sites(form, "plan_site_"),
        do_start=do_start,
        do_end=do_end,
        do_sites=_sites(form, "do_site_"),
        do_what=form.get("do_what", ""),
        purpose=form.get("purpose", "qi"),
        determination_kind=form.get("determination_kind", "").strip() or None,
        determination_ref=form.get("determination_ref", "").strip() or None,
        measures=tuple(measures),
    )


@router.get("/communities/{community_id}/cycles/new", response_class=HTMLResponse)
def new_cycle_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    return _new_cycle_page(request, caller, registry, community_id, settings=settings)


@router.post("/communities/{community_id}/cycles")
def new_cycle_submit(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    """Record a new cycle: its aim, Plan, Do, measures and determination."""
    try:
        added = community.add_cycle(
            registry,
            caller.principal,
            community_id,
            _cycle_input(form),
            known_measures=_known(settings),
        )
    except CareloopError as exc:
        # An outsider gets "not found" from the page itself (the service audited the
        # refusal of a valid cycle); a member sees what to fix beside the fields.
        return _new_cycle_page(
            request, caller, registry, community_id, settings=settings, entered=form, error=exc
        )
    return RedirectResponse(
        f"/communities/{community_id}/cycles/{added.id}?added=1", status_code=303
    )


# ---------------------------------------------------------------- priorities


@router.post("/communities/{community_id}/priorities")
def priority_submit(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    """Propose a problem or an idea; it opens a priority vote members rank it by."""
    try:
        community.add_priority(
            registry,
            caller.principal,
            community_id,
            kind=form.get("kind", ""),
            title=form.get("title", ""),
            description=form.get("description", ""),
        )
    except CareloopError as exc:
        return priorities_response(
            request, caller, registry, community_id, settings=settings, entered=form, error=exc
        )
    return RedirectResponse(f"/communities/{community_id}/priorities?recorded=1", status_code=303)


# ---------------------------------------------------------------- the decision log


@router.post("/communities/{community_id}/decisions")
def decision_submit(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    """Log a decision, or a reflection: what did not work and why."""
    cycle = form.get("cycle", "").strip()
    try:
        community.record_decision(
            registry,
            caller.principal,
            community_id,
            title=form.get("title", ""),
            kind=form.get("kind", ""),
            decision=form.get("decision", ""),
            did_not_work=form.get("did_not_work", ""),
            why=form.get("why", ""),
            # Not a number: passed on as 0, which the service refuses as no cycle of its own.
            links=community.Links(cycles=(int(cycle) if cycle.isdigit() else 0,) if cycle else ()),
        )
    except CareloopError as exc:
        return decisions_response(
            request, caller, registry, community_id, settings=settings, entered=form, error=exc
        )
    return RedirectResponse(f"/communities/{community_id}/decisions?recorded=1", status_code=303)
