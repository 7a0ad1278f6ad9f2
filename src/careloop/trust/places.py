"""Where a site is: its ISO 3166-1 country code and IANA time zone, checked with suggestions.

The lists come from the IANA time zone database that ``tzdata`` ships (a
dependency of pandas, pinned in constraints.txt): ``iso3166.tab`` names every
ISO 3166-1 alpha-2 code, ``zone.tab`` the zones of each country. Read from
there rather than copied in, so they follow tzdata's releases.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib.resources import files
from zoneinfo import available_timezones

__all__ = ["EXAMPLE_ZONES", "country_problem", "time_zone_problem"]

EXAMPLE_ZONES = ("Europe/London", "America/New_York", "Australia/Melbourne", "Asia/Kolkata")
"""Zones named in messages as examples of the Area/Location form."""

# What people write for countries whose code or tzdata name is otherwise (UK and EL are
# reserved by ISO 3166-1 for GB and GR).
_ALIASES = {"UK": "GB", "EL": "GR", "USA": "US", "UNITED KINGDOM": "GB", "GREAT BRITAIN": "GB"}


def _table(name: str) -> list[list[str]]:
    try:
        text = files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - tzdata is pinned
        return []
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@cache
def _countries() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code → country name."""
    return {row[0]: row[1] for row in _table("iso3166.tab") if len(row) >= 2}


@cache
def _zones_by_country() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in _table("zone.tab"):
        if len(row) >= 3:
            out.setdefault(row[0], []).append(row[2])
    return out


def country_problem(code: str) -> str | None:
    """What is wrong with ``code`` as a site's country (None when it is a valid code)."""
    countries = _countries()
    value = code.strip().upper()
    if value in countries or (not countries and len(value) == 2 and value.isalpha()):
        return None
    hint = ""
    # Names as tzdata writes them, e.g. "Britain (UK)", also without the bracket.
    by_name = {name.lower(): c for c, name in countries.items()}
    by_name.update({name.split(" (")[0].lower(): c for c, name in countries.items()})
    wanted = code.strip().lower()
    close = [wanted] if wanted in by_name else []
    close = close or difflib.get_close_matches(wanted, list(by_name), n=1, cutoff=0.75)
    if value in _ALIASES:
        hint = f" (did you mean {_ALIASES[value]}, {countries.get(_ALIASES[value], '')}?)"
    elif close:
        match = by_name[close[0]]
        hint = f" (did you mean {match}, {countries[match]}?)"
    count = f"any of the {len(countries)} in ISO 3166-1" if countries else "ISO 3166-1"
    return (
        f"{code!r} is not an ISO 3166-1 alpha-2 country code{hint}; use the two-letter code "
        f"({count}), e.g. GB (United Kingdom), US (United States), AU (Australia), "
        "DE (Germany), IN (India)"
    )


def time_zone_problem(zone: str, *, country: str | None = None) -> str | None:
    """What is wrong with ``zone`` as a site's time zone (None when IANA knows it)."""
    zones = available_timezones()
    if zone in zones:
        return None
    hint = ""
    wanted = zone.strip().replace(" ", "_").lower()
    by_lower = {z.lower(): z for z in zones}
    by_city = {z.rsplit("/", 1)[-1].lower(): z for z in zones if "/" in z}
    match = by_lower.get(wanted) or by_city.get(wanted)
    if match is None:
        close = difflib.get_close_matches(wanted, list(by_lower), n=1, cutoff=0.8)
        match = by_lower[close[0]] if close else None
    if match is not None:
        hint = f" (did you mean {match}?)"
    of_country = ""
    code = (country or "").strip().upper()
    if code in _zones_by_country():
        listed = _zones_by_country()[code]
        shown = ", ".join(listed[:6]) + (", …" if len(listed) > 6 else "")
        of_country = f"; those of {code} are {shown}"
    return (
        f"{zone!r} is not an IANA time zone name{hint}; use an Area/Location name such as "
        f"{', '.join(EXAMPLE_ZONES)}{of_country}"
    )
