"""Measure results out: CSV, Parquet, JSON and FHIR R4 MeasureReport.

``shared=True`` marks an export that leaves the installation: the rows pass
disclosure control first (:func:`careloop.measures.sharing.share_results`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport

from careloop.core.csv_safety import frame_to_csv
from careloop.core.errors import InputError
from careloop.measures.definition import MeasureDefinition
from careloop.measures.runner import NETWORK, RESULT_COLUMNS
from careloop.measures.sharing import share_results
from careloop.trust.disclosure import DEFAULT_THRESHOLD

ExportFormat = Literal["csv", "parquet", "json", "fhir"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet", "json", "fhir")

MEASURE_URL = "urn:careloop:measure:"
"""Prefix of the canonical URL a MeasureReport names its measure by (``…id|hash``)."""
_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
_IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
_SITE_SYSTEM = "urn:careloop:site"


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def results_to_records(results: pd.DataFrame) -> list[dict[str, Any]]:
    """Result rows as JSON-ready dicts (dates as ISO text, missing values as null)."""
    out = []
    for rec in results.to_dict("records"):
        row: dict[str, Any] = {}
        for name, value in rec.items():
            key = str(name)
            if _missing(value):
                row[key] = None
            elif hasattr(value, "isoformat"):
                row[key] = value.isoformat()
            elif hasattr(value, "item"):
                row[key] = value.item()
            else:
                row[key] = value
        out.append(row)
    return out


def _population(code: str, count: Any) -> dict[str, Any]:
    pop: dict[str, Any] = {"code": {"coding": [{"system": _POPULATION, "code": code}]}}
    if not _missing(count):
        pop["count"] = int(count)
    return pop


def _populations(row: Any) -> list[dict[str, Any]]:
    return [
        _population("denominator", row["denominator"]),
        _population("numerator", row["numerator"]),
        _population("denominator-exclusion", row["excluded"]),
    ]


def _score(value: Any) -> dict[str, Any] | None:
    return None if _missing(value) else {"value": float(value)}


def measure_reports(
    results: pd.DataFrame, *, measures: Mapping[str, MeasureDefinition] | None = None
) -> list[MeasureReport]:
    """One FHIR R4 ``MeasureReport`` (type summary) per measure × site × period.

    Strata rows become the group's ``stratifier`` (one per stratifier, e.g.
    ``sex``); the site is the ``reporter`` (absent for the whole network).
    Hidden (suppressed) counts are left out of their population.
    """
    reports: list[MeasureReport] = []
    frame = results.reset_index(drop=True)
    for (measure_id, site, start), g in frame.groupby(
        ["measure_id", "site", "period_start"], sort=True
    ):
        top = g[g.stratum == ""]
        if top.empty:
            continue
        head = top.iloc[0]
        group: dict[str, Any] = {"population": _populations(head)}
        score = _score(head["value"])
        if score is not None:
            group["measureScore"] = score
        strata: dict[str, list[dict[str, Any]]] = {}
        for rec in g[g.stratum != ""].to_dict("records"):
            name, _, label = str(rec["stratum"]).partition("=")
            stratum: dict[str, Any] = {"value": {"text": label}, "population": _populations(rec)}
            s = _score(rec["value"])
            if s is not None:
                stratum["measureScore"] = s
            strata.setdefault(name, []).append(stratum)
        if strata:
            group["stratifier"] = [
                {"code": [{"text": name}], "stratum": items} for name, items in strata.items()
            ]
        report: dict[str, Any] = {
            "resourceType": "MeasureReport",
            "status": "complete",
            "type": "summary",
            "measure": f"{MEASURE_URL}{measure_id}|{head['definition_hash']}",
            "period": {"start": str(start), "end": str(head["period_end"])},
            "group": [group],
        }
        if site != NETWORK:
            report["reporter"] = {
                "identifier": {"system": _SITE_SYSTEM, "value": str(site)},
                "display": str(site),
            }
        definition = (measures or {}).get(str(measure_id))
        if definition is not None:
            code = "increase" if definition.improvement == "up" else "decrease"
            report["improvementNotation"] = {"coding": [{"system": _IMPROVEMENT, "code": code}]}
        reports.append(MeasureReport.model_validate(report))
    return reports


def measure_report_bundle(
    results: pd.DataFrame, *, measures: Mapping[str, MeasureDefinition] | None = None
) -> Bundle:
    """The MeasureReports of :func:`measure_reports` in a ``collection`` Bundle."""
    entries = [{"resource": r} for r in measure_reports(results, measures=measures)]
    return Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": entries})


def export_results(
    results: pd.DataFrame,
    path: Path | str,
    *,
    fmt: ExportFormat,
    shared: bool = False,
    threshold: int = DEFAULT_THRESHOLD,
    measures: Mapping[str, MeasureDefinition] | None = None,
) -> Path:
    """Write result rows to ``path`` as CSV, Parquet, JSON or a FHIR Bundle.

    Args:
        results: Rows with :data:`~careloop.measures.RESULT_COLUMNS`.
        path: The file to write.
        fmt: csv, parquet, json or fhir.
        shared: The export leaves the installation: apply disclosure control.
        threshold: Disclosure-control threshold (counts from 1 to it are hidden).
        measures: Definitions by id (FHIR: the improvement notation).
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.")
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise InputError(f"The results lack the columns {', '.join(missing)}.")
    frame = share_results(results, threshold=threshold) if shared else results
    path = Path(path)
    if fmt == "csv":
        frame_to_csv(frame, path)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "json":
        path.write_text(json.dumps(results_to_records(frame), indent=2) + "\n", encoding="utf-8")
    else:
        bundle = measure_report_bundle(frame, measures=measures)
        path.write_text(bundle.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path
