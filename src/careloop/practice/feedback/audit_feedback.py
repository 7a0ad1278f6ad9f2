"""Audit-and-feedback reports for a site: its measure against the network, its gaps, its cards.

:func:`audit_feedback_report` takes the measure results (``careloop.measures``
frame), the site, the CDS card events and — only for people allowed to see
them — the site's gap list (patients in the denominator but not the
numerator, from ``careloop.measures.patient_lists.patient_list``, which
checks ``record.read`` at the site and audits the read). It returns

- a funnel plot of every site for the period (Spiegelhalter's limits,
  :func:`careloop.analysis.funnel.funnel`), with the site's value and flag;
- the site's series over time next to the network's;
- the site's card feedback by clinician (cards shown, accepted, overridden,
  override reasons);
- the gap list, if given (pseudonymous ids only).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date
from typing import Any

import markupsafe
import pandas as pd

from careloop import charts
from careloop.analysis.funnel import FunnelResult, funnel
from careloop.core.errors import InputError
from careloop.core.html import render
from careloop.measures.patient_lists import PatientList

CLINICIAN_COLUMNS = (
    "user_ref",
    "cards_shown",
    "accepted",
    "overridden",
    "no_feedback",
    "top_override_reason",
)


@dataclass(frozen=True)
class AuditFeedbackReport:
    """One site's audit and feedback for one measure and period."""

    site: str
    """The site's code."""
    measure_id: str
    """The measure."""
    period_start: date
    """First day of the period compared on the funnel plot."""
    funnel: FunnelResult
    """Every site of the period on a funnel plot (percent)."""
    site_value: float
    """The site's value (percent)."""
    site_flag: str
    """``within``, ``above 95%``… as the funnel flags it."""
    network_value: float
    """The pooled network value (percent) the limits centre on."""
    trend: pd.DataFrame
    """period_start, site (percent), network (percent): the site over time beside the network."""
    clinicians: pd.DataFrame
    """Card feedback by clinician at the site (columns :data:`CLINICIAN_COLUMNS`)."""
    gaps: PatientList | None
    """Patients in the denominator but not the numerator (only when the reader may see them)."""
    caveats: tuple[str, ...]
    """Statistical caveats (over-dispersion, small denominators)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "site": self.site,
            "measure_id": self.measure_id,
            "period_start": self.period_start.isoformat(),
            "site_value": self.site_value,
            "site_flag": self.site_flag,
            "network_value": self.network_value,
            "trend": [
                {**r, "period_start": pd.Timestamp(r["period_start"]).date().isoformat()}
                for r in self.trend.to_dict(orient="records")
            ],
            "clinicians": self.clinicians.to_dict(orient="records"),
            "gaps": (
                [p.person_source_value or str(p.person_id) for p in self.gaps.patients]
                if self.gaps is not None
                else None
            ),
            "caveats": list(self.caveats),
        }

    def funnel_svg(self) -> markupsafe.Markup:
        """The funnel plot of every site as inline SVG (drawn once per report: a page shown
        again reuses it)."""
        drawn = self.__dict__.get("_funnel_svg")
        if drawn is None:
            # The SVG is drawn by vl-convert from the numbers; its text is XML-escaped there.
            svg = charts.funnel.svg(self.funnel, title=self.measure_id)
            drawn = markupsafe.Markup(svg)  # noqa: S704
            object.__setattr__(self, "_funnel_svg", drawn)  # a cache, not a field
        return drawn

    def to_html(self) -> str:
        """A self-contained HTML page (funnel plot as inline SVG, no scripts)."""
        return render(
            "careloop.practice.feedback", "audit_feedback.html",
            report=self,
            title=f"{self.measure_id} at {self.site}, {self.period_start:%Y-%m-%d}",
            funnel_svg=self.funnel_svg(),
        )  # fmt: skip


def _clinicians(events: pd.DataFrame, site: str) -> pd.DataFrame:
    if events.empty:
        return pd.DataFrame(columns=list(CLINICIAN_COLUMNS))
    mine = events[(events["site_code"] == site) & events["shown"].astype(bool)]
    rows = []
    for user, group in mine.groupby(mine["user_ref"].fillna("(unknown)"), sort=True):
        accepted = int((group["outcome"] == "accepted").sum())
        overridden = int((group["outcome"] == "overridden").sum())
        reasons = group["override_display"].dropna()
        rows.append(
            {
                "user_ref": user,
                "cards_shown": len(group),
                "accepted": accepted,
                "overridden": overridden,
                "no_feedback": len(group) - accepted - overridden,
                "top_override_reason": reasons.mode().iloc[0] if len(reasons) else None,
            }
        )
    return pd.DataFrame(rows, columns=list(CLINICIAN_COLUMNS))


def audit_feedback_report(
    results: pd.DataFrame,
    *,
    measure_id: str,
    site: str,
    period: date | None = None,
    card_events: pd.DataFrame | None = None,
    gaps: PatientList | None = None,
) -> AuditFeedbackReport:
    """The audit-and-feedback report of ``site`` for ``measure_id``.

    Args:
        results: Measure results (measure_id, site, period_start, numerator,
            denominator, optionally stratum); ``site == ""`` rows are the network.
        measure_id: The measure.
        site: The site's code.
        period: The period compared on the funnel plot (its ``period_start``);
            default the latest.
        card_events: ``careloop.practice.card_events(registry)``.
        gaps: The site's gap list, when the reader may see it.

    Raises:
        InputError: No results for the measure, the site or the period.
    """
    rows = results[results["measure_id"] == measure_id].copy()
    if "stratum" in rows:
        rows = rows[rows["stratum"].fillna("") == ""]
    if rows.empty:
        raise InputError(f"No results of measure {measure_id!r}; run the measures first.")
    rows["period_start"] = pd.to_datetime(rows["period_start"])
    sites = rows[rows["site"] != ""]
    chosen = pd.Timestamp(period) if period is not None else sites["period_start"].max()
    current = sites[sites["period_start"] == chosen]
    if site not in set(current["site"]):
        raise InputError(
            f"No results of {measure_id!r} for site {site!r} in the period starting "
            f"{chosen:%Y-%m-%d}."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = funnel(
            current,
            numerator="numerator",
            denominator="denominator",
            unit="site",
            kind="proportion",
            multiply=100,
        )
    mine = result.units[result.units["unit"] == site].iloc[0]
    network = rows[rows["site"] == ""].set_index("period_start")
    own = sites[sites["site"] == site].set_index("period_start")
    trend = pd.DataFrame(
        {
            "site": 100 * own["numerator"] / own["denominator"],
            "network": 100 * network["numerator"] / network["denominator"]
            if not network.empty
            else float("nan"),
        }
    ).reset_index(names="period_start")
    events = card_events if card_events is not None else pd.DataFrame()
    return AuditFeedbackReport(
        site=site,
        measure_id=measure_id,
        period_start=chosen.date(),
        funnel=result,
        site_value=float(mine["value"]),
        site_flag=str(mine["flag"]),
        network_value=float(result.target * result.multiply),
        trend=trend,
        clinicians=_clinicians(events, site),
        gaps=gaps,
        caveats=tuple(dict.fromkeys(str(w.message) for w in caught)),
    )
