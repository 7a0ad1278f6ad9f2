"""The care team's PROM outreach page: schedules, completion per site and month, the log.

``/outreach`` lists the schedules of the sites one may read records at, the
completion of their invitations per site and month (with a p-chart per site
at ``/outreach/completion/<site>/chart.svg``, the numbers in a table beside
it), and the invitation log of one month. Patients and carers are sent to
their own page, where their questionnaires are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop import charts
from careloop.capture import prom_log, prom_schedules
from careloop.web.pages.portal import is_portal_user
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import CallerDep, RegistryDep

router = APIRouter(include_in_schema=False)


@router.get("/outreach", response_class=HTMLResponse)
async def proms_page(
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    if is_portal_user(caller.principal):
        return RedirectResponse("/my", status_code=303)
    shown = month or datetime.now(UTC).strftime("%Y-%m")

    def gather() -> tuple[
        list[prom_schedules.ScheduleView],
        list[prom_log.CompletionMonth],
        list[prom_log.InvitationLogRow],
    ]:
        return (
            prom_schedules.list_schedules(registry, caller.principal),
            prom_log.completion_by_month(registry, caller.principal),
            prom_log.invitation_log(registry, caller.principal, month=shown),
        )

    schedules, months, log = await run_in_threadpool(gather)
    return render(
        request,
        "proms.html",
        {
            **page_context(caller),
            "schedules": schedules,
            "months": months,
            "charted": sorted({m.site for m in months if m.invited}),
            "log": log,
            "month": shown,
        },
    )


@router.get("/outreach/completion/{site}/chart.svg")
async def completion_chart(site: str, caller: CallerDep, registry: RegistryDep) -> Response:
    def draw() -> str:
        months = prom_log.completion_by_month(registry, caller.principal, site=site)
        return charts.spc.svg(prom_log.completion_chart(months, site=site))

    return Response(await run_in_threadpool(draw), media_type="image/svg+xml")
