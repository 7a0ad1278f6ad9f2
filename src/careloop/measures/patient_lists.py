"""The patients behind a number: who is in the denominator but not the numerator.

This is the list a clinician acts on (the patients not in remission, the
visits without a growth check). It is identifiable, so it is read inside a
unit of work for ``record.read`` at the site: the principal must be allowed
to read records there (care team roles; analysts, who hold
``warehouse.query`` only, are refused and see the numbers alone), and every
list given out is audited as a ``read`` of ``measure_patient_list``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from careloop.core.errors import InputError, NotFound
from careloop.measures.compiler import SUBJECT, CompiledMeasure, periods_between
from careloop.measures.definition import MeasureDefinition
from careloop.measures.runner import _Tables, resolve_concepts
from careloop.store.database import Registry
from careloop.trust.identity import site_by_code
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings

ListKind = Literal["gap", "numerator", "denominator", "excluded"]
AUDIT_CATEGORY = "measure_patient_list"


@dataclass(frozen=True)
class PatientListEntry:
    """One patient on a list."""

    person_id: int
    """The warehouse ``person_id``."""
    person_source_value: str | None
    """The registry's id for the person as the ETL stored it (pseudonymous id)."""


@dataclass(frozen=True)
class PatientList:
    """The patients behind one measure's number at one site in one period."""

    measure_id: str
    """The measure."""
    site: str
    """The site code."""
    period_start: date
    """First day of the period."""
    period_end: date
    """Last day of the period."""
    kind: ListKind
    """gap (denominator but not numerator), numerator, denominator or excluded."""
    patients: tuple[PatientListEntry, ...]
    """The patients, by person id."""


def patient_list(
    warehouse: Warehouse,
    registry: Registry,
    principal: Principal,
    definition: MeasureDefinition,
    *,
    site: str,
    period: date,
    kind: ListKind = "gap",
) -> PatientList:
    """The patients behind ``definition``'s number at ``site`` for the period containing ``period``.

    Raises:
        PermissionDenied: the principal may not read records at all (audited).
        NotFound: no such site, or not one whose records the principal may read.
    """
    if kind not in ("gap", "numerator", "denominator", "excluded"):
        raise InputError(f"Unknown list {kind!r}; use gap, numerator, denominator or excluded.")
    (p,) = periods_between(period, period, definition.period)
    details = {"measure_id": definition.id, "period_start": p.start.isoformat(), "kind": kind}
    with unit_of_work(registry, principal, "record.read") as work:
        work.expect("read", AUDIT_CATEGORY, site_code=site.strip().upper(), details=details)
        site_row = site_by_code(work.session, site)
        if not work.scope.allows_site(site_row.id) or work.scope.patient_ids is not None:
            raise NotFound(f"There is no site with code {site!r} whose records you can read.")
        patients = _members(warehouse, definition, site_row.code, p.start, kind)
        work.audit(
            "read",
            AUDIT_CATEGORY,
            site_code=site_row.code,
            details={**details, "patients": len(patients)},
        )
    return PatientList(definition.id, site_row.code, p.start, p.end, kind, patients)


def _members(
    warehouse: Warehouse, definition: MeasureDefinition, site: str, start: date, kind: ListKind
) -> tuple[PatientListEntry, ...]:
    tables = _Tables(warehouse)
    concept_sets, _ = resolve_concepts(warehouse, [definition])
    periods = periods_between(start, start, definition.period)
    compiled = CompiledMeasure(definition, tables, periods, concept_sets, ["site"])
    sets = compiled.sets()
    if kind == "gap":
        chosen = sets["denominator"]
        if "numerator" in sets:
            chosen = chosen.difference(sets["numerator"], distinct=True)
    elif kind in sets:
        chosen = sets[kind]
    else:
        return ()
    cs = tables("care_site")
    site_ids = cs.filter(cs.care_site_source_value == site).select("care_site_id")
    members = compiled.with_strata(chosen)
    members = members.filter(members.careloop_site_id.isin(site_ids.care_site_id))
    if definition.subject == "visit":
        v = tables("visit_occurrence")
        members = members.join(v, members[SUBJECT] == v.visit_occurrence_id).select(
            careloop_pid=v.person_id
        )
    else:
        members = members.select(careloop_pid=members[SUBJECT])
    person = tables("person")
    rows = (
        members.distinct()
        .join(person, members.careloop_pid == person.person_id)
        .select("person_id", "person_source_value")
        .order_by("person_id")
    )
    with quiet_engine_warnings():
        frame = rows.execute()
    return tuple(
        PatientListEntry(
            int(r.person_id),
            r.person_source_value if isinstance(r.person_source_value, str) else None,
        )
        for r in frame.itertuples(index=False)
    )
