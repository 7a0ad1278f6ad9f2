"""`careloop analyse its`: interrupted time series (segmented regression) of a CSV file."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import typer

from careloop.cli.csv_input import read_csv_input
from careloop.cli.output import err_console, print_frame, print_json, print_rows
from careloop.core.errors import InputError

_FAMILY_CHOICES = ("poisson", "quasipoisson", "gaussian", "binomial")
_AUTOCORRELATION_CHOICES = ("none", "newey-west", "ar1")


def its_command(
    input: Path = typer.Option(
        ..., "--input", help="CSV file, one row per time point (and series)."
    ),
    outcome: str = typer.Option(
        ..., "--outcome", help="Outcome column (counts, events or values)."
    ),
    time: str = typer.Option(..., "--time", help="Time column: numbers (1, 2, …) or dates."),
    intervention: list[str] = typer.Option(
        ...,
        "--intervention",
        help="0/1 column, 1 from the intervention's start on; repeat for several phases.",
    ),
    exposure: str | None = typer.Option(
        None, "--exposure", help="Population or person-time column (log offset; Poisson families)."
    ),
    trials: str | None = typer.Option(
        None, "--trials", help="Denominator column for --family binomial."
    ),
    family: str = typer.Option(
        "poisson", "--family", help="poisson, quasipoisson, gaussian or binomial."
    ),
    seasonality: str | None = typer.Option(
        None, "--seasonality", help="Fourier terms COLUMN:PERIOD:PAIRS, e.g. month:12:2."
    ),
    slope_change: bool = typer.Option(
        False, "--slope-change", help="Also estimate a change in slope after each intervention."
    ),
    autocorrelation: str = typer.Option(
        "none",
        "--autocorrelation",
        help="none, newey-west (HAC standard errors) or ar1 (gaussian).",
    ),
    lags: int | None = typer.Option(
        None, "--lags", help="Newey–West lags (default: Newey & West 1994 rule)."
    ),
    control: str | None = typer.Option(
        None, "--control", help="Column marking the control series (1) in a comparative ITS."
    ),
    per: float | None = typer.Option(
        None, "--per", help="Show rates per this many units of exposure in the figure, e.g. 100000."
    ),
    fmt: str = typer.Option(
        "table", "--format", help="table (report), json (everything) or csv (the series)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the figure to this .png or .svg file (no browser needed)."
    ),
) -> None:
    """Fit a segmented regression model and report the intervention's effect.

    Long because a Typer command declares each of its many documented options in its
    signature; the body only checks them and calls segmented_regression.
    """

    from careloop.analysis.caveats import StatisticalWarning
    from careloop.analysis.its import Harmonics, segmented_regression

    if family not in _FAMILY_CHOICES:
        raise InputError(f"--family must be one of {', '.join(_FAMILY_CHOICES)}; got {family!r}.")
    if autocorrelation not in _AUTOCORRELATION_CHOICES:
        raise InputError(
            f"--autocorrelation must be one of {', '.join(_AUTOCORRELATION_CHOICES)}; "
            f"got {autocorrelation!r}."
        )
    if fmt not in ("table", "json", "csv"):
        raise InputError(f"--format must be table, json or csv; got {fmt!r}.")
    if out is not None and out.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--out must end in .png or .svg; got {out.name!r}.")
    df = read_csv_input(input)
    with warnings.catch_warnings():
        # caveats are listed in the report itself
        warnings.simplefilter("ignore", StatisticalWarning)
        result = segmented_regression(
            df,
            outcome=outcome,
            time=time,
            intervention=intervention if len(intervention) > 1 else intervention[0],
            exposure=exposure,
            family=family,  # type: ignore[arg-type]
            trials=trials,
            seasonality=Harmonics.parse(seasonality) if seasonality else None,
            slope_change=slope_change,
            autocorrelation=None if autocorrelation == "none" else autocorrelation,  # type: ignore[arg-type]
            lags=lags,
            control=control,
        )
    if out is not None:
        from careloop.charts import its as its_charts

        if out.suffix.lower() == ".png":
            its_charts.png(result, out, per=per)
        else:
            its_charts.svg(result, out, per=per)
    if fmt == "csv":
        print_frame(result.series, fmt="csv")
        return
    if fmt == "json":
        data: dict[str, Any] = result.to_dict()
        from careloop.analysis._frames import records

        data["series"] = records(result.series.to_dict(orient="records"))
        if out is not None:
            data["figure"] = str(out)
        print_json(data)
        return
    sys.stdout.write(result.summary() + "\n")
    rows = [["trend (before)", *_effect_cells(result.trend)]]
    for ph in result.interventions:
        rows.append([f"{ph.intervention}: step", *_effect_cells(ph.step)])
        if ph.slope is not None:
            rows.append([f"{ph.intervention}: slope change", *_effect_cells(ph.slope)])
    print_rows(["effect", result.effect_scale, "95% CI", "p"], rows, title="Effects")
    if out is not None:
        err_console.print(f"Figure written to {out}", markup=False, highlight=False)


def _effect_cells(e: Any) -> list[str]:
    p = "<0.001" if e.p < 0.001 else f"{e.p:.3f}"
    return [f"{e.estimate:.4g}", f"{e.ci_low:.4g} to {e.ci_high:.4g}", p]


def register(app: typer.Typer) -> None:
    """Add ``its`` to ``careloop analyse``."""
    app.command("its", help="Interrupted time series: segmented regression of a CSV file.")(
        its_command
    )
