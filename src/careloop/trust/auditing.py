"""What auditors do with the audit trail: reports and chain verification."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select

from careloop.store.database import Registry
from careloop.store.models import Site
from careloop.trust.audit import (
    AuditFilter,
    ChainVerification,
    render_report,
    report_entries,
    verify_chain,
)
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work


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
