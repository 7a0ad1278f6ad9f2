"""The demo's families use careloop: a PROM schedule with reminders, a form filled, a choice.

After the invitations of :mod:`careloop.demo.families`, the first site asks
for its symptoms questionnaire a week before each visit, reminds after three
days and lets each request lapse after two weeks. Both families have a visit
booked in three days. The send-due job runs as a timer would: four days ago
(the first e-mails) and today (the reminders), all through the demo's SMTP
server. The young person opens the link in their reminder and fills in the
form; the next run finds it done. Then they sign in to their page and say
no to research while keeping yes to making care better, so the warehouse
refresh that follows still includes them and the research export does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from careloop.capture import prom_log, prom_outreach, prom_schedules, proms
from careloop.core.clock import utcnow
from careloop.core.settings import Settings
from careloop.demo.families import DEMO_LINK_BASE, Family
from careloop.demo.load import PROM_FORM
from careloop.demo.mailbox import DemoMailbox, link_in
from careloop.practice import portal
from careloop.store.database import Registry
from careloop.store.models import User
from careloop.trust.identity.principals import principal_for
from careloop.trust.principal import Principal, RequestContext

__all__ = ["Outreach", "run_outreach"]

DAYS_BEFORE_VISIT = 7
REMIND_AFTER_DAYS = 3
EXPIRES_AFTER_DAYS = 14

# How the young person answered (a good week).
_ANSWERS = {
    "completed_by": "1",
    "tummy_pain": "1",
    "stools_worst_day": "2",
    "blood_in_stool": "0",
    "urgency": "0",
    "tiredness": "1",
    "missed_days": "0",
    "worry": "20",
}


@dataclass(frozen=True)
class Outreach:
    """What the families' part of the demo did."""

    invited: int
    """First e-mails asking for the questionnaire."""
    reminded: int
    """Reminders sent."""
    completed: int
    """Questionnaires filled in from an e-mailed link."""
    research_withdrawn_by: str
    """The login of the young person who said no to research (and yes to improvement)."""
    completion: list[prom_log.CompletionMonth]
    """Completion per site and month, as the care team's PROMs page shows it."""


def _as_member(registry: Registry, email: str) -> Principal:
    """The principal the person gets when they sign in (their own record, their scopes)."""
    with registry.transaction() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return principal_for(session, user, RequestContext())


def run_outreach(
    registry: Registry,
    operator: Principal,
    settings: Settings,
    mailbox: DemoMailbox,
    site: str,
    family: Family,
) -> Outreach:
    """Schedule the PROM at ``site``, e-mail and remind, fill one in, change one consent."""
    prom_schedules.add_schedule(
        registry,
        operator,
        site=site,
        form=PROM_FORM,
        kind="before_visit",
        days=DAYS_BEFORE_VISIT,
        remind_after_days=REMIND_AFTER_DAYS,
        max_reminders=2,
        expires_after_days=EXPIRES_AFTER_DAYS,
    )
    now = utcnow()
    # The first e-mails go at noon UTC a few days ago, the day the questionnaire falls due:
    # that day is the same date at every demo site whatever its time zone and whenever the
    # demo runs (at 00:30 UTC a site in New York is still on the day before).
    first_run = (now - timedelta(days=REMIND_AFTER_DAYS + 1)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    visit = first_run.date() + timedelta(days=DAYS_BEFORE_VISIT)
    for patient_id in (family.child_id, family.young_person_id):
        prom_schedules.book_visit(registry, operator, patient_id, visit_date=visit)
    mailer = mailbox.mailer(settings.mail_from)
    first = prom_outreach.send_due(
        registry,
        operator,
        mailer,
        link_base=DEMO_LINK_BASE,
        site=site,
        now=first_run,
    )
    second = prom_outreach.send_due(
        registry, operator, mailer, link_base=DEMO_LINK_BASE, site=site, now=now
    )
    young = family.logins[0]
    reminder = mailbox.messages_to(young.email)[-1]
    secret = link_in(reminder).rsplit("/", 1)[-1]
    proms.submit_prom_link(
        registry, secret, values={**_ANSWERS, "prom_date": now.date().isoformat()}
    )
    third = prom_outreach.send_due(
        registry, operator, mailer, link_base=DEMO_LINK_BASE, site=site, now=now
    )
    member = _as_member(registry, young.email)
    portal.change_consent(registry, member, family.young_person_id, "research", False)
    return Outreach(
        invited=first.sent + second.sent,
        reminded=second.reminded,
        completed=third.completed,
        research_withdrawn_by=young.email,
        completion=prom_log.completion_by_month(registry, operator, site=site),
    )
