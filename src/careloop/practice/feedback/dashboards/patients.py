"""The patients behind a site's number, for roles that may read records there (audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from careloop.measures.catalog import MeasureCatalog
from careloop.measures.patient_lists import ListKind, patient_list
from careloop.practice.feedback.dashboards.access import require_dashboards
from careloop.practice.feedback.dashboards.model import MeasureInfo
from careloop.practice.feedback.dashboards.series import measure_info
from careloop.store.database import Registry
from careloop.store.models import Patient
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work
from careloop.warehouse.connection import Warehouse


@dataclass(frozen=True)
class ListedPatient:
    """One patient behind a site's number, as the care team sees them."""

    patient_id: int
    """The registry patient id (the warehouse ``person_id``)."""
    pseudo_id: str | None
    """The pseudonymous id."""
    local_id: str | None
    """The site's local id (MRN); None when the registry no longer holds the patient."""
    name: str
    """Given and family name (may be empty)."""
    birth_date: date | None
    """Date of birth."""


@dataclass(frozen=True)
class DashboardPatientList:
    """The patients behind one measure's number at one site in one period."""

    measure: MeasureInfo
    """The measure."""
    site: str
    """The site."""
    period_start: date
    """First day of the period."""
    period_end: date
    """Last day of the period."""
    kind: ListKind
    """gap (counted but not meeting the measure), numerator, denominator or excluded."""
    patients: tuple[ListedPatient, ...]
    """The patients, by registry id."""


def dashboard_patient_list(
    warehouse: Warehouse,
    registry: Registry,
    principal: Principal,
    catalog: MeasureCatalog,
    measure_id: str,
    *,
    site: str,
    period: date,
    kind: ListKind = "gap",
) -> DashboardPatientList:
    """The patients behind ``measure_id``'s number at ``site`` with names, for the care team.

    The list is :func:`careloop.measures.patient_lists.patient_list` (a
    ``record.read`` unit of work at the site, audited as a read of
    ``measure_patient_list``); the names come from the registry in a
    ``patient.read`` unit of work, audited as one read of demographics naming
    every patient shown.

    Raises:
        PermissionDenied: the principal may not read records (analysts, auditors, admins).
        NotFound: no such measure or site, or a site whose records the principal may not read.
    """
    require_dashboards(principal)
    definition = catalog.get(measure_id)
    listed = patient_list(
        warehouse, registry, principal, definition, site=site, period=period, kind=kind
    )
    ids = [p.person_id for p in listed.patients]
    found: dict[int, Patient] = {}
    with unit_of_work(registry, principal, "patient.read") as work:
        if ids:
            found = {
                p.id: p for p in work.session.scalars(select(Patient).where(Patient.id.in_(ids)))
            }
        work.audit(
            "read",
            "demographics",
            site_code=listed.site,
            details={
                "measure_patient_list": measure_id,
                "results": len(found),
                "patient_ids": sorted(found),
            },
        )
        patients = tuple(
            ListedPatient(
                e.person_id,
                e.person_source_value,
                found[e.person_id].local_id if e.person_id in found else None,
                " ".join(
                    x for x in (found[e.person_id].given_name, found[e.person_id].family_name) if x
                )
                if e.person_id in found
                else "",
                found[e.person_id].birth_date if e.person_id in found else None,
            )
            for e in listed.patients
        )
    info = measure_info(catalog, measure_id)
    return DashboardPatientList(
        info, listed.site, listed.period_start, listed.period_end, listed.kind, patients
    )
