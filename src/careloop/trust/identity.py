"""Sites, users, roles, logins, sessions and API tokens.

These functions are what the web layer and the CLI call; each runs in one
audited unit of work and returns plain, frozen views (never ORM rows).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    AccountLocked,
    AuthenticationRequired,
    Conflict,
    ErrorDetail,
    InputError,
    InvalidCredentials,
    NotFound,
    PermissionDenied,
    ReauthenticationRequired,
    SessionExpired,
    ValidationFailed,
)
from careloop.core.ids import secret_token, sha256_hex
from careloop.core.plain_text import control_characters, shown, text_problem
from careloop.core.settings import Settings
from careloop.store.database import Registry
from careloop.store.models import ApiToken, CarerLink, Membership, Site, User, WebSession
from careloop.store.scoping import Scope, set_scope
from careloop.trust import audit, lockout
from careloop.trust.audit import AuditEvent
from careloop.trust.passwords import check_password_rules, hash_password, verify_password
from careloop.trust.places import country_problem, time_zone_problem
from careloop.trust.policy import (
    INSTALLATION_WIDE_ROLES,
    PRIVILEGED_ROLES,
    ROLES,
    Role,
)
from careloop.trust.principal import Grant, Principal, RequestContext
from careloop.trust.work import Work, record_events, unit_of_work

LOCKED_MESSAGE = (
    "Too many failed attempts: this account is locked for a while. "
    "Try again later or ask your site lead."
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SITE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
TOKEN_PREFIX = "cl"  # noqa: S105 - the visible prefix of API tokens, not a secret


# ---------------------------------------------------------------- views


@dataclass(frozen=True)
class SiteView:
    """A care centre."""

    id: int
    code: str
    name: str
    country: str
    time_zone: str


@dataclass(frozen=True)
class RoleView:
    """A role held at a site (``site`` None: the whole installation)."""

    role: str
    site: str | None


@dataclass(frozen=True)
class UserView:
    """A user account, without secrets."""

    id: int
    email: str
    display_name: str
    disabled: bool
    roles: tuple[RoleView, ...]
    last_login_at: datetime | None


@dataclass(frozen=True)
class LoginResult:
    """A new browser session: give ``session_token`` to the browser as a cookie."""

    principal: Principal
    session_token: str
    csrf_token: str


@dataclass(frozen=True)
class TokenCreated:
    """A new API token; ``token`` is shown once and never stored."""

    id: int
    name: str
    token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenView:
    """An API token's metadata."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def _site_view(site: Site) -> SiteView:
    return SiteView(site.id, site.code, site.name, site.country, site.time_zone)


def _user_view(user: User, site_codes: dict[int, str]) -> UserView:
    roles = tuple(
        RoleView(m.role, site_codes.get(m.site_id) if m.site_id is not None else None)
        for m in sorted(user.memberships, key=lambda m: (m.site_id or 0, m.role))
    )
    return UserView(
        user.id, user.email, user.display_name, user.disabled, roles, user.last_login_at
    )


def _site_codes(session: Session) -> dict[int, str]:
    return {s.id: s.code for s in session.scalars(select(Site))}


# ---------------------------------------------------------------- sites


def add_site(
    registry: Registry,
    principal: Principal,
    *,
    code: str,
    name: str,
    country: str,
    time_zone: str,
) -> SiteView:
    """Register a care centre. ``code`` is short and stable, e.g. ``RCH``."""
    problems: list[ErrorDetail] = []
    code = code.strip().upper()
    if not _SITE_CODE.match(code):
        problems.append(ErrorDetail("code", "use 1-32 letters, digits, '-' or '_', e.g. RCH", code))
    wrong_name = text_problem(name, what="a site's name", max_length=200)
    if wrong_name:
        problems.append(ErrorDetail("name", wrong_name, shown(name)))
    wrong_country = country_problem(country)
    if wrong_country:
        problems.append(ErrorDetail("country", wrong_country, country))
    country = country.strip().upper()
    wrong_zone = time_zone_problem(time_zone, country=country)
    if wrong_zone:
        problems.append(ErrorDetail("time_zone", wrong_zone, time_zone))
    if problems:
        raise ValidationFailed("The site was not added.", details=problems)
    with unit_of_work(registry, principal, "site.manage") as work:
        if work.session.scalar(select(Site).where(Site.code == code)) is not None:
            raise Conflict(f"A site with code {code} already exists; choose another code.")
        site = Site(code=code, name=name.strip(), country=country, time_zone=time_zone)
        work.session.add(site)
        work.session.flush()
        work.audit("create", "site", site_code=code, details={"name": site.name})
        return _site_view(site)


def list_sites(registry: Registry, principal: Principal) -> list[SiteView]:
    with unit_of_work(registry, principal, "site.read") as work:
        return [_site_view(s) for s in work.session.scalars(select(Site).order_by(Site.code))]


def site_by_code(session: Session, code: str) -> Site:
    site = session.scalar(select(Site).where(Site.code == code.strip().upper()))
    if site is None:
        raise NotFound(f"There is no site with code {code!r}. `careloop site list` shows them.")
    return site


def site_time_zone(site: SiteView) -> ZoneInfo:
    return ZoneInfo(site.time_zone)


# ---------------------------------------------------------------- users and roles


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


# ---------------------------------------------------------------- principals


def principal_for(session: Session, user: User, context: RequestContext) -> Principal:
    """The principal of a loaded user: grants, own record, proxied patients."""
    codes = _site_codes(session)
    grants = tuple(
        Grant(m.role, m.site_id, codes.get(m.site_id) if m.site_id else None)  # type: ignore[arg-type]
        for m in user.memberships
    )
    proxied = tuple(
        session.scalars(
            select(CarerLink.patient_id)
            .where(CarerLink.carer_user_id == user.id, CarerLink.revoked_at.is_(None))
            .execution_options(careloop_unscoped=True)
        )
    )
    return Principal(
        user_id=user.id,
        email=user.email,
        grants=grants,
        patient_id=user.patient_id,
        proxied_patient_ids=proxied,
        context=context,
    )


def _system_session(registry: Registry) -> Session:
    session = registry.sessions()
    set_scope(session, Scope.everything())
    return session


def _identity_event(
    action: str,
    outcome: audit.Outcome,
    context: RequestContext,
    *,
    user: User | None = None,
    email: str | None = None,
    details: dict[str, object] | None = None,
) -> AuditEvent:
    return AuditEvent(
        action=action,
        category="session",
        outcome=outcome,
        user_id=user.id if user else None,
        user_email=user.email if user else email,
        request_id=context.request_id,
        client_addr=context.client_addr,
        details=details,
    )


# ---------------------------------------------------------------- login and sessions


def login(
    registry: Registry,
    settings: Settings,
    *,
    email: str,
    password: str,
    context: RequestContext,
) -> LoginResult:
    """Check a password and open a server-side session.

    Failed attempts are counted per e-mail address, known or not
    (careloop.trust.lockout); after ``settings.lockout_threshold`` in a row
    the address is locked for ``settings.lockout_minutes``. Every attempt is
    audited. Neither the status nor the message nor the work done says
    whether the e-mail exists.
    """
    email = email.strip().lower()
    now = utcnow()
    failure: AuthenticationRequired | None = None
    with registry.sessions() as session, session.begin():
        set_scope(session, Scope.everything())
        user = session.scalar(select(User).where(User.email == email).with_for_update())
        if lockout.is_locked(session, email, now):
            verify_password(None, password)
            audit.append(
                session,
                _identity_event(
                    "login_failed",
                    "denied",
                    context,
                    user=user,
                    email=email,
                    details={"why": "locked"},
                ),
            )
            failure = AccountLocked(LOCKED_MESSAGE)
        elif user is None or user.disabled or not verify_password(user.password_hash, password):
            if user is None:
                verify_password(None, password)
            why = "unknown_user" if user is None else ("disabled" if user.disabled else "password")
            if lockout.record_failure(session, email, settings, now):
                why += "; locked"
            audit.append(
                session,
                _identity_event(
                    "login_failed", "denied", context, user=user, email=email, details={"why": why}
                ),
            )
            failure = InvalidCredentials("The e-mail or password is not right.")
        else:
            lockout.clear(session, email)
            user.last_login_at = now
            token = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            session.add(
                WebSession(
                    token_hash=sha256_hex(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    authenticated_at=now,
                    client_addr=context.client_addr,
                )
            )
            audit.append(session, _identity_event("login", "success", context, user=user))
            principal = principal_for(session, user, context)
    if failure is not None:
        raise failure
    return LoginResult(principal=principal, session_token=token, csrf_token=csrf)


@dataclass(frozen=True)
class ActiveSession:
    """A valid browser session."""

    principal: Principal
    csrf_token: str
    authenticated_at: datetime


def resolve_session(
    registry: Registry, settings: Settings, token: str, context: RequestContext
) -> ActiveSession:
    """The session behind a cookie; refreshes its idle timer.

    Raises SessionExpired after ``settings.session_idle_minutes`` of
    inactivity (and ends the session, audited), AuthenticationRequired when
    the token is unknown or ended.

    Checking a session only reads, as a token check does (no write lock: on
    SQLite every page would otherwise queue behind every write); its last-seen
    time is written in a short transaction of its own, at most once a minute,
    so the idle timeout is kept to within a minute.
    """
    now = utcnow()
    with registry.read_transaction() as session:
        set_scope(session, Scope.everything())
        web = session.scalar(select(WebSession).where(WebSession.token_hash == sha256_hex(token)))
        if web is None or web.ended_at is not None:
            raise AuthenticationRequired("Please log in.")
        user = session.get(User, web.user_id)
        if user is None or user.disabled:
            raise AuthenticationRequired("Please log in.")
        web_id, user_id = web.id, user.id
        last_seen = as_utc(web.last_seen_at)
        expired = last_seen + timedelta(minutes=settings.session_idle_minutes) <= now
        result = ActiveSession(
            principal_for(session, user, context), web.csrf_token, as_utc(web.authenticated_at)
        )
    if expired:
        with registry.transaction() as session:
            set_scope(session, Scope.everything())
            ended = session.execute(
                update(WebSession)
                .where(WebSession.id == web_id, WebSession.ended_at.is_(None))
                .values(ended_at=now)
            )
            if ended.rowcount:  # type: ignore[attr-defined]
                user_row = session.get(User, user_id)
                audit.append(
                    session,
                    _identity_event(
                        "logout", "success", context, user=user_row, details={"why": "idle timeout"}
                    ),
                )
        raise SessionExpired(
            "Your session ended after a period of inactivity. Please log in again."
        )
    if last_seen + timedelta(minutes=1) < now:
        with registry.transaction() as session:
            session.execute(
                update(WebSession).where(WebSession.id == web_id).values(last_seen_at=now)
            )
    return result


def require_recent_authentication(session: ActiveSession, settings: Settings) -> None:
    """Sensitive actions need a password entered within ``settings.reauth_minutes``."""
    if session.authenticated_at + timedelta(minutes=settings.reauth_minutes) <= utcnow():
        raise ReauthenticationRequired(
            "Please enter your password again to continue with this action."
        )


def reauthenticate(
    registry: Registry, settings: Settings, token: str, password: str, context: RequestContext
) -> None:
    """Confirm the password of the session's user and renew its authentication time.

    The same lock-out as :func:`login` applies: failures count towards it, and
    a locked address is refused even with the right password.
    """
    now = utcnow()
    failure: AuthenticationRequired | None = None
    with registry.sessions() as session, session.begin():
        set_scope(session, Scope.everything())
        web = session.scalar(select(WebSession).where(WebSession.token_hash == sha256_hex(token)))
        if web is None or web.ended_at is not None:
            raise AuthenticationRequired("Please log in.")
        user = session.get(User, web.user_id)
        if user is None or user.disabled:
            raise AuthenticationRequired("Please log in.")
        if lockout.is_locked(session, user.email, now):
            verify_password(None, password)
            why: str | None = "locked"
            failure = AccountLocked(LOCKED_MESSAGE)
        elif verify_password(user.password_hash, password):
            why = None
            lockout.clear(session, user.email)
            web.authenticated_at = now
        else:
            why = "password"
            if lockout.record_failure(session, user.email, settings, now):
                why += "; locked"
            failure = InvalidCredentials("The password is not right.")
        audit.append(
            session,
            _identity_event(
                "reauthenticate",
                "denied" if failure else "success",
                context,
                user=user,
                details={"why": why} if why else None,
            ),
        )
    if failure is not None:
        raise failure


def logout(registry: Registry, token: str, context: RequestContext) -> None:
    """End a browser session (idempotent)."""
    with registry.sessions() as session, session.begin():
        set_scope(session, Scope.everything())
        web = session.scalar(select(WebSession).where(WebSession.token_hash == sha256_hex(token)))
        if web is None or web.ended_at is not None:
            return
        web.ended_at = utcnow()
        user = session.get(User, web.user_id)
        audit.append(session, _identity_event("logout", "success", context, user=user))


# ---------------------------------------------------------------- API tokens


def create_token(
    registry: Registry,
    principal: Principal,
    *,
    name: str,
    expires_in_days: int | None = 90,
    for_user: str | None = None,
) -> TokenCreated:
    """Create an API token for oneself (or, as the operator, for ``for_user``)."""
    if not name.strip():
        raise InputError("Give the token a name that says what uses it, e.g. 'nightly export'.")
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise InputError("A token expires after 1 to 3650 days.")
    with unit_of_work(registry, principal, "token.manage_own") as work:
        session = work.session
        if for_user is not None:
            if not principal.is_operator:
                raise PermissionDenied("Only the operator may create tokens for other users.")
            user = session.scalar(select(User).where(User.email == for_user.strip().lower()))
        else:
            user = session.get(User, principal.user_id) if principal.user_id else None
        if user is None or user.disabled:
            raise NotFound("There is no such active user.")
        secret = secret_token(TOKEN_PREFIX)
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        row = ApiToken(
            user_id=user.id,
            name=name.strip(),
            token_hash=sha256_hex(secret),
            prefix=secret[:10],
            expires_at=expires,
        )
        session.add(row)
        session.flush()
        work.audit("create", "token", details={"user": user.email, "token_id": row.id})
        return TokenCreated(row.id, row.name, secret, expires)


def list_tokens(registry: Registry, principal: Principal) -> list[TokenView]:
    with unit_of_work(registry, principal, "token.manage_own") as work:
        rows = work.session.scalars(
            select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.id)
        )
        return [
            TokenView(
                t.id, t.name, t.prefix, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
            )
            for t in rows
        ]


def revoke_token(registry: Registry, principal: Principal, *, token_id: int) -> None:
    """Revoke a token (one's own; the operator may revoke any)."""
    with unit_of_work(registry, principal, "token.manage_own") as work:
        row = work.session.get(ApiToken, token_id)
        if row is None or (not principal.is_operator and row.user_id != principal.user_id):
            raise NotFound(f"There is no token {token_id} of yours.")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        work.audit("revoke", "token", details={"token_id": token_id})


def resolve_token(registry: Registry, token: str, context: RequestContext) -> Principal:
    """The principal behind a bearer token; AuthenticationRequired if invalid.

    Checking a token only reads (no write lock: on SQLite every request would
    otherwise queue behind every write); the token's last use is written in a
    short transaction of its own, at most once a minute.
    """
    now = utcnow()
    with registry.read_transaction() as session:
        set_scope(session, Scope.everything())
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == sha256_hex(token)))
        if (
            row is None
            or row.revoked_at is not None
            or (row.expires_at is not None and as_utc(row.expires_at) <= now)
        ):
            raise AuthenticationRequired(
                "The API token is not valid (unknown, expired or revoked)."
            )
        user = session.get(User, row.user_id)
        if user is None or user.disabled:
            raise AuthenticationRequired("The API token's user is disabled.")
        # Touch at most once a minute: a busy script should not write on every call.
        touch = row.last_used_at is None or as_utc(row.last_used_at) + timedelta(minutes=1) < now
        token_id = row.id
        principal = principal_for(session, user, context)
    if touch:
        with registry.transaction() as session:
            session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            )
    return principal


def bootstrap_admin_needed(registry: Registry) -> bool:
    return count_admins(registry) == 0


def record_operator_event(
    registry: Registry, principal: Principal, action: str, details: dict[str, object]
) -> None:
    """Audit an operator action that touches no row (e.g. a data directory initialised)."""
    record_events(
        registry,
        [
            AuditEvent(
                action=action,
                category="installation",
                user_email=principal.email,
                role=principal.role_label(),
                details=details,
            )
        ],
    )
