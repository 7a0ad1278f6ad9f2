"""`careloop serve` and `careloop demo`: run the web app with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from careloop.cli.context import DataDirOption, operator, settings_from
from careloop.cli.output import console
from careloop.core.errors import InputError
from careloop.demo.mailbox import MAILBOX_DIR, demo_mailbox
from careloop.demo.outreach import Outreach
from careloop.demo.pipeline import DEFAULT_SEED, DEMO_MEASURES, prepare_demo_dir, run_demo
from careloop.demo.seed import CREDENTIALS_FILE


def _run(settings_dir: Path | None, host: str, port: int) -> None:
    import uvicorn

    from careloop.web.app import create_app

    settings = settings_from(settings_dir)
    if settings.public_base_url is None and host not in ("0.0.0.0", "::", ""):  # noqa: S104
        # Reached directly at this address: it is the public base URL (CDS Hooks `aud`).
        shown = f"[{host}]" if ":" in host else host
        settings = settings.model_copy(update={"public_base_url": f"http://{shown}:{port}"})
    app = create_app(settings, warm_dashboards=True)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Serve the web app and API (default http://127.0.0.1:8000)."""
    _run(data_dir, host, port)


def _print_families(outreach: Outreach | None, data_dir: Path) -> None:
    """What the demo's patients and carers did, and where their e-mails are."""
    if outreach is not None:
        console.print(
            f"Patients and carers: {outreach.invited} questionnaire e-mails and "
            f"{outreach.reminded} reminders were sent; {outreach.research_withdrawn_by} filled "
            f"one in from the reminder, then said no to research and yes to making care "
            f"better (the warehouse keeps them; research exports leave them out).",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"E-mails to patients and carers (invitations, questionnaire reminders) went to the "
        f"demo's own SMTP server: {(data_dir / MAILBOX_DIR).resolve()}",
        highlight=False,
        soft_wrap=True,
    )


def demo(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    data_dir: Path = typer.Option(Path("careloop-demo"), "--data-dir", help="Demo data directory."),
    scale: str = typer.Option(
        "small", "--scale", help="small, or icn (~100 sites, 30,000 patients)."
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the synthetic network."),
    out: Path | None = typer.Option(
        None, "--out", help="Where the report goes (default DATA_DIR/report)."
    ),
    no_serve: bool = typer.Option(False, "--no-serve", help="Run the cycle and stop."),
) -> None:
    """Run the learning cycle on a synthetic IBD network, write the report, serve the app."""
    if scale not in ("small", "icn"):
        raise InputError(f"--scale must be small or icn, not {scale!r}.")
    prepare_demo_dir(data_dir)
    settings = settings_from(data_dir)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("Starting", total=None)
        result = run_demo(
            settings,
            operator(),
            scale=scale,  # type: ignore[arg-type]
            seed=seed,
            out_dir=out,
            on_stage=lambda name: progress.update(task, description=name),
        )
    console.print(
        f"[bold]careloop demo[/bold]: the cycle ran in {sum(result.timings.values()):.0f} s."
    )
    for r in result.recoveries:
        mark = "recovered" if r.recovered else "NOT recovered"
        console.print(f"  {r.describe()} — {mark}", highlight=False)
    if result.traced_card is not None:
        card = result.traced_card
        console.print(
            f"A card traced back to its sources ({len(card.chain)} steps): "
            f"careloop provenance show card:{card.card['uuid']} --chain --format table"
            + (f" --data-dir {data_dir}" if data_dir else ""),
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"Learning report: {result.report.resolve()}")
    console.print(f"Planted effects and estimates: {result.summary.resolve()}")
    console.print(f"Open http://{host}:{port}/ and log in as one of (passwords are random):")
    width = max(len(login.email) for login in result.logins)
    for login in result.logins:
        where = f"at {login.site}" if login.site else "installation-wide"
        # Plain echo: a wrapped password is hard to copy.
        typer.echo(f"  {login.role:<11} {where:<18} {login.email:<{width}}  {login.password}")
    console.print(f"(also in {data_dir / CREDENTIALS_FILE})")
    console.print(
        f"Patients and carers land on their portal (/my); anyone can read how the "
        f"information is used at http://{host}:{port}/public (no login).",
        highlight=False,
        soft_wrap=True,
    )
    _print_families(result.outreach, data_dir)
    if not no_serve:
        # The demo's own two visit-level measures sit beside the built-in ones.
        os.environ.setdefault("CARELOOP_MEASURES_DIR", str(DEMO_MEASURES))
        # Invitations sent from the running app go to the demo's SMTP server too.
        with demo_mailbox(data_dir) as mailbox:
            os.environ["CARELOOP_SMTP_HOST"] = mailbox.host
            os.environ["CARELOOP_SMTP_PORT"] = str(mailbox.port)
            os.environ["CARELOOP_SMTP_SECURITY"] = "none"
            _run(data_dir, host, port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
