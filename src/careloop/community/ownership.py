"""Knowledge a community owns: handing a knowledge object to a community, and
the checks its proposals make of it (the version exists, this community owns
it, a NASSS assessment is on record before it spreads).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.core.errors import Conflict, ErrorDetail, NotFound, PermissionDenied, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import (
    Community,
    KnowledgeObjectVersion,
    KnowledgeOwnership,
    NassAssessment,
)
from careloop.trust.principal import Principal


def knowledge_version(session: Session, ref: str, location: str) -> KnowledgeObjectVersion:
    identifier, _, version = ref.partition("@")
    if not version:
        raise ValidationFailed(
            "Name the version the community decides on.",
            [ErrorDetail(location, "Use identifier@version, e.g. ibd-steroid-review@1.0.0.", ref)],
        )
    row = session.scalar(
        select(KnowledgeObjectVersion).where(
            KnowledgeObjectVersion.identifier == identifier,
            KnowledgeObjectVersion.version == version,
        )
    )
    if row is None:
        raise NotFound(
            f"There is no knowledge object version {ref!r} (`careloop knowledge list`).",
            [ErrorDetail(location, "unknown knowledge object version", ref)],
        )
    return row


def owned_by(session: Session, community: Community, identifier: str) -> KnowledgeOwnership:
    owned = session.scalar(
        select(KnowledgeOwnership).where(KnowledgeOwnership.identifier == identifier)
    )
    if owned is None or owned.community_id != community.id:
        raise PermissionDenied(
            f"{identifier} is not owned by {community.name!r}, so the community does not "
            "decide on it (a steward hands it over with `careloop community own`)."
        )
    return owned


def has_nasss(session: Session, community_id: int, identifier: str) -> bool:
    """Whether this community has a NASSS assessment of the knowledge object on record
    (of the object, ``identifier``, or of one of its versions, ``identifier@version``)."""
    subjects = session.scalars(
        select(NassAssessment.subject).where(NassAssessment.community_id == community_id)
    )
    return any(s.partition("@")[0] == identifier for s in subjects)


def own_knowledge(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    identifier: str,
    pilot_sites: Sequence[str],
) -> None:
    """Hand a knowledge object to the community: from now on its rule approves and spreads it.

    Those who steward knowledge today (a site lead, the admin, the operator)
    hand it over, and only as a facilitator or admin of the community.
    """
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.own", community_id, knowledge=identifier)
        community = access.community_row(session, community_id)
        access.require_steward(work, community)
        if not principal.may("knowledge.approve"):
            raise PermissionDenied(
                "Handing a knowledge object to a community is done by those who approve "
                "knowledge today (a site lead or the installation admin)."
            )
        exists = session.scalar(
            select(KnowledgeObjectVersion.id).where(KnowledgeObjectVersion.identifier == identifier)
        )
        if exists is None:
            raise NotFound(f"There is no knowledge object {identifier!r} in the library.")
        owned = session.scalar(
            select(KnowledgeOwnership).where(KnowledgeOwnership.identifier == identifier)
        )
        if owned is not None:
            raise Conflict(f"{identifier} is owned by community {owned.community_id} already.")
        scope = set(loads(community.sites, []))
        codes = sorted(set(pilot_sites))
        outside = [c for c in codes if scope and c not in scope]
        if outside or not codes:
            raise ValidationFailed(
                "Name the pilot sites, within the community's sites.",
                [ErrorDetail("pilot_sites", "outside the community's sites", c) for c in outside]
                or [ErrorDetail("pilot_sites", "No pilot site was given.")],
            )
        session.add(
            KnowledgeOwnership(
                identifier=identifier,
                community_id=community.id,
                pilot_sites=json.dumps(codes),
                assigned_by=principal.email,
            )
        )
        work.audit(
            "community.own",
            CATEGORY,
            details={"community": community.id, "knowledge": identifier, "pilot_sites": codes},
        )
