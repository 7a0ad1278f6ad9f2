"""Alerts to the owners of a measure: one row per alert and person, read in the app and e-mailed.

``key`` says what the alert is about (a measure's special-cause signal at a
site in a month, a site's monthly feedback report); the pair (key, user) is
unique, so the same alert is never made, nor e-mailed, twice to one person.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from careloop.core.clock import utcnow
from careloop.store.models.foundation import Base


class Alert(Base):
    """One alert for one person."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("key", "user_id"),
        Index("ix_alert_user_unread", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    measure_id: Mapped[str] = mapped_column(String(100))
    site_code: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    emailed_at: Mapped[datetime | None]
