"""The portal: a patient's or a carer's own page, in plain words, made for a phone.

``/my`` shows each record the person may see (their own, or the patients
they are proxy for): their scores over time as simple charts with the
numbers in a table beside them, the forms filled and by whom, their consent
choice and its history, the people who help them (and what each may do),
and what the learning communities they belong to have learned. Staff have
no portal: ``/my`` sends them home.

The patient (or, for a child, a parent or guardian who manages consent)
ticks what each carer may do and can remove a carer: ``POST
/my/carers/{link}`` and ``POST /my/carers/{link}/end``, with the session's
form token like every signed-in form. careloop.trust.carers decides who may.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop.capture import prom_log
from careloop.practice import portal
from careloop.trust import carers
from careloop.trust.policy import CARER_SCOPES
from careloop.trust.principal import Principal
from careloop.web.openapi import RecordId
from careloop.web.pages.posted import posted
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import CallerDep, RegistryDep, SettingsDep

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
    "fill_forms": "Fill in questionnaires",
    "see_results": "See answers, scores and charts",
    "manage_consent": "Choose how the information is used",
}
"""Each carer scope as the portal's tick box says it."""


@router.get("/my", response_class=HTMLResponse)
async def my_page(
    request: Request, caller: CallerDep, registry: RegistryDep, settings: SettingsDep
) -> Response:
    if not is_portal_user(caller.principal):
        return RedirectResponse("/", status_code=303)

    def gather() -> tuple[
        list[portal.CareRecord], list[portal.Learning], list[prom_log.PatientQuestionnaire]
    ]:
        records = portal.my_care(registry, caller.principal, handover_age=settings.handover_age)
        return (
            records,
            portal.community_learning(registry, caller.principal),
            prom_log.patient_questionnaires(registry, caller.principal),
        )

    records, learning, questionnaires = await run_in_threadpool(gather)
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
            "carer": "carer" in {g.role for g in caller.principal.grants},
            "size": {"width": WIDTH, "height": HEIGHT, "pad": PAD},
            "scope_names": CARER_SCOPES,
            "scope_words": SCOPE_WORDS,
            "handover_age": settings.handover_age,
            "carers_changed": request.query_params.get("carers") == "changed",
        },
    )


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
