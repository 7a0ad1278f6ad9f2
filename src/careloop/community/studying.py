"""A stored cycle's Study: its change and family of measures, studied on the measure results.

The statistics are ``careloop.community.study`` (pure functions); this
module only turns a recorded cycle into the change they study: its change
date, sites, aim, its measures with their roles and the direction in which
each improves, the earlier changes of its ancestors (each its own phase,
so their effect is not credited to this cycle), and how many cycles its
community has recorded (for the progress score).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from careloop.community.cycles import CycleView
from careloop.community.study import Change, CycleStudy, StudyMeasure, study_change
from careloop.core.errors import ErrorDetail, InputError


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
        cycles_recorded=max(1, view.cycles_recorded),
    )
    return study_change(results, change)
