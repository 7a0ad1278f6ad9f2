"""A site's measures that need attention this month, for its lead's home page.

It reads the stored results of the latest measure run and the signals the
dashboards give each site's series (:func:`careloop.practice.feedback.dashboards.site_view`):
a measure needs attention when the latest point of the site's chart is a
special cause of concern (Making Data Count). Nothing is computed beyond what
the site's dashboard page computes, and the answer is kept per run and site,
so a home page reads it at once after the first time.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from datetime import date

from careloop.analysis.caveats import StatisticalWarning
from careloop.measures.catalog import MeasureCatalog
from careloop.practice.feedback.dashboards import StoredResults, require_dashboards, site_view
from careloop.practice.feedback.dashboards.model import SiteRow
from careloop.trust.principal import Principal


@dataclass(frozen=True)
class NeedsAttention:
    """One measure of a site whose latest point is a special cause of concern."""

    measure_id: str
    """The measure (its page is ``/measures/{id}``)."""
    title: str
    """What it measures."""
    period_start: date
    """The first day of the latest period with a value."""
    value: float | None
    """The site's value then."""
    percent: bool
    """Whether the value reads as a percentage (a proportion)."""
    outside_limits: int
    """Points outside the control limits in the latest phase."""
    runs_signal: bool
    """A shift or too few crossings in the latest phase."""


@dataclass(frozen=True)
class SiteAttention:
    """What a site's lead should look at first."""

    site: str
    """The site's code."""
    run_id: str
    """The measure run read."""
    measures: int
    """Measures with results at the site."""
    attention: tuple[NeedsAttention, ...]
    """The measures that need attention, in catalogue order."""


_KEPT: dict[tuple[str, str], SiteAttention] = {}
_LOCK = threading.Lock()


def _concern(row: SiteRow) -> NeedsAttention | None:
    signals, latest = row.site.signals, row.site.latest
    if signals is None or latest is None or signals.variation != "special_cause_concern":
        return None
    return NeedsAttention(
        row.measure.id,
        row.measure.title,
        latest.period_start,
        latest.value,
        row.measure.percent,
        signals.outside_limits,
        signals.runs_signal,
    )


def site_attention(
    stored: StoredResults, catalog: MeasureCatalog, site: str, principal: Principal
) -> SiteAttention:
    """The measures at ``site`` that need attention in the latest run (kept per run and site).

    Raises:
        NotFound: the site has no measure results.
        PermissionDenied: the principal may not see dashboards.
    """
    require_dashboards(principal)  # before the kept answer too
    key = (stored.run_id, site.strip().upper())
    with _LOCK:
        kept = _KEPT.get(key)
    if kept is not None:
        return kept
    with warnings.catch_warnings():
        # The caveats (few points, small denominators) are on the measure's page.
        warnings.simplefilter("ignore", StatisticalWarning)
        view = site_view(stored, catalog, site, principal)
    found = (_concern(row) for row in view.rows)
    result = SiteAttention(
        view.site, view.run_id, len(view.rows), tuple(a for a in found if a is not None)
    )
    with _LOCK:
        if len(_KEPT) > 256:
            _KEPT.clear()
        _KEPT[key] = result
    return result
