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
    expect_head: str = typer.Option(
        None,
        "--expect-head",
        help="SEQ:HASH printed earlier by `careloop audit head` and kept outside the installation.",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Check the whole trail; exit 0 if intact, 1 and say what is wrong if not."""
    with opened(settings_from(data_dir)) as registry:
        result = verify_audit_chain(registry, operator(), expect_head=_parse_head(expect_head))
    if result.intact:
        anchored = " and reaches the anchored head" if expect_head else ""
        console.print(
            f"Audit trail intact: {result.entries_checked} entries checked{anchored}.",
            markup=False,
        )
        return
    where = f" at entry {result.first_bad_seq}" if result.first_bad_seq is not None else ""
    err_console.print(
        f"Audit trail BROKEN{where}: {result.problem} ({result.entries_checked} entries read).",
        markup=False,
    )
    for problem in result.problems[1:]:
        err_console.print(f"  also: {problem}", markup=False)
    raise typer.Exit(1)


@audit_app.command("head")
def head(data_dir: Path | None = DataDirOption) -> None:
    """Print the chain head as SEQ:HASH, to keep where this installation's writers cannot reach.

    Refuses (exit 1) when the trail does not verify: anchoring a broken
    trail would vouch for it.
    """
    with opened(settings_from(data_dir)) as registry:
        result = verify_audit_chain(registry, operator())
    if not result.intact or result.head_seq is None or result.head_hash is None:
        err_console.print(
            f"Not printing a head: the audit trail does not verify ({result.problem}). "
            "Run `careloop audit verify` for details.",
            markup=False,
        )
        raise typer.Exit(1)
    typer.echo(f"{result.head_seq}:{result.head_hash}")


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
