"""`careloop patient …`: patients' and carers' accounts on their records.

The person at the server's command line acts as the operator, as in the
other commands: the audit trail names them (``cli:<login>``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console
from careloop.core.errors import (
    ConfigurationError,
    ErrorDetail,
    InputError,
    NotFound,
    ValidationFailed,
)
from careloop.core.mail import Mailer
from careloop.store.database import Registry
from careloop.trust import carers, invitations, patients
from careloop.trust.consent import PURPOSES, import_opt_outs, record_consent_purpose
from careloop.trust.patients import PatientView
from careloop.trust.principal import Principal

patient_app = typer.Typer(
    help="Patients and carers: invitations to their records, consent, what carers may do, "
    "hand-over."
)
opt_outs_app = typer.Typer(help="The national data opt-out: import the list and honour it.")


def _patient_id(registry: Registry, principal: Principal, local_id: str, site: str) -> int:
    found = [
        p
        for p in patients.search_patients(registry, principal, text=local_id, site=site)
        if p.local_id == local_id.strip()
    ]
    if not found:
        raise NotFound(f"There is no patient {local_id!r} at site {site}. Check the local id.")
    return found[0].id


@patient_app.command("invite")
def invite(
    patient: str = typer.Argument(..., help="The patient's local id (e.g. hospital number)."),
    site: str = typer.Option(..., "--site", help="The patient's site code."),
    email: str = typer.Option(..., "--email", help="The address to invite."),
    carer: bool = typer.Option(False, "--carer", help="Invite a carer, not the patient."),
    relationship: str = typer.Option(
        "", "--relationship", help="For a carer: e.g. parent, partner (default: carer)."
    ),
    expires_in_hours: int = typer.Option(
        invitations.DEFAULT_INVITATION_HOURS, "--expires-in-hours", help="How long the link works."
    ),
    language: str = typer.Option("en", "--language", help="The e-mail's language: en or es."),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="The address people open careloop at (default: CARELOOP_PUBLIC_BASE_URL).",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """E-mail a single-use link that opens the patient's (or a carer's) account."""
    settings = settings_from(data_dir)
    link_base = base_url or settings.public_base_url
    if not link_base:
        raise ConfigurationError(
            "The e-mailed link needs the address careloop is reached at: set "
            "CARELOOP_PUBLIC_BASE_URL (e.g. https://careloop.example.org) or give --base-url."
        )
    principal = operator()
    with opened(settings) as registry:
        found = _find(registry, principal, patient, site)
        sent = invitations.invite_to_record(
            registry,
            principal,
            Mailer.from_settings(settings),
            found.id,
            email=email,
            role="carer" if carer else "patient",
            relationship=relationship,
            link_base=link_base,
            expires_in_hours=expires_in_hours,
            language=language,
        )
    where = "sent" if sent.delivered_via == "smtp" else "written into the outbox folder"
    console.print(
        f"Invitation {sent.id}: {sent.email} as {sent.role} of patient {patient} at {sent.site}, "
        f"{where}; the link works until {sent.expires_at:%Y-%m-%d %H:%M} UTC.",
        markup=False,
    )


def _scopes_text(scopes: tuple[str, ...]) -> str:
    return ", ".join(scopes) or "nothing"


@patient_app.command("carers")
def list_carers(
    patient: str = typer.Argument(..., help="The patient's local id (e.g. hospital number)."),
    site: str = typer.Option(..., "--site", help="The patient's site code."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """List the patient's carers and what each may do."""
    settings = settings_from(data_dir)
    principal = operator()
    with opened(settings) as registry:
        found = carers.list_carers(
            registry,
            principal,
            _patient_id(registry, principal, patient, site),
            handover_age=settings.handover_age,
        )
    if not found.carers:
        console.print(f"Patient {patient} at {site} has no carer.", markup=False)
    for c in found.carers:
        lapsed = " (lapsed at the hand-over age)" if c.lapsed else ""
        console.print(
            f"{c.email} ({c.relationship}): {_scopes_text(c.scopes)}{lapsed}; "
            f"set {c.set_at:%Y-%m-%d} by {c.set_by or 'unknown'}",
            markup=False,
        )


@patient_app.command("carer-scopes")
def carer_scopes(
    patient: str = typer.Argument(..., help="The patient's local id (e.g. hospital number)."),
    site: str = typer.Option(..., "--site", help="The patient's site code."),
    carer: str = typer.Option(..., "--carer", help="The carer's e-mail address."),
    grant: list[str] = typer.Option(
        [], "--grant", help="A scope to give: fill_forms, see_results or manage_consent."
    ),
    revoke: list[str] = typer.Option([], "--revoke", help="A scope to take back."),
    end: bool = typer.Option(False, "--end", help="Remove the carer from the record."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Give or take back what a carer may do for a patient (or remove the carer)."""
    wanted = carers.check_scopes(grant, field="--grant")
    dropped = carers.check_scopes(revoke, field="--revoke")
    if wanted & dropped:
        raise ValidationFailed(
            "A scope cannot be both given and taken back.",
            details=[ErrorDetail("--grant/--revoke", "name it once", s) for s in wanted & dropped],
        )
    if not (wanted or dropped or end):
        raise ValidationFailed(
            "Nothing to change: give --grant, --revoke or --end.",
            details=[ErrorDetail("--grant", "one of fill_forms, see_results, manage_consent")],
        )
    settings = settings_from(data_dir)
    principal = operator()
    with opened(settings) as registry:
        found = carers.list_carers(
            registry,
            principal,
            _patient_id(registry, principal, patient, site),
            handover_age=settings.handover_age,
        )
        link = next((c for c in found.carers if c.email == carer.strip().lower()), None)
        if link is None:
            raise NotFound(
                f"{carer} is not a carer of patient {patient} at {site}; "
                f"`careloop patient carers {patient} --site {site}` lists them."
            )
        if end:
            carers.end_carer_link(
                registry, principal, link.link_id, handover_age=settings.handover_age
            )
            console.print(f"{link.email} is no longer a carer of {patient}.", markup=False)
            return
        scopes = (set(link.scopes) | wanted) - dropped
        changed = carers.set_carer_scopes(
            registry, principal, link.link_id, scopes, handover_age=settings.handover_age
        )
    was = _scopes_text(link.scopes)
    console.print(
        f"{changed.email} may now: {_scopes_text(changed.scopes)} (was: {was}).", markup=False
    )


def _day(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            "The --now date is not a date.",
            details=[ErrorDetail("--now", "a date as YYYY-MM-DD", value)],
        ) from None
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


@patient_app.command("handover")
def handover(
    site: str | None = typer.Option(None, "--site", help="Only this site's patients."),
    now: str | None = typer.Option(
        None, "--now", help="Run as on this day (YYYY-MM-DD; default: today)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would change; change nothing."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Hand over from carers to young people who reached CARELOOP_HANDOVER_AGE (safe to rerun)."""
    settings = settings_from(data_dir)
    moment = _day(now)
    with opened(settings) as registry:
        done = carers.run_handover(
            registry,
            operator(),
            site=site,
            handover_age=settings.handover_age,
            now=moment,
            dry_run=dry_run,
        )
    verb = "would lapse" if dry_run else "lapsed"
    for lapse in done.lapsed:
        console.print(
            f"{lapse.site}: {lapse.carer_email} {verb} ({_scopes_text(lapse.old_scopes)}) "
            f"for patient {lapse.patient_id}",
            markup=False,
        )
    console.print(
        f"{len(done.lapsed)} carer link(s) {verb} at the hand-over age ({settings.handover_age}).",
        markup=False,
    )
    if done.without_account:
        console.print("Young people with no account yet (invite them):", markup=False)
        for person in done.without_account:
            console.print(
                f"  {person.site} {person.local_id} {person.name}, "
                f"{settings.handover_age} on {person.handover_date:%Y-%m-%d}: "
                f"careloop patient invite {person.local_id} --site {person.site} --email …",
                markup=False,
            )


def _find(registry: Registry, principal: Principal, patient: str, site: str) -> PatientView:
    """The patient with local id ``patient`` at ``site``; NotFound saying what to check."""
    for found in patients.search_patients(registry, principal, text=patient, site=site):
        if found.local_id == patient.strip():
            return found
    raise NotFound(f"There is no patient {patient!r} at site {site}. Check the local id.")


def _choices_line(choices: dict[str, bool]) -> str:
    return ", ".join(f"{p} {'yes' if choices[p] else 'no'}" for p in PURPOSES)


@patient_app.command("consent")
def consent(
    patient: str = typer.Argument(..., help="The patient's local id (e.g. hospital number)."),
    site: str = typer.Option(..., "--site", help="The patient's site code."),
    purpose: str | None = typer.Option(
        None,
        "--purpose",
        help="direct_care, quality_improvement, research or recontact (without it: show).",
    ),
    give: bool = typer.Option(False, "--give", help="The patient agrees to the purpose."),
    withdraw: bool = typer.Option(False, "--withdraw", help="The patient withdraws it."),
    method: str = typer.Option(
        "paper", "--method", help="How the choice was made: paper, verbal or electronic."
    ),
    note: str | None = typer.Option(None, "--note", help="A note for the consent history."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show a patient's consent by purpose, or change one purpose (--give or --withdraw)."""
    if purpose is not None and give == withdraw:
        raise InputError("Say --give or --withdraw (one of them) with --purpose.")
    if purpose is None and (give or withdraw):
        raise InputError("Say which purpose with --purpose, e.g. --purpose research.")
    principal = operator()
    with opened(settings_from(data_dir)) as registry:
        found = _find(registry, principal, patient, site)
        if purpose is None:
            console.print(f"{patient} at {site}: {_choices_line(found.consent)}", markup=False)
            return
        change = record_consent_purpose(
            registry,
            principal,
            found.id,
            purpose,  # type: ignore[arg-type]  # checked by the service
            give,
            method=method,  # type: ignore[arg-type]  # checked by the service
            note=note,
        )
    what = "recorded" if change.changed else "unchanged (the patient had already chosen that)"
    console.print(
        f"Consent to {purpose} {'given' if give else 'withdrawn'}: {what}.\n"
        f"{patient} at {site}: {_choices_line(change.patient.consent)} "
        f"({change.patient.consent_state}).",
        markup=False,
    )


@opt_outs_app.command("import")
def opt_outs_import(
    file: Path = typer.Argument(
        ...,
        help="Who opted out: one NHS number (or local id) a line, as in MESH .dat files, "
        "or a CSV with an nhs_number or local_id column.",
    ),
    site: str = typer.Option(..., "--site", help="The site whose patients the list is for."),
    sent: Path | None = typer.Option(
        None,
        "--sent",
        help="The list you sent to the NHS checking service: FILE is then its reply (the "
        "numbers that may be used), and those sent but not returned have opted out.",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Turn research and re-contact off for every opted-out patient of the site (audited)."""
    with opened(settings_from(data_dir)) as registry:
        report = import_opt_outs(registry, operator(), file, site=site, sent=sent)
    console.print(
        f"{report.listed} on the list: {report.matched} are patients of {site} "
        f"({report.changed} now opted out of research and re-contact, "
        f"{report.already_off} already were); {report.not_found} are not patients of {site}.",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    patient_app.add_typer(opt_outs_app, name="opt-outs")
    app.add_typer(patient_app, name="patient")
