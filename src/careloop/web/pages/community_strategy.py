"""A learning community's aims and driver diagrams, its toolkit and who contributes, as pages.

Each route calls :mod:`careloop.community` services, which check membership
on the server and audit the read (refusals too); as on the other community
pages (:mod:`careloop.web.pages.community`), a refusal reads as "not found",
so an outsider learns nothing of a community. A member rates a toolkit item
by an ordinary form carrying the session's CSRF token; a rating the service
refuses comes back on the page with the reason, nothing recorded.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt
from markupsafe import Markup

from careloop import community
from careloop.core.errors import CareloopError, ConfigurationError, InputError
from careloop.core.settings import Settings
from careloop.web.openapi import RecordId
from careloop.web.pages.community import base_context, community_detail
from careloop.web.pages.community_words import (
    CONTRIBUTION_NAMES,
    MEASURE_ROLE_NAMES,
    STAGE_NAMES,
)
from careloop.web.pages.rendering import render
from careloop.web.security import Caller, CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)

# The toolkit's items are Markdown written by members: raw HTML is shown as text, never run.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def _improvements(settings: Settings) -> dict[str, str]:
    try:
        return community.measure_improvements(settings.measures_dir)
    except (InputError, ConfigurationError):
        return {}


def _number(value: float) -> str:
    return f"{value:g}"


@router.get("/communities/{community_id}/strategy", response_class=HTMLResponse)
def strategy_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    """The community's aims: what, how much, by when; each with its driver diagram and
    its family of measures (outcome, process, balancing) with baseline and target."""
    detail = community_detail(registry, caller, community_id)
    aims = community.list_aims(
        registry, caller.principal, community_id, improvements=_improvements(settings)
    )
    titles: dict[int, str] = {}
    if any(aim.cycles for aim in aims):
        found = community.list_cycles(registry, caller.principal, community_id=community_id)
        titles = {cy.id: cy.title for cy in found}
    return render(
        request,
        "community_strategy.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "aims": aims,
            "cycle_titles": titles,
            "role_order": list(MEASURE_ROLE_NAMES),
            "measure_role_names": MEASURE_ROLE_NAMES,
            "number": _number,
        },
    )


# ---------------------------------------------------------------- the toolkit


def _toolkit_page(
    request: Request,
    caller: Caller,
    registry: Any,
    community_id: int,
    *,
    settings: Settings,
    stage: str | None,
    error: tuple[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    detail = community_detail(registry, caller, community_id)
    shown_stage = stage if stage in STAGE_NAMES else None
    tools = community.list_toolkit(registry, caller.principal, community_id, stage=shown_stage)
    titles: dict[int, str] = {}
    if any(t.used_by for t in tools):
        found = community.list_cycles(registry, caller.principal, community_id=community_id)
        titles = {cy.id: cy.title for cy in found}
    return render(
        request,
        "community_toolkit.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "tools": tools,
            "stage": shown_stage,
            "unknown_stage": stage if stage and shown_stage is None else None,
            "stage_names": STAGE_NAMES,
            "cycle_titles": titles,
            # Members' own Markdown with raw HTML escaped by the renderer (html=False).
            "body_html": lambda text: Markup(_MARKDOWN.render(text)),  # noqa: S704
            "error": error,
            "rated": request.query_params.get("rated"),
        },
        status,
    )


@router.get("/communities/{community_id}/toolkit", response_class=HTMLResponse)
def toolkit_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    stage: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The toolkit, optionally the items for one stage, with ratings and the cycles that
    used each; a member rates an item from here."""
    return _toolkit_page(
        request, caller, registry, community_id, settings=settings, stage=stage or None
    )


@router.post("/communities/{community_id}/toolkit/{key}/rating")
def rate_submit(
    request: Request,
    community_id: RecordId,
    key: str,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    stars: Annotated[str, Form(max_length=10)] = "",
    comment: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    # The CSRF token was checked with the session (careloop.web.security.authenticate).
    try:
        # Anything that is not a whole number reaches the service as 0 so that it
        # refuses (and audits) the rating with its own message.
        value = int(stars) if stars.strip().isdigit() else 0
        community.rate_tool(
            registry, caller.principal, community_id, key, stars=value, comment=comment
        )
    except CareloopError as exc:
        # A non-member gets "not found" from the page itself (the service audited the
        # refusal); a member whose rating is refused sees why, nothing recorded.
        return _toolkit_page(
            request,
            caller,
            registry,
            community_id,
            settings=settings,
            stage=None,
            error=(key, f"Your rating was not recorded: {exc.message}"),
            status=exc.http_status,
        )
    return RedirectResponse(
        f"/communities/{community_id}/toolkit?rated={key}#tool-{key}", status_code=303
    )


# ---------------------------------------------------------------- engagement


@router.get("/communities/{community_id}/engagement", response_class=HTMLResponse)
def engagement_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    """Each member's contributions by display name, the totals, and the share that
    patients and carers made."""
    detail = community_detail(registry, caller, community_id)
    figures = community.engagement(registry, caller.principal, community_id)
    return render(
        request,
        "community_engagement.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "e": figures,
            "contributions": CONTRIBUTION_NAMES,
        },
    )
