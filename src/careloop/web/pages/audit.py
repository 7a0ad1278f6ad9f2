"""The auditor's page: chain status, a filtered, paged trail, CSV export, knowledge decisions.

The filter is a GET form, so a filtered view is a URL an auditor can share.
Authorisation and the audit entry of the view happen in careloop.trust.auditing;
this module only turns the query string into an :class:`AuditQuery` and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, cast, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from careloop.core.errors import ErrorDetail, InputError
from careloop.trust.audit_search import AuditQuery, OutcomeFilter, audit_row
from careloop.trust.auditing import ChainStatusCache, audit_export, audit_overview
from careloop.web.pages.rendering import form_state, page_context, render
from careloop.web.security import CallerDep, RegistryDep

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
FILTERS = ("since", "until", "user", "action", "category", "site", "outcome", "patient")
OUTCOME_CHOICES = (
    ("", "Any"),
    ("success", "Done"),
    ("refused", "Refused"),
    ("failure", "Failed"),
)

Text = Annotated[str, Query(max_length=254)]


def _moment(name: str, text: str, *, end_of_day: bool) -> datetime | None:
    """A date (YYYY-MM-DD) or an ISO date and time, in UTC; a date ``until`` includes that day."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise InputError(
            f"'{name}' is not a date.",
            details=[ErrorDetail(name, f"{text!r} is not a date: write it as YYYY-MM-DD.")],
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(name: str, text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise InputError(
            f"'{name}' must be an entry number.",
            details=[ErrorDetail(name, f"{text!r} is not an entry number; use the page links.")],
        )
    return int(text)


def query_from(entered: dict[str, str]) -> AuditQuery:
    """The filter typed into the form (raises InputError naming the field)."""
    outcome = entered["outcome"].strip() or None
    if outcome is not None and outcome not in get_args(OutcomeFilter):
        raise InputError(
            "'outcome' is not one of the choices.",
            details=[ErrorDetail("outcome", "Choose done, refused or failed.", outcome)],
        )

    def text(name: str) -> str | None:
        return entered[name].strip() or None

    return AuditQuery(
        since=_moment("since", entered["since"], end_of_day=False),
        until=_moment("until", entered["until"], end_of_day=True),
        user=text("user"),
        action=text("action"),
        category=text("category"),
        site=text("site"),
        outcome=cast(OutcomeFilter | None, outcome),
        patient=text("patient"),
    )


def _chain_cache(request: Request) -> ChainStatusCache:
    cache: ChainStatusCache = request.app.state.audit_chain
    return cache


def _link(path: str, entered: dict[str, str], **extra: int) -> str:
    params = {k: v for k, v in entered.items() if v} | {k: str(v) for k, v in extra.items()}
    return f"{path}?{urlencode(params)}" if params else path


@dataclass
class _Filter:
    """The filter fields as typed: the query string of ``/audit`` and ``/audit.csv``."""

    since: Text = ""
    until: Text = ""
    user: Text = ""
    action: Text = ""
    category: Text = ""
    site: Text = ""
    outcome: Text = ""
    patient: Text = ""

    def entered(self) -> dict[str, str]:
        """The fields by name, in the order of FILTERS."""
        return {name: getattr(self, name) for name in FILTERS}


FilterDep = Annotated[_Filter, Depends()]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
    typed: FilterDep,
    before: Text = "",
    after: Text = "",
) -> Response:
    entered = typed.entered()
    context = {**page_context(caller), "outcomes": OUTCOME_CHOICES, "page_size": PAGE_SIZE}
    try:
        overview = audit_overview(
            registry,
            caller.principal,
            query_from(entered),
            _chain_cache(request),
            before=_number("before", before),
            after=_number("after", after),
            limit=PAGE_SIZE,
        )
    except InputError as error:
        state = form_state(request, entered, error)
        return render(request, "audit.html", {**context, **state, "overview": None}, 422)
    page = overview.page
    return render(
        request,
        "audit.html",
        {
            **context,
            **form_state(request, entered),
            "overview": overview,
            "rows": [audit_row(e) for e in page.entries],
            "older": _link("/audit", entered, before=page.older) if page.older else None,
            "newer": _link("/audit", entered, after=page.newer) if page.newer else None,
            "export": _link("/audit.csv", entered),
            "filtered": any(entered.values()),
        },
    )


@router.get("/audit.csv")
def audit_csv(
    caller: CallerDep,
    registry: RegistryDep,
    typed: FilterDep,
) -> Response:
    """The entries of the current filter as a CSV download, newest first (streamed)."""
    chunks = audit_export(registry, caller.principal, query_from(typed.entered()))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="careloop-audit-{stamp}.csv"'},
    )
