"""The CDS Hooks endpoints as a FastAPI router (``/cds-services``).

Errors here follow CDS Hooks, not careloop's ``/api`` error shape: a bare
401 for any failed JWT check, 404 for an unknown service, 400 for a bad
request (with the JSON paths of its problems), 412 when prefetch data cannot
be had, 413 for an oversized body. CORS answers the origins the trusted
clients registered (``careloop cds trust-client --origin``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from careloop.core.errors import ValidationFailed
from careloop.core.limits import loads_json
from careloop.core.settings import Settings
from careloop.knowledge.cards import Problem
from careloop.practice.cds_hooks import MAX_BODY_BYTES, CdsHooksError
from careloop.practice.clients import Unauthorised, VerifiedCall, allowed_origins, verify_call
from careloop.practice.service import discovery, invoke, record_feedback
from careloop.store.database import Registry


class CdsErrorBody(BaseModel):
    """How a CDS Hooks call is refused (the spec defines no body; this one is small)."""

    error: str
    problems: list[dict[str, str]] = []


def _cds_error(why: str) -> dict[str, Any]:
    return {"model": CdsErrorBody, "description": why}


router = APIRouter(
    prefix="/cds-services",
    tags=["cds-hooks"],
    responses={
        400: _cds_error("The body is not JSON or breaks the CDS Hooks request rules."),
        401: {
            "description": "The bearer JWT fails a check (no body, whichever check).",
            "content": {},
        },
        404: _cds_error("No such active CDS service for this client."),
        412: _cds_error("Prefetch data is missing and cannot be fetched."),
        413: _cds_error("The body is too large."),
    },
)
log = logging.getLogger("careloop.practice")

_CORS_METHODS = "GET, POST, OPTIONS"
_CORS_HEADERS = "Authorization, Content-Type"


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _audience(request: Request) -> str | None:
    """The URL of the endpoint being called, as the JWT's ``aud`` must name it.

    Built from the configured public base URL, never from the request's Host
    header (which the caller chooses). None when no public base URL is set:
    every call is then refused.
    """
    settings: Settings = request.app.state.settings
    if settings.public_base_url is None:
        return None
    path = request.url.path
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return settings.public_base_url + path


async def _cors(request: Request, response: Response, registry: Registry) -> Response:
    origin = request.headers.get("origin")
    if origin and origin in await run_in_threadpool(allowed_origins, registry):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


def _unauthorised() -> Response:
    return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})


def _error(exc: CdsHooksError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _read_json(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise CdsHooksError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise CdsHooksError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    try:
        return loads_json(b"".join(chunks), where="request body", parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CdsHooksError(400, f"The request body is not JSON: {exc}") from exc
    except ValidationFailed as exc:  # nested too deep to be a hook call
        problems = [Problem(d.location.split(":", 1)[-1], d.message) for d in exc.details]
        raise CdsHooksError(400, exc.message, problems) from None


def _not_json(constant: str) -> Any:
    """Python's parser accepts NaN and Infinity; JSON (RFC 8259) has no such numbers."""
    raise ValueError(f"{constant} is not a JSON number")


async def _serve(
    request: Request, work: Callable[[Registry, VerifiedCall, Any], Any], *, with_body: bool
) -> Response:
    registry = _registry(request)
    try:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise CdsHooksError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        try:
            audience = _audience(request)
            if audience is None:
                log.warning(
                    "CDS Hooks call refused: set CARELOOP_PUBLIC_BASE_URL to the address the "
                    "EHR calls careloop at; JWTs must name it in `aud`."
                )
                raise Unauthorised
            # Calls that store something record the JWT id in that same transaction.
            call = await run_in_threadpool(
                verify_call,
                registry,
                _bearer(request),
                audience=audience,
                remember=not with_body,
            )
            body = await _read_json(request) if with_body else None
            result = await run_in_threadpool(work, registry, call, body)
        except Unauthorised:
            return await _cors(request, _unauthorised(), registry)
        response: Response = JSONResponse(result)
    except CdsHooksError as exc:
        response = _error(exc)
    return await _cors(request, response, registry)


@router.get("", summary="CDS Hooks discovery")
async def discover(request: Request) -> Response:
    """The active CDS services (from active knowledge object versions)."""
    return await _serve(request, lambda reg, call, _body: discovery(reg, call), with_body=False)


@router.post("/{service_id}", summary="Call a CDS service")
async def call_service(service_id: str, request: Request) -> Response:
    """Evaluate the service's knowledge for one hook call and return its cards."""
    return await _serve(
        request, lambda reg, call, body: invoke(reg, service_id, body, call), with_body=True
    )


@router.post("/{service_id}/feedback", summary="Feedback on cards")
async def feedback(service_id: str, request: Request) -> Response:
    """Store what the clinician did with cards: accepted suggestions or overridden (why)."""

    def work(reg: Registry, call: VerifiedCall, body: Any) -> dict[str, Any]:
        receipt = record_feedback(reg, service_id, body, call)
        return {"stored": receipt.stored}

    return await _serve(request, work, with_body=True)


@router.options("", include_in_schema=False)
@router.options("/{service_id}", include_in_schema=False)
@router.options("/{service_id}/feedback", include_in_schema=False)
async def preflight(request: Request) -> Response:
    """CORS preflight: allowed for the origins of trusted browser-based clients."""
    registry = _registry(request)
    origin = request.headers.get("origin")
    if not origin or origin not in await run_in_threadpool(allowed_origins, registry):
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": _CORS_METHODS,
            "Access-Control-Allow-Headers": _CORS_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )
