"""Input handling for :func:`careloop.analysis.spc.qic`: columns, dates, subgroups, positions.

This mirrors the preparation qicharts2's ``qic()`` and ``qic.agg()`` do before
any limit is computed: rows without x are dropped, a value without its
denominator is missing, records are grouped into one subgroup per x value
(sorted), and positions given as numbers or as x labels are checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from careloop.analysis._frames import require_columns
from careloop.core.errors import ErrorDetail, InputError

Aggregate = Literal["mean", "median", "sum", "sd"]
"""How several values of one subgroup become one point (run/I charts; qicharts2's agg.fun)."""

_AGGREGATE_FUNCTIONS: dict[str, Callable[[Any], pd.Series]] = {
    # agg.fun(y, na.rm = TRUE) of each subgroup, as qicharts2's qic.agg().
    # A subgroup whose values are all missing stays missing for every choice,
    # also for sum (where qicharts2 plots 0): a point nobody measured is a gap,
    # not a zero. sd of a single value is missing, as R's sd().
    "mean": lambda grouped: grouped.mean(),
    "median": lambda grouped: grouped.median(),
    "sum": lambda grouped: grouped.sum(min_count=1),
    "sd": lambda grouped: grouped.std(ddof=1),
}

AGGREGATES: tuple[str, ...] = tuple(_AGGREGATE_FUNCTIONS)
"""The choices of :data:`Aggregate`, those of qicharts2's ``agg.fun``, in its order."""


def check_aggregate(agg: object) -> None:
    """Refuse an aggregate that is not one of :data:`AGGREGATES`, naming the choices."""
    if agg not in AGGREGATES:
        raise InputError(
            f"Unknown aggregate {agg!r} (agg); expected one of {', '.join(AGGREGATES)}: "
            "how several values with the same x become one point of a run or I chart.",
            [ErrorDetail("agg", f"expected one of {', '.join(AGGREGATES)}", str(agg))],
        )


def column(
    value: Any, data: pd.DataFrame | None, name: str, length: int | None = None
) -> pd.Series | None:
    """A column given as a name in ``data`` or as values; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        if data is None:
            raise InputError(
                f"{name}={value!r} is a column name but no data frame was given; "
                "pass data=<DataFrame> or the values themselves."
            )
        require_columns(data, {name: value})
        return data[value].reset_index(drop=True)
    series = pd.Series(value) if not isinstance(value, pd.Series) else value.reset_index(drop=True)
    if length is not None and len(series) != length:
        raise InputError(
            f"{name} has {len(series)} values but y has {length}; give one {name} per value of y."
        )
    return series


def numeric_column(value: Any, data: pd.DataFrame | None, name: str, length: int | None) -> Any:
    """Numeric values of a column or sequence as floats; None stays None."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        # Fast path for arrays (benchmarks, qic_by on numeric columns): no Series round trip.
        if length is not None and value.size != length:
            column(value, data, name, length)
        return value.astype(np.float64, copy=False)
    series = column(value, data, name, length)
    if series is None:
        return None
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return to_numeric(series, name)


def to_numeric(series: pd.Series, name: str) -> npt.NDArray[np.float64]:
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{name} must be numeric; row {row + 1} holds {series.iloc[row]!r}.",
            [ErrorDetail(f"{name}[{row + 1}]", "not a number", str(series.iloc[row]))],
        )
    return values.to_numpy(dtype=float, na_value=np.nan)


def is_categorical(x: pd.Series) -> bool:
    """x without a time order (text, categories): no runs analysis (qicharts2's dots only)."""
    if isinstance(x.dtype, pd.CategoricalDtype):
        return True
    if pd.api.types.is_numeric_dtype(x) or pd.api.types.is_datetime64_any_dtype(x):
        return False
    return not all(isinstance(v, int | float | np.number) or hasattr(v, "year") for v in x.dropna())


_ISO_DATE = r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?"


def parse_dates(x: pd.Series) -> pd.Series:
    """ISO date strings (as read from a CSV file) and Python dates become datetimes,
    so that they sort, compare with date labels and count as time."""
    if not (x.dtype == object or pd.api.types.is_string_dtype(x)):
        return x
    text = x.dropna()
    if not text.empty and all(hasattr(v, "year") and hasattr(v, "month") for v in text):
        return pd.Series(pd.to_datetime(x), name=x.name)
    if text.empty or not all(isinstance(v, str) for v in text):
        return x
    if not text.str.fullmatch(_ISO_DATE).all():
        return x
    return pd.to_datetime(x, format="ISO8601")


@dataclass
class Subgroups:
    x: pd.Series
    y: npt.NDArray[np.float64]
    y_sum: npt.NDArray[np.float64]
    y_len: npt.NDArray[np.float64]
    y_mean: npt.NDArray[np.float64]
    y_sd: npt.NDArray[np.float64]
    n: npt.NDArray[np.float64]
    cl: npt.NDArray[np.float64]
    target: npt.NDArray[np.float64]


def aggregate(
    x: pd.Series,
    y: npt.NDArray[np.float64],
    n: npt.NDArray[np.float64] | None,
    cl: npt.NDArray[np.float64],
    target: npt.NDArray[np.float64],
    agg: Aggregate,
) -> Subgroups:
    """One row per x value, sorted by x (qicharts2's ``qic.agg``)."""
    xv = x.to_numpy()
    if xv.dtype.kind in "iu" or (
        xv.dtype.kind in "fM" and xv.size and xv[1:].size and bool(np.all(xv[1:] > xv[:-1]))
    ):
        # Whole numbers, or strictly increasing values: nothing is missing.
        keep = None
    else:
        keep = x.notna().to_numpy()
    if keep is not None and not keep.all():
        x, y, cl, target = x[keep].reset_index(drop=True), y[keep], cl[keep], target[keep]
        n = None if n is None else n[keep]
    if n is not None:
        # A value without its denominator (or the reverse) is missing altogether.
        incomplete = np.isnan(y) | np.isnan(n)
        y = np.where(incomplete, np.nan, y)
        n = np.where(incomplete, np.nan, n)
    xv = x.to_numpy()
    increasing = xv.dtype.kind in "iufM" and bool(np.all(xv[1:] > xv[:-1]))
    if increasing or x.is_unique:
        # Fast path: one record per subgroup needs no grouping, only sorting.
        order = None if increasing else np.argsort(xv, kind="stable")
        if order is not None:
            x = x.iloc[order].reset_index(drop=True)
            y, cl, target = y[order], cl[order], target[order]
            n = None if n is None else n[order]
        has = ~np.isnan(y)
        nn = np.full(y.shape, np.nan) if n is None else np.where(np.isnan(n), 0.0, n)
        value = y if n is None else divide(y, nn)
        if agg == "sd" and n is None:
            value = np.full(y.shape, np.nan)
        return Subgroups(
            x,
            value,
            y.copy(),
            has.astype(float),
            y.copy(),
            np.full(y.shape, np.nan),
            nn,
            cl,
            target,
        )
    frame = pd.DataFrame({"x": x, "y": y, "cl": cl, "target": target})
    if n is not None:
        frame["n"] = n
    grouped = frame.groupby("x", sort=True, observed=True)
    y_len = grouped["y"].count()
    y_sum = grouped["y"].sum(min_count=1)
    y_mean = grouped["y"].mean()
    y_sd = grouped["y"].std(ddof=1)
    if n is not None:
        nn = grouped["n"].sum().to_numpy(dtype=float)
        value = divide(y_sum.to_numpy(dtype=float), nn)
    else:
        nn = np.full(len(y_len), np.nan)
        check_aggregate(agg)
        value = _AGGREGATE_FUNCTIONS[agg](grouped["y"]).to_numpy(dtype=float)
    first = grouped[["cl", "target"]].first()
    return Subgroups(
        x=pd.Series(y_len.index, name="x").reset_index(drop=True),
        y=value,
        y_sum=y_sum.to_numpy(dtype=float),
        y_len=np.asarray(y_len, dtype=np.float64),
        y_mean=y_mean.to_numpy(dtype=float),
        y_sd=np.asarray(y_sd, dtype=np.float64),
        n=nn,
        cl=first["cl"].to_numpy(dtype=float),
        target=first["target"].to_numpy(dtype=float),
    )


def divide(num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: npt.NDArray[np.float64] = num / den
    return out


def positions(values: Sequence[int] | int | None, count: int, name: str, *, low: int) -> list[int]:
    if values is None:
        return []
    items = [values] if isinstance(values, int | np.integer) else list(values)
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not low <= int(v) <= count:
            raise InputError(
                f"{name} holds {v!r}; expected whole numbers from {low} to {count} "
                f"(1-based positions of the {count} subgroups after sorting by x).",
                [ErrorDetail(name, f"out of range {low}..{count}", str(v))],
            )
        out.append(int(v))
    return out


def x_positions(
    labels: Any, x: pd.Series, name: str, *, exact: bool, before: bool = False
) -> list[int]:
    """1-based positions of x labels; with ``exact=False`` the count of x values ≤ label
    (< label with ``before``), so labels between two subgroups work too."""
    if labels is None:
        return []
    items = (
        list(labels)
        if isinstance(labels, list | tuple | set | pd.Series | np.ndarray)
        else [labels]
    )
    xv = x
    if pd.api.types.is_datetime64_any_dtype(xv):
        items = list(pd.to_datetime(pd.Series(items)))
    out = []
    for label in items:
        if exact:
            hits = np.flatnonzero((xv == label).to_numpy())
            if hits.size == 0:
                raise InputError(
                    f"{name} holds {label!r}, which is not an x value of the chart.",
                    [ErrorDetail(name, "no subgroup has this x value", str(label))],
                )
            out.append(int(hits[0]) + 1)
        else:
            out.append(int((xv < label).sum() if before else (xv <= label).sum()))
    return out


def per_point(value: Any, length: int, name: str) -> npt.NDArray[np.float64]:
    if value is None:
        return np.full(length, np.nan)
    if np.ndim(value) == 0:
        return np.full(length, float(value))
    arr = np.asarray(value, dtype=float)
    if arr.size != length:
        raise InputError(
            f"{name} has {arr.size} values; give one number or one per value of y ({length})."
        )
    return arr
