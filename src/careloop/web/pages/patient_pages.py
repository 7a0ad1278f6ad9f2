"""The care team's patient pages: the list (paged, searchable, exportable), registering a
patient, one patient's page with their timeline, PROM links and invitations.

Every page calls one trust or capture function; which patients exist for the
caller (their sites), the checks and the audit trail happen there.
"""

from __future__ import annotations

import contextlib
import io
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from careloop.capture import entry, forms_store, proms
from careloop.core.csv_safety import safe_writer
from careloop.core.errors import Conflict, ErrorDetail, InputError, NotFound, ValidationFailed
from careloop.store.database import Registry
from careloop.trust import invitations, patients
from careloop.trust.consent import PURPOSES
from careloop.trust.patient_lists import (
    EXPORT_MAX,
    PAGE_SIZES,
    page_of_patients,
    registration_sites,
)
from careloop.web.openapi import OptionalIdQuery
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import Caller, CallerDep, RegistryDep, public_address

router = APIRouter(include_in_schema=False)

SEX_WORDS = {"female": "Female", "male": "Male", "other": "Other", "unknown": "Not known"}
FIELD_WORDS = {
    "local_id": "Local id",
    "given_name": "Given name",
    "family_name": "Family name",
    "birth_date": "Date of birth",
    "sex": "Sex",
    "site": "Site",
}
# What to do about each registration field the server refused, in plain words.
FIELD_FIXES = {
    "local_id": "Enter the patient's local id (their number at your site), up to 64 characters",
    "given_name": "Enter a given name of up to 200 characters, or leave it empty",
    "family_name": "Enter a family name of up to 200 characters, or leave it empty",
    "birth_date": "Enter a date of birth between 1900 and today, like 2012-03-31",
    "sex": "Choose the patient's sex",
    "site": "Choose one of your sites",
}


def _list_args(q: str | None, size: int, page: int) -> tuple[str, int, int]:
    size = size if size in PAGE_SIZES else PAGE_SIZES[0]
    return (q or "").strip(), size, max(1, page)


@router.get("/patients", response_class=HTMLResponse)
def patient_list(
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    size: Annotated[int, Query(ge=1, le=1000)] = PAGE_SIZES[0],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    registered: OptionalIdQuery = None,
) -> Response:
    """Patients of the caller's sites, a page at a time, with registration and export."""
    return _list_page(request, caller, registry, q, size, page, registered=registered)


def _list_page(
    request: Request,
    caller: Caller,
    registry: Registry,
    q: str | None,
    size: int,
    page: int,
    *,
    registered: int | None = None,
    new: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    text, size, page = _list_args(q, size, page)
    found = page_of_patients(
        registry, caller.principal, text=text or None, offset=(page - 1) * size, limit=size
    )
    pages = max(1, -(-found.total // size))
    just_registered = None
    if registered is not None:
        # An old or edited address shows the list without the notice.
        with contextlib.suppress(NotFound):
            just_registered = patients.get_patient(registry, caller.principal, registered)
    return render(
        request,
        "patients.html",
        {
            **page_context(caller),
            "q": text,
            "found": found,
            "size": size,
            "sizes": PAGE_SIZES,
            "page": page,
            "pages": pages,
            "first": found.offset + 1 if found.patients else 0,
            "last": found.offset + len(found.patients),
            "sites": registration_sites(registry, caller.principal),
            "sexes": SEX_WORDS,
            "new": new or {},
            "registered": just_registered,
        },
        status,
    )


@router.get("/patients.csv")
def patient_list_csv(
    caller: CallerDep,
    registry: RegistryDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The whole list (as searched) as CSV, safe to open in a spreadsheet; audited."""
    found = page_of_patients(
        registry, caller.principal, text=(q or "").strip() or None, limit=EXPORT_MAX, export=True
    )
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow(
        ["site", "local_id", "given_name", "family_name", "birth_date", "sex", "consent"]
    )
    for p in found.patients:
        writer.writerow(
            [
                p.site,
                p.local_id,
                p.given_name or "",
                p.family_name or "",
                p.birth_date.isoformat() if p.birth_date else "",
                p.sex,
                p.consent_state,
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="patients.csv"'},
    )


@router.post("/patients")
def register_patient(
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    site: Annotated[str, Form(max_length=64)] = "",
    local_id: Annotated[str, Form(max_length=200)] = "",
    given_name: Annotated[str, Form(max_length=400)] = "",
    family_name: Annotated[str, Form(max_length=400)] = "",
    birth_date: Annotated[str, Form(max_length=40)] = "",
    sex: Annotated[str, Form(max_length=20)] = "unknown",
) -> Response:
    """Register a patient at one of the caller's sites; back to the list, which says so."""
    entered = {
        "site": site,
        "local_id": local_id,
        "given_name": given_name,
        "family_name": family_name,
        "birth_date": birth_date,
        "sex": sex,
    }
    try:
        if site not in registration_sites(registry, caller.principal):
            raise ValidationFailed("No such site.", details=[_detail("site")])
        made = patients.register_patient(
            registry,
            caller.principal,
            site=site,
            local_id=local_id,
            given_name=given_name.strip() or None,
            family_name=family_name.strip() or None,
            birth_date=birth_date.strip() or None,
            sex=sex,
            consent_state="direct_care_only",
        )
    except (ValidationFailed, Conflict, InputError) as exc:
        return _list_page(
            request,
            caller,
            registry,
            None,
            PAGE_SIZES[0],
            1,
            new={**entered, **_registration_problems(exc, entered)},
            status=exc.http_status,
        )
    return RedirectResponse(f"/patients?registered={made.id}", status_code=303)


def _detail(name: str) -> ErrorDetail:
    return ErrorDetail(name, FIELD_FIXES[name])


def _registration_problems(
    exc: ValidationFailed | Conflict | InputError, entered: dict[str, str]
) -> dict[str, Any]:
    """Each refused field's fix, and the summary's (field, text) list."""
    errors: dict[str, str] = {}
    if isinstance(exc, ValidationFailed):
        for d in exc.details:
            if d.location in FIELD_FIXES:
                errors[d.location] = FIELD_FIXES[d.location]
    elif isinstance(exc, Conflict):
        errors["local_id"] = (
            f"A patient with local id {entered['local_id'].strip()} is already registered at "
            f"{entered['site']}. Find them in the list of patients on this page "
            "instead of registering them again"
        )
    if not errors:
        errors["local_id"] = exc.message
    return {"errors": errors, "problems": [(k, v) for k, v in errors.items()]}


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    request: Request,
    patient_id: int,
    caller: CallerDep,
    registry: RegistryDep,
    saved: OptionalIdQuery = None,
) -> Response:
    return _patient_page(request, caller, registry, patient_id, saved=saved)


def _saved_notice(timeline: entry.Timeline, saved: int | None) -> str | None:
    """What the page says after a save: which form, which visit, draft or complete."""
    for e in timeline.events:
        if e.response_id == saved:
            how = "as complete" if e.status == "complete" else "as a draft"
            day = f"{e.event_date.day} {e.event_date:%B %Y}"
            return f"Saved: {e.form_title} for the visit on {day}, {how}."
    return None


def _patient_page(
    request: Request,
    caller: Caller,
    registry: Registry,
    patient_id: int,
    *,
    saved: int | None = None,
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
            "saved": _saved_notice(timeline, saved),
            "forms": forms,
            "today": date.today().isoformat(),
            "prom_link": prom_link,
            "invitation": invitation or {},
        },
        status,
    )


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
