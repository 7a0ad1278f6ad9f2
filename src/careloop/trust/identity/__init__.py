"""Sites, users, roles, logins, sessions and API tokens.

These functions are what the web layer and the CLI call; each runs in one
audited unit of work and returns plain, frozen views (never ORM rows).
"""

from __future__ import annotations

from careloop.trust.identity.principals import (
    principal_for,
    record_operator_event,
)
from careloop.trust.identity.sessions import (
    LOCKED_MESSAGE,
    ActiveSession,
    login,
    logout,
    reauthenticate,
    require_recent_authentication,
    resolve_session,
)
from careloop.trust.identity.sites import (
    add_site,
    list_sites,
    site_by_code,
    site_time_zone,
)
from careloop.trust.identity.tokens import (
    TOKEN_PREFIX,
    create_token,
    list_tokens,
    resolve_token,
    revoke_token,
)
from careloop.trust.identity.users import (
    add_user,
    bootstrap_admin_needed,
    count_admins,
    grant_role,
    list_users,
    revoke_role,
    set_user_disabled,
)
from careloop.trust.identity.views import (
    LoginResult,
    RoleView,
    SiteView,
    TokenCreated,
    TokenView,
    UserView,
)

__all__ = [
    "LOCKED_MESSAGE",
    "TOKEN_PREFIX",
    "ActiveSession",
    "LoginResult",
    "RoleView",
    "SiteView",
    "TokenCreated",
    "TokenView",
    "UserView",
    "add_site",
    "add_user",
    "bootstrap_admin_needed",
    "count_admins",
    "create_token",
    "grant_role",
    "list_sites",
    "list_tokens",
    "list_users",
    "login",
    "logout",
    "principal_for",
    "reauthenticate",
    "record_operator_event",
    "require_recent_authentication",
    "resolve_session",
    "resolve_token",
    "revoke_role",
    "revoke_token",
    "set_user_disabled",
    "site_by_code",
    "site_time_zone",
]
