"""The portal: a patient's or a carer's own page, in plain words, made for a phone.

``/my`` shows each record the person may see (their own, or the patients
they are proxy for): their scores over time as simple charts with the
numbers in a table beside them, the forms filled and by whom, their consent
choices (one per purpose, each with a yes/no form posted to ``/my/consent``
with the session's CSRF token) and their history, the people who help them
(and what each may do), the questionnaires due, and what the learning
communities they belong to have learned. Staff have no portal: ``/my``
sends them home.

The patient (or, for a child, a parent or guardian who manages consent)
ticks what each carer may do and can remove a carer: ``POST
/my/carers/{link}`` and ``POST /my/carers/{link}/end``, with the session's
form token like every signed-in form. careloop.trust.carers decides who may.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop.capture import prom_log
from careloop.capture.proms import prom_link_key
from careloop.core.errors import CareloopError, InputError
from careloop.core.i18n import N_
from careloop.core.settings import Settings
from careloop.practice import portal
from careloop.store.database import Registry
from careloop.trust import carers
from careloop.trust.policy import CARER_SCOPES
from careloop.trust.principal import Principal
from careloop.web.languages import page_words
from careloop.web.openapi import RecordId
from careloop.web.pages.community_assessment import PostedForm
from careloop.web.pages.posted import posted
from careloop.web.pages.prom import start_prom_session
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import Caller, CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)

PORTAL_ROLES = frozenset({"patient", "carer"})
WIDTH, HEIGHT, PAD = 320, 140, 28


def is_portal_user(principal: Principal) -> bool:
    """Whether the person signs in only as a patient or a carer (the portal is their home)."""
    roles = {grant.role for grant in principal.grants}
    return bool(roles) and roles <= PORTAL_ROLES


@dataclass(frozen=True)
class Drawn:
    """A score drawn as a line: SVG points, axis labels and the values for the table."""

    series: portal.ScoreSeries
    line: str
    dots: tuple[tuple[float, float], ...]
    low: str
    high: str
    first: date
    last: date


def _label(value: float) -> str:
    return f"{value:g}"


def draw(series: portal.ScoreSeries) -> Drawn:
    """Place the points of ``series`` in a WIDTH × HEIGHT box (time across, score up)."""
    days = [d.toordinal() for d, _ in series.points]
    values = [v for _, v in series.points]
    low, high = min(values), max(values)
    span_x = max(days[-1] - days[0], 1)
    span_y = (high - low) or 1.0
    dots = tuple(
        (
            round(PAD + (d - days[0]) / span_x * (WIDTH - 2 * PAD), 1),
            round(HEIGHT - PAD - (v - low) / span_y * (HEIGHT - 2 * PAD), 1),
        )
        for d, v in zip(days, values, strict=True)
    )
    return Drawn(
        series,
        " ".join(f"{x},{y}" for x, y in dots),
        dots,
        _label(low),
        _label(high),
        series.points[0][0],
        series.points[-1][0],
    )


SCOPE_WORDS = {
    "fill_forms": N_("Fill in questionnaires"),
    "see_results": N_("See answers, scores and charts"),
    "manage_consent": N_("Choose how the information is used"),
}
"""Each carer scope as the portal's tick box says it."""


def _my_page(
    request: Request,
    caller: Caller,
    registry: Registry,
    settings: Settings,
    *,
    saved: int | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    records = portal.my_care(registry, caller.principal, handover_age=settings.handover_age)
    learning = portal.community_learning(registry, caller.principal)
    questionnaires = prom_log.patient_questionnaires(registry, caller.principal)
    return render(
        request,
        "my.html",
        {
            **page_context(caller),
            "records": records,
            "charts": {r.patient_id: [draw(s) for s in r.scores] for r in records},
            "learning": learning,
            "questionnaires": questionnaires,
            "names": {r.patient_id: r.name for r in records} if len(records) > 1 else {},
            "consent_words": portal.CONSENT_WORDS,
            "history_words": partial(
                portal.consent_history_words, words=page_words(request, caller.principal)
            ),
            "consent_saved": saved,
            "consent_error": error,
            "carer": "carer" in {g.role for g in caller.principal.grants},
            "size": {"width": WIDTH, "height": HEIGHT, "pad": PAD},
            "scope_names": CARER_SCOPES,
            "scope_words": SCOPE_WORDS,
            "handover_age": settings.handover_age,
            "carers_changed": request.query_params.get("carers") == "changed",
        },
        status=status_code,
    )


@router.post("/my/questionnaires/{invitation_id}")
async def fill_questionnaire(
    invitation_id: RecordId, request: Request, caller: CallerDep, registry: RegistryDep
) -> Response:
    """Open a questionnaire due for the signed-in patient or carer on the PROM form.

    A fresh single-use link is made with the caller's own rights and swapped for a
    short session at once, as an e-mailed link is (the CSRF token was checked with
    the session).
    """
    secret = await run_in_threadpool(
        prom_log.open_questionnaire, registry, caller.principal, invitation_id
    )
    return start_prom_session(request, prom_link_key(secret))


@router.post("/my/carers/{link_id}")
async def change_carer(
    link_id: RecordId,
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    """Save the ticks of one carer's boxes: exactly those scopes (none ticked: none)."""
    scopes = (await posted(request)).get("scope", [])
    changed = await run_in_threadpool(
        carers.set_carer_scopes,
        registry,
        caller.principal,
        link_id,
        scopes,
        handover_age=settings.handover_age,
    )
    return RedirectResponse(
        f"/my?carers=changed#people-who-help-{changed.patient_id}", status_code=303
    )


@router.post("/my/carers/{link_id}/end")
async def end_carer(
    link_id: RecordId, caller: CallerDep, registry: RegistryDep, settings: SettingsDep
) -> Response:
    """Remove a carer from the record."""
    patient_id = await run_in_threadpool(
        carers.end_carer_link,
        registry,
        caller.principal,
        link_id,
        handover_age=settings.handover_age,
    )
    return RedirectResponse(f"/my?carers=changed#people-who-help-{patient_id}", status_code=303)


@router.get("/my", response_class=HTMLResponse)
async def my_page(
    request: Request, caller: CallerDep, registry: RegistryDep, settings: SettingsDep
) -> Response:
    if not is_portal_user(caller.principal):
        return RedirectResponse("/", status_code=303)
    saved = request.query_params.get("saved", "")
    return await run_in_threadpool(
        _my_page,
        request,
        caller,
        registry,
        settings,
        saved=int(saved) if saved.isdigit() else None,
    )


def _choice(form: dict[str, str]) -> tuple[int, str, bool]:
    """The posted record, purpose and yes/no; InputError in plain words when one is missing."""
    patient = form.get("patient_id", "")
    purpose = form.get("purpose", "")
    answer = form.get("choice", "")
    if not patient.isdigit() or purpose not in portal.PURPOSE_WORDS or answer not in ("yes", "no"):
        raise InputError(N_("Please choose yes or no, then press Save."))
    return int(patient), purpose, answer == "yes"


@router.post("/my/consent")
def my_consent(
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    """Change one consent choice (the CSRF token was checked with the session)."""
    if not is_portal_user(caller.principal):
        return RedirectResponse("/", status_code=303)
    try:
        patient_id, purpose, given = _choice(form)
        portal.change_consent(registry, caller.principal, patient_id, purpose, given)
    except CareloopError as exc:
        # Another patient's record is "not found" (audited by the service); a missing
        # answer is asked for again. Nothing was recorded either way.
        message = (
            exc.message
            if isinstance(exc, InputError)
            else N_("We could not save that choice. Please try again or ask your care team.")
        )
        message = page_words(request, caller.principal).gettext(message)
        return _my_page(
            request, caller, registry, settings, error=message, status_code=exc.http_status
        )
    return RedirectResponse(f"/my?saved={patient_id}#consent-{patient_id}", status_code=303)
