"""Data entry in the browser: find a patient, see their timeline, fill a form, PROM links.

Every page calls one capture or trust function; site scoping, validation and
the audit trail happen there. The page re-checks branching logic and
calculations live (``/entry/check``) with the same capture rules the server
applies on save.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop.capture import entry, forms_store, proms
from careloop.core.errors import Conflict, InputError, ValidationFailed
from careloop.store.database import Registry
from careloop.trust import invitations, patients
from careloop.trust.consent import PURPOSES
from careloop.web.form_render import build_view, live_check, values_from_post
from careloop.web.pages.posted import json_body, json_values, posted
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import Caller, CallerDep, RegistryDep, public_address

router = APIRouter(include_in_schema=False)


@router.get("/patients", response_class=HTMLResponse)
def patient_search(
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    found = patients.search_patients(registry, caller.principal, text=q or None, limit=100)
    return render(
        request, "patients.html", {**page_context(caller), "q": q or "", "patients": found}
    )


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    request: Request, patient_id: int, caller: CallerDep, registry: RegistryDep
) -> Response:
    return _patient_page(request, caller, registry, patient_id)


def _patient_page(
    request: Request,
    caller: Caller,
    registry: Registry,
    patient_id: int,
    *,
    prom_link: str | None = None,
    invitation: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    patient = patients.get_patient(registry, caller.principal, patient_id)
    timeline = entry.patient_timeline(registry, caller.principal, patient_id)
    forms = forms_store.list_forms(registry, caller.principal)
    history = patients.consent_history(registry, caller.principal, patient_id)
    return render(
        request,
        "patient.html",
        {
            **page_context(caller),
            "patient": patient,
            "consent_history": history,
            "purposes": PURPOSES,
            "timeline": timeline,
            "forms": forms,
            "today": date.today().isoformat(),
            "prom_link": prom_link,
            "invitation": invitation or {},
        },
        status,
    )


@router.get("/patients/{patient_id}/forms/{form}/new", response_class=HTMLResponse)
def new_entry_page(
    request: Request,
    patient_id: int,
    form: str,
    caller: CallerDep,
    registry: RegistryDep,
    event_date: Annotated[date | None, Query(alias="date")] = None,
) -> Response:
    patient = patients.get_patient(registry, caller.principal, patient_id)
    stored = forms_store.get_form(registry, caller.principal, form)
    view = build_view(stored.form, {}, title=stored.title)
    return render(
        request,
        "entry.html",
        {
            **page_context(caller),
            "patient": patient,
            "form": view,
            "event_date": (event_date or date.today()).isoformat(),
            "action": f"/patients/{patient_id}/forms/{form}/new",
            "check_url": f"/entry/check/{form}",
            "response": None,
        },
    )


@router.post("/patients/{patient_id}/forms/{form}/new")
async def new_entry_submit(
    request: Request, patient_id: int, form: str, caller: CallerDep, registry: RegistryDep
) -> Response:
    data = await posted(request)
    # Saving waits for the registry's write lock: in a worker thread, not the event loop.
    return await run_in_threadpool(
        _save_new_entry, request, patient_id, form, caller, registry, data
    )


def _save_new_entry(
    request: Request,
    patient_id: int,
    form: str,
    caller: Caller,
    registry: Registry,
    data: dict[str, list[str]],
) -> Response:
    stored = forms_store.get_form(registry, caller.principal, form)
    values = values_from_post(stored.form, data)
    status = "complete" if data.get("submit", ["draft"])[-1] == "complete" else "draft"
    event_date = (data.get("event_date") or [""])[-1]
    try:
        entry.create_response(
            registry,
            caller.principal,
            form,
            patient_id=patient_id,
            event_date=event_date,
            values=values,
            status=status,  # type: ignore[arg-type]
        )
    except (ValidationFailed, Conflict, InputError) as exc:
        patient = patients.get_patient(registry, caller.principal, patient_id)
        return render(
            request,
            "entry.html",
            {
                **page_context(caller),
                "patient": patient,
                "form": build_view(stored.form, values, errors=exc.details, title=stored.title),
                "message": exc.message,
                "event_date": event_date,
                "action": f"/patients/{patient_id}/forms/{form}/new",
                "check_url": f"/entry/check/{form}",
                "response": None,
            },
            status=exc.http_status,
        )
    return RedirectResponse(f"/patients/{patient_id}?saved={form}", status_code=303)


@router.get("/responses/{response_id}", response_class=HTMLResponse)
def edit_entry_page(
    request: Request, response_id: int, caller: CallerDep, registry: RegistryDep
) -> Response:
    response, form = entry.get_response_form(registry, caller.principal, response_id)
    patient = patients.get_patient(registry, caller.principal, response.patient_id)
    return render(
        request,
        "entry.html",
        {
            **page_context(caller),
            "patient": patient,
            "form": build_view(form, response.values),
            "event_date": response.event_date.isoformat(),
            "action": f"/responses/{response_id}",
            "check_url": f"/entry/check/{response.form}?version={response.form_version}",
            "response": response,
        },
    )


@router.post("/responses/{response_id}")
async def edit_entry_submit(
    request: Request, response_id: int, caller: CallerDep, registry: RegistryDep
) -> Response:
    data = await posted(request)
    return await run_in_threadpool(_save_edit, request, response_id, caller, registry, data)


def _save_edit(
    request: Request,
    response_id: int,
    caller: Caller,
    registry: Registry,
    data: dict[str, list[str]],
) -> Response:
    response, form = entry.get_response_form(registry, caller.principal, response_id)
    values = values_from_post(form, data)
    status = "complete" if data.get("submit", ["draft"])[-1] == "complete" else "draft"
    version = (data.get("version") or [""])[-1]
    reason = (data.get("reason") or [""])[-1].strip() or None
    try:
        entry.update_response(
            registry,
            caller.principal,
            response_id,
            values=values,
            status=status,  # type: ignore[arg-type]
            expected_version=int(version) if version.isdigit() else None,
            reason=reason,
        )
    except (ValidationFailed, Conflict, InputError) as exc:
        patient = patients.get_patient(registry, caller.principal, response.patient_id)
        return render(
            request,
            "entry.html",
            {
                **page_context(caller),
                "patient": patient,
                "form": build_view(form, values, errors=exc.details),
                "message": exc.message,
                "event_date": response.event_date.isoformat(),
                "action": f"/responses/{response_id}",
                "check_url": f"/entry/check/{response.form}?version={response.form_version}",
                "response": response,
            },
            status=exc.http_status,
        )
    return RedirectResponse(
        f"/patients/{response.patient_id}?saved={response.form}", status_code=303
    )


@router.post("/entry/check/{form}")
async def check_entry(
    request: Request,
    form: str,
    caller: CallerDep,
    registry: RegistryDep,
    version: str | None = None,
) -> JSONResponse:
    """Hidden fields, calculated values and errors for the values typed so far."""
    body = await json_body(request)

    def check() -> JSONResponse:
        stored = forms_store.get_form(registry, caller.principal, form, version=version)
        return JSONResponse(live_check(stored.form, json_values(body)))

    return await run_in_threadpool(check)


@router.post("/patients/{patient_id}/prom-links")
def create_prom_link(
    request: Request,
    patient_id: int,
    caller: CallerDep,
    registry: RegistryDep,
    form: Annotated[str, Form()],
) -> Response:
    """Create a link and show it on the patient's page this once.

    The page is the answer to the POST (no redirect): the link's secret is never
    put in an address, where the browser's history and the server's logs keep it.
    """
    link = proms.create_prom_link(registry, caller.principal, form, patient_id=patient_id)
    url = str(request.base_url).rstrip("/") + link.path
    return _patient_page(request, caller, registry, patient_id, prom_link=url, status=201)


@router.post("/patients/{patient_id}/invitations")
def invite_to_record(
    request: Request,
    patient_id: int,
    caller: CallerDep,
    registry: RegistryDep,
    email: Annotated[str, Form()],
    role: Annotated[str, Form()] = "patient",
    relationship: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "en",
) -> Response:
    """E-mail the patient (or a carer) a link that opens their account; say so on the page."""
    try:
        sent = invitations.invite_to_record(
            registry,
            caller.principal,
            request.app.state.mailer,
            patient_id,
            email=email,
            role="carer" if role == "carer" else "patient",
            relationship=relationship,
            link_base=public_address(request),
            language=language,
        )
    except (InputError, Conflict) as exc:
        shown = {
            "error": str(exc),
            "email": email,
            "role": role,
            "relationship": relationship,
            "language": language,
        }
        return _patient_page(
            request, caller, registry, patient_id, invitation=shown, status=exc.http_status
        )
    done = {"sent": f"An invitation was e-mailed to {sent.email} (as {sent.role})."}
    return _patient_page(request, caller, registry, patient_id, invitation=done, status=201)
