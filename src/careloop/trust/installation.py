"""Setting up an installation: data directory, registry schema, first admin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from careloop.core.errors import Conflict
from careloop.core.settings import Settings
from careloop.store.database import Registry, connect_registry
from careloop.trust.identity import UserView, add_user, bootstrap_admin_needed
from careloop.trust.principal import Principal


@dataclass(frozen=True)
class InitResult:
    """What ``careloop init`` did."""

    data_dir: Path
    """The data directory (created when missing)."""
    registry_url: str
    """Where the registry lives (password masked)."""
    admin: UserView | None
    """The first admin, when one was created."""


def open_registry(settings: Settings, *, migrate: bool = True) -> Registry:
    """Open (and by default migrate) the registry the settings name."""
    if settings.database_url is None:
        settings.ensure_data_dir()
    return connect_registry(settings.registry_url, migrate=migrate)


def initialise(
    settings: Settings,
    operator: Principal,
    *,
    admin_email: str | None,
    admin_password: str | None,
    admin_name: str | None = None,
) -> InitResult:
    """Create the data directory, bring the registry schema up to date, add the first admin.

    Safe to run again: migrations are idempotent and a second admin is not
    created when one exists.
    """
    settings.ensure_data_dir()
    settings.signing_key()
    registry = open_registry(settings)
    try:
        admin = None
        if bootstrap_admin_needed(registry):
            if not admin_email or admin_password is None:
                raise Conflict(
                    "This installation has no admin yet: give --admin-email and a password "
                    "(CARELOOP_ADMIN_PASSWORD or standard input)."
                )
            admin = add_user(
                registry,
                operator,
                email=admin_email,
                display_name=admin_name or admin_email,
                password=admin_password,
                roles=[("admin", None)],
            )
        from sqlalchemy.engine import make_url

        masked = make_url(settings.registry_url).render_as_string(hide_password=True)
        return InitResult(settings.data_dir, masked, admin)
    finally:
        registry.close()
