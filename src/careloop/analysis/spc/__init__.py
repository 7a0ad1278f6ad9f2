"""Statistical process control: run and control charts modelled on qicharts2.

:func:`qic` makes one chart and :func:`qic_by` one chart per group (small
multiples), with the numbers of ``qicharts2::qic``. The pieces:

- :mod:`~careloop.analysis.spc.chart`: :func:`qic`, :class:`SpcChart`, the caveats;
- :mod:`~careloop.analysis.spc.data`: the input (columns, dates, subgroups);
- :mod:`~careloop.analysis.spc.limits`: centre line, sigma and limits per chart type;
- :mod:`~careloop.analysis.spc.runs`: the runs analysis (Anhøj rules);
- :mod:`~careloop.analysis.spc.rules`: the optional rule sets (Western Electric,
  Nelson, NHS Making Data Count);
- :mod:`~careloop.analysis.spc.annotations`: what happened when (PDSA cycles,
  deployments), to mark on a chart.

Charts are drawn by :mod:`careloop.charts.spc`.
"""

from careloop.analysis.spc.annotations import ANNOTATION_KINDS, Annotation, AnnotationKind
from careloop.analysis.spc.chart import (
    AGGREGATES,
    CHART_TYPES,
    POINT_COLUMNS,
    Aggregate,
    ChartType,
    FewPointsWarning,
    Improvement,
    NoVariationWarning,
    RuleSet,
    RunsMethod,
    SpcChart,
    SpcFacets,
    SpcWarning,
    ZeroDenominatorWarning,
    qic,
    qic_by,
)

__all__ = [
    "AGGREGATES",
    "ANNOTATION_KINDS",
    "CHART_TYPES",
    "POINT_COLUMNS",
    "Aggregate",
    "Annotation",
    "AnnotationKind",
    "ChartType",
    "FewPointsWarning",
    "Improvement",
    "NoVariationWarning",
    "RuleSet",
    "RunsMethod",
    "SpcChart",
    "SpcFacets",
    "SpcWarning",
    "ZeroDenominatorWarning",
    "qic",
    "qic_by",
]
