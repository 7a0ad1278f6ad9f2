"""Sites: adding them, listing them, and a site's time zone."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.errors import (
    Conflict,
    ErrorDetail,
    NotFound,
    ValidationFailed,
)
from careloop.core.plain_text import shown, text_problem
from careloop.store.database import Registry
from careloop.store.models import Site
from careloop.trust.identity.views import SiteView, _site_view
from careloop.trust.places import country_problem, time_zone_problem
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work

_SITE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


def add_site(
    registry: Registry,
    principal: Principal,
    *,
    code: str,
    name: str,
    country: str,
    time_zone: str,
) -> SiteView:
    """Register a care centre. ``code`` is short and stable, e.g. ``RCH``."""
    problems: list[ErrorDetail] = []
    code = code.strip().upper()
    if not _SITE_CODE.match(code):
        problems.append(ErrorDetail("code", "use 1-32 letters, digits, '-' or '_', e.g. RCH", code))
    wrong_name = text_problem(name, what="a site's name", max_length=200)
    if wrong_name:
        problems.append(ErrorDetail("name", wrong_name, shown(name)))
    wrong_country = country_problem(country)
    if wrong_country:
        problems.append(ErrorDetail("country", wrong_country, country))
    country = country.strip().upper()
    wrong_zone = time_zone_problem(time_zone, country=country)
    if wrong_zone:
        problems.append(ErrorDetail("time_zone", wrong_zone, time_zone))
    if problems:
        raise ValidationFailed("The site was not added.", details=problems)
    with unit_of_work(registry, principal, "site.manage") as work:
        if work.session.scalar(select(Site).where(Site.code == code)) is not None:
            raise Conflict(f"A site with code {code} already exists; choose another code.")
        site = Site(code=code, name=name.strip(), country=country, time_zone=time_zone)
        work.session.add(site)
        work.session.flush()
        work.audit("create", "site", site_code=code, details={"name": site.name})
        return _site_view(site)


def list_sites(registry: Registry, principal: Principal) -> list[SiteView]:
    with unit_of_work(registry, principal, "site.read") as work:
        return [_site_view(s) for s in work.session.scalars(select(Site).order_by(Site.code))]


def site_by_code(session: Session, code: str) -> Site:
    site = session.scalar(select(Site).where(Site.code == code.strip().upper()))
    if site is None:
        raise NotFound(f"There is no site with code {code!r}. `careloop site list` shows them.")
    return site


def site_time_zone(site: SiteView) -> ZoneInfo:
    return ZoneInfo(site.time_zone)
