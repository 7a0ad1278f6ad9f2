"""Registry tables of the measure dashboards: notes and phase starts people add to a chart.

A :class:`ChartNote` marks a period of one measure's chart, for the network
(``site_id`` None) or one site, with a line of text; when ``starts_phase`` is
set the chart's centre line and limits are recalculated from that period on.
Notes hold no patient data; they are not site-owned in the scoping sense
(every staff role sees every chart), and who may add one is checked by
``careloop.practice.feedback.dashboards.notes``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from careloop.core.clock import utcnow
from careloop.store.models.foundation import Base


class ChartNote(Base):
    """A note (and maybe a new phase) at one period of a measure's chart."""

    __tablename__ = "chart_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[str] = mapped_column(String(100), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"), index=True)
    period_start: Mapped[date] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
    starts_phase: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
