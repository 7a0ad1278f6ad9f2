"""A small demo installation: three paediatric IBD centres, one user per role, patients.

The patient and carer accounts are the learning community's patient partner and
parent carer (careloop.demo.learning_community).

Passwords are random for every new demo data directory (careloop has no
default credentials anywhere); they are written once to
``demo-credentials.txt`` (mode 600) in the data directory and printed.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from careloop.core.settings import Settings
from careloop.trust import identity, patients
from careloop.trust.installation import initialise, open_registry
from careloop.trust.principal import Principal

CREDENTIALS_FILE = "demo-credentials.txt"

DEMO_SITES = (
    ("NORTH", "Northfield Children's Hospital", "GB", "Europe/London"),
    ("LAKES", "Lakeside Paediatric IBD Centre", "US", "America/Chicago"),
    ("HARBR", "Harbour Children's Clinic", "IE", "Europe/Dublin"),
)

DEMO_DOMAIN = "demo.careloop.invalid"  # .invalid: never a real mailbox


def demo_roles(site_codes: list[str]) -> list[tuple[str, str, str, str | None]]:
    """(e-mail local part, display name, role, site) of the demo accounts at these sites."""
    first, second = site_codes[0], site_codes[1 if len(site_codes) > 1 else 0]
    return [
        ("admin", "Installation admin", "admin", None),
        (f"lead.{first.lower()}", f"Dr Ada Lead (site lead, {first})", "site_lead", first),
        (f"clinician.{first.lower()}", f"Dr Noor Clinician ({first})", "clinician", first),
        (f"clinician.{second.lower()}", f"Dr Luis Clinician ({second})", "clinician", second),
        (f"entry.{first.lower()}", f"Dana Data-entry ({first})", "data_entry", first),
        ("analyst", "Ana Analyst (network)", "analyst", None),
        ("auditor", "Aude Auditor (network)", "auditor", None),
        # The learning community's patient partner and parent carer (advisory council
        # members): their logins see no patient's record, theirs is not in the registry.
        ("patient.partner", "Priya Patient-partner (advisory council)", "patient", first),
        ("carer.partner", "Colm Carer (parent, family advisory council)", "carer", second),
    ]


@dataclass(frozen=True)
class DemoLogin:
    """One demo account."""

    email: str
    password: str
    role: str
    site: str | None


def _password() -> str:
    return secrets.token_urlsafe(12)


def _write_credentials(path: Path, logins: list[DemoLogin]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# careloop demo accounts (random passwords, this data directory only)\n")
        for login in logins:
            handle.write(f"{login.email}\t{login.password}\t{login.role}\t{login.site or '-'}\n")


def read_credentials(path: Path) -> list[DemoLogin]:
    logins = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        email, password, role, site = line.split("\t")
        logins.append(DemoLogin(email, password, role, None if site == "-" else site))
    return logins


def create_demo_accounts(
    settings: Settings, operator: Principal, site_codes: list[str]
) -> list[DemoLogin]:
    """Initialise the installation with the demo admin, then one account per role.

    The sites must exist already except for the admin; call
    :func:`init_demo_installation` first when they do not.
    """
    roles = demo_roles(site_codes)
    path = settings.ensure_data_dir() / CREDENTIALS_FILE
    logins = [
        DemoLogin(f"{local}@{DEMO_DOMAIN}", _password(), role, site)
        for local, _n, role, site in roles
    ]
    names = {f"{local}@{DEMO_DOMAIN}": name for local, name, _r, _s in roles}
    registry = open_registry(settings)
    try:
        for login in logins[1:]:
            identity.add_user(
                registry,
                operator,
                email=login.email,
                display_name=names[login.email],
                password=login.password,
                roles=[(login.role, login.site)],
            )
    finally:
        registry.close()
    admin = read_credentials(path)[0]
    logins[0] = admin
    _write_credentials(path, logins)
    return logins


def add_demo_logins(settings: Settings, added: list[DemoLogin]) -> list[DemoLogin]:
    """Append accounts created another way (e.g. by accepting an invitation) to the file."""
    path = settings.ensure_data_dir() / CREDENTIALS_FILE
    logins = [*read_credentials(path), *added]
    _write_credentials(path, logins)
    return logins


def init_demo_installation(settings: Settings, operator: Principal) -> DemoLogin:
    """A new installation whose admin has a random password (written to the credentials file)."""
    path = settings.ensure_data_dir() / CREDENTIALS_FILE
    admin = DemoLogin(f"admin@{DEMO_DOMAIN}", _password(), "admin", None)
    initialise(
        settings,
        operator,
        admin_email=admin.email,
        admin_password=admin.password,
        admin_name="Installation admin",
    )
    _write_credentials(path, [admin])
    return admin


def seed_demo(
    settings: Settings, operator: Principal, *, patients_per_site: int = 12
) -> list[DemoLogin]:
    """Create (once) the small demo installation in ``settings.data_dir``; return its logins."""
    path = settings.ensure_data_dir() / CREDENTIALS_FILE
    if path.exists():
        return read_credentials(path)
    init_demo_installation(settings, operator)
    registry = open_registry(settings)
    try:
        for code, name, country, zone in DEMO_SITES:
            identity.add_site(
                registry, operator, code=code, name=name, country=country, time_zone=zone
            )
        rng = random.Random(20071)  # fixed: the same demo patients every time
        for code, *_ in DEMO_SITES:
            for i in range(1, patients_per_site + 1):
                born = date(2008, 1, 1) + timedelta(days=rng.randrange(0, 365 * 12))
                patients.register_patient(
                    registry,
                    operator,
                    site=code,
                    local_id=f"{code}-{i:04d}",
                    given_name=rng.choice(("Alex", "Sam", "Jo", "Kai", "Ria", "Max", "Ola", "Tom")),
                    family_name=f"Demo{i:02d}",
                    birth_date=born,
                    sex=rng.choice(("female", "male")),
                    consent_state=rng.choices(
                        ("improvement_and_research", "direct_care_only", "withdrawn"),
                        weights=(85, 12, 3),
                    )[0],
                )
    finally:
        registry.close()
    return create_demo_accounts(settings, operator, [code for code, *_ in DEMO_SITES])
