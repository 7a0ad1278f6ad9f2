"""`careloop measures`: list, validate and run quality measures (thin: calls careloop.measures)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from careloop.cli.context import DataDirOption, operator, settings_from
from careloop.cli.output import console, err_console, print_frame, print_json
from careloop.core.errors import ConfigurationError, InputError
from careloop.core.settings import Settings
from careloop.measures import (
    MeasureDefinition,
    MeasureRun,
    data_extent,
    load_catalog,
    run_measures,
    store_run,
)
from careloop.measures.export import export_results, results_to_records
from careloop.measures.provenance import record_measure_run
from careloop.measures.validation import validate_files
from careloop.trust.installation import open_registry
from careloop.warehouse.connection import Warehouse
from careloop.warehouse.refresh import warehouse_provenance

if TYPE_CHECKING:
    import pandas as pd

measures_app = typer.Typer(
    help="Quality measures defined in YAML, computed on the warehouse.", no_args_is_help=True
)

MeasuresDirOption = typer.Option(
    None, "--measures-dir", help="Folder of measure YAML files (default: CARELOOP_MEASURES_DIR)."
)
_STRATA = ("site", "sex", "age_band")
_FORMATS = ("table", "csv", "json")
_OUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".json": "json"}


def _record_run(settings: Settings, run: MeasureRun, warehouse_url: str) -> None:
    """Add the stored run to the installation's provenance chain (when there is an installation)."""
    try:
        registry = open_registry(settings, create=False)
    except ConfigurationError:
        err_console.print(
            "Note: no careloop installation here, so the run's provenance is kept in the "
            "warehouse only (careloop_measure_run).",
            markup=False,
            soft_wrap=True,
        )
        return
    try:
        entry = record_measure_run(
            registry,
            operator(),
            run,
            warehouse_url=warehouse_url,
            parent_ids=warehouse_provenance(registry),
        )
    finally:
        registry.close()
    err_console.print(
        f"Recorded as provenance {entry.id} (careloop provenance show {entry.id} --chain).",
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the `measures` command group to ``app``."""
    app.add_typer(measures_app, name="measures")


def _day(text: str | None, option: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} takes a date as YYYY-MM-DD, not {text!r}.") from None


@measures_app.command("list")
def list_measures(
    measures_dir: Path | None = MeasuresDirOption,
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """The available measures: built-in, from the measures folder and from plugins."""
    if fmt not in _FORMATS:
        raise InputError(f"--format must be one of {', '.join(_FORMATS)}, not {fmt!r}.")
    import pandas as pd

    catalog = load_catalog(measures_dir=measures_dir or settings_from(None).measures_dir)
    frame = pd.DataFrame(
        [
            {
                "id": m.id,
                "title": m.title,
                "type": m.type,
                "subject": m.subject,
                "period": m.period,
                "improvement": m.improvement,
                "source": m.source,
            }
            for m in catalog.measures
        ]
    )
    print_frame(frame, fmt=fmt, title="Measures")  # type: ignore[arg-type]
    for problem in catalog.problems:
        err_console.print(
            f"Warning: {problem.location}: {problem.message}", markup=False, soft_wrap=True
        )


@measures_app.command("validate")
def validate(
    files: list[Path] = typer.Argument(..., help="Measure YAML files."),
    concepts: bool = typer.Option(
        False, "--concepts", help="Also check concept ids against the warehouse vocabulary."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Check measure files; exit 1 if any is invalid."""
    warehouse = None
    if concepts:
        warehouse = Warehouse.connect(
            settings_from(data_dir).resolved_warehouse_url, read_only=True
        )
    try:
        checks = validate_files(files, warehouse=warehouse)
    finally:
        if warehouse is not None:
            warehouse.close()
    for check in checks:
        if check.ok:
            assert check.definition is not None
            console.print(f"OK {check.path}: {check.definition.id}", markup=False, soft_wrap=True)
        for problem in check.problems:
            err_console.print(
                f"{problem.location}: {problem.message}", markup=False, soft_wrap=True
            )
        for warning in check.warnings:
            err_console.print(f"Warning: {warning}", markup=False, soft_wrap=True)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@measures_app.command("run")
def run(
    measure: list[str] = typer.Option(None, "--measure", help="Measure id (repeat; default: all)."),
    from_: str = typer.Option(
        None, "--from", help="First day, YYYY-MM-DD (default: the first day of the data)."
    ),
    to: str = typer.Option(
        None, "--to", help="Last day, YYYY-MM-DD (default: the last day of the data)."
    ),
    by: list[str] = typer.Option(None, "--by", help="site, sex or age_band (repeat)."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json (standard output)."),
    out: Path | None = typer.Option(None, "--out", help="Write to a .csv, .parquet or .json file."),
    shared: bool = typer.Option(
        False, "--shared", help="The output leaves the installation: suppress small counts."
    ),
    store: bool = typer.Option(
        True, "--store/--no-store", help="Keep the results in the warehouse."
    ),
    measures_dir: Path | None = MeasuresDirOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Compute measures per period (and per site or stratum with --by); store and print them."""
    out_fmt = _check_run_options(fmt, by, out)
    end, start = _day(to, "--to"), _day(from_, "--from")
    catalog = load_catalog(measures_dir=measures_dir or settings_from(None).measures_dir)
    for problem in catalog.problems:
        err_console.print(
            f"Warning: {problem.location}: {problem.message}", markup=False, soft_wrap=True
        )
    chosen = catalog.select(measure)
    settings = settings_from(data_dir)
    with Warehouse.from_settings(settings) as warehouse:
        start, end = _period(warehouse, start, end)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        with progress:
            task = progress.add_task("Computing measures", total=len(chosen))

            def advance(definition: MeasureDefinition) -> None:
                progress.update(task, advance=1, description=definition.id)

            result = run_measures(
                warehouse, chosen, start=start, end=end, by=by or (), on_measure=advance
            )
        if store and not result.results.empty:
            store_run(warehouse, result)
            _record_run(settings, result, warehouse.url)
        frame = result.results
        if shared:
            frame = _release(warehouse, result, chosen, settings)
    definitions = {m.id: m for m in chosen}
    if out is not None and out_fmt is not None:
        export_results(frame, out, fmt=out_fmt, measures=definitions)  # type: ignore[arg-type]
        console.print(f"Wrote {len(frame)} rows to {out}.", markup=False, soft_wrap=True)
    else:
        if fmt == "json":
            print_json(results_to_records(frame))
        else:
            print_frame(frame, fmt=fmt, title=f"Measures {start} to {end}")  # type: ignore[arg-type]
    for warning in result.warnings:
        err_console.print(f"Warning: {warning}", markup=False, soft_wrap=True)
    for failure in result.failures:
        err_console.print(
            f"Error: measure {failure.measure_id} ({failure.source}) failed: {failure.message}",
            markup=False,
        )
    if result.failures:
        sys.stderr.flush()
        raise typer.Exit(1)


def _check_run_options(fmt: str, by: list[str] | None, out: Path | None) -> str | None:
    """Refuse an unknown --format, --by or --out suffix; return the --out file's format."""
    if fmt not in _FORMATS:
        raise InputError(f"--format must be one of {', '.join(_FORMATS)}, not {fmt!r}.")
    for s in by or ():
        if s not in _STRATA:
            raise InputError(f"--by takes {', '.join(_STRATA)}, not {s!r}.")
    out_fmt = None
    if out is not None:
        out_fmt = _OUT_FORMATS.get(out.suffix.lower())
        if out_fmt is None:
            raise InputError(f"--out must end in .csv, .parquet or .json, not {out.name!r}.")
    return out_fmt


def _period(warehouse: Warehouse, start: date | None, end: date | None) -> tuple[date, date]:
    """Fill a missing --from or --to from the warehouse's data, and say which period runs."""
    if start is not None and end is not None:
        return start, end
    extent = data_extent(warehouse)
    if extent is None:
        end = end or date.today()
        start = start or date(end.year - 1, end.month, 1)
        said = "the last 12 months: the warehouse holds no events yet"
    else:
        start, end = start or extent[0], end or extent[1]
        said = "the extent of the warehouse's data; choose with --from and --to"
    err_console.print(f"Period: {start} to {end} ({said}).", markup=False, soft_wrap=True)
    return start, end


def _release(
    warehouse: Warehouse,
    result: MeasureRun,
    chosen: list[MeasureDefinition],
    settings: Settings,
) -> pd.DataFrame:
    """Disclosure control against every earlier shared release, recorded in the ledger.

    The measures are computed once more at every level (sites × sex and age band)
    so that counts this release does not show are protected too.
    """
    from careloop.measures.sharing import release_results
    from careloop.trust.disclosure import DisclosurePolicy

    every = tuple(dict.fromkeys([*result.by, *_STRATA]))
    context = run_measures(warehouse, chosen, start=result.start, end=result.end, by=every)

    policy = DisclosurePolicy(
        threshold=settings.disclosure_threshold,
        noise=settings.disclosure_noise,
        repeat_limit=settings.disclosure_repeat_limit,
        repeat_days=settings.disclosure_repeat_days,
    )
    key = settings.signing_key().encode("utf-8") if policy.noise else None
    release = release_results(
        warehouse,
        result.results,
        context=context.results,
        released_by=operator().email,
        purpose="careloop measures run --shared",
        policy=policy,
        noise_key=key,
    )
    err_console.print(
        f"Shared release {release.release_id}: {release.hidden_counts} counts hidden "
        "(recorded in the warehouse's release ledger).",
        markup=False,
        soft_wrap=True,
    )
    if release.changed_blocks:
        err_console.print(
            f"Warning: the data of {release.changed_blocks} measure-period tables changed since "
            "an earlier shared release; counts hidden then stay hidden, but differences "
            "between the two versions of the data are not protected.",
            markup=False,
            soft_wrap=True,
        )
    if release.exposed_counts:
        err_console.print(
            f"Warning: {release.exposed_counts} small counts were already determined by what "
            "earlier releases published.",
            markup=False,
            soft_wrap=True,
        )
    return release.published
