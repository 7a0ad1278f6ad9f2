"""The plain, frozen views the identity functions give back (never ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.store.models import Site, User
from careloop.trust.principal import Principal


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
