"""What auditors do with the audit trail: reports, pages, exports and chain verification."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select

from careloop.store.database import Registry
from careloop.store.models import Site
from careloop.trust.audit import (
    SEAL_KEY_INFO,
    AuditFilter,
    ChainVerification,
    render_report,
    report_entries,
    verify_chain,
)
from careloop.trust.audit_search import (
    DEFAULT_LIMIT,
    EXPORT_MAX_ROWS,
    AuditPage,
    AuditQuery,
    KnowledgeDecision,
    check_paging,
    check_query,
    csv_chunks,
    find_page,
    iter_matching,
    knowledge_decisions,
)
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

log = logging.getLogger("careloop.audit")


def audit_report(
    registry: Registry,
    principal: Principal,
    criteria: AuditFilter,
    *,
    fmt: Literal["csv", "json"] = "json",
) -> str:
    """The entries matching ``criteria`` as CSV or JSON text.

    An auditor of some sites sees the entries about those sites only; an
    installation-wide auditor (or the operator) sees all. Reading the trail
    is itself audited.
    """
    with unit_of_work(registry, principal, "audit.read") as work:
        site_codes = None
        if work.scope.site_ids is not None:
            site_codes = list(
                work.session.scalars(
                    select(Site.code).where(Site.id.in_(list(work.scope.site_ids)))
                )
            )
            requested = set(criteria.site_codes) if criteria.site_codes is not None else None
            site_codes = [c for c in site_codes if requested is None or c in requested]
            criteria = AuditFilter(
                criteria.since,
                criteria.until,
                criteria.user,
                criteria.patient,
                criteria.action,
                site_codes,
            )
        entries = report_entries(work.session, criteria)
        text = render_report(entries, fmt)
        work.audit(
            "read",
            "audit",
            details={
                "entries": len(entries),
                "format": fmt,
                "filter": {
                    "since": str(criteria.since) if criteria.since else None,
                    "until": str(criteria.until) if criteria.until else None,
                    "user": criteria.user,
                    "patient": criteria.patient,
                    "action": criteria.action,
                },
            },
        )
        return text


def verify_audit_chain(
    registry: Registry, principal: Principal, *, expect_head: tuple[int, str] | None = None
) -> ChainVerification:
    """Walk the whole chain (auditor or operator)."""
    with unit_of_work(registry, principal, "audit.read"):
        pass
    with registry.transaction() as session:
        return verify_chain(session, expect_head=expect_head)


def _allowed_site_codes(work: Work) -> list[str] | None:
    """The sites whose entries the principal may read (None: every entry)."""
    if work.scope.site_ids is None:
        return None
    return list(
        work.session.scalars(select(Site.code).where(Site.id.in_(list(work.scope.site_ids))))
    )


def _read_details(query: AuditQuery, page: AuditPage, **paging: Any) -> dict[str, Any]:
    return {
        "entries": len(page.entries),
        "filter": query.as_details(),
        **{k: v for k, v in paging.items() if v is not None},
    }


def audit_entries(
    registry: Registry,
    principal: Principal,
    query: AuditQuery,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> AuditPage:
    """One page of entries matching ``query``, newest first (one audit entry for the read).

    An auditor of some sites gets the entries about those sites only.
    Raises InputError naming the parameter when a filter or the paging is not valid.
    """
    check_query(query)
    check_paging(before=before, after=after, limit=limit)
    with unit_of_work(registry, principal, "audit.read") as work:
        page = find_page(
            work.session,
            query,
            site_codes=_allowed_site_codes(work),
            before=before,
            after=after,
            limit=limit,
        )
        work.audit(
            "read",
            "audit",
            details=_read_details(query, page, before=before, after=after, limit=limit),
        )
        return page


def audit_export(
    registry: Registry,
    principal: Principal,
    query: AuditQuery,
    *,
    max_rows: int = EXPORT_MAX_ROWS,
) -> Iterator[str]:
    """The entries matching ``query`` as CSV text chunks, newest first, at most ``max_rows``.

    The authorisation and the audit entry of the export happen now, before any
    entry leaves; the returned iterator then reads the trail in batches in a
    read-only transaction of its own (for a streamed download).
    """
    check_query(query)
    with unit_of_work(registry, principal, "audit.read") as work:
        site_codes = _allowed_site_codes(work)
        work.audit(
            "export",
            "audit",
            details={"format": "csv", "filter": query.as_details(), "max_rows": max_rows},
        )

    def chunks() -> Iterator[str]:
        with registry.read_transaction() as session:
            entries = iter_matching(session, query, site_codes=site_codes, max_rows=max_rows)
            yield from csv_chunks(entries)

    return chunks()


@dataclass(frozen=True)
class ChainStatus:
    """A verification of the whole chain, as the audit page shows it."""

    verification: ChainVerification
    checked_at: datetime
    """When the chain was walked (UTC)."""
    seconds: float
    """How long the walk took."""
    cached_for: float
    """How long a result is reused before the chain is walked again (seconds)."""

    def in_words(self) -> str:
        """Whether the trail is intact, or where it breaks, in plain words."""
        v = self.verification
        when = self.checked_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if v.intact:
            return (
                f"The audit trail is intact: all {v.entries_checked} entries check out, "
                f"up to entry {v.head_seq} (checked {when})."
            )
        where = f" at entry {v.first_bad_seq}" if v.first_bad_seq is not None else ""
        return (
            f"The audit trail is BROKEN{where}: {v.problem}. Checked {when}; "
            f"{v.entries_checked} entries were read. Entries before that point still "
            "check out; tell the installation's operator now."
        )


class ChainStatusCache:
    """The last chain verification, reused for ``max_age`` seconds.

    Walking the whole chain reads every entry (seconds on a long trail); the
    audit page shows the result of a walk at most ``max_age`` seconds old
    instead of walking on every view, and says when it was checked. A stale
    result starts one walk in a background thread; a viewer waits for it a
    short while and otherwise sees the previous result (or none yet), marked
    as being checked. One web app holds one.
    """

    def __init__(self, max_age: float = 300.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._last: ChainStatus | None = None
        self._at = 0.0
        self._walking: threading.Thread | None = None

    @property
    def checking(self) -> bool:
        """Whether a walk of the chain is under way."""
        with self._lock:
            return self._walking is not None

    def status(
        self, registry: Registry, *, wait_at_most: float | None = None
    ) -> ChainStatus | None:
        """A verification no older than ``max_age``, walking the chain when there is none.

        Waits for the walk at most ``wait_at_most`` seconds (None: until it ends);
        then returns the latest result, which is older or None while the walk runs.
        """
        with self._lock:
            if self._last is not None and time.monotonic() - self._at <= self.max_age:
                return self._last
            if self._walking is None:
                self._walking = threading.Thread(
                    target=self._walk, args=(registry,), name="audit-chain-check", daemon=True
                )
                self._walking.start()
            walking = self._walking
        walking.join(wait_at_most)
        with self._lock:
            return self._last

    def _walk(self, registry: Registry) -> None:
        try:
            started = time.monotonic()
            verification = _verify_reading(registry)
            ended = time.monotonic()
            with self._lock:
                self._last = ChainStatus(
                    verification, datetime.now(UTC), ended - started, self.max_age
                )
                self._at = ended
        except Exception:  # a thread's error reaches no caller: log it, walk again next view
            log.exception("The background check of the audit chain failed")
        finally:
            with self._lock:
                self._walking = None

    def forget(self) -> None:
        """Walk the chain afresh on the next request."""
        with self._lock:
            self._last = None


def _verify_reading(registry: Registry) -> ChainVerification:
    """Verify in a read-only transaction (no write lock held during the walk), with the seal key."""
    key = registry.sessions.kw.get("info", {}).get(SEAL_KEY_INFO)
    with registry.read_transaction() as session:
        if isinstance(key, bytes):
            session.info[SEAL_KEY_INFO] = key
        return verify_chain(session)


@dataclass(frozen=True)
class AuditOverview:
    """What the audit page shows: a page of entries, the knowledge decisions, the chain."""

    page: AuditPage
    decisions: tuple[KnowledgeDecision, ...]
    """The latest knowledge lifecycle steps, newest first."""
    chain: ChainStatus | None
    """The latest verification of the whole chain (None until the first one ends)."""
    checking: bool
    """Whether the chain is being walked again now."""


def audit_overview(
    registry: Registry,
    principal: Principal,
    query: AuditQuery,
    chain: ChainStatusCache,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
    wait_for_chain: float = 3.0,
) -> AuditOverview:
    """The audit page's content, read with one audit entry for the whole view.

    The chain's status waits at most ``wait_for_chain`` seconds for a walk of
    the chain (see :class:`ChainStatusCache`).
    """
    check_query(query)
    check_paging(before=before, after=after, limit=limit)
    with unit_of_work(registry, principal, "audit.read") as work:
        site_codes = _allowed_site_codes(work)
        page = find_page(
            work.session, query, site_codes=site_codes, before=before, after=after, limit=limit
        )
        decisions = knowledge_decisions(work.session, site_codes=site_codes)
        work.audit(
            "read",
            "audit",
            details={
                **_read_details(query, page, before=before, after=after),
                "view": "audit page",
            },
        )
    status = chain.status(registry, wait_at_most=wait_for_chain)
    return AuditOverview(page, tuple(decisions), status, chain.checking)
