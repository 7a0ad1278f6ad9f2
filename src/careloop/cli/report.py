"""`careloop report community|cycle|feedback|impact|learning`: reports as HTML and PDF.

Thin commands over :mod:`careloop.practice.community_reports` (a community,
a cycle), :mod:`careloop.practice.feedback.reports` (a site's audit and
feedback, a deployment's impact) and the demo's learning report; each PDF
is printed by headless Chromium (``--pdf``). At the
terminal the person running careloop is the operator of the data directory,
who sees every community; the same functions refuse anyone else who is not
a member (the web app and the API call them with the signed-in person).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console
from careloop.core.errors import ErrorDetail, InputError
from careloop.core.settings import Settings
from careloop.practice.community_reports import (
    CommunityReport,
    community_report,
    cycle_report,
    find_chromium,
    print_pdf,
    write_report,
)
from careloop.practice.feedback.reports import feedback_for, impact_for
from careloop.store.database import Registry
from careloop.trust.principal import Principal
from careloop.warehouse.connection import WarehouseOpener, warehouse_opener

report_app = typer.Typer(
    help="Reports on real data: a learning community or a learning cycle, as HTML (and PDF)."
)

OutOption = typer.Option(..., "--out", help="The HTML file to write (self-contained, offline).")
PdfOption = typer.Option(None, "--pdf", help="Also print the report to this PDF (Chromium).")
MeasuresDirOption = typer.Option(
    None, "--measures-dir", help="Folder of measure YAML files (default: CARELOOP_MEASURES_DIR)."
)

Gather = Callable[[Registry, WarehouseOpener, Principal, int], CommunityReport]


def _write(
    gather: Gather, subject_id: int, out: Path, pdf: Path | None, data_dir: Path | None
) -> None:
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        report = gather(registry, warehouse_opener(settings), operator(), subject_id)
    written = write_report(report, out, pdf=pdf, chromium=settings.chromium)
    console.print(f"Wrote {written.html}.", markup=False)
    if written.pdf is not None:
        console.print(f"Wrote {written.pdf}.", markup=False)


@report_app.command("community")
def community(
    community_id: int = typer.Argument(..., help="The community's id (`careloop community list`)."),
    out: Path = OutOption,
    pdf: Path | None = PdfOption,
    measures_dir: Path | None = MeasuresDirOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A community's report: purpose, members, charter, priorities, cycles, decisions."""
    _write(
        lambda r, w, p, i: community_report(r, w, p, i, measures_dir=measures_dir),
        community_id,
        out,
        pdf,
        data_dir,
    )


@report_app.command("cycle")
def cycle(
    cycle_id: int = typer.Argument(..., help="The cycle's id (`careloop cycle list`)."),
    out: Path = OutOption,
    pdf: Path | None = PdfOption,
    measures_dir: Path | None = MeasuresDirOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A cycle's report: aim, Plan, Do, Study (charts and effects), Act, its decisions."""
    _write(
        lambda r, w, p, i: cycle_report(r, w, p, i, measures_dir=measures_dir),
        cycle_id,
        out,
        pdf,
        data_dir,
    )


def _write_page(html: str, out: Path, pdf: Path | None, settings: Settings) -> None:
    """Write a standalone page to ``out`` and, when asked, print it to ``pdf``."""
    _check_folders(out, pdf)
    if pdf is not None:
        find_chromium(settings.chromium)
    out.write_text(html, encoding="utf-8")
    console.print(f"Wrote {out}.", markup=False)
    if pdf is not None:
        console.print(f"Wrote {print_pdf(out, pdf, chromium=settings.chromium)}.", markup=False)


def _check_folders(*paths: Path | None) -> None:
    missing = [
        ErrorDetail("--out" if i == 0 else "--pdf", "the folder does not exist; create it first",
                    str(path.parent))
        for i, path in enumerate(paths)
        if path is not None and not path.parent.is_dir()
    ]  # fmt: skip
    if missing:
        raise InputError("Cannot write the report: a folder is missing.", missing)


@report_app.command("feedback")
def feedback(
    site: str = typer.Argument(..., help="The site's code."),
    measure: str = typer.Option("remission-prevalence", "--measure", help="The measure's id."),
    out: Path = OutOption,
    pdf: Path | None = PdfOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A site's audit-and-feedback report on one measure: funnel, trend, cards by clinician."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        report = feedback_for(
            registry, warehouse_opener(settings), operator(), site=site, measure_id=measure
        )
    _write_page(report.to_html(), out, pdf, settings)


@report_app.command("impact")
def impact(
    ref: str = typer.Argument(..., help="The knowledge object, identifier@version."),
    measure: str | None = typer.Option(
        None, "--measure", help="One of its measures (default: its first)."
    ),
    out: Path = OutOption,
    pdf: Path | None = PdfOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A deployment's impact on a measure it targets: SPC, interrupted time series, cards."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        report = impact_for(
            registry, warehouse_opener(settings), operator(), ref, measure_id=measure
        )
    _write_page(report.to_html(), out, pdf, settings)


@report_app.command("learning")
def learning(
    pdf: Path = typer.Option(..., "--pdf", help="The PDF file to print the report to."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Print the demo's learning report (DATA_DIR/report/report.html, made by `careloop demo`)."""
    settings = settings_from(data_dir)
    page = settings.data_dir / "report" / "report.html"
    if not page.is_file():
        raise InputError(
            f"No learning report at {page}: `careloop demo --data-dir {settings.data_dir}` "
            "writes it."
        )
    _check_folders(None, pdf)
    console.print(f"Wrote {print_pdf(page, pdf, chromium=settings.chromium)}.", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
