"""A version's lifecycle: added, submitted, sent back, approved (or by its community's decision)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.clock import utcnow
from careloop.core.errors import (
    Conflict,
    ErrorDetail,
    PermissionDenied,
    ValidationFailed,
)
from careloop.knowledge.library.views import (
    CATEGORY,
    KnowledgeVersion,
    _find,
    _need_reason,
    _require_status,
    _step,
    _view,
)
from careloop.knowledge.package import (
    KnowledgePackage,
    package_from_dict,
)
from careloop.store.database import Registry
from careloop.store.models.community import Community, KnowledgeOwnership
from careloop.store.models.knowledge import (
    KnowledgeObjectVersion,
    KnowledgeTransition,
)
from careloop.trust.principal import Principal
from careloop.trust.provenance import record_provenance
from careloop.trust.work import Work, unit_of_work


def add_version(
    registry: Registry, principal: Principal, package: KnowledgePackage, *, reason: str
) -> KnowledgeVersion:
    """Store a validated package as a new draft version.

    Raises:
        Conflict: the version exists already, or its service id belongs to
            another knowledge object.
    """
    reason = _need_reason(reason)
    started = utcnow()
    report = package.run_tests()
    with unit_of_work(registry, principal, "knowledge.author") as work:
        session = work.session
        work.expect("knowledge.add", CATEGORY, reason=reason)
        existing = session.scalar(
            select(KnowledgeObjectVersion).where(
                KnowledgeObjectVersion.identifier == package.identifier,
                KnowledgeObjectVersion.version == package.version,
            )
        )
        if existing is not None:
            raise Conflict(
                f"{package.identifier}@{package.version} is already in the library; "
                "give the changed package a new version number in metadata.json."
            )
        clash = session.scalar(
            select(KnowledgeObjectVersion).where(
                KnowledgeObjectVersion.service_id == package.service_id,
                KnowledgeObjectVersion.identifier != package.identifier,
            )
        )
        if clash is not None:
            raise Conflict(
                f"The service id {package.service_id!r} belongs to {clash.identifier}; "
                "choose another id in service.json."
            )
        row = KnowledgeObjectVersion(
            identifier=package.identifier,
            version=package.version,
            title=str(package.metadata["title"])[:300],
            service_id=package.service_id,
            hook=package.hook,
            status="draft",
            package=package.canonical_json(),
            package_sha256=package.sha256(),
            tests_passed=report.passed,
            created_by=principal.email,
        )
        session.add(row)
        session.flush()
        session.add(
            KnowledgeTransition(
                ko_version_id=row.id,
                from_status=None,
                to_status="draft",
                by=principal.email,
                reason=reason,
            )
        )
        work.audit(
            "knowledge.add",
            CATEGORY,
            reason=reason,
            details={"knowledge_object": row.identifier, "version": row.version},
        )
        view = _view(row)
    record_provenance(
        registry,
        principal,
        activity="knowledge.version",
        target=view.ref,
        started_at=started,
        parameters={"sha256": view.sha256},
        outputs={"tests_passed": report.passed, "tests": len(report.cases)},
        parent_ids=_provenance_parents(package),
    )
    return view


def _provenance_parents(package: KnowledgePackage) -> list[int]:
    """Provenance record ids the package's evidence names (``provenance:12``)."""
    out = []
    for item in package.metadata.get("evidence", []):
        ref = str(item.get("ref", ""))
        if ref.startswith("provenance:") and ref[len("provenance:") :].isdigit():
            out.append(int(ref[len("provenance:") :]))
    return out


def submit(registry: Registry, principal: Principal, ref: str, *, reason: str) -> KnowledgeVersion:
    """Send a draft for review."""
    reason = _need_reason(reason)
    with unit_of_work(registry, principal, "knowledge.author") as work:
        work.expect("knowledge.submit", CATEGORY, reason=reason)
        row = _find(work.session, ref)
        _require_status(row, ("draft",), "submitting")
        _step(work, row, "in_review", reason, event="knowledge.submit")
        return _view(row)


def send_back(
    registry: Registry, principal: Principal, ref: str, *, reason: str
) -> KnowledgeVersion:
    """Return a version under review to draft (reviewers ask for changes)."""
    reason = _need_reason(reason)
    with unit_of_work(registry, principal, "knowledge.approve") as work:
        work.expect("knowledge.send_back", CATEGORY, reason=reason)
        row = _find(work.session, ref)
        _require_status(row, ("in_review",), "sending back")
        _step(work, row, "draft", reason, event="knowledge.send_back")
        return _view(row)


def approve(registry: Registry, principal: Principal, ref: str, *, reason: str) -> KnowledgeVersion:
    """Approve a version under review; its tests must pass now.

    Raises:
        ValidationFailed: a test fails (each failure listed); nothing changes.
        PermissionDenied: the approver added the version themself.
    """
    reason = _need_reason(reason)
    with unit_of_work(registry, principal, "knowledge.approve") as work:
        work.expect("knowledge.approve", CATEGORY, reason=reason)
        row = _find(work.session, ref)
        owner = community_owner(work.session, row.identifier)
        if owner is not None:
            raise PermissionDenied(
                f"{row.identifier} belongs to the learning community {owner.name!r}: its versions "
                "are approved by the community's decision rule. Open a knowledge_approval "
                f"proposal in community {owner.id} (`careloop community propose`)."
            )
        _require_status(row, ("in_review",), "approval")
        if row.created_by == principal.email and not principal.is_operator:
            raise PermissionDenied(
                "A version is approved by someone other than the person who added it."
            )
        _approve_row(work, row, ref, reason, details=None)
        return _view(row)


def _approve_row(
    work: Work,
    row: KnowledgeObjectVersion,
    ref: str,
    reason: str,
    *,
    details: dict[str, Any] | None,
) -> None:
    package = package_from_dict(json.loads(row.package), origin=f"{ref}")
    report = package.run_tests()
    row.tests_passed = report.passed
    if not report.passed:
        raise ValidationFailed(
            f"{row.identifier}@{row.version} cannot be approved: its tests do not pass. "
            + report.summary().splitlines()[0],
            [ErrorDetail(f"tests.json:{c.name}", c.message) for c in report.cases if not c.passed]
            or [ErrorDetail("tests.json", "The package has no tests.")],
        )
    _step(work, row, "approved", reason, event="knowledge.approve", extra=details)


def community_owner(session: Session, identifier: str) -> Community | None:
    """The learning community that owns a knowledge object, if one does."""
    return session.scalar(
        select(Community)
        .join(KnowledgeOwnership, KnowledgeOwnership.community_id == Community.id)
        .where(KnowledgeOwnership.identifier == identifier)
    )


def pilot_sites(session: Session, identifier: str) -> tuple[str, ...] | None:
    """The pilot sites of a community-owned knowledge object (None: no community owns it)."""
    owned = session.scalar(
        select(KnowledgeOwnership).where(KnowledgeOwnership.identifier == identifier)
    )
    return None if owned is None else tuple(json.loads(owned.pilot_sites))


def approve_by_decision(
    work: Work, ref: str, *, reason: str, community_id: int, proposal_id: int
) -> KnowledgeVersion:
    """Approve a version under review because its owning community decided so.

    Runs inside the community's unit of work (``careloop.community``), which
    has checked membership and applied the charter's rule; the transition
    and the audit entry name the proposal. Raises Conflict when the version
    is not under review or the community does not own it, ValidationFailed
    when its tests fail (nothing changes: the unit of work rolls back).
    """
    row = _find(work.session, ref)
    owner = community_owner(work.session, row.identifier)
    if owner is None or owner.id != community_id:
        raise Conflict(
            f"{row.identifier} is not owned by this community, so its decision cannot approve it."
        )
    _require_status(row, ("in_review",), "approval")
    _approve_row(
        work,
        row,
        ref,
        reason,
        details={"community": community_id, "proposal": proposal_id},
    )
    return _view(row)
