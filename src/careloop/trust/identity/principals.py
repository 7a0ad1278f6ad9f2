"""Who is acting: the principal of a user, and the audit events of identity actions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.clock import utcnow
from careloop.store.database import Registry
from careloop.store.models import CarerLink, Patient, User
from careloop.trust import audit
from careloop.trust.audit import AuditEvent
from careloop.trust.handover import (
    DEFAULT_HANDOVER_AGE,
    effective_scopes,
    is_child,
    parse_scopes,
)
from careloop.trust.identity.views import _site_codes
from careloop.trust.principal import Grant, Principal, Proxy, RequestContext
from careloop.trust.work import record_events


def proxies_of(
    session: Session,
    user_id: int,
    *,
    handover_age: int = DEFAULT_HANDOVER_AGE,
    now: datetime | None = None,
) -> tuple[Proxy, ...]:
    """A carer's live links as they hold on ``now``: scopes set for a child lapse at hand-over."""
    today = (now or utcnow()).date()
    rows = session.execute(
        select(CarerLink.patient_id, CarerLink.scopes, CarerLink.scopes_set_at, Patient.birth_date)
        .join(Patient, Patient.id == CarerLink.patient_id)
        .where(CarerLink.carer_user_id == user_id, CarerLink.revoked_at.is_(None))
        .order_by(CarerLink.patient_id)
        .execution_options(careloop_unscoped=True)
    ).all()
    proxies = []
    for patient_id, stored, set_at, birth_date in rows:
        scopes = effective_scopes(
            parse_scopes(stored),
            set_at=set_at,
            birth_date=birth_date,
            today=today,
            handover_age=handover_age,
        )
        guardian = "manage_consent" in scopes and is_child(birth_date, today, handover_age)
        proxies.append(Proxy(patient_id, scopes, guardian))
    return tuple(proxies)


def principal_for(
    session: Session,
    user: User,
    context: RequestContext,
    *,
    handover_age: int = DEFAULT_HANDOVER_AGE,
    now: datetime | None = None,
) -> Principal:
    """The principal of a loaded user: grants, own record, proxied patients and their scopes.

    ``handover_age`` is ``CARELOOP_HANDOVER_AGE``: a carer's scopes granted
    while the patient was a child do not reach past it (careloop.trust.handover).
    """
    codes = _site_codes(session)
    grants = tuple(
        Grant(m.role, m.site_id, codes.get(m.site_id) if m.site_id else None)  # type: ignore[arg-type]
        for m in user.memberships
    )
    return Principal(
        user_id=user.id,
        email=user.email,
        grants=grants,
        patient_id=user.patient_id,
        proxies=proxies_of(session, user.id, handover_age=handover_age, now=now),
        context=context,
    )


def _identity_event(
    action: str,
    outcome: audit.Outcome,
    context: RequestContext,
    *,
    user: User | None = None,
    email: str | None = None,
    details: dict[str, object] | None = None,
) -> AuditEvent:
    return AuditEvent(
        action=action,
        category="session",
        outcome=outcome,
        user_id=user.id if user else None,
        user_email=user.email if user else email,
        request_id=context.request_id,
        client_addr=context.client_addr,
        details=details,
    )


def record_operator_event(
    registry: Registry, principal: Principal, action: str, details: dict[str, object]
) -> None:
    """Audit an operator action that touches no row (e.g. a data directory initialised)."""
    record_events(
        registry,
        [
            AuditEvent(
                action=action,
                category="installation",
                user_email=principal.email,
                role=principal.role_label(),
                details=details,
            )
        ],
    )
