"""PROM outreach: the job that invites, reminds and expires, and the invitation log.

:func:`send_due` is run by a timer (``careloop prom send-due``, e.g. hourly).
Each run, for the sites in the caller's scope:

1. marks invitations done when the patient has filled the form since the
   invitation (through its link, the portal or the care team's entry page);
2. withdraws open invitations whose occasion went away: the visit was
   cancelled or moved (a moved visit gets a new invitation for its new day),
   the form is no longer patient-reported, or the patient's consent no
   longer allows the schedule's purpose;
3. marks invitations expired once their time is up;
4. creates the invitations that fell due (one per schedule, patient and
   occasion: a second run, or two runs at once, invite nobody twice);
5. e-mails new invitations and reminders, and retries failed sends.

The e-mail carries no clinical data: no form name, no answers, no scores, no
diagnosis, only the care team's name, the visit day for a pre-visit PROM and
a personal, single-use link (:class:`~careloop.store.models.PromLink`) that
works until the invitation expires. A reminder carries a fresh link; the
first one keeps working. A patient with no e-mail address (no login of
their own and no carer with one) is logged as ``no_address``: the PROM is
still due on their portal page and in the care team's log, and it is sent
as soon as an address exists.

The log, the completion per site and month and the patient's own list are
in :mod:`careloop.capture.prom_log`.

Audit: each e-mail sent is ``create``/``prom_invitation``; each reminder is
``update``/``prom_invitation`` (``details.reminder``); each expiry or
withdrawal is ``update``/``prom_invitation`` (``details.closed``); a failed
send is the same entry with the outcome ``failure``. The details hold the
invitation and schedule ids and the channel, never answers or form names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select, update

from careloop.capture.prom_schedules import _staff_only, consent_allows, link_note
from careloop.capture.proms import PROM_TOKEN_PREFIX
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import CareloopError, InputError, NotFound
from careloop.core.i18n import DEFAULT_LANGUAGE, N_, long_date, translator
from careloop.core.ids import secret_token, sha256_hex
from careloop.core.mail import Mailer
from careloop.store.database import Registry
from careloop.store.models import CarerLink, Patient, Site, User
from careloop.store.models.capture import (
    FormDefinition,
    PlannedVisit,
    PromInvitation,
    PromLink,
    PromSchedule,
    Response,
)
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

__all__ = ["OutreachRun", "send_due"]

Channel = Literal["pending", "smtp", "outbox", "no_address", "failed"]


@dataclass
class OutreachRun:
    """What one run of :func:`send_due` did (counts of invitations)."""

    created: int = 0
    """Invitations that fell due and were logged."""
    sent: int = 0
    """First e-mails handed on (SMTP or outbox)."""
    reminded: int = 0
    """Reminders handed on."""
    completed: int = 0
    """Invitations found done since the last run."""
    expired: int = 0
    """Invitations whose time ran out."""
    withdrawn: int = 0
    """Invitations withdrawn (visit cancelled or moved, form retired, consent)."""
    no_address: int = 0
    """Invitations logged without an address to send to."""
    failed: int = 0
    """Sends that failed (retried at the next run)."""
    skipped_consent: int = 0
    """Due PROMs not offered because consent does not allow the schedule's purpose."""
    failures: list[str] = field(default_factory=list)
    """Why sends failed (the mail server's answer), one line each."""


@dataclass(frozen=True)
class _Due:
    schedule_id: int
    site_id: int
    patient_id: int
    occasion: str
    due_date: date
    occasion_date: date | None
    expires_at: datetime


def _zone(site: Site) -> tzinfo:
    try:
        return ZoneInfo(site.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _start_of(day: date, site: Site) -> datetime:
    """Midnight at the start of ``day`` in the site's time zone, as UTC."""
    return datetime.combine(day, time(0), tzinfo=_zone(site)).astimezone(UTC)


def _today(site: Site, now: datetime) -> date:
    return now.astimezone(_zone(site)).date()


def _occasions(work: Work, schedule: PromSchedule, site: Site, today: date) -> Iterable[_Due]:
    """The occasions of ``schedule`` that are due today and not yet expired."""
    window = timedelta(days=schedule.expires_after_days)
    if schedule.kind == "before_visit":
        lead = timedelta(days=schedule.days or 0)
        visits = work.session.scalars(
            select(PlannedVisit).where(
                PlannedVisit.site_id == site.id,
                PlannedVisit.cancelled_at.is_(None),
                PlannedVisit.visit_date >= today,
                PlannedVisit.visit_date <= today + lead,
            )
        )
        for visit in visits:
            due = visit.visit_date - lead
            # Useless after the visit: it expires at the end of the visit day at the latest.
            end = min(due + window, visit.visit_date + timedelta(days=1))
            yield _Due(
                schedule.id,
                site.id,
                visit.patient_id,
                f"visit:{visit.id}:{visit.visit_date.isoformat()}",
                due,
                visit.visit_date,
                _start_of(end, site),
            )
    elif schedule.kind == "every_weeks":
        step = 7 * (schedule.weeks or 1)
        patients = work.session.execute(
            select(Patient.id, Patient.created_at).where(Patient.site_id == site.id)
        )
        for patient_id, created_at in patients:
            anchor = _today(site, as_utc(created_at))
            count = (today - anchor).days // step
            if count < 1:
                continue
            due = anchor + timedelta(days=count * step)
            if today < due + window:
                yield _Due(
                    schedule.id,
                    site.id,
                    patient_id,
                    f"every:{count}",
                    due,
                    None,
                    _start_of(due + window, site),
                )
    else:
        lag = timedelta(days=schedule.days or 0)
        kind = schedule.event_kind or ""
        events = work.session.execute(
            select(Response.id, Response.patient_id, Response.event_date)
            .join(FormDefinition, FormDefinition.id == Response.form_id)
            .where(
                Response.site_id == site.id,
                Response.status == "complete",
                or_(FormDefinition.name == kind, Response.event_name == kind),
                Response.event_date <= today - lag,
                Response.event_date > today - lag - window,
            )
        )
        for response_id, patient_id, event_date in events:
            due = event_date + lag
            yield _Due(
                schedule.id,
                site.id,
                patient_id,
                f"event:{response_id}",
                due,
                event_date,
                _start_of(due + window, site),
            )


def _addresses(work: Work, patient_id: int) -> list[str]:
    """Where to e-mail a patient's PROM: their own login, or else their carers'."""
    own = work.session.scalars(
        select(User.email)
        .where(User.patient_id == patient_id, User.disabled.is_(False))
        .execution_options(careloop_unscoped=True)
    ).all()
    if own:
        return list(own)
    return list(
        work.session.scalars(
            select(User.email)
            .join(CarerLink, CarerLink.carer_user_id == User.id)
            .where(
                CarerLink.patient_id == patient_id,
                CarerLink.revoked_at.is_(None),
                User.disabled.is_(False),
            )
            .order_by(User.email)
            .execution_options(careloop_unscoped=True)
        ).all()
    )


def _message(
    site: Site,
    invitation: PromInvitation,
    schedule: PromSchedule,
    url: str,
    *,
    reminder: bool,
    language: str = DEFAULT_LANGUAGE,
) -> tuple[str, str]:
    """Subject and text of the e-mail: the care team and a link, no clinical data, in
    ``language`` (a code of :data:`careloop.core.i18n.LANGUAGES`; anything else is English)."""
    words = translator(language)
    say = words.gettext
    until = (as_utc(invitation.expires_at).astimezone(_zone(site)) - timedelta(seconds=1)).date()
    if schedule.kind == "before_visit" and invitation.occasion_date:
        asks = say(
            N_(
                "Your care team at {site} asks you to fill in a short questionnaire "
                "before your visit on {day}."
            )
        ).format(site=site.name, day=long_date(invitation.occasion_date, words.language))
    else:
        asks = say(
            N_("Your care team at {site} asks you to fill in a short questionnaire.")
        ).format(site=site.name)
    paragraphs = (
        say(N_("Hello,")),
        (say(N_("This is a reminder.")) + " " + asks) if reminder else asks,
        say(N_("Open this link to fill it in. It works once, until {day}:")).format(
            day=long_date(until, words.language)
        ),
        url,
        say(
            N_(
                "If you have a careloop account, you can also log in and find it under "
                '"Questionnaires to fill in".'
            )
        ),
        say(
            N_(
                "If you did not expect this message, or the link has stopped working, ask "
                "your care team."
            )
        ),
        say(N_("careloop, for {site}")).format(site=site.name) + "\n",
    )
    subject = say(N_("A short questionnaire from your care team at {site}")).format(site=site.name)
    if reminder:
        subject = say(N_("Reminder: {subject}")).format(subject=subject)
    return subject, "\n\n".join(paragraphs)


def _audit(
    work: Work,
    action: str,
    invitation: PromInvitation,
    site: Site,
    patient: Patient | None,
    **details: object,
) -> None:
    work.audit(
        action,
        "prom_invitation",
        patient=patient,
        site_code=site.code,
        outcome="failure" if details.get("failed") else "success",
        details={
            "invitation_id": invitation.id,
            "schedule_id": invitation.schedule_id,
            **details,
        },
    )


def _sites(work: Work, site: str | None) -> list[Site]:
    query = select(Site).order_by(Site.code)
    if site is not None:
        query = query.where(Site.code == site.strip())
    found = [s for s in work.session.scalars(query) if work.scope.allows_site(s.id)]
    if site is not None and not found:
        raise NotFound(f"There is no site {site!r} where you may send PROMs. Check the code.")
    return found


def _sweep(work: Work, site: Site, now: datetime, run: OutreachRun) -> None:
    """Steps 1-3: completions, withdrawals and expiries of the site's open invitations."""
    rows = work.session.execute(
        select(PromInvitation, PromSchedule, FormDefinition, Patient)
        .join(PromSchedule, PromSchedule.id == PromInvitation.schedule_id)
        .join(FormDefinition, FormDefinition.id == PromSchedule.form_id)
        .join(Patient, Patient.id == PromInvitation.patient_id)
        .where(
            PromInvitation.site_id == site.id,
            PromInvitation.completed_at.is_(None),
            PromInvitation.closed_at.is_(None),
        )
    ).all()
    for invitation, schedule, form, patient in rows:
        done = work.session.execute(
            select(Response.id, Response.created_at)
            .where(
                Response.patient_id == patient.id,
                Response.form_id == form.id,
                Response.status == "complete",
                # Filled on or after the day it fell due, by whatever route, and about
                # that time: an older response imported today does not count.
                Response.created_at >= _start_of(invitation.due_date, site),
                Response.created_at < invitation.expires_at,
                Response.event_date >= invitation.due_date,
            )
            .order_by(Response.created_at)
            .limit(1)
        ).first()
        if done is not None:
            invitation.completed_at, invitation.response_id = done.created_at, done.id
            _close_links(work, invitation, now)
            run.completed += 1
            continue
        reason = _withdrawn(work, invitation, schedule, form, patient)
        if reason is None and as_utc(invitation.expires_at) <= now:
            reason = "expired"
        if reason is None:
            continue
        invitation.closed_at, invitation.closed_reason = now, reason
        _close_links(work, invitation, now)
        if reason == "expired":
            run.expired += 1
        else:
            run.withdrawn += 1
        _audit(work, "update", invitation, site, patient, closed=reason)


def _withdrawn(
    work: Work,
    invitation: PromInvitation,
    schedule: PromSchedule,
    form: FormDefinition,
    patient: Patient,
) -> str | None:
    if not form.patient_reported:
        return "form_retired"
    if not consent_allows(patient, schedule.purpose):
        return "consent"
    if invitation.occasion.startswith("visit:"):
        _, visit_id, day = invitation.occasion.split(":")
        visit = work.session.get(PlannedVisit, int(visit_id))
        if visit is None or visit.cancelled_at is not None:
            return "visit_cancelled"
        if visit.visit_date.isoformat() != day:
            return "visit_moved"
    return None


def _close_links(work: Work, invitation: PromInvitation, now: datetime) -> None:
    """Unused links of a settled invitation stop working now."""
    work.session.execute(
        update(PromLink)
        .where(PromLink.note == link_note(invitation.id), PromLink.used_at.is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def _create_due(work: Work, site: Site, now: datetime, run: OutreachRun) -> None:
    """Step 4: log the invitations that fell due (each occasion once)."""
    today = _today(site, now)
    schedules = work.session.execute(
        select(PromSchedule, FormDefinition)
        .join(FormDefinition, FormDefinition.id == PromSchedule.form_id)
        .where(PromSchedule.site_id == site.id, PromSchedule.active.is_(True))
        .order_by(PromSchedule.id)
    ).all()
    for schedule, form in schedules:
        if not form.patient_reported:
            continue
        logged = {
            (patient_id, occasion)
            for patient_id, occasion in work.session.execute(
                select(PromInvitation.patient_id, PromInvitation.occasion).where(
                    PromInvitation.schedule_id == schedule.id
                )
            )
        }
        for due in _occasions(work, schedule, site, today):
            if (due.patient_id, due.occasion) in logged or due.expires_at <= now:
                continue
            patient = work.session.get(Patient, due.patient_id)
            if patient is None:
                continue
            if not consent_allows(patient, schedule.purpose):
                run.skipped_consent += 1
                continue
            work.session.add(
                PromInvitation(
                    site_id=due.site_id,
                    patient_id=due.patient_id,
                    schedule_id=due.schedule_id,
                    occasion=due.occasion,
                    due_date=due.due_date,
                    occasion_date=due.occasion_date,
                    expires_at=due.expires_at,
                    channel="pending",
                    reminders_sent=0,
                    failures=0,
                    created_at=now,
                )
            )
            logged.add((due.patient_id, due.occasion))
            run.created += 1
    work.session.flush()


def _to_send(work: Work, site: Site, now: datetime) -> list[tuple[int, bool]]:
    """Open invitations to e-mail now: (id, whether it is a reminder)."""
    rows = work.session.execute(
        select(PromInvitation, PromSchedule)
        .join(PromSchedule, PromSchedule.id == PromInvitation.schedule_id)
        .where(
            PromInvitation.site_id == site.id,
            PromInvitation.completed_at.is_(None),
            PromInvitation.closed_at.is_(None),
            PromSchedule.active.is_(True),
        )
        .order_by(PromInvitation.id)
    ).all()
    out: list[tuple[int, bool]] = []
    for invitation, schedule in rows:
        if invitation.sent_at is None:
            out.append((invitation.id, False))
        elif (
            invitation.reminders_sent < schedule.max_reminders
            and invitation.last_sent_at is not None
            and now >= as_utc(invitation.last_sent_at) + timedelta(days=schedule.remind_after_days)
        ):
            out.append((invitation.id, True))
    return out


def _send_one(
    registry: Registry,
    principal: Principal,
    mailer: Mailer,
    invitation_id: int,
    *,
    reminder: bool,
    link_base: str,
    now: datetime,
    run: OutreachRun,
) -> None:
    """E-mail one invitation or reminder in a transaction of its own."""
    with unit_of_work(registry, principal, "record.write") as work:
        invitation = work.session.get(PromInvitation, invitation_id)
        if invitation is None or invitation.closed_at or invitation.completed_at:
            return
        schedule = work.session.get(PromSchedule, invitation.schedule_id)
        site = work.session.get(Site, invitation.site_id)
        patient = work.session.get(Patient, invitation.patient_id)
        assert schedule is not None and site is not None and patient is not None
        addresses = _addresses(work, patient.id)
        if not addresses:
            if invitation.channel != "no_address":
                invitation.channel = "no_address"
                run.no_address += 1
                _audit(work, "update", invitation, site, patient, channel="no_address")
            return
        # Claim the send: a concurrent run that read the same state changes nothing.
        claimed = work.session.execute(
            update(PromInvitation)
            .where(
                PromInvitation.id == invitation.id,
                PromInvitation.reminders_sent == invitation.reminders_sent,
                (
                    PromInvitation.last_sent_at == invitation.last_sent_at
                    if invitation.last_sent_at is not None
                    else PromInvitation.last_sent_at.is_(None)
                ),
            )
            .values(last_sent_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return
        previous = invitation.last_sent_at
        work.session.refresh(invitation)
        link, secret = _new_link(work, invitation, schedule.form_id, principal.email)
        # Nothing records which language a patient reads (no field on the patient or their
        # login), so the e-mail is in English; the portal page speaks the browser's language.
        subject, text = _message(
            site,
            invitation,
            schedule,
            f"{link_base.rstrip('/')}/prom/{secret}",
            reminder=reminder,
            language=DEFAULT_LANGUAGE,
        )
        try:
            via = {mailer.send(to=address, subject=subject, text=text).via for address in addresses}
        except CareloopError as exc:
            # Not handed on: the link stops working, and the next run tries again
            # (last_sent_at goes back to the previous e-mail, none for a first one).
            link.expires_at, invitation.last_sent_at = now, previous
            invitation.channel, invitation.failures = "failed", invitation.failures + 1
            invitation.last_failure = str(exc)[:2000]
            run.failed += 1
            run.failures.append(str(exc))
            action = "update" if reminder else "create"
            _audit(work, action, invitation, site, patient, channel="failed", failed=True)
            return
        _sent(work, invitation, link, site, patient, via, reminder=reminder, now=now, run=run)


def _new_link(
    work: Work, invitation: PromInvitation, form_id: int, created_by: str
) -> tuple[PromLink, str]:
    """A fresh single-use link for the invitation (working until it expires), and its secret."""
    secret = secret_token(PROM_TOKEN_PREFIX)
    link = PromLink(
        site_id=invitation.site_id,
        patient_id=invitation.patient_id,
        token_hash=sha256_hex(secret),
        form_id=form_id,
        expires_at=invitation.expires_at,
        created_by=created_by,
        note=link_note(invitation.id),
    )
    work.session.add(link)
    work.session.flush()
    return link, secret


def _sent(
    work: Work,
    invitation: PromInvitation,
    link: PromLink,
    site: Site,
    patient: Patient,
    via: set[Literal["smtp", "outbox"]],
    *,
    reminder: bool,
    now: datetime,
    run: OutreachRun,
) -> None:
    """Log and audit an e-mail handed on."""
    invitation.channel = "smtp" if "smtp" in via else "outbox"
    invitation.link_id = link.id
    if reminder:
        invitation.reminders_sent += 1
        run.reminded += 1
        _audit(
            work,
            "update",
            invitation,
            site,
            patient,
            reminder=invitation.reminders_sent,
            channel=invitation.channel,
        )
    else:
        invitation.sent_at = now
        run.sent += 1
        _audit(work, "create", invitation, site, patient, channel=invitation.channel)


def send_due(
    registry: Registry,
    principal: Principal,
    mailer: Mailer,
    *,
    link_base: str,
    site: str | None = None,
    now: datetime | None = None,
) -> OutreachRun:
    """Invite, remind and expire for the sites in the principal's scope (see the module).

    Args:
        registry: The registry.
        principal: Who runs it (the operator, or a site's care team).
        mailer: Sends the e-mail.
        link_base: The address careloop is reached at; links are ``<link_base>/prom/<secret>``.
        site: Only this site's schedules.
        now: The time to act at (UTC; default now), e.g. to catch up a missed run.

    Raises:
        NotFound: No such site in the principal's scope.
        PermissionDenied: The principal may not enter records anywhere.
    """
    if not link_base.startswith(("http://", "https://")):
        raise InputError(
            f"The link base {link_base!r} is not an address; give careloop's address, e.g. "
            "https://careloop.example.org (CARELOOP_PUBLIC_BASE_URL or --base-url)."
        )
    moment = as_utc(now) if now is not None else utcnow()
    run = OutreachRun()
    with unit_of_work(registry, principal, "record.write") as work:
        _staff_only(work)
        sites = _sites(work, site)
        for place in sites:
            _sweep(work, place, moment, run)
            _create_due(work, place, moment, run)
        pending = [(item, place.id) for place in sites for item in _to_send(work, place, moment)]
    for (invitation_id, reminder), _site_id in pending:
        _send_one(
            registry,
            principal,
            mailer,
            invitation_id,
            reminder=reminder,
            link_base=link_base,
            now=moment,
            run=run,
        )
    return run
