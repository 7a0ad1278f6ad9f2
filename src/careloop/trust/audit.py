"""The audit trail: append-only and SHA-256 hash-chained.

Every create, read, update, delete and export of identifiable data, every
login, logout and failed login, and every privilege change appends one entry
in the same database transaction as the action itself. Each entry stores the
SHA-256 of its own content together with the previous entry's hash, and a
head row records the last sequence number and hash: any edited, deleted,
inserted or reordered entry breaks the chain at that entry, and entries cut
from the end no longer match the head. :func:`verify_chain` walks the chain.

The database refuses UPDATE and DELETE on the table (triggers made by the
migration) and careloop has no code path that changes an entry. An attacker
who can rewrite the whole database could rebuild the chain; anchor the head
outside the installation (``careloop audit head`` in a separate log) and pass
it to ``careloop audit verify --expect-head`` to rule that out.

Concurrency: appends are serialised by an advisory transaction lock on
PostgreSQL and by SQLite's ``BEGIN IMMEDIATE`` write lock, so sequence numbers
have no gaps and no two entries share a predecessor.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from careloop.core.clock import iso_utc, utcnow
from careloop.core.errors import InputError
from careloop.store.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
# Arbitrary constant naming careloop's audit-chain lock among PostgreSQL advisory locks.
_PG_AUDIT_LOCK_KEY = 0x6361_7265_6C6F_6F70 & 0x7FFF_FFFF_FFFF_FFFF

Outcome = Literal["success", "denied", "not_found", "failure"]

# Columns covered by the hash, in order. ``entry_hash`` itself is not.
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "user_id",
    "user_email",
    "role",
    "site_code",
    "patient_id",
    "patient_pseudo_id",
    "action",
    "category",
    "outcome",
    "reason",
    "request_id",
    "client_addr",
    "details",
    "prev_hash",
)


@dataclass(frozen=True)
class AuditEvent:
    """What happened, to be appended to the trail."""

    action: str
    """create, read, update, delete, export, login, logout, login_failed, privilege_change…"""
    category: str
    """The kind of data touched: demographics, clinical, consent, identity, session, audit…"""
    outcome: Outcome = "success"
    """success, denied, not_found or failure."""
    user_id: int | None = None
    user_email: str | None = None
    role: str | None = None
    site_code: str | None = None
    patient_id: int | None = None
    patient_pseudo_id: str | None = None
    reason: str | None = None
    """The reason for change, required on edits of clinical data."""
    request_id: str | None = None
    client_addr: str | None = None
    details: dict[str, Any] | None = None
    """Extra facts (field names changed, counts) — never clinical values."""


def entry_digest(values: dict[str, Any]) -> str:
    """SHA-256 of an entry's hashed fields as canonical JSON."""
    payload = json.dumps(
        [values.get(name) for name in HASHED_FIELDS],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _row_values(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in HASHED_FIELDS}


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK_KEY})
    # SQLite: the transaction already holds the database write lock (BEGIN IMMEDIATE).


def _entry_values(event: AuditEvent, seq: int, prev_hash: str, occurred_at: str) -> dict[str, Any]:
    """The hashed fields of the entry ``event`` becomes at position ``seq``."""
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


def append(session: Session, event: AuditEvent) -> AuditEntry:
    """Append ``event`` to the chain inside the caller's transaction."""
    _lock_chain(session)
    head = session.get(AuditHead, 1, populate_existing=True)
    seq = head.seq + 1 if head else 1
    prev_hash = head.entry_hash if head else GENESIS_HASH
    values = _entry_values(event, seq, prev_hash, iso_utc(utcnow()))
    entry = AuditEntry(**values, entry_hash=entry_digest(values))
    session.add(entry)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, entry_hash=entry.entry_hash))
    else:
        head.seq = seq
        head.entry_hash = entry.entry_hash
    session.flush()
    return entry


def append_many(session: Session, events: Sequence[AuditEvent]) -> None:
    """Append ``events`` in order with one multi-row INSERT (bulk imports and exports).

    The entries are exactly those :func:`append` would write one by one.
    """
    if len(events) <= 1:
        for event in events:
            append(session, event)
        return
    _lock_chain(session)
    head = session.get(AuditHead, 1, populate_existing=True)
    seq = head.seq if head else 0
    prev_hash = head.entry_hash if head else GENESIS_HASH
    occurred_at = iso_utc(utcnow())
    rows: list[dict[str, Any]] = []
    for event in events:
        seq += 1
        values = _entry_values(event, seq, prev_hash, occurred_at)
        prev_hash = entry_digest(values)
        rows.append({**values, "entry_hash": prev_hash})
    session.execute(insert(cast(Table, AuditEntry.__table__)), rows)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, entry_hash=prev_hash))
    else:
        head.seq = seq
        head.entry_hash = prev_hash
    session.flush()


@dataclass(frozen=True)
class ChainVerification:
    """The result of walking the audit chain."""

    intact: bool
    """True when every entry and the head check out."""
    entries_checked: int
    """How many entries were read."""
    first_bad_seq: int | None
    """Sequence number of the first entry that fails, or None."""
    problem: str | None
    """What is wrong there, in words."""
    head_seq: int | None
    """The last sequence number according to the head row."""
    head_hash: str | None
    """The last entry's hash according to the head row."""


def _iter_entries(session: Session, batch: int = 2000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify_chain(
    session: Session, *, expect_head: tuple[int, str] | None = None
) -> ChainVerification:
    """Walk the whole chain and report the first entry that does not check out."""
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.entry_hash) if head else (None, None)
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0

    def bad(seq: int, problem: str) -> ChainVerification:
        return ChainVerification(False, checked, seq, problem, head_seq, head_hash)

    for entry in _iter_entries(session):
        checked += 1
        if entry.seq != expected_seq:
            return bad(
                expected_seq,
                f"entry {expected_seq} is missing (the next entry is {entry.seq})",
            )
        if entry.prev_hash != prev_hash:
            return bad(entry.seq, "its link to the previous entry does not match")
        if entry_digest(_row_values(entry)) != entry.entry_hash:
            return bad(entry.seq, "its content does not match its hash (it was altered)")
        prev_hash = entry.entry_hash
        expected_seq += 1
    last_seq = expected_seq - 1
    if head_seq is None and last_seq > 0:
        return bad(last_seq, "the chain head record is missing")
    if head_seq is not None and (head_seq != last_seq or head_hash != prev_hash):
        if head_seq > last_seq:
            return bad(last_seq + 1, f"entries {last_seq + 1} to {head_seq} are missing")
        return bad(last_seq, "the chain head does not match the last entry")
    if expect_head is not None:
        seq, digest = expect_head
        if seq > last_seq:
            return bad(last_seq + 1, f"entries after {last_seq} up to {seq} are missing")
        anchored = session.get(AuditEntry, seq)
        if anchored is None or anchored.entry_hash != digest:
            return bad(seq, "it does not match the externally anchored head")
    return ChainVerification(True, checked, None, None, head_seq, head_hash)


@dataclass(frozen=True)
class AuditFilter:
    """Which entries an audit report includes (all conditions must hold)."""

    since: datetime | None = None
    until: datetime | None = None
    user: str | None = None
    """User id or e-mail."""
    patient: str | None = None
    """Patient id or pseudonymous id."""
    action: str | None = None
    site_codes: Sequence[str] | None = None
    """Restrict to these sites (an auditor of some sites); None for all."""


def report_entries(
    session: Session, criteria: AuditFilter, *, limit: int = 100_000
) -> list[AuditEntry]:
    """Entries matching ``criteria``, oldest first."""
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if criteria.since is not None:
        query = query.where(AuditEntry.occurred_at >= iso_utc(criteria.since))
    if criteria.until is not None:
        query = query.where(AuditEntry.occurred_at < iso_utc(criteria.until))
    if criteria.user:
        if criteria.user.isdigit():
            query = query.where(AuditEntry.user_id == int(criteria.user))
        else:
            query = query.where(AuditEntry.user_email == criteria.user.lower())
    if criteria.patient:
        if criteria.patient.isdigit():
            query = query.where(AuditEntry.patient_id == int(criteria.patient))
        else:
            query = query.where(AuditEntry.patient_pseudo_id == criteria.patient)
    if criteria.action:
        query = query.where(AuditEntry.action == criteria.action)
    if criteria.site_codes is not None:
        query = query.where(AuditEntry.site_code.in_(list(criteria.site_codes)))
    return list(session.scalars(query.limit(limit)))


REPORT_COLUMNS = ("seq", "occurred_at", *HASHED_FIELDS[2:15], "entry_hash")


def entries_as_records(entries: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    return [{name: getattr(e, name) for name in REPORT_COLUMNS} for e in entries]


def render_report(entries: Sequence[AuditEntry], fmt: Literal["csv", "json"]) -> str:
    """An auditor's report as CSV or JSON text."""
    records = entries_as_records(entries)
    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(REPORT_COLUMNS))
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    raise InputError(f"Unknown report format {fmt!r}; use csv or json.")
