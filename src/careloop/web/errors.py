"""One error shape for the whole web app.

API callers get ``{"error": {"code", "message", "details", "request_id"}}``
with the error's HTTP status; browsers asking for a page get the same facts
as an HTML page. Unexpected exceptions become ``internal_error`` without any
internal detail in the response.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from careloop.core.errors import AuthenticationRequired, CareloopError, TooManyRequests
from careloop.web.languages import language_context

log = logging.getLogger("careloop.web")

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "input_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


def error_body(
    request: Request, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or [],
            "request_id": getattr(request.state, "request_id", None),
        }
    }


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api", "/fhir", "/cds-services", "/health", "/openapi")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _render(request: Request, status: int, body: dict[str, Any]) -> Response:
    if _wants_html(request):
        if status == 401:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        templates = request.app.state.templates
        context = {**language_context(request, None), "error": body["error"], "status": status}
        page: Response = templates.TemplateResponse(
            request, "error.html", context, status_code=status
        )
        return page
    return JSONResponse(body, status_code=status)


async def careloop_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CareloopError)
    body = error_body(request, exc.code, exc.message, [d.as_dict() for d in exc.details])
    response = _render(request, exc.http_status, body)
    if isinstance(exc, AuthenticationRequired) and not _wants_html(request):
        response.headers["WWW-Authenticate"] = 'Bearer realm="careloop"'
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "The request could not be served."
    if exc.status_code == 404 and message == "Not Found":
        message = f"There is nothing at {request.url.path}."
    response = _render(request, exc.status_code, error_body(request, code, message))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = []
    for problem in exc.errors():
        location = ".".join(str(part) for part in problem.get("loc", ()))
        details.append({"location": location, "message": problem.get("msg", "invalid")})
    await _audit_refusal(request, [d["location"] for d in details])
    body = error_body(request, "invalid_input", "The request is not valid.", details)
    return _render(request, 422, body)


async def _audit_refusal(request: Request, locations: list[str]) -> None:
    """Audit a request refused as invalid, for a signed-in caller (as other refusals are).

    FastAPI refuses an invalid request (an id beyond 64 bits, a malformed body)
    before any route or unit of work runs, so nothing else would record that
    this caller tried it. Anonymous requests have no one to record.
    """
    from starlette.concurrency import run_in_threadpool

    from careloop.trust.audit import AuditEvent
    from careloop.trust.work import record_events
    from careloop.web.security import optional_caller, registry_of, request_context

    try:
        caller = await optional_caller(request)
    except CareloopError:  # an expired session, a refused CSRF token: audited where refused
        return
    if caller is None:
        return
    principal, context = caller.principal, request_context(request)
    event = AuditEvent(
        action="request_invalid",
        category="api",
        outcome="denied",
        user_id=principal.user_id,
        user_email=principal.email,
        role=principal.role_label() or None,
        request_id=context.request_id,
        client_addr=context.client_addr,
        details={
            "method": request.method,
            "path": request.url.path[:300],
            "locations": locations[:20],
        },
    )
    await run_in_threadpool(record_events, registry_of(request), [event])


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("Unexpected error serving %s", request.url.path, exc_info=exc)
    body = error_body(
        request,
        "internal_error",
        "Something went wrong on the server. The request id identifies it in the server log.",
    )
    return _render(request, 500, body)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CareloopError, careloop_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
