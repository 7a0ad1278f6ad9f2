"""Logging in (with lockout), sessions, re-authentication and logging out."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    AccountLocked,
    AuthenticationRequired,
    InvalidCredentials,
    ReauthenticationRequired,
    SessionExpired,
)
from careloop.core.i18n import N_
from careloop.core.ids import sha256_hex
from careloop.core.settings import Settings
from careloop.store.database import Registry
from careloop.store.models import User, WebSession
from careloop.store.scoping import Scope, set_scope
from careloop.trust import audit, lockout
from careloop.trust.identity.principals import _identity_event, principal_for
from careloop.trust.identity.views import LoginResult
from careloop.trust.passwords import verify_password
from careloop.trust.principal import Principal, RequestContext

LOCKED_MESSAGE = N_(
    "Too many tries that did not work, so this account is locked for a while. "
    "Try again later, or ask your care team."
)


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
            failure = InvalidCredentials(N_("The e-mail or password is not right."))
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
            principal = principal_for(
                session, user, context, handover_age=settings.handover_age, now=now
            )
    if failure is not None:
        raise failure
    return LoginResult(principal=principal, session_token=token, csrf_token=csrf)


@dataclass(frozen=True)
class ActiveSession:
    """A valid browser session."""

    principal: Principal
    csrf_token: str
    authenticated_at: datetime


def _live_session(session: Session, token: str) -> tuple[WebSession, User]:
    """The session row behind a cookie, and its user.

    Raises AuthenticationRequired when the token is unknown, the session has
    ended or the user is disabled.
    """
    set_scope(session, Scope.everything())
    web = session.scalar(select(WebSession).where(WebSession.token_hash == sha256_hex(token)))
    if web is None or web.ended_at is not None:
        raise AuthenticationRequired("Please log in.")
    user = session.get(User, web.user_id)
    if user is None or user.disabled:
        raise AuthenticationRequired("Please log in.")
    return web, user


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
        web, user = _live_session(session, token)
        web_id, user_id = web.id, user.id
        last_seen = as_utc(web.last_seen_at)
        expired = last_seen + timedelta(minutes=settings.session_idle_minutes) <= now
        result = ActiveSession(
            principal_for(session, user, context, handover_age=settings.handover_age),
            web.csrf_token,
            as_utc(web.authenticated_at),
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
        web, user = _live_session(session, token)
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
