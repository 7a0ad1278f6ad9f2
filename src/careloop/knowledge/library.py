"""The knowledge library: versions, their lifecycle, and deployments.

Lifecycle: ``draft → in_review → approved → active → retired`` (and
``in_review → draft`` when reviewers send a version back). Each step is
taken by a principal the policy allows (``knowledge.author``,
``knowledge.approve``, ``knowledge.deploy``), needs a reason, and writes a
transition row and an audit entry in the same transaction. A version is
approved only when its tests pass, and not by the person who added it
(four eyes; the local operator at the command line is exempt). Only active
versions serve; ``mode`` says whether an active version shows its cards
(``live``) or only evaluates and logs them (``silent``). Activating a
version records a deployment (what, which sites, when), which later
annotates the charts of the measures the version declares it should move.

A knowledge object a learning community owns (``careloop.community``) is
approved by the community's decision rule, not by a site lead or the admin:
:func:`approve` refuses it and names the way, and the community's passed
proposal calls :func:`approve_by_decision`. Its deployment through
:func:`activate` stays within the community's pilot sites; spreading it
further is the community's decision too (:func:`activate_within`).
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    Conflict,
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.knowledge.package import (
    SEMVER,
    KnowledgePackage,
    package_files,
    package_from_dict,
    write_package,
)
from careloop.knowledge.trial_cover import trial_cover
from careloop.store.database import Registry
from careloop.store.models import Site
from careloop.store.models.community import Community, Cycle, KnowledgeOwnership, Proposal
from careloop.store.models.knowledge import (
    KnowledgeDeployment,
    KnowledgeObjectVersion,
    KnowledgeTransition,
)
from careloop.trust.principal import Principal
from careloop.trust.provenance import find_provenance, record_provenance
from careloop.trust.work import Work, unit_of_work

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


def _site_codes(session: Session, sites: Sequence[str]) -> list[str]:
    codes = sorted(set(sites))
    known = set(session.scalars(select(Site.code).where(Site.code.in_(codes))))
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InputError(f"Unknown site(s): {', '.join(unknown)}.")
    return codes


def _end_deployments(session: Session, version_id: int, now: datetime) -> None:
    for dep in session.scalars(
        select(KnowledgeDeployment).where(
            KnowledgeDeployment.ko_version_id == version_id,
            KnowledgeDeployment.ended_at.is_(None),
        )
    ):
        dep.ended_at = now


def activate(
    registry: Registry,
    principal: Principal,
    ref: str,
    *,
    reason: str,
    mode: Mode = "live",
    sites: Sequence[str] = (),
    started_at: datetime | None = None,
    cycle_id: int | None = None,
) -> Deployment:
    """Put an approved (or active) version into practice and record the deployment.

    A version active in another mode or at other sites gets a new
    deployment; another active version of the same knowledge object is
    retired (superseded) in the same transaction. ``started_at`` records a
    deployment that began earlier (entered after the fact); default now.
    A knowledge object a community owns is deployed here only at its pilot
    sites: spreading it further is the community's decision. A version that
    randomises card variants names the learning cycle (``cycle_id``) whose
    determination covers the test (:mod:`careloop.knowledge.trial_cover`).
    """
    reason = _need_reason(reason)
    with unit_of_work(registry, principal, "knowledge.deploy") as work:
        work.expect("knowledge.activate", CATEGORY, reason=reason)
        identifier = ref.partition("@")[0]
        pilots = pilot_sites(work.session, identifier)
        beyond = sorted(set(sites) - set(pilots)) if pilots is not None else []
        if pilots is not None and (beyond or not sites):
            owner = community_owner(work.session, identifier)
            where = ", ".join(beyond) if beyond else "every site"
            raise PermissionDenied(
                f"{identifier} belongs to the learning community "
                f"{owner.name if owner else ''!r}: it is deployed here only at its pilot sites "
                f"({', '.join(pilots) or 'none'}). Spreading it to {where} is the community's "
                "decision: a knowledge_spread proposal, with a NASSS assessment on record."
            )
        deployed = activate_within(
            work,
            ref,
            reason=reason,
            mode=mode,
            sites=sites,
            started_at=started_at,
            cycle_id=cycle_id,
        )
    record_deployment_provenance(registry, principal, deployed, reason=reason)
    services_changed()
    return deployed


def activate_within(
    work: Work,
    ref: str,
    *,
    reason: str,
    mode: Mode = "live",
    sites: Sequence[str] = (),
    started_at: datetime | None = None,
    details: dict[str, Any] | None = None,
    cycle_id: int | None = None,
) -> Deployment:
    """What :func:`activate` does, inside a unit of work the caller authorised.

    ``careloop.community`` calls it when a knowledge_spread proposal passes;
    the caller then records the provenance
    (:func:`record_deployment_provenance`) and calls :func:`services_changed`
    once its transaction has committed.
    """
    reason = _need_reason(reason)
    if mode not in ("silent", "live"):
        raise InputError(f"mode must be silent or live, not {mode!r}.")
    now = utcnow()
    if started_at is not None and as_utc(started_at) > now:
        raise InputError("A deployment cannot start in the future; activate it on the day.")
    session = work.session
    row = _find(session, ref)
    _require_status(row, ("approved", "active"), "activation")
    codes = _site_codes(session, sites)
    package = package_from_dict(json.loads(row.package), origin=ref)
    # Checked before anything changes: a refused randomised test leaves every row as it was.
    cover = trial_cover(session, package, cycle_id)
    if cover is None and cycle_id is not None and session.get(Cycle, cycle_id) is None:
        raise InputError(f"There is no learning cycle {cycle_id} (`careloop cycle list`).")
    others = session.scalars(
        select(KnowledgeObjectVersion).where(
            KnowledgeObjectVersion.identifier == row.identifier,
            KnowledgeObjectVersion.status == "active",
            KnowledgeObjectVersion.id != row.id,
        )
    )
    for other in others:
        _end_deployments(session, other.id, now)
        _step(
            work,
            other,
            "retired",
            f"superseded by {row.version}: {reason}",
            event="knowledge.retire",
        )
    _end_deployments(session, row.id, now)
    if row.status != "active":
        _step(work, row, "active", reason, event="knowledge.activate", extra=details)
    row.mode = mode
    dep = KnowledgeDeployment(
        ko_version_id=row.id,
        identifier=row.identifier,
        version=row.version,
        mode=mode,
        sites=json.dumps(codes),
        measures=json.dumps(package.measures),
        # A deployment recorded after the fact keeps the day it really began.
        started_at=as_utc(started_at) if started_at is not None else now,
        by=work.principal.email,
        reason=reason,
        cycle_id=cycle_id,
        consent_purpose=cover.consent_purpose if cover else None,
    )
    session.add(dep)
    session.flush()
    work.audit(
        "knowledge.deploy",
        CATEGORY,
        reason=reason,
        details={
            "knowledge_object": row.identifier,
            "version": row.version,
            "mode": mode,
            "sites": codes,
            **(
                {
                    "cycle": cover.cycle_id,
                    "trials": list(cover.trials),
                    "determination": f"{cover.determination_kind}:{cover.determination_ref}",
                    "consent_purpose": cover.consent_purpose,
                }
                if cover
                else {"cycle": cycle_id}
                if cycle_id is not None
                else {}
            ),
            **(details or {}),
        },
    )
    return _deployment(dep)


def record_deployment_provenance(
    registry: Registry, principal: Principal, deployed: Deployment, *, reason: str
) -> None:
    """The deployment joins the provenance chain below the version it puts into practice."""
    version_ref = f"{deployed.identifier}@{deployed.version}"
    versions = find_provenance(registry, activities=["knowledge.version"], target=version_ref)
    record_provenance(
        registry,
        principal,
        activity="knowledge.deploy",
        target=version_ref,
        started_at=deployed.started_at,
        parameters={
            "mode": deployed.mode,
            "sites": list(deployed.sites),
            "deployment": deployed.id,
            "reason": reason,
        },
        parent_ids=[versions[-1].id] if versions else [],
    )


def retire(registry: Registry, principal: Principal, ref: str, *, reason: str) -> KnowledgeVersion:
    """Withdraw a version from service (approved or active → retired)."""
    reason = _need_reason(reason)
    with unit_of_work(registry, principal, "knowledge.deploy") as work:
        work.expect("knowledge.retire", CATEGORY, reason=reason)
        row = _find(work.session, ref)
        _require_status(row, ("draft", "in_review", "approved", "active"), "retirement")
        _end_deployments(work.session, row.id, utcnow())
        _step(work, row, "retired", reason, event="knowledge.retire")
        view = _view(row)
    services_changed()
    return view


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


@dataclass(frozen=True)
class ActiveService:
    """An active version as the CDS Hooks service needs it."""

    package: KnowledgePackage
    """The package."""
    mode: Mode
    """silent or live."""
    sites: tuple[str, ...]
    """Sites of the current deployment (empty: all)."""

    def serves_site(self, site_code: str | None) -> bool:
        """Whether the deployment covers the calling client's site."""
        return not self.sites or (site_code is not None and site_code in self.sites)


_PACKAGE_CACHE: dict[str, KnowledgePackage] = {}
ACTIVE_TTL_SECONDS = 2.0
"""How long a process reuses the list of active services (each call needs it).

Changes made in the same process (activate, retire) take effect at once;
changes made by another process (the command line, another worker) within
this many seconds."""
_ACTIVE_CACHE: dict[int, tuple[int, float, dict[str, ActiveService]]] = {}
_GENERATION = [0]


def services_changed() -> None:
    """Make this process reload the active services on the next call."""
    _GENERATION[0] += 1


def active_services(registry: Registry) -> dict[str, ActiveService]:
    """Active versions by service id (packages parsed once per content hash)."""
    cached = _ACTIVE_CACHE.get(id(registry))
    now = time.monotonic()
    if cached and cached[0] == _GENERATION[0] and now - cached[1] < ACTIVE_TTL_SECONDS:
        return cached[2]
    generation = _GENERATION[0]
    out = _load_active(registry)
    _ACTIVE_CACHE[id(registry)] = (generation, now, out)
    return out


def _load_active(registry: Registry) -> dict[str, ActiveService]:
    out: dict[str, ActiveService] = {}
    with registry.transaction() as session:
        rows = session.execute(
            select(
                KnowledgeObjectVersion.id,
                KnowledgeObjectVersion.service_id,
                KnowledgeObjectVersion.package_sha256,
                KnowledgeObjectVersion.mode,
            ).where(KnowledgeObjectVersion.status == "active")
        ).all()
        sites_of: dict[int, Any] = dict(
            session.execute(
                select(KnowledgeDeployment.ko_version_id, KnowledgeDeployment.sites).where(
                    KnowledgeDeployment.ended_at.is_(None)
                )
            ).all()
        )
        for version_id, service_id, sha, mode in rows:
            package = _PACKAGE_CACHE.get(sha)
            if package is None:
                text = session.scalar(
                    select(KnowledgeObjectVersion.package).where(
                        KnowledgeObjectVersion.id == version_id
                    )
                )
                package = package_from_dict(json.loads(text or "{}"))
                _PACKAGE_CACHE[sha] = package
            out[service_id] = ActiveService(
                package=package,
                mode="silent" if mode == "silent" else "live",
                sites=tuple(json.loads(sites_of.get(version_id) or "[]")),
            )
    return out
