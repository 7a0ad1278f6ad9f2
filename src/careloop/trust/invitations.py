"""Inviting a patient or a carer to a record by an e-mailed, single-use link.

Site staff who may change a patient's details (``patient.update`` at the
patient's site) invite an e-mail address to that patient's record, as the
patient or as a carer (with the relationship, e.g. parent). careloop
e-mails a link whose secret appears only in that message; only its SHA-256
is stored. The message says which care team invites them to careloop and how
to choose a password, and carries nothing about the patient: no name, no
date of birth, no clinical data.

Opening the link shows who is invited and as what; accepting it (a display
name and a password that follows the password rules) creates the account
with the role ``patient`` (linked to the record) or ``carer`` (a
:class:`~careloop.store.models.CarerLink` to the patient), and marks the link
used, in one transaction. A carer who already has an account accepts a
further invitation with their password and gains the extra link. A used,
expired or unknown link is refused with a plain message, changes nothing
and is audited.

Audit: an invitation is one ``privilege_change`` entry naming the patient
(``details.invited``); accepting is ``create``/``identity`` for a new
account, then ``privilege_change`` for the role and, for a carer, for the
link to the patient; a refusal is one entry with the outcome ``not_found``
(or ``failure`` for a wrong password), never with the link's secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    AccountLocked,
    AuthenticationRequired,
    Conflict,
    ErrorDetail,
    InputError,
    InvalidCredentials,
    NotFound,
    ValidationFailed,
)
from careloop.core.i18n import LANGUAGES, N_, Translator, translator
from careloop.core.ids import secret_token, sha256_hex
from careloop.core.mail import Mailer
from careloop.core.plain_text import control_characters, shown, text_problem
from careloop.core.settings import Settings
from careloop.store.database import Registry
from careloop.store.models import (
    CARER_SCOPES_ALL,
    AccountInvitation,
    CarerLink,
    Membership,
    Patient,
    Site,
    User,
)
from careloop.store.scoping import Scope, set_scope
from careloop.trust import audit, lockout
from careloop.trust.audit import AuditEvent
from careloop.trust.identity import LOCKED_MESSAGE
from careloop.trust.passwords import check_password_rules, hash_password, verify_password
from careloop.trust.patients import _load
from careloop.trust.principal import Principal, RequestContext
from careloop.trust.work import record_events, unit_of_work

__all__ = [
    "DEFAULT_INVITATION_HOURS",
    "InvitationAccepted",
    "InvitationSent",
    "InvitationView",
    "accept_invitation_by_key",
    "invitation_key",
    "invite_to_record",
    "open_invitation_by_key",
]

INVITATION_TOKEN_PREFIX = "invite"  # noqa: S105 - a prefix, not a secret
DEFAULT_INVITATION_HOURS = 7 * 24
MAX_INVITATION_HOURS = 30 * 24
INVITATION_PATH = "/invitation"

InvitedRole = Literal["patient", "carer"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class InvitationSent:
    """An invitation e-mailed; its secret went into the message only."""

    id: int
    """The invitation's id."""
    email: str
    """Who was invited."""
    role: InvitedRole
    """patient or carer."""
    patient_id: int
    """The record they are invited to."""
    site: str
    """The patient's site code."""
    expires_at: datetime
    """When the link stops working (UTC)."""
    delivered_via: Literal["smtp", "outbox"]
    """Sent through the SMTP server, or written into the outbox folder."""


@dataclass(frozen=True)
class InvitationView:
    """What the holder of a valid link sees: who is invited, never the patient."""

    email: str
    """The invited address (the account's login)."""
    role: InvitedRole
    """patient or carer."""
    site_name: str
    """The care team that invites them."""
    existing_account: bool
    """The address already has an account: accepting needs its password."""
    expires_at: datetime
    """When the link stops working (UTC)."""


@dataclass(frozen=True)
class InvitationAccepted:
    """An invitation accepted."""

    email: str
    """The account's login."""
    role: InvitedRole
    """patient or carer."""
    patient_id: int
    """The record the account now reaches."""
    created_account: bool
    """A new account (False: a carer's existing account gained a link)."""


def invitation_key(token: str) -> str:
    """The key an invitation is stored under: the SHA-256 of its secret."""
    return sha256_hex(token.strip())


def _message(
    site_name: str, role: InvitedRole, url: str, hours: int, words: Translator
) -> tuple[str, str]:
    """Subject and text of the e-mail, in the invitee's language: no patient details, no
    clinical data."""
    say = words.gettext
    what = (
        say(N_("to see your own care record"))
        if role == "patient"
        else say(N_("to help with the care record of someone you look after, as their carer"))
    )
    if hours % 24 == 0 and hours >= 48:
        lasts = words.ngettext("{n} day", "{n} days", hours // 24).format(n=hours // 24)
    else:
        lasts = words.ngettext("{n} hour", "{n} hours", hours).format(n=hours)
    paragraphs = (
        say(N_("Hello,")),
        say(N_("Your care team at {site} has invited you to careloop, {what}.")).format(
            site=site_name, what=what
        ),
        say(
            N_("To accept, open this link and choose a password. The link works once, for {time}:")
        ).format(time=lasts),
        url,
        say(
            N_(
                "If you did not expect this message, you can ignore it. Nothing happens "
                "unless the link is opened. If the link has stopped working, ask your "
                "care team for a new one."
            )
        ),
        say(N_("careloop, for {site}")).format(site=site_name) + "\n",
    )
    subject = say(N_("Your invitation to careloop from {site}")).format(site=site_name)
    return subject, "\n\n".join(paragraphs)


def _check_invitee(
    session: Session, email: str, role: InvitedRole, patient: Patient, relationship: str
) -> None:
    problems: list[ErrorDetail] = []
    if not _EMAIL.match(email) or len(email) > 254 or control_characters(email):
        problems.append(ErrorDetail("email", "not an e-mail address", shown(email)))
    if role not in ("patient", "carer"):
        problems.append(ErrorDetail("role", "patient or carer", shown(str(role))))
    wrong = text_problem(relationship, what="a relationship", max_length=64, required=False)
    if wrong:
        problems.append(ErrorDetail("relationship", wrong, shown(relationship)))
    if problems:
        raise ValidationFailed("The invitation was not sent.", details=problems)
    existing = session.scalar(select(User).where(User.email == email))
    if role == "patient":
        if existing is not None:
            raise Conflict(
                f"{email} already has a careloop account; a patient's login needs an "
                "address of its own. Invite another address."
            )
        linked = session.scalar(
            select(User.email)
            .where(User.patient_id == patient.id)
            .execution_options(careloop_unscoped=True)
        )
        if linked is not None:
            raise Conflict(f"Patient {patient.id} already has a login ({linked}).")
    elif existing is not None and not any(m.role == "carer" for m in existing.memberships):
        raise Conflict(
            f"{email} already has a careloop account that is not a carer's; "
            "invite another address for the carer."
        )


def invite_to_record(
    registry: Registry,
    principal: Principal,
    mailer: Mailer,
    patient_id: int,
    *,
    email: str,
    role: InvitedRole = "patient",
    relationship: str = "",
    link_base: str,
    expires_in_hours: int = DEFAULT_INVITATION_HOURS,
    language: str = "en",
) -> InvitationSent:
    """E-mail ``email`` a single-use link to ``patient_id``'s record, as patient or carer.

    ``link_base`` is the address careloop is reached at (e.g.
    ``https://careloop.example.org``); the link is ``<link_base>/invitation/<secret>``.
    The invitation is saved only if the e-mail is handed on. The e-mail is written in
    ``language`` (a code of :data:`careloop.core.i18n.LANGUAGES`: ``en`` or ``es``).

    Raises:
        InputError: The lifetime or the language is out of range.
        ValidationFailed: The address, role or relationship is not valid.
        NotFound: No such patient that the principal may change (audited).
        Conflict: The address (or the patient, for a patient's login) has an account already.
        ConfigurationError: The e-mail could not be sent (nothing is saved).
    """
    if not 1 <= expires_in_hours <= MAX_INVITATION_HOURS:
        raise InputError(
            f"An invitation lasts 1 to {MAX_INVITATION_HOURS} hours; got {expires_in_hours}."
        )
    if language not in LANGUAGES:
        raise InputError(
            f"careloop writes e-mails in {', '.join(sorted(LANGUAGES))}; got {language[:20]!r}."
        )
    email = email.strip().lower()
    relationship = relationship.strip() or (N_("carer") if role == "carer" else "")
    with unit_of_work(registry, principal, "patient.update") as work:
        patient = _load(work, patient_id, "privilege_change", "proxy")
        _check_invitee(work.session, email, role, patient, relationship)
        site = work.session.get(Site, patient.site_id)
        assert site is not None
        secret = secret_token(INVITATION_TOKEN_PREFIX)
        expires = utcnow() + timedelta(hours=expires_in_hours)
        row = AccountInvitation(
            site_id=site.id,
            patient_id=patient.id,
            email=email,
            role=role,
            relationship_to_patient=relationship if role == "carer" else None,
            token_hash=sha256_hex(secret),
            expires_at=expires,
            created_by=principal.email,
        )
        work.session.add(row)
        work.session.flush()
        work.audit(
            "privilege_change",
            "proxy",
            patient=patient,
            site_code=site.code,
            details={"invited": email, "as": role, "invitation_id": row.id},
        )
        url = f"{link_base.rstrip('/')}{INVITATION_PATH}/{secret}"
        subject, text = _message(site.name, role, url, expires_in_hours, translator(language))
        # Sent last, inside the transaction: if the mail cannot go, nothing is saved.
        sent = mailer.send(to=email, subject=subject, text=text)
        return InvitationSent(row.id, email, role, patient.id, site.code, expires, sent.via)


@dataclass(frozen=True)
class _Found:
    invitation: AccountInvitation
    site: Site
    patient: Patient


def _find(session: Session, key: str) -> tuple[_Found | None, str]:
    """The invitation stored under ``key`` and ``ok``, or why it is refused."""
    # The link holder has no login yet: the secret is what authenticates them.
    set_scope(session, Scope.everything())
    row = session.execute(
        select(AccountInvitation, Site, Patient)
        .join(Site, Site.id == AccountInvitation.site_id)
        .join(Patient, Patient.id == AccountInvitation.patient_id)
        .where(AccountInvitation.token_hash == key)
    ).first()
    if row is None:
        return None, "unknown"
    found = _Found(*row)
    if found.invitation.used_at is not None:
        return found, "used"
    if as_utc(found.invitation.expires_at) <= utcnow():
        return found, "expired"
    return found, "ok"


def _refused(why: str) -> NotFound:
    messages = {
        "unknown": N_(
            "This invitation link is not valid. Check that you copied all of it, or "
            "ask your care team for a new one."
        ),
        "used": N_(
            "This link was already used. Each link works once. If you "
            "have set your password, log in. If not, ask your care team for a new link."
        ),
        "expired": N_("This invitation link has expired. Ask your care team for a new one."),
    }
    return NotFound(messages[why])


def _event(
    found: _Found | None,
    action: str,
    category: str,
    context: RequestContext,
    *,
    outcome: audit.Outcome = "success",
    user: User | None = None,
    details: dict[str, object],
) -> AuditEvent:
    invitation = found.invitation if found else None
    return AuditEvent(
        action=action,
        category=category,
        outcome=outcome,
        user_id=user.id if user else None,
        user_email=invitation.email if invitation else "invitation:unknown",
        site_code=found.site.code if found else None,
        patient_id=found.patient.id if found else None,
        patient_pseudo_id=found.patient.pseudo_id if found else None,
        request_id=context.request_id,
        client_addr=context.client_addr,
        details={"invitation_id": invitation.id if invitation else None, **details},
    )


def _refuse(registry: Registry, found: _Found | None, state: str, context: RequestContext) -> None:
    """Audit a refused link (``not_found``) and raise its plain refusal."""
    record_events(
        registry,
        [
            _event(
                found,
                "privilege_change",
                "identity",
                context,
                outcome="not_found",
                details={"refused": state},
            )
        ],
    )
    raise _refused(state)


def open_invitation_by_key(
    registry: Registry, key: str, *, context: RequestContext | None = None
) -> InvitationView:
    """What a valid link opens (no patient data); a refused link is audited.

    Raises:
        NotFound: The link is unknown, used or expired (the message says which).
    """
    with registry.transaction() as session:
        found, state = _find(session, key)
        if found is not None and state == "ok":
            invitation = found.invitation
            existing = session.scalar(select(User.id).where(User.email == invitation.email))
            return InvitationView(
                invitation.email,
                invitation.role,  # type: ignore[arg-type]
                found.site.name,
                existing is not None,
                as_utc(invitation.expires_at),
            )
    _refuse(registry, found, state, context or RequestContext())
    raise AssertionError("unreachable")


def accept_invitation_by_key(
    registry: Registry,
    key: str,
    *,
    display_name: str,
    password: str,
    lockout_settings: Settings,
    context: RequestContext | None = None,
) -> InvitationAccepted:
    """Accept the invitation stored under ``key``: create the account or add the carer's link.

    An existing carer's password is checked as at login: wrong ones count towards
    the address's lock-out (``lockout_settings``), and a locked address is refused.

    Raises:
        NotFound: The link is unknown, used or expired (audited; nothing changes).
        ValidationFailed: The display name or the new password breaks the rules.
        InvalidCredentials: An existing carer's password is wrong (audited).
        AccountLocked: Too many wrong passwords for that address (audited).
        Conflict: The link was used a moment ago, or the address or the record got
            a login since the invitation (nothing changes).
    """
    ctx = context or RequestContext()
    failure: AuthenticationRequired | None = None
    with registry.transaction() as session:
        found, state = _find(session, key)
        if found is not None and state == "ok":
            user = session.scalar(select(User).where(User.email == found.invitation.email))
            _check_still_possible(session, found, user)
            if user is None:
                return _accept(session, found, None, display_name, password, ctx)
            now = utcnow()
            if lockout.is_locked(session, user.email, now):
                why, failure = "locked", AccountLocked(LOCKED_MESSAGE)
            elif not user.disabled and verify_password(user.password_hash, password):
                lockout.clear(session, user.email)
                return _accept(session, found, user, display_name, password, ctx)
            else:
                lockout.record_failure(session, user.email, lockout_settings, now)
                why, failure = (
                    "wrong_password",
                    InvalidCredentials(
                        f"That is not the password of {user.email}. Enter the password you log "
                        "in to careloop with; this invitation adds a link to that account."
                    ),
                )
            refused: dict[str, object] = {"refused": why}
            audit.append_many(
                session,
                [
                    _event(
                        found,
                        "login_failed",
                        "session",
                        ctx,
                        outcome="failure",
                        user=user,
                        details=refused,
                    )
                ],
            )
    if failure is not None:
        raise failure
    _refuse(registry, found, state, ctx)
    raise AssertionError("unreachable")


def _check_still_possible(session: Session, found: _Found, user: User | None) -> None:
    """Refuse what changed since the invitation: the address or the record got a login."""
    if found.invitation.role == "patient":
        linked = session.scalar(select(User.id).where(User.patient_id == found.patient.id))
        if user is not None or linked is not None:
            raise Conflict(
                "This invitation can no longer be used: the address or the record has a "
                "careloop login already. Log in with it, or ask your care team."
            )
    elif user is not None and not any(m.role == "carer" for m in user.memberships):
        raise Conflict(
            f"{user.email} has a careloop account that is not a carer's; ask your care team "
            "to invite another address."
        )


def _accept(
    session: Session,
    found: _Found,
    user: User | None,
    display_name: str,
    password: str,
    context: RequestContext,
) -> InvitationAccepted:
    """Claim the link and give the account its role and link, in the caller's transaction."""
    invitation, site, patient = found.invitation, found.site, found.patient
    role: InvitedRole = "carer" if invitation.role == "carer" else "patient"
    events: list[AuditEvent] = []
    created = user is None
    if user is None:
        wrong = text_problem(display_name, what="a display name", max_length=200, required=True)
        if wrong:
            raise ValidationFailed(
                "The account was not created.",
                details=[ErrorDetail("display_name", wrong, shown(display_name))],
            )
        check_password_rules(password)
        user = User(
            email=invitation.email,
            display_name=display_name.strip(),
            password_hash=hash_password(password),
            patient_id=patient.id if role == "patient" else None,
        )
        session.add(user)
        session.flush()
        events.append(
            _event(
                found,
                "create",
                "identity",
                context,
                user=user,
                details={"user": user.email, "via": "invitation"},
            )
        )
    if not any(m.role == role and m.site_id == site.id for m in user.memberships):
        user.memberships.append(Membership(role=role, site_id=site.id))
        events.append(
            _event(
                found,
                "privilege_change",
                "identity",
                context,
                user=user,
                details={"user": user.email, "granted": role},
            )
        )
    if role == "carer":
        _link_carer(session, found, user)
        events.append(
            _event(
                found,
                "privilege_change",
                "proxy",
                context,
                user=user,
                details={"carer": user.email},
            )
        )
    claimed = session.execute(
        update(AccountInvitation)
        .where(AccountInvitation.id == invitation.id, AccountInvitation.used_at.is_(None))
        .values(used_at=utcnow(), user_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise Conflict("This invitation link was used a moment ago; each link works once.")
    session.flush()
    audit.append_many(session, events)
    return InvitationAccepted(user.email, role, patient.id, created)


def _link_carer(session: Session, found: _Found, user: User) -> None:
    link = session.scalar(
        select(CarerLink).where(
            CarerLink.carer_user_id == user.id, CarerLink.patient_id == found.patient.id
        )
    )
    relationship = found.invitation.relationship_to_patient or "carer"
    if link is None:
        session.add(
            CarerLink(
                site_id=found.site.id,
                patient_id=found.patient.id,
                carer_user_id=user.id,
                relationship_to_patient=relationship,
                scopes=CARER_SCOPES_ALL,
                scopes_set_by=found.invitation.created_by,
            )
        )
    else:  # a revoked link is given back by a new invitation, with every scope
        link.revoked_at = None
        link.relationship_to_patient = relationship
        link.scopes = CARER_SCOPES_ALL
        link.scopes_set_at = utcnow()
        link.scopes_set_by = found.invitation.created_by
