"""PROM schedules: when a site invites its patients to fill a patient-reported form.

A schedule belongs to one site and one patient-reported form, in the manner
of REDCap's automated survey invitations and ImproveCareNow's pre-visit
planning. Its kind says when a PROM falls due for a patient:

- ``before_visit``: ``days`` days before each planned visit (a
  :class:`~careloop.store.models.PlannedVisit`; moving or cancelling the visit
  moves or withdraws the invitation);
- ``every_weeks``: every ``weeks`` weeks from the day the patient was
  registered at the site;
- ``after_event``: ``days`` days after each recorded event of a kind: a
  complete response of the form named ``event_kind``, or one entered for the
  REDCap event ``event_kind``.

A due PROM is e-mailed (:mod:`careloop.capture.prom_outreach`), reminded
``remind_after_days`` days later up to ``max_reminders`` times while it is not
done, and expires ``expires_after_days`` days after it fell due. A schedule's
purpose is ``direct_care`` (every patient of the site), ``quality_improvement``
or ``research`` (only patients whose consent allows that use).

Audit: adding a schedule, switching it on or off, and booking, moving or
cancelling a planned visit are each one entry (``create``/``update`` in the
categories ``prom_schedule`` and ``planned_visit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

from sqlalchemy import select

from careloop.capture.entry.views import _as_date, _patient, _site_code
from careloop.capture.event_dates import EARLIEST_EVENT_DATE
from careloop.capture.forms_store import load_form
from careloop.core.clock import utcnow
from careloop.core.errors import ErrorDetail, NotFound, PermissionDenied, ValidationFailed
from careloop.core.plain_text import shown, text_problem
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.store.models.capture import FormDefinition, PlannedVisit, PromSchedule
from careloop.trust import consent as trust_consent
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

__all__ = [
    "PlannedVisitView",
    "Purpose",
    "ScheduleKind",
    "ScheduleView",
    "add_schedule",
    "book_visit",
    "cancel_visit",
    "consent_allows",
    "link_note",
    "list_schedules",
    "move_visit",
    "set_schedule_active",
]

ScheduleKind = Literal["before_visit", "every_weeks", "after_event"]
Purpose = Literal["direct_care", "quality_improvement", "research"]

MAX_DAYS = 365
MAX_WEEKS = 104
MAX_REMINDERS = 5


@dataclass(frozen=True)
class ScheduleView:
    """A PROM schedule as the care team sees it."""

    id: int
    """The schedule's id."""
    site: str
    """The site's code."""
    form: str
    """The patient-reported form it invites to."""
    kind: ScheduleKind
    """before_visit, every_weeks or after_event."""
    days: int | None
    """Days before the visit (before_visit) or after the event (after_event)."""
    weeks: int | None
    """The interval of an every_weeks schedule."""
    event_kind: str | None
    """The form or REDCap event an after_event schedule follows."""
    remind_after_days: int
    """Days after the last e-mail before a reminder."""
    max_reminders: int
    """Reminders at most per invitation."""
    expires_after_days: int
    """Days after falling due that an invitation stops working."""
    purpose: Purpose
    """direct_care, quality_improvement or research."""
    active: bool
    """Whether it invites anyone now."""

    @property
    def timing(self) -> str:
        """The timing in words, e.g. ``7 days before each visit``."""
        if self.kind == "before_visit":
            return f"{self.days} days before each visit"
        if self.kind == "every_weeks":
            return f"every {self.weeks} weeks from registration"
        return f"{self.days} days after each {self.event_kind}"


@dataclass(frozen=True)
class PlannedVisitView:
    """A planned visit."""

    id: int
    """The visit's id."""
    patient_id: int
    """The patient."""
    site: str
    """The site's code."""
    visit_date: date
    """The day of the visit."""
    kind: str
    """What kind of visit (e.g. clinic)."""
    cancelled: bool
    """Whether it was cancelled."""


def link_note(invitation_id: int) -> str:
    """The note on each PROM link made for an invitation (how its links are found again)."""
    return f"PROM invitation {invitation_id}"


def consent_allows(patient: Patient, purpose: str) -> bool:
    """Whether ``patient``'s consent allows a PROM schedule of ``purpose`` to invite them.

    The one place this rule lives: direct care always may (a questionnaire before
    a visit is part of the patient's care); a quality-improvement schedule needs
    consent to quality improvement; a research schedule needs consent to research
    and to being contacted about it (re-contact).
    """
    if purpose == "direct_care":
        return True
    if purpose == "research":
        return trust_consent.consent_allows(patient, "research") and trust_consent.consent_allows(
            patient, "recontact"
        )
    return trust_consent.consent_allows(patient, purpose)


def _view(schedule: PromSchedule, site: str, form: str) -> ScheduleView:
    return ScheduleView(
        schedule.id,
        site,
        form,
        schedule.kind,  # type: ignore[arg-type]
        schedule.days,
        schedule.weeks,
        schedule.event_kind,
        schedule.remind_after_days,
        schedule.max_reminders,
        schedule.expires_after_days,
        schedule.purpose,  # type: ignore[arg-type]
        schedule.active,
    )


def _number(problems: list[ErrorDetail], name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        problems.append(ErrorDetail(name, f"a whole number from {low} to {high}", str(value)))


def _check_schedule(
    kind: str,
    *,
    days: int | None,
    weeks: int | None,
    event_kind: str | None,
    remind_after_days: int,
    max_reminders: int,
    expires_after_days: int,
    purpose: str,
) -> None:
    problems: list[ErrorDetail] = []
    if kind not in get_args(ScheduleKind):
        problems.append(ErrorDetail("kind", "before_visit, every_weeks or after_event", kind))
    if purpose not in get_args(Purpose):
        problems.append(
            ErrorDetail("purpose", "direct_care, quality_improvement or research", purpose)
        )
    needs = {
        "before_visit": ("days",),
        "every_weeks": ("weeks",),
        "after_event": ("days", "event_kind"),
    }.get(kind, ())
    given = {"days": days, "weeks": weeks, "event_kind": event_kind}
    for name, value in given.items():
        if name in needs and value in (None, ""):
            problems.append(ErrorDetail(name, f"a {kind} schedule needs {name}", ""))
        elif name not in needs and value not in (None, "") and kind in get_args(ScheduleKind):
            problems.append(ErrorDetail(name, f"a {kind} schedule takes no {name}", str(value)))
    _number(problems, "days", days, 0 if kind == "after_event" else 1, MAX_DAYS)
    _number(problems, "weeks", weeks, 1, MAX_WEEKS)
    _number(problems, "remind_after_days", remind_after_days, 1, MAX_DAYS)
    _number(problems, "max_reminders", max_reminders, 0, MAX_REMINDERS)
    _number(problems, "expires_after_days", expires_after_days, 1, MAX_DAYS)
    if event_kind:
        wrong = text_problem(event_kind, what="an event kind", max_length=100, required=True)
        if wrong:
            problems.append(ErrorDetail("event_kind", wrong, shown(event_kind)))
    if problems:
        raise ValidationFailed("The PROM schedule was not added.", details=problems)


def _staff_only(work: Work) -> None:
    """Schedules are the care team's: a patient's or carer's scope reaches one record only."""
    if work.scope.patient_ids is not None:
        raise PermissionDenied("PROM schedules are managed by the care team of a site.")


def _site(work: Work, code: str) -> Site:
    _staff_only(work)
    site = work.session.scalar(select(Site).where(Site.code == code.strip()))
    if site is None or not work.scope.allows_site(site.id):
        raise NotFound(f"There is no site {code!r} where you may manage PROMs. Check the code.")
    return site


def add_schedule(
    registry: Registry,
    principal: Principal,
    *,
    site: str,
    form: str,
    kind: ScheduleKind,
    days: int | None = None,
    weeks: int | None = None,
    event_kind: str | None = None,
    remind_after_days: int = 3,
    max_reminders: int = 2,
    expires_after_days: int = 14,
    purpose: Purpose = "direct_care",
) -> ScheduleView:
    """Add a PROM schedule for ``form`` at ``site`` (active at once).

    Raises:
        ValidationFailed: The timing, reminders, expiry or purpose are not valid
            (each problem named); nothing is saved.
        NotFound: No such site the principal may manage PROMs at, or no such form.
        InputError: The form is not patient-reported.
    """
    _check_schedule(
        kind,
        days=days,
        weeks=weeks,
        event_kind=event_kind,
        remind_after_days=remind_after_days,
        max_reminders=max_reminders,
        expires_after_days=expires_after_days,
        purpose=purpose,
    )
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("create", "prom_schedule", site_code=site, details={"form": form})
        place = _site(work, site)
        definition, _, _ = load_form(work.session, form)
        if not definition.patient_reported:
            raise ValidationFailed(
                "The PROM schedule was not added.",
                details=[
                    ErrorDetail(
                        "form",
                        "a patient-reported form (mark it patient_reported in its dictionary)",
                        form,
                    )
                ],
            )
        row = PromSchedule(
            site_id=place.id,
            form_id=definition.id,
            kind=kind,
            days=days,
            weeks=weeks,
            event_kind=event_kind.strip() if event_kind else None,
            remind_after_days=remind_after_days,
            max_reminders=max_reminders,
            expires_after_days=expires_after_days,
            purpose=purpose,
            active=True,
            created_by=principal.email,
        )
        work.session.add(row)
        work.session.flush()
        view = _view(row, place.code, definition.name)
        work.audit(
            "create",
            "prom_schedule",
            site_code=place.code,
            details={"schedule_id": row.id, "form": definition.name, "timing": view.timing},
        )
        return view


def list_schedules(
    registry: Registry, principal: Principal, *, site: str | None = None
) -> list[ScheduleView]:
    """The PROM schedules of the sites the principal may see records at."""
    with unit_of_work(registry, principal, "record.read") as work:
        _staff_only(work)
        query = (
            select(PromSchedule, Site.code, FormDefinition.name)
            .join(Site, Site.id == PromSchedule.site_id)
            .join(FormDefinition, FormDefinition.id == PromSchedule.form_id)
            .order_by(Site.code, PromSchedule.id)
        )
        if site is not None:
            query = query.where(Site.code == site.strip())
        return [_view(*row) for row in work.session.execute(query).all()]


def set_schedule_active(
    registry: Registry, principal: Principal, schedule_id: int, *, active: bool
) -> ScheduleView:
    """Switch a schedule on or off; off, it invites and reminds nobody.

    Raises:
        NotFound: No such schedule at a site the principal may manage PROMs at.
    """
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("update", "prom_schedule", details={"schedule_id": schedule_id})
        _staff_only(work)
        row = work.session.get(PromSchedule, schedule_id)
        if row is None:
            raise NotFound(f"There is no PROM schedule {schedule_id} that you can manage.")
        row.active = active
        code = _site_code(work, row.site_id)
        form = work.session.get(FormDefinition, row.form_id)
        work.audit(
            "update",
            "prom_schedule",
            site_code=code,
            details={"schedule_id": row.id, "active": active},
        )
        return _view(row, code, form.name if form else "?")


def _visit_view(work: Work, visit: PlannedVisit) -> PlannedVisitView:
    return PlannedVisitView(
        visit.id,
        visit.patient_id,
        _site_code(work, visit.site_id),
        visit.visit_date,
        visit.kind,
        visit.cancelled_at is not None,
    )


def _visit_date(value: date | str) -> date:
    day = _as_date(value, "visit_date")
    if day < EARLIEST_EVENT_DATE or day.year > 2200:
        raise ValidationFailed(
            "The visit was not saved.",
            details=[ErrorDetail("visit_date", "a date after 1900 (check the year)", str(day))],
        )
    return day


def book_visit(
    registry: Registry,
    principal: Principal,
    patient_id: int,
    *,
    visit_date: date | str,
    kind: str = "clinic",
) -> PlannedVisitView:
    """Book a planned visit for a patient (what ``before_visit`` schedules aim at).

    Raises:
        ValidationFailed: The date or the kind is not valid.
        NotFound: No such patient that the principal may enter records for.
    """
    day = _visit_date(visit_date)
    wrong = text_problem(kind, what="a visit kind", max_length=100, required=True)
    if wrong:
        raise ValidationFailed(
            "The visit was not saved.", details=[ErrorDetail("kind", wrong, shown(kind))]
        )
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("create", "planned_visit", details={"patient_id": patient_id})
        _staff_only(work)
        patient = _patient(work, patient_id)
        visit = PlannedVisit(
            site_id=patient.site_id,
            patient_id=patient.id,
            visit_date=day,
            kind=kind.strip(),
            created_by=principal.email,
        )
        work.session.add(visit)
        work.session.flush()
        work.audit(
            "create",
            "planned_visit",
            patient=patient,
            site_code=_site_code(work, patient.site_id),
            details={"visit_id": visit.id, "visit_date": day.isoformat()},
        )
        return _visit_view(work, visit)


def _change_visit(
    registry: Registry,
    principal: Principal,
    visit_id: int,
    *,
    new_date: date | None,
    cancel: bool,
) -> PlannedVisitView:
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("update", "planned_visit", details={"visit_id": visit_id})
        _staff_only(work)
        visit = work.session.get(PlannedVisit, visit_id)
        if visit is None:
            raise NotFound(f"There is no planned visit {visit_id} that you can change.")
        details: dict[str, object] = {"visit_id": visit.id}
        if new_date is not None:
            details["moved_from"] = visit.visit_date.isoformat()
            details["visit_date"] = new_date.isoformat()
            visit.visit_date = new_date
        if cancel:
            visit.cancelled_at = utcnow()
            details["cancelled"] = True
        patient = _patient(work, visit.patient_id)
        work.audit(
            "update",
            "planned_visit",
            patient=patient,
            site_code=_site_code(work, visit.site_id),
            details=details,
        )
        work.session.flush()
        return _visit_view(work, visit)


def move_visit(
    registry: Registry, principal: Principal, visit_id: int, *, visit_date: date | str
) -> PlannedVisitView:
    """Move a planned visit to another day (an invitation for the old day is withdrawn).

    Raises:
        ValidationFailed: The date is not valid.
        NotFound: No such visit that the principal may change.
    """
    return _change_visit(
        registry, principal, visit_id, new_date=_visit_date(visit_date), cancel=False
    )


def cancel_visit(registry: Registry, principal: Principal, visit_id: int) -> PlannedVisitView:
    """Cancel a planned visit (its open invitation is withdrawn at the next run).

    Raises:
        NotFound: No such visit that the principal may change.
    """
    return _change_visit(registry, principal, visit_id, new_date=None, cancel=True)
