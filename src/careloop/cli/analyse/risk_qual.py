"""`careloop analyse risk …` and `careloop analyse qual …`.

risk samplesize   Riley et al.'s minimum sample size from options.
risk fit          Fit and validate a penalised logistic risk model from a CSV.
qual kappa        Cohen's kappa of two coders from a CSV.
qual alpha        Krippendorff's alpha from a CSV of codings.
qual frequencies  Code frequencies from a REFI-QDA project (.qdpx).
qual agreement    Per-code agreement between coders in a REFI-QDA project.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import typer

from careloop.cli.csv_input import read_csv_input
from careloop.cli.output import err_console, print_frame, print_json
from careloop.core.errors import InputError

_FORMATS = ("table", "json")

risk_app = typer.Typer(help="Risk prediction with few events.", no_args_is_help=True)
qual_app = typer.Typer(
    help="Qualitative analysis: agreement and code counts.", no_args_is_help=True
)


def _check_format(fmt: str, allowed: tuple[str, ...] = _FORMATS) -> None:
    if fmt not in allowed:
        raise InputError(f"--format must be one of {', '.join(allowed)}; got {fmt!r}.")


def _columns(value: str, option: str) -> list[str]:
    cols = [c.strip() for c in value.split(",") if c.strip()]
    if not cols:
        raise InputError(f"{option} needs column names separated by commas.")
    return cols


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        err_console.print(f"Warning: {w.message}", markup=False, highlight=False)


def _num(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return value


# --- risk --------------------------------------------------------------------------


@risk_app.command("samplesize")
def samplesize_command(
    outcome: str = typer.Option(..., "--outcome", help="binary, survival or continuous."),
    parameters: int = typer.Option(..., "--parameters", help="Candidate predictor parameters."),
    prevalence: float | None = typer.Option(
        None, "--prevalence", help="Binary: outcome proportion."
    ),
    r2_cox_snell: float | None = typer.Option(
        None, "--r2-cox-snell", help="Anticipated Cox-Snell R²."
    ),
    r2_nagelkerke: float | None = typer.Option(
        None, "--r2-nagelkerke", help="Anticipated Nagelkerke R²."
    ),
    c_statistic: float | None = typer.Option(None, "--c-statistic", help="Binary: C statistic."),
    shrinkage: float = typer.Option(0.9, "--shrinkage", help="Target shrinkage factor."),
    rate: float | None = typer.Option(None, "--rate", help="Survival: event rate per time unit."),
    timepoint: float | None = typer.Option(None, "--timepoint", help="Survival: time of interest."),
    meanfup: float | None = typer.Option(None, "--meanfup", help="Survival: mean follow-up."),
    intercept: float | None = typer.Option(None, "--intercept", help="Continuous: mean outcome."),
    sd: float | None = typer.Option(None, "--sd", help="Continuous: SD of the outcome."),
    r2: float | None = typer.Option(None, "--r2", help="Continuous: anticipated R²."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Minimum sample size to develop a prediction model (Riley et al.)."""
    from careloop.analysis.risk import minimum_sample_size

    _check_format(fmt)
    result = minimum_sample_size(
        outcome=outcome,  # type: ignore[arg-type]
        parameters=parameters,
        prevalence=prevalence,
        r2_cox_snell=r2_cox_snell,
        r2_nagelkerke=r2_nagelkerke,
        c_statistic=c_statistic,
        shrinkage=shrinkage,
        rate=rate,
        timepoint=timepoint,
        meanfup=meanfup,
        intercept=intercept,
        sd=sd,
        r2=r2,
    )
    if fmt == "json":
        print_json(result.to_dict())
        return
    import pandas as pd

    rows = [
        {"criterion": c.number, "requirement": c.name, "n": c.n, "shrinkage": f"{c.shrinkage:.3f}"}
        for c in result.criteria
    ]
    rows.append(
        {
            "criterion": "final",
            "requirement": f"criterion {result.decided_by} decides",
            "n": result.n,
            "shrinkage": f"{result.expected_shrinkage:.3f}",
        }
    )
    print_frame(pd.DataFrame(rows), title="Minimum sample size (Riley et al.)")
    typer.echo(result.summary())


@risk_app.command("fit")
def fit_command(
    input: Path = typer.Option(..., "--input", help="CSV file, one row per patient."),
    outcome: str = typer.Option(..., "--outcome", help="Outcome column coded 0/1."),
    predictors: str = typer.Option(..., "--predictors", help="Predictor columns, comma-separated."),
    penalty: str = typer.Option(
        "ridge", "--penalty", help="ridge, lasso, elasticnet, firth, none."
    ),
    n_bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap replicates (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    save: Path | None = typer.Option(None, "--save", help="Write the model as JSON here."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Fit a penalised logistic risk model and validate it by the bootstrap."""
    from careloop.analysis.risk import fit_risk_model
    from careloop.analysis.risk.models import EventsPerParameterWarning

    _check_format(fmt)
    data = read_csv_input(input)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EventsPerParameterWarning)
        model = fit_risk_model(
            data,
            outcome=outcome,
            predictors=_columns(predictors, "--predictors"),
            penalty=penalty,  # type: ignore[arg-type]
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    _show_warnings(caught)
    if save is not None:
        save.write_text(json.dumps(model.to_dict(), indent=2), encoding="utf-8")
        err_console.print(f"Model written to {save}", markup=False, highlight=False)
    if fmt == "json":
        print_json(model.to_dict())
        return
    import pandas as pd

    coefs = pd.DataFrame(
        {
            "term": ["(intercept)", *model.feature_names],
            "log_odds": [_num(b) for b in (model.intercept, *model.coefficients)],
        }
    )
    print_frame(coefs, title=f"{model.penalty} logistic model for {model.outcome}")
    perf = pd.DataFrame(
        [
            {
                "metric": m.name,
                "apparent": _num(m.apparent),
                "optimism": _num(m.optimism),
                "corrected": _num(m.corrected),
            }
            for m in model.validation
        ]
    )
    print_frame(perf, title="Internal validation (bootstrap optimism correction)")
    typer.echo(model.summary())


# --- qual ----------------------------------------------------------------------------


@qual_app.command("kappa")
def kappa_command(
    input: Path = typer.Option(..., "--input", help="CSV with one row per unit."),
    a: str = typer.Option(..., "--a", help="Column of the first coder's codes."),
    b: str = typer.Option(..., "--b", help="Column of the second coder's codes."),
    weights: str | None = typer.Option(None, "--weights", help="linear or quadratic (ordinal)."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Cohen's kappa between two coders, with a 95% CI."""
    from dataclasses import asdict

    from careloop.analysis.qualitative import cohen_kappa

    _check_format(fmt)
    data = read_csv_input(input)
    missing = [c for c in (a, b) if c not in data.columns]
    if missing:
        raise InputError(f"Column(s) not in {input.name}: {', '.join(missing)}.")
    result = cohen_kappa(list(data[a]), list(data[b]), weights=weights)  # type: ignore[arg-type]
    if fmt == "json":
        print_json({**asdict(result), "summary": result.summary()})
        return
    import pandas as pd

    print_frame(
        pd.DataFrame(
            [
                {
                    "kappa": _num(result.kappa),
                    "ci_low": _num(result.ci_low),
                    "ci_high": _num(result.ci_high),
                    "se": _num(result.se),
                    "p": _num(result.p),
                    "units": result.n,
                }
            ]
        ),
        title="Cohen's kappa",
    )
    typer.echo(result.summary())


@qual_app.command("alpha")
def alpha_command(
    input: Path = typer.Option(..., "--input", help="CSV of codings."),
    level: str = typer.Option("nominal", "--level", help="nominal, ordinal, interval, ratio."),
    unit: str | None = typer.Option(None, "--unit", help="Long CSV: unit column."),
    coder: str | None = typer.Option(None, "--coder", help="Long CSV: coder column."),
    value: str | None = typer.Option(None, "--value", help="Long CSV: value column."),
    coders: str | None = typer.Option(
        None, "--coders", help="Wide CSV (one row per unit): the coder columns, comma-separated."
    ),
    n_boot: int = typer.Option(1000, "--bootstrap", help="Bootstrap replicates for the CI."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Krippendorff's alpha for any number of coders, missing codes allowed."""
    from dataclasses import asdict

    from careloop.analysis.qualitative import krippendorff_alpha

    _check_format(fmt)
    data = read_csv_input(input)
    if coders is not None:
        cols = _columns(coders, "--coders")
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise InputError(f"Column(s) not in {input.name}: {', '.join(missing)}.")
        result = krippendorff_alpha(
            data[cols],
            level=level,  # type: ignore[arg-type]
            layout="units_by_coders",
            n_boot=n_boot,
        )
    elif unit and coder and value:
        result = krippendorff_alpha(
            data,
            level=level,  # type: ignore[arg-type]
            unit=unit,
            coder=coder,
            value=value,
            n_boot=n_boot,
        )
    else:
        raise InputError(
            "Say how the CSV is laid out: --coders c1,c2,... (one row per unit) or "
            "--unit, --coder and --value (one row per coding)."
        )
    if fmt == "json":
        print_json({**asdict(result), "summary": result.summary()})
        return
    import pandas as pd

    print_frame(
        pd.DataFrame(
            [
                {
                    "alpha": _num(result.alpha),
                    "ci_low": _num(result.ci_low),
                    "ci_high": _num(result.ci_high),
                    "level": result.level,
                    "units": result.n_units,
                    "coders": result.n_coders,
                }
            ]
        ),
        title="Krippendorff's alpha",
    )
    typer.echo(result.summary())


@qual_app.command("frequencies")
def frequencies_command(
    project: Path = typer.Option(..., "--project", help="REFI-QDA project (.qdpx)."),
    by: str = typer.Option("document", "--by", help="document, speaker or a metadata field."),
    coder: str | None = typer.Option(None, "--coder", help="One coder only."),
    descendants: bool = typer.Option(False, "--descendants", help="Count child codes for parents."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """How often each code was applied, by document, speaker or metadata field."""
    from careloop.analysis.qualitative import code_frequencies, read_qdpx

    _check_format(fmt, ("table", "csv", "json"))
    table = code_frequencies(
        read_qdpx(project), by=by, coder=coder, include_descendants=descendants
    )
    print_frame(table, fmt=fmt, title=f"Code frequencies by {by}")  # type: ignore[arg-type]


@qual_app.command("agreement")
def agreement_command(
    project: Path = typer.Option(..., "--project", help="REFI-QDA project (.qdpx)."),
    unit: str = typer.Option("turn", "--unit", help="turn or document."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """Agreement between coders on applying each code (kappa, alpha)."""
    from careloop.analysis.qualitative import agreement_by_code, read_qdpx

    _check_format(fmt, ("table", "csv", "json"))
    if unit not in ("turn", "document"):
        raise InputError(f"--unit must be turn or document; got {unit!r}.")
    table = agreement_by_code(read_qdpx(project), unit=unit)  # type: ignore[arg-type]
    if fmt == "table":
        table = table.map(_num)
    print_frame(table, fmt=fmt, title=f"Agreement per code (unit: {unit})")  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    """Add ``risk`` and ``qual`` to ``careloop analyse``."""
    app.add_typer(risk_app, name="risk")
    app.add_typer(qual_app, name="qual")
