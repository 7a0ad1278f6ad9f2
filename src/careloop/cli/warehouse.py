"""`careloop warehouse …` and `careloop provenance …`: the OMOP warehouse from the shell."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console, err_console, print_frame, print_json, print_rows
from careloop.core.csv_safety import frame_to_csv
from careloop.core.errors import InputError
from careloop.practice.events import CardEventTables
from careloop.practice.lineage import card_lineage
from careloop.trust.provenance import (
    as_fhir,
    chain_bundle,
    get_provenance,
    lineage,
    list_provenance,
)
from careloop.warehouse.connection import Warehouse
from careloop.warehouse.jobs import (
    check_warehouse,
    list_sources,
    load_omop_directory,
    query_warehouse,
    remove_source,
)
from careloop.warehouse.refresh import refresh_warehouse

warehouse_app = typer.Typer(help="The OMOP CDM warehouse.", no_args_is_help=True)
provenance_app = typer.Typer(help="Where results came from.", no_args_is_help=True)


def _fmt(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"--format must be one of {', '.join(allowed)}, not {value!r}.")
    return value


@warehouse_app.command("load-omop")
def load_omop(
    directory: Path = typer.Argument(..., help="Directory of OMOP CDM CSV files (5.3 or 5.4)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Load OMOP CSV files (e.g. OHDSI's Eunomia) into the warehouse, all or nothing."""
    settings = settings_from(data_dir)
    with opened(settings) as registry, Warehouse.from_settings(settings) as warehouse:
        report, provenance = load_omop_directory(registry, warehouse, operator(), directory)
    print_rows(["table", "rows"], sorted(report.tables.items()), title="Loaded")
    console.print(
        f"{report.rows_in:,} rows in {report.seconds:.1f} s; provenance record {provenance.id}."
    )


@warehouse_app.command("refresh")
def refresh(
    full: bool = typer.Option(False, "--full", help="Rebuild every person, not only changed ones."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Load the registry into the OMOP warehouse (consented patients, pseudonymised)."""
    settings = settings_from(data_dir)
    with opened(settings) as registry, Warehouse.from_settings(settings) as warehouse:
        report = refresh_warehouse(
            registry, warehouse, operator(), full=full, sources=[CardEventTables()]
        )
    print_rows(["table", "rows"], sorted(report.rows.items()), title="Warehouse")
    console.print(
        f"{report.persons:,} persons ({report.persons_rebuilt:,} rebuilt, "
        f"{report.persons_removed:,} removed; {report.patients_excluded:,} not loaded by consent); "
        f"{report.extra.get('cds_cards', 0):,} decision-support cards; "
        f"provenance record {report.provenance_id}."
    )
    for source, persons in sorted(report.withheld.items()):
        console.print(
            f"Removed the rows of {persons:,} persons from the {source} source: "
            "their consent no longer allows improvement use."
        )
    for detail in report.skipped_forms:
        console.print(f"[yellow]Skipped {detail.location}:[/yellow] {detail.message}")


@warehouse_app.command("sources")
def sources(data_dir: Path | None = DataDirOption) -> None:
    """Where the warehouse's rows come from: registry forms, FHIR imports, OMOP files."""
    settings = settings_from(data_dir)
    with opened(settings) as registry, Warehouse.from_settings(settings, read_only=True) as wh:
        found = list_sources(registry, wh, operator())
    print_rows(
        ["source", "what", "persons", "rows"],
        [
            (s.name, s.label, f"{s.persons:,}", ", ".join(f"{t} {n:,}" for t, n in s.rows.items()))
            for s in found
        ],
        title="Sources",
    )


@warehouse_app.command("drop-source")
def drop_source_command(
    source: str = typer.Argument(..., help="registry, fhir or omop."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit trail)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Remove every row one source put in the warehouse (the others stay)."""
    settings = settings_from(data_dir)
    with opened(settings) as registry, Warehouse.from_settings(settings) as warehouse:
        removed, provenance = remove_source(registry, warehouse, operator(), source, reason=reason)
    print_rows(["table", "rows removed"], sorted(removed.items()), title=f"Removed {source}")
    console.print(f"Provenance record {provenance.id}.")


@warehouse_app.command("query")
def query(
    sql: str = typer.Argument(..., help="One SELECT (or WITH … SELECT) statement."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    limit: int = typer.Option(10_000, "--limit", help="At most this many rows."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run read-only SQL on the warehouse (writes are refused; audited)."""
    settings = settings_from(data_dir)
    fmt = _fmt(fmt, ("table", "csv", "json"))
    with opened(settings) as registry, Warehouse.from_settings(settings, read_only=True) as wh:
        frame = query_warehouse(registry, wh, operator(), sql, limit=limit)
    print_frame(frame, fmt=fmt)  # type: ignore[arg-type]


@warehouse_app.command("check")
def check(
    fmt: str = typer.Option("table", "--format", help="table, json or html."),
    out: Path | None = typer.Option(None, "--out", help="Write the report to this file."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run the data-quality checks (conformance, completeness, plausibility) and store them."""
    settings = settings_from(data_dir)
    fmt = _fmt(fmt, ("table", "json", "html"))
    with opened(settings) as registry, Warehouse.from_settings(settings) as warehouse:
        report, _provenance = check_warehouse(registry, warehouse, operator())
    if fmt == "html":
        text = report.to_html()
    elif fmt == "json":
        text = report.to_frame().to_json(orient="records", date_format="iso", indent=2)
    else:
        frame = report.to_frame()
        columns = ["check_id", "category", "status", "failing_rows", "denominator", "percent"]
        if out is None:
            print_frame(frame[columns], fmt="table")
            return
        text = frame_to_csv(frame) or ""
    if out is not None:
        out.write_text(text)
        console.print(f"Wrote {out}")
    else:
        typer.echo(text)


@provenance_app.command("show")
def provenance_show(
    record: str = typer.Argument(
        ..., help="A provenance record id, or card:<uuid> for a decision-support card."
    ),
    chain: bool = typer.Option(
        False, "--chain", help="Also every record it built on, back to the source files."
    ),
    fmt: str = typer.Option(
        "json", "--format", help="json, fhir (a Provenance, or a Bundle with --chain) or table."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show one provenance record, or the chain behind it or behind a card."""
    fmt = _fmt(fmt, ("json", "fhir", "table"))
    card: dict[str, object] | None = None
    with opened(settings_from(data_dir)) as registry:
        if record.startswith("card:"):
            found = card_lineage(registry, operator(), record[len("card:") :])
            card, entries = found.card, list(found.chain)
            chain = True
            if not entries:
                err_console.print(
                    "Note: no provenance is recorded for this card's knowledge object version.",
                    markup=False,
                    soft_wrap=True,
                )
        else:
            if not record.isdigit():
                raise InputError(
                    f"{record!r} is not a provenance record: give its number (careloop "
                    "provenance list shows them) or card:<uuid> for a card."
                )
            entries = (
                lineage(registry, int(record)) if chain else [get_provenance(registry, int(record))]
            )
    if fmt == "fhir":
        print_json(chain_bundle(entries) if chain else as_fhir(entries[0]))
    elif fmt == "table":
        if card is not None:
            typer.echo(
                f"Card {card['uuid']} ({card['indicator']}: {card['summary']}) from "
                f"{card['knowledge_object']}@{card['version']} at {card['site'] or 'no site'}, "
                f"{card['at']}"
            )
        for depth, entry in enumerate(entries):
            arrow = "  " * depth + ("← " if depth or card is not None else "")
            typer.echo(
                f"{arrow}{entry.id} {entry.activity}: {entry.target} "
                f"({entry.ended_at:%Y-%m-%d %H:%M} UTC, {entry.agent})"
            )
            hashed = [item for item in entry.inputs if item.sha256]
            # A measure run lists every definition it ran: a few lines say enough on a terminal.
            for item in hashed[:3]:
                digest = (item.sha256 or "")[:16]
                typer.echo(f"{'  ' * depth}    input {item.name} sha256 {digest}…")
            if len(hashed) > 3:
                typer.echo(f"{'  ' * depth}    … and {len(hashed) - 3} more inputs (--format json)")
    else:
        records = [json.loads(json.dumps(asdict(e), default=str)) for e in entries]
        if card is not None:
            print_json({"card": card, "chain": records})
        else:
            print_json(records if chain else records[0])


@provenance_app.command("list")
def provenance_list(
    activity: str | None = typer.Option(None, "--activity"),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """The newest provenance records."""
    fmt = _fmt(fmt, ("table", "csv", "json"))
    with opened(settings_from(data_dir)) as registry:
        entries = list_provenance(registry, activity=activity)
    frame = pd.DataFrame(
        [
            {
                "id": e.id,
                "activity": e.activity,
                "target": e.target,
                "ended_at": e.ended_at,
                "agent": e.agent,
                "rows_in": e.rows_in,
                "rows_out": e.rows_out,
            }
            for e in entries
        ],
        columns=["id", "activity", "target", "ended_at", "agent", "rows_in", "rows_out"],
    )
    print_frame(frame, fmt=fmt)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    app.add_typer(warehouse_app, name="warehouse")
    app.add_typer(provenance_app, name="provenance")
