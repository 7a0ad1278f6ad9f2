"""A stored cycle's Study: its change and family of measures, studied on the measure results.

The statistics are ``careloop.community.study`` (pure functions); this
module only turns a recorded cycle into the change they study: its change
date, sites, aim, its measures with their roles and the direction in which
each improves, the earlier changes of its ancestors (each its own phase,
so their effect is not credited to this cycle), and how many cycles of its
community tested a change for the same aim (for the progress score).

:func:`study_of` is the one way a stored cycle's Study is read from the
installation's warehouse: ``careloop cycle show``, the cycle page, the API
and the reports all call it, so they show the same effects for one cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from careloop.community.cycles import CycleView, measure_improvements
from careloop.community.study import Change, CycleStudy, StudyMeasure, study_change
from careloop.core.errors import CareloopError, ErrorDetail, InputError, NotFound
from careloop.measures import RESULT_COLUMNS, LatestRuns, latest_runs, load_results
from careloop.warehouse.connection import WarehouseOpener

_HOW = (
    "Measure results come from `careloop warehouse refresh` and "
    "`careloop measures run --by site` (or `careloop demo`)."
)


class StoredStudy(NamedTuple):
    """A cycle's Study from the stored measure results, or why there is none yet."""

    study: CycleStudy | None
    """The Study (None when there is none yet)."""
    unavailable: str | None
    """Why there is no Study yet: no warehouse, no results for its measures, no change
    date (None when there is a Study)."""


def study_cycle(
    view: CycleView, results: pd.DataFrame, improvements: Mapping[str, str]
) -> CycleStudy:
    """The Study of a recorded cycle from the measure results.

    ``improvements`` gives each measure's better direction (``up`` or
    ``down``, the measure definition's ``improvement``).

    Raises:
        InputError: The cycle has no change date or no measures, a measure's
            direction is unknown, or the results lack one of its measures.
    """
    start = view.do["start"]
    if start is None:
        raise InputError(
            f"Cycle {view.id} has no change date yet: its Study starts once the Do is recorded."
        )
    unknown = [m["measure_id"] for m in view.measures if m["measure_id"] not in improvements]
    if unknown:
        raise InputError(
            "The direction of improvement of some measures is unknown: give the measures "
            "folder that defines them (--measures-dir).",
            [ErrorDetail(f"measures.{m}", "not in the measure catalogue", m) for m in unknown],
        )
    change = Change(
        label=view.title,
        started=start,
        measures=tuple(
            StudyMeasure(
                m["measure_id"],
                m["role"],  # type: ignore[arg-type]
                improvements[m["measure_id"]],  # type: ignore[arg-type]
            )
            for m in view.measures
        ),
        sites=tuple(view.do["sites"]),
        aim=view.aim or None,
        earlier=tuple(view.earlier),
        cycles_recorded=view.cycles_recorded,
        cycles_tested=view.cycles_tested,
    )
    return study_change(results, change)


def study_of(
    view: CycleView,
    warehouse: WarehouseOpener,
    *,
    measures_dir: Path | str | None = None,
) -> StoredStudy:
    """A recorded cycle's Study from the latest stored results of its measures.

    ``view`` must come from :func:`careloop.community.show_cycle` or
    :func:`careloop.community.list_cycles`, which checked the caller's
    membership and audited the read; the Study holds monthly counts of
    measures, no patient's data. Each measure's results are those of its
    latest run by site (``careloop measures run --by site``), else of its
    latest run, unstratified. ``measures_dir`` is the folder of measure
    definitions (default: ``CARELOOP_MEASURES_DIR``), for each measure's
    better direction.

    Never raises for a missing warehouse, missing results or a cycle not
    yet begun: the reason is returned, so a cycle is always shown.
    """
    try:
        opened = warehouse()
    except CareloopError as exc:  # e.g. a DuckDB file locked by a running import
        return StoredStudy(None, f"The measure results cannot be read: {exc.message} {_HOW}")
    if opened is None:
        return StoredStudy(None, f"No measure results yet: there is no warehouse. {_HOW}")
    wanted = {m["measure_id"] for m in view.measures}
    try:
        with opened:
            latest = latest_runs(opened)
            mine = {k: v for k, v in latest.runs.items() if k in wanted}
            # Only the cycle's measures are read; none stored: the Study says which are missing.
            results = (
                load_results(opened, latest=LatestRuns(mine, latest.run_at))
                if mine
                else pd.DataFrame(columns=list(RESULT_COLUMNS))
            )
        frame = results.fillna({"site": "", "stratum": ""})
        improvements = measure_improvements(measures_dir)
        return StoredStudy(study_cycle(view, frame, improvements), None)
    except (NotFound, InputError) as exc:
        return StoredStudy(None, exc.message)
