"""`careloop forms` and `careloop records`: data dictionaries and bulk records.

Thin commands over careloop.capture, run as the operator (the person who
controls the data directory); every change and every export is audited by
the functions they call.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import cast

import typer

from careloop.capture import forms_store, records_io
from careloop.capture.forms_store import DictionaryFormat
from careloop.capture.records_io import (
    ConsentState,
    DateFormat,
    ExportFormat,
    ImportReport,
)
from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.modes import IMPORT_MODE_HELP, import_mode
from careloop.cli.output import console, err_console, print_rows
from careloop.core.csv_safety import safe_writer
from careloop.core.errors import InputError, ValidationFailed
from careloop.core.limits import read_file
from careloop.core.private_files import write_private_text

forms_app = typer.Typer(help="Forms: import, list, show and export data dictionaries.")
records_app = typer.Typer(help="Records: bulk import and export of form responses.")
forms_app.info.no_args_is_help = True
records_app.info.no_args_is_help = True

_DICTIONARY_FORMATS = ("redcap", "yaml", "questionnaire")


def _choice(value: str | None, allowed: tuple[str, ...], option: str) -> str | None:
    if value is not None and value not in allowed:
        raise InputError(f"{option} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def _write_or_print(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        write_private_text(output, text)  # records: readable by the owner only
        err_console.print(f"Wrote {output}")


@forms_app.command("import")
def forms_import(
    file: Path = typer.Argument(..., help="REDCap dictionary .csv, careloop .yaml or FHIR .json"),
    fmt: str | None = typer.Option(
        None, "--format", help="redcap, yaml or questionnaire (default: from the file name)."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Import a data dictionary; a changed form gets a new version, an unchanged one does not."""
    chosen = cast(DictionaryFormat | None, _choice(fmt, _DICTIONARY_FORMATS, "--format"))
    settings = settings_from(data_dir)
    data = read_file(file, max_bytes=settings.max_input_bytes)
    with opened(settings) as registry:
        results = forms_store.import_forms(registry, operator(), data, fmt=chosen, name=file.name)
    for r in results:
        what = "new form" if r.new_form else "new version" if r.new_version else "unchanged"
        console.print(f"{r.name}: {what} (version {r.version[:12]})")
        for note in r.notes:
            console.print(f"  note: {note}", highlight=False)


@forms_app.command("list")
def forms_list(data_dir: Path | None = DataDirOption) -> None:
    """List the forms with their current versions."""
    with opened(settings_from(data_dir)) as registry:
        forms = forms_store.list_forms(registry, operator())
    print_rows(
        ["form", "title", "patient-reported", "version", "versions"],
        [
            (f.name, f.title, "yes" if f.patient_reported else "", f.version[:12], f.versions)
            for f in forms
        ],
    )
    for f in forms:
        if f.problem:
            err_console.print(f"Warning: {f.problem}", highlight=False)


@forms_app.command("show")
def forms_show(
    form: str = typer.Argument(...),
    version: str | None = typer.Option(None, "--version", help="A version hash (or prefix)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show a form's fields and its version history."""
    with opened(settings_from(data_dir)) as registry:
        stored = forms_store.get_form(registry, operator(), form, version=version)
    flag = " (patient-reported)" if stored.patient_reported else ""
    console.print(f"[bold]{stored.name}[/bold]: {stored.title}{flag}", highlight=False)
    console.print(f"version {stored.version}{' (current)' if stored.current else ''}")
    print_rows(
        ["field", "type", "label", "required", "shown if"],
        [
            (
                f.name,
                f.type.value + (f" ({f.validation})" if f.validation else ""),
                f.label,
                "yes" if f.required else "",
                f.branching_logic.source if f.branching_logic else "",
            )
            for f in stored.form.fields
        ],
    )
    print_rows(
        ["version", "imported", "by", "format", "fields"],
        [
            (
                v.version[:12],
                f"{v.created_at:%Y-%m-%d %H:%M}",
                v.created_by,
                v.source_format,
                v.fields,
            )
            for v in stored.versions
        ],
        title="versions",
    )


@forms_app.command("export")
def forms_export(
    form: str = typer.Argument(...),
    fmt: str = typer.Option(..., "--format", help="redcap, yaml or questionnaire."),
    version: str | None = typer.Option(None, "--version", help="A version hash (or prefix)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Export a form as a REDCap dictionary, careloop YAML or a FHIR Questionnaire."""
    chosen = cast(DictionaryFormat, _choice(fmt, _DICTIONARY_FORMATS, "--format"))
    with opened(settings_from(data_dir)) as registry:
        text = forms_store.export_form(registry, operator(), form, fmt=chosen, version=version)
    _write_or_print(text, output)


def _write_report(report: ImportReport | ValidationFailed, path: Path) -> None:
    """A full JSON report (.json), or the problems as CSV (row, field, value, reason)."""
    if isinstance(report, ValidationFailed):
        # Refused as a whole (header, encoding): the details are located file:row:column.
        problems = [
            {"row": None, "field": d.location, "value": d.value, "reason": d.message}
            for d in report.details
        ]
        data: dict[str, object] = {
            "written": False,
            "error": report.message,
            "problems": problems,
        }
    else:
        data = report.as_dict()
        problems = list(report.as_dict()["problems"])
    if path.suffix.lower() == ".json":
        write_private_text(path, json.dumps(data, indent=2, default=str) + "\n")
        return
    out = io.StringIO()
    writer = safe_writer(out, lineterminator="\n")
    writer.writerow(["row", "field", "value", "reason"])
    for p in problems:
        writer.writerow(["" if p[k] is None else p[k] for k in ("row", "field", "value", "reason")])
    write_private_text(path, out.getvalue())  # it quotes rejected values


@records_app.command("import")
def records_import(
    form: str = typer.Argument(..., help="The form the rows answer."),
    file: Path = typer.Argument(
        ..., help="A REDCap record export (CSV, raw values), or a CSV in its shape."
    ),
    site: str = typer.Option(..., "--site", help="Code of the site the patients belong to."),
    mode: str = typer.Option("all-or-nothing", "--mode", help=IMPORT_MODE_HELP),
    event_date_field: str | None = typer.Option(
        None,
        "--event-date-field",
        help="A date or datetime field of the form that dates each response "
        "(default: an event_date column, or the field annotated @CARELOOP-EVENT-DATE).",
    ),
    event_date: str | None = typer.Option(
        None,
        "--event-date",
        help="YYYY-MM-DD: the event date of rows without one of their own "
        "(of every row when nothing else gives one).",
    ),
    record_id_field: str | None = typer.Option(
        None,
        "--record-id-field",
        help="The column holding the record id (default: record_id, or the project's "
        "record id field as first column).",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Write the report here (.json: full report; else CSV of problems)."
    ),
    date_format: str = typer.Option("ymd", "--date-format", help="ymd, mdy or dmy."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Import responses from a CSV; exits 1 when any row was rejected."""
    chosen_mode = import_mode(mode)
    chosen_dates = cast(DateFormat, _choice(date_format, ("ymd", "mdy", "dmy"), "--date-format"))
    settings = settings_from(data_dir)
    data = read_file(file, max_bytes=settings.max_input_bytes)
    with opened(settings) as registry:
        try:
            result = records_io.import_records(
                registry,
                operator(),
                form,
                data,
                site,
                name=file.name,
                mode=chosen_mode,
                date_format=chosen_dates,
                event_date_field=event_date_field,
                event_date=event_date,
                record_id_field=record_id_field,
            )
        except ValidationFailed as exc:
            if report is not None:
                _write_report(exc, report)
            raise
    if report is not None:
        _write_report(result, report)
    skipped = f", skipped {result.skipped}" if result.skipped else ""
    console.print(
        f"{result.source}: {result.rows} rows; created {result.created}, updated "
        f"{result.updated}, unchanged {result.unchanged}, rejected {result.rejected_rows}"
        f"{skipped}; {result.patients_created} new patients"
        + ("" if result.written else "; nothing was written"),
        highlight=False,
    )
    for note in result.notes:
        console.print(f"Note: {note}", markup=False, highlight=False)
    for problem in result.problems[:20]:
        value = f" (value {problem.value!r})" if problem.value is not None else ""
        err_console.print(
            f"row {problem.row} {problem.field}{value}: {problem.reason}",
            markup=False,
            highlight=False,
        )
    if len(result.problems) > 20:
        err_console.print(f"… and {len(result.problems) - 20} more (see --report)")
    if not result.ok:
        raise typer.Exit(code=1)


@records_app.command("export")
def records_export(
    form: str = typer.Argument(...),
    fmt: str = typer.Option("csv", "--format", help="csv, json or fhir (NDJSON)."),
    site: str | None = typer.Option(None, "--site", help="Only this site's records."),
    consent: list[str] | None = typer.Option(
        None,
        "--consent",
        help="Only patients in this consent state (repeatable), e.g. improvement_and_research.",
    ),
    purpose: list[str] | None = typer.Option(
        None,
        "--purpose",
        help="Only patients who agree to this purpose (repeatable): direct_care, "
        "quality_improvement, research or recontact.",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Export a form's responses (audited)."""
    chosen = cast(ExportFormat, _choice(fmt, ("csv", "json", "fhir"), "--format"))
    with opened(settings_from(data_dir)) as registry:
        exported = records_io.export_records(
            registry,
            operator(),
            form,
            fmt=chosen,
            site=site,
            consent=cast(list[ConsentState], consent) if consent else None,
            purposes=purpose or None,
        )
    _write_or_print(exported.text, output)


def register(app: typer.Typer) -> None:
    app.add_typer(forms_app, name="forms")
    app.add_typer(records_app, name="records")
