"""`careloop prom …`: PROM schedules, planned visits, the outreach job and its log.

Thin commands over careloop.capture.prom_schedules, prom_outreach and
prom_log, run as the operator; the functions they call audit every change,
every e-mail and every read of the log.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import cast

import typer

from careloop.capture import prom_log, prom_outreach, prom_schedules
from careloop.capture.prom_schedules import Purpose, ScheduleKind
from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console, print_rows
from careloop.core.errors import ConfigurationError, ErrorDetail, NotFound, ValidationFailed
from careloop.core.mail import Mailer
from careloop.trust import patients

prom_app = typer.Typer(help="PROM outreach: schedules, planned visits, invitations, completion.")
schedule_app = typer.Typer(help="When a site invites its patients to fill a PROM.")
visit_app = typer.Typer(help="Planned visits (what pre-visit PROMs aim at).")
for _app in (prom_app, schedule_app, visit_app):
    _app.info.no_args_is_help = True
prom_app.add_typer(schedule_app, name="schedule")
prom_app.add_typer(visit_app, name="visit")


def _timing(
    before_visit_days: int | None,
    every_weeks: int | None,
    after_event: str | None,
    days: int | None,
) -> tuple[ScheduleKind, int | None, int | None, str | None]:
    """The kind of schedule the options describe: exactly one of the three."""
    chosen = [
        name
        for name, value in (
            ("--before-visit-days", before_visit_days),
            ("--every-weeks", every_weeks),
            ("--after-event", after_event),
        )
        if value is not None
    ]
    if len(chosen) != 1:
        raise ValidationFailed(
            "The PROM schedule was not added.",
            details=[
                ErrorDetail(
                    "timing",
                    "exactly one of --before-visit-days N, --every-weeks N or "
                    "--after-event KIND --days N",
                    " ".join(chosen) or "none given",
                )
            ],
        )
    if before_visit_days is not None:
        if days is not None:
            raise ValidationFailed(
                "The PROM schedule was not added.",
                details=[ErrorDetail("--days", "--days goes with --after-event only", str(days))],
            )
        return "before_visit", before_visit_days, None, None
    if every_weeks is not None:
        return "every_weeks", days, every_weeks, None
    return "after_event", days, None, after_event


@schedule_app.command("add")
def schedule_add(
    site: str = typer.Option(..., "--site", help="The site's code."),
    form: str = typer.Option(..., "--form", help="The patient-reported form."),
    before_visit_days: int | None = typer.Option(
        None, "--before-visit-days", help="Invite N days before each planned visit."
    ),
    every_weeks: int | None = typer.Option(
        None, "--every-weeks", help="Invite every N weeks from registration."
    ),
    after_event: str | None = typer.Option(
        None, "--after-event", help="Invite after each event of this kind (a form or event)."
    ),
    days: int | None = typer.Option(None, "--days", help="With --after-event: days after it."),
    remind_after_days: int = typer.Option(3, "--remind-after-days", help="Days to a reminder."),
    reminders: int = typer.Option(2, "--reminders", help="Reminders at most."),
    expires_after_days: int = typer.Option(
        14, "--expires-after-days", help="Days after falling due that it stops."
    ),
    purpose: str = typer.Option(
        "direct_care", "--purpose", help="direct_care, quality_improvement or research."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Add a PROM schedule for a form at a site."""
    kind, n_days, weeks, event_kind = _timing(before_visit_days, every_weeks, after_event, days)
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        made = prom_schedules.add_schedule(
            registry,
            operator(),
            site=site,
            form=form,
            kind=kind,
            days=n_days,
            weeks=weeks,
            event_kind=event_kind,
            remind_after_days=remind_after_days,
            max_reminders=reminders,
            expires_after_days=expires_after_days,
            purpose=cast(Purpose, purpose),  # checked by add_schedule
        )
    console.print(
        f"PROM schedule {made.id}: {made.form} at {made.site}, {made.timing}; reminder after "
        f"{made.remind_after_days} days (at most {made.max_reminders}), expires after "
        f"{made.expires_after_days} days; purpose {made.purpose}.",
        markup=False,
    )


@schedule_app.command("list")
def schedule_list(
    site: str | None = typer.Option(None, "--site", help="Only this site."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """List the PROM schedules."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        rows = prom_schedules.list_schedules(registry, operator(), site=site)
    print_rows(
        ("id", "site", "form", "timing", "reminders", "expires", "purpose", "active"),
        [
            (
                s.id,
                s.site,
                s.form,
                s.timing,
                f"{s.max_reminders} after {s.remind_after_days} d",
                f"{s.expires_after_days} d",
                s.purpose,
                "yes" if s.active else "no",
            )
            for s in rows
        ],
        title="PROM schedules",
    )


def _set_active(schedule_id: int, active: bool, data_dir: Path | None) -> None:
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        done = prom_schedules.set_schedule_active(registry, operator(), schedule_id, active=active)
    console.print(
        f"PROM schedule {done.id} is {'active' if done.active else 'paused'}.", markup=False
    )


@schedule_app.command("pause")
def schedule_pause(
    schedule_id: int = typer.Argument(...), data_dir: Path | None = DataDirOption
) -> None:
    """Pause a schedule: it invites and reminds nobody until resumed."""
    _set_active(schedule_id, False, data_dir)


@schedule_app.command("resume")
def schedule_resume(
    schedule_id: int = typer.Argument(...), data_dir: Path | None = DataDirOption
) -> None:
    """Resume a paused schedule."""
    _set_active(schedule_id, True, data_dir)


@visit_app.command("add")
def visit_add(
    patient: str = typer.Argument(..., help="The patient's local id."),
    site: str = typer.Option(..., "--site", help="The patient's site code."),
    visit_date: str = typer.Option(..., "--date", help="The day of the visit, YYYY-MM-DD."),
    kind: str = typer.Option("clinic", "--kind", help="What kind of visit."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Book a planned visit for a patient."""
    settings = settings_from(data_dir)
    principal = operator()
    with opened(settings) as registry:
        found = [
            p
            for p in patients.search_patients(registry, principal, text=patient, site=site)
            if p.local_id == patient.strip()
        ]
        if not found:
            raise NotFound(f"There is no patient {patient!r} at site {site}. Check the local id.")
        visit = prom_schedules.book_visit(
            registry, principal, found[0].id, visit_date=visit_date, kind=kind
        )
    console.print(f"Planned visit {visit.id}: {visit.visit_date} ({visit.kind}).", markup=False)


@visit_app.command("move")
def visit_move(
    visit_id: int = typer.Argument(...),
    visit_date: str = typer.Option(..., "--date", help="The new day, YYYY-MM-DD."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Move a planned visit to another day."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        visit = prom_schedules.move_visit(registry, operator(), visit_id, visit_date=visit_date)
    console.print(f"Planned visit {visit.id} moved to {visit.visit_date}.", markup=False)


@visit_app.command("cancel")
def visit_cancel(
    visit_id: int = typer.Argument(...), data_dir: Path | None = DataDirOption
) -> None:
    """Cancel a planned visit."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        visit = prom_schedules.cancel_visit(registry, operator(), visit_id)
    console.print(f"Planned visit {visit.id} cancelled.", markup=False)


def _now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(
            "No PROMs were sent.",
            details=[ErrorDetail("--now", "a time as YYYY-MM-DDTHH:MM[+00:00]", value)],
        ) from None
    if moment.tzinfo is None:
        raise ValidationFailed(
            "No PROMs were sent.",
            details=[ErrorDetail("--now", "a time with its zone, e.g. ...T09:00+00:00", value)],
        )
    return moment


@prom_app.command("send-due")
def send_due(
    site: str | None = typer.Option(None, "--site", help="Only this site."),
    now: str | None = typer.Option(None, "--now", help="Act as at this time (ISO, with zone)."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="careloop's address for the links (CARELOOP_PUBLIC_BASE_URL)."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Invite, remind and expire: run it from a timer (running it twice sends nothing twice)."""
    moment = _now(now)
    settings = settings_from(data_dir)
    link_base = base_url or settings.public_base_url
    if not link_base:
        raise ConfigurationError(
            "The e-mailed links need the address careloop is reached at: set "
            "CARELOOP_PUBLIC_BASE_URL (e.g. https://careloop.example.org) or give --base-url."
        )
    with opened(settings) as registry:
        run = prom_outreach.send_due(
            registry,
            operator(),
            Mailer.from_settings(settings),
            link_base=link_base,
            site=site,
            now=moment,
        )
    console.print(
        f"PROM invitations: {run.created} due, {run.sent} sent, {run.reminded} reminders, "
        f"{run.completed} done, {run.expired} expired, {run.withdrawn} withdrawn, "
        f"{run.no_address} without an address, {run.skipped_consent} not offered (consent), "
        f"{run.failed} failed.",
        markup=False,
    )
    for failure in run.failures:
        console.print(f"  failed: {failure}", markup=False)


@prom_app.command("log")
def log(
    site: str | None = typer.Option(None, "--site", help="Only this site."),
    month: str | None = typer.Option(None, "--month", help="Only invitations due this YYYY-MM."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """The invitation log: who was invited when, how, and whether it was done."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        rows = prom_log.invitation_log(registry, operator(), site=site, month=month)
    print_rows(
        ("id", "site", "patient", "form", "due", "sent", "via", "reminders", "state"),
        [
            (
                r.id,
                r.site,
                r.patient_local_id,
                r.form,
                r.due_date.isoformat(),
                f"{r.sent_at:%Y-%m-%d %H:%M}" if r.sent_at else "",
                r.channel,
                r.reminders_sent,
                r.closed_reason if r.state == "withdrawn" else r.state,
            )
            for r in rows
        ],
        title="PROM invitation log",
    )


@prom_app.command("completion")
def completion(
    site: str | None = typer.Option(None, "--site", help="Only this site."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """PROM completion per site and month: invited, done before expiry, rate."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        months = prom_log.completion_by_month(registry, operator(), site=site)
    print_rows(
        ("site", "month", "invited", "done", "rate", "open", "no address"),
        [
            (
                m.site,
                m.month,
                m.invited,
                m.completed,
                f"{m.rate:.0%}" if m.rate is not None else "",
                m.pending,
                m.no_address,
            )
            for m in months
        ],
        title="PROM completion (invitations settled: done or expired)",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(prom_app, name="prom")
