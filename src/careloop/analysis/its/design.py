"""Input checks and the design matrix of a segmented regression model.

Used by :func:`careloop.analysis.its.segmented_regression`: :func:`validate`
turns a data frame and the options into a checked, sorted :class:`ItsSpec`
(or raises :class:`~careloop.core.errors.InputError` saying what to fix), and
:func:`design` builds the model's terms — time, a step and optional slope
change per intervention, Fourier terms, and the treated-series interactions
of a comparative ITS — with the counterfactual version of the same matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from careloop.analysis._frames import numeric_column, require_columns
from careloop.core.errors import InputError

__all__ = [
    "AUTOCORRELATION_METHODS",
    "FAMILIES",
    "MIN_POINTS_PER_SEGMENT",
    "Harmonics",
    "ItsDesign",
    "ItsSpec",
    "design",
    "validate",
]

FAMILIES: tuple[str, ...] = ("poisson", "quasipoisson", "gaussian", "binomial")
AUTOCORRELATION_METHODS: tuple[str, ...] = ("newey-west", "ar1")

MIN_POINTS_PER_SEGMENT = 8
"""Fewer points than this before or after an intervention draws a caveat
(a common rule of thumb for segmented regression; Penfold & Zhang 2013)."""


@dataclass(frozen=True)
class Harmonics:
    """Seasonality as Fourier terms: ``pairs`` sine/cosine pairs of ``column``.

    For pair k the terms are cos(2πk·x/period) and sin(2πk·x/period), as
    ``tsModel::harmonic(x, pairs, period)`` in R, used by Lopez Bernal et al.
    """

    column: str = "month"
    """Column holding the position in the cycle (e.g. month 1–12, or elapsed time)."""
    period: float = 12
    """Length of the cycle in units of ``column`` (12 for months of a year)."""
    pairs: int = 2
    """Number of sine/cosine pairs (1 ≤ pairs ≤ period / 2)."""

    def __post_init__(self) -> None:
        if not self.period > 0:
            raise InputError(f"Harmonics period must be positive, got {self.period!r}.")
        if int(self.pairs) != self.pairs or self.pairs < 1 or self.pairs > self.period / 2:
            raise InputError(
                f"Harmonics pairs must be a whole number from 1 to period/2 ({self.period / 2:g}), "
                f"got {self.pairs!r}."
            )

    @classmethod
    def parse(cls, text: str) -> Harmonics:
        """Parse ``"column:period:pairs"`` (e.g. ``"month:12:2"``), as the CLI takes it."""
        parts = text.split(":")
        if len(parts) != 3 or not parts[0]:
            raise InputError(
                f"Seasonality {text!r} is not COLUMN:PERIOD:PAIRS; for example month:12:2 "
                "(two sine/cosine pairs of the month column with a 12-month period)."
            )
        try:
            period = float(parts[1])
            pairs = int(parts[2])
        except ValueError:
            raise InputError(
                f"Seasonality {text!r}: PERIOD must be a number and PAIRS a whole number, "
                "e.g. month:12:2."
            ) from None
        return cls(column=parts[0], period=period, pairs=pairs)

    def term_names(self) -> list[str]:
        """Names of the terms: cos1…cosK, sin1…sinK (tsModel's column order)."""
        k = range(1, self.pairs + 1)
        return [f"cos{i}" for i in k] + [f"sin{i}" for i in k]

    def terms(self, values: Any) -> pd.DataFrame:
        """The Fourier terms for the values of ``column``."""
        x = np.asarray(values, dtype=float)
        out = {}
        for i in range(1, self.pairs + 1):
            out[f"cos{i}"] = np.cos(2 * np.pi * i * x / self.period)
        for i in range(1, self.pairs + 1):
            out[f"sin{i}"] = np.sin(2 * np.pi * i * x / self.period)
        return pd.DataFrame(out)

    def __str__(self) -> str:
        return f"{self.pairs} sine/cosine pair(s) of {self.column}, period {self.period:g}"


@dataclass
class ItsSpec:
    data: pd.DataFrame  # sorted, NA rows dropped, with numeric _t and _group
    outcome: str
    time: str
    interventions: list[str]
    exposure: str | None
    family: str
    trials: str | None
    seasonality: Harmonics | None
    autocorrelation: str | None
    lags: int | None
    control: str | None
    diagnostic_lags: int | None
    dated: bool
    caveats: list[str]


def validate(
    df: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    intervention: str | Sequence[str],
    exposure: str | None,
    family: str,
    trials: str | None,
    seasonality: Harmonics | None,
    autocorrelation: str | None,
    lags: int | None,
    control: str | None,
    diagnostic_lags: int | None,
) -> ItsSpec:
    """The data and options checked, in the order a reader would fix them: the
    options, the columns, the values, the time points, then each intervention."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            "segmented_regression needs a pandas DataFrame with one row per time point."
        )
    interventions = [intervention] if isinstance(intervention, str) else list(intervention)
    _check_options(family, autocorrelation, interventions)
    roles = _check_columns(df, outcome, time, interventions, exposure, trials, control, seasonality)
    _check_family_options(family, trials, exposure, autocorrelation, control, lags)
    if diagnostic_lags is not None and (
        int(diagnostic_lags) != diagnostic_lags or diagnostic_lags < 1
    ):
        raise InputError(f"diagnostic_lags must be a whole number ≥ 1; got {diagnostic_lags!r}.")

    used = list(dict.fromkeys([*roles] + ([seasonality.column] if seasonality else [])))
    data = df[used].copy()
    caveats: list[str] = []
    n_all = len(data)
    data = data.dropna()
    if len(data) < n_all:
        caveats.append(
            f"{n_all - len(data)} of {n_all} rows had missing values in the model's columns "
            "and were left out."
        )
    if data.empty:
        raise InputError("No complete rows: every row has a missing value in the model's columns.")
    numeric = [outcome, *interventions] + [c for c in (exposure, trials, control) if c]
    if seasonality is not None:
        numeric.append(seasonality.column)
    _to_numbers(data, numeric)
    dated = _time_index(data, time)
    data = _series(data, control)
    _check_outcome(data, outcome, family, exposure, trials)
    caveats += _check_interventions(data, interventions, control)
    return ItsSpec(
        data=data,
        outcome=outcome,
        time=time,
        interventions=interventions,
        exposure=exposure,
        family=family,
        trials=trials,
        seasonality=seasonality,
        autocorrelation=autocorrelation,
        lags=None if lags is None else int(lags),
        control=control,
        diagnostic_lags=diagnostic_lags,
        dated=dated,
        caveats=caveats,
    )


def _check_options(family: str, autocorrelation: str | None, interventions: list[str]) -> None:
    if family not in FAMILIES:
        raise InputError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}.")
    if autocorrelation is not None and autocorrelation not in AUTOCORRELATION_METHODS:
        raise InputError(
            f"autocorrelation must be None, 'newey-west' or 'ar1'; got {autocorrelation!r}."
        )
    if not interventions:
        raise InputError("Give at least one intervention column (0 before, 1 from its start on).")
    if len(set(interventions)) != len(interventions):
        raise InputError(f"Intervention columns are repeated: {interventions}.")


def _check_columns(
    df: pd.DataFrame,
    outcome: str,
    time: str,
    interventions: list[str],
    exposure: str | None,
    trials: str | None,
    control: str | None,
    seasonality: Harmonics | None,
) -> list[str]:
    """Every named column is in the data and each role has its own; the model's columns."""
    needed: dict[str, str | None] = {"outcome": outcome, "time": time}
    for i, name in enumerate(interventions):
        needed[f"intervention {i + 1}"] = name
    needed.update({"exposure": exposure, "trials": trials, "control": control})
    needed["seasonality"] = seasonality.column if seasonality is not None else None
    require_columns(df, needed)
    roles = [outcome, time, *interventions] + [c for c in (exposure, trials, control) if c]
    if len(set(roles)) != len(roles):
        raise InputError(
            "The outcome, time, intervention, exposure, trials and control columns must differ."
        )
    return roles


def _check_family_options(
    family: str,
    trials: str | None,
    exposure: str | None,
    autocorrelation: str | None,
    control: str | None,
    lags: int | None,
) -> None:
    """The options that only some families, or some autocorrelation methods, take."""
    if family == "binomial" and trials is None:
        raise InputError(
            "family='binomial' needs trials=COLUMN (the denominator of each proportion)."
        )
    if trials is not None and family != "binomial":
        raise InputError("trials= is only for family='binomial'.")
    if exposure is not None and family not in ("poisson", "quasipoisson"):
        raise InputError(
            "exposure= (a log offset) is for Poisson and quasi-Poisson counts; for a "
            f"{family} model give the rate or proportion as the outcome instead."
        )
    if autocorrelation == "ar1" and family != "gaussian":
        raise InputError(
            "autocorrelation='ar1' (AR(1) errors) is available for family='gaussian' only; for "
            "counts use autocorrelation='newey-west' (robust standard errors)."
        )
    if autocorrelation == "ar1" and control is not None:
        raise InputError(
            "autocorrelation='ar1' is not available with a control series; use 'newey-west'."
        )
    if lags is not None and (int(lags) != lags or lags < 0):
        raise InputError(f"lags must be a whole number ≥ 0; got {lags!r}.")
    if lags is not None and autocorrelation != "newey-west":
        raise InputError(
            "lags= sets the Newey–West lags: use it with autocorrelation='newey-west'."
        )


def _to_numbers(data: pd.DataFrame, columns: list[str]) -> None:
    """Columns made float in place (booleans as 0/1); a value that is not a number is refused."""
    for col in dict.fromkeys(columns):
        if data[col].dtype == bool:
            data[col] = data[col].astype(int)
        data[col] = numeric_column(data, col, allow_missing=False)


def _time_index(data: pd.DataFrame, time: str) -> bool:
    """Numeric time ``_t`` in place: the numbers, or the rank of each date; True for dates."""
    tcol = data[time]
    if pd.api.types.is_datetime64_any_dtype(tcol) or (
        (tcol.dtype == object or pd.api.types.is_string_dtype(tcol)) and _looks_like_dates(tcol)
    ):
        dates = pd.to_datetime(tcol, errors="coerce")
        if dates.isna().any():
            raise InputError(f"Time column {time!r} mixes dates and other values.")
        data["_date"] = dates
        ranks = {d: i + 1 for i, d in enumerate(sorted(dates.unique()))}
        data["_t"] = dates.map(ranks).astype(float)
        return True
    t = pd.to_numeric(tcol, errors="coerce")
    if t.isna().any():
        first = data.index[t.isna()][0]
        raise InputError(
            f"Time column {time!r} must hold numbers or dates; row {first} has {tcol[first]!r}."
        )
    data["_t"] = t.astype(float)
    return False


def _series(data: pd.DataFrame, control: str | None) -> pd.DataFrame:
    """Rows marked ``_group`` 1 (treated) or 0 (control), sorted, one per time point each."""
    if control is not None:
        vals = set(np.unique(data[control]))
        if not vals <= {0.0, 1.0}:
            raise InputError(
                f"Control column {control!r} must be 0/1 (1 marks the control series); "
                f"got {sorted(vals)}."
            )
        if vals != {0.0, 1.0}:
            raise InputError(
                f"Control column {control!r} must mark both a treated (0) and a control (1) series."
            )
        data["_group"] = 1.0 - data[control]  # 1 = treated
    else:
        data["_group"] = 1.0

    data = data.sort_values(["_group", "_t"], ascending=[False, True]).reset_index(drop=True)
    for g, grp in data.groupby("_group"):
        if grp["_t"].duplicated().any():
            dup = grp["_t"][grp["_t"].duplicated()].iloc[0]
            which = "treated" if g == 1.0 else "control"
            raise InputError(
                f"Time value {dup:g} appears more than once in the {which} series: "
                "give one row per "
                "time point (and per series, with control=)."
            )
    return data


def _check_outcome(
    data: pd.DataFrame, outcome: str, family: str, exposure: str | None, trials: str | None
) -> None:
    y = data[outcome]
    if family in ("poisson", "quasipoisson") and (y < 0).any():
        raise InputError(
            f"Outcome {outcome!r} holds negative values; Poisson models need counts ≥ 0."
        )
    if exposure is not None and (data[exposure] <= 0).any():
        first = data.index[data[exposure] <= 0][0]
        raise InputError(
            f"Exposure {exposure!r} must be > 0 (its log is the offset); "
            f"a row has {data.at[first, exposure]!r}."
        )
    if family == "binomial":
        n = data[trials]
        if (n <= 0).any():
            raise InputError(
                f"Trials {trials!r} must be > 0 in every row (drop rows with no trials)."
            )
        if (y < 0).any() or (y > n).any():
            raise InputError(f"Outcome {outcome!r} must be between 0 and {trials!r} in every row.")


def _check_interventions(
    data: pd.DataFrame, interventions: list[str], control: str | None
) -> list[str]:
    """Each intervention 0/1, switching on once, with points before and after; the caveats."""
    caveats: list[str] = []
    for name in interventions:
        vals = set(np.unique(data[name]))
        if not vals <= {0.0, 1.0}:
            raise InputError(
                f"Intervention {name!r} must be 0 before the intervention and 1 from its start on; "
                f"got values {sorted(vals)}."
            )
        for g, grp in data.groupby("_group"):
            if (np.diff(grp[name].to_numpy()) < 0).any():
                raise InputError(
                    f"Intervention {name!r} switches back from 1 to 0; code each intervention as 0 "
                    "before and 1 from its start on (a withdrawal is another column)."
                )
            label = (
                ""
                if control is None
                else (" in the treated series" if g == 1.0 else " in the control series")
            )
            n_after = int(grp[name].sum())
            n_before = len(grp) - n_after
            if n_before == 0 or n_after == 0:
                raise InputError(
                    f"Intervention {name!r} has {n_before} time points before and "
                    f"{n_after} after its "
                    f"start{label}; segmented regression needs points on both sides."
                )
            if g == 1.0 and (n_before < MIN_POINTS_PER_SEGMENT or n_after < MIN_POINTS_PER_SEGMENT):
                caveats.append(
                    f"Few points around {name!r}: {n_before} before and {n_after} after; "
                    "estimates are "
                    f"unstable with fewer than {MIN_POINTS_PER_SEGMENT} per segment."
                )
    if control is not None:
        for name in interventions:
            starts = data.loc[data[name] == 1].groupby("_group")["_t"].min()
            if starts.nunique() != 1:
                raise InputError(
                    f"Intervention {name!r} must start at the same time in the treated "
                    "and control series."
                )
    return caveats


def _looks_like_dates(values: pd.Series) -> bool:
    sample = values.dropna().astype(str).head(20)
    if sample.empty:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


# --- design -----------------------------------------------------------------


@dataclass
class ItsDesign:
    X: pd.DataFrame  # all terms, with intercept
    counterfactual_X: pd.DataFrame
    step_terms: list[str]
    slope_terms: list[str | None]
    trend_terms: list[str]  # summed for the treated pre-trend
    starts: list[float]  # first _t with the intervention on
    last_before: list[float]  # T0 for each intervention


def design(spec: ItsSpec, *, slope_change: bool) -> ItsDesign:
    d = spec.data
    t = d["_t"].to_numpy()
    cols: dict[str, np.ndarray] = {"intercept": np.ones(len(d)), spec.time: t}
    cf_zero: list[str] = []
    step_terms: list[str] = []
    slope_terms: list[str | None] = []
    starts: list[float] = []
    last_before: list[float] = []
    treated = d["_group"].to_numpy()
    comparative = spec.control is not None
    if comparative:
        cols["treated"] = treated
        cols[f"treated:{spec.time}"] = treated * t

    reserved = set(cols)
    for name in spec.interventions:
        if name in reserved:
            raise InputError(
                f"Intervention column {name!r} clashes with a model term name; rename it."
            )
        on = d[name].to_numpy()
        sel = d["_group"] == 1.0
        start = float(d.loc[sel & (d[name] == 1), "_t"].min())
        before = d.loc[sel & (d[name] == 0), "_t"]
        t0 = float(before.max())
        starts.append(start)
        last_before.append(t0)
        slope_x = (t - t0) * on
        cols[name] = on
        if slope_change:
            cols[f"{name}:slope"] = slope_x
        if comparative:
            cols[f"treated:{name}"] = treated * on
            step_terms.append(f"treated:{name}")
            cf_zero.append(f"treated:{name}")
            if slope_change:
                cols[f"treated:{name}:slope"] = treated * slope_x
                slope_terms.append(f"treated:{name}:slope")
                cf_zero.append(f"treated:{name}:slope")
            else:
                slope_terms.append(None)
        else:
            step_terms.append(name)
            cf_zero.append(name)
            if slope_change:
                slope_terms.append(f"{name}:slope")
                cf_zero.append(f"{name}:slope")
            else:
                slope_terms.append(None)

    if spec.seasonality is not None:
        h = spec.seasonality.terms(d[spec.seasonality.column])
        for name in h.columns:
            if name in cols:
                raise InputError(f"Column name {name!r} clashes with a seasonal term; rename it.")
            cols[name] = h[name].to_numpy()

    X = pd.DataFrame(cols, index=d.index)
    rank = np.linalg.matrix_rank(X.to_numpy())
    if rank < X.shape[1]:
        raise InputError(
            "The model's terms are collinear (e.g. two interventions starting at the same time, or "
            f"a seasonal column that is constant): {', '.join(X.columns)}. "
            "Remove the redundant one."
        )
    if len(X) <= X.shape[1]:
        raise InputError(
            f"{len(X)} time points are too few for {X.shape[1]} model terms; "
            "add data or drop terms "
            "(seasonality, slope changes)."
        )
    cfX = X.copy()
    for name in cf_zero:
        cfX[name] = 0.0
    trend_terms = [spec.time] + ([f"treated:{spec.time}"] if comparative else [])
    return ItsDesign(X, cfX, step_terms, slope_terms, trend_terms, starts, last_before)
