"""Notes and phase starts people add to a measure's chart, and who may add them.

A site lead adds them to their sites' charts, an analyst to the charts of the
sites they serve; the network's chart takes them from a network analyst
(an installation-wide membership). That is ``measure.annotate`` in
:mod:`careloop.trust.policy`. Notes hold no patient data: every staff role
sees them on the charts. Each note added is audited.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from careloop.core.errors import ErrorDetail, PermissionDenied, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import ChartNote, Site
from careloop.trust.policy import grants
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work

NOTE_MAX = 300
"""The longest note, in characters: a line on a chart, not a report."""
ACTION = "measure.annotate"


@dataclass(frozen=True)
class Note:
    """A note on a measure's chart."""

    id: int
    """The note's id."""
    measure_id: str
    """The measure whose charts show it."""
    site: str
    """The site code whose chart it belongs to; ``""`` for the network's chart."""
    period_start: date
    """First day of the month it marks."""
    text: str
    """What happened, in a line."""
    starts_phase: bool
    """Whether the chart's centre line and limits start again from this period."""
    created_by: str
    """Who added it (e-mail)."""
    created_at: datetime
    """When."""


def may_annotate(principal: Principal, site: str = "") -> bool:
    """Whether the principal may add a note to the chart of ``site`` (``""``: the network)."""
    if principal.is_operator:
        return True
    for g in principal.grants:
        if grants(g.role, ACTION) is None:
            continue
        if g.site_code is None or (site and g.site_code == site):
            return True
    return False


def annotatable_sites(principal: Principal, sites: Collection[str]) -> tuple[str, ...]:
    """Of ``""`` (the network) and ``sites``, the charts the principal may add notes to."""
    return tuple(s for s in ("", *sites) if may_annotate(principal, s))


def _checked(
    measure_id: str, known: Collection[str], period: date | None, text: str
) -> tuple[date, str]:
    problems = []
    if measure_id not in known:
        problems.append(
            ErrorDetail("measure", f"There is no measure {measure_id!r} with results.", measure_id)
        )
    if period is None:
        problems.append(
            ErrorDetail("period", "Choose the month the note marks, e.g. 2023-04.", None)
        )
    cleaned = " ".join(text.split())
    if not cleaned:
        problems.append(ErrorDetail("text", "Write what happened, in a line.", None))
    elif len(cleaned) > NOTE_MAX:
        problems.append(
            ErrorDetail(
                "text", f"Keep the note to {NOTE_MAX} characters (it has {len(cleaned)}).", None
            )
        )
    if problems or period is None:
        raise ValidationFailed("The note is not valid; nothing was recorded.", problems)
    return period.replace(day=1), cleaned


def add_note(
    registry: Registry,
    principal: Principal,
    measure_id: str,
    *,
    known_measures: Collection[str],
    site: str = "",
    period: date | None,
    text: str,
    starts_phase: bool = False,
) -> Note:
    """Record a note (and maybe a new phase) on the chart of ``site`` (``""``: the network).

    Raises:
        ValidationFailed: unknown measure, no period, or an empty or too long text.
        PermissionDenied: the principal may not annotate that chart (audited).
    """
    code = site.strip().upper()
    with unit_of_work(registry, principal, ACTION) as work:
        details = {"measure": measure_id, "starts_phase": starts_phase}
        work.expect(ACTION, "measure_chart", site_code=code or None, details=details)
        if not may_annotate(principal, code):
            where = f"site {code}'s chart" if code else "the network's chart"
            raise PermissionDenied(
                f"Your role ({principal.role_label() or 'none'}) may not add notes to {where}; "
                "a site lead or analyst of that site (a network analyst for the network) may."
            )
        period_start, cleaned = _checked(measure_id, known_measures, period, text)
        site_id = None
        if code:
            site_id = work.session.scalar(select(Site.id).where(Site.code == code))
            if site_id is None:
                raise ValidationFailed(
                    "The note is not valid; nothing was recorded.",
                    [ErrorDetail("site", f"There is no site {code!r}.", code)],
                )
        row = ChartNote(
            measure_id=measure_id,
            site_id=site_id,
            period_start=period_start,
            text=cleaned,
            starts_phase=starts_phase,
            created_by=principal.email,
        )
        work.session.add(row)
        work.session.flush()
        work.audit(
            ACTION,
            "measure_chart",
            site_code=code or None,
            details={**details, "note": row.id, "period": period_start.isoformat()},
        )
        return _note(row, code)


def _note(row: ChartNote, site: str) -> Note:
    return Note(
        row.id,
        row.measure_id,
        site,
        row.period_start,
        row.text,
        row.starts_phase,
        row.created_by,
        row.created_at,
    )


def chart_notes(registry: Registry, measure_id: str | None = None) -> list[Note]:
    """The notes on a measure's charts (every measure's when None), oldest period first.

    Titles and dates with no patient data, as deployments and learning cycles are:
    any chart of the measure may show them.
    """
    with registry.read_transaction() as session:
        query = select(ChartNote, Site.code).outerjoin(Site, Site.id == ChartNote.site_id)
        if measure_id is not None:
            query = query.where(ChartNote.measure_id == measure_id)
        rows = session.execute(query.order_by(ChartNote.period_start, ChartNote.id)).all()
        return [_note(row, code or "") for row, code in rows]
