"""Statistical process control: run and control charts modelled on qicharts2.

:func:`qic` follows Jacob Anhøj's R package qicharts2 (``qicharts2::qic``) so
that an analyst moving from R gets the same numbers from the same call. The
result is an :class:`SpcChart`: one row per point in :attr:`SpcChart.points`
and one row per part (phase) in :meth:`SpcChart.summary`. :func:`qic_by` makes
one chart per site (small multiples).

The limits of each chart type are in :mod:`careloop.analysis.spc.limits`, the
runs analysis in :mod:`careloop.analysis.spc.runs` and the optional rule sets
in :mod:`careloop.analysis.spc.rules`. Charts are drawn by
:mod:`careloop.charts.spc` (``charts.spc.figure(chart)``, ``charts.spc.svg(chart)``):
computing a chart never needs a plotting library.

Parts, freeze and exclude (all positions are 1-based and count the subgroups
after x is sorted and aggregated):

* ``part=[k, ...]``: a new part (phase) starts after point k; each part has its
  own centre line, limits and runs analysis (as qicharts2).
* ``exclude=[i, ...]``: points left out of every calculation (centre line,
  sigma, runs analysis) but still plotted, with limits, and still tested
  against the limits.
* ``freeze=k``: points 1..k are the baseline; a part's centre line and sigma
  come from its baseline points. Inside parts (qicharts2 ignores freeze when
  part is given, issue #20): a part that contains baseline points uses only
  those; a part that starts after point k has no frozen baseline and uses all
  its own points. ``freeze=[k1, k2, ...]`` instead gives, per part, how many of
  its first points form its baseline (``None`` or 0: all).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from careloop.analysis._frames import require_columns
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.spc import rules as spc_rules
from careloop.analysis.spc.data import (
    AGGREGATES,
    Aggregate,
    Subgroups,
    aggregate,
    check_aggregate,
    column,
    is_categorical,
    numeric_column,
    parse_dates,
    per_point,
    positions,
    x_positions,
)
from careloop.analysis.spc.limits import CHART_FUNCTIONS, PartData, PartLimits
from careloop.analysis.spc.rules import Improvement, RuleSet
from careloop.analysis.spc.runs import RunsMethod, analyse_runs
from careloop.core.errors import InputError

__all__ = [
    "AGGREGATES",
    "CHART_TYPES",
    "POINT_COLUMNS",
    "Aggregate",
    "ChartType",
    "FewPointsWarning",
    "Improvement",
    "NoVariationWarning",
    "RuleSet",
    "RunsMethod",
    "SpcChart",
    "SpcFacets",
    "SpcWarning",
    "ZeroDenominatorWarning",
    "qic",
    "qic_by",
]

ChartType = Literal["run", "i", "mr", "xbar", "s", "t", "p", "pp", "c", "u", "up", "g"]
"""The chart types of ``qicharts2::qic`` (``pp``/``up`` are Laney's P′/U′)."""

CHART_TYPES: tuple[str, ...] = ("run", "i", "mr", "xbar", "s", "t", "p", "pp", "c", "u", "up", "g")

POINT_COLUMNS: tuple[str, ...] = (
    "x",
    "y",
    "n",
    "cl",
    "ucl",
    "lcl",
    "part",
    "include",
    "sigma_signal",
    "runs_signal",
    "longest_run",
    "longest_run_max",
    "n_crossings",
    "n_crossings_min",
)
"""Columns every :attr:`SpcChart.points` frame has, in this order (more follow)."""

_NEEDS_N = frozenset({"p", "pp", "u", "up"})
_RAW_SUBGROUPS = frozenset({"xbar", "s"})


class SpcWarning(StatisticalWarning):
    """Base of the statistical caveats :func:`qic` raises as warnings."""


class FewPointsWarning(SpcWarning):
    """A part has fewer than 10 useful points: runs analysis has little power,
    or (with fewer than two baseline points) limits cannot be estimated."""


class NoVariationWarning(SpcWarning):
    """All baseline values are equal: sigma is 0 and the limits sit on the centre line."""


class ZeroDenominatorWarning(SpcWarning):
    """A subgroup has a zero denominator; it is treated as missing."""


@dataclass(frozen=True)
class SpcChart:
    """A run or control chart: its points, limits, phases and signals.

    Frozen: derive a new chart with :func:`qic` rather than editing one.
    """

    chart_type: str
    """One of :data:`CHART_TYPES`."""
    points: pd.DataFrame
    """One row per point, sorted by x; the columns of :data:`POINT_COLUMNS`
    (``part`` is 1-based, ``include`` is False for excluded points, the run
    statistics are those of the point's part), plus ``target`` when a target
    was given and the rule-set columns when other rule sets are on."""
    title: str | None = None
    """Chart title (as ``qic(title=...)``)."""
    ylab: str | None = None
    """Label of the y axis."""
    xlab: str | None = None
    """Label of the x axis."""
    multiply: float = 1
    """Factor the y values, centre lines and limits were multiplied by (e.g. 100 for percent)."""
    method: str = "anhoej"
    """Runs analysis method: ``"anhoej"`` (qicharts2's default) or ``"bestbox"``/``"cutbox"``."""
    target: float | None = None
    """Target value (already multiplied), if one was given."""
    options: dict[str, Any] = field(default_factory=dict)
    """The options the chart was made with (freeze, exclude, rules, improvement, …)."""

    def summary(self) -> pd.DataFrame:
        """One row per part: its size, runs analysis, limits and signals.

        Columns: part, n_obs, n_useful, longest_run, longest_run_max,
        n_crossings, n_crossings_min, runs_signal, lcl, cl, ucl (those of the
        last point of the part), alcl and aucl (the mean limits, qicharts2's
        aLCL/aUCL), sigma_signal (the number of points outside the limits, as
        qicharts2 counts them), and ``variation``/``assurance`` when the Making
        Data Count rules are on.
        """
        pts = self.points
        mdc = "variation" in pts.columns
        improvement = self.options.get("improvement")
        rows = []
        for _, grp in pts.groupby("part", sort=True):
            last = grp.iloc[-1]
            row: dict[str, Any] = {
                "part": int(last["part"]),
                "n_obs": int(last["n_obs"]) if "n_obs" in grp else len(grp),
                "n_useful": int(last["n_useful"]) if "n_useful" in grp else len(grp),
                "longest_run": last["longest_run"],
                "longest_run_max": last["longest_run_max"],
                "n_crossings": last["n_crossings"],
                "n_crossings_min": last["n_crossings_min"],
                "runs_signal": bool(last["runs_signal"]),
                "lcl": last["lcl"],
                "cl": last["cl"],
                "ucl": last["ucl"],
                "alcl": grp["lcl"].mean(),
                "aucl": grp["ucl"].mean(),
                "sigma_signal": int(grp["sigma_signal"].sum()),
            }
            if mdc:
                analysed = grp["variation"].dropna()
                row["variation"] = analysed.iloc[-1] if len(analysed) else None
                row["assurance"] = (
                    spc_rules.assurance_class(
                        float(last["lcl"]), float(last["ucl"]), float(self.target), improvement
                    )
                    if self.target is not None and improvement is not None
                    else None
                )
            rows.append(row)
        return pd.DataFrame(rows)


# --- the chart -----------------------------------------------------------------


def qic(
    y: Any,
    *,
    x: Any = None,
    n: Any = None,
    data: pd.DataFrame | None = None,
    chart: ChartType = "run",
    part: Sequence[int] | int | None = None,
    freeze: int | Sequence[int | None] | None = None,
    exclude: Sequence[int] | int | None = None,
    multiply: float = 1,
    cl: float | Sequence[float] | None = None,
    target: float | Sequence[float] | None = None,
    agg: Aggregate = "mean",
    method: RunsMethod = "anhoej",
    screen_mr: bool = True,
    part_at: Any = None,
    freeze_until: Any = None,
    exclude_x: Any = None,
    rules: Sequence[RuleSet] = ("anhoej",),
    improvement: Improvement | None = None,
    title: str | None = None,
    ylab: str | None = None,
    xlab: str | None = None,
) -> SpcChart:
    """A run or control chart with its runs analysis, as ``qicharts2::qic``.

    Long because it documents over twenty options, most of them qicharts2's qic() ones,
    and checks them and places the parts, freezes and exclusions before _compute draws
    the chart.

    Args:
        y: Values (numerators with ``n``), or the name of a column of ``data``.
            Several values with the same x are one subgroup: aggregated with
            ``agg`` (run/I charts), summed (with ``n``, or for C charts), or
            used as the subgroup (Xbar/S charts).
        x: Subgroup labels (numbers, dates or text); default 1..len(y). The
            chart is sorted by x. Text x has no time order: no runs analysis.
        n: Denominators (P, P′, U, U′ charts), or a column name.
        data: Data frame the column names refer to.
        chart: One of run, i, mr, xbar, s, t, p, pp, c, u, up, g.
        part: Point counts after which a new part (phase) starts.
        freeze: Last point of the baseline, or per-part baseline lengths.
        exclude: 1-based positions left out of the calculations.
        multiply: Factor for y, centre line and limits (100 for percent).
        cl: Centre line fixed by the user (one value or one per value of y).
        target: Target line, on the plotted (multiplied) scale.
        agg: Aggregate for several values per subgroup of a run, I, MR, T or
            G chart: mean, median, sum or sd (qicharts2's agg.fun). A subgroup
            whose values are all missing is a gap for every choice.
        method: Runs analysis: anhoej (default), bestbox or cutbox.
        screen_mr: Drop moving ranges above 3.267 × their mean before sigma is
            estimated (I, T, P′, U′ charts), as qicharts2 does by default.
        part_at: x values at which a new part starts (instead of ``part``).
        freeze_until: Last x value of the baseline (instead of ``freeze``).
        exclude_x: x values to exclude (instead of ``exclude``).
        rules: Rule sets: ``anhoej`` (always on) plus ``western_electric``,
            ``nelson`` and ``nhs`` (Making Data Count).
        improvement: Better direction, ``up`` or ``down``, for the Making Data
            Count variation and assurance classes.
        title: Chart title. ylab: y axis label. xlab: x axis label.

    Returns:
        The chart; see :class:`SpcChart`.

    Raises:
        InputError: Unknown chart type or aggregate, missing denominators,
            positions out of range, non-numeric values, or times ≤ 0 on a T chart.

    Warns:
        FewPointsWarning, NoVariationWarning, ZeroDenominatorWarning.
    """
    if chart not in CHART_FUNCTIONS:
        raise InputError(f"Unknown chart type {chart!r}; expected one of {', '.join(CHART_TYPES)}.")
    unknown = [r for r in rules if r not in ("anhoej", "western_electric", "nelson", "nhs")]
    if unknown:
        raise InputError(
            f"Unknown rule set(s) {unknown}; expected anhoej, western_electric, nelson or nhs."
        )
    check_aggregate(agg)
    if method not in ("anhoej", "bestbox", "cutbox"):
        raise InputError(f"Unknown runs method {method!r}; expected anhoej, bestbox or cutbox.")
    if improvement not in (None, "up", "down"):
        raise InputError(f"improvement must be 'up' or 'down', not {improvement!r}.")
    if part is not None and part_at is not None:
        raise InputError("Give part or part_at, not both.")
    if freeze is not None and freeze_until is not None:
        raise InputError("Give freeze or freeze_until, not both.")

    yv: npt.NDArray[np.float64] = numeric_column(y, data, "y", None)
    length = len(yv)
    x_series = column(x, data, "x", length)
    if x_series is None:
        x_series = pd.Series(np.arange(1, length + 1), name="x")
    x_series = parse_dates(x_series)
    nv: npt.NDArray[np.float64] | None = numeric_column(n, data, "n", length)
    if chart in _NEEDS_N and nv is None:
        raise InputError(f"A {chart.upper()} chart needs denominators: pass n (column or values).")
    if nv is not None and np.any(nv[~np.isnan(nv)] < 0):
        raise InputError("Denominators (n) must not be negative.")
    categorical = is_categorical(x_series)

    groups = aggregate(
        x_series, yv, nv, per_point(cl, length, "cl"), per_point(target, length, "target"), agg
    )
    count = len(groups.x)
    if count == 0:
        raise InputError("No data: every x value is missing or y is empty.")
    if nv is not None:
        _check_denominators(groups, chart)

    if part_at is None:
        breaks = positions(part, count - 1, "part", low=1)
    else:
        # A part starting at label L follows the subgroups whose x is before L.
        breaks = x_positions(part_at, groups.x, "part_at", exact=False, before=True)
        outside = [b for b in breaks if not 0 < b < count]
        if outside:
            raise InputError(
                f"part_at {part_at!r} does not fall after the first and up to the last x value; "
                "a new part must start at an x value inside the chart."
            )
    excluded = positions(exclude, count, "exclude", low=1) + x_positions(
        exclude_x, groups.x, "exclude_x", exact=True
    )
    if freeze_until is not None:
        freeze = x_positions(freeze_until, groups.x, "freeze_until", exact=False)[0]

    pos = np.arange(1, count + 1)
    cuts = np.array(sorted({0, *breaks}))
    part_id = np.searchsorted(cuts, pos, side="left")
    include = ~np.isin(pos, excluded)
    baseline = _baseline(freeze, pos, part_id, cuts, count)

    points = _compute(
        groups,
        chart,
        part_id,
        include,
        baseline,
        screen_mr,
        categorical,
        method,
        multiply,
        rules,
        improvement,
    )
    opts: dict[str, Any] = {
        "part": [int(c) for c in cuts[1:]],
        "freeze": freeze,
        "exclude": sorted(set(excluded)),
        "agg": agg,
        "screen_mr": screen_mr,
        "rules": tuple(rules),
        "improvement": improvement,
        "categorical": categorical,
    }
    tgt = groups.target
    if not np.isnan(tgt).all():
        points["target"] = tgt
    first_target = tgt[~np.isnan(tgt)]
    return SpcChart(
        chart_type=chart,
        points=points,
        title=title,
        ylab=ylab,
        xlab=xlab,
        multiply=multiply,
        method=method,
        target=float(first_target[0]) if first_target.size else None,
        options=opts,
    )


def _check_denominators(groups: Subgroups, chart: str) -> None:
    zero = (groups.n == 0) & ~np.isnan(groups.y_sum)
    if zero.any():
        where = ", ".join(str(v) for v in groups.x[zero].head(5))
        warnings.warn(
            f"{int(zero.sum())} subgroup(s) have a zero denominator (x = {where}); "
            "they are treated as missing.",
            ZeroDenominatorWarning,
            stacklevel=3,
        )
        groups.y[zero] = np.nan
        groups.y_sum[zero] = np.nan
        groups.n[zero] = np.nan
    if chart in ("p", "pp"):
        over = groups.y_sum > groups.n
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise InputError(
                f"A proportion above 1 at x = {groups.x.iloc[i]}: numerator {groups.y_sum[i]:g} > "
                f"denominator {groups.n[i]:g}. A P chart needs numerators that count a subset "
                "of the denominator; use a U chart for rates.",
            )


def _baseline(
    freeze: int | Sequence[int | None] | None,
    pos: npt.NDArray[np.int64],
    part_id: npt.NDArray[np.int64],
    cuts: npt.NDArray[np.int64],
    count: int,
) -> npt.NDArray[np.bool_]:
    if freeze is None:
        return np.ones(count, dtype=bool)
    if isinstance(freeze, int | np.integer):
        if isinstance(freeze, bool) or not 1 <= int(freeze) <= count:
            raise InputError(f"freeze={freeze!r}: expected a position from 1 to {count}.")
        base = pos <= int(freeze)
        # A part that starts after the frozen baseline has none of its own: all its points count.
        for k in np.unique(part_id):
            in_part = part_id == k
            if not base[in_part].any():
                base[in_part] = True
        return base
    lengths = list(freeze)
    n_parts = len(cuts)
    if len(lengths) != n_parts:
        raise InputError(
            f"freeze has {len(lengths)} values but the chart has {n_parts} part(s); "
            "give one baseline length (or None) per part."
        )
    base = np.ones(count, dtype=bool)
    for k, length in enumerate(lengths, start=1):
        if length:
            in_part = part_id == k
            start = int(cuts[k - 1])
            base[in_part] = pos[in_part] <= start + int(length)
    return base


def _compute(
    g: Subgroups,
    chart: str,
    part_id: npt.NDArray[np.int64],
    include: npt.NDArray[np.bool_],
    baseline: npt.NDArray[np.bool_],
    screen_mr: bool,
    categorical: bool,
    method: RunsMethod,
    multiply: float,
    rules: Sequence[RuleSet],
    improvement: Improvement | None,
) -> pd.DataFrame:
    """Centre line, limits and signals of every point, part by part.

    Long because each part's centre line, limits, runs analysis and rule signals are
    computed from the same slices of the subgroups and collected into one frame.
    """
    count = len(g.x)
    fn = CHART_FUNCTIONS[chart]
    out = {
        k: np.full(count, np.nan)
        for k in (
            "y",
            "cl",
            "lcl",
            "ucl",
            "sigma",
            "longest_run",
            "longest_run_max",
            "n_crossings",
            "n_crossings_min",
        )
    }
    n_obs = np.zeros(count, dtype=np.int64)
    n_useful = np.zeros(count, dtype=np.int64)
    runs_signal = np.zeros(count, dtype=bool)
    extra: dict[str, npt.NDArray[Any]] = {}
    variation = np.full(count, None, dtype=object)
    starts = np.flatnonzero(np.diff(part_id, prepend=0))
    bounds = [*starts.tolist(), count]
    for k in range(len(starts)):
        sl = slice(bounds[k], bounds[k + 1])
        d = PartData(
            g.y[sl],
            g.y_sum[sl],
            g.y_len[sl],
            g.y_mean[sl],
            g.y_sd[sl],
            g.n[sl],
            g.cl[sl],
            baseline[sl] & include[sl],
            categorical,
        )
        lim = fn(d, screen_mr)
        constant = _warn_limits(chart, lim, d, k + 1)
        ys, cls = lim.y * multiply, lim.cl * multiply
        out["y"][sl], out["cl"][sl] = ys, cls
        out["lcl"][sl], out["ucl"][sl] = lim.lcl * multiply, lim.ucl * multiply
        out["sigma"][sl] = lim.sigma * abs(multiply)
        runs = analyse_runs(ys, cls, include[sl], method)
        if chart != "mr" and not categorical and not constant and runs.n_useful < 10:
            warnings.warn(
                f"Part {k + 1} has {runs.n_useful} useful point(s); the runs analysis needs "
                "about 10 or more to find shifts reliably.",
                FewPointsWarning,
                stacklevel=3,
            )
        n_obs[sl], n_useful[sl] = runs.n_obs, runs.n_useful
        out["longest_run"][sl], out["longest_run_max"][sl] = runs.longest_run, runs.longest_run_max
        out["n_crossings"][sl], out["n_crossings_min"][sl] = runs.n_crossings, runs.n_crossings_min
        runs_signal[sl] = runs.runs_signal and chart != "mr" and not categorical
        if any(r != "anhoej" for r in rules):
            _apply_rules(extra, variation, sl, count, ys, cls, out, include, rules, improvement)

    for key in ("lcl", "ucl"):
        out[key][~np.isfinite(out[key])] = np.nan
    with np.errstate(invalid="ignore"):
        sigma_signal = (out["y"] > out["ucl"]) | (out["y"] < out["lcl"])
    frame = pd.DataFrame(
        {
            "x": g.x.to_numpy(),
            "y": out["y"],
            "n": g.n,
            "cl": out["cl"],
            "ucl": out["ucl"],
            "lcl": out["lcl"],
            "part": part_id,
            "include": include,
            "sigma_signal": sigma_signal,
            "runs_signal": runs_signal,
            "longest_run": out["longest_run"],
            "longest_run_max": out["longest_run_max"],
            "n_crossings": out["n_crossings"],
            "n_crossings_min": out["n_crossings_min"],
            "n_obs": n_obs,
            "n_useful": n_useful,
            "baseline": baseline,
            "sigma": out["sigma"],
            "y_sum": g.y_sum,
            "y_length": g.y_len,
            **extra,
        },
        copy=False,
    )
    if "nhs" in rules:
        frame["variation"] = variation
    return frame


def _warn_limits(chart: str, lim: PartLimits, d: PartData, part: int) -> bool:
    """Warn when a part's limits are degenerate; True if it had no variation at all."""
    if chart in ("run", "mr"):
        return False
    values = lim.y[d.base]
    values = values[np.isfinite(values)]
    if values.size >= 2 and np.all(values == values[0]):
        warnings.warn(
            f"Part {part}: all {values.size} baseline values equal {values[0]:g}; there is no "
            "variation to estimate sigma from, so the limits collapse onto the centre line "
            "(or are left out where sigma cannot be estimated).",
            NoVariationWarning,
            stacklevel=4,
        )
        return True
    if not (np.isfinite(lim.ucl) & np.isfinite(lim.lcl)).any():
        warnings.warn(
            f"Part {part}: control limits cannot be estimated (fewer than two usable baseline "
            "points, or Xbar/S subgroups of a single value); only the centre line is drawn.",
            FewPointsWarning,
            stacklevel=4,
        )
    return False


def _apply_rules(
    extra: dict[str, npt.NDArray[Any]],
    variation: npt.NDArray[Any],
    sl: slice,
    count: int,
    ys: npt.NDArray[np.float64],
    cls: npt.NDArray[np.float64],
    out: dict[str, npt.NDArray[np.float64]],
    include: npt.NDArray[np.bool_],
    rules: Sequence[RuleSet],
    improvement: Improvement | None,
) -> None:
    # Rules look at the included, non-missing points of the part, in order.
    idx = np.arange(count)[sl][include[sl] & ~np.isnan(ys)]
    local = idx - (sl.start or 0)
    y, c, s = ys[local], cls[local], out["sigma"][idx]
    for name in rules:
        if name in spc_rules.RULE_FUNCTIONS:
            flags = spc_rules.RULE_FUNCTIONS[name](y, c, s)
            prefix = "we" if name == "western_electric" else "nelson"
            for key, val in flags.items():
                extra.setdefault(key, np.zeros(count, dtype=bool))[idx] = val
            extra.setdefault(f"{prefix}_signal", np.zeros(count, dtype=bool))[idx] = np.any(
                np.vstack(list(flags.values())), axis=0
            )
    if "nhs" in rules:
        flags, direction = spc_rules.making_data_count(y, c, s, out["lcl"][idx], out["ucl"][idx])
        special = np.any(np.vstack(list(flags.values())), axis=0)
        for key, val in flags.items():
            extra.setdefault(key, np.zeros(count, dtype=bool))[idx] = val
        extra.setdefault("mdc_signal", np.zeros(count, dtype=bool))[idx] = special
        for j, i in enumerate(idx):
            variation[i] = spc_rules.variation_class(
                bool(special[j]), float(direction[j]), improvement
            )


# --- faceting ------------------------------------------------------------------


@dataclass(frozen=True)
class SpcFacets(Mapping[str, SpcChart]):
    """One chart per group (site, measure…): a read-only mapping from group label to chart."""

    charts: dict[str, SpcChart]
    """The charts, in the order of the sorted group labels."""
    by: tuple[str, ...] = field(default=())
    """The column(s) the data were split by."""

    def __getitem__(self, key: str) -> SpcChart:
        return self.charts[key]

    def __iter__(self) -> Any:
        return iter(self.charts)

    def __len__(self) -> int:
        return len(self.charts)

    def summary(self) -> pd.DataFrame:
        """The summaries of all charts, one row per group and part, with a ``facet`` column."""
        frames = [c.summary().assign(facet=k) for k, c in self.charts.items()]
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames, ignore_index=True)
        return out[["facet", *[c for c in out.columns if c != "facet"]]]


def qic_by(df: pd.DataFrame, *, by: str | Sequence[str], y: str, **options: Any) -> SpcFacets:
    """One chart per group of ``df`` (small multiples), each as :func:`qic` would make it.

    Args:
        df: The data, one or more rows per subgroup and group.
        by: Column(s) to split by, e.g. ``"site"``; with several columns the
            labels are joined with `` / ``.
        y: Column of values; ``x``, ``n`` and every other :func:`qic` option are
            passed through (column names refer to ``df``).

    Returns:
        A mapping from group label to chart.
    """
    keys = [by] if isinstance(by, str) else list(by)
    require_columns(df, [("by", k) for k in keys])
    charts: dict[str, SpcChart] = {}
    for label, group in df.groupby(keys if len(keys) > 1 else keys[0], sort=True, observed=True):
        name = " / ".join(str(v) for v in label) if isinstance(label, tuple) else str(label)
        charts[name] = qic(y, data=group.reset_index(drop=True), **options)
    return SpcFacets(charts, tuple(keys))
