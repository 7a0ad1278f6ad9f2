"""Users and their roles: adding, disabling, granting and revoking, keeping one admin."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from careloop.core.clock import utcnow
from careloop.core.errors import (
    Conflict,
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.core.plain_text import control_characters, shown, text_problem
from careloop.store.database import Registry
from careloop.store.models import ApiToken, Membership, Site, User, WebSession
from careloop.store.scoping import Scope, set_scope
from careloop.trust.identity.sites import site_by_code
from careloop.trust.identity.views import UserView, _site_codes, _user_view
from careloop.trust.passwords import check_password_rules, hash_password
from careloop.trust.policy import (
    INSTALLATION_WIDE_ROLES,
    PRIVILEGED_ROLES,
    ROLES,
    Role,
)
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _resolve_roles(
    session: Session, roles: Sequence[tuple[str, str | None]]
) -> list[tuple[Role, Site | None]]:
    resolved: list[tuple[Role, Site | None]] = []
    problems: list[ErrorDetail] = []
    for i, (role, site_code) in enumerate(roles):
        if role not in ROLES:
            problems.append(
                ErrorDetail(
                    f"roles[{i}].role", f"unknown role; use one of {', '.join(ROLES)}", role
                )
            )
            continue
        site = site_by_code(session, site_code) if site_code else None
        if site is None and role not in INSTALLATION_WIDE_ROLES:
            problems.append(
                ErrorDetail(f"roles[{i}].site", f"the {role} role needs a site", site_code)
            )
        if site is not None and role == "admin":
            problems.append(
                ErrorDetail(
                    f"roles[{i}].site", "admin is installation-wide; give no site", site_code
                )
            )
        resolved.append((role, site))
    if problems:
        raise ValidationFailed("The roles are not valid.", details=problems)
    return resolved


def _check_may_grant(work: Work, role: Role, site: Site | None) -> None:
    """Site leads grant non-privileged roles at their own sites; admins grant anything."""
    if work.scope.site_ids is None:
        return
    if role in PRIVILEGED_ROLES or site is None or site.id not in work.scope.site_ids:
        raise PermissionDenied(
            f"You may not grant the {role} role"
            + (f" at {site.code}" if site is not None else " installation-wide")
            + "; ask an installation admin."
        )


def add_user(
    registry: Registry,
    principal: Principal,
    *,
    email: str,
    display_name: str,
    password: str | None,
    roles: Sequence[tuple[str, str | None]],
    patient_id: int | None = None,
) -> UserView:
    """Create a user with roles such as ``[("clinician", "RCH")]``.

    ``password`` may be None for accounts that will sign in another way later
    (a patient's link); such accounts cannot log in with a password.
    """
    email = email.strip().lower()
    problems: list[ErrorDetail] = []
    if not _EMAIL.match(email) or len(email) > 254 or control_characters(email):
        problems.append(ErrorDetail("email", "not an e-mail address", shown(email)))
    wrong_name = text_problem(display_name, what="a display name", max_length=200, required=False)
    if wrong_name:
        problems.append(ErrorDetail("display_name", wrong_name, shown(display_name)))
    if problems:
        raise ValidationFailed("The user was not added.", details=problems)
    if password is not None:
        check_password_rules(password)
    with unit_of_work(registry, principal, "user.manage") as work:
        session = work.session
        resolved = _resolve_roles(session, roles)
        for role, site in resolved:
            _check_may_grant(work, role, site)
        if session.scalar(select(User).where(User.email == email)) is not None:
            raise Conflict(f"A user with e-mail {email} already exists.")
        user = User(
            email=email,
            display_name=display_name.strip() or email,
            password_hash=hash_password(password) if password is not None else None,
            patient_id=patient_id,
        )
        user.memberships = [
            Membership(role=role, site_id=site.id if site else None) for role, site in resolved
        ]
        session.add(user)
        session.flush()
        work.audit("create", "identity", details={"user": email})
        for role, site in resolved:
            work.audit(
                "privilege_change",
                "identity",
                site_code=site.code if site else None,
                details={"user": email, "granted": role},
            )
        return _user_view(user, _site_codes(session))


def _visible_users(work: Work) -> list[User]:
    query = select(User).order_by(User.email)
    if work.scope.site_ids is not None:
        query = query.where(
            User.id.in_(
                select(Membership.user_id).where(Membership.site_id.in_(list(work.scope.site_ids)))
            )
        )
    return list(work.session.scalars(query))


def list_users(registry: Registry, principal: Principal) -> list[UserView]:
    with unit_of_work(registry, principal, "user.read") as work:
        codes = _site_codes(work.session)
        return [_user_view(u, codes) for u in _visible_users(work)]


def _managed_user(work: Work, email: str) -> User:
    email = email.strip().lower()
    user = next((u for u in _visible_users(work) if u.email == email), None)
    if user is None:
        raise NotFound(f"There is no user {email} that you manage.")
    return user


def set_user_disabled(
    registry: Registry, principal: Principal, *, email: str, disabled: bool = True
) -> UserView:
    """Disable (or re-enable) a user; disabling ends their sessions and tokens."""
    with unit_of_work(registry, principal, "user.manage") as work:
        user = _managed_user(work, email)
        if work.scope.site_ids is not None and any(
            m.role in PRIVILEGED_ROLES for m in user.memberships
        ):
            raise PermissionDenied("Only an installation admin may disable this user.")
        if principal.user_id == user.id and disabled:
            raise InputError("You cannot disable your own account.")
        if disabled and any(m.role == "admin" for m in user.memberships):
            _keep_an_admin(work.session, leaving=user)
        user.disabled = disabled
        now = utcnow()
        if disabled:
            for web in work.session.scalars(
                select(WebSession).where(
                    WebSession.user_id == user.id, WebSession.ended_at.is_(None)
                )
            ):
                web.ended_at = now
            for token in work.session.scalars(
                select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            ):
                token.revoked_at = now
        work.audit(
            "privilege_change",
            "identity",
            details={"user": user.email, "disabled": disabled},
        )
        return _user_view(user, _site_codes(work.session))


def grant_role(
    registry: Registry, principal: Principal, *, email: str, role: str, site: str | None
) -> UserView:
    """Give a user a role at a site (or installation-wide)."""
    with unit_of_work(registry, principal, "user.manage") as work:
        session = work.session
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"There is no user {email}.")
        [(checked_role, site_row)] = _resolve_roles(session, [(role, site)])
        _check_may_grant(work, checked_role, site_row)
        site_id = site_row.id if site_row else None
        if any(m.role == checked_role and m.site_id == site_id for m in user.memberships):
            raise Conflict(f"{user.email} already has the {role} role there.")
        user.memberships.append(Membership(role=checked_role, site_id=site_id))
        session.flush()
        work.audit(
            "privilege_change",
            "identity",
            site_code=site_row.code if site_row else None,
            details={"user": user.email, "granted": checked_role},
        )
        return _user_view(user, _site_codes(session))


def revoke_role(
    registry: Registry, principal: Principal, *, email: str, role: str, site: str | None
) -> UserView:
    """Take a role away from a user."""
    with unit_of_work(registry, principal, "user.manage") as work:
        session = work.session
        user = _managed_user(work, email)
        site_row = site_by_code(session, site) if site else None
        _check_may_grant(work, role, site_row)  # type: ignore[arg-type]
        site_id = site_row.id if site_row else None
        match = [m for m in user.memberships if m.role == role and m.site_id == site_id]
        if not match:
            raise NotFound(f"{user.email} does not have the {role} role there.")
        if role == "admin":
            _keep_an_admin(session, leaving=user)
        for m in match:
            user.memberships.remove(m)
        session.flush()
        work.audit(
            "privilege_change",
            "identity",
            site_code=site_row.code if site_row else None,
            details={"user": user.email, "revoked": role},
        )
        return _user_view(user, _site_codes(session))


def _keep_an_admin(session: Session, *, leaving: User) -> None:
    """Refuse a change that would leave the installation without an enabled admin.

    The admins' memberships are locked first (PostgreSQL), so two admins
    revoking each other at once cannot both succeed.
    """
    admins = session.execute(
        select(Membership.user_id, User.disabled)
        .join(User, User.id == Membership.user_id)
        .where(Membership.role == "admin")
        .with_for_update()
    ).all()
    others = {user_id for user_id, disabled in admins if not disabled and user_id != leaving.id}
    if not others:
        raise Conflict(
            f"{leaving.email} is the last admin of this installation: make another user "
            "admin first (`careloop user grant EMAIL admin`), then try again."
        )


def count_admins(registry: Registry) -> int:
    """How many enabled installation admins exist (``careloop init`` needs one)."""
    with registry.transaction() as session:
        set_scope(session, Scope.everything())
        return int(
            session.scalar(
                select(func.count(func.distinct(Membership.user_id)))
                .join(User, User.id == Membership.user_id)
                .where(Membership.role == "admin", User.disabled.is_(False))
            )
            or 0
        )


def bootstrap_admin_needed(registry: Registry) -> bool:
    return count_admins(registry) == 0
