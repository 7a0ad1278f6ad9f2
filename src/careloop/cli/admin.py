"""`careloop init`, `site`, `user`, `token` and `policy`: running an installation."""

from __future__ import annotations

from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, read_password, settings_from
from careloop.cli.output import console, print_rows
from careloop.core.errors import InputError
from careloop.trust import identity
from careloop.trust.installation import initialise
from careloop.trust.places import EXAMPLE_ZONES
from careloop.trust.policy import ROLE_DESCRIPTIONS, policy_markdown

site_app = typer.Typer(help="Care centres (sites).", no_args_is_help=True)
user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for scripts.", no_args_is_help=True)
policy_app = typer.Typer(help="The access policy.", no_args_is_help=True)


def init(
    admin_email: str = typer.Option(None, "--admin-email", help="E-mail of the first admin."),
    admin_name: str = typer.Option(None, "--admin-name", help="Display name of the first admin."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the admin password from standard input."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create the data directory and registry, and the first admin."""
    settings = settings_from(data_dir)
    password = None
    if admin_email:
        password = read_password(
            env="CARELOOP_ADMIN_PASSWORD", stdin=password_stdin, prompt="Admin password"
        )
    result = initialise(
        settings,
        operator(),
        admin_email=admin_email,
        admin_password=password,
        admin_name=admin_name,
    )
    console.print(f"Data directory: {result.data_dir}")
    console.print(f"Registry: {result.registry_url}")
    if result.admin:
        console.print(f"First admin: {result.admin.email}")
    else:
        console.print("An admin already exists; nothing else to do.")


@site_app.command("add")
def site_add(
    code: str = typer.Argument(..., help="Short stable code, e.g. RCH."),
    name: str = typer.Option(..., "--name"),
    country: str | None = typer.Option(
        None, "--country", help="Required: ISO 3166-1 two-letter code, e.g. GB, US, AU."
    ),
    time_zone: str | None = typer.Option(
        None,
        "--time-zone",
        help="Required: IANA time zone, e.g. Europe/London, America/New_York.",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Add a care centre."""
    # Checked here rather than by typer, whose "Missing option" does not say what to give.
    missing = [
        text
        for value, text in (
            (country, "--country: the ISO 3166-1 two-letter country code, e.g. GB, US, AU, DE"),
            (
                time_zone,
                "--time-zone: an IANA time zone name (Area/Location), e.g. "
                + ", ".join(EXAMPLE_ZONES),
            ),
        )
        if value is None
    ]
    if missing or country is None or time_zone is None:
        raise InputError(
            f"careloop site add {code} needs " + "; and ".join(missing) + ". For example: "
            f"careloop site add {code} --name NAME --country GB --time-zone Europe/London"
        )
    with opened(settings_from(data_dir)) as registry:
        site = identity.add_site(
            registry, operator(), code=code, name=name, country=country, time_zone=time_zone
        )
    console.print(f"Added site {site.code}: {site.name}")


@site_app.command("list")
def site_list(data_dir: Path | None = DataDirOption) -> None:
    """List the sites."""
    with opened(settings_from(data_dir)) as registry:
        sites = identity.list_sites(registry, operator())
    print_rows(
        ["code", "name", "country", "time zone"],
        [(s.code, s.name, s.country, s.time_zone) for s in sites],
    )


def _parse_role(text: str) -> tuple[str, str | None]:
    role, _, site = text.partition("@")
    return role.strip(), (site.strip() or None)


@user_app.command("add")
def user_add(
    email: str = typer.Argument(...),
    role: list[str] = typer.Option(
        ..., "--role", help="ROLE@SITE (e.g. clinician@RCH), or ROLE for installation-wide."
    ),
    name: str = typer.Option("", "--name", help="Display name."),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
    no_password: bool = typer.Option(
        False, "--no-password", help="Create without a password (cannot log in yet)."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Add a user with one or more roles."""
    password = None
    if not no_password:
        password = read_password(
            env="CARELOOP_USER_PASSWORD", stdin=password_stdin, prompt="Password"
        )
    with opened(settings_from(data_dir)) as registry:
        user = identity.add_user(
            registry,
            operator(),
            email=email,
            display_name=name,
            password=password,
            roles=[_parse_role(r) for r in role],
        )
    console.print(f"Added user {user.email}")


@user_app.command("list")
def user_list(data_dir: Path | None = DataDirOption) -> None:
    """List users and their roles."""
    with opened(settings_from(data_dir)) as registry:
        users = identity.list_users(registry, operator())
    print_rows(
        ["email", "name", "roles", "disabled"],
        [
            (
                u.email,
                u.display_name,
                ", ".join(f"{r.role}@{r.site}" if r.site else r.role for r in u.roles),
                "yes" if u.disabled else "",
            )
            for u in users
        ],
    )


@user_app.command("disable")
def user_disable(email: str, data_dir: Path | None = DataDirOption) -> None:
    """Disable a user: ends their sessions and revokes their tokens."""
    with opened(settings_from(data_dir)) as registry:
        identity.set_user_disabled(registry, operator(), email=email, disabled=True)
    console.print(f"Disabled {email}")


@user_app.command("grant")
def user_grant(
    email: str,
    role: str = typer.Argument(..., help="ROLE@SITE or ROLE"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Give a user another role."""
    name, site = _parse_role(role)
    with opened(settings_from(data_dir)) as registry:
        identity.grant_role(registry, operator(), email=email, role=name, site=site)
    console.print(f"Granted {role} to {email}")


@token_app.command("create")
def token_create(
    user: str = typer.Option(..., "--user", help="E-mail of the user the token acts as."),
    name: str = typer.Option(..., "--name", help="What uses the token."),
    days: int = typer.Option(90, "--days", help="Days until it expires."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create an API token; it is printed once."""
    with opened(settings_from(data_dir)) as registry:
        token = identity.create_token(
            registry, operator(), name=name, expires_in_days=days, for_user=user
        )
    console.print(f"Token {token.id} for {user} (expires {token.expires_at:%Y-%m-%d}):")
    typer.echo(token.token)


@token_app.command("revoke")
def token_revoke(token_id: int, data_dir: Path | None = DataDirOption) -> None:
    """Revoke an API token by its id."""
    with opened(settings_from(data_dir)) as registry:
        identity.revoke_token(registry, operator(), token_id=token_id)
    console.print(f"Revoked token {token_id}")


@policy_app.command("show")
def policy_show() -> None:
    """Print the role × action table."""
    for role, text in ROLE_DESCRIPTIONS.items():
        console.print(f"[bold]{role}[/bold]: {text}")
    typer.echo("")
    typer.echo(policy_markdown())


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(site_app, name="site")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.add_typer(policy_app, name="policy")
