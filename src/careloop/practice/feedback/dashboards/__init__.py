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
from careloop.practice.feedback.dashboards.model import (
    FUNNEL_MONTHS,
    SPARK_PERIODS,
    Deployed,
    FunnelView,
    MeasureDetail,
    MeasureInfo,
    Overview,
    OverviewRow,
    Point,
    Series,
    Signals,
    SiteNumbers,
    SiteRow,
    SiteView,
    Variation,
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
    measure_info,
    spc_chart,
)
from careloop.practice.feedback.dashboards.views import (
    funnel_view,
    measure_detail,
    measure_numbers,
    overview,
    site_view,
)

__all__ = [
    "DASHBOARD_ROLES",
    "FUNNEL_MONTHS",
    "SPARK_PERIODS",
    "DashboardPatientList",
    "Deployed",
    "FunnelView",
    "ListedPatient",
    "MeasureDetail",
    "MeasureInfo",
    "Overview",
    "OverviewRow",
    "Point",
    "Series",
    "Signals",
    "SiteNumbers",
    "SiteRow",
    "SiteView",
    "StoredResults",
    "Variation",
    "dashboard_patient_list",
    "funnel_view",
    "may_see_dashboards",
    "measure_detail",
    "measure_info",
    "measure_numbers",
    "overview",
    "patient_list_sites",
    "require_dashboards",
    "site_view",
    "spc_chart",
    "stored_results",
]
