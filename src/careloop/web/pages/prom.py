"""PROMs through personal links, in the browser: the secret leaves the address bar at once.

A patient opens ``/prom/<secret>`` from the message their care team sent.
careloop checks the link and answers with a redirect to ``/prom`` and a
short session cookie (``CARELOOP_PROM_SESSION_MINUTES``, HttpOnly,
SameSite=Lax, only for ``/prom``) that names the link by its stored key —
the secret's hash — signed with the installation's key. The secret is
never in a page, a form action or a later request, so it does not stay in
the browser's history or in the server's logs beyond that first request.

The form, its live check and its submission then work from the cookie; each
posts the form's own token (derived from the cookie's key), so another site
cannot submit answers in the patient's name. A link that is unknown, used or
expired is refused with a plain message and counts towards the address's
limit on failed links (:mod:`careloop.web.rate_limit`).
"""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop.capture import proms
from careloop.core.errors import Conflict, CsrfRejected, ErrorDetail, NotFound, ValidationFailed
from careloop.core.i18n import N_
from careloop.core.settings import Settings
from careloop.store.database import Registry
from careloop.web import link_sessions
from careloop.web.form_render import (
    SOME_ANSWERS,
    build_view,
    form_from_definition,
    live_check,
    patient_problems,
    values_from_post,
)
from careloop.web.languages import page_words
from careloop.web.link_sessions import NOT_FROM_PAGE
from careloop.web.pages.posted import json_body, json_values, posted
from careloop.web.pages.rendering import render
from careloop.web.rate_limit import link_attempt
from careloop.web.security import (
    CSRF_HEADER,
    RegistryDep,
    cookies_secure,
    request_context,
    settings_of,
)

router = APIRouter(include_in_schema=False)

PROM_COOKIE = "careloop_prom"
PROM_PATH = "/prom"

TIMED_OUT = N_(
    "This page has timed out, or it was opened without its link. Please open the link "
    "in the message from your care team again. If it no longer works, ask them for a new one."
)


def _seal(settings: Settings, key: str, expires: int) -> str:
    return link_sessions.seal(settings, "prom", key, expires)


def _unseal(settings: Settings, value: str | None) -> str | None:
    return link_sessions.unseal(settings, "prom", value)


def _form_token(settings: Settings, key: str) -> str:
    return link_sessions.form_token(settings, "prom", key)


def _link_key(request: Request) -> str:
    """The key of the link this browser opened; NotFound with a plain message if none."""
    key = _unseal(settings_of(request), request.cookies.get(PROM_COOKIE))
    if key is None:
        raise NotFound(TIMED_OUT)
    return key


def _check_form_token(request: Request, key: str, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(sent, _form_token(settings_of(request), key)):
        raise CsrfRejected(NOT_FROM_PAGE)


@router.get("/prom/{token}")
async def open_link(request: Request, token: str, registry: RegistryDep) -> Response:
    """Swap the link's secret for a short session and send the patient to the form."""
    key = proms.prom_link_key(token)
    await link_attempt(request, lambda: proms.open_prom_link_by_key(registry, key))
    return start_prom_session(request, key)


def start_prom_session(request: Request, key: str) -> Response:
    """Send the browser to the PROM form with a short session for the link under ``key``.

    Used for an e-mailed link and for a questionnaire opened from the portal: the
    link's secret never appears in an address.
    """
    settings = settings_of(request)
    minutes = settings.prom_session_minutes
    response = RedirectResponse(PROM_PATH, status_code=303)
    response.set_cookie(
        PROM_COOKIE,
        _seal(settings, key, int(time.time()) + minutes * 60),
        max_age=minutes * 60,
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request, settings),
        path=PROM_PATH,
    )
    return response


def _prom_page(
    request: Request,
    key: str,
    *,
    values: dict[str, object] | None = None,
    errors: list[ErrorDetail] | None = None,
    message: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    invitation = proms.open_prom_link_by_key(request.app.state.registry, key)
    form = form_from_definition(invitation.definition)
    return render(
        request,
        "prom.html",
        {
            "form": build_view(form, values or {}, errors=errors, title=invitation.title),
            "message": message,
            "problems": [(e.location, e.message) for e in errors or []],
            "check_url": f"{PROM_PATH}/check",
            "principal": None,
            "csrf_token": _form_token(settings_of(request), key),
        },
        status,
    )


@router.get(PROM_PATH, response_class=HTMLResponse)
def prom_page(request: Request) -> Response:
    return _prom_page(request, _link_key(request))


@router.post(f"{PROM_PATH}/check")
async def prom_check(request: Request) -> JSONResponse:
    key = _link_key(request)
    _check_form_token(request, key, request.headers.get(CSRF_HEADER))
    body = await json_body(request)

    def check() -> JSONResponse:
        invitation = proms.open_prom_link_by_key(request.app.state.registry, key)
        form = form_from_definition(invitation.definition)
        words = page_words(request, None)
        return JSONResponse(live_check(form, json_values(body), words=words))

    return await run_in_threadpool(check)


@router.post(PROM_PATH)
async def prom_submit(request: Request, registry: RegistryDep) -> Response:
    key = _link_key(request)
    data = await posted(request)
    _check_form_token(request, key, next(reversed(data.get("csrf_token", [])), None))
    return await run_in_threadpool(_save_prom, request, key, registry, data)


def _save_prom(
    request: Request, key: str, registry: Registry, data: dict[str, list[str]]
) -> Response:
    invitation = proms.open_prom_link_by_key(registry, key)
    form = form_from_definition(invitation.definition)
    values = values_from_post(form, data)
    try:
        proms.submit_prom_link_by_key(
            registry, key, values=values, context=request_context(request)
        )
    except ValidationFailed as exc:
        words = page_words(request, None)
        return _prom_page(
            request,
            key,
            values=values,
            errors=patient_problems(form, values, words, refused=exc.details),
            message=words.gettext(SOME_ANSWERS),
            status=exc.http_status,
        )
    except Conflict as exc:
        words = page_words(request, None)
        return _prom_page(
            request, key, values=values, message=words.gettext(exc.message), status=409
        )
    response = render(
        request, "prom_done.html", {"principal": None, "csrf_token": "", "title": invitation.title}
    )
    response.delete_cookie(PROM_COOKIE, path=PROM_PATH)
    return response
