"""Feedback to practice: what the learning community sees of its own care.

- :mod:`~careloop.practice.feedback.dashboards` — measure dashboards: every
  site's run charts and SPC signals, the funnel of sites, a site's page, the
  patient lists behind a number (for the people allowed to see them);
- :mod:`~careloop.practice.feedback.impact` — a knowledge object's deployment
  before and after (SPC phases, interrupted time series), card acceptance and
  the card-variant comparison;
- :mod:`~careloop.practice.feedback.audit_feedback` — a site's
  audit-and-feedback report: its measure against the network, its gaps, its
  cards by clinician;
- :mod:`~careloop.practice.feedback.reports` — the last two for a reader,
  scoped to the sites they work at.

Not imported by :mod:`careloop.practice` itself: these need the SPC/ITS stack
(statsmodels, Plotly), which the CDS Hooks service does not.
"""

from careloop.practice.feedback.audit_feedback import AuditFeedbackReport, audit_feedback_report
from careloop.practice.feedback.impact import ImpactReport, deployment_annotations, impact_report
from careloop.practice.feedback.reports import feedback_for, impact_for

__all__ = [
    "AuditFeedbackReport",
    "ImpactReport",
    "audit_feedback_report",
    "deployment_annotations",
    "feedback_for",
    "impact_for",
    "impact_report",
]
