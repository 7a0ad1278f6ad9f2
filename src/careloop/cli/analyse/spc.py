"""`careloop analyse spc`: a run or control chart of a CSV file (qicharts2's qic)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import typer

from careloop.cli.csv_input import read_csv_input
from careloop.cli.output import err_console, print_frame, print_json
from careloop.core.csv_safety import frame_to_csv
from careloop.core.errors import InputError, NotBuilt

_CHARTS = ("run", "i", "mr", "xbar", "s", "t", "p", "pp", "c", "u", "up", "g")
_FORMATS = ("table", "json", "csv")


def _positions(values: list[str] | None, option: str) -> list[int] | None:
    """Whole numbers from repeated and/or comma-separated option values."""
    if not values:
        return None
    out: list[int] = []
    for item in values:
        for part in item.split(","):
            if not part.strip():
                continue
            try:
                out.append(int(part))
            except ValueError:
                raise InputError(
                    f"{option} takes whole-number positions, e.g. {option} 15,23; got {part!r}."
                ) from None
    return out


def _labels(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [p.strip() for item in values for p in item.split(",") if p.strip()]


def spc_command(
    input: Path = typer.Option(..., "--input", help="CSV file, one row per subgroup or record."),
    y: str = typer.Option(..., "--y", help="Column of values (numerators with --n)."),
    x: str | None = typer.Option(None, "--x", help="Column of subgroups: numbers, dates or text."),
    n: str | None = typer.Option(None, "--n", help="Column of denominators (P, P′, U, U′)."),
    chart: str = typer.Option("run", "--chart", help="run, i, mr, xbar, s, t, p, pp, c, u, up, g."),
    part: list[str] | None = typer.Option(
        None, "--part", help="Point counts after which a new phase starts, e.g. --part 30."
    ),
    freeze: str | None = typer.Option(
        None, "--freeze", help="Last baseline point, or per-part lengths such as 12,6."
    ),
    exclude: list[str] | None = typer.Option(
        None, "--exclude", help="1-based positions left out of the calculations, e.g. 15,23."
    ),
    part_at: list[str] | None = typer.Option(
        None, "--part-at", help="x values (e.g. dates) at which a new phase starts."
    ),
    freeze_until: str | None = typer.Option(
        None, "--freeze-until", help="Last x value of the baseline."
    ),
    exclude_x: list[str] | None = typer.Option(
        None, "--exclude-x", help="x values left out of the calculations."
    ),
    multiply: float = typer.Option(1.0, "--multiply", help="Multiply y and limits, e.g. 100."),
    cl: float | None = typer.Option(None, "--cl", help="Fixed centre line."),
    target: float | None = typer.Option(None, "--target", help="Target line."),
    agg: str = typer.Option(
        "mean", "--agg", help="mean, median, sum or sd of the records per x (run and I charts)."
    ),
    method: str = typer.Option("anhoej", "--method", help="anhoej, bestbox or cutbox."),
    no_screen_mr: bool = typer.Option(
        False, "--no-screen-mr", help="Keep large moving ranges when estimating sigma."
    ),
    rules: list[str] | None = typer.Option(
        None, "--rules", help="Extra rule sets: western_electric, nelson, nhs."
    ),
    improvement: str | None = typer.Option(
        None, "--improvement", help="up or down: which direction is better (nhs rules)."
    ),
    title: str | None = typer.Option(None, "--title", help="Chart title."),
    out: Path | None = typer.Option(
        None, "--out", help="Write the chart to this .png or .svg file."
    ),
    fmt: str = typer.Option(
        "table",
        "--format",
        help="table (summary per part), json (summary and points), csv (points).",
    ),
) -> None:
    """Make a run or control chart and print its summary per part.

    Long because a Typer command declares each of its many documented options in its
    signature; the body only checks them and calls the chart.
    """
    from careloop.analysis import spc
    from careloop.analysis.caveats import StatisticalWarning

    if chart not in _CHARTS:
        raise InputError(f"--chart must be one of {', '.join(_CHARTS)}; got {chart!r}.")
    if agg not in spc.AGGREGATES:
        raise InputError(f"--agg must be one of {', '.join(spc.AGGREGATES)}; got {agg!r}.")
    if fmt not in _FORMATS:
        raise InputError(f"--format must be table, json or csv; got {fmt!r}.")
    if out is not None and out.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--out must end in .png or .svg; got {out.name!r}.")
    frozen: Any = None
    if freeze:
        parsed = [None if p.strip().lower() in ("", "none") else int(p) for p in freeze.split(",")]
        frozen = parsed[0] if len(parsed) == 1 else parsed
    data = read_csv_input(input)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        result = spc.qic(
            y,
            x=x,
            n=n,
            data=data,
            chart=chart,  # type: ignore[arg-type]
            part=_positions(part, "--part"),
            freeze=frozen,
            exclude=_positions(exclude, "--exclude"),
            part_at=_labels(part_at),
            freeze_until=freeze_until,
            exclude_x=_x_labels(_labels(exclude_x), data, x),
            multiply=multiply,
            cl=cl,
            target=target,
            agg=agg,  # type: ignore[arg-type]
            method=method,  # type: ignore[arg-type]
            screen_mr=not no_screen_mr,
            rules=["anhoej", *(_labels(rules) or [])],  # type: ignore[list-item]
            improvement=improvement,  # type: ignore[arg-type]
            title=title,
        )
    for w in caught:
        err_console.print(f"Warning: {w.message}", markup=False, highlight=False)
    if out is not None:
        _render(result, out)
    summary = result.summary()
    if fmt == "json":
        print_json(
            {
                "chart": result.chart_type,
                "summary": summary.to_dict(orient="records"),
                "points": result.points.to_dict(orient="records"),
                **({"figure": str(out)} if out is not None else {}),
            }
        )
    elif fmt == "csv":
        frame_to_csv(result.points, sys.stdout)
    else:
        # One column per part reads better in a terminal than 15 narrow columns.
        table = summary.set_index("part").T
        table.columns = [f"part {p}" for p in table.columns]
        table = table.map(_cell).reset_index(names="")
        print_frame(table, fmt="table", title=f"{chart.upper()} chart of {y}")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.6g}"
    return "" if value is None else str(value)


def _x_labels(values: list[str] | None, data: Any, x: str | None) -> list[Any] | None:
    """--exclude-x values typed like the x column (numbers stay numbers)."""
    if values is None or x is None or x not in data.columns:
        return values
    import pandas as pd

    if pd.api.types.is_numeric_dtype(data[x]):
        try:
            return [float(v) for v in values]
        except ValueError:
            raise InputError(f"--exclude-x values must be numbers like the {x!r} column.") from None
    return values


def _render(result: Any, out: Path) -> None:
    from careloop.charts import spc as spc_charts

    try:
        if out.suffix.lower() == ".png":
            spc_charts.png(result, out)
        else:
            spc_charts.svg(result, out)
    except (ImportError, NotImplementedError) as exc:
        raise NotBuilt(
            f"Could not write {str(out)!r}: chart rendering is not available ({exc}). "
            "Run without --out to get the numbers."
        ) from exc
    err_console.print(f"Chart written to {out}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``spc`` to ``careloop analyse``."""
    app.command("spc", help="Statistical process control: a run or control chart of a CSV file.")(
        spc_command
    )
