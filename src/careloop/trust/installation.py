"""Setting up an installation: data directory, registry schema, first admin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from careloop.core.errors import ConfigurationError, Conflict
from careloop.core.private_files import create_private, private_dir, restrict
from careloop.core.settings import Settings
from careloop.store.database import Registry, connect_registry
from careloop.store.migrate import current_revision, upgrade
from careloop.trust.audit import SEAL_KEY_INFO, seal_key
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


def open_registry(settings: Settings, *, create: bool = True) -> Registry:
    """Open the registry the settings name and bring its schema up to date.

    With ``create=False`` an installation that was never initialised is an
    error that says to run ``careloop init``, instead of an empty new one.
    """
    if not create:
        missing_file = (
            settings.database_url is None and not (settings.data_dir / "registry.sqlite3").exists()
        )
        if missing_file:
            raise ConfigurationError(
                f"There is no careloop installation in {settings.data_dir.resolve()}. "
                "Run `careloop init --admin-email …` first, or point CARELOOP_DATA_DIR "
                "(or --data-dir) at an existing one."
            )
        registry = connect_registry(settings.registry_url)
        if current_revision(registry.engine) is None:
            registry.close()
            raise ConfigurationError(
                "The registry database has no careloop schema. Run `careloop init` first."
            )
        upgrade(registry.engine)
        return _with_seal_key(registry, settings)
    if settings.database_url is None:
        settings.ensure_data_dir()
        # Created 600 before SQLite opens it: its -wal and -shm files take the same mode.
        registry_file = settings.data_dir / "registry.sqlite3"
        create_private(registry_file)
        for suffix in ("-wal", "-shm"):
            restrict(registry_file.with_name(registry_file.name + suffix))
    return _with_seal_key(connect_registry(settings.registry_url, migrate=True), settings)


def _with_seal_key(registry: Registry, settings: Settings) -> Registry:
    """Give the registry's sessions the key that seals the audit chain's head.

    The key comes from the installation's secret key (a file in the data
    directory or CARELOOP_SECRET_KEY), never from the database.
    """
    registry.sessions.configure(info={SEAL_KEY_INFO: seal_key(settings.signing_key())})
    return registry


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
    # 700 even when the directory existed before (its mode is not left as it was).
    private_dir(settings.ensure_data_dir())
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
