"""Reading the library: lists, one version with its history, diffs, exports, deployments."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.clock import as_utc
from careloop.knowledge.library.lifecycle import (
    community_owner,
)
from careloop.knowledge.library.views import (
    CommunityApproval,
    Deployment,
    KnowledgeVersion,
    Transition,
    VersionDetail,
    VersionDiff,
    _deployment,
    _find,
    _view,
)
from careloop.knowledge.package import (
    package_files,
    package_from_dict,
    write_package,
)
from careloop.store.database import Registry
from careloop.store.models.community import Community, Proposal
from careloop.store.models.knowledge import (
    KnowledgeDeployment,
    KnowledgeObjectVersion,
    KnowledgeTransition,
)
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work


def list_versions(
    registry: Registry,
    principal: Principal,
    *,
    status: str | None = None,
    search: str | None = None,
) -> list[KnowledgeVersion]:
    """Versions in the library, newest identifier/version last; filtered by status or words.

    ``search`` matches (case-insensitively) the identifier, title,
    description and keywords.
    """
    with unit_of_work(registry, principal, "knowledge.read") as work:
        query = select(KnowledgeObjectVersion).order_by(
            KnowledgeObjectVersion.identifier, KnowledgeObjectVersion.id
        )
        if status:
            query = query.where(KnowledgeObjectVersion.status == status)
        rows = list(work.session.scalars(query))
        if search:
            words = search.lower().split()
            kept = []
            for row in rows:
                meta = json.loads(row.package)["metadata"]
                text = " ".join(
                    [
                        row.identifier,
                        row.title,
                        str(meta.get("description", "")),
                        *map(str, meta.get("keywords", [])),
                    ]
                ).lower()
                if all(w in text for w in words):
                    kept.append(row)
            rows = kept
        return [_view(r) for r in rows]


def show(registry: Registry, principal: Principal, ref: str) -> VersionDetail:
    """One version with its package, history and deployments."""
    with unit_of_work(registry, principal, "knowledge.read") as work:
        session = work.session
        row = _find(session, ref)
        transitions = session.scalars(
            select(KnowledgeTransition)
            .where(KnowledgeTransition.ko_version_id == row.id)
            .order_by(KnowledgeTransition.id)
        )
        deployments = session.scalars(
            select(KnowledgeDeployment)
            .where(KnowledgeDeployment.ko_version_id == row.id)
            .order_by(KnowledgeDeployment.id)
        )
        return VersionDetail(
            version=_view(row),
            package=package_from_dict(json.loads(row.package), origin=ref),
            transitions=tuple(
                Transition(t.from_status, t.to_status, t.by, t.reason, as_utc(t.at))
                for t in transitions
            ),
            deployments=tuple(_deployment(d) for d in deployments),
            owner=owner.name if (owner := community_owner(session, row.identifier)) else None,
            community_approval=_community_approval(session, f"{row.identifier}@{row.version}"),
        )


def _community_approval(session: Session, ref: str) -> CommunityApproval | None:
    found = session.execute(
        select(Proposal, Community)
        .join(Community, Community.id == Proposal.community_id)
        .where(
            Proposal.kind == "knowledge_approval",
            Proposal.subject == ref,
            Proposal.status == "passed",
        )
        .order_by(Proposal.id.desc())
    ).first()
    if found is None:
        return None
    proposal, community = found
    outcome = json.loads(proposal.outcome or "{}")
    return CommunityApproval(
        community_id=community.id,
        community=community.name,
        proposal_id=proposal.id,
        decided_at=as_utc(proposal.closed_at or proposal.opened_at),
        rule=str(outcome.get("rule", "")),
        outcome=outcome,
    )


def diff(registry: Registry, principal: Principal, ref_a: str, ref_b: str) -> VersionDiff:
    """What changed between two versions (any two stored packages, in fact)."""
    a = show(registry, principal, ref_a)
    b = show(registry, principal, ref_b)
    files_a, files_b = package_files(a.package), package_files(b.package)
    changed = []
    chunks: list[str] = []
    for name in sorted(set(files_a) | set(files_b)):
        left = files_a.get(name, b"").decode().splitlines(keepends=True)
        right = files_b.get(name, b"").decode().splitlines(keepends=True)
        if left != right:
            changed.append(name)
            chunks.extend(
                difflib.unified_diff(
                    left, right, f"{a.version.ref}/{name}", f"{b.version.ref}/{name}"
                )
            )
    return VersionDiff(a.version.ref, b.version.ref, tuple(changed), "".join(chunks))


def export_version(
    registry: Registry, principal: Principal, ref: str, target: Path, *, zip_file: bool = False
) -> Path:
    """Write a stored version's package to a folder or a zip file."""
    detail = show(registry, principal, ref)
    return write_package(detail.package, target, zip_file=zip_file)


def deployments(
    registry: Registry,
    *,
    measure_id: str | None = None,
    identifier: str | None = None,
) -> list[Deployment]:
    """Deployments, oldest first, optionally of one knowledge object or touching one measure.

    Deployments are not identifiable data: charts of any measure may be
    annotated with them.
    """
    with registry.transaction() as session:
        query = select(KnowledgeDeployment).order_by(KnowledgeDeployment.started_at)
        if identifier:
            query = query.where(KnowledgeDeployment.identifier == identifier)
        found = [_deployment(d) for d in session.scalars(query)]
    if measure_id is not None:
        found = [d for d in found if measure_id in d.measures]
    return found


def deployments_for(registry: Registry, measure_id: str) -> list[Deployment]:
    """Deployments of every knowledge object that declares it should move ``measure_id``."""
    return deployments(registry, measure_id=measure_id)
