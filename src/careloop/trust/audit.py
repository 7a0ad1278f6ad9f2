"""The audit trail: append-only, SHA-256 hash-chained, sealed, never empty.

Every create, read, update, delete and export of identifiable data, every
login, logout and failed login, and every privilege change appends one entry
in the same database transaction as the action itself. Each entry stores the
SHA-256 of its own content together with the previous entry's hash, and a
head row records the last sequence number and hash: any edited, deleted,
inserted or reordered entry breaks the chain at that entry, and entries cut
from the end no longer match the head.

What someone with write access to the database could still do, and what
stops it:

- empty the trail: the chain starts with a genesis entry named by a
  write-once installation record, so an installation never verifies empty;
- rebuild, cut or extend the chain and move the head to match: the head
  carries an HMAC seal under a key derived from the installation's secret
  key, which is not in the database; careloop checks the seal before each
  append and writes an ``audit_alarm`` entry when it does not hold, so the
  next append cannot bless the change;
- switch off, rename or replace the tables' triggers: the verifier checks
  the guards (careloop.store.audit_guards) are whole;
- hold both the database and the secret key (or re-create the installation):
  only a head anchored outside the installation catches that
  (``careloop audit head`` published elsewhere, then
  ``careloop audit verify --expect-head``).

:func:`verify_chain` checks all of it.

Concurrency: appends are serialised by an advisory transaction lock on
PostgreSQL and by SQLite's ``BEGIN IMMEDIATE`` write lock, so sequence numbers
have no gaps and no two entries share a predecessor.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from careloop.core.clock import iso_utc, utcnow
from careloop.core.csv_safety import safe_writer
from careloop.core.errors import InputError
from careloop.store import audit_guards
from careloop.store.models import AuditEntry, AuditHead, Installation

GENESIS_HASH = audit_guards.GENESIS_HASH
SEAL_KEY_INFO = "careloop.audit_seal_key"
"""Where a session's ``info`` holds the head-seal key (set by careloop.trust.installation)."""
ALARM_ACTION = "audit_alarm"
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


def seal_key(secret_key: str) -> bytes:
    """The key that seals the chain head, derived from the installation's secret key."""
    return hmac.new(secret_key.encode("utf-8"), b"careloop audit head seal v1", "sha256").digest()


def head_seal(key: bytes, seq: int, entry_hash: str) -> str:
    """The seal of a head at ``seq`` whose last entry hashes to ``entry_hash``."""
    return hmac.new(key, f"{seq}:{entry_hash}".encode("ascii"), "sha256").hexdigest()


def _installation(session: Session) -> Installation | None:
    return session.get(Installation, 1, populate_existing=True)


def _head_problem(session: Session, head: AuditHead | None, key: bytes) -> str | None:
    """Why the head is not one careloop left, or None when it is."""
    if head is None:
        return "the chain head record was missing"
    if head.seal is None:
        # Only the genesis head, written by the migration (which holds no key), is unsealed.
        record = _installation(session)
        if record is not None and (head.seq, head.entry_hash) == (
            record.genesis_seq,
            record.genesis_hash,
        ):
            return None
        return "the chain head carried no seal"
    if not hmac.compare_digest(head.seal, head_seal(key, head.seq, head.entry_hash)):
        return (
            "the chain head's seal did not match: the head was moved outside careloop "
            "(or the installation's secret key changed)"
        )
    return None


def _write(session: Session, events: Sequence[AuditEvent]) -> list[dict[str, Any]]:
    """Append ``events`` after the head, move the head and seal it; return the rows written.

    When the head is not as careloop left it (moved, unsealed or deleted by
    someone with database access), an ``audit_alarm`` entry saying so is
    written first: the next append must not bless a trail cut or rebuilt
    behind careloop's back with a fresh seal.
    """
    _lock_chain(session)
    head = session.get(AuditHead, 1, populate_existing=True)
    key = session.info.get(SEAL_KEY_INFO)
    if isinstance(key, bytes):
        problem = _head_problem(session, head, key)
        if problem is not None:
            alarm = AuditEvent(
                action=ALARM_ACTION,
                category="audit",
                outcome="failure",
                details={
                    "problem": problem,
                    "head_seq": head.seq if head else None,
                    "head_hash": head.entry_hash if head else None,
                },
            )
            events = [alarm, *events]
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
    # The entries first: the database checks that the head moves to the last of them.
    seal = head_seal(key, seq, prev_hash) if isinstance(key, bytes) else None
    if head is None:
        session.add(AuditHead(id=1, seq=seq, entry_hash=prev_hash, seal=seal))
    else:
        head.seq = seq
        head.entry_hash = prev_hash
        head.seal = seal
    session.flush()
    return rows


def append(session: Session, event: AuditEvent) -> AuditEntry:
    """Append ``event`` to the chain inside the caller's transaction; return (a copy of) it."""
    row = _write(session, [event])[-1]
    return AuditEntry(**row)


def append_many(session: Session, events: Sequence[AuditEvent]) -> None:
    """Append ``events`` in order with one multi-row INSERT (bulk imports and exports).

    The entries are exactly those :func:`append` would write one by one.
    """
    if events:
        _write(session, events)


@dataclass(frozen=True)
class ChainVerification:
    """The result of walking the audit chain."""

    intact: bool
    """True when every entry, the head, the installation record and the guards check out."""
    entries_checked: int
    """How many entries were read."""
    first_bad_seq: int | None
    """Sequence number of the first entry that fails, or None."""
    problem: str | None
    """What is wrong there (the first problem), in words."""
    head_seq: int | None
    """The last sequence number according to the head row."""
    head_hash: str | None
    """The last entry's hash according to the head row."""
    problems: tuple[str, ...] = ()
    """Every problem found, the first one first."""
    installation_id: str | None = None
    """The installation the trail belongs to (from its installation record)."""
    seal_checked: bool = False
    """Whether the head's keyed seal was checked (the registry was opened with the key)."""


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


@dataclass
class _Walk:
    checked: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    hashes_at: dict[int, str] = field(default_factory=dict)
    """Hashes of the entries the other checks look up (genesis, anchored head)."""
    broken: tuple[int, str] | None = None
    alarms: list[tuple[int, str]] = field(default_factory=list)


def _walk(session: Session, wanted: set[int]) -> _Walk:
    walk = _Walk()
    expected_seq = 1
    for entry in _iter_entries(session):
        walk.checked += 1
        if entry.seq != expected_seq:
            walk.broken = (
                expected_seq,
                f"entry {expected_seq} is missing (the next entry is {entry.seq})",
            )
            return walk
        if entry.prev_hash != walk.last_hash:
            walk.broken = (entry.seq, "its link to the previous entry does not match")
            return walk
        if entry_digest(_row_values(entry)) != entry.entry_hash:
            walk.broken = (entry.seq, "its content does not match its hash (it was altered)")
            return walk
        if entry.action == ALARM_ACTION:
            found = json.loads(entry.details or "{}").get("problem", "the head was altered")
            walk.alarms.append((entry.seq, f"careloop found when writing this entry that {found}"))
        if entry.seq in wanted:
            walk.hashes_at[entry.seq] = entry.entry_hash
        walk.last_hash = entry.entry_hash
        walk.last_seq = entry.seq
        expected_seq += 1
    return walk


def verify_chain(
    session: Session, *, expect_head: tuple[int, str] | None = None
) -> ChainVerification:
    """Walk the whole chain and check everything that can show it was tampered with.

    The entries link from genesis to the head, each matching its hash; the
    installation record exists and its genesis entry is in the chain (so an
    emptied trail is broken); the head matches the last entry and carries
    careloop's seal (when the session holds the key); no entry records an
    alarm; the database's guards are whole; and the chain reaches the
    externally anchored head ``expect_head``, if given.
    """
    problems: list[tuple[int | None, str]] = []
    guards = audit_guards.guard_problems(session.connection())
    try:
        with session.begin_nested():  # a missing table must not abort the transaction
            record = _installation(session)
    except DBAPIError:
        record = None
        problems.append((None, "the installation table is missing"))
    head = session.get(AuditHead, 1, populate_existing=True)
    head_seq, head_hash = (head.seq, head.entry_hash) if head else (None, None)
    wanted = {seq for seq in (record.genesis_seq if record else None,) if seq is not None}
    if expect_head is not None:
        wanted.add(expect_head[0])
    walk = _walk(session, wanted)
    if walk.broken is not None:
        problems.append(walk.broken)
    if record is None and not problems:
        problems.append(
            (None, "the installation record is missing, so an emptied trail cannot be ruled out")
        )
    if walk.broken is None and record is not None:
        problems.extend(_genesis_problems(record, walk))
    if walk.broken is None:
        problems.extend(_head_problems(walk, head_seq, head_hash))
    key = session.info.get(SEAL_KEY_INFO)
    seal_checked = isinstance(key, bytes)
    if seal_checked and head is not None and walk.broken is None:
        problems.extend(_seal_problems(cast(bytes, key), head, record))
    problems.extend(walk.alarms)
    problems.extend((None, f"the database's guard on the trail is gone: {g}") for g in guards)
    if expect_head is not None:
        problems.extend(_anchor_problems(expect_head, walk))
    first_seq = next((seq for seq, _ in problems if seq is not None), None)
    return ChainVerification(
        intact=not problems,
        entries_checked=walk.checked,
        first_bad_seq=first_seq,
        problem=problems[0][1] if problems else None,
        head_seq=head_seq,
        head_hash=head_hash,
        problems=tuple(text for _, text in problems),
        installation_id=record.installation_id if record else None,
        seal_checked=seal_checked,
    )


def _genesis_problems(record: Installation, walk: _Walk) -> list[tuple[int | None, str]]:
    """Whether the intact chain still holds this installation's genesis entry."""
    found: list[tuple[int | None, str]] = []
    last_seq = walk.last_seq
    if last_seq < record.genesis_seq:
        what = "empty" if last_seq == 0 else f"cut after entry {last_seq}"
        found.append(
            (
                last_seq + 1,
                f"the trail is {what}, but this installation started it at entry "
                f"{record.genesis_seq} on {record.created_at}",
            )
        )
    elif walk.hashes_at.get(record.genesis_seq) != record.genesis_hash:
        found.append(
            (record.genesis_seq, "the genesis entry does not match the installation record")
        )
    return found


def _head_problems(
    walk: _Walk, head_seq: int | None, head_hash: str | None
) -> list[tuple[int | None, str]]:
    """Whether the head record names the intact chain's last entry."""
    found: list[tuple[int | None, str]] = []
    last_seq = walk.last_seq
    if head_seq is None and last_seq > 0:
        found.append((last_seq, "the chain head record is missing"))
    elif head_seq is not None and (head_seq != last_seq or head_hash != walk.last_hash):
        if head_seq > last_seq:
            found.append((last_seq + 1, f"entries {last_seq + 1} to {head_seq} are missing"))
        else:
            found.append((last_seq, "the chain head does not match the last entry"))
    return found


def _seal_problems(
    key: bytes, head: AuditHead, record: Installation | None
) -> list[tuple[int | None, str]]:
    """Whether the head carries careloop's seal (the genesis head may be unsealed)."""
    found: list[tuple[int | None, str]] = []
    unsealed_genesis = (
        head.seal is None
        and record is not None
        and (head.seq, head.entry_hash) == (record.genesis_seq, record.genesis_hash)
    )
    if not unsealed_genesis and (
        head.seal is None
        or not hmac.compare_digest(head.seal, head_seal(key, head.seq, head.entry_hash))
    ):
        found.append(
            (
                head.seq,
                "the chain head does not carry careloop's seal: it was rewritten outside "
                "careloop (or the installation's secret key changed)",
            )
        )
    return found


def _anchor_problems(expect_head: tuple[int, str], walk: _Walk) -> list[tuple[int | None, str]]:
    """Whether the chain reaches the externally anchored head."""
    found: list[tuple[int | None, str]] = []
    seq, digest = expect_head
    last_seq = walk.last_seq
    if seq > last_seq:
        found.append(
            (last_seq + 1, f"entries after {last_seq} up to the anchored {seq} are missing")
        )
    elif walk.hashes_at.get(seq) != digest:
        found.append((seq, "it does not match the externally anchored head"))
    return found


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
        # User-controlled text (a failed login's e-mail, a request id) lands here.
        out = io.StringIO()
        writer = safe_writer(out)
        writer.writerow(REPORT_COLUMNS)
        writer.writerows([record[name] for name in REPORT_COLUMNS] for record in records)
        return out.getvalue()
    raise InputError(f"Unknown report format {fmt!r}; use csv or json.")
