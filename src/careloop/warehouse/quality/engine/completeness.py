"""Completeness of an event table's columns per care site and period."""

from __future__ import annotations

from typing import cast

import ibis
import pandas as pd

from careloop.core.errors import InputError
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings
from careloop.warehouse.omop_schema import CLINICAL_EVENT_TABLES
from careloop.warehouse.quality.catalogue import (
    Period,
)
from careloop.warehouse.quality.engine.context import _Context


def completeness_by_site(
    warehouse: Warehouse, table: str, *, period: Period = "year"
) -> pd.DataFrame:
    """Completeness of every column of an event table per care site and period.

    The site of a row is its visit's ``care_site_id`` (for ``visit_occurrence``
    its own); rows without one fall under site ``<NA>``. The period is the
    month, quarter or year of the table's start date.

    Returns:
        A tidy frame with columns ``care_site_id, period_start, column, rows,
        non_null, percent_complete``, sorted by site, period and column.
    """
    if table not in CLINICAL_EVENT_TABLES:
        raise InputError(
            f"{table!r} is not an OMOP event table; choose one of "
            + ", ".join(CLINICAL_EVENT_TABLES)
            + "."
        )
    t = warehouse.table(table)
    start = CLINICAL_EVENT_TABLES[table][1]
    if table == "visit_occurrence":
        sited = t.mutate(careloop_site=t.care_site_id)
    else:
        visits = warehouse.table("visit_occurrence").select(
            careloop_vid=ibis._.visit_occurrence_id, careloop_site=ibis._.care_site_id
        )
        sited = t.left_join(visits, t.visit_occurrence_id == visits.careloop_vid).drop(
            "careloop_vid"
        )
    unit = {"month": "M", "quarter": "Q", "year": "Y"}[period]
    sited = sited.mutate(careloop_period=sited[start].truncate(unit))
    columns = [c for c in t.columns]
    metrics = {f"nn_{i}": sited[c].count() for i, c in enumerate(columns)}
    grouped = sited.group_by(["careloop_site", "careloop_period"]).aggregate(
        careloop_rows=sited.count(), **metrics
    )
    with quiet_engine_warnings():
        frame = grouped.execute()
    long = frame.melt(
        id_vars=["careloop_site", "careloop_period", "careloop_rows"],
        value_vars=list(metrics),
        var_name="metric",
        value_name="non_null",
    )
    long["column"] = [columns[int(m.split("_")[1])] for m in long["metric"]]
    long["percent_complete"] = 100.0 * long["non_null"] / long["careloop_rows"]
    out = long.rename(
        columns={
            "careloop_site": "care_site_id",
            "careloop_period": "period_start",
            "careloop_rows": "rows",
        }
    )
    out = out[["care_site_id", "period_start", "column", "rows", "non_null", "percent_complete"]]
    out["care_site_id"] = out["care_site_id"].astype("Int64")
    out["period_start"] = pd.to_datetime(out["period_start"]).dt.date
    return cast(
        pd.DataFrame,
        out.sort_values(["care_site_id", "period_start", "column"]).reset_index(drop=True),
    )


def _site_period_cells(
    ctx: _Context, name: str, start: str, period: Period, drop: float
) -> tuple[int, int]:
    frame = completeness_by_site(ctx.warehouse, name, period=period)
    if frame.empty:
        return 0, 0
    overall = frame.groupby("column")[["non_null", "rows"]].sum()
    overall_pct = 100.0 * overall["non_null"] / overall["rows"]
    expected = frame["column"].map(overall_pct)
    below = frame["percent_complete"] < (expected - drop)
    cells = frame.assign(below=below).groupby(["care_site_id", "period_start"], dropna=False)
    flagged = cells["below"].any()
    return int(flagged.sum()), len(flagged)
