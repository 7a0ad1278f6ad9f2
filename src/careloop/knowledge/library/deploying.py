"""Putting a version into practice and out: activation, spread, retirement, provenance."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    InputError,
    PermissionDenied,
)
from careloop.knowledge.library.lifecycle import (
    community_owner,
    pilot_sites,
)
from careloop.knowledge.library.serving import (
    services_changed,
)
from careloop.knowledge.library.views import (
    CATEGORY,
    Deployment,
    KnowledgeVersion,
    Mode,
    _deployment,
    _find,
    _need_reason,
    _require_status,
    _step,
    _view,
)
from careloop.knowledge.package import (
    package_from_dict,
)
from careloop.knowledge.trial_cover import TrialCover, trial_cover
from careloop.store.database import Registry
from careloop.store.models import Site
from careloop.store.models.community import Cycle
from careloop.store.models.knowledge import (
    KnowledgeDeployment,
    KnowledgeObjectVersion,
)
from careloop.trust.principal import Principal
from careloop.trust.provenance import find_provenance, record_provenance
from careloop.trust.work import Work, unit_of_work


def _site_codes(session: Session, sites: Sequence[str]) -> list[str]:
    codes = sorted(set(sites))
    known = set(session.scalars(select(Site.code).where(Site.code.in_(codes))))
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InputError(f"Unknown site(s): {', '.join(unknown)}.")
    return codes


def _check_mode_and_start(mode: str, started_at: datetime | None, now: datetime) -> None:
    if mode not in ("silent", "live"):
        raise InputError(f"mode must be silent or live, not {mode!r}.")
    if started_at is not None and as_utc(started_at) > now:
        raise InputError("A deployment cannot start in the future; activate it on the day.")


def _cycle_details(cover: TrialCover | None, cycle_id: int | None) -> dict[str, Any]:
    """The audit entry's account of the learning cycle a deployment runs under."""
    if cover is not None:
        return {
            "cycle": cover.cycle_id,
            "trials": list(cover.trials),
            "determination": f"{cover.determination_kind}:{cover.determination_ref}",
            "consent_purpose": cover.consent_purpose,
        }
    return {"cycle": cycle_id} if cycle_id is not None else {}


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
    now = utcnow()
    _check_mode_and_start(mode, started_at, now)
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
            **_cycle_details(cover, cycle_id),
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
