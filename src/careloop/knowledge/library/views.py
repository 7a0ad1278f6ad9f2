"""What the library gives back (versions, deployments, details, diffs) and the shared steps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.clock import as_utc
from careloop.core.errors import (
    Conflict,
    InputError,
    NotFound,
)
from careloop.knowledge.package import (
    SEMVER,
    KnowledgePackage,
)
from careloop.store.models.knowledge import (
    KnowledgeDeployment,
    KnowledgeObjectVersion,
    KnowledgeTransition,
)
from careloop.trust.work import Work

Status = Literal["draft", "in_review", "approved", "active", "retired"]
Mode = Literal["silent", "live"]
CATEGORY = "knowledge"


@dataclass(frozen=True)
class KnowledgeVersion:
    """One stored version of a knowledge object."""

    identifier: str
    """The knowledge object's identifier."""
    version: str
    """Its semantic version."""
    title: str
    """Title from metadata.json."""
    service_id: str
    """CDS service id."""
    hook: str
    """CDS hook."""
    status: Status
    """Lifecycle status."""
    mode: Mode | None
    """``silent`` or ``live`` while active."""
    sha256: str
    """SHA-256 of the package's canonical JSON."""
    tests_passed: bool
    """Whether its tests passed when last run by the library."""
    created_by: str
    """Who added it."""
    created_at: datetime
    """When it was added."""

    @property
    def ref(self) -> str:
        """``identifier@version``."""
        return f"{self.identifier}@{self.version}"


@dataclass(frozen=True)
class Transition:
    """One lifecycle step."""

    from_status: str | None
    """Status before (None when the version was added)."""
    to_status: str
    """Status after."""
    by: str
    """Who took the step."""
    reason: str
    """Why."""
    at: datetime
    """When (UTC)."""


@dataclass(frozen=True)
class Deployment:
    """A knowledge object version put into practice."""

    id: int
    """Deployment id."""
    identifier: str
    """Knowledge object identifier."""
    version: str
    """Version deployed."""
    mode: Mode
    """silent (evaluate and log) or live (show cards)."""
    sites: tuple[str, ...]
    """Site codes it serves (empty: every site)."""
    measures: tuple[str, ...]
    """Measures the version declares it should move."""
    started_at: datetime
    """When it started (UTC): the date a chart annotates."""
    ended_at: datetime | None
    """When it ended (superseded, switched mode or retired), if it has."""
    by: str
    """Who deployed it."""
    reason: str
    """Why."""
    cycle_id: int | None = None
    """The learning cycle it was deployed under (required for a randomised test)."""
    consent_purpose: str | None = None
    """For a randomised test: ``quality_improvement`` or ``research``, from its cycle."""


@dataclass(frozen=True)
class CommunityApproval:
    """The learning community decision that approved a version."""

    community_id: int
    """The community's id."""
    community: str
    """The community's name."""
    proposal_id: int
    """The knowledge_approval proposal that passed."""
    decided_at: datetime
    """When the proposal was closed as passed (UTC)."""
    rule: str
    """The decision rule that decided (consensus, majority, named_approvers)."""
    outcome: dict[str, Any]
    """The tally and the reason, as the community recorded them."""


@dataclass(frozen=True)
class VersionDetail:
    """A version with its package, lifecycle history and deployments."""

    version: KnowledgeVersion
    """The version."""
    package: KnowledgePackage
    """Its package."""
    transitions: tuple[Transition, ...]
    """Lifecycle steps, oldest first."""
    deployments: tuple[Deployment, ...]
    """Its deployments, oldest first."""
    owner: str | None = None
    """The learning community that owns it (None: site leads and the admin steward it)."""
    community_approval: CommunityApproval | None = None
    """The community decision that approved this version, when a community did."""


@dataclass(frozen=True)
class VersionDiff:
    """What changed between two versions of a package."""

    a: str
    """``identifier@version`` of the older side."""
    b: str
    """``identifier@version`` of the newer side."""
    changed: tuple[str, ...]
    """Package files that differ (``metadata.json``, ``rules.json``…)."""
    text: str
    """A unified diff of the pretty-printed files."""


def _view(row: KnowledgeObjectVersion) -> KnowledgeVersion:
    return KnowledgeVersion(
        identifier=row.identifier,
        version=row.version,
        title=row.title,
        service_id=row.service_id,
        hook=row.hook,
        status=row.status,  # type: ignore[arg-type]
        mode=row.mode,  # type: ignore[arg-type]
        sha256=row.package_sha256,
        tests_passed=row.tests_passed,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


def _deployment(row: KnowledgeDeployment) -> Deployment:
    return Deployment(
        id=row.id,
        identifier=row.identifier,
        version=row.version,
        mode=row.mode,  # type: ignore[arg-type]
        sites=tuple(json.loads(row.sites)),
        measures=tuple(json.loads(row.measures)),
        started_at=as_utc(row.started_at),
        ended_at=as_utc(row.ended_at) if row.ended_at else None,
        by=row.by,
        reason=row.reason,
        cycle_id=row.cycle_id,
        consent_purpose=row.consent_purpose,
    )


def _semver_key(version: str) -> tuple[int, int, int, int, str]:
    match = SEMVER.match(version)
    if not match:
        return (0, 0, 0, 0, version)
    major, minor, patch, pre = match.groups()
    # A pre-release sorts before its release.
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


def _find(session: Session, ref: str) -> KnowledgeObjectVersion:
    identifier, _, version = ref.partition("@")
    query = select(KnowledgeObjectVersion).where(KnowledgeObjectVersion.identifier == identifier)
    if version:
        row = session.scalar(query.where(KnowledgeObjectVersion.version == version))
    else:
        rows = list(session.scalars(query))
        row = max(rows, key=lambda r: _semver_key(r.version)) if rows else None
    if row is None:
        raise NotFound(
            f"There is no knowledge object {ref!r} in the library "
            "(use identifier or identifier@version; `careloop knowledge list` shows them)."
        )
    return row


def _need_reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise InputError("Give a reason for this lifecycle step (it is kept in the audit trail).")
    return reason.strip()


def _step(
    work: Work,
    row: KnowledgeObjectVersion,
    to_status: Status,
    reason: str,
    *,
    event: str,
    extra: dict[str, Any] | None = None,
) -> None:
    from_status = row.status
    row.status = to_status
    if to_status != "active":
        row.mode = None
    work.session.add(
        KnowledgeTransition(
            ko_version_id=row.id,
            from_status=from_status,
            to_status=to_status,
            by=work.principal.email,
            reason=reason,
        )
    )
    work.audit(
        event,
        CATEGORY,
        reason=reason,
        details={
            "knowledge_object": row.identifier,
            "version": row.version,
            "from": from_status,
            "to": to_status,
            **(extra or {}),
        },
    )


def _require_status(row: KnowledgeObjectVersion, allowed: Sequence[str], step: str) -> None:
    if row.status not in allowed:
        raise Conflict(
            f"{row.identifier}@{row.version} is {row.status}; {step} needs it to be "
            f"{' or '.join(allowed)}."
        )
