"""The range an event (visit) date must lie in, on every path that stores one.

A PROM link once stored a complete response dated 2099-12-31. An event date
is accepted from 1900-01-01 (no registry holds visits before it; the dates of
birth careloop accepts start there too) to the day after today in the site's
time zone: a visit entered just after midnight in one zone may already be
"tomorrow" in another, and a day's grace keeps such entries; anything later
is a typing error (most often the year). The API, the entry pages, PROM
links, the records import and the FHIR import all apply it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from careloop.capture.forms import FieldType, Form
from careloop.core.clock import utcnow

EARLIEST_EVENT_DATE = date(1900, 1, 1)


def latest_event_date(time_zone: str | None, *, now: datetime | None = None) -> date:
    """The latest event date accepted at a site in ``time_zone``: its tomorrow."""
    try:
        zone = ZoneInfo(time_zone) if time_zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return (now or utcnow()).astimezone(zone).date() + timedelta(days=1)


def event_date_problem(day: date, *, latest: date) -> str | None:
    """Why ``day`` is not an acceptable event date (None when it is)."""
    if day < EARLIEST_EVENT_DATE:
        return f"an event date is on or after {EARLIEST_EVENT_DATE.isoformat()}; check the year"
    if day > latest:
        return (
            f"an event date cannot be later than {latest.isoformat()} (tomorrow in the site's "
            "time zone); check the year"
        )
    return None


_DATE_TYPES = ("date_ymd", "date_dmy", "date_mdy")


def event_date_field(form: Form) -> str | None:
    """The field of ``form`` that holds its event (visit) date, if it has one.

    That is its first date field that always shows and needs an answer (the IBD
    visit form's "Visit date", the PROM's "Today's date"): the entry page takes
    the response's event date from it rather than asking for the date twice.
    """
    for f in form.fields:
        if (
            f.type is FieldType.TEXT
            and f.validation in _DATE_TYPES
            and f.required
            and f.branching_logic is None
        ):
            return f.name
    return None
