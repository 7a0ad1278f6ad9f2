"""`careloop fhir import|export`: FHIR R4 in and out, from the shell.

Thin commands over :func:`careloop.fhir.importing.import_fhir` and
:func:`careloop.fhir.exporting.export_fhir`; the rules live there.
"""

from __future__ import annotations

from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.modes import IMPORT_MODE_HELP, import_mode
from careloop.cli.output import console, print_json, print_rows
from careloop.fhir.exporting import export_fhir
from careloop.fhir.importing import ImportMode, import_fhir
from careloop.warehouse.connection import Warehouse, warehouse_opener

fhir_app = typer.Typer(help="FHIR R4: import Bundles and NDJSON, export Bulk Data NDJSON.")


def _mode(value: str) -> ImportMode:
    # The domain function keeps its own spelling; the command line reads either.
    return "all_or_nothing" if import_mode(value) == "all-or-nothing" else "row_level"


@fhir_app.command("import")
def import_command(
    path: Path = typer.Argument(..., help="A Bundle (.json), an NDJSON file or a directory."),
    site: str | None = typer.Option(
        None, "--site", help="Site the patients belong to (default: the only site)."
    ),
    mode: str = typer.Option("all-or-nothing", "--mode", help=IMPORT_MODE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Import FHIR R4: patients and form responses to the registry, clinical data to OMOP."""
    settings = settings_from(data_dir)
    with opened(settings) as registry, Warehouse.from_settings(settings) as warehouse:
        report = import_fhir(
            registry,
            warehouse,
            operator(),
            path,
            site=site,
            mode=_mode(mode),
            default_consent=settings.default_consent,
            max_input_bytes=settings.max_input_bytes,
        )
    if json_output:
        print_json(report.as_dict())
        return
    print_rows(["resource type", "read"], sorted(report.resources_in.items()), title="Read")
    print_rows(["OMOP table", "rows"], sorted(report.rows_out.items()), title="Written")
    console.print(
        f"Form responses (QuestionnaireResponse): {report.responses_created} created, "
        f"{report.responses_updated} updated, {report.responses_unchanged} unchanged."
    )
    console.print(
        f"Site {report.site}: {report.patients_created} patient(s) registered, "
        f"{report.patients_updated} updated; {report.withheld_by_consent} resource(s) kept out "
        f"of the warehouse by consent; {report.components} Observation component(s) became "
        f"rows; provenance record {report.provenance_id}; {report.seconds:.1f} s."
    )
    if report.skipped:
        console.print(f"Skipped (read, not imported): {len(report.skipped)} kind(s)")
        for item in report.skipped:
            console.print(f"  {item.what}: {item.count} — {item.reason}", markup=False)
    else:
        console.print("Skipped: nothing.")
    for title, problems in (("Rejected", report.rejected), ("Warnings", report.warnings)):
        if problems:
            console.print(f"{title}: {len(problems)}")
            for detail in problems[:20]:
                console.print(f"  {detail.location}: {detail.message}", markup=False)
            if len(problems) > 20:
                console.print(f"  … and {len(problems) - 20} more (use --json for all)")


@fhir_app.command("export")
def export_command(
    out: Path = typer.Option(..., "--out", help="Directory for the NDJSON files."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Export patients and their data as Bulk Data NDJSON (one file per resource type)."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        report = export_fhir(registry, warehouse_opener(settings), operator(), out)
    print_rows(["resource type", "resources"], sorted(report.counts.items()), title="Exported")
    console.print(f"Wrote {len(report.files)} file(s) and manifest.json to {report.out_dir}")
    for skipped in report.skipped_forms:
        console.print(f"Left out form {skipped}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `careloop fhir …` to the command line."""
    app.add_typer(fhir_app, name="fhir")
