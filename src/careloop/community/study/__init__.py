"""The automatic Study of a learning cycle: charts, effects, balancing measures, progress.

Pure functions on the measure results (no database, no web):

- :mod:`~careloop.community.study.study` — :func:`study_change` and the
  :class:`CycleStudy` it returns;
- :mod:`~careloop.community.study.effects` — the effect estimators, honest
  about visits clustered by patient and site and cards clustered by clinician;
- :mod:`~careloop.community.study.qualitative` — :func:`qualitative_findings`,
  a coded focus group or interview project's themes and coders' agreement.
"""

from careloop.community.study.effects import (
    ItsEffects,
    clustered_proportion,
    its_effect,
    its_method,
)
from careloop.community.study.qualitative import (
    CodeAgreement,
    QualitativeFindings,
    ThemeWeight,
    qualitative_findings,
)
from careloop.community.study.study import (
    BASELINE_POINTS,
    SHIFT_POINTS,
    SUSTAIN_POINTS,
    Change,
    CycleStudy,
    Direction,
    MeasureStudy,
    ProgressScore,
    ProgressStep,
    Role,
    Signal,
    StudyMeasure,
    monthly_counts,
    study_change,
)

__all__ = [
    "BASELINE_POINTS",
    "SHIFT_POINTS",
    "SUSTAIN_POINTS",
    "Change",
    "CodeAgreement",
    "CycleStudy",
    "Direction",
    "ItsEffects",
    "MeasureStudy",
    "ProgressScore",
    "ProgressStep",
    "QualitativeFindings",
    "Role",
    "Signal",
    "StudyMeasure",
    "ThemeWeight",
    "clustered_proportion",
    "its_effect",
    "its_method",
    "monthly_counts",
    "qualitative_findings",
    "study_change",
]
