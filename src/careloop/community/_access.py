"""Who may do what in a community: membership, stewards, the charter in force (shared helpers).

The policy (careloop.trust.policy) lets anyone signed in read and take part
in communities; these helpers narrow that to the community at hand: its
active members take part, its facilitators and community admins manage
members, and the installation admin and the local operator see every
community (the operator, who owns the data directory, also manages them).
None of this touches patient data, so a community role never widens it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.errors import ErrorDetail, NotFound, PermissionDenied, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import CharterVersion, Community, CommunityMember, User
from careloop.store.scoping import Scope, set_scope
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

CATEGORY = "community"
COMMUNITY_ROLES: tuple[str, ...] = (
    "clinician",
    "patient",
    "carer",
    "researcher",
    "analyst",
    "manager",
    "policy_maker",
    "facilitator",
    "embedded_researcher",
)
"""Roles a member holds in a community (they grant nothing outside it)."""
SCALES: tuple[str, ...] = ("practice", "hospital", "network")


@contextmanager
def community_work(registry: Registry, principal: Principal, action: str) -> Iterator[Work]:
    """A unit of work for a community action, whose session sees no site's or patient's rows.

    The policy grants community actions everywhere (membership is checked
    here instead), which would scope the session to every site; a community
    touches no patient data, so its session is narrowed to none (fail closed):
    a community role can never become a way to patient rows.
    """
    with unit_of_work(registry, principal, action) as work:
        set_scope(work.session, Scope.nothing())
        work.scope = Scope.nothing()
        yield work


def loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def community_row(session: Session, community_id: int) -> Community:
    row = session.get(Community, community_id)
    if row is None:
        raise NotFound(
            f"There is no learning community {community_id} "
            "(`careloop community list` shows yours)."
        )
    return row


def member_row(session: Session, community_id: int, user_id: int | None) -> CommunityMember | None:
    """The active membership of ``user_id`` in the community, if any."""
    if user_id is None:
        return None
    return session.scalar(
        select(CommunityMember).where(
            CommunityMember.community_id == community_id,
            CommunityMember.user_id == user_id,
            CommunityMember.active.is_(True),
        )
    )


def active_members(session: Session, community_id: int) -> list[CommunityMember]:
    return list(
        session.scalars(
            select(CommunityMember)
            .where(
                CommunityMember.community_id == community_id,
                CommunityMember.active.is_(True),
            )
            .order_by(CommunityMember.id)
        )
    )


def is_installation_admin(work: Work) -> bool:
    return work.principal.is_operator or any(
        g.role == "admin" and g.site_id is None for g in work.principal.grants
    )


def may_see(work: Work, community_id: int) -> bool:
    """Members, the installation admin and the operator see a community."""
    return is_installation_admin(work) or (
        member_row(work.session, community_id, work.principal.user_id) is not None
    )


def require_seeing(work: Work, community: Community) -> None:
    if not may_see(work, community.id):
        raise PermissionDenied(
            f"Only members of the learning community {community.name!r} see it; "
            "ask one of its facilitators for an invitation."
        )


def require_member(work: Work, community: Community) -> CommunityMember | None:
    """The caller's membership (None for the operator, who acts for the installation)."""
    if work.principal.is_operator:
        return None
    member = member_row(work.session, community.id, work.principal.user_id)
    if member is None:
        raise PermissionDenied(
            f"Only members of the learning community {community.name!r} may do this; "
            "ask one of its facilitators for an invitation."
        )
    return member


def is_steward(member: CommunityMember | None) -> bool:
    return member is not None and (member.is_admin or "facilitator" in loads(member.roles, []))


def require_steward(work: Work, community: Community) -> CommunityMember | None:
    """Facilitators and community admins manage members (and the operator)."""
    member = require_member(work, community)
    if work.principal.is_operator or is_steward(member):
        return member
    raise PermissionDenied(
        f"Only a facilitator or a community admin of {community.name!r} may do this."
    )


def rater(work: Work, community: Community, on_behalf_of: str | None) -> tuple[int | None, str]:
    """Who is rating (user id, e-mail): the caller, a member; or, for a facilitator or
    the operator recording a workshop, the member named by ``on_behalf_of``."""
    if on_behalf_of is None:
        require_member(work, community)
        return work.principal.user_id, work.principal.email
    require_steward(work, community)
    user = user_by_email(work.session, on_behalf_of, location="on_behalf_of")
    if member_row(work.session, community.id, user.id) is None:
        raise PermissionDenied(f"{user.email} is not a member of {community.name!r}.")
    return user.id, user.email


def check_roles(roles: Sequence[str], location: str = "roles") -> list[str]:
    """Community roles, validated (at least one, each known), in a stable order."""
    unknown = [r for r in roles if r not in COMMUNITY_ROLES]
    if unknown or not roles:
        raise ValidationFailed(
            "Give one or more community roles.",
            [
                ErrorDetail(
                    location,
                    f"{r!r} is no community role; use one of {', '.join(COMMUNITY_ROLES)}.",
                    r,
                )
                for r in unknown
            ]
            or [ErrorDetail(location, "No role was given.")],
        )
    return sorted(set(roles), key=COMMUNITY_ROLES.index)


def charter_in_force(session: Session, community_id: int) -> CharterVersion:
    row = session.scalar(
        select(CharterVersion)
        .where(CharterVersion.community_id == community_id)
        .order_by(CharterVersion.number.desc())
    )
    if row is None:  # every community is created with its founding charter
        raise NotFound(f"The learning community {community_id} has no charter.")
    return row


def user_by_email(session: Session, email: str, *, location: str = "email") -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.disabled:
        raise NotFound(
            f"There is no careloop user {email!r} (a member is a careloop user: "
            "the installation admin or a site lead adds them first).",
            [ErrorDetail(location, "unknown user", email)],
        )
    return user


def audit_refusals(work: Work, action: str, community_id: int | None, **details: Any) -> None:
    """Declare the attempt, so a refusal or a bad input is audited too."""
    work.expect(action, CATEGORY, details={"community": community_id, **details})
