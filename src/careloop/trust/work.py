"""The unit of work: one transaction, one principal, one action, its audit entries.

Every change and every identifiable read goes through :func:`unit_of_work`.
It checks the action against the policy, scopes the session to the rows the
principal may touch for that action (careloop.store.scoping), and lets the
caller append audit entries. When the work fails with a careloop error (not
found, denied, invalid) the attempt is still audited, in a transaction of
its own, because the original one was rolled back.

Writes and reads are audited differently, so that reads never queue behind
each other or in front of writers:

- An action that changes data runs in a writing transaction, and its audit
  entries commit or roll back together with the change.
- An action that only reads (:func:`careloop.trust.policy.reads_only`) runs
  in a read-only transaction, which on SQLite never takes the write lock.
  Its audit entries are kept aside and appended in a short writing
  transaction of their own as soon as the read is done, before the unit of
  work hands anything back: when they cannot be written the unit of work
  fails, so nothing read leaves without its audit entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from careloop.core.errors import CareloopError, NotFound, PermissionDenied
from careloop.store.database import Registry
from careloop.store.models import Patient
from careloop.store.scoping import Scope, set_scope
from careloop.trust import audit
from careloop.trust.audit import AuditEvent, Outcome
from careloop.trust.policy import reads_only
from careloop.trust.principal import Principal


@dataclass
class Work:
    """What the code inside a unit of work uses: the session and the audit trail."""

    session: Session
    principal: Principal
    scope: Scope
    action: str
    attempted: list[AuditEvent] = field(default_factory=list)
    """Events to record with outcome ``denied``/``not_found`` if the work fails."""
    read_only: bool = False
    """The work only reads: its audit entries are written once the read is done."""
    pending: list[AuditEvent] = field(default_factory=list)
    """Audit events of a read-only work, appended when it ends without error."""

    def event(
        self,
        action: str,
        category: str,
        *,
        patient: Patient | None = None,
        site_code: str | None = None,
        outcome: Outcome = "success",
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """An audit event on behalf of this principal (not yet written)."""
        p = self.principal
        return AuditEvent(
            action=action,
            category=category,
            outcome=outcome,
            user_id=p.user_id,
            user_email=p.email,
            role=p.role_label() or None,
            site_code=site_code,
            patient_id=patient.id if patient is not None else None,
            patient_pseudo_id=patient.pseudo_id if patient is not None else None,
            reason=reason,
            request_id=p.context.request_id,
            client_addr=p.context.client_addr,
            details=details,
        )

    def audit(self, action: str, category: str, **kwargs: Any) -> None:
        """Append an audit entry (in this transaction, or right after a read)."""
        self.audit_events([self.event(action, category, **kwargs)])

    def audit_events(self, events: list[AuditEvent]) -> None:
        """Append these audit entries, in order (see :meth:`audit`)."""
        if self.read_only:
            self.pending.extend(events)
        else:
            audit.append_many(self.session, events)

    def expect(self, action: str, category: str, **kwargs: Any) -> None:
        """Declare what is being attempted, so a failure is audited too."""
        self.attempted.append(self.event(action, category, **kwargs))


def _failure_outcome(exc: CareloopError) -> Outcome:
    if isinstance(exc, PermissionDenied):
        return "denied"
    if isinstance(exc, NotFound):
        return "not_found"
    return "failure"


def record_events(registry: Registry, events: list[AuditEvent]) -> None:
    """Write audit events in a transaction of their own."""
    if not events:
        return
    with registry.transaction() as session:
        audit.append_many(session, events)


@contextmanager
def unit_of_work(
    registry: Registry, principal: Principal, action: str, *, read_only: bool | None = None
) -> Iterator[Work]:
    """Run one action for ``principal`` in one audited, scoped transaction.

    ``read_only`` defaults to what the policy says of ``action``; a read-only
    work that tries to write fails (the database refuses it too).

    Raises PermissionDenied (audited) when the principal's roles allow the
    action nowhere.
    """
    reading = reads_only(action) if read_only is None else read_only
    scope = principal.scope_for(action)
    if scope == Scope.nothing():
        denied = PermissionDenied(
            f"Your role ({principal.role_label() or 'none'}) does not allow this ({action})."
        )
        record_events(
            registry,
            [
                AuditEvent(
                    action=action,
                    category="access",
                    outcome="denied",
                    user_id=principal.user_id,
                    user_email=principal.email,
                    role=principal.role_label() or None,
                    request_id=principal.context.request_id,
                    client_addr=principal.context.client_addr,
                )
            ],
        )
        raise denied
    work: Work | None = None
    try:
        with registry.read_transaction() if reading else registry.transaction() as session:
            set_scope(session, scope)
            work = Work(
                session=session,
                principal=principal,
                scope=scope,
                action=action,
                read_only=reading,
            )
            yield work
        record_events(registry, work.pending)
    except CareloopError as exc:
        if work is not None and work.attempted:
            outcome = _failure_outcome(exc)
            record_events(registry, [replace(e, outcome=outcome) for e in work.attempted])
        raise
