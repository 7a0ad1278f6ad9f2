"""What the admin's data-quality page shows: stored results, never a new run.

The checks themselves (OHDSI's Data Quality Dashboard, :mod:`careloop.warehouse.quality`)
run with ``careloop warehouse check``, which stores each run in the warehouse; the page
reads the latest run, so it opens at once. careloop's checks count rows of the
warehouse's tables (by table and column), and its forms can each fail to load: the page
shows both, by table and by form.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from careloop.capture import forms_store
from careloop.core.errors import CareloopError
from careloop.warehouse.connection import WarehouseOpener
from careloop.warehouse.jobs import stored_quality_report
from careloop.warehouse.quality import CheckResult, QualityReport
from careloop.web.security import Actor

STATUS_WORDS = {
    "fail": "Needs a look",
    "error": "Could not run",
    "pass": "Passed",
    "info": "For information",
}


@dataclass(frozen=True)
class TableQuality:
    """The checks of one warehouse table in the latest run."""

    table: str
    """The OMOP table."""
    passed: int
    """Checks that passed (or only inform)."""
    failed: int
    """Checks that failed or could not run."""


def _by_table(report: QualityReport) -> list[TableQuality]:
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for r in report.results:
        table = r.table or "(whole warehouse)"
        (passed if r.passed else failed)[table] += 1
    tables = sorted(set(passed) | set(failed), key=lambda t: (-failed[t], t))
    return [TableQuality(t, passed[t], failed[t]) for t in tables]


def _failures(report: QualityReport) -> list[CheckResult]:
    order = {"fail": 0, "error": 1}
    return sorted(report.failed, key=lambda r: (order[r.status], -r.percent, r.check_id))


def _stored(actor: Actor, opener: WarehouseOpener) -> tuple[QualityReport | None, str]:
    """The latest stored run, or None with why there is none to show."""
    try:
        opened = opener()
    except CareloopError as exc:
        return None, exc.message
    if opened is None:
        return None, "There is no warehouse yet: `careloop warehouse refresh` builds it."
    with opened:
        report = stored_quality_report(actor.registry, opened, actor.principal)
    if report is None:
        return None, "No data-quality check has run yet: `careloop warehouse check` runs one."
    return report, ""


def quality_context(actor: Actor, request: Request) -> dict[str, Any]:
    """The page's context: the latest run by table and its failures, and each form's state."""
    report, missing = _stored(actor, request.app.state.warehouse)
    return {
        "report": report,
        "missing": missing,
        "tables": _by_table(report) if report else [],
        "failures": _failures(report) if report else [],
        "status_words": STATUS_WORDS,
        "forms": actor.call(forms_store.list_forms),
    }
