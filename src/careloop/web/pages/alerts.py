"""A person's alerts in the app: the list, newest first, and marking them read.

The alerts themselves are made by ``careloop alerts send-due``
(:mod:`careloop.practice.feedback.alerts`); the layout's navigation shows how
many are unread. Marking read is an ordinary form with the session's CSRF
token, checked with the session.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from careloop.practice.feedback.alerts import alerts_of, mark_read
from careloop.web.openapi import RecordId
from careloop.web.pages.community import fmt_date
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import CallerDep, RegistryDep

router = APIRouter(include_in_schema=False)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, caller: CallerDep, registry: RegistryDep) -> Response:
    return render(
        request,
        "alerts.html",
        {
            **page_context(caller),
            "alerts": alerts_of(registry, caller.principal),
            "fmt_date": fmt_date,
            "marked": request.query_params.get("marked") == "1",
        },
    )


@router.post("/alerts/read")
def mark_all_read(caller: CallerDep, registry: RegistryDep) -> Response:
    mark_read(registry, caller.principal, None, now=datetime.now(UTC))
    return RedirectResponse("/alerts?marked=1", status_code=303)


@router.post("/alerts/{alert_id}/read")
def mark_one_read(alert_id: RecordId, caller: CallerDep, registry: RegistryDep) -> Response:
    mark_read(registry, caller.principal, [alert_id], now=datetime.now(UTC))
    return RedirectResponse("/alerts?marked=1", status_code=303)
