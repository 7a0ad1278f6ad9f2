"""Finding entries in the audit trail: filters, keyset pages, plain-words rows, CSV export.

An auditor's questions ("who read this patient's record last week?", "what
did this user do?", "what was refused at site A?") are filters on the trail.
The trail only grows, so pages are keyed by sequence number, newest first: a
page ``before`` entry N holds the entries older than N, one ``after`` entry N
the entries newer than N. Paging this way never skips or repeats an entry
while new entries are appended, and costs the same on page 1 and page 1,000.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from careloop.core.clock import iso_utc
from careloop.core.csv_safety import safe_writer
from careloop.core.errors import ErrorDetail, InputError
from careloop.store.models import AuditEntry
from careloop.trust.audit import REPORT_COLUMNS

OutcomeFilter = Literal["success", "failure", "refused", "denied", "not_found"]
"""``refused`` is ``denied`` or ``not_found`` (careloop answers "not found" for another
site's record, so a refusal never says whether it exists)."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EXPORT_MAX_ROWS = 100_000
"""The most entries one CSV export holds (narrow the filter for more)."""
DETAILS_SHOWN = 1000
"""Characters of an entry's details a page shows; the CSV export holds them whole."""

KNOWLEDGE_DECISIONS = (
    "knowledge.add",
    "knowledge.submit",
    "knowledge.send_back",
    "knowledge.approve",
    "knowledge.activate",
    "knowledge.deploy",
    "knowledge.retire",
)
"""Audit actions of the knowledge lifecycle (careloop.knowledge.library), in lifecycle order."""

_DECISION_WORDS = {
    "knowledge.add": "proposed (new version added)",
    "knowledge.submit": "sent for review",
    "knowledge.send_back": "sent back to draft",
    "knowledge.approve": "approved",
    "knowledge.activate": "switched on",
    "knowledge.deploy": "deployed",
    "knowledge.retire": "retired",
}
_VERBS = {
    "read": "Read",
    "create": "Created",
    "update": "Changed",
    "delete": "Deleted",
    "export": "Exported",
    "login": "Signed in",
    "logout": "Signed out",
    "login_failed": "Failed to sign in",
    "privilege_change": "Changed the roles of an account",
    "audit_alarm": "ALARM: the audit trail's head was altered outside careloop",
}
_OUTCOME_WORDS = {
    "success": "done",
    "denied": "refused: not allowed",
    "not_found": "refused: not found or not theirs to see",
    "failure": "failed",
}


@dataclass(frozen=True)
class AuditQuery:
    """Which entries an auditor asks for (every condition given must hold)."""

    since: datetime | None = None
    """From this moment (inclusive)."""
    until: datetime | None = None
    """Before this moment."""
    user: str | None = None
    """User e-mail (any case) or numeric user id."""
    action: str | None = None
    """e.g. ``read``, ``login_failed``, ``knowledge.approve``."""
    category: str | None = None
    """What kind of thing was touched: demographics, clinical, consent, identity, audit…"""
    site: str | None = None
    """Site code."""
    outcome: OutcomeFilter | None = None
    patient: str | None = None
    """Patient pseudonymous id, or numeric patient id."""

    def as_details(self) -> dict[str, str]:
        """The filters given, for the audit entry of the read and for links."""
        out: dict[str, str] = {}
        for name in ("since", "until", "user", "action", "category", "site", "outcome", "patient"):
            value = getattr(self, name)
            if value not in (None, ""):
                out[name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out


def check_query(query: AuditQuery) -> None:
    """Raise InputError naming each parameter that cannot be a filter."""
    problems: list[ErrorDetail] = []
    for name in ("since", "until"):
        moment = getattr(query, name)
        try:
            if moment is not None:
                iso_utc(moment)
        except OverflowError:
            problems.append(
                ErrorDetail(name, f"'{name}' is out of range: give a year 1–9999 in UTC.")
            )
    if problems:
        raise InputError("The audit filter is not valid.", details=problems)
    if query.since is not None and query.until is not None and query.since >= query.until:
        problems.append(
            ErrorDetail(
                "until",
                f"'until' ({query.until.isoformat()}) must be after 'since' "
                f"({query.since.isoformat()}); swap them or widen the range.",
            )
        )
    for name, longest in (("user", 254), ("action", 32), ("category", 32), ("site", 32)):
        value = getattr(query, name)
        if value is not None and len(value) > longest:
            problems.append(
                ErrorDetail(name, f"'{name}' is {len(value)} characters; at most {longest}.")
            )
    if query.patient is not None and len(query.patient) > 32:
        problems.append(ErrorDetail("patient", "'patient' is a pseudonymous id or a number."))
    if problems:
        raise InputError("The audit filter is not valid.", details=problems)


def check_paging(*, before: int | None, after: int | None, limit: int) -> None:
    """Raise InputError naming the parameter when the page asked for cannot be served."""
    if before is not None and after is not None:
        raise InputError(
            "Give 'before' or 'after', not both.",
            details=[ErrorDetail("after", "Use 'before' for older entries, 'after' for newer.")],
        )
    for name, value in (("before", before), ("after", after)):
        if value is not None and value < 0:
            raise InputError(
                f"'{name}' must be an entry number (0 or more).",
                details=[ErrorDetail(name, "An entry number from a 'next' link.", value)],
            )
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(
            f"'limit' must be between 1 and {MAX_LIMIT}.",
            details=[ErrorDetail("limit", f"Between 1 and {MAX_LIMIT}.", limit)],
        )


def conditions(query: AuditQuery, site_codes: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``query``, restricted to ``site_codes`` (None: every site)."""
    found: list[ColumnElement[bool]] = []
    if query.since is not None:
        found.append(AuditEntry.occurred_at >= iso_utc(query.since))
    if query.until is not None:
        found.append(AuditEntry.occurred_at < iso_utc(query.until))
    if query.user:
        if query.user.isdigit():
            found.append(AuditEntry.user_id == int(query.user))
        else:
            found.append(AuditEntry.user_email == query.user.strip().lower())
    if query.action:
        found.append(AuditEntry.action == query.action)
    if query.category:
        found.append(AuditEntry.category == query.category)
    if query.site:
        found.append(AuditEntry.site_code == query.site)
    if query.outcome == "refused":
        found.append(AuditEntry.outcome.in_(["denied", "not_found"]))
    elif query.outcome:
        found.append(AuditEntry.outcome == query.outcome)
    if query.patient:
        if query.patient.isdigit():
            found.append(AuditEntry.patient_id == int(query.patient))
        else:
            found.append(AuditEntry.patient_pseudo_id == query.patient)
    if site_codes is not None:
        found.append(AuditEntry.site_code.in_(list(site_codes)))
    return found


@dataclass(frozen=True)
class AuditPage:
    """One page of matching entries, newest first."""

    entries: tuple[AuditEntry, ...]
    """The entries, newest (highest sequence number) first."""
    older: int | None
    """Pass as ``before`` for the next (older) page; None on the last page."""
    newer: int | None
    """Pass as ``after`` for the previous (newer) page; None on the first page."""


def _exists(session: Session, where: list[ColumnElement[bool]]) -> bool:
    return session.scalar(select(AuditEntry.seq).where(*where).limit(1)) is not None


def find_page(
    session: Session,
    query: AuditQuery,
    *,
    site_codes: Sequence[str] | None,
    before: int | None = None,
    after: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> AuditPage:
    """The ``limit`` matching entries just before ``before`` (or just after ``after``)."""
    where = conditions(query, site_codes)
    seq = AuditEntry.seq
    if after is not None:
        upward = select(AuditEntry).where(*where, seq > after)
        rows = list(session.scalars(upward.order_by(seq).limit(limit)))
        rows.reverse()
    else:
        bounded = [*where, seq < before] if before is not None else where
        rows = list(
            session.scalars(select(AuditEntry).where(*bounded).order_by(seq.desc()).limit(limit))
        )
    if not rows:
        return AuditPage((), None, None)
    older = rows[-1].seq if _exists(session, [*where, seq < rows[-1].seq]) else None
    newer = rows[0].seq if _exists(session, [*where, seq > rows[0].seq]) else None
    return AuditPage(tuple(rows), older, newer)


def iter_matching(
    session: Session,
    query: AuditQuery,
    *,
    site_codes: Sequence[str] | None,
    max_rows: int = EXPORT_MAX_ROWS,
    batch: int = 2000,
) -> Iterator[Sequence[Any]]:
    """The report columns of every matching entry, newest first, at most ``max_rows``.

    Plain rows, not ORM objects: an export of 100,000 entries builds none.
    """
    where = conditions(query, site_codes)
    columns = [AuditEntry.__table__.c[name] for name in REPORT_COLUMNS]
    before: int | None = None
    left = max_rows
    while left > 0:
        bounded = [*where, AuditEntry.seq < before] if before is not None else where
        rows = session.execute(
            select(*columns).where(*bounded).order_by(AuditEntry.seq.desc()).limit(min(batch, left))
        ).all()
        if not rows:
            return
        yield from rows
        left -= len(rows)
        before = rows[-1][0]


def report_row(entry: AuditEntry) -> tuple[Any, ...]:
    """An entry's report columns, in order (a row of the CSV)."""
    return tuple(getattr(entry, name) for name in REPORT_COLUMNS)


def entry_record(entry: AuditEntry, *, details_shown: int | None = DETAILS_SHOWN) -> dict[str, Any]:
    """An entry as the API's JSON object (the report columns), long details cut short."""
    record = {name: getattr(entry, name) for name in REPORT_COLUMNS}
    details = record["details"]
    if details_shown is not None and details is not None and len(details) > details_shown:
        record["details"] = details[:details_shown] + "…"
        record["details_cut"] = True
    return record


def csv_chunks(rows: Iterable[Sequence[Any]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """Rows of the report columns as CSV text in chunks (for streaming), formulas neutralised."""
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow(REPORT_COLUMNS)
    pending = 0
    for row in rows:
        writer.writerow(row)
        pending += 1
        if pending >= rows_per_chunk:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            pending = 0
    yield out.getvalue()


def _details(entry: AuditEntry) -> dict[str, Any]:
    try:
        loaded = json.loads(entry.details) if entry.details else {}
    except ValueError:
        return {"details": entry.details}
    return loaded if isinstance(loaded, dict) else {"details": loaded}


def _facts(details: dict[str, Any], longest: int = 240) -> str:
    parts = []
    for key, value in details.items():
        if value in (None, "", [], {}):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    text = "; ".join(parts)
    return text if len(text) <= longest else text[: longest - 1] + "…"


def describe(entry: AuditEntry) -> str:
    """What the entry records, in plain words (for the audit page)."""
    details = _details(entry)
    if entry.action in _DECISION_WORDS:
        what = (
            f"Knowledge object {details.get('knowledge_object', '?')} version "
            f"{details.get('version', '?')} {_DECISION_WORDS[entry.action]}"
        )
        rest = {k: v for k, v in details.items() if k not in ("knowledge_object", "version")}
    elif entry.category == "audit" and entry.action in ("read", "export"):
        what = "Looked at the audit trail" if entry.action == "read" else "Downloaded audit entries"
        rest = {k: v for k, v in details.items() if k not in ("view", "format")}
    else:
        verb = _VERBS.get(
            entry.action, entry.action.replace("_", " ").replace(".", " ").capitalize()
        )
        kind = entry.category.replace("_", " ")
        # "Community report", not "Community report (community)".
        what = verb if verb.lower().startswith(kind) else f"{verb} ({kind})"
        if entry.patient_pseudo_id:
            what += f" for patient {entry.patient_pseudo_id}"
        rest = details
    words = [what + "."]
    if entry.outcome != "success":
        words.append(_OUTCOME_WORDS.get(entry.outcome, entry.outcome).capitalize() + ".")
    if entry.reason:
        words.append(f"Reason given: {entry.reason}.")
    facts = _facts(rest)
    if facts:
        words.append(facts + ".")
    return " ".join(words)


_OUTCOME_SHOWN = {
    "success": "done",
    "denied": "refused",
    "not_found": "refused (not found)",
    "failure": "failed",
}


@dataclass(frozen=True)
class AuditRow:
    """One entry as a row of the auditor's page."""

    seq: int
    when: str
    """``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    who: str
    role: str
    action: str
    what: str
    """The kind of data touched, and the patient's pseudonym if any."""
    site: str
    outcome: str
    """done, refused, refused (not found) or failed."""
    refused: bool
    """The entry did not succeed (the page highlights it)."""
    details: str
    """The entry in plain words (:func:`describe`)."""


def audit_row(entry: AuditEntry) -> AuditRow:
    """The entry as the auditor's page shows it."""
    what = entry.category.replace("_", " ")
    if entry.patient_pseudo_id:
        what += f", patient {entry.patient_pseudo_id}"
    return AuditRow(
        seq=entry.seq,
        when=entry.occurred_at[:19].replace("T", " "),
        who=entry.user_email or "—",
        role=entry.role or "—",
        action=entry.action,
        what=what,
        site=entry.site_code or "—",
        outcome=_OUTCOME_SHOWN.get(entry.outcome, entry.outcome),
        refused=entry.outcome != "success",
        details=describe(entry),
    )


@dataclass(frozen=True)
class KnowledgeDecision:
    """One step of a knowledge object version's lifecycle, from the audit trail."""

    seq: int
    """The audit entry recording it."""
    occurred_at: str
    who: str
    """The e-mail of whoever took the step (or the operator's name)."""
    knowledge_object: str
    version: str
    decision: str
    """In words: proposed, sent for review, approved, deployed, retired…"""
    reason: str | None
    outcome: str


def knowledge_decisions(
    session: Session, *, site_codes: Sequence[str] | None, limit: int = 50
) -> list[KnowledgeDecision]:
    """The latest ``limit`` knowledge lifecycle steps recorded in the trail, newest first."""
    where = [AuditEntry.action.in_(KNOWLEDGE_DECISIONS), AuditEntry.category == "knowledge"]
    if site_codes is not None:
        where.append(AuditEntry.site_code.in_(list(site_codes)))
    rows = session.scalars(
        select(AuditEntry).where(*where).order_by(AuditEntry.seq.desc()).limit(limit)
    )
    found = []
    for row in rows:
        details = _details(row)
        found.append(
            KnowledgeDecision(
                seq=row.seq,
                occurred_at=row.occurred_at,
                who=row.user_email or row.role or "careloop",
                knowledge_object=str(details.get("knowledge_object", "")),
                version=str(details.get("version", "")),
                decision=_DECISION_WORDS[row.action],
                reason=row.reason,
                outcome=_OUTCOME_WORDS.get(row.outcome, row.outcome),
            )
        )
    return found
