"""`careloop analyse trial|cem|rdd`: evaluation designs on CSV files.

- ``trial compare``: compare the arms of a randomised test (binary or
  continuous outcome; cluster-robust regression with ``--cluster``; Bayesian
  probability that the intervention is better for binary outcomes);
- ``trial monitor``: group-sequential boundaries and the stop/continue decision;
- ``trial sample-size``: units per arm for two proportions or two means;
- ``trial allocate``: allocate the units listed in a CSV with a seeded design;
- ``cem``: coarsened exact matching and the effect on the treated;
- ``rdd``: regression discontinuity with a density test.
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from careloop.cli.csv_input import read_csv_input
from careloop.cli.output import err_console, print_json, print_rows
from careloop.core.errors import InputError

trial_app = typer.Typer(help="Rapid-cycle randomised tests.", no_args_is_help=True)


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json; got {fmt!r}.")


def _effect_dict(e: Any) -> dict[str, Any]:
    return {
        "estimate": _num(e.estimate),
        "ci_low": _num(e.ci_low),
        "ci_high": _num(e.ci_high),
        "p": _num(e.p),
    }


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _cells(e: Any) -> list[str]:
    p = "n/a" if math.isnan(e.p) else ("<0.001" if e.p < 0.001 else f"{e.p:.3f}")
    return [f"{e.estimate:.4g}", f"{e.ci_low:.4g} to {e.ci_high:.4g}", p]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Caveats are part of each report, so their warnings are not printed again."""
    from careloop.analysis.caveats import StatisticalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        yield


# ----------------------------------------------------------------- trial


@trial_app.command("compare")
def trial_compare(
    input: Path = typer.Option(..., "--input", help="CSV file, one row per randomised unit."),
    outcome: str = typer.Option(..., "--outcome", help="Outcome column (0/1 or numeric)."),
    arm: str = typer.Option(..., "--arm", help="Arm column (two arms)."),
    intervention: str | None = typer.Option(
        None, "--intervention", help="Label of the intervention arm (default: the later label)."
    ),
    outcome_type: str = typer.Option(
        "auto", "--type", help="binary, continuous or auto (binary if the outcome is 0/1)."
    ),
    cluster: str | None = typer.Option(
        None, "--cluster", help="Cluster column: report a regression with cluster-robust errors."
    ),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Compare two arms: difference and ratio with 95% CI (and Bayes for binary outcomes).

    Long because it is one command: its options, the checks of the input columns and the
    report of each outcome kind read in the order the user meets them.
    """
    from careloop.analysis import trials

    _check_format(fmt)
    df = read_csv_input(input)
    for col in (outcome, arm):
        if col not in df.columns:
            raise InputError(f"Column {col!r} not in {input.name}.")
    data = df[[outcome, arm, *([cluster] if cluster else [])]].dropna()
    labels = sorted(data[arm].astype(str).unique())
    if len(labels) != 2:
        raise InputError(f"--arm {arm!r} must hold exactly two arms; found {labels}.")
    data = data.assign(**{arm: data[arm].astype(str)})
    b = intervention if intervention is not None else labels[1]
    if b not in labels:
        raise InputError(f"--intervention {b!r} is not one of the arms {labels}.")
    a = labels[0] if labels[1] == b else labels[1]
    y = data[outcome]
    if outcome_type == "auto":
        outcome_type = "binary" if set(y.unique()) <= {0, 1} else "continuous"
    out: dict[str, Any] = {"intervention": b, "comparator": a, "outcome": outcome}
    rows: list[list[str]] = []
    text: list[str] = []
    if outcome_type == "binary":
        if not set(y.unique()) <= {0, 1}:
            raise InputError(f"--type binary needs a 0/1 outcome; {outcome!r} has other values.")
        x1, n1 = int(y[data[arm] == b].sum()), int((data[arm] == b).sum())
        x0, n0 = int(y[data[arm] == a].sum()), int((data[arm] == a).sum())
        comp = trials.compare_proportions(x1, n1, x0, n0)
        bayes = trials.probability_better(x1, n1, x0, n0)
        out |= {
            "events": [x1, x0],
            "n": [n1, n0],
            "risk_difference": _effect_dict(comp.difference),
            "risk_ratio": _effect_dict(comp.ratio),
            "probability_better": bayes.probability_better,
            "caveats": list(comp.caveats),
        }
        rows += [
            ["risk difference", *_cells(comp.difference)],
            ["risk ratio", *_cells(comp.ratio)],
        ]
        text += [comp.summary((b, a)), bayes.summary((b, a))]
    elif outcome_type == "continuous":
        comp_m = trials.compare_means(y[data[arm] == b].tolist(), y[data[arm] == a].tolist())
        out |= {
            "n": list(comp_m.n),
            "mean": list(comp_m.mean),
            "difference": _effect_dict(comp_m.difference),
            "ratio": _effect_dict(comp_m.ratio),
        }
        rows += [["difference in means", *_cells(comp_m.difference)]]
        rows += [["ratio of means", *_cells(comp_m.ratio)]]
        text.append(comp_m.summary((b, a)))
    else:
        raise InputError(f"--type must be binary, continuous or auto; got {outcome_type!r}.")
    if cluster:
        with _quiet():
            reg = trials.regression(
                data,
                outcome=outcome,
                arm=arm,
                intervention=b,
                cluster=cluster,
                family="binomial" if outcome_type == "binary" else "gaussian",
            )
        out["regression"] = _effect_dict(reg.effect) | {
            "scale": reg.scale,
            "n_clusters": reg.n_clusters,
        }
        rows.append([f"regression ({reg.scale}, clustered)", *_cells(reg.effect)])
        text.append(reg.summary())
    if fmt == "json":
        print_json(out)
        return
    sys.stdout.write("\n".join(text) + "\n")
    print_rows(["effect", "estimate", "95% CI", "p"], rows, title=f"{b} vs {a}")


@trial_app.command("monitor")
def trial_monitor(
    z: list[float] = typer.Option(
        [], "--z", help="Observed z statistic at each look so far (repeat)."
    ),
    looks: int | None = typer.Option(None, "--looks", help="Planned, equally spaced looks."),
    information: str | None = typer.Option(
        None, "--information", help="Information fractions, comma-separated, e.g. 0.3,0.7,1."
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Overall two-sided alpha."),
    kind: str = typer.Option("obf-spending", "--kind", help="obf-spending or obrien-fleming."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Group-sequential boundaries (O'Brien–Fleming-type alpha spending) and a decision."""
    from careloop.analysis import trials

    _check_format(fmt)
    if kind not in ("obf-spending", "obrien-fleming"):
        raise InputError(f"--kind must be obf-spending or obrien-fleming; got {kind!r}.")
    if information:
        try:
            info: Any = [float(v) for v in information.split(",")]
        except ValueError as exc:
            raise InputError(f"--information must be numbers separated by commas: {exc}") from exc
    elif looks:
        info = looks
    else:
        raise InputError("Give --looks or --information.")
    bounds = trials.sequential_boundaries(info, alpha=alpha, kind=kind)  # type: ignore[arg-type]
    result = trials.monitor(z, bounds.information, alpha=alpha, kind=kind) if z else None  # type: ignore[arg-type]
    table = bounds.table()
    if fmt == "json":
        data: dict[str, Any] = {"boundaries": table.to_dict(orient="records")}
        if result is not None:
            data |= {
                "z": list(result.z),
                "decision": result.decision,
                "stopped_at": result.stopped_at,
            }
        print_json(data)
        return
    print_rows(
        ["look", "information", "z boundary", "nominal p", "alpha spent"],
        [
            [
                str(r.look),
                f"{r.information:.3f}",
                f"{r.z_boundary:.3f}",
                f"{r.nominal_p:.5f}",
                f"{r.alpha_spent:.5f}",
            ]
            for r in table.itertuples()
        ],
        title=f"Boundaries ({kind}, two-sided alpha {alpha})",
    )
    if result is not None:
        sys.stdout.write(result.summary() + "\n")


@trial_app.command("sample-size")
def trial_sample_size(
    p0: float | None = typer.Option(None, "--p0", help="Comparator proportion (binary outcome)."),
    p1: float | None = typer.Option(None, "--p1", help="Intervention proportion."),
    difference: float | None = typer.Option(None, "--difference", help="Difference in means."),
    sd: float | None = typer.Option(None, "--sd", help="Standard deviation (continuous outcome)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
    power: float = typer.Option(0.8, "--power", help="Power."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Units per arm for two proportions (--p0/--p1) or two means (--difference/--sd)."""
    from careloop.analysis import trials

    _check_format(fmt)
    if p0 is not None and p1 is not None:
        res = trials.sample_size_proportions(p0, p1, alpha=alpha, power=power)
    elif difference is not None and sd is not None:
        res = trials.sample_size_means(difference, sd, alpha=alpha, power=power)
    else:
        raise InputError("Give --p0 and --p1 (proportions) or --difference and --sd (means).")
    if fmt == "json":
        print_json(
            {
                "n_per_arm": res.n_per_arm,
                "total": res.total,
                "n_exact": res.n_exact,
                "method": res.method,
            }
        )
        return
    sys.stdout.write(res.summary() + "\n")


@trial_app.command("allocate")
def trial_allocate(
    input: Path = typer.Option(..., "--input", help="CSV with one row per unit, in arrival order."),
    unit: str = typer.Option(..., "--unit-id", help="Column with the unit identifier."),
    arms: str = typer.Option(
        ..., "--arms", help="Arm labels, comma-separated; first = comparator."
    ),
    seed: int = typer.Option(..., "--seed", help="Seed of the allocation sequence."),
    name: str = typer.Option("trial", "--name", help="Trial name (part of the sequence's seed)."),
    allocation: str = typer.Option("blocks", "--allocation", help="simple, blocks or stratified."),
    strata: list[str] = typer.Option([], "--stratum", help="Stratification column (repeat)."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Allocate the listed units; prints each unit's arm (and, as JSON, the storable record)."""
    from careloop.analysis import trials

    _check_format(fmt)
    df = read_csv_input(input)
    for col in (unit, *strata):
        if col not in df.columns:
            raise InputError(f"Column {col!r} not in {input.name}.")
    design = trials.TrialDesign(
        name=name,
        arms=tuple(a.strip() for a in arms.split(",") if a.strip()),
        seed=seed,
        allocation=allocation,  # type: ignore[arg-type]
        strata=tuple(strata),
    )
    alloc = trials.Allocator(design)
    rows = []
    for rec in df.to_dict(orient="records"):
        s = {k: rec[k] for k in strata} if strata else None
        got = alloc.assign(str(rec[unit]), s)
        rows.append([got.unit_id, got.arm, got.stratum])
    if fmt == "json":
        print_json(alloc.to_dict())
        return
    print_rows(["unit", "arm", "stratum"], rows, title=f"Allocation ({design.allocation})")


# ----------------------------------------------------------------- cem


def _parse_cutpoints(specs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name or not value:
            raise InputError(f"--cutpoints takes NAME=N, NAME=rule or NAME=a,b,c; got {spec!r}.")
        if "," in value:
            try:
                out[name] = [float(v) for v in value.split(",")]
            except ValueError as exc:
                raise InputError(f"Bad cut points in {spec!r}: {exc}") from exc
        elif value.isdigit():
            out[name] = int(value)
        else:
            out[name] = value
    return out


def _parse_grouping(specs: list[str]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name or not value:
            raise InputError(f"--group takes NAME=a|b;c|d (groups split by ';'); got {spec!r}.")
        out.setdefault(name, []).extend(
            [[v.strip() for v in g.split("|") if v.strip()] for g in value.split(";") if g.strip()]
        )
    return out


def cem_command(
    input: Path = typer.Option(..., "--input", help="CSV file, one row per unit."),
    treatment: str = typer.Option(..., "--treatment", help="Treatment column (two values)."),
    drop: list[str] = typer.Option([], "--drop", help="Column not to match on (repeat)."),
    outcome: str | None = typer.Option(
        None,
        "--outcome",
        help="Outcome column: estimate the effect on the treated (not matched on).",
    ),
    adjust: list[str] = typer.Option([], "--adjust", help="Covariate for the effect regression."),
    cutpoints: list[str] = typer.Option(
        [], "--cutpoints", help="NAME=N cut points, NAME=sturges|scott|fd or NAME=a,b,c (repeat)."
    ),
    group: list[str] = typer.Option([], "--group", help="Group categories: NAME=a|b;c|d (repeat)."),
    k2k: bool = typer.Option(
        False, "--k2k", help="Prune strata to equal numbers (1:1 within strata)."
    ),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Coarsened exact matching; with --outcome, the average effect on the treated."""
    from careloop.analysis.matching import cem

    _check_format(fmt)
    df = read_csv_input(input)
    drops = list(dict.fromkeys([*drop, *([outcome] if outcome else [])]))
    with _quiet():
        res = cem(
            df,
            treatment=treatment,
            drop=drops,
            cutpoints=_parse_cutpoints(cutpoints) or None,
            grouping=_parse_grouping(group) or None,
            k2k=k2k,
        )
        effect = res.att(outcome, adjust) if outcome else None
    if fmt == "json":
        data: dict[str, Any] = {
            "n_treated": res.n_treated,
            "n_control": res.n_control,
            "n_matched_treated": res.n_matched_treated,
            "n_matched_control": res.n_matched_control,
            "n_strata": res.n_strata,
            "l1_before": _num(res.l1_before),
            "l1_after": _num(res.l1_after),
            "breaks": res.breaks,
            "caveats": list(res.caveats),
        }
        if effect is not None:
            data["att"] = _effect_dict(effect)
        print_json(data)
        return
    sys.stdout.write(res.summary(outcome, adjust) + "\n")
    counts = res.counts()
    print_rows(
        ["", "control", "treated"],
        [[idx, *row] for idx, row in zip(counts.index, counts.to_numpy().tolist(), strict=True)],
        title="Matching",
    )


# ----------------------------------------------------------------- rdd


def rdd_command(
    input: Path = typer.Option(..., "--input", help="CSV file, one row per unit."),
    outcome: str = typer.Option(..., "--outcome", help="Outcome column."),
    running: str = typer.Option(..., "--running", help="Running variable (score) column."),
    cutoff: float = typer.Option(0.0, "--cutoff", help="Cut-off of the running variable."),
    fuzzy: str | None = typer.Option(None, "--fuzzy", help="Treatment received (fuzzy design)."),
    covariate: list[str] = typer.Option([], "--covariate", help="Covariate (repeat)."),
    p: int = typer.Option(1, "--p", help="Order of the local polynomial."),
    kernel: str = typer.Option("triangular", "--kernel", help="triangular, epanechnikov, uniform."),
    bwselect: str = typer.Option("mserd", "--bwselect", help="Bandwidth selector (rdrobust)."),
    h: float | None = typer.Option(None, "--h", help="Manual bandwidth."),
    density: bool = typer.Option(True, "--density/--no-density", help="Run the density test."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    out: Path | None = typer.Option(None, "--out", help="Write the RD plot to this .html file."),
) -> None:
    """Regression discontinuity (rdrobust) with a density (manipulation) test."""
    from careloop.analysis import rdd

    _check_format(fmt)
    if out is not None and out.suffix.lower() != ".html":
        raise InputError(f"--out must end in .html; got {out.name!r}.")
    df = read_csv_input(input)
    with _quiet():
        res = rdd.estimate(
            df,
            outcome=outcome,
            running=running,
            cutoff=cutoff,
            fuzzy=fuzzy,
            covariates=covariate or None,
            p=p,
            kernel=kernel,  # type: ignore[arg-type]
            bwselect=bwselect,
            h=h,
        )
        dens = res.density_test() if density else None
        if out is not None:
            from careloop.charts import rdd as rdd_charts

            # plotly.js goes into the file: the page must open on a ward PC with
            # no internet access, and must not fetch code from a third party.
            rdd_charts.figure(res).write_html(out, include_plotlyjs=True)
    if fmt == "json":
        data: dict[str, Any] = {
            "conventional": _effect_dict(res.conventional),
            "bias_corrected": _effect_dict(res.bias_corrected),
            "robust": _effect_dict(res.robust),
            "h": list(res.h),
            "b": list(res.b),
            "n_left": res.n_left,
            "n_right": res.n_right,
            "n_h_left": res.n_h_left,
            "n_h_right": res.n_h_right,
            "caveats": list(res.caveats),
        }
        if dens is not None:
            data["density_test"] = {"statistic": dens.statistic, "p": dens.p}
        print_json(data)
        return
    sys.stdout.write(res.summary() + "\n")
    print_rows(
        ["method", "estimate", "95% CI", "p"],
        [
            ["conventional", *_cells(res.conventional)],
            ["bias-corrected", *_cells(res.bias_corrected)],
            ["robust", *_cells(res.robust)],
        ],
        title="Regression discontinuity",
    )
    if dens is not None:
        sys.stdout.write(dens.summary() + "\n")
    if out is not None:
        err_console.print(f"Figure written to {out}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``trial``, ``cem`` and ``rdd`` to ``careloop analyse``."""
    app.add_typer(trial_app, name="trial", help="Rapid-cycle randomised tests.")
    app.command("cem", help="Coarsened exact matching and the effect on the treated.")(cem_command)
    app.command("rdd", help="Regression discontinuity with robust inference.")(rdd_command)
