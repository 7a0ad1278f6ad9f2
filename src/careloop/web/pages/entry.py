"""Data entry in the browser: fill a form for a patient, change it, check it live.

Every page calls one capture or trust function; site scoping, validation and
the audit trail happen there. The page re-checks branching logic and
calculations live (``/entry/check``) with the same capture rules the server
applies on save. A refused save comes back as the page with an error summary
at the top (the GOV.UK design system's pattern) and each problem beside its
field, in plain words (:mod:`careloop.web.entry_words`); a save redirects to
the patient's page, which says what was saved.

The visit date is asked once: when the form has a visit date field
(:func:`~careloop.capture.event_dates.event_date_field`) the response's event
date is that field's answer, otherwise the page asks for it above the form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop.capture import Form, entry, forms_store
from careloop.capture.event_dates import event_date_field
from careloop.core.errors import Conflict, ErrorDetail, InputError, ValidationFailed
from careloop.store.database import Registry
from careloop.trust import patients
from careloop.trust.patients import PatientView
from careloop.web.entry_words import staff_problems
from careloop.web.form_render import build_view, live_check, values_from_post
from careloop.web.pages import entry_history, patient_pages
from careloop.web.pages.posted import json_body, json_values, posted
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import Caller, CallerDep, RegistryDep

router = APIRouter(include_in_schema=False)
router.include_router(patient_pages.router)
router.include_router(entry_history.router)

STALE = (
    "Someone else saved this form after you opened it, so nothing was saved. "
    "Open it again from the patient's page to see their changes, then make yours."
)
BAD_DATE = "Check the year of the visit date: it must be between 1900 and today"
NEED_REASON = "Say why you are changing this completed form"


@dataclass(frozen=True)
class _Page:
    """One entry page: the form, whose it is and where it posts."""

    patient: PatientView
    form: Form
    title: str
    action: str
    check_url: str
    response: entry.ResponseView | None = None

    @property
    def event_field(self) -> str | None:
        return event_date_field(self.form)


@dataclass
class _Refusal:
    """Why a save was refused, said where each problem is."""

    fields: list[ErrorDetail] = field(default_factory=list)
    date_error: str | None = None
    reason_error: str | None = None
    other: list[str] = field(default_factory=list)

    def about_date(self, page: _Page, text: str) -> None:
        """A problem with the visit date: beside its field, or beside the page's date box."""
        if page.event_field:
            self.fields = [d for d in self.fields if d.location != page.event_field]
            self.fields.insert(0, ErrorDetail(page.event_field, text))
        else:
            self.date_error = text


def _render(
    request: Request,
    caller: Caller,
    page: _Page,
    values: dict[str, object],
    *,
    event_date: str,
    refusal: _Refusal | None = None,
    reason: str = "",
    status: int = 200,
) -> Response:
    refusal = refusal or _Refusal()
    view = build_view(page.form, values, errors=refusal.fields, title=page.title, hints=True)
    problems: list[tuple[str, str]] = [("", text) for text in refusal.other]
    if refusal.date_error:
        problems.append(("event_date", refusal.date_error))
    problems.extend(view.problems)
    if refusal.reason_error:
        problems.append(("reason", refusal.reason_error))
    return render(
        request,
        "entry.html",
        {
            **page_context(caller),
            "patient": page.patient,
            "form": view,
            "event_field": page.event_field,
            "event_date": event_date,
            "action": page.action,
            "check_url": page.check_url,
            "response": page.response,
            "problems": problems,
            "date_error": refusal.date_error,
            "reason_error": refusal.reason_error,
            "reason": reason,
        },
        status,
    )


def _with_date(page: _Page, values: dict[str, object], day: date | None) -> dict[str, object]:
    """The values with the visit date field filled from ``day`` when it is empty."""
    if page.event_field and day is not None and not values.get(page.event_field):
        return {**values, page.event_field: day.isoformat()}
    return values


@router.get("/patients/{patient_id}/forms/{form}/new", response_class=HTMLResponse)
def new_entry_page(
    request: Request,
    patient_id: int,
    form: str,
    caller: CallerDep,
    registry: RegistryDep,
    event_date: Annotated[date | None, Query(alias="date")] = None,
) -> Response:
    page = _new_page(registry, caller, patient_id, form)
    day = event_date or date.today()
    return _render(request, caller, page, _with_date(page, {}, day), event_date=day.isoformat())


def _new_page(registry: Registry, caller: Caller, patient_id: int, form: str) -> _Page:
    patient = patients.get_patient(registry, caller.principal, patient_id)
    stored = forms_store.get_form(registry, caller.principal, form)
    return _Page(
        patient,
        stored.form,
        stored.title,
        f"/patients/{patient_id}/forms/{form}/new",
        f"/entry/check/{form}",
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


def _last(data: dict[str, list[str]], name: str) -> str:
    return (data.get(name) or [""])[-1]


def _status(data: dict[str, list[str]]) -> entry.ResponseStatus:
    # Anything but the "Save as complete" button (Enter, an old page) keeps a draft.
    return "complete" if _last(data, "submit") == "complete" else "draft"


def _event_day(page: _Page, values: dict[str, object], data: dict[str, list[str]]) -> date:
    """The response's event date: the visit date field's answer, or the page's date box.

    Raises:
        ValidationFailed: With every problem of the values (the date is needed even
            for a draft, as it is part of the response's key).
    """
    status = _status(data)
    if page.event_field is None:
        try:
            return date.fromisoformat(_last(data, "event_date").strip())
        except ValueError:
            raise ValidationFailed(
                "No visit date.", details=[ErrorDetail("event_date", "missing")]
            ) from None
    clean = entry.check_values(page.form, values, status=status)
    text = clean.get(page.event_field)
    if not isinstance(text, str) or not text:
        raise ValidationFailed(
            "No visit date.",
            details=[ErrorDetail(page.event_field, "needed even for a draft [rule: required]")],
        )
    return date.fromisoformat(text)


def _refusal(
    page: _Page, exc: ValidationFailed | Conflict | InputError, *, moved: bool
) -> _Refusal:
    """What the page says about a refused save; ``moved``: the visit date was changed."""
    refusal = _Refusal()
    if isinstance(exc, ValidationFailed):
        refusal.fields = staff_problems(page.form, exc.details)
        for detail in exc.details:
            if detail.location == "event_date":
                missing = detail.message == "missing"
                refusal.about_date(page, "Enter the visit date" if missing else BAD_DATE)
    elif isinstance(exc, Conflict) and (page.response is None or moved):
        refusal.about_date(
            page,
            f"This patient already has a {page.title} on this date. "
            "Open it from the patient's page to change it",
        )
    elif isinstance(exc, Conflict):
        refusal.other.append(STALE)
    elif page.response is not None and page.response.status == "complete":
        refusal.reason_error = NEED_REASON
    else:
        refusal.other.append(exc.message)
    return refusal


def _save_new_entry(
    request: Request,
    patient_id: int,
    form: str,
    caller: Caller,
    registry: Registry,
    data: dict[str, list[str]],
) -> Response:
    page = _new_page(registry, caller, patient_id, form)
    values = values_from_post(page.form, data)
    try:
        day = _event_day(page, values, data)
        saved = entry.create_response(
            registry,
            caller.principal,
            form,
            patient_id=patient_id,
            event_date=day,
            values=values,
            status=_status(data),
        )
    except (ValidationFailed, Conflict, InputError) as exc:
        return _render(
            request,
            caller,
            page,
            values,
            event_date=_last(data, "event_date"),
            refusal=_refusal(page, exc, moved=False),
            status=exc.http_status,
        )
    return RedirectResponse(f"/patients/{patient_id}?saved={saved.id}", status_code=303)


def _edit_page(registry: Registry, caller: Caller, response_id: int) -> _Page:
    response, form = entry.get_response_form(registry, caller.principal, response_id)
    patient = patients.get_patient(registry, caller.principal, response.patient_id)
    return _Page(
        patient,
        form,
        form.title or form.name,
        f"/responses/{response_id}",
        f"/entry/check/{response.form}?version={response.form_version}",
        response,
    )


@router.get("/responses/{response_id}", response_class=HTMLResponse)
def edit_entry_page(
    request: Request, response_id: int, caller: CallerDep, registry: RegistryDep
) -> Response:
    page = _edit_page(registry, caller, response_id)
    assert page.response is not None
    day = page.response.event_date
    values = _with_date(page, dict(page.response.values), day)
    return _render(request, caller, page, values, event_date=day.isoformat())


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
    page = _edit_page(registry, caller, response_id)
    response = page.response
    assert response is not None
    values = values_from_post(page.form, data)
    version = _last(data, "version")
    reason = _last(data, "reason").strip()
    day = response.event_date
    try:
        day = _event_day(page, values, data)
        entry.update_response(
            registry,
            caller.principal,
            response_id,
            values=values,
            status=_status(data),
            expected_version=int(version) if version.isdigit() else None,
            reason=reason or None,
            event_date=day,
        )
    except (ValidationFailed, Conflict, InputError) as exc:
        return _render(
            request,
            caller,
            page,
            values,
            event_date=_last(data, "event_date") or day.isoformat(),
            refusal=_refusal(page, exc, moved=day != response.event_date),
            reason=reason,
            status=exc.http_status,
        )
    return RedirectResponse(f"/patients/{response.patient_id}?saved={response_id}", status_code=303)


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
