"""The PROM outreach API: schedules, planned visits, the send-due job, the log, completion.

The care team of a site (``record.write`` there) manages schedules and visits
and may run the job for its sites; the log and completion need ``record.read``
at the site. A patient or carer reads their own questionnaires at
``/api/my/questionnaires``. Every route calls one service of
careloop.capture, which checks the policy and audits.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from careloop.capture import prom_log, prom_outreach, prom_schedules
from careloop.capture.prom_schedules import Purpose, ScheduleKind
from careloop.web.openapi import IdField, RecordId, Short, Strict, errors
from careloop.web.security import ActorDep, public_address

router = APIRouter(prefix="/api")

SiteQuery = Annotated[str | None, Query(max_length=32, description="A site's code.")]


class ScheduleCreate(Strict):
    site: Short
    form: Short
    kind: ScheduleKind
    days: int | None = Field(default=None, description="before_visit and after_event: days.")
    weeks: int | None = Field(default=None, description="every_weeks: the interval in weeks.")
    event_kind: Short | None = Field(default=None, description="after_event: form or event.")
    remind_after_days: int = 3
    max_reminders: int = 2
    expires_after_days: int = 14
    purpose: Purpose = "direct_care"


class ScheduleActive(Strict):
    active: bool


class VisitCreate(Strict):
    patient_id: IdField
    visit_date: date
    kind: Short = "clinic"


class VisitMove(Strict):
    visit_date: date


class SendDue(Strict):
    site: Short | None = None


@router.get("/outreach/schedules", tags=["proms"], responses=errors(401, 403, 422))
def list_schedules(actor: ActorDep, site: SiteQuery = None) -> list[dict[str, Any]]:
    """The PROM schedules of the sites one may read records at."""
    return [
        {**asdict(s), "timing": s.timing}
        for s in actor.call(prom_schedules.list_schedules, site=site)
    ]


@router.post(
    "/outreach/schedules",
    status_code=201,
    tags=["proms"],
    responses=errors(400, 401, 403, 404, 422),
)
def add_schedule(body: ScheduleCreate, actor: ActorDep) -> dict[str, Any]:
    """Add a PROM schedule for a patient-reported form at a site."""
    made = actor.call(prom_schedules.add_schedule, **body.model_dump())
    return {**asdict(made), "timing": made.timing}


@router.put(
    "/outreach/schedules/{schedule_id}/active",
    tags=["proms"],
    responses=errors(400, 401, 403, 404, 422),
)
def set_active(schedule_id: RecordId, body: ScheduleActive, actor: ActorDep) -> dict[str, Any]:
    """Pause or resume a schedule."""
    done = actor.call(prom_schedules.set_schedule_active, schedule_id, active=body.active)
    return {**asdict(done), "timing": done.timing}


@router.post(
    "/planned-visits", status_code=201, tags=["proms"], responses=errors(400, 401, 403, 404, 422)
)
def book_visit(body: VisitCreate, actor: ActorDep) -> prom_schedules.PlannedVisitView:
    """Book a planned visit (what pre-visit PROMs aim at)."""
    return actor.call(
        prom_schedules.book_visit, body.patient_id, visit_date=body.visit_date, kind=body.kind
    )


@router.put(
    "/planned-visits/{visit_id}/date", tags=["proms"], responses=errors(400, 401, 403, 404, 422)
)
def move_visit(
    visit_id: RecordId, body: VisitMove, actor: ActorDep
) -> prom_schedules.PlannedVisitView:
    """Move a planned visit to another day."""
    return actor.call(prom_schedules.move_visit, visit_id, visit_date=body.visit_date)


@router.delete("/planned-visits/{visit_id}", tags=["proms"], responses=errors(401, 403, 404, 422))
def cancel_visit(visit_id: RecordId, actor: ActorDep) -> prom_schedules.PlannedVisitView:
    """Cancel a planned visit (its open invitation is withdrawn at the next run)."""
    return actor.call(prom_schedules.cancel_visit, visit_id)


@router.post("/outreach/send-due", tags=["proms"], responses=errors(400, 401, 403, 404, 422))
def send_due(body: SendDue, request: Request, actor: ActorDep) -> dict[str, Any]:
    """Run the outreach job now for one's sites (what the timer runs)."""
    run = actor.call(
        prom_outreach.send_due,
        request.app.state.mailer,
        link_base=public_address(request),
        site=body.site,
    )
    return asdict(run)


@router.get("/outreach/invitations", tags=["proms"], responses=errors(401, 403, 422))
def invitation_log(
    actor: ActorDep,
    site: SiteQuery = None,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM")] = None,
) -> list[dict[str, Any]]:
    """The invitation log (names patients by id and local id; audited)."""
    rows = actor.call(prom_log.invitation_log, site=site, month=month)
    return [{**asdict(r), "state": r.state} for r in rows]


@router.get("/outreach/completion", tags=["proms"], responses=errors(401, 403, 422))
def completion(actor: ActorDep, site: SiteQuery = None) -> list[dict[str, Any]]:
    """PROM completion per site and month: settled invitations, done before expiry, rate."""
    return [
        {**asdict(m), "rate": m.rate} for m in actor.call(prom_log.completion_by_month, site=site)
    ]


@router.get("/my/questionnaires", tags=["proms"], responses=errors(401))
def my_questionnaires(actor: ActorDep) -> list[prom_log.PatientQuestionnaire]:
    """A patient's or carer's PROMs due now and done (their own records only)."""
    return actor.call(prom_log.patient_questionnaires)
