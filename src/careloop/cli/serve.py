"""`careloop serve` and `careloop demo`: run the web app with uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, operator, settings_from
from careloop.cli.output import console
from careloop.demo.seed import CREDENTIALS_FILE, seed_demo


def _run(settings_dir: Path | None, host: str, port: int) -> None:
    import uvicorn

    from careloop.web.app import create_app

    app = create_app(settings_from(settings_dir))
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Serve the web app and API (default http://127.0.0.1:8000)."""
    _run(data_dir, host, port)


def demo(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    data_dir: Path = typer.Option(Path("careloop-demo"), "--data-dir", help="Demo data directory."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Set up the demo and stop."),
) -> None:
    """Set up a demo installation (sites, users, patients) and serve it."""
    settings = settings_from(data_dir)
    logins = seed_demo(settings, operator())
    console.print(f"[bold]careloop demo[/bold] in {data_dir.resolve()}")
    console.print(f"Open http://{host}:{port}/ and log in as one of (passwords are random):")
    width = max(len(login.email) for login in logins)
    for login in logins:
        where = f"at {login.site}" if login.site else "installation-wide"
        # Plain echo: a wrapped password is hard to copy.
        typer.echo(f"  {login.role:<11} {where:<18} {login.email:<{width}}  {login.password}")
    console.print(f"(also in {data_dir / CREDENTIALS_FILE})")
    if not no_serve:
        _run(data_dir, host, port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
