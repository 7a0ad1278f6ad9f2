"""Site and patient scoping enforced by the session itself.

A :class:`Scope` is attached to a session when it is opened on behalf of a
user (``session.info["scope"]``). Every ORM query then gets extra criteria —
``site_id IN (…)`` for :class:`SiteOwned` rows, ``patient_id IN (…)`` for
:class:`PatientOwned` rows and patients — and every flush refuses rows outside
the scope. Endpoints do not filter by site themselves, so no path can forget.
A session without a scope sees no site-owned rows at all (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from careloop.core.errors import PermissionDenied
from careloop.store.models import Patient, PatientOwned, SiteOwned

SCOPE_KEY = "scope"


@dataclass(frozen=True)
class Scope:
    """Which rows a session may see and write.

    ``site_ids``/``patient_ids`` of ``None`` mean "no restriction on this axis";
    an empty tuple means "nothing".
    """

    site_ids: tuple[int, ...] | None
    """Sites whose rows are visible, or None for every site."""
    patient_ids: tuple[int, ...] | None = None
    """Patients whose rows are visible (patients, carers), or None for all in the sites."""

    @classmethod
    def everything(cls) -> Scope:
        """The scope of installation-level operations run by the operator (CLI)."""
        return cls(site_ids=None, patient_ids=None)

    @classmethod
    def nothing(cls) -> Scope:
        return cls(site_ids=(), patient_ids=())

    def allows_site(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    def allows_patient(self, patient_id: int) -> bool:
        return self.patient_ids is None or patient_id in self.patient_ids


def scope_of(session: Session) -> Scope:
    scope = session.info.get(SCOPE_KEY)
    return scope if isinstance(scope, Scope) else Scope.nothing()


def set_scope(session: Session, scope: Scope) -> None:
    session.info[SCOPE_KEY] = scope


@event.listens_for(Session, "do_orm_execute")
def _add_scope_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get("careloop_unscoped", False):
        return
    scope = scope_of(state.session)
    options: list[Any] = []
    if scope.site_ids is not None:
        site_ids = list(scope.site_ids)
        options.append(
            with_loader_criteria(
                SiteOwned,
                lambda cls: cls.site_id.in_(site_ids),
                include_aliases=True,
            )
        )
    if scope.patient_ids is not None:
        patient_ids = list(scope.patient_ids)
        options.append(
            with_loader_criteria(
                PatientOwned,
                lambda cls: cls.patient_id.in_(patient_ids),
                include_aliases=True,
            )
        )
        options.append(
            with_loader_criteria(
                Patient,
                lambda cls: cls.id.in_(patient_ids),
                include_aliases=True,
            )
        )
    if options:
        state.statement = state.statement.options(*options)


@event.listens_for(Session, "before_flush")
def _refuse_writes_outside_scope(session: Session, _context: Any, _instances: Any) -> None:
    scope = scope_of(session)
    for obj in (*session.new, *session.dirty, *session.deleted):
        site_id = getattr(obj, "site_id", None) if isinstance(obj, SiteOwned) else None
        if site_id is not None and not scope.allows_site(site_id):
            raise PermissionDenied("This change touches a site outside your access.")
        patient_id: int | None = None
        if isinstance(obj, Patient):
            patient_id = obj.id
        elif isinstance(obj, PatientOwned):
            patient_id = obj.patient_id
        if patient_id is not None and not scope.allows_patient(patient_id):
            raise PermissionDenied("This change touches a patient outside your access.")
