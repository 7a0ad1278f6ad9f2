"""The warehouse tables a run writes (results and runs), their columns and conventions."""

from __future__ import annotations

import ibis

RESULT_TABLE = "careloop_measure_result"
"""Warehouse table that :func:`store_run` appends result rows to."""
RUN_TABLE = "careloop_measure_run"
"""Warehouse table that :func:`store_run` appends one provenance row per run to."""

RESULT_COLUMNS = (
    "measure_id",
    "definition_hash",
    "site",
    "period_start",
    "period_end",
    "stratum",
    "numerator",
    "denominator",
    "value",
    "excluded",
    "small_denominator",
)
"""Columns of a result frame, in order."""

NETWORK = ""
"""``site`` of the whole-network rows (and ``stratum`` of unstratified rows)."""
NO_SITE = "(none)"
"""``site`` of subjects without a care site."""
SMALL_DENOMINATOR = 10
"""Default: rows whose denominator is at most this are flagged ``small_denominator``."""

RESULT_SCHEMA = ibis.schema(
    {
        "run_id": "!string",
        "measure_id": "!string",
        "definition_hash": "!string",
        "site": "!string",
        "period_start": "!date",
        "period_end": "!date",
        "stratum": "!string",
        "numerator": "!int64",
        "denominator": "!int64",
        "value": "float64",
        "excluded": "!int64",
        "small_denominator": "!boolean",
    }
)
RUN_SCHEMA = ibis.schema(
    {
        "run_id": "!string",
        "run_at": "!timestamp",
        "period_from": "!date",
        "period_to": "!date",
        "by_strata": "string",
        "measures": "!string",
        "failures": "!string",
        "warehouse_url": "!string",
        "warehouse_state": "!string",
        "code_version": "!string",
    }
)
