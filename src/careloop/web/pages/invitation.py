"""Invitations to an account, in the browser: the secret leaves the address bar at once.

A patient or carer opens ``/invitation/<secret>`` from the e-mail their care
team sent. careloop checks the link, answers with a redirect to
``/invitation`` and a short signed cookie (as PROM links do,
:mod:`careloop.web.link_sessions`) that names the invitation by its stored
key, then shows a form to choose a display name and a password (or, for a
carer who already has an account, to enter its password). Accepting creates
the account and sends the person to ``/login``. A link that is unknown, used
or expired is refused with a plain message and counts towards the address's
limit on failed links (:mod:`careloop.web.rate_limit`).
"""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from careloop.core.errors import (
    AuthenticationRequired,
    Conflict,
    CsrfRejected,
    InputError,
    NotFound,
)
from careloop.core.i18n import N_
from careloop.store.database import Registry
from careloop.trust import invitations
from careloop.web import link_sessions
from careloop.web.link_sessions import NOT_FROM_PAGE
from careloop.web.pages.posted import posted
from careloop.web.pages.rendering import render
from careloop.web.rate_limit import link_attempt
from careloop.web.security import RegistryDep, cookies_secure, request_context, settings_of

router = APIRouter(include_in_schema=False)

INVITATION_COOKIE = "careloop_invitation"
INVITATION_PATH = invitations.INVITATION_PATH
KIND = "invitation"
SESSION_MINUTES = 30

TIMED_OUT = N_(
    "This page has timed out, or it was opened without its link. Please open the link "
    "in the e-mail from your care team again. If it no longer works, ask them for a new one."
)


def _invitation_key(request: Request) -> str:
    key = link_sessions.unseal(settings_of(request), KIND, request.cookies.get(INVITATION_COOKIE))
    if key is None:
        raise NotFound(TIMED_OUT)
    return key


@router.get(f"{INVITATION_PATH}/{{token}}")
async def open_invitation(request: Request, token: str, registry: RegistryDep) -> Response:
    """Swap the link's secret for a short session and show the form to accept it."""
    key = invitations.invitation_key(token)
    context = request_context(request)
    await link_attempt(
        request, lambda: invitations.open_invitation_by_key(registry, key, context=context)
    )
    settings = settings_of(request)
    response = RedirectResponse(INVITATION_PATH, status_code=303)
    response.set_cookie(
        INVITATION_COOKIE,
        link_sessions.seal(settings, KIND, key, int(time.time()) + SESSION_MINUTES * 60),
        max_age=SESSION_MINUTES * 60,
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request, settings),
        path=INVITATION_PATH,
    )
    return response


def _page(
    request: Request, key: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    view = invitations.open_invitation_by_key(
        request.app.state.registry, key, context=request_context(request)
    )
    return render(
        request,
        "invitation.html",
        {
            "invitation": view,
            "error": error,
            "principal": None,
            "csrf_token": link_sessions.form_token(settings_of(request), KIND, key),
        },
        status,
    )


@router.get(INVITATION_PATH, response_class=HTMLResponse)
async def invitation_page(request: Request) -> Response:
    key = _invitation_key(request)
    return await link_attempt(request, lambda: _page(request, key))


@router.post(INVITATION_PATH)
async def accept(request: Request, registry: RegistryDep) -> Response:
    key = _invitation_key(request)
    data = await posted(request)
    sent = next(reversed(data.get("csrf_token", [])), "")
    if not hmac.compare_digest(sent, link_sessions.form_token(settings_of(request), KIND, key)):
        raise CsrfRejected(NOT_FROM_PAGE)
    return await link_attempt(request, lambda: _accept(request, key, registry, data))


def _accept(request: Request, key: str, registry: Registry, data: dict[str, list[str]]) -> Response:
    def last(name: str) -> str:
        return next(reversed(data.get(name, [])), "")

    password = last("password")
    if "confirm" in data and last("confirm") != password:
        return _page(request, key, error=N_("The two passwords are not the same."), status=422)
    try:
        invitations.accept_invitation_by_key(
            registry,
            key,
            display_name=last("display_name"),
            password=password,
            lockout_settings=settings_of(request),
            context=request_context(request),
        )
    except (InputError, AuthenticationRequired, Conflict) as exc:
        return _page(request, key, error=str(exc), status=exc.http_status)
    response = RedirectResponse("/login?next=/my", status_code=303)
    response.delete_cookie(INVITATION_COOKIE, path=INVITATION_PATH)
    return response
