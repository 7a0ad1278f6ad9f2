"""`careloop audit`: verify the hash chain and report for auditors."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console, err_console
from careloop.core.errors import InputError
from careloop.trust.audit import AuditFilter
from careloop.trust.auditing import audit_report, verify_audit_chain

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


def _parse_head(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise InputError(
            f"--expect-head takes SEQ:SHA256 as printed by `careloop audit head`; got {text!r}."
        )
    return int(seq), digest


@audit_app.command("verify")
def verify(
    expect_head: str = typer.Option(None, "--expect-head", help="SEQ:HASH anchored earlier."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Check the whole chain; exit 0 if intact, 1 and name the first bad entry if not."""
    with opened(settings_from(data_dir)) as registry:
        result = verify_audit_chain(registry, operator(), expect_head=_parse_head(expect_head))
    if result.intact:
        console.print(f"Audit trail intact: {result.entries_checked} entries checked.")
        return
    err_console.print(
        f"Audit trail BROKEN at entry {result.first_bad_seq}: {result.problem} "
        f"({result.entries_checked} entries read).",
        markup=False,
    )
    raise typer.Exit(1)


@audit_app.command("head")
def head(data_dir: Path | None = DataDirOption) -> None:
    """Print the chain head (SEQ:HASH) to anchor outside this installation."""
    with opened(settings_from(data_dir)) as registry:
        result = verify_audit_chain(registry, operator())
    typer.echo(f"{result.head_seq or 0}:{result.head_hash or '0' * 64}")


@audit_app.command("report")
def report(
    since: datetime = typer.Option(None, "--since", help="From this time (UTC), e.g. 2026-01-01."),
    until: datetime = typer.Option(None, "--until", help="Before this time (UTC)."),
    user: str = typer.Option(None, "--user", help="User e-mail or id."),
    patient: str = typer.Option(None, "--patient", help="Patient id or pseudonymous id."),
    action: str = typer.Option(None, "--action", help="e.g. read, update, login_failed."),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Audit entries matching the filters, as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise InputError(f"--format must be csv or json, not {fmt!r}.")
    with opened(settings_from(data_dir)) as registry:
        text = audit_report(
            registry,
            operator(),
            AuditFilter(since=since, until=until, user=user, patient=patient, action=action),
            fmt=fmt,  # type: ignore[arg-type]
        )
    sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
