"""Learning communities and their members.

A community (a practice, a hospital, a network) is created with its
founding charter; its creator, or the facilitator the operator names,
becomes its first facilitator and community admin. Facilitators and
community admins invite careloop users by e-mail with community roles
(clinician, patient, carer, researcher, analyst, manager, policy maker,
facilitator, embedded researcher); the invited person accepts or declines;
members may leave. A person may belong to several communities. The
charter and its versions are :mod:`careloop.community.charters`. Every
step runs in one unit of work: the caller's membership is checked on the
server, the change and its audit entry commit together, and refusals are
audited.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.community.charters import (
    CharterTerms,
    CharterView,
    add_charter_version,
    charter_view,
    check_terms,
)
from careloop.community.toolkit import load_starter
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    Conflict,
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.store.database import Registry
from careloop.store.models import (
    CharterVersion,
    Community,
    CommunityInvitation,
    CommunityMember,
    KnowledgeOwnership,
    Site,
    User,
)
from careloop.trust.principal import Principal
from careloop.trust.work import Work


@dataclass(frozen=True)
class MemberView:
    """A member with their community roles."""

    user_id: int
    email: str
    display_name: str
    roles: list[str]
    is_admin: bool
    """Community admin (manages members with the facilitators)."""
    joined_at: datetime


@dataclass(frozen=True)
class InvitationView:
    """An invitation to join a community."""

    id: int
    community_id: int
    community: str
    email: str
    roles: list[str]
    status: str
    invited_by: str
    created_at: datetime


@dataclass(frozen=True)
class CommunityView:
    """A community in the directory."""

    id: int
    name: str
    purpose: str
    problem: str
    scale: str
    sites: list[str]
    conditions: list[str]
    measures: list[str]
    """The measure ids it owns."""
    members: int
    """Active members."""
    patients_and_carers: int
    """Active members who are patients or carers."""
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class CommunityDetail:
    """A community with its members, its charter in force and the charter's history."""

    community: CommunityView
    members: list[MemberView]
    charter: CharterView
    charter_history: list[CharterView]
    """Every version, oldest first."""
    invitations: list[InvitationView] = field(default_factory=list)
    """Pending invitations (shown to facilitators and community admins)."""
    knowledge: list[str] = field(default_factory=list)
    """Identifiers of the knowledge objects it owns."""


def community_view(session: Session, row: Community) -> CommunityView:
    members = access.active_members(session, row.id)
    lived = sum(1 for m in members if {"patient", "carer"} & set(loads(m.roles, [])))
    return CommunityView(
        id=row.id,
        name=row.name,
        purpose=row.purpose,
        problem=row.problem,
        scale=row.scale,
        sites=loads(row.sites, []),
        conditions=loads(row.conditions, []),
        measures=loads(row.measures, []),
        members=len(members),
        patients_and_carers=lived,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


def _member_view(member: CommunityMember, user: User) -> MemberView:
    return MemberView(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        roles=loads(member.roles, []),
        is_admin=member.is_admin,
        joined_at=as_utc(member.joined_at),
    )


def _invitation_view(row: CommunityInvitation, community: Community) -> InvitationView:
    return InvitationView(
        id=row.id,
        community_id=community.id,
        community=community.name,
        email=row.email,
        roles=loads(row.roles, []),
        status=row.status,
        invited_by=row.invited_by,
        created_at=as_utc(row.created_at),
    )


def _site_codes(session: Session, sites: Sequence[str]) -> list[str]:
    codes = sorted({s.strip() for s in sites if s.strip()})
    known = set(session.scalars(select(Site.code).where(Site.code.in_(codes))))
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise ValidationFailed(
            "The community names sites careloop does not know; nothing was changed.",
            [
                ErrorDetail(f"sites[{codes.index(c)}]", "No such site (`careloop site list`).", c)
                for c in unknown
            ],
        )
    return codes


def check_measures(
    measures: Sequence[str], known_measures: Collection[str], *, location: str = "measures"
) -> list[str]:
    """Measure ids, each known to the installation's catalogue."""
    unknown = [(i, m) for i, m in enumerate(measures) if m not in known_measures]
    if unknown:
        raise ValidationFailed(
            "Some measure ids are not in this installation's measures; nothing was changed.",
            [
                ErrorDetail(
                    f"{location}[{i}]",
                    "No such measure: `careloop measures list` shows the ids.",
                    m,
                )
                for i, m in unknown
            ],
        )
    return list(dict.fromkeys(measures))


def create_community(
    registry: Registry,
    principal: Principal,
    *,
    name: str,
    purpose: str,
    problem: str,
    scale: str,
    charter: CharterTerms,
    known_measures: Collection[str],
    sites: Sequence[str] = (),
    conditions: Sequence[str] = (),
    measures: Sequence[str] = (),
    facilitator: str | None = None,
) -> CommunityDetail:
    """Create a community with its founding charter.

    The creator becomes its first facilitator and community admin; the
    operator (who is no careloop user) names the facilitator by e-mail.
    """
    with access.community_work(registry, principal, "community.create") as work:
        session = work.session
        access.audit_refusals(work, "community.create", None, name=name)
        problems = []
        if not name.strip():
            problems.append(ErrorDetail("name", "Give the community a name."))
        if not purpose.strip():
            problems.append(ErrorDetail("purpose", "Say what the community is for."))
        if scale not in access.SCALES:
            problems.append(
                ErrorDetail("scale", f"The scale is one of {', '.join(access.SCALES)}.", scale)
            )
        if problems:
            raise ValidationFailed("The community is not valid; nothing was changed.", problems)
        if session.scalar(select(Community).where(Community.name == name.strip())) is not None:
            raise Conflict(f"There is already a learning community called {name.strip()!r}.")
        codes = _site_codes(session, sites)
        owned = check_measures(measures, known_measures)
        approvers = check_terms(session, charter)
        if principal.user_id is not None and facilitator is None:
            first = session.get(User, principal.user_id)
        elif facilitator is not None:
            first = access.user_by_email(session, facilitator, location="facilitator")
        else:
            raise InputError(
                "Name the community's first facilitator (--facilitator EMAIL): "
                "a community is run by its members, and the operator is not one."
            )
        assert first is not None
        row = Community(
            name=name.strip(),
            purpose=purpose.strip(),
            problem=problem.strip(),
            scale=scale,
            sites=json.dumps(codes),
            conditions=json.dumps([c.strip() for c in conditions if c.strip()]),
            measures=json.dumps(owned),
            created_by=principal.email,
        )
        session.add(row)
        session.flush()
        session.add(
            CommunityMember(
                community_id=row.id,
                user_id=first.id,
                roles=json.dumps(["facilitator"]),
                is_admin=True,
            )
        )
        add_charter_version(
            session, row.id, charter, approvers, adopted_by=principal.email, proposal_id=None
        )
        tools = load_starter(session, row.id)  # the toolkit starts with careloop's starter set
        details = {"community": row.id, "name": row.name, "facilitator": first.email}
        work.audit("community.create", CATEGORY, details={**details, "toolkit": len(tools)})
        session.flush()
        return _detail(work, row)


def _detail(work: Work, row: Community) -> CommunityDetail:
    session = work.session
    members = session.execute(
        select(CommunityMember, User)
        .join(User, User.id == CommunityMember.user_id)
        .where(CommunityMember.community_id == row.id, CommunityMember.active.is_(True))
        .order_by(CommunityMember.id)
    ).all()
    history = list(
        session.scalars(
            select(CharterVersion)
            .where(CharterVersion.community_id == row.id)
            .order_by(CharterVersion.number)
        )
    )
    steward = work.principal.is_operator or access.is_steward(
        access.member_row(session, row.id, work.principal.user_id)
    )
    invitations = (
        list(
            session.scalars(
                select(CommunityInvitation)
                .where(
                    CommunityInvitation.community_id == row.id,
                    CommunityInvitation.status == "pending",
                )
                .order_by(CommunityInvitation.id)
            )
        )
        if steward
        else []
    )
    charters = [charter_view(session, c) for c in history]
    return CommunityDetail(
        community=community_view(session, row),
        members=[_member_view(m, u) for m, u in members],
        charter=charters[-1],
        charter_history=charters,
        invitations=[_invitation_view(i, row) for i in invitations],
        knowledge=list(
            session.scalars(
                select(KnowledgeOwnership.identifier)
                .where(KnowledgeOwnership.community_id == row.id)
                .order_by(KnowledgeOwnership.identifier)
            )
        ),
    )


def list_communities(registry: Registry, principal: Principal) -> list[CommunityView]:
    """The communities the caller belongs to (every one for the installation admin)."""
    with access.community_work(registry, principal, "community.read") as work:
        session = work.session
        rows = list(session.scalars(select(Community).order_by(Community.id)))
        if not access.is_installation_admin(work):
            mine = set(
                session.scalars(
                    select(CommunityMember.community_id).where(
                        CommunityMember.user_id == principal.user_id,
                        CommunityMember.active.is_(True),
                    )
                )
            )
            rows = [r for r in rows if r.id in mine]
        work.audit("community.list", CATEGORY, details={"communities": [r.id for r in rows]})
        return [community_view(session, r) for r in rows]


def show_community(registry: Registry, principal: Principal, community_id: int) -> CommunityDetail:
    """A community with its members and charter (members and the installation admin)."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "community.show", community_id)
        row = access.community_row(work.session, community_id)
        access.require_seeing(work, row)
        work.audit("community.show", CATEGORY, details={"community": row.id})
        return _detail(work, row)


def invite(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    email: str,
    roles: Sequence[str],
) -> InvitationView:
    """Invite a careloop user to join with these community roles (facilitators, admins)."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.invite", community_id, email=email)
        row = access.community_row(session, community_id)
        access.require_steward(work, row)
        checked = access.check_roles(roles)
        user = access.user_by_email(session, email)
        if access.member_row(session, row.id, user.id) is not None:
            raise Conflict(f"{user.email} is already a member of {row.name!r}.")
        pending = session.scalar(
            select(CommunityInvitation).where(
                CommunityInvitation.community_id == row.id,
                CommunityInvitation.email == user.email,
                CommunityInvitation.status == "pending",
            )
        )
        if pending is not None:
            raise Conflict(
                f"{user.email} has a pending invitation ({pending.id}) to {row.name!r} already."
            )
        invitation = CommunityInvitation(
            community_id=row.id,
            email=user.email,
            roles=json.dumps(checked),
            invited_by=principal.email,
        )
        session.add(invitation)
        session.flush()
        work.audit(
            "community.invite",
            CATEGORY,
            details={"community": row.id, "email": user.email, "roles": checked},
        )
        return _invitation_view(invitation, row)


def my_invitations(registry: Registry, principal: Principal) -> list[InvitationView]:
    """The caller's pending invitations."""
    with access.community_work(registry, principal, "community.read") as work:
        rows = work.session.execute(
            select(CommunityInvitation, Community)
            .join(Community, Community.id == CommunityInvitation.community_id)
            .where(
                CommunityInvitation.email == principal.email,
                CommunityInvitation.status == "pending",
            )
            .order_by(CommunityInvitation.id)
        ).all()
        # Who invited whom to which community is about people: the read is audited.
        work.audit(
            "community.invitations",
            CATEGORY,
            details={"invitations": [i.id for i, _ in rows]},
        )
        return [_invitation_view(i, c) for i, c in rows]


def answer_invitation(
    registry: Registry,
    principal: Principal,
    invitation_id: int,
    *,
    accept: bool,
    on_behalf_of: str | None = None,
    community_id: int | None = None,
) -> InvitationView:
    """Accept (join) or decline an invitation: the invited person, or the operator for them."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.join", None, invitation=invitation_id)
        invitation = session.get(CommunityInvitation, invitation_id)
        if invitation is None or (
            community_id is not None and invitation.community_id != community_id
        ):
            raise NotFound(f"There is no invitation {invitation_id}.")
        community = access.community_row(session, invitation.community_id)
        email = principal.email
        if on_behalf_of is not None:
            if not principal.is_operator:
                raise PermissionDenied("Only the invited person answers their invitation.")
            email = on_behalf_of.strip().lower()
        if invitation.email != email:
            raise PermissionDenied("Only the invited person answers their invitation.")
        if invitation.status != "pending":
            raise Conflict(f"This invitation is {invitation.status} already.")
        user = access.user_by_email(session, invitation.email)
        invitation.status = "accepted" if accept else "declined"
        invitation.answered_at = utcnow()
        if accept:
            _add_or_rejoin(session, community.id, user.id, loads(invitation.roles, []))
        work.audit(
            "community.join" if accept else "community.decline",
            CATEGORY,
            details={"community": community.id, "email": user.email, "invitation": invitation.id},
        )
        return _invitation_view(invitation, community)


def _add_or_rejoin(session: Session, community_id: int, user_id: int, roles: list[str]) -> None:
    existing = session.scalar(
        select(CommunityMember).where(
            CommunityMember.community_id == community_id, CommunityMember.user_id == user_id
        )
    )
    if existing is None:
        session.add(
            CommunityMember(community_id=community_id, user_id=user_id, roles=json.dumps(roles))
        )
    else:  # someone who left and is invited back keeps one row (their history stays theirs)
        existing.active = True
        existing.left_at = None
        existing.roles = json.dumps(roles)
        existing.joined_at = utcnow()
    session.flush()


def leave(registry: Registry, principal: Principal, community_id: int) -> None:
    """Leave a community (the last community admin cannot)."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.leave", community_id)
        row = access.community_row(session, community_id)
        member = access.require_member(work, row)
        if member is None:
            raise InputError("The operator is no member; there is nothing to leave.")
        _keep_a_steward(session, row, leaving=member)
        member.active = False
        member.left_at = utcnow()
        work.audit("community.leave", CATEGORY, details={"community": row.id})


def _keep_a_steward(session: Session, row: Community, *, leaving: CommunityMember) -> None:
    others = [
        m for m in access.active_members(session, row.id) if m.id != leaving.id and m.is_admin
    ]
    if leaving.is_admin and not others:
        raise Conflict(
            f"You are the last community admin of {row.name!r}: make another member an "
            "admin first, so that someone can still manage its members."
        )


def set_member_roles(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    email: str,
    roles: Sequence[str],
    is_admin: bool | None = None,
) -> MemberView:
    """Change a member's community roles (facilitators and community admins only)."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "community.set_roles", community_id, email=email)
        row = access.community_row(session, community_id)
        access.require_steward(work, row)
        checked = access.check_roles(roles)
        user = access.user_by_email(session, email)
        member = access.member_row(session, row.id, user.id)
        if member is None:
            raise NotFound(f"{user.email} is not a member of {row.name!r}.")
        if is_admin is False:
            _keep_a_steward(session, row, leaving=member)
        before = loads(member.roles, [])
        member.roles = json.dumps(checked)
        if is_admin is not None:
            member.is_admin = is_admin
        work.audit(
            "community.set_roles",
            CATEGORY,
            details={
                "community": row.id,
                "email": user.email,
                "from": before,
                "to": checked,
                "admin": member.is_admin,
            },
        )
        return _member_view(member, user)
