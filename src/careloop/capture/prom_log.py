"""The PROM invitation log, completion per site and month, and a patient's questionnaires.

The log (:func:`invitation_log`) is REDCap's survey invitation log: one row
per invitation with its schedule, patient, due day, channel, reminders, and
whether it was done, expired or withdrawn. Reading it names patients, so it
is audited (``read``/``prom_invitation``, with the number of rows).

Completion (:func:`completion_by_month`) counts, per site and month in which
invitations fell due, the invitations that are settled (done, or expired
undone) and those done before they expired; the rate is done over settled.
Open invitations are counted apart (``pending``) and withdrawn ones (visit
cancelled or moved, form retired, consent) are left out: they were never
expected to be done. :func:`completion_chart` draws a site's months as a
p-chart (careloop.analysis.spc, as qicharts2's ``qic(chart = "p")``).

:func:`patient_questionnaires` is what a patient (or their carer) sees on
``/my``: the PROMs due now and the ones done, never anyone else's.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pandas as pd
from sqlalchemy import select

from careloop.analysis.spc import SpcChart, qic
from careloop.capture.prom_schedules import _staff_only, link_note
from careloop.capture.proms import MAX_LINK_HOURS, create_prom_link
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import ErrorDetail, NotFound, ValidationFailed
from careloop.core.i18n import N_
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.store.models.capture import (
    FormDefinition,
    PromInvitation,
    PromSchedule,
    Response,
)
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

__all__ = [
    "CompletionMonth",
    "InvitationLogRow",
    "PatientQuestionnaire",
    "completion_by_month",
    "completion_chart",
    "invitation_log",
    "open_questionnaire",
    "patient_questionnaires",
]


@dataclass(frozen=True)
class InvitationLogRow:
    """One invitation of the log."""

    id: int
    """The invitation's id."""
    site: str
    """The site's code."""
    schedule_id: int
    """The schedule that made it."""
    form: str
    """The form it invites to."""
    patient_id: int
    """The patient's id."""
    patient_local_id: str
    """The patient's local id at the site."""
    due_date: date
    """The day it fell due."""
    expires_at: datetime
    """When it stops (UTC)."""
    sent_at: datetime | None
    """When the first e-mail went (None: not sent)."""
    channel: str
    """smtp, outbox, no_address, failed or pending."""
    reminders_sent: int
    """Reminders sent."""
    failures: int
    """Failed sends."""
    completed_at: datetime | None
    """When the form was filled."""
    closed_reason: str | None
    """expired, visit_cancelled, visit_moved, form_retired or consent."""

    @property
    def state(self) -> str:
        """done, expired, withdrawn or open."""
        if self.completed_at is not None:
            return "done"
        if self.closed_reason == "expired":
            return "expired"
        return "withdrawn" if self.closed_reason else "open"


@dataclass(frozen=True)
class CompletionMonth:
    """Completion of PROM invitations at one site in one month (by due day)."""

    site: str
    """The site's code."""
    month: str
    """The month, YYYY-MM."""
    invited: int
    """Invitations that fell due and are settled (done or expired): the denominator."""
    completed: int
    """Of those, done before they expired: the numerator."""
    pending: int
    """Invitations still open (not counted above)."""
    no_address: int
    """Settled invitations that could not be e-mailed (no address)."""

    @property
    def rate(self) -> float | None:
        """completed / invited (None with no settled invitation)."""
        return self.completed / self.invited if self.invited else None


@dataclass(frozen=True)
class PatientQuestionnaire:
    """A PROM due or done, as the patient sees it."""

    invitation_id: int
    """The invitation's id."""
    patient_id: int
    """Whose record it is for."""
    form: str
    """The form's name (for the fill-in page)."""
    title: str
    """The form's title."""
    due_date: date
    """The day it fell due."""
    until: datetime
    """When it stops (UTC)."""
    done_at: datetime | None
    """When it was filled (None: still to do)."""


def _month(value: str | None) -> tuple[date, date] | None:
    if value is None:
        return None
    try:
        first = date.fromisoformat(f"{value.strip()}-01")
    except ValueError:
        raise ValidationFailed(
            "The month is not valid.",
            details=[ErrorDetail("month", "a month as YYYY-MM, e.g. 2026-11", value)],
        ) from None
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, after


def _log_query(site: str | None, month: str | None):  # type: ignore[no-untyped-def]
    query = (
        select(PromInvitation, Site.code, FormDefinition.name, Patient.local_id)
        .join(Site, Site.id == PromInvitation.site_id)
        .join(PromSchedule, PromSchedule.id == PromInvitation.schedule_id)
        .join(FormDefinition, FormDefinition.id == PromSchedule.form_id)
        .join(Patient, Patient.id == PromInvitation.patient_id)
        .order_by(Site.code, PromInvitation.due_date, PromInvitation.id)
    )
    if site is not None:
        query = query.where(Site.code == site.strip())
    bounds = _month(month)
    if bounds is not None:
        query = query.where(
            PromInvitation.due_date >= bounds[0], PromInvitation.due_date < bounds[1]
        )
    return query


def _rows(work: Work, site: str | None, month: str | None) -> list[InvitationLogRow]:
    return [
        InvitationLogRow(
            inv.id,
            code,
            inv.schedule_id,
            form,
            inv.patient_id,
            local_id,
            inv.due_date,
            as_utc(inv.expires_at),
            as_utc(inv.sent_at) if inv.sent_at else None,
            inv.channel,
            inv.reminders_sent,
            inv.failures,
            as_utc(inv.completed_at) if inv.completed_at else None,
            inv.closed_reason,
        )
        for inv, code, form, local_id in work.session.execute(_log_query(site, month)).all()
    ]


def invitation_log(
    registry: Registry,
    principal: Principal,
    *,
    site: str | None = None,
    month: str | None = None,
) -> list[InvitationLogRow]:
    """The invitation log of the sites the principal may read records at (audited).

    Raises:
        ValidationFailed: The month is not YYYY-MM.
        PermissionDenied: A patient or carer (they see :func:`patient_questionnaires`).
    """
    _month(month)
    with unit_of_work(registry, principal, "record.read") as work:
        _staff_only(work)
        rows = _rows(work, site, month)
        work.audit(
            "read",
            "prom_invitation",
            site_code=site,
            details={"rows": len(rows), "month": month},
        )
        return rows


def completion_by_month(
    registry: Registry, principal: Principal, *, site: str | None = None
) -> list[CompletionMonth]:
    """Invited, completed before expiry and the rate, per site and month (aggregates only)."""
    with unit_of_work(registry, principal, "record.read") as work:
        _staff_only(work)
        return summarise(_rows(work, site, None))


def summarise(rows: list[InvitationLogRow]) -> list[CompletionMonth]:
    """Completion per site and month of log rows (see :class:`CompletionMonth`)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        key = (row.site, row.due_date.strftime("%Y-%m"))
        cell = counts.setdefault(key, [0, 0, 0, 0])
        state = row.state
        if state == "open":
            cell[2] += 1
        elif state in ("done", "expired"):
            cell[0] += 1
            cell[1] += state == "done"
            cell[3] += row.channel == "no_address"
    return [CompletionMonth(s, m, *cell) for (s, m), cell in sorted(counts.items())]


def completion_chart(months: list[CompletionMonth], *, site: str) -> SpcChart:
    """A p-chart of one site's monthly completion (months with settled invitations).

    Raises:
        ValidationFailed: The site has no month with a settled invitation.
    """
    mine = [m for m in months if m.site == site and m.invited]
    if not mine:
        raise ValidationFailed(
            "There is no completion to chart yet.",
            details=[ErrorDetail("site", "a site with settled PROM invitations", site)],
        )
    frame = pd.DataFrame(
        {
            "month": pd.to_datetime([f"{m.month}-01" for m in mine]),
            "completed": [m.completed for m in mine],
            "invited": [m.invited for m in mine],
        }
    )
    with warnings.catch_warnings():
        # Few months are the rule at first; the chart says so itself.
        warnings.simplefilter("ignore")
        return qic(
            "completed",
            x="month",
            n="invited",
            data=frame,
            chart="p",
            multiply=100,
            title=f"PROM completion at {site}",
            ylab="% done before expiry",
        )


def patient_questionnaires(
    registry: Registry, principal: Principal, *, now: datetime | None = None
) -> list[PatientQuestionnaire]:
    """The PROMs due now and those done, for the patient or carer signed in (own records only).

    Due: open and not expired. Done: filled through an invitation, newest first.
    """
    moment = as_utc(now) if now is not None else utcnow()
    if not principal.scope_for("record.read").patient_ids:
        # Staff see the log, not a portal list; a login with no record linked yet has none.
        return []
    with unit_of_work(registry, principal, "record.read") as work:
        assert work.scope.patient_ids is not None
        rows = work.session.execute(
            select(PromInvitation, FormDefinition.name, FormDefinition.title)
            .join(PromSchedule, PromSchedule.id == PromInvitation.schedule_id)
            .join(FormDefinition, FormDefinition.id == PromSchedule.form_id)
            .where(PromInvitation.patient_id.in_(work.scope.patient_ids))
            .order_by(PromInvitation.due_date.desc(), PromInvitation.id.desc())
        ).all()
        out = [
            PatientQuestionnaire(
                inv.id,
                inv.patient_id,
                name,
                title,
                inv.due_date,
                as_utc(inv.expires_at),
                as_utc(inv.completed_at) if inv.completed_at else _filled_since(work, inv),
            )
            for inv, name, title in rows
            if inv.completed_at is not None
            or (inv.closed_at is None and as_utc(inv.expires_at) > moment)
        ]
        if out:
            work.audit(
                "read",
                "prom_invitation",
                details={"rows": len(out), "patients": sorted({q.patient_id for q in out})},
            )
        return out


def _filled_since(work: Work, invitation: PromInvitation) -> datetime | None:
    """When the form was filled since the invitation fell due, before the job has seen it.

    The job marks it done at its next run; the patient should not see it as still due
    meanwhile. Midnight UTC of the due day is near enough here (the job uses the site's zone).
    """
    schedule = work.session.get(PromSchedule, invitation.schedule_id)
    if schedule is None:
        return None
    since = datetime.combine(invitation.due_date, time(0), tzinfo=UTC)
    filled = work.session.scalar(
        select(Response.created_at)
        .where(
            Response.patient_id == invitation.patient_id,
            Response.form_id == schedule.form_id,
            Response.status == "complete",
            Response.created_at >= since,
            Response.created_at < invitation.expires_at,
            Response.event_date >= invitation.due_date,  # not an older one imported today
        )
        .order_by(Response.created_at)
        .limit(1)
    )
    return as_utc(filled) if filled is not None else None


def open_questionnaire(
    registry: Registry, principal: Principal, invitation_id: int, *, now: datetime | None = None
) -> str:
    """A fresh single-use link to a questionnaire due for the signed-in patient or carer.

    Returns the link's secret, which the web app swaps for a short session at
    once (it never shows it in an address). The link works until the request
    expires, like the e-mailed one, and is made with the caller's own rights:
    a patient for their own record, a carer who may fill in forms for them.

    Raises:
        NotFound: No such request open for the caller's records (audited), or
            it was filled in or has expired (the message says so).
    """
    moment = as_utc(now) if now is not None else utcnow()
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("create", "prom_link", details={"invitation_id": invitation_id})
        allowed = work.scope.patient_ids
        found = work.session.execute(
            select(PromInvitation, FormDefinition.name)
            .join(PromSchedule, PromSchedule.id == PromInvitation.schedule_id)
            .join(FormDefinition, FormDefinition.id == PromSchedule.form_id)
            .where(PromInvitation.id == invitation_id)
        ).first()
        if found is None or allowed is None or found[0].patient_id not in allowed:
            raise NotFound(N_("We could not find that questionnaire. Please ask your care team."))
        invitation, form = found
        if (
            invitation.completed_at is not None
            or invitation.closed_at is not None
            or as_utc(invitation.expires_at) <= moment
            or _filled_since(work, invitation) is not None
        ):
            raise NotFound(N_("This questionnaire is done or closed. Thank you."))
        hours = (as_utc(invitation.expires_at) - moment).total_seconds() / 3600
        patient_id, note = invitation.patient_id, link_note(invitation.id)
    created = create_prom_link(
        registry,
        principal,
        form,
        patient_id=patient_id,
        expires_in_hours=max(1, min(MAX_LINK_HOURS, math.ceil(hours))),
        note=note,
    )
    return created.token
