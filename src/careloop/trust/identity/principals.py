"""Who is acting: the principal of a user, and the audit events of identity actions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.store.database import Registry
from careloop.store.models import CarerLink, User
from careloop.trust import audit
from careloop.trust.audit import AuditEvent
from careloop.trust.identity.views import _site_codes
from careloop.trust.principal import Grant, Principal, RequestContext
from careloop.trust.work import record_events


def principal_for(session: Session, user: User, context: RequestContext) -> Principal:
    """The principal of a loaded user: grants, own record, proxied patients."""
    codes = _site_codes(session)
    grants = tuple(
        Grant(m.role, m.site_id, codes.get(m.site_id) if m.site_id else None)  # type: ignore[arg-type]
        for m in user.memberships
    )
    proxied = tuple(
        session.scalars(
            select(CarerLink.patient_id)
            .where(CarerLink.carer_user_id == user.id, CarerLink.revoked_at.is_(None))
            .execution_options(careloop_unscoped=True)
        )
    )
    return Principal(
        user_id=user.id,
        email=user.email,
        grants=grants,
        patient_id=user.patient_id,
        proxied_patient_ids=proxied,
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
