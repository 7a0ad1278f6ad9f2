"""Who is asking: sessions, bearer tokens, CSRF, request ids and security headers.

Pages authenticate with a server-side session cookie (HttpOnly, SameSite=Lax,
Secure when careloop is reached over HTTPS: :func:`cookies_secure`)
and every state-changing request made with that cookie must carry the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``).
Scripts authenticate with ``Authorization: Bearer <token>``; those requests
need no CSRF token because browsers never add the header on their own.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from careloop.core.errors import AuthenticationRequired, CsrfRejected
from careloop.core.ids import request_id
from careloop.core.settings import Settings
from careloop.store.database import Registry
from careloop.trust.identity import ActiveSession, resolve_session, resolve_token
from careloop.trust.principal import Principal, RequestContext
from careloop.warehouse.connection import WarehouseOpener

SESSION_COOKIE = "careloop_session"
LOGIN_CSRF_COOKIE = "careloop_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CACHEABLE_PREFIXES = ("/static/",)
"""Paths whose responses may be cached: careloop's own style sheets, scripts and images."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


async def security_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Give every request an id and every response careloop's security headers."""
    request.state.request_id = request.headers.get("x-request-id", "")[:64] or request_id()
    response = await call_next(request)
    response.headers["X-Request-Id"] = request.state.request_id
    # A route may set a stricter policy of its own (self-contained reports); keep it.
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    path = request.url.path
    if path.startswith(("/api", "/login", "/reauth")) or "set-cookie" in response.headers:
        response.headers["Cache-Control"] = "no-store"
    elif not path.startswith(CACHEABLE_PREFIXES):
        # Pages, downloads and FHIR reads carry identifiable or small-count data: never
        # kept by a browser or a proxy, unless the route says otherwise (vendored assets).
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def registry_of(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def warehouse_of(request: Request) -> WarehouseOpener:
    opener: WarehouseOpener = request.app.state.warehouse
    return opener


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def public_address(request: Request) -> str:
    """Where people reach careloop, for links in e-mails: ``CARELOOP_PUBLIC_BASE_URL``.

    Without that setting, the address the (authenticated) caller used.
    """
    configured = settings_of(request).public_base_url
    return configured or str(request.base_url).rstrip("/")


def request_context(request: Request) -> RequestContext:
    client = request.client.host if request.client else None
    return RequestContext(request_id=getattr(request.state, "request_id", None), client_addr=client)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    principal: Principal
    session_token: str | None
    """The cookie's session token (None for bearer-token callers)."""
    session: ActiveSession | None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def _form_csrf(request: Request) -> str | None:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


async def authenticate(request: Request) -> Caller:
    """The caller of this request; AuthenticationRequired when there is none."""
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    registry = registry_of(request)
    context = request_context(request)
    token = _bearer(request)
    if token is not None:
        # Resolving a caller reads the registry: in a worker thread, never the event loop.
        principal = await run_in_threadpool(
            resolve_token,
            registry,
            token,
            context,
            handover_age=settings_of(request).handover_age,
        )
        caller = Caller(principal, None, None)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise AuthenticationRequired("Please log in (or send an API token as a bearer token).")
        active = await run_in_threadpool(
            resolve_session, registry, settings_of(request), cookie, context
        )
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER) or await _form_csrf(request)
            if not sent or not hmac.compare_digest(sent, active.csrf_token):
                raise CsrfRejected(
                    "This request lacks the page's security token (CSRF). "
                    "Reload the page and try again."
                )
        caller = Caller(active.principal, cookie, active)
    request.state.caller = caller
    return caller


async def optional_caller(request: Request) -> Caller | None:
    """The caller when there is a valid session, else None (for public pages)."""
    if not request.cookies.get(SESSION_COOKIE) and _bearer(request) is None:
        return None
    try:
        return await authenticate(request)
    except AuthenticationRequired:
        return None


CallerDep = Annotated[Caller, Depends(authenticate)]
OptionalCallerDep = Annotated[Caller | None, Depends(optional_caller)]
RegistryDep = Annotated[Registry, Depends(registry_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
WarehouseDep = Annotated[WarehouseOpener, Depends(warehouse_of)]

_Args = ParamSpec("_Args")
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class Actor:
    """The authenticated caller and the registry: what every domain service takes first.

    A thin route calls one service as the caller with :meth:`call`; the service
    checks the policy (or membership of a community), audits and raises
    careloop's errors, which the web layer's handlers turn into HTTP answers.
    """

    registry: Registry
    caller: Caller

    @property
    def principal(self) -> Principal:
        return self.caller.principal

    def call(
        self,
        service: Callable[Concatenate[Registry, Principal, _Args], _Result],
        /,
        *args: _Args.args,
        **kwargs: _Args.kwargs,
    ) -> _Result:
        """``service(registry, principal, *args, **kwargs)``."""
        return service(self.registry, self.caller.principal, *args, **kwargs)


async def actor_of(caller: CallerDep, registry: RegistryDep) -> Actor:
    # Async: it only bundles what the two dependencies resolved (no worker thread needed).
    return Actor(registry, caller)


ActorDep = Annotated[Actor, Depends(actor_of)]


def cookies_secure(request: Request, settings: Settings) -> bool:
    """Whether cookies must be ``Secure``: careloop is reached over HTTPS.

    careloop knows it from ``CARELOOP_PUBLIC_BASE_URL`` (https://…), from
    ``CARELOOP_SECURE_COOKIES=true``, or when it terminates TLS itself. It
    does not read ``X-Forwarded-Proto``: anyone can send that header.
    """
    return settings.secure_cookies or settings.served_over_https or request.url.scheme == "https"


def set_session_cookie(
    request: Request, response: Response, token: str, settings: Settings
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request, settings),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
