"""``/api/measures/{measure_id}/notes``: notes and phase starts on a measure's charts.

Thin routes: :func:`careloop.practice.feedback.dashboards.add_note` checks the
policy (``measure.annotate``: a site lead or analyst for their sites, a network
analyst for the network's chart), validates and audits; reading the notes needs
only the dashboards (every staff role).
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from pydantic import Field

from careloop.practice.feedback import dashboards as dashboard
from careloop.warehouse.connection import warehouse_opener
from careloop.web.openapi import Short, Strict, errors
from careloop.web.security import ActorDep, SettingsDep

router = APIRouter(prefix="/api/measures", tags=["measures"])


class NoteCreate(Strict):
    period: date = Field(description="A day in the month the note marks (e.g. 2023-04-01).")
    text: Short = Field(description="What happened, in a line.")
    site: Short = Field("", description="The site whose chart it goes on; empty: the network's.")
    starts_phase: bool = Field(
        False, description="Recalculate the centre line and limits from this month on."
    )


@router.get("/{measure_id}/notes", responses=errors(401, 403, 404, 422))
def notes(measure_id: str, actor: ActorDep) -> list[dashboard.Note]:
    """The notes on the measure's charts (the network's and every site's), by period."""
    dashboard.require_dashboards(actor.principal)
    return dashboard.chart_notes(actor.registry, measure_id)


@router.post("/{measure_id}/notes", status_code=201, responses=errors(400, 401, 403, 404, 422))
def add_note(
    measure_id: str, body: NoteCreate, actor: ActorDep, settings: SettingsDep
) -> dashboard.Note:
    """Add a note (and maybe start a new phase) to the network's or a site's chart."""
    stored = dashboard.stored_results(warehouse_opener(settings))
    return actor.call(
        dashboard.add_note,
        measure_id,
        known_measures=stored.measure_ids,
        site=body.site,
        period=body.period,
        text=body.text,
        starts_phase=body.starts_phase,
    )
