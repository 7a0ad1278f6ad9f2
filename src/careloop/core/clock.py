"""Time in careloop: always timezone-aware UTC, from one replaceable clock."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Interpret a naive datetime as UTC (databases may drop the zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_utc(value: datetime) -> str:
    """Fixed-width ISO 8601 UTC time with microseconds: ``2026-01-02T03:04:05.000006Z``."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
