"""`careloop patient …`: patients' and carers' accounts on their records.

The person at the server's command line acts as the operator, as in the
other commands: the audit trail names them (``cli:<login>``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console
from careloop.core.errors import ConfigurationError, NotFound
from careloop.core.mail import Mailer
from careloop.trust import invitations, patients

patient_app = typer.Typer(help="Patients and carers: invitations to their records.")


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
        found = [
            p
            for p in patients.search_patients(registry, principal, text=patient, site=site)
            if p.local_id == patient.strip()
        ]
        if not found:
            raise NotFound(f"There is no patient {patient!r} at site {site}. Check the local id.")
        sent = invitations.invite_to_record(
            registry,
            principal,
            Mailer.from_settings(settings),
            found[0].id,
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


def register(app: typer.Typer) -> None:
    app.add_typer(patient_app, name="patient")
