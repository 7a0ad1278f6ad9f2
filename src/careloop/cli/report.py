"""`careloop report community|cycle ID`: a learning community's or cycle's report, HTML and PDF.

Thin commands over :mod:`careloop.practice.community_reports`. At the
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
from careloop.practice.community_reports import (
    CommunityReport,
    community_report,
    cycle_report,
    write_report,
)
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


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
