"""What the measure dashboards show, and to whom: pure data for the web pages.

The web app renders three pages from the stored results of the latest measure
run (``careloop_measure_result``):

- :func:`overview`: every measure with its network series, latest value,
  SPC signals (on the network series) and direction of improvement;
- :func:`measure_detail`: one measure's network SPC chart (phases and
  annotations at knowledge-object deployments), one chart per site, a funnel
  plot of the sites, the numbers and the definition in plain language;
- :func:`site_view`: one site's measures beside the network's.

Who sees what (docs/dashboards.md): measure results at site level are
aggregates, not identifiable data, so every staff role sees every dashboard
(small denominators are flagged, not hidden: the numbers stay inside the
installation); patients and carers see none. The patients behind a site's
number (:func:`dashboard_patient_list`) are identifiable: only roles that may
read records at that site get them, and every list is audited.
"""

from __future__ import annotations

from careloop.practice.feedback.dashboards.access import (
    DASHBOARD_ROLES,
    may_see_dashboards,
    patient_list_sites,
    require_dashboards,
)
from careloop.practice.feedback.dashboards.changes import recorded_changes
from careloop.practice.feedback.dashboards.model import (
    FUNNEL_MONTHS,
    SPARK_PERIODS,
    Assurance,
    Attention,
    Deployed,
    FunnelView,
    MeasureDetail,
    MeasureInfo,
    Overview,
    OverviewRow,
    Point,
    Series,
    Side,
    Signals,
    SiteNumbers,
    SiteRow,
    SiteView,
    Variation,
    VariationIcon,
)
from careloop.practice.feedback.dashboards.notes import (
    NOTE_MAX,
    Note,
    add_note,
    annotatable_sites,
    chart_notes,
    may_annotate,
)
from careloop.practice.feedback.dashboards.patients import (
    DashboardPatientList,
    ListedPatient,
    dashboard_patient_list,
)
from careloop.practice.feedback.dashboards.results import (
    StoredResults,
    stored_results,
)
from careloop.practice.feedback.dashboards.series import (
    ChartChoice,
    choose_chart,
    measure_info,
    phase_starts,
    spc_chart,
)
from careloop.practice.feedback.dashboards.tables import (
    CHART_COLUMNS,
    STALE_MONTHS,
    PhaseSummary,
    chart_summary,
    measure_table,
    phases,
    staleness,
)
from careloop.practice.feedback.dashboards.views import (
    funnel_view,
    measure_detail,
    measure_numbers,
    overview,
    site_view,
)

__all__ = [
    "CHART_COLUMNS",
    "DASHBOARD_ROLES",
    "FUNNEL_MONTHS",
    "NOTE_MAX",
    "SPARK_PERIODS",
    "STALE_MONTHS",
    "Assurance",
    "Attention",
    "ChartChoice",
    "DashboardPatientList",
    "Deployed",
    "FunnelView",
    "ListedPatient",
    "MeasureDetail",
    "MeasureInfo",
    "Note",
    "Overview",
    "OverviewRow",
    "PhaseSummary",
    "Point",
    "Series",
    "Side",
    "Signals",
    "SiteNumbers",
    "SiteRow",
    "SiteView",
    "StoredResults",
    "Variation",
    "VariationIcon",
    "add_note",
    "annotatable_sites",
    "chart_notes",
    "chart_summary",
    "choose_chart",
    "dashboard_patient_list",
    "funnel_view",
    "may_annotate",
    "may_see_dashboards",
    "measure_detail",
    "measure_info",
    "measure_numbers",
    "measure_table",
    "overview",
    "patient_list_sites",
    "phase_starts",
    "phases",
    "recorded_changes",
    "require_dashboards",
    "site_view",
    "spc_chart",
    "staleness",
    "stored_results",
]
