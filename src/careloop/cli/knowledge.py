"""`careloop knowledge …` and `careloop cds …`: the knowledge library and the CDS Hooks service."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pandas as pd
import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console, print_json, print_rows
from careloop.core.errors import InputError, ValidationFailed
from careloop.knowledge import (
    KnowledgeVersion,
    activate,
    add_version,
    approve,
    deployments,
    diff,
    export_version,
    list_versions,
    load_package,
    new_package_skeleton,
    package_from_dict,
    retire,
    send_back,
    show,
    submit,
    write_package,
)
from careloop.measures import load_results
from careloop.practice import card_events, distrust_client, list_clients, trust_client
from careloop.practice.feedback.audit_feedback import AuditFeedbackReport, audit_feedback_report
from careloop.practice.feedback.impact import ImpactReport, impact_report
from careloop.warehouse.connection import Warehouse

knowledge_app = typer.Typer(help="Knowledge objects: library, lifecycle, deployments.")
cds_app = typer.Typer(help="The CDS Hooks service: trusted clients (EHRs), feedback reports.")

ReasonOption = typer.Option(..., "--reason", help="Why (kept in the audit trail).")


def _fmt(value: str) -> str:
    if value not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {value!r}.")
    return value


@knowledge_app.command("new")
def new(
    identifier: str = typer.Argument(..., help="Identifier, e.g. ibd-steroid-review."),
    target: Path = typer.Option(None, "--dir", help="Folder to create (default: ./IDENTIFIER)."),
    hook: str = typer.Option("patient-view", "--hook", help="The CDS hook it answers."),
) -> None:
    """Start a knowledge object package from a skeleton that validates and passes its test."""
    folder = target or Path(identifier)
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder} exists and is not empty.")
    package = package_from_dict(new_package_skeleton(identifier, hook=hook))
    write_package(package, folder)
    console.print(f"Created {folder}: edit metadata.json, rules.json and tests.json.")


@knowledge_app.command("validate")
def validate(package: Path = typer.Argument(..., help="Package folder or zip.")) -> None:
    """Check a package: every problem is named with its file and JSON path."""
    loaded = load_package(package)
    console.print(f"{loaded.identifier}@{loaded.version} is a valid knowledge object package.")


@knowledge_app.command("test")
def test(package: Path = typer.Argument(..., help="Package folder or zip.")) -> None:
    """Run a package's tests (context and prefetch in, expected cards out)."""
    report = load_package(package).run_tests()
    console.print(report.summary(), markup=False)
    if not report.passed:
        raise ValidationFailed("The package's tests do not all pass.")


@knowledge_app.command("import")
def import_(
    package: Path = typer.Argument(..., help="Package folder or zip."),
    reason: str = ReasonOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Add a package to the library as a draft version."""
    loaded = load_package(package)
    with opened(settings_from(data_dir)) as registry:
        version = add_version(registry, operator(), loaded, reason=reason)
    tests = "pass" if version.tests_passed else "FAIL"
    console.print(f"Added {version.ref} as draft (tests {tests}).")


def _step(name: str, ref: str, status: str) -> None:
    console.print(f"{ref}: {name} → {status}")


def _transition(
    action: Callable[..., KnowledgeVersion], done: str, doc: str
) -> Callable[..., None]:
    """A lifecycle command: one library call with a reason, then the new status."""

    def command(
        ref: str = typer.Argument(..., help="identifier[@version]"),
        reason: str = ReasonOption,
        data_dir: Path | None = DataDirOption,
    ) -> None:
        with opened(settings_from(data_dir)) as registry:
            version = action(registry, operator(), ref, reason=reason)
        _step(done, version.ref, version.status)

    command.__doc__ = doc
    return command


for _name, _action, _done, _doc in (
    ("submit", submit, "submitted", "Send a draft for review."),
    ("send-back", send_back, "sent back", "Return a version under review to draft."),
    ("approve", approve, "approved", "Approve a version under review (its tests must pass)."),
    ("retire", retire, "retired", "Withdraw a version from service."),
):
    knowledge_app.command(_name)(_transition(_action, _done, _doc))


@knowledge_app.command("activate")
def activate_(
    ref: str = typer.Argument(..., help="identifier[@version]"),
    reason: str = ReasonOption,
    silent: bool = typer.Option(False, "--silent", help="Evaluate and log, show no cards."),
    sites: list[str] = typer.Option([], "--site", help="Limit to these sites (repeat)."),
    cycle: int | None = typer.Option(
        None,
        "--cycle",
        help="The learning cycle it runs under (required when it randomises card variants).",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Put an approved version into practice and record the deployment.

    A version that randomises card variants names its learning cycle, whose
    QI determination or ethics approval covers the test.
    """
    with opened(settings_from(data_dir)) as registry:
        dep = activate(
            registry,
            operator(),
            ref,
            reason=reason,
            mode="silent" if silent else "live",
            sites=sites,
            cycle_id=cycle,
        )
    where = ", ".join(dep.sites) or "every site"
    console.print(
        f"{dep.identifier}@{dep.version} active ({dep.mode}) at {where} "
        f"from {dep.started_at:%Y-%m-%d %H:%M} UTC; deployment {dep.id}."
    )
    if dep.consent_purpose:
        console.print(
            f"Randomised test under cycle {dep.cycle_id}: its data are used for "
            f"{dep.consent_purpose.replace('_', ' ')}."
        )


@knowledge_app.command("list")
def list_(
    status: str | None = typer.Option(None, "--status", help="Only this lifecycle status."),
    search: str | None = typer.Option(None, "--search", help="Words to look for."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """The library: versions with their status."""
    with opened(settings_from(data_dir)) as registry:
        versions = list_versions(registry, operator(), status=status, search=search)
    if _fmt(fmt) == "json":
        print_json([asdict(v) for v in versions])
        return
    print_rows(
        ["knowledge object", "version", "status", "mode", "hook", "title"],
        [(v.identifier, v.version, v.status, v.mode, v.hook, v.title) for v in versions],
    )


@knowledge_app.command("show")
def show_(
    ref: str = typer.Argument(..., help="identifier[@version]"),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """One version: metadata, lifecycle history and deployments."""
    with opened(settings_from(data_dir)) as registry:
        detail = show(registry, operator(), ref)
    if _fmt(fmt) == "json":
        print_json(
            {
                "version": asdict(detail.version),
                "package": detail.package.to_dict(),
                "transitions": [asdict(t) for t in detail.transitions],
                "deployments": [asdict(d) for d in detail.deployments],
                "owner": detail.owner,
                "community_approval": (
                    asdict(detail.community_approval) if detail.community_approval else None
                ),
            }
        )
        return
    v = detail.version
    console.print(f"{v.ref} — {v.title}\n{v.status} {v.mode or ''}; service {v.service_id}")
    if detail.owner:
        console.print(f"Owned by the learning community {detail.owner!r}.", markup=False)
    if detail.community_approval:
        a = detail.community_approval
        console.print(
            f"Approved by {a.community!r} (proposal {a.proposal_id}, {a.rule}) "
            f"on {a.decided_at:%Y-%m-%d}: {a.outcome.get('reason', '')}",
            markup=False,
        )
    print_rows(
        ["at", "from", "to", "by", "reason"],
        [
            (f"{t.at:%Y-%m-%d %H:%M}", t.from_status, t.to_status, t.by, t.reason)
            for t in detail.transitions
        ],
        title="Lifecycle",
    )


@knowledge_app.command("diff")
def diff_(
    a: str = typer.Argument(..., help="identifier@version (older)"),
    b: str = typer.Argument(..., help="identifier@version (newer)"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """What changed between two versions (a unified diff of the package files)."""
    with opened(settings_from(data_dir)) as registry:
        result = diff(registry, operator(), a, b)
    console.print(result.text or "No differences.", markup=False, highlight=False)


@knowledge_app.command("export")
def export(
    ref: str = typer.Argument(..., help="identifier[@version]"),
    target: Path = typer.Argument(..., help="Folder, or a .zip file name."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Write a stored version's package to a folder or a zip file."""
    with opened(settings_from(data_dir)) as registry:
        path = export_version(registry, operator(), ref, target, zip_file=target.suffix == ".zip")
    console.print(f"Wrote {path}.")


@knowledge_app.command("deployments")
def deployments_(
    measure: str | None = typer.Option(None, "--measure", help="Only those meant to move it."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Deployments (what, where, when) — the dates charts are annotated with."""
    with opened(settings_from(data_dir)) as registry:
        found = deployments(registry, measure_id=measure)
    print_rows(
        ["id", "knowledge object", "version", "mode", "sites", "started", "ended"],
        [
            (
                d.id,
                d.identifier,
                d.version,
                d.mode,
                ",".join(d.sites) or "all",
                f"{d.started_at:%Y-%m-%d}",
                f"{d.ended_at:%Y-%m-%d}" if d.ended_at else "",
            )
            for d in found
        ],
    )


@knowledge_app.command("impact")
def impact(
    ref: str = typer.Argument(..., help="identifier[@version]"),
    measure: str = typer.Option(..., "--measure", help="The target measure's id."),
    results: Path | None = typer.Option(
        None,
        "--results",
        help="Measure results as CSV (measure_id, site, period_start, …); "
        "default: the latest run stored in the warehouse.",
    ),
    site: str = typer.Option("", "--site", help="A site's series (default: the network)."),
    fmt: str = typer.Option("json", "--format", help="json or html."),
    out: Path | None = typer.Option(None, "--out", help="Write the report to this file."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Impact of a version's latest deployment: SPC and ITS of the measure, card feedback."""
    if fmt not in ("json", "html"):
        raise InputError(f"--format must be json or html, not {fmt!r}.")
    settings = settings_from(data_dir)
    if results is None:
        with Warehouse.from_settings(settings, read_only=True) as warehouse:
            frame = load_results(warehouse).fillna({"site": "", "stratum": ""})
    else:
        try:
            frame = pd.read_csv(results, dtype={"site": str, "stratum": str}, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot read the measure results {results}: {exc}") from exc
    with opened(settings) as registry:
        detail = show(registry, operator(), ref)
        if not detail.deployments:
            raise InputError(f"{detail.version.ref} has never been deployed.")
        events = card_events(registry)
    arms = next(iter(detail.package.trials().values()), None)
    report = impact_report(
        detail.deployments[-1],
        frame,
        measure_id=measure,
        site=site,
        card_events=events,
        variant_arms=arms.arms[:2] if arms else None,
    )
    _write_report(report, fmt, out)


def _write_report(report: ImpactReport | AuditFeedbackReport, fmt: str, out: Path | None) -> None:
    """The report as HTML or JSON, written to ``out`` or else to standard output."""
    text = report.to_html() if fmt == "html" else json.dumps(report.to_dict(), indent=2)
    if out is not None:
        out.write_text(text)
        console.print(f"Wrote {out}.")
    else:
        sys.stdout.write(text + "\n")


@cds_app.command("feedback-report")
def feedback_report(
    site: str = typer.Option(..., "--site", help="The site's code."),
    measure: str = typer.Option(..., "--measure", help="The measure's id."),
    results: Path = typer.Option(..., "--results", help="Measure results as CSV."),
    period: str | None = typer.Option(None, "--period", help="Period start (default: latest)."),
    fmt: str = typer.Option("json", "--format", help="json or html."),
    out: Path | None = typer.Option(None, "--out", help="Write the report to this file."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Audit and feedback for a site: funnel plot against the network, card feedback."""
    if fmt not in ("json", "html"):
        raise InputError(f"--format must be json or html, not {fmt!r}.")
    try:
        frame = pd.read_csv(results, dtype={"site": str, "stratum": str}, keep_default_na=False)
        when = date.fromisoformat(period) if period else None
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot read the measure results or the period: {exc}") from exc
    with opened(settings_from(data_dir)) as registry:
        events = card_events(registry)
    report = audit_feedback_report(
        frame, measure_id=measure, site=site, period=when, card_events=events
    )
    _write_report(report, fmt, out)


@cds_app.command("trust-client")
def trust_client_(
    iss: str = typer.Option(..., "--iss", help="The issuer (iss) of the client's JWTs."),
    jwks_url: str | None = typer.Option(None, "--jwks-url", help="Its JWK Set URL (https)."),
    jwks_file: Path | None = typer.Option(None, "--jwks-file", help="Its JWK Set as a file."),
    site: str | None = typer.Option(None, "--site", help="The careloop site it serves."),
    origins: list[str] = typer.Option([], "--origin", help="Browser origin for CORS (repeat)."),
    jku: list[str] = typer.Option(
        [],
        "--jku",
        help="A jku URL its JWTs carry (repeat); compared, never fetched: the keys stay "
        "those of --jwks-file or --jwks-url.",
    ),
    fhir_servers: list[str] = typer.Option(
        [],
        "--fhir-server",
        help="A FHIR base URL its calls may name as fhirServer for careloop to fetch "
        "prefetch data from, with the call's token (repeat); careloop contacts no other.",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Trust a CDS client (an EHR): its signed JWTs will be accepted."""
    with opened(settings_from(data_dir)) as registry:
        client = trust_client(
            registry,
            operator(),
            issuer=iss,
            jwks_url=jwks_url,
            jwks_file=jwks_file,
            site=site,
            origins=origins,
            jku=jku,
            fhir_servers=fhir_servers,
        )
    keys = ", ".join(client.key_ids) or client.jwks_url
    extra = f"; jku accepted: {', '.join(client.jku_urls)}" if client.jku_urls else ""
    extra += f"; FHIR servers: {', '.join(client.fhir_servers) or 'none'}"
    console.print(f"Trusting {client.issuer} (keys: {keys}{extra}).", markup=False)


@cds_app.command("distrust-client")
def distrust_client_(
    iss: str = typer.Option(..., "--iss", help="The issuer to stop trusting."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Stop trusting a CDS client."""
    with opened(settings_from(data_dir)) as registry:
        distrust_client(registry, operator(), issuer=iss)
    console.print(f"No longer trusting {iss}.", markup=False)


@cds_app.command("clients")
def clients(data_dir: Path | None = DataDirOption) -> None:
    """The trusted CDS clients."""
    with opened(settings_from(data_dir)) as registry:
        found = list_clients(registry, operator())
    print_rows(
        ["issuer", "keys", "jku", "site", "origins", "FHIR servers"],
        [
            (
                c.issuer,
                ", ".join(c.key_ids) or c.jwks_url,
                " ".join(sorted(c.accepted_jku)),
                c.site_code,
                " ".join(c.origins),
                " ".join(c.fhir_servers),
            )
            for c in found
        ],
    )


def register(app: typer.Typer) -> None:
    """Add `careloop knowledge …` and `careloop cds …`."""
    app.add_typer(knowledge_app, name="knowledge", no_args_is_help=True)
    app.add_typer(cds_app, name="cds", no_args_is_help=True)
