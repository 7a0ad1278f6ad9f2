"""The capture JSON API: forms, responses, timelines and PROM links.

Thin routes over careloop.capture: each authenticates the caller (except the
PROM link routes, where the link's token is the credential) and calls one
domain function, which checks the policy, scopes the rows and writes the
audit entry. Responses carry an ``ETag`` (their concurrency version); send it
back as ``If-Match`` with a ``PUT`` and a stale one answers ``409 conflict``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from careloop.capture import entry, forms_store, proms
from careloop.core.errors import InputError
from careloop.web.etags import etag, version_from
from careloop.web.openapi import (
    DICTIONARY_BODY,
    TEXT,
    IdField,
    OptionalIdQuery,
    RecordId,
    Strict,
    errors,
    files_too,
)
from careloop.web.rate_limit import link_attempt
from careloop.web.security import ActorDep, RegistryDep, request_context

router = APIRouter(prefix="/api")

_MEDIA = {
    "redcap": "text/csv",
    "yaml": "application/yaml",
    "questionnaire": "application/fhir+json",
}


class ResponseCreate(Strict):
    patient_id: IdField
    event_date: date = Field(description="The visit (event) date; one response per date.")
    status: Literal["draft", "complete"] = "draft"
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="Field name → value (text; a checkbox takes a list of codes).",
    )


class ResponseUpdate(Strict):
    values: dict[str, Any] = Field(description="The response's values (they replace the old).")
    status: Literal["draft", "complete"] | None = None
    reason: str | None = Field(
        default=None, description="Reason for change: required when the response is complete."
    )


class PromLinkCreate(Strict):
    patient_id: IdField
    expires_in_hours: int = Field(default=proms.DEFAULT_LINK_HOURS, ge=1, le=proms.MAX_LINK_HOURS)
    note: str | None = None


class PromSubmit(Strict):
    values: dict[str, Any]
    event_date: date | None = Field(default=None, description="Defaults to today (UTC).")


class FormView(BaseModel):
    name: str
    title: str
    patient_reported: bool
    version: str
    current: bool
    versions: list[dict[str, Any]]
    definition: dict[str, Any]


class PromLinkView(BaseModel):
    id: int
    token: str = Field(description="Shown once; careloop stores only its hash.")
    path: str
    form: str
    patient_id: int
    expires_at: datetime


class PromReceipt(BaseModel):
    form: str
    event_date: date
    status: str


# ---------------------------------------------------------------- forms


@router.get("/forms", tags=["forms"], responses=errors(401, 403))
def list_forms(actor: ActorDep) -> list[forms_store.FormSummary]:
    """The registry's forms with their current versions."""
    return actor.call(forms_store.list_forms)


@router.post(
    "/forms",
    status_code=201,
    tags=["forms"],
    responses=errors(401, 403, 409, 413, 422),
    openapi_extra=DICTIONARY_BODY,
)
async def import_forms(
    request: Request,
    actor: ActorDep,
    format: Annotated[Literal["redcap", "yaml", "questionnaire"], Query()],
    name: str | None = None,
) -> list[forms_store.FormImport]:
    """Import a data dictionary sent as the request body (admins).

    A changed form gets a new version; an unchanged one does not.
    """
    body = await request.body()
    if not body:
        raise InputError("Send the data dictionary file as the request body.")
    # Parsing and checking a dictionary is work: in a worker thread, never in the event loop.
    return await run_in_threadpool(
        forms_store.import_forms,
        actor.registry,
        actor.principal,
        body,
        fmt=format,
        name=name or f"upload.{format}",
    )


@router.get(
    "/forms/{form}",
    tags=["forms"],
    response_model=None,
    responses=errors(401, 403, 404, 422)
    | files_too(
        "The form, or (with ``format``) its dictionary file.",
        {
            _MEDIA["redcap"]: TEXT,
            _MEDIA["yaml"]: TEXT,
            _MEDIA["questionnaire"]: {"schema": {"type": "object"}},
        },
        model=FormView,
    ),
)
def read_form(
    form: str,
    actor: ActorDep,
    version: str | None = None,
    format: Literal["redcap", "yaml", "questionnaire"] | None = None,
) -> FormView | Response:
    """A form's definition and versions, or (with ``format``) its dictionary file."""
    if format is not None:
        text = actor.call(forms_store.export_form, form, fmt=format, version=version)
        return Response(text, media_type=_MEDIA[format])
    stored = actor.call(forms_store.get_form, form, version=version)
    return FormView(
        name=stored.name,
        title=stored.title,
        patient_reported=stored.patient_reported,
        version=stored.version,
        current=stored.current,
        versions=[asdict(v) for v in stored.versions],
        definition=stored.definition(),
    )


# ---------------------------------------------------------------- responses


@router.post(
    "/forms/{form}/responses",
    status_code=201,
    tags=["responses"],
    responses=errors(400, 401, 403, 404, 409, 422),
)
def create_response(
    form: str, body: ResponseCreate, actor: ActorDep, response: Response
) -> entry.ResponseView:
    """Enter a response; every field error comes back at once (422, one detail per field)."""
    view = actor.call(
        entry.create_response,
        form,
        patient_id=body.patient_id,
        event_date=body.event_date,
        values=body.values,
        status=body.status,
    )
    response.headers["ETag"] = etag(view.version)
    response.headers["Location"] = f"/api/forms/{form}/responses/{view.id}"
    return view


@router.get("/forms/{form}/responses", tags=["responses"], responses=errors(401, 403, 404, 422))
def list_responses(
    form: str,
    actor: ActorDep,
    patient: OptionalIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[entry.ResponseView]:
    """Responses you may see (of one patient with ``?patient=``), newest first."""
    return actor.call(entry.list_responses, form, patient_id=patient, limit=limit)


@router.get(
    "/forms/{form}/responses/{response_id}",
    tags=["responses"],
    responses=errors(401, 403, 404, 422),
)
def read_response(
    form: str, response_id: RecordId, actor: ActorDep, response: Response
) -> entry.ResponseView:
    view = actor.call(entry.get_response, response_id, form=form)
    response.headers["ETag"] = etag(view.version)
    return view


@router.put(
    "/forms/{form}/responses/{response_id}",
    tags=["responses"],
    responses=errors(400, 401, 403, 404, 409, 422),
)
def update_response(
    form: str,
    response_id: RecordId,
    body: ResponseUpdate,
    actor: ActorDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> entry.ResponseView:
    """Replace a response's values; send the ETag you read as If-Match (stale: 409)."""
    view = actor.call(
        entry.update_response,
        response_id,
        values=body.values,
        status=body.status,
        expected_version=version_from(if_match, what="response"),
        reason=body.reason,
        form=form,
    )
    response.headers["ETag"] = etag(view.version)
    return view


@router.get(
    "/patients/{patient_id}/timeline", tags=["responses"], responses=errors(401, 403, 404, 422)
)
def timeline(patient_id: RecordId, actor: ActorDep) -> entry.Timeline:
    """A patient's responses across forms by event date, newest first."""
    return actor.call(entry.patient_timeline, patient_id)


# ---------------------------------------------------------------- PROM links


@router.post(
    "/forms/{form}/prom-links",
    status_code=201,
    tags=["proms"],
    responses=errors(400, 401, 403, 404, 409, 422),
)
def create_prom_link(form: str, body: PromLinkCreate, actor: ActorDep) -> PromLinkView:
    """A personal, expiring, single-use link for a patient to fill a PROM (token shown once)."""
    link = actor.call(
        proms.create_prom_link,
        form,
        patient_id=body.patient_id,
        expires_in_hours=body.expires_in_hours,
        note=body.note,
    )
    return PromLinkView(
        id=link.id,
        token=link.token,
        path=link.path,
        form=link.form,
        patient_id=link.patient_id,
        expires_at=link.expires_at,
    )


@router.get("/prom/{token}", tags=["proms"], responses=errors(404, 422, 429))
async def open_prom(token: str, request: Request, registry: RegistryDep) -> proms.PromInvitation:
    """The form a PROM link opens (no login: the link is the credential; no patient data)."""
    return await link_attempt(request, lambda: proms.open_prom_link(registry, token))


@router.post(
    "/prom/{token}", status_code=201, tags=["proms"], responses=errors(400, 404, 409, 422, 429)
)
async def submit_prom(
    token: str, body: PromSubmit, request: Request, registry: RegistryDep
) -> PromReceipt:
    """Submit the answers through a PROM link (once); saved as patient-entered."""
    context = request_context(request)
    view = await link_attempt(
        request,
        lambda: proms.submit_prom_link(
            registry, token, values=body.values, event_date=body.event_date, context=context
        ),
    )
    return PromReceipt(form=view.form, event_date=view.event_date, status=view.status)
