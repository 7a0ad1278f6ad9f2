"""Reading back: the data's time span, the latest runs, and their stored results."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import ibis
import pandas as pd

from careloop.core.errors import NotFound
from careloop.measures.runner.result_tables import RESULT_COLUMNS, RESULT_TABLE, RUN_TABLE
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings

_EXTENT_COLUMNS = (
    ("visit_occurrence", "visit_start_date"),
    ("observation_period", "observation_period_start_date"),
    ("measurement", "measurement_date"),
    ("observation", "observation_date"),
)


def data_extent(warehouse: Warehouse) -> tuple[date, date] | None:
    """The first and last day of the warehouse's events (visits, else observation periods,
    measurements or observations); ``None`` when it holds none.

    What ``careloop measures run`` computes when no period is given.
    """
    present = set(warehouse.list_tables())
    for table, column in _EXTENT_COLUMNS:
        if table not in present:
            continue
        t = warehouse.table(table)
        with quiet_engine_warnings():
            bounds = t.aggregate(first=t[column].min(), last=t[column].max()).execute()
        first, last = bounds["first"].iloc[0], bounds["last"].iloc[0]
        if pd.notna(first) and pd.notna(last):
            return pd.Timestamp(first).date(), pd.Timestamp(last).date()
    return None


@dataclass(frozen=True)
class LatestRuns:
    """Which stored run each measure's shown results come from."""

    runs: Mapping[str, str]
    """Measure id → the run its results come from."""
    run_at: datetime | None
    """When the newest of those runs ran (UTC, naive)."""

    @property
    def key(self) -> str:
        """One text naming every run used (changes whenever any of them does)."""
        return "+".join(sorted(set(self.runs.values())))


def latest_runs(warehouse: Warehouse) -> LatestRuns:
    """For each stored measure, the run to show: its latest run computed by site, else its
    latest run of any kind.

    A narrow run (``careloop measures run --measure X``, or one without ``--by site``)
    then adds to what the pages show instead of replacing it.

    Raises:
        NotFound: no measure run is stored.
    """
    if not warehouse.has_table(RUN_TABLE) or not warehouse.has_table(RESULT_TABLE):
        raise NotFound("No measure results are stored yet: run `careloop measures run --by site`.")
    with quiet_engine_warnings():
        runs = (
            warehouse.table(RUN_TABLE)
            .select("run_id", "run_at", "by_strata", "measures")
            .order_by(ibis.desc("run_at"))
            .execute()
        )
    if runs.empty:
        raise NotFound("No measure results are stored yet: run `careloop measures run --by site`.")
    chosen: dict[str, tuple[bool, str]] = {}
    for run in runs.itertuples(index=False):
        by_site = "site" in str(run.by_strata or "").split(",")
        for measure_id in json.loads(str(run.measures)):
            held = chosen.get(measure_id)
            if held is None or (by_site and not held[0]):
                chosen[measure_id] = (by_site, str(run.run_id))
    used = {r for _s, r in chosen.values()}
    times = runs[runs.run_id.isin(used)].run_at
    return LatestRuns(
        runs={m: r for m, (_s, r) in chosen.items()},
        run_at=pd.Timestamp(times.max()).to_pydatetime() if len(times) else None,
    )


def load_results(
    warehouse: Warehouse, *, run_id: str | None = None, latest: LatestRuns | None = None
) -> pd.DataFrame:
    """Stored results, columns :data:`RESULT_COLUMNS`.

    Args:
        warehouse: The warehouse.
        run_id: One run's results. Default: each measure's latest results
            (:func:`latest_runs`).
        latest: The runs to read, when the caller has already looked them up.
    """
    if not warehouse.has_table(RESULT_TABLE):
        raise NotFound("No measure results are stored yet: run `careloop measures run`.")
    with quiet_engine_warnings():
        t = warehouse.table(RESULT_TABLE)
        if run_id is not None:
            frame: pd.DataFrame = t.filter(t.run_id == run_id).execute()
        else:
            pairs = (latest or latest_runs(warehouse)).runs
            wanted = ibis.literal(False)
            for measure_id, run in sorted(pairs.items()):
                wanted |= (t.measure_id == measure_id) & (t.run_id == run)
            frame = t.filter(wanted).execute()
    if frame.empty:
        raise NotFound(
            f"There is no stored measure run {run_id!r}."
            if run_id
            else "No measure results are stored yet."
        )
    frame["period_start"] = pd.to_datetime(frame.period_start).dt.date
    frame["period_end"] = pd.to_datetime(frame.period_end).dt.date
    return (
        frame[list(RESULT_COLUMNS)]
        .sort_values(["measure_id", "site", "stratum", "period_start"], kind="stable")
        .reset_index(drop=True)
    )
