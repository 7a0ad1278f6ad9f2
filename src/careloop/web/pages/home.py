"""Server-rendered pages: login, logout, re-authentication and home."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from careloop.core.errors import (
    AccountLocked,
    AuthenticationRequired,
    CsrfRejected,
    InvalidCredentials,
)
from careloop.core.settings import Settings
from careloop.trust import identity
from careloop.web.pages.home_roles import role_context
from careloop.web.pages.portal import is_portal_user
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Caller,
    CallerDep,
    OptionalCallerDep,
    RegistryDep,
    SettingsDep,
    clear_session_cookie,
    cookies_secure,
    request_context,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a login to another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_form(
    request: Request, settings: Settings, *, error: str | None = None, status: int = 200
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"csrf_token": token, "error": error, "next": _safe_next(request.query_params.get("next"))},
        status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=cookies_secure(request, settings),
        path="/login",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep) -> Response:
    return _login_form(request, settings)


@router.post("/login")
def login_submit(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        raise CsrfRejected(
            "The login form expired or was not sent from careloop. Reload and try again."
        )
    context = request_context(request)
    try:
        result = identity.login(registry, settings, email=email, password=password, context=context)
    except AuthenticationRequired as exc:
        return _login_form(request, settings, error=exc.message, status=exc.http_status)
    # A login in a browser that holds another session ends that session: it must not stay
    # usable (by whoever has its cookie) after someone else has signed in here.
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        identity.logout(registry, previous, context)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, result.session_token, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, caller: CallerDep, registry: RegistryDep) -> Response:
    if caller.session_token:
        identity.logout(registry, caller.session_token, request_context(request))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


def _reauth_form(
    request: Request, caller: Caller, next_path: str | None, error: str | None, status: int
) -> Response:
    return render(
        request,
        "reauth.html",
        {
            **page_context(caller),
            "next": _safe_next(next_path),
            "error": error,
        },
        status,
    )


@router.get("/reauth", response_class=HTMLResponse)
def reauth_page(request: Request, caller: CallerDep) -> Response:
    return _reauth_form(request, caller, request.query_params.get("next"), None, 200)


@router.post("/reauth")
def reauth_submit(
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    try:
        identity.reauthenticate(registry, settings, token, password, request_context(request))
    except (InvalidCredentials, AccountLocked) as exc:
        # The form again, saying why (it used to send the person to the login page).
        return _reauth_form(request, caller, next, exc.message, exc.http_status)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, caller: OptionalCallerDep, registry: RegistryDep, settings: SettingsDep
) -> Response:
    """What waits for the signed-in person, by role; patients and carers go to /my."""
    if caller is None:
        return RedirectResponse("/login", status_code=303)
    if is_portal_user(caller.principal):
        return RedirectResponse("/my", status_code=303)
    sites = identity.list_sites(registry, caller.principal)
    return render(
        request,
        "home.html",
        {
            **page_context(caller),
            "sites": sites,
            **role_context(request, registry, settings, caller.principal),
        },
    )
