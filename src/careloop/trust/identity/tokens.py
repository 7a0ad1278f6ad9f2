"""API tokens: created once with their secret shown, listed, revoked, resolved."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import (
    AuthenticationRequired,
    InputError,
    NotFound,
    PermissionDenied,
)
from careloop.core.ids import secret_token, sha256_hex
from careloop.store.database import Registry
from careloop.store.models import ApiToken, User
from careloop.store.scoping import Scope, set_scope
from careloop.trust.handover import DEFAULT_HANDOVER_AGE
from careloop.trust.identity.principals import principal_for
from careloop.trust.identity.views import TokenCreated, TokenView
from careloop.trust.principal import Principal, RequestContext
from careloop.trust.work import unit_of_work

TOKEN_PREFIX = "cl"  # noqa: S105 - the visible prefix of API tokens, not a secret


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


def resolve_token(
    registry: Registry,
    token: str,
    context: RequestContext,
    *,
    handover_age: int = DEFAULT_HANDOVER_AGE,
) -> Principal:
    """The principal behind a bearer token; AuthenticationRequired if invalid.

    ``handover_age`` is ``CARELOOP_HANDOVER_AGE`` (careloop.trust.handover).

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
        principal = principal_for(session, user, context, handover_age=handover_age, now=now)
    if touch:
        with registry.transaction() as session:
            session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            )
    return principal
