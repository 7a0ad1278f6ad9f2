"""Patients and carers join the demo: e-mailed invitations, their own logins, their choices.

At the demo's first site a parent is invited as the carer of a child, and a
young person is invited to their own record. The invitations go over SMTP to
the demo's local server (:mod:`careloop.demo.mailbox`); the link in each
message is opened and accepted as the person would, so their logins are
real accounts, printed with the other demo accounts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

import pandas as pd

from careloop.core.clock import utcnow
from careloop.core.settings import Settings
from careloop.demo.mailbox import DemoMailbox, link_in
from careloop.demo.network import SyntheticNetwork
from careloop.demo.seed import DEMO_DOMAIN, DemoLogin
from careloop.store.database import Registry
from careloop.trust import invitations, patients
from careloop.trust.principal import Principal

__all__ = ["Family", "invite_families"]

DEMO_LINK_BASE = "http://127.0.0.1:8000"
"""The address written into the demo's e-mails (where `make demo` serves)."""


@dataclass(frozen=True)
class Family:
    """The demo's patients and carers with logins, and whose records they reach."""

    logins: list[DemoLogin]
    child_id: int
    """The child whose parent is their carer."""
    young_person_id: int
    """The young person with their own login."""


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _pick(people: pd.DataFrame, low: int, high: int, today: date) -> pd.Series:
    """The first consenting patient aged ``low``–``high`` today (the network is seeded)."""
    ages = people.birth_date.map(lambda born: _age(born, today))
    consenting = people.consent_state == "improvement_and_research"
    chosen = people[(ages >= low) & (ages <= high) & consenting]
    if chosen.empty:
        raise LookupError(f"The demo network has no consenting patient aged {low} to {high}.")
    return chosen.sort_values("local_id").iloc[0]


def _record_id(registry: Registry, operator: Principal, site: str, local_id: str) -> int:
    found = patients.search_patients(registry, operator, text=local_id, site=site)
    return next(p.id for p in found if p.local_id == local_id)


def _join(
    registry: Registry,
    operator: Principal,
    settings: Settings,
    mailbox: DemoMailbox,
    patient_id: int,
    *,
    email: str,
    name: str,
    role: invitations.InvitedRole,
    relationship: str = "",
) -> str:
    """Invite ``email`` by e-mail, open the received link and accept it; returns the password."""
    invitations.invite_to_record(
        registry,
        operator,
        mailbox.mailer(settings.mail_from),
        patient_id,
        email=email,
        role=role,
        relationship=relationship,
        link_base=DEMO_LINK_BASE,
    )
    secret = link_in(mailbox.messages_to(email)[-1]).rsplit("/", 1)[-1]
    password = secrets.token_urlsafe(12)
    invitations.accept_invitation_by_key(
        registry,
        invitations.invitation_key(secret),
        display_name=name,
        password=password,
        lockout_settings=settings,
    )
    return password


def invite_families(
    registry: Registry,
    operator: Principal,
    settings: Settings,
    mailbox: DemoMailbox,
    network: SyntheticNetwork,
) -> Family:
    """Invite a child's parent and a young person at the first site; return their logins."""
    site = network.sites[0].code
    people = network.patients[network.patients.site == site]
    today = utcnow().date()
    child = _pick(people, 9, 12, today)
    young = _pick(people, 16, 17, today)
    child_id = _record_id(registry, operator, site, str(child.local_id))
    young_id = _record_id(registry, operator, site, str(young.local_id))
    parent_email = f"parent.{site.lower()}@{DEMO_DOMAIN}"
    young_email = f"young.person.{site.lower()}@{DEMO_DOMAIN}"
    parent_password = _join(
        registry,
        operator,
        settings,
        mailbox,
        child_id,
        email=parent_email,
        name=f"Sam {child.family_name}",
        role="carer",
        relationship="parent",
    )
    young_password = _join(
        registry,
        operator,
        settings,
        mailbox,
        young_id,
        email=young_email,
        name=f"{young.given_name} {young.family_name}",
        role="patient",
    )
    return Family(
        logins=[
            DemoLogin(young_email, young_password, "patient", site),
            DemoLogin(parent_email, parent_password, "carer", site),
        ],
        child_id=child_id,
        young_person_id=young_id,
    )
