"""`careloop alerts send-due`: alert a measure's owners to new signals and feedback reports.

A thin command over :func:`careloop.practice.feedback.alerts.run_alerts`: run it
after ``careloop warehouse refresh`` and ``careloop measures run`` (or from an
hourly timer; running it again sends nothing twice, and e-mails held back by
quiet hours go at the first run after them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console
from careloop.core.errors import ErrorDetail, ValidationFailed
from careloop.core.mail import Mailer
from careloop.measures.catalog import load_catalog
from careloop.practice.feedback.alerts import QUIET_HOURS, run_alerts
from careloop.warehouse.connection import warehouse_opener

alerts_app = typer.Typer(help="Alerts to a measure's owners: in the app and by e-mail.")


def _moment(value: str | None) -> datetime:
    """``--now`` as a time with its zone (default: now)."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationFailed(
            "No alerts were sent.",
            details=[ErrorDetail("--now", "a time with its zone, e.g. 2026-12-08T09:00Z", value)],
        )
    return moment


def _hours(value: str) -> tuple[int, int]:
    """``--quiet-hours 20-8`` as (20, 8)."""
    start, _, end = value.partition("-")
    if not (start.strip().isdigit() and end.strip().isdigit()) or max(int(start), int(end)) > 23:
        raise ValidationFailed(
            "No alerts were sent.",
            details=[ErrorDetail("--quiet-hours", "FROM-UNTIL hours 0-23, e.g. 20-8", value)],
        )
    return int(start), int(end)


@alerts_app.command("send-due")
def send_due(
    now: str | None = typer.Option(None, "--now", help="Act as at this time (ISO, with zone)."),
    quiet_hours: str = typer.Option(
        f"{QUIET_HOURS[0]}-{QUIET_HOURS[1]}",
        "--quiet-hours",
        help="No e-mail from FROM until UNTIL o'clock, local time (they wait until after).",
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="careloop's address for the links (CARELOOP_PUBLIC_BASE_URL)."
    ),
    measures_dir: Path | None = typer.Option(
        None, "--measures-dir", help="Folder of measure YAML files (CARELOOP_MEASURES_DIR)."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Find new signals and feedback reports, keep them for their owners, e-mail what is due."""
    moment, hours = _moment(now), _hours(quiet_hours)
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        run = run_alerts(
            registry,
            warehouse_opener(settings),
            Mailer.from_settings(settings),
            operator(),
            load_catalog(measures_dir=measures_dir or settings.measures_dir),
            now=moment,
            base_url=base_url or settings.public_base_url or "",
            quiet_hours=hours,
        )
    console.print(
        f"Alerts: {run.found} in the latest results, {run.created} new for their owners, "
        f"{run.emailed} e-mails sent, {run.waiting} people's alerts waiting for the quiet "
        "hours to end.",
        markup=False,
    )
    for failure in run.failed:
        console.print(f"  not sent: {failure}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
