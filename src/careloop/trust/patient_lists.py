"""Lists of patients for the care team: a page at a time, the whole list as a file, and
the sites a caller may register patients at.

Each list is one audited identifiable read naming the patients it returned
(an export says so in its audit entry); which patients exist for the caller is
the scoped session's decision, as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select

from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.trust.patients import PatientView, _site_in_scope, _view
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

PAGE_SIZES = (25, 50, 100)
"""The page sizes the patients page offers."""
EXPORT_MAX = 100_000
"""Most patients one export holds."""


@dataclass(frozen=True)
class PatientPage:
    """One page of a patient list."""

    total: int
    """How many patients match in all."""
    offset: int
    """How many come before this page."""
    patients: tuple[PatientView, ...]
    """This page's patients, by site then local id."""


def _query(work: Work, text: str | None, site: str | None) -> Select[Any]:
    query = select(Patient)
    if site:
        query = query.where(Patient.site_id == _site_in_scope(work, site).id)
    if text and text.strip():
        like = f"%{text.strip().lower()}%"
        query = query.where(
            or_(
                Patient.local_id.ilike(like),
                Patient.given_name.ilike(like),
                Patient.family_name.ilike(like),
            )
        )
    return query


def page_of_patients(
    registry: Registry,
    principal: Principal,
    *,
    text: str | None = None,
    site: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZES[0],
    export: bool = False,
) -> PatientPage:
    """Patients the principal may see, matching ``text`` (local id or name), a page at a time.

    ``export`` marks the audit entry as a download (the whole list, up to
    :data:`EXPORT_MAX`). One audit entry per call, naming the patients returned.
    """
    offset = max(0, offset)
    limit = max(1, min(limit, EXPORT_MAX if export else max(PAGE_SIZES)))
    with unit_of_work(registry, principal, "patient.read") as work:
        query = _query(work, text, site)
        total = work.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(
            work.session.scalars(
                query.order_by(Patient.site_id, Patient.local_id, Patient.id)
                .offset(offset)
                .limit(limit)
            )
        )
        details: dict[str, object] = {
            "search": bool(text),
            "results": len(rows),
            "total": total,
            "offset": offset,
            "patient_ids": [p.id for p in rows],
        }
        if export:
            details["export"] = "csv"
        work.audit("read", "demographics", site_code=site, details=details)
        return PatientPage(total, offset, tuple(_view(work.session, p) for p in rows))


def registration_sites(registry: Registry, principal: Principal) -> list[str]:
    """Codes of the sites where the principal may register patients (empty: none)."""
    scope = principal.scope_for("patient.create")
    if scope.patient_ids is not None:
        return []
    with registry.read_transaction() as session:
        query = select(Site.code).order_by(Site.code)
        if scope.site_ids is not None:
            query = query.where(Site.id.in_(scope.site_ids))
        return list(session.scalars(query))
