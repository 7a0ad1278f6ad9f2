"""The portal: a patient's or a carer's own page, in plain words, made for a phone.

``/my`` shows each record the person may see (their own, or the patients
they are proxy for): their scores over time as simple charts with the
numbers in a table beside them, the forms filled and by whom, their consent
choice and its history, their carers, and what the learning communities
they belong to have learned. Staff have no portal: ``/my`` sends them home.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop.capture import prom_log
from careloop.practice import portal
from careloop.trust.principal import Principal
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import CallerDep, RegistryDep

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


@router.get("/my", response_class=HTMLResponse)
async def my_page(request: Request, caller: CallerDep, registry: RegistryDep) -> Response:
    if not is_portal_user(caller.principal):
        return RedirectResponse("/", status_code=303)

    def gather() -> tuple[
        list[portal.CareRecord], list[portal.Learning], list[prom_log.PatientQuestionnaire]
    ]:
        records = portal.my_care(registry, caller.principal)
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
        },
    )
