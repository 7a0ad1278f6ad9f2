"""The read-only FHIR R4 REST API under ``/fhir``.

Thin routes over :mod:`careloop.fhir.server`, which decides what the
caller may see (site scoping, identifiable or pseudonymised, audit). Errors
under ``/fhir`` are FHIR ``OperationOutcome`` resources, not the JSON error
shape of ``/api``: every route of this router runs inside
:class:`FhirRoute`, which turns careloop errors (authentication included,
since dependencies run inside the route handler) into an OperationOutcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from careloop.core.clock import utcnow
from careloop.core.errors import AuthenticationRequired, CareloopError
from careloop.fhir import server as fhir_server
from careloop.web.openapi import FHIR_ERRORS
from careloop.web.security import CallerDep, RegistryDep, WarehouseDep

log = logging.getLogger("careloop.web.fhir")

FHIR_JSON = "application/fhir+json"
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    422: "invalid",
    423: "security",
    501: "not-supported",
}


class FhirResponse(JSONResponse):
    """JSON with FHIR's media type, never cached."""

    media_type = FHIR_JSON

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        super().__init__(content, status_code=status_code, **kwargs)
        self.headers["Cache-Control"] = "no-store"


def operation_outcome(
    status: int, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An OperationOutcome with one issue, plus one per located detail."""
    code = _ISSUE_CODES.get(status, "exception" if status >= 500 else "processing")
    issues: list[dict[str, Any]] = [{"severity": "error", "code": code, "diagnostics": message}]
    for detail in details or []:
        issues.append(
            {
                "severity": "error",
                "code": code,
                "diagnostics": detail.get("message", ""),
                "expression": [detail.get("location", "")],
            }
        )
    return {"resourceType": "OperationOutcome", "issue": issues}


def _outcome_response(
    status: int, message: str, details: list[dict[str, Any]] | None = None
) -> Response:
    response = FhirResponse(operation_outcome(status, message, details), status_code=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="careloop"'
    return response


class FhirRoute(APIRoute):
    """A route whose errors come back as OperationOutcome resources."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except CareloopError as exc:
                status = 401 if isinstance(exc, AuthenticationRequired) else exc.http_status
                return _outcome_response(status, exc.message, [d.as_dict() for d in exc.details])
            except RequestValidationError as exc:
                details = [
                    {
                        "location": ".".join(str(p) for p in e.get("loc", ())),
                        "message": e.get("msg", ""),
                    }
                    for e in exc.errors()
                ]
                return _outcome_response(400, "The request is not valid.", details)
            except StarletteHTTPException as exc:
                return _outcome_response(exc.status_code, str(exc.detail))
            except NotImplementedError as exc:
                return _outcome_response(501, str(exc) or "Not supported.")
            except Exception:
                log.exception("Unexpected error serving %s", request.url.path)
                return _outcome_response(
                    500, "Something went wrong on the server; the request id identifies it."
                )

        return handle


router = APIRouter(prefix="/fhir", route_class=FhirRoute, tags=["fhir"], responses=FHIR_ERRORS)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


@router.get("/metadata", response_class=FhirResponse)
def metadata(request: Request) -> Response:
    """The CapabilityStatement: what this server serves (no sign-in needed)."""
    return FhirResponse(fhir_server.capability_statement(_base(request), now=utcnow()))


@router.get("/{resource_type}", response_class=FhirResponse)
def search(
    resource_type: str,
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
) -> Response:
    """Search one resource type; a searchset Bundle of what the caller may see."""
    result = fhir_server.search(
        warehouse, registry, caller.principal, resource_type, _params(request)
    )
    base = _base(request)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": result.total,
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in result.resources
        ],
    }
    return FhirResponse(bundle)


@router.get("/{resource_type}/{resource_id}", response_class=FhirResponse)
def read(
    resource_type: str,
    resource_id: str,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
) -> Response:
    """Read one resource by id."""
    return FhirResponse(
        fhir_server.read_resource(warehouse, registry, caller.principal, resource_type, resource_id)
    )


@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
def unsupported(rest: str, request: Request) -> Response:
    """Anything else under /fhir: this server is read-only."""
    if request.method != "GET":
        return _outcome_response(405, "careloop's FHIR API is read-only (GET only).")
    return _outcome_response(404, f"There is nothing at /fhir/{rest}.")
