"""Appending many audit entries at once, for bulk imports and exports.

:func:`careloop.trust.audit.append` writes one entry with two round trips;
a bulk import touching thousands of patients writes one entry per patient,
so this appends them to the same hash chain with one multi-row INSERT and
one head update. The entries are built exactly as ``append`` builds them
(same hashed fields, same canonical JSON), so ``careloop audit verify``
checks them like any other. It belongs in careloop.trust.audit (as
``append_many``); it lives here until that module grows one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, text
from sqlalchemy.orm import Session

from careloop.core.clock import iso_utc, utcnow
from careloop.store.models import AuditEntry, AuditHead
from careloop.trust.audit import GENESIS_HASH, AuditEvent, append, entry_digest

__all__ = ["append_many"]

# Same lock key as careloop.trust.audit: appends of both kinds are serialised together.
_PG_AUDIT_LOCK_KEY = 0x6361_7265_6C6F_6F70 & 0x7FFF_FFFF_FFFF_FFFF


def _values(event: AuditEvent, seq: int, prev_hash: str, occurred_at: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "occurred_at": occurred_at,
        "user_id": event.user_id,
        "user_email": event.user_email,
        "role": event.role,
        "site_code": event.site_code,
        "patient_id": event.patient_id,
        "patient_pseudo_id": event.patient_pseudo_id,
        "action": event.action,
        "category": event.category,
        "outcome": event.outcome,
        "reason": event.reason,
        "request_id": event.request_id,
        "client_addr": event.client_addr,
        "details": (
            json.dumps(event.details, sort_keys=True, separators=(",", ":"), default=str)
            if event.details
            else None
        ),
        "prev_hash": prev_hash,
    }


def append_many(session: Session, events: Sequence[AuditEvent]) -> None:
    """Append ``events`` to the chain, in order, inside the caller's transaction."""
    if len(events) <= 1:
        for event in events:
            append(session, event)
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK_KEY})
    head = session.get(AuditHead, 1, populate_existing=True)
    seq = head.seq if head else 0
    prev_hash = head.entry_hash if head else GENESIS_HASH
    occurred_at = iso_utc(utcnow())
    rows: list[dict[str, Any]] = []
    for event in events:
        seq += 1
        values = _values(event, seq, prev_hash, occurred_at)
        prev_hash = entry_digest(values)
        rows.append({**values, "entry_hash": prev_hash})
    session.execute(insert(cast(Table, AuditEntry.__table__)), rows)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, entry_hash=prev_hash))
    else:
        head.seq = seq
        head.entry_hash = prev_hash
    session.flush()
