"""Computing one measure: rows per site, period and stratum, with their labels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from careloop.core.errors import InputError, NotFound
from careloop.measures.compiler import (
    PERIOD,
    STRATUM_COLUMNS,
    CompiledMeasure,
    Period,
    periods_between,
)
from careloop.measures.definition import STRATIFIERS, Criterion, MeasureDefinition
from careloop.measures.runner.concepts import _Tables, resolve_concepts, tables_needed
from careloop.measures.runner.result_tables import (
    NETWORK,
    NO_SITE,
    RESULT_COLUMNS,
    SMALL_DENOMINATOR,
)
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings

_SEX = {8507: "male", 8532: "female"}
_UNKNOWN = "unknown"


def _label(stratifier: str, value: Any, sites: Mapping[int, str]) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value)) or (value is pd.NA)
    if stratifier == "site":
        return NO_SITE if missing else sites.get(int(value), str(int(value)))
    if missing:
        return _UNKNOWN
    if stratifier == "sex":
        return _SEX.get(int(value), _UNKNOWN)
    if stratifier == "age_band":
        return str(value)
    return str(int(value))


def _site_labels(tables: _Tables) -> dict[int, str]:
    if "care_site" not in tables.names:
        return {}
    cs = tables("care_site").select("care_site_id", "care_site_source_value", "care_site_name")
    with quiet_engine_warnings():
        frame = cs.execute()
    out: dict[int, str] = {}
    for row in frame.itertuples(index=False):
        label = row.care_site_source_value
        if not isinstance(label, str) or not label:
            label = row.care_site_name if isinstance(row.care_site_name, str) else ""
        out[int(row.care_site_id)] = label or str(int(row.care_site_id))
    return out


def _levels(strata: Sequence[str]) -> list[tuple[str, ...]]:
    """Grouping levels: network, each site; each crossed with none or one other stratifier."""
    others = [s for s in strata if s != "site"]
    sites: list[tuple[str, ...]] = [()] + ([("site",)] if "site" in strata else [])
    return [(*s, *o) for s in sites for o in [(), *((x,) for x in others)]]


def compute_measure(
    warehouse: Warehouse,
    definition: MeasureDefinition,
    *,
    start: date,
    end: date,
    by: Sequence[str] = (),
    concept_sets: Mapping[Criterion, tuple[int, ...]] | None = None,
    small_denominator: int = SMALL_DENOMINATOR,
) -> pd.DataFrame:
    """Compute one measure; the result frame has the columns :data:`RESULT_COLUMNS`.

    Args:
        warehouse: The OMOP warehouse.
        definition: The measure.
        start: First day; periods start at the one containing it.
        end: Last day.
        by: Stratifiers on top of the measure's own ``stratify``.
        concept_sets: Resolved concept ids per criterion (default: resolved here).
        small_denominator: Flag rows whose denominator is at most this.

    Raises:
        NotFound: the warehouse lacks a table the measure reads.
        InputError: the dates or stratifiers are not usable.
    """
    return _compute(
        warehouse,
        definition,
        start=start,
        end=end,
        by=by,
        concept_sets=concept_sets,
        small_denominator=small_denominator,
        tables=None,
        sites=None,
    )


def _compute(
    warehouse: Warehouse,
    definition: MeasureDefinition,
    *,
    start: date,
    end: date,
    by: Sequence[str],
    concept_sets: Mapping[Criterion, tuple[int, ...]] | None,
    small_denominator: int,
    tables: _Tables | None,
    sites: Mapping[int, str] | None,
) -> pd.DataFrame:
    """:func:`compute_measure` with the per-run look-ups shared by a batch."""
    if end < start:
        raise InputError(f"The period ends ({end}) before it starts ({start}).")
    strata = list(dict.fromkeys([*definition.stratify, *by]))
    for s in strata:
        if s not in STRATIFIERS:
            raise InputError(f"Cannot stratify by {s!r}; use one of {', '.join(STRATIFIERS)}.")
        if s == "visit_type" and definition.subject != "visit":
            raise InputError(f"{definition.id}: visit_type strata need a visit measure.")
    tables = tables or _Tables(warehouse)
    for name in tables_needed(definition, strata):
        if name not in tables.names:
            raise NotFound(
                f"{definition.source}: measure {definition.id} reads the warehouse table "
                f"{name!r}, which {warehouse.url} lacks. Load the OMOP data first."
            )
    if concept_sets is None:
        concept_sets, _ = resolve_concepts(warehouse, [definition])
    sites = sites if sites is not None else _site_labels(tables)
    periods = periods_between(start, end, definition.period)
    compiled = CompiledMeasure(definition, tables, periods, concept_sets, strata)
    with quiet_engine_warnings():
        counts = compiled.counts().execute()
        values = (
            compiled.values(_levels(strata)).execute() if definition.type == "continuous" else None
        )
    return _assemble(definition, periods, strata, counts, values, sites, small_denominator)


def _assemble(
    definition: MeasureDefinition,
    periods: Sequence[Period],
    strata: Sequence[str],
    counts: pd.DataFrame,
    values: pd.DataFrame | None,
    sites: Mapping[int, str],
    small_denominator: int,
) -> pd.DataFrame:
    """The result table of one measure from its counts, values and sites.

    Long because it builds one result table column by column (labels, counts, rates,
    suppression flags, identity of the definition), each step depending on the one
    before.
    """
    label_cols = {s: f"label_{s}" for s in strata}
    definition_hash = definition.definition_hash
    counts = counts.copy()
    counts[PERIOD] = pd.to_datetime(counts[PERIOD]).dt.date
    for s in strata:
        counts[label_cols[s]] = [_label(s, v, sites) for v in counts[STRATUM_COLUMNS[s]]]
    ends = {p.start: p.end for p in periods}
    parts: list[pd.DataFrame] = []
    value_map: dict[tuple[Any, ...], tuple[int, float]] = {}
    levels = _levels(strata)
    if values is not None:
        values = values.copy()
        values[PERIOD] = pd.to_datetime(values[PERIOD]).dt.date
        for rec in values.to_dict("records"):
            level = levels[int(rec["careloop_level"])]
            key = (
                int(rec["careloop_level"]),
                rec[PERIOD],
                *(_label(s, rec[STRATUM_COLUMNS[s]], sites) for s in level),
            )
            v = rec["careloop_value"]
            value_map[key] = (int(rec["careloop_n"]), float(v) if v is not None else math.nan)
    for index, level in enumerate(levels):
        group = [PERIOD, *(label_cols[s] for s in level)]
        if counts.empty:
            cells = pd.DataFrame(columns=[*group, "denominator", "numerator", "excluded"])
        else:
            cells = (
                counts.rename(
                    columns={
                        "careloop_denominator": "denominator",
                        "careloop_numerator": "numerator",
                        "careloop_excluded": "excluded",
                    }
                )
                .groupby(group, dropna=False)[["denominator", "numerator", "excluded"]]
                .sum()
                .reset_index()
            )
            cells = cells[(cells.denominator > 0) | (cells.numerator > 0) | (cells.excluded > 0)]
        if not level:
            have = set(cells[PERIOD]) if len(cells) else set()
            missing = [p.start for p in periods if p.start not in have]
            if missing:
                cells = pd.concat(
                    [
                        cells,
                        pd.DataFrame(
                            {PERIOD: missing, "denominator": 0, "numerator": 0, "excluded": 0}
                        ),
                    ],
                    ignore_index=True,
                )
        # Column-wise: one frame per level of strata rather than a dict per cell.
        den = cells["denominator"].astype("int64").to_numpy()
        num = cells["numerator"].astype("int64").to_numpy()
        period = list(cells[PERIOD])
        labels = [list(cells[label_cols[s]]) for s in level]
        site: Any = labels[0] if level and level[0] == "site" else NETWORK
        other = [(s, lab) for s, lab in zip(level, labels, strict=True) if s != "site"]
        names = [s for s, _lab in other]
        stratum: Any = (
            [
                ";".join(f"{s}={lab}" for s, lab in zip(names, row, strict=True))
                for row in zip(*(lab for _s, lab in other), strict=True)
            ]
            if other
            else ""
        )
        if definition.type == "continuous":
            keys = zip(*labels, strict=True) if labels else ((),) * len(period)
            found = [
                value_map.get((index, p, *labs), (0, math.nan))
                for p, labs in zip(period, keys, strict=True)
            ]
            num = np.array([n for n, _v in found], dtype="int64")
            value = np.array([v for _n, v in found], dtype="float64")
        elif definition.type == "count":
            value = num.astype("float64")
        else:
            value = np.full(len(den), math.nan)
            np.divide(num, den, out=value, where=den > 0)
        parts.append(
            pd.DataFrame(
                {
                    "measure_id": definition.id,
                    "definition_hash": definition_hash,
                    "site": site,
                    "period_start": period,
                    "period_end": [ends[p] for p in period],
                    "stratum": stratum,
                    "numerator": num,
                    "denominator": den,
                    "value": value,
                    "excluded": cells["excluded"].astype("int64").to_numpy(),
                    "small_denominator": den <= small_denominator,
                },
                columns=list(RESULT_COLUMNS),
            )
        )
    frame = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(RESULT_COLUMNS))
    )
    frame = frame.astype(
        {
            "numerator": "int64",
            "denominator": "int64",
            "excluded": "int64",
            "value": "float64",
            "small_denominator": "bool",
        }
    )
    return frame.sort_values(
        ["measure_id", "site", "stratum", "period_start"], kind="stable"
    ).reset_index(drop=True)
