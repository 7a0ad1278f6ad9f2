"""Rendering a page: one template response, and the context every page needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from careloop.core.errors import CareloopError
from careloop.web.languages import language_context
from careloop.web.security import Caller


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """The template ``name`` rendered with ``context`` as an HTML response."""
    full = {**language_context(request, context.get("principal")), **context}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, full, status_code=status
    )
    return response


def page_context(caller: Caller) -> dict[str, Any]:
    """What every signed-in page's layout needs: who is signed in and the form token."""
    return {
        "principal": caller.principal,
        "csrf_token": caller.session.csrf_token if caller.session else "",
    }


def form_state(
    request: Request,
    entered: Mapping[str, str] | None = None,
    error: CareloopError | None = None,
) -> dict[str, Any]:
    """What a page's form shows: what was typed, the refusal and each field's problem,
    and whether the last post was recorded (``?recorded=1`` after the redirect)."""
    return {
        "entered": dict(entered or {}),
        "error": error,
        "problems": {d.location: d.message for d in error.details} if error else {},
        "recorded": request.query_params.get("recorded") == "1",
    }
